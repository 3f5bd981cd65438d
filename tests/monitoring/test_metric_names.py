"""Every metric name a rule or dashboard uses is exported by someone.

A name is accounted for when it is
  * in a real scrape: tests/monitoring/scraped/*.txt, one name per line, written by tests/daemons
    (test_kafka_daemons.py, test_metrics_daemons.py) from the Kafka, HDFS and Spark processes they
    run with the settings the roles render, scraped by a real Prometheus;
  * listed in roles/monitoring/files/metric-sources.yml with its source in the exporter's
    documentation or code (what cannot run here: Elasticsearch and its exporter, Kibana's probe,
    the kubelet, Prometheus's own series);
  * or recorded by one of the role's recording rules.
A selector on a regular expression of names (Spark's per-application names) is accounted for when
a scraped name matches it, or the same expression is listed in metric-sources.yml as a pattern.
Names are read by Prometheus's own parser (promcheck selectors), not by a regular expression.
"""

import glob
import os
import re

from monitoring_support import METRIC_SOURCES, SCRAPED_DIR, load_yaml, rules, used_expressions


def scraped_names(directory=SCRAPED_DIR):
    """{name: scrape file} from the real-daemon scrapes."""
    names = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.txt"))):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and not line.startswith("#"):
                    names.setdefault(line.strip(), os.path.basename(path))
    return names


def documented():
    """metric-sources.yml: (names, patterns), each {name or regex: entry}."""
    entries = load_yaml(METRIC_SOURCES) or {}
    names = {k: v for k, v in entries.items() if not v.get("pattern")}
    patterns = {k: v for k, v in entries.items() if v.get("pattern")}
    return names, patterns


def unaccounted(uses, parsed, scraped, names, patterns, recorded):
    """The problems: one line per selector whose name nobody exports, naming where it is used."""
    problems = []
    for (where, expr), result in zip(uses, parsed):
        if result.get("error"):
            problems.append("%s does not parse: %s" % (where, result["error"]))
            continue
        for selector in result["selectors"]:
            name = selector.get("name")
            if name:
                if name not in scraped and name not in names and name not in recorded:
                    problems.append("%s  (%s)" % (name, where))
                continue
            regexes = [m["value"] for m in selector.get("name_matchers", []) if m["type"] == "=~"]
            if not regexes:
                problems.append("%s selects no metric by name: %s" % (where, selector["text"]))
            for regex in regexes:
                if regex not in patterns and not any(re.fullmatch(regex, n) for n in scraped):
                    problems.append("{__name__=~%r}  (%s)" % (regex, where))
    return problems


def _report(problems, scraped):
    files = sorted(set(scraped.values()))
    return ("metric names used by the monitoring role that no real scrape found and metric-sources.yml does "
            "not list:\n  %s\n\nEither the name is wrong (check the exporter), or add it to "
            "roles/monitoring/files/metric-sources.yml with its documentation source, or scrape it in "
            "tests/daemons (test_kafka_daemons.py, test_metrics_daemons.py). Scraped name files read: %s"
            % ("\n  ".join(sorted(set(problems))),
               ", ".join(files) if files else "none yet (tests/monitoring/scraped/*.txt are written by "
               "tests/daemons)"))


def test_metric_sources_entries_are_documented():
    names, patterns = documented()
    for key, entry in {**names, **patterns}.items():
        assert entry.get("component") and entry.get("source"), "%s: needs component and source" % key
    for regex, entry in patterns.items():
        assert entry.get("example") and re.fullmatch(regex, entry["example"]), \
            "pattern %s: its example %r must be a real name it matches" % (regex, entry.get("example"))


def test_every_metric_sources_entry_is_used(prometheus_tools):
    names, patterns = documented()
    uses = used_expressions()
    used_names, used_regexes = set(), set()
    for result in prometheus_tools.selectors([expr for _, expr in uses]):
        for selector in result["selectors"]:
            used_names.add(selector.get("name"))
            used_regexes.update(m["value"] for m in selector.get("name_matchers", []))
    stale = sorted(set(names) - used_names) + sorted(set(patterns) - used_regexes)
    assert not stale, "metric-sources.yml lists names no rule or dashboard uses: %s" % stale


def test_an_unknown_metric_name_is_reported(prometheus_tools):
    """The check below can fail: a panel querying a metric nobody exports is named in the report."""
    uses = [("dashboards/x.json panel 1", 'sum(rate(kafka_server_made_up_total{namespace="bigdata"}[5m]))'),
            ("rules/x.yml SomeAlert", 'up{job="kafka"} == 0'),
            ("dashboards/x.json panel 2", '{__name__=~"metrics_.+_nothing_Value"}')]
    parsed = prometheus_tools.selectors([expr for _, expr in uses])
    problems = unaccounted(uses, parsed, scraped={}, names={"up": {}}, patterns={}, recorded=set())
    assert problems == ["kafka_server_made_up_total  (dashboards/x.json panel 1)",
                        "{__name__=~'metrics_.+_nothing_Value'}  (dashboards/x.json panel 2)"], problems


def test_every_used_metric_name_is_scraped_or_documented(prometheus_tools):
    uses = used_expressions()
    parsed = prometheus_tools.selectors([expr for _, expr in uses])
    names, patterns = documented()
    scraped = scraped_names()
    recorded = {rule["record"] for _, rule in rules() if "record" in rule}
    problems = unaccounted(uses, parsed, scraped, names, patterns, recorded)
    assert not problems, _report(problems, scraped)
