"""The alert rules of the monitoring role, checked and unit-tested by the real promtool.

`promtool check rules` (lint warnings fatal) on every rule file; `promtool test rules` on the unit
tests of rules-tests/, which feed synthetic series through Prometheus's own rule engine. On top,
this file proves the unit tests cover every alert both ways: each fires in some test, and each is
expected silent in a test whose healthy series include everything its expression reads, at a time
past its `for:` (so the silence is not just a missing series or a pending alert).
"""

import os
import re
import shutil

import pytest

from monitoring_support import (RULE_TESTS_DIR, RULES_DIR, duration_seconds, load_yaml, rule_files,
                                rule_test_files, rules)

SEVERITIES = {"critical", "warning"}


def _names(path):
    return [os.path.basename(p) for p in path]


@pytest.mark.parametrize("path", rule_files(), ids=_names(rule_files()))
def test_promtool_check_rules(prometheus_tools, path):
    run = prometheus_tools.run("promtool", "check", "rules", "--lint=all", "--lint-fatal", path)
    assert run.returncode == 0, "promtool check rules %s:\n%s%s" % (path, run.stdout, run.stderr)
    assert "SUCCESS" in run.stdout, run.stdout


@pytest.mark.parametrize("path", rule_test_files(), ids=_names(rule_test_files()))
def test_promtool_test_rules(prometheus_tools, path):
    run = prometheus_tools.run("promtool", "test", "rules", path)
    assert run.returncode == 0, "promtool test rules %s:\n%s%s" % (path, run.stdout, run.stderr)
    assert "SUCCESS" in run.stdout, run.stdout


def test_promtool_test_rules_fails_on_a_wrong_expectation(prometheus_tools, tmp_path):
    """The wrapper above can fail: a unit test expecting an alert that does not fire makes promtool fail."""
    source = os.path.join(RULE_TESTS_DIR, "kibana.yml")
    text = open(source, encoding="utf-8").read()
    # The healthy test now claims the alert fires.
    healthy = "- {eval_time: 30m, alertname: KibanaUnavailable, exp_alerts: []}"
    broken = text.replace(healthy, healthy.replace("[]", "[{exp_labels: {severity: warning}}]"))
    assert broken != text
    rules_copy = tmp_path / "roles" / "monitoring" / "files" / "rules"
    rules_copy.mkdir(parents=True)
    shutil.copy(os.path.join(RULES_DIR, "kibana.yml"), rules_copy)
    test_dir = tmp_path / "tests" / "monitoring" / "rules-tests"
    test_dir.mkdir(parents=True)
    (test_dir / "kibana.yml").write_text(broken, encoding="utf-8")
    run = prometheus_tools.run("promtool", "test", "rules", str(test_dir / "kibana.yml"))
    assert run.returncode != 0, run.stdout
    assert "KibanaUnavailable" in run.stdout + run.stderr


def test_every_rule_file_has_its_unit_tests():
    tests = {os.path.basename(p): p for p in rule_test_files()}
    for path in rule_files():
        name = os.path.basename(path)
        assert name in tests, "rules/%s has no unit tests: add tests/monitoring/rules-tests/%s" % (name, name)
        listed = [os.path.normpath(os.path.join(RULE_TESTS_DIR, f)) for f in load_yaml(tests[name])["rule_files"]]
        assert os.path.normpath(path) in listed, "rules-tests/%s does not load rules/%s" % (name, name)


@pytest.mark.parametrize("file_name, rule", [r for r in rules() if "alert" in r[1]],
                         ids=[r[1]["alert"] for r in rules() if "alert" in r[1]])
def test_alert_has_severity_annotations_and_for(file_name, rule):
    assert rule.get("labels", {}).get("severity") in SEVERITIES, \
        "%s %s: labels.severity must be one of %s" % (file_name, rule["alert"], sorted(SEVERITIES))
    annotations = rule.get("annotations", {})
    assert annotations.get("summary") and annotations.get("description"), \
        "%s %s: needs annotations summary and description" % (file_name, rule["alert"])
    assert duration_seconds(rule.get("for", "0s")) > 0, \
        "%s %s: needs a for: duration, or one bad scrape pages someone" % (file_name, rule["alert"])


def _selector_matches(selector, series_names):
    if selector.get("name"):
        return selector["name"] in series_names
    patterns = [m["value"] for m in selector.get("name_matchers", []) if m["type"] == "=~"]
    return any(re.fullmatch(p, name) for p in patterns for name in series_names)


def _series_name(series):
    return re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)", series).group(1)


def test_every_alert_fires_in_a_test_and_stays_silent_on_healthy_series(prometheus_tools):
    all_rules = [rule for _, rule in rules()]
    alerts = [r for r in all_rules if "alert" in r]
    recorded = {r["record"]: r["expr"] for r in all_rules if "record" in r}
    parsed = prometheus_tools.selectors([r["expr"] for r in alerts] + list(recorded.values()))
    assert not [p["error"] for p in parsed if p.get("error")], parsed
    recorded_selectors = dict(zip(recorded, parsed[len(alerts):]))

    def inputs(selectors):
        # A recorded name stands for the series its recording rule reads.
        out = []
        for selector in selectors:
            if selector.get("name") in recorded_selectors:
                out.extend(recorded_selectors[selector["name"]]["selectors"])
            else:
                out.append(selector)
        return out

    fires, silent = {}, {}
    for path in rule_test_files():
        for test in load_yaml(path)["tests"]:
            names = {_series_name(s["series"]) for s in test.get("input_series", [])}
            for case in test.get("alert_rule_test", []):
                where = "%s: %s at %s" % (os.path.basename(path), test["name"], case["eval_time"])
                if case.get("exp_alerts"):
                    fires.setdefault(case["alertname"], []).append(where)
                else:
                    silent.setdefault(case["alertname"], []).append((where, duration_seconds(case["eval_time"]), names))

    problems = []
    for rule, parsed_rule in zip(alerts, parsed[:len(alerts)]):
        name = rule["alert"]
        if name not in fires:
            problems.append("%s: no unit test makes it fire" % name)
        needed = inputs(parsed_rule["selectors"])
        proving = [where for where, at, names in silent.get(name, [])
                   if at >= duration_seconds(rule["for"]) and all(_selector_matches(s, names) for s in needed)]
        if not proving:
            problems.append("%s: no unit test expects it silent, past its for: %s, on series that include %s"
                            % (name, rule["for"], sorted(s.get("name") or s["text"] for s in needed)))
    assert not problems, "\n".join(problems)
