"""The Prometheus configuration the monitoring role renders, as the real promtool reads it.

`promtool check config` (lint on every check, fatal) on prometheus.yml of every rendered variant
(tests/render: dev, stage, prod, prod from a mirror), with the rule files of the prometheus-rules
ConfigMap where the config's rule_files glob finds them: what the pod loads at start. Whether the
discovery finds the stack's pods with the role's own account is tests/integration's
test_prometheus_discovery_on_cluster.py.
"""

import os
import sys

import pytest
import yaml

from monitoring_support import rendered_prometheus, rule_files

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "render"))
from render_support import VARIANTS, rendered  # noqa: E402  pylint: disable=wrong-import-position


def monitoring_config_maps(variant):
    info = rendered()[variant].get("monitoring")
    assert info is not None, "the %s variant renders no monitoring role" % variant
    assert not info["error"], info["error"]
    with open(os.path.join(info["dir"], "prometheus.yaml"), encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d and d["kind"] == "ConfigMap"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_promtool_checks_the_rendered_configuration_and_its_rules(prometheus_tools, variant, tmp_path):
    path, config = rendered_prometheus(monitoring_config_maps(variant), tmp_path)
    run = prometheus_tools.run("promtool", "check", "config", "--lint=all", "--lint-fatal", path)
    assert run.returncode == 0, "promtool check config (%s):\n%s%s" % (variant, run.stdout, run.stderr)
    assert "SUCCESS: %d rule files found" % len(rule_files()) in run.stdout, run.stdout
    assert [job["job_name"] for job in config["scrape_configs"]], config


def test_promtool_check_config_fails_on_a_broken_configuration(prometheus_tools, tmp_path):
    """The check can fail: a scrape timeout above the interval, which Prometheus refuses to load."""
    path, config = rendered_prometheus(monitoring_config_maps("dev"), tmp_path)
    config["scrape_configs"][0].update(scrape_interval="10s", scrape_timeout="20s")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    run = prometheus_tools.run("promtool", "check", "config", path)
    assert run.returncode != 0 and "scrape timeout greater than scrape interval" in run.stdout + run.stderr, \
        run.stdout + run.stderr
