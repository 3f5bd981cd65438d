"""Helpers for tests that run playbooks against the simulated cluster."""

import time

from playbook import REPO, run as run_ansible  # noqa: F401 (REPO: the tests import it from here)


def run_playbook(playbook, *args, kubeconfig=None, check=False):
    """Run ansible-playbook from the repository root (tests/playbook.py); returns its PlaybookRun.

    kubeconfig: given to the Kubernetes modules as K8S_AUTH_KUBECONFIG. check: fail the test when
    the playbook fails (not Ansible's check mode: pass "--check" for that).
    """
    run = run_ansible(playbook, *args, env={"K8S_AUTH_KUBECONFIG": kubeconfig} if kubeconfig else None)
    if check and run.returncode != 0:
        raise AssertionError("playbook failed:\n" + run.report())
    return run


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


# JVM options for a fast start on 2 shared cores, for the JVMs tests start that live seconds (the
# same as every JVM of tests/daemons). Never for measurements: tools/ do not use them.
FAST_START_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
