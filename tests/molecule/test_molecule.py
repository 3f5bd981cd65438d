"""Molecule scenarios, run from pytest so `make test` has one runner and one closing line.

Each scenario converges site.yml on a simulated cluster, checks idempotence (changed=0), verifies
and tears down. Molecule's own exit code decides.

The clusters are this module's own, not the session's: each scenario's create step reshapes the
cluster's nodes to its inventory (prod: 6 nodes in 3 zones), which the other tests of the session's
cluster must not see, and on its own clusters Molecule is a unit of work that runs beside them
under `make test`'s xdist workers (tests/conftest.py) instead of after them.

* dev (scenario default) on `bigdata-sim-molecule-rt`, with the node agent: dev's Kafka and HDFS
  pods run as real processes, so converge waits for their application health (what make up does
  on such a cluster, derived from its marker by tools/select_cluster.py) and verify checks it
  again: a KRaft leader and the brokers joined, HDFS out of safe mode with its datanodes live.
* prod on `bigdata-sim-molecule`, without it: prod's JVMs at prod's heaps (three brokers, three
  controllers, the namenode, three datanodes, ...) would not fit this 2-core, 24 GiB machine beside
  the rest of `make test`; every pod is simulated, and verify says it skips application health.

Each cluster is started once, for its scenario, and removed after it (pytest orders the module's
tests by the fixture's parameter, so the two never run at the same time).
"""

import os
import subprocess
import sys

import pytest

from helpers import REPO, pod_range, simulated_cluster

VENV_BIN = os.path.dirname(sys.executable)


def failure_excerpt(proc):
    """The first failed task (what went wrong) and the end of the run (which step molecule was in)."""
    output = proc.stdout + proc.stderr
    first = min((i for i in (output.find("fatal: ["), output.find("FAILED!")) if i >= 0), default=-1)
    head = output[max(first - 1500, 0):first + 4000] + "\n[...]\n" if first >= 0 else ""
    return head + output[-4000:]


# The node agent's pod IP range: one of this module's own (make up's cluster uses 10.213, the
# runtime test 10.214 and 10.215, at the same time in CI).
RUNTIME_CIDR = str(pod_range("10.212.0.0/24", "BIGDATA_TEST_MOLECULE_RUNTIME_CIDR"))
CLUSTERS = {
    "default": ("bigdata-sim-molecule-rt", {"simcluster_runtime": True, "simcluster_runtime_cidr": RUNTIME_CIDR}),
    "prod": ("bigdata-sim-molecule", {}),
}


@pytest.fixture(scope="module", params=sorted(CLUSTERS))
def scenario_cluster(request):
    """(scenario, kubeconfig of its simulated cluster), the cluster started once and removed after."""
    name, variables = CLUSTERS[request.param]
    with simulated_cluster(name, **variables) as kubeconfig:
        yield request.param, kubeconfig


def test_molecule_scenario(scenario_cluster):
    scenario, kubeconfig = scenario_cluster
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR="1",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "-s", scenario],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "molecule test -s %s failed:\n%s" % (scenario, failure_excerpt(proc))
    # What verify checked (verify.yml): application health where the node agent runs the pods,
    # and a plain word that it did not elsewhere.
    output = proc.stdout + proc.stderr
    health = task_output(output, "Check the application health of what runs for real")
    if scenario == "default":
        assert "Application health NOT checked" not in output, output[-4000:]
        assert ["kafka", "hdfs"] == [c for c in ("kafka", "hdfs") if "ok: [localhost] => (item=%s)" % c in health], health
    else:
        assert "Application health NOT checked" in output and "ok: [localhost]" not in health, health


def task_output(output, task):
    """What Ansible printed for the task of that name (its last run), up to the next task or play."""
    start = output.rfind("TASK [%s]" % task)
    if start < 0:
        return ""
    ends = [i for i in (output.find("TASK [", start + 1), output.find("PLAY ", start + 1)) if i >= 0]
    return output[start:min(ends) if ends else len(output)]
