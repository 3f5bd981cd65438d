"""Fixtures of the monitoring tests: the real promtool and prometheus, built when missing.

The binaries come from tools/build_prometheus.sh (built from the Go module proxy once per version,
cached under $BIGDATA_CACHE_DIR/prometheus/<version>/bin), as does promcheck, this directory's Go
helper (promcheck/main.go: Prometheus's own PromQL parser and the Grafana Foundation SDK's strict
dashboard decoder). No cluster is needed.
"""

import os
import subprocess
import time

import pytest

from monitoring_support import BUILD_SCRIPT, PrometheusTools

# A cold build compiles Prometheus and its dependencies: about 10 minutes on 2 cores.
BUILD_TIMEOUT = 3600


@pytest.fixture(scope="session")
def prometheus_tools():
    """promtool, prometheus and promcheck, built by tools/build_prometheus.sh when missing."""
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
