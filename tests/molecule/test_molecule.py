"""Molecule scenarios, run from pytest so `make test` has one runner and one closing line.

Each scenario converges site.yml on a simulated cluster, checks idempotence (changed=0), verifies
and tears down. Molecule's own exit code decides.

The cluster is this module's own (`bigdata-sim-molecule`, started once, removed at the end), not
the session's: each scenario's create step reshapes the cluster's nodes to its inventory (prod: 6
nodes in 3 zones), which the other tests of the session's cluster must not see, and on its own
cluster Molecule is a unit of work that runs beside them under `make test`'s xdist workers
(tests/conftest.py) instead of after them.
"""

import os
import subprocess
import sys

import pytest

from helpers import REPO, simulated_cluster

VENV_BIN = os.path.dirname(sys.executable)


def failure_excerpt(proc):
    """The first failed task (what went wrong) and the end of the run (which step molecule was in)."""
    output = proc.stdout + proc.stderr
    first = min((i for i in (output.find("fatal: ["), output.find("FAILED!")) if i >= 0), default=-1)
    head = output[max(first - 1500, 0):first + 4000] + "\n[...]\n" if first >= 0 else ""
    return head + output[-4000:]


@pytest.fixture(scope="module")
def molecule_kubeconfig():
    with simulated_cluster("bigdata-sim-molecule") as kubeconfig:
        yield kubeconfig


@pytest.mark.parametrize("scenario", ["default", "prod"])
def test_molecule_scenario(molecule_kubeconfig, scenario):
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=molecule_kubeconfig, ANSIBLE_NOCOLOR="1",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "-s", scenario],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "molecule test -s %s failed:\n%s" % (scenario, failure_excerpt(proc))
