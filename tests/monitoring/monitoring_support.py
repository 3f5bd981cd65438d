"""What the monitoring tests share: where the role's files are, how to read them, and the tools.

Everything that looks inside PromQL goes through promcheck (Prometheus's own parser); this module
only finds the expressions and turns Grafana's variables into values the parser accepts.
"""

import glob
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_SCRIPT = os.path.join(REPO, "tools", "build_prometheus.sh")
ROLE_FILES = os.path.join(REPO, "roles", "monitoring", "files")
RULES_DIR = os.path.join(ROLE_FILES, "rules")
DASHBOARDS_DIR = os.path.join(ROLE_FILES, "dashboards")
METRIC_SOURCES = os.path.join(ROLE_FILES, "metric-sources.yml")
RULE_TESTS_DIR = os.path.join(HERE, "rules-tests")
# One metric name per line, written by tests/daemons/test_metrics_daemons.py from real scrapes.
SCRAPED_DIR = os.path.join(HERE, "scraped")

# A cold build compiles Prometheus and its dependencies: about 10 minutes on 2 cores.
BUILD_TIMEOUT = 3600

# The one data source reference every panel and query must use: the dashboard variable.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class PrometheusTools:
    """Paths of the binaries tools/build_prometheus.sh built."""

    promtool: str
    prometheus: str
    promcheck: str

    def run(self, tool, *args, stdin=None, timeout=300, cwd=None):
        """Run one of the binaries; the CompletedProcess (text), whatever its exit code."""
        return subprocess.run([getattr(self, tool), *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, check=False)

    def selectors(self, expressions):
        """promcheck selectors: per expression {"error": ..., "selectors": [{"name" | "name_matchers", "text"}]}."""
        run = self.run("promcheck", "selectors", stdin=json.dumps(list(expressions)))
        if run.returncode != 0:
            raise AssertionError("promcheck selectors failed (exit %d): %s" % (run.returncode, run.stderr))
        return json.loads(run.stdout)


def build_tools():
    """PrometheusTools of tools/build_prometheus.sh's binaries, built when missing (the script holds
    a lock, so tests of two workers asking at once build once); fails the test when the build does."""
    import pytest

    started = time.monotonic()
    run = subprocess.run(["bash", BUILD_SCRIPT], capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                         check=False)
    if run.returncode != 0:
        pytest.fail("tools/build_prometheus.sh failed (exit %d):\n%s\n%s"
                    % (run.returncode, run.stdout[-3000:], run.stderr[-5000:]))
    bin_dir = run.stdout.strip().splitlines()[-1]
    tools = PrometheusTools(*(os.path.join(bin_dir, name) for name in ("promtool", "prometheus", "promcheck")))
    version = tools.run("promtool", "--version")
    assert version.returncode == 0, version.stderr
    print("prometheus tools ready in %.1f s: %s" % (time.monotonic() - started, version.stdout.splitlines()[0]))
    return tools


def rendered_prometheus(config_maps, directory):
    """The Prometheus of the monitoring role's ConfigMaps (prometheus-config, prometheus-rules; dicts
    as the API or the rendered files give them) as files in `directory`: prometheus.yml, whose
    rule_files point at the rule files written beside it, and those. Returns (path, config)."""
    by_name = {cm["metadata"]["name"]: cm["data"] for cm in config_maps}
    config = yaml.safe_load(by_name["prometheus-config"]["prometheus.yml"])
    rules = os.path.join(str(directory), "rules")
    os.makedirs(rules, exist_ok=True)
    for name, text in by_name["prometheus-rules"].items():
        with open(os.path.join(rules, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    # The image mounts the rules ConfigMap at the directory of the role's one glob.
    assert len(config["rule_files"]) == 1 and config["rule_files"][0].endswith("/*.yml"), config["rule_files"]
    config["rule_files"] = [os.path.join(rules, "*.yml")]
    path = os.path.join(str(directory), "prometheus.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path, config


def rule_files():
    return sorted(glob.glob(os.path.join(RULES_DIR, "*.yml")))


def rule_test_files():
    return sorted(glob.glob(os.path.join(RULE_TESTS_DIR, "*.yml")))


def dashboard_files():
    return sorted(glob.glob(os.path.join(DASHBOARDS_DIR, "*.json")))


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def rules():
    """Every rule of the role: (file name, rule dict), in file order."""
    out = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            out.extend((os.path.basename(path), rule) for rule in group["rules"])
    return out


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text):
    """A Prometheus duration (1h30m, 45s) in seconds."""
    text = str(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError("%r is not a Prometheus duration" % text)
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


# Grafana replaces these before the query reaches Prometheus. Interval variables become a
# duration, any other variable a label value, so Prometheus's parser sees what Grafana would send.
_INTERVAL_VARIABLES = re.compile(r"\$\{?__(rate_interval|interval|range)\}?")
_OTHER_VARIABLES = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)


def grafana_to_promql(expr):
    """The PromQL Grafana sends for a query that uses dashboard variables."""
    expr = _INTERVAL_VARIABLES.sub("5m", expr)
    return _OTHER_VARIABLES.sub("bigdata", expr)


def variable_query(query):
    """The PromQL series selector inside a Prometheus query variable (label_values(<selector>, label))."""
    if isinstance(query, dict):
        query = query.get("query", "")
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError("variable query %r is not label_values(<series selector>, <label>)" % (query,))
    return match.group(1)


def panels(doc):
    """Every panel of a dashboard, those inside (collapsed) rows included."""
    out = []
    for panel in doc.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries(doc):
    """(where, PromQL) of every query of a dashboard: panel targets and query variables."""
    out = []
    for panel in panels(doc):
        for target in panel.get("targets", []):
            out.append(("panel %s %r target %s" % (panel.get("id"), panel.get("title"), target.get("refId")),
                        grafana_to_promql(target["expr"])))
    for variable in doc.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            out.append(("variable %s" % variable["name"], grafana_to_promql(variable_query(variable["query"]))))
    return out


def used_expressions():
    """(where, PromQL) of every expression the role ships: alert and recording rules, dashboard queries."""
    out = []
    for file_name, rule in rules():
        out.append(("rules/%s %s" % (file_name, rule.get("alert") or rule.get("record")), rule["expr"]))
    for path in dashboard_files():
        for where, expr in dashboard_queries(load_json(path)):
            out.append(("dashboards/%s %s" % (os.path.basename(path), where), expr))
    return out
