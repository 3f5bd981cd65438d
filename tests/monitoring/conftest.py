"""Fixtures of the monitoring tests: the real promtool and prometheus, built when missing.

The binaries come from tools/build_prometheus.sh (built from the Go module proxy once per version,
cached under $BIGDATA_CACHE_DIR/prometheus/<version>/bin), as does promcheck, this directory's Go
helper (promcheck/main.go: Prometheus's own PromQL parser and the Grafana Foundation SDK's strict
dashboard decoder). No cluster is needed.
"""

import pytest

from monitoring_support import build_tools


@pytest.fixture(scope="session")
def prometheus_tools():
    """promtool, prometheus and promcheck, built by tools/build_prometheus.sh when missing."""
    return build_tools()
