"""Molecule scenarios, run from pytest so `make test` has one runner and one closing line.

Each scenario converges site.yml on the simulated cluster (named by BIGDATA_TEST_KUBECONFIG),
checks idempotence (changed=0), verifies and tears down. Molecule's own exit code decides.
"""

import os
import subprocess
import sys

import pytest

from helpers import REPO, run_playbook

VENV_BIN = os.path.dirname(sys.executable)


def failure_excerpt(proc):
    """The first failed task (what went wrong) and the end of the run (which step molecule was in)."""
    output = proc.stdout + proc.stderr
    first = min((i for i in (output.find("fatal: ["), output.find("FAILED!")) if i >= 0), default=-1)
    head = output[max(first - 1500, 0):first + 4000] + "\n[...]\n" if first >= 0 else ""
    return head + output[-4000:]


@pytest.mark.parametrize("scenario,inventory", [("default", "dev"), ("prod", "prod")])
def test_molecule_scenario(sim_kubeconfig, scenario, inventory):
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=sim_kubeconfig, ANSIBLE_NOCOLOR="1",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    try:
        proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "-s", scenario],
                              cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, "molecule test -s %s failed:\n%s" % (scenario, failure_excerpt(proc))
    finally:
        if inventory != "dev":
            # The scenario reshaped the shared simulated cluster; give later tests dev's nodes back.
            run_playbook("playbooks/simcluster.yml", "-i", "inventories/dev", check=True)
