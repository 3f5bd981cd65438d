"""Helpers for tests that run playbooks against the simulated cluster."""

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def run_playbook(playbook, *args, kubeconfig=None, check=False):
    """Run ansible-playbook from the repository root; returns the CompletedProcess."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    if kubeconfig:
        env["K8S_AUTH_KUBECONFIG"] = kubeconfig
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), playbook, *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (rc=%s):\n%s\n%s" % (" ".join(cmd), proc.returncode,
                                                             proc.stdout[-6000:], proc.stderr[-3000:]))
    return proc


def recap(output):
    """The numbers of the PLAY RECAP line for localhost, e.g. {'ok': 20, 'changed': 0, ...}."""
    for line in output.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}
    raise AssertionError("no PLAY RECAP line for localhost in:\n" + output[-3000:])


def wait_for(predicate, timeout=60, interval=0.5, what="condition"):
    """Poll predicate until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
