"""The Grafana dashboards of the monitoring role are valid dashboard JSON, and use the data source variable.

Validity is decided by the Grafana Foundation SDK (github.com/grafana/grafana-foundation-sdk/go,
the typed models Grafana generates from its dashboard schema), through promcheck's strict decoder:
an unknown field, a wrong type or a missing required field anywhere (panel options and Prometheus
queries included, each by its plugin's schema) is an error. The conventions the role relies on
(schemaVersion, unique uids and panel ids, every query on the `${datasource}` variable, panels
inside the 24-column grid without overlaps, queries Prometheus can parse) are checked here.
"""

import json
import os

import pytest

from monitoring_support import DATASOURCE, dashboard_files, dashboard_queries, load_json, panels

FILES = dashboard_files()
IDS = [os.path.basename(p) for p in FILES]
# The dashboards the issue asks for: an overview and one per component.
EXPECTED = {"overview.json", "kafka.json", "spark.json", "elasticsearch.json", "hdfs.json"}


def test_the_expected_dashboards_exist():
    assert EXPECTED <= set(IDS), "missing dashboards: %s" % sorted(EXPECTED - set(IDS))


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_grafana_sdk_strict_decoding_accepts_the_dashboard(prometheus_tools, path):
    run = prometheus_tools.run("promcheck", "dashboard", path)
    assert run.returncode in (0, 1), run.stderr
    problems = json.loads(run.stdout)[path]
    assert run.returncode == 0 and not problems, "%s:\n  %s" % (path, "\n  ".join(problems))


def test_grafana_sdk_strict_decoding_rejects_a_broken_dashboard(prometheus_tools, tmp_path):
    """The check above can fail: an unknown field, a wrong type and unknown panel options are reported."""
    doc = load_json(os.path.join(os.path.dirname(FILES[0]), "overview.json"))
    timeseries = next(p for p in doc["panels"] if p["type"] == "timeseries")
    timeseries["gridPos"]["h"] = "eight"
    timeseries["options"]["legend"]["placment"] = "right"
    doc["refresh_every"] = "30s"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    run = prometheus_tools.run("promcheck", "dashboard", str(broken))
    assert run.returncode == 1, run.stdout + run.stderr
    problems = "\n".join(json.loads(run.stdout)[str(broken)])
    for needle in ("refresh_every", "placment", "gridPos"):
        assert needle in problems, problems


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_conventions(path):
    doc = load_json(path)
    problems = []
    if not isinstance(doc.get("schemaVersion"), int) or doc["schemaVersion"] < 36:
        problems.append("schemaVersion %r: a number, 36 or later" % doc.get("schemaVersion"))
    if not doc.get("uid") or not doc.get("title"):
        problems.append("uid and title are required (provisioned dashboards are found by uid)")
    if "bigdata-stack" not in doc.get("tags", []):
        problems.append("tag bigdata-stack missing (the dashboards' links list dashboards by it)")

    variables = {v["name"]: v for v in doc.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    if source.get("type") != "datasource" or source.get("query") != "prometheus":
        problems.append("templating needs a variable `datasource` of type datasource, query prometheus")
    for name, variable in variables.items():
        if variable.get("type") == "query" and variable.get("datasource") != DATASOURCE:
            problems.append("variable %s: datasource must be %s" % (name, DATASOURCE))

    all_panels = panels(doc)
    ids = [p.get("id") for p in all_panels]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if None in ids or duplicates:
        problems.append("panel ids must exist and be unique; duplicated: %s" % duplicates)
    cells = {}
    for panel in all_panels:
        pos = panel.get("gridPos", {})
        label = "panel %s %r" % (panel.get("id"), panel.get("title"))
        if pos.get("x", 0) + pos.get("w", 0) > 24:
            problems.append("%s is wider than the 24-column grid: %s" % (label, pos))
        for x in range(pos.get("x", 0), pos.get("x", 0) + pos.get("w", 0)):
            for y in range(pos.get("y", 0), pos.get("y", 0) + pos.get("h", 0)):
                if (x, y) in cells:
                    problems.append("%s overlaps %s at column %d, row %d" % (label, cells[(x, y)], x, y))
                cells[(x, y)] = label
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append("%s: datasource must be %s, not %s" % (label, DATASOURCE, panel.get("datasource")))
        if not panel.get("targets"):
            problems.append("%s has no query" % label)
        for target in panel.get("targets", []):
            if target.get("datasource") != DATASOURCE:
                problems.append("%s target %s: datasource must be %s" % (label, target.get("refId"), DATASOURCE))
            if not target.get("expr", "").strip():
                problems.append("%s target %s: empty expr" % (label, target.get("refId")))
    assert not problems, "%s:\n  %s" % (path, "\n  ".join(problems))


def test_dashboard_uids_are_unique():
    uids = [load_json(p)["uid"] for p in FILES]
    assert len(uids) == len(set(uids)), uids


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_dashboard_query_parses_as_promql(prometheus_tools, path):
    queries = dashboard_queries(load_json(path))
    parsed = prometheus_tools.selectors([expr for _, expr in queries])
    errors = ["%s: %s\n    %s" % (where, result["error"], expr)
              for (where, expr), result in zip(queries, parsed) if result.get("error")]
    assert not errors, "\n".join(errors)
