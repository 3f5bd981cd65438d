# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The vm.max_map_count check of the Elasticsearch pods, as rendered for every inventory.

With elasticsearch_allow_mmap (stage, prod) every node pool has the unprivileged init container
check-max-map-count; without it (dev) none. Its command is run here as rendered, with only the
paths swapped for files of the test (a fake /proc/sys/vm/max_map_count and termination log), so
what is tested is what the pod runs. The restricted policy of its securityContext is checked by
test_render.py's test_pod_security_restricted for every container, init containers included, and
by the API server in tests/integration/test_elasticsearch_day2_on_cluster.py.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess

import pytest

from render_support import REPO, documents, inventory_vars

VARIANTS = ("dev", "stage", "prod", "prod-mirror")
INVENTORY = {"dev": "dev", "stage": "stage", "prod": "prod", "prod-mirror": "prod"}


def statefulsets(variant):
    found = [d for v, r, _f, d in documents()
             if v == variant and r == "elasticsearch" and d.get("kind") == "StatefulSet"]
    assert found, "no Elasticsearch StatefulSet rendered for %s" % variant
    return found


def check_container(statefulset):
    init = statefulset["spec"]["template"]["spec"].get("initContainers") or []
    return [c for c in init if c["name"] == "check-max-map-count"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_check_only_when_mmap_is_allowed(variant):
    allow_mmap = inventory_vars(INVENTORY[variant]).get("elasticsearch_allow_mmap", False)
    for statefulset in statefulsets(variant):
        found = check_container(statefulset)
        assert len(found) == (1 if allow_mmap else 0), statefulset["metadata"]["name"]
        if not found:
            continue
        container = found[0]
        main = statefulset["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == main["image"]
        assert container["command"][:2] == ["sh", "-c"]
        assert container["command"][4:] == ["/proc/sys/vm/max_map_count", "262144", "/dev/termination-log"]
        assert container["terminationMessagePolicy"] == "File"
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in context and not container.get("volumeMounts")


SHELLS = [shell for shell in ("sh", "bash") if shutil.which(shell)]


def run_check(command, tmp_path, value, shell="sh", sysctl=None):
    """The rendered command with the sysctl file and the termination log in tmp_path."""
    if sysctl is None:
        sysctl = tmp_path / "max_map_count"
        if value is not None:
            sysctl.write_text(value)
    log = tmp_path / "termination-log"
    argv = [shell] + command[1:4] + [str(sysctl), command[5], str(log)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return proc, log.read_text() if log.exists() else None


@pytest.fixture(scope="module")
def command():
    return check_container(statefulsets("prod")[0])[0]["command"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("value", ["262144\n", "1048576\n", "2147483642\n"])
def test_check_passes_at_or_above_the_minimum(command, tmp_path, value, shell):
    proc, log = run_check(command, tmp_path, value, shell)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "vm.max_map_count=%s on this node (at least 262144): mmap allowed\n" % value.strip()
    assert log is None


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("value, says", [
    ("65530\n", "vm.max_map_count=65530 on this node, below the 262144 elasticsearch_allow_mmap: true needs."),
    ("262143\n", "vm.max_map_count=262143 on this node, below the 262144"),
    ("", "vm.max_map_count unreadable in "),
    ("not-a-number\n", "vm.max_map_count unreadable in "),
    (None, "vm.max_map_count unreadable in "),
])
def test_check_fails_below_the_minimum_with_the_fix(command, tmp_path, value, says, shell):
    proc, log = run_check(command, tmp_path, value, shell)
    assert proc.returncode == 1
    assert log.startswith(says)
    for fix in ("sysctl -w vm.max_map_count=262144", "/etc/sysctl.d", "DaemonSet", "Node Tuning Operator",
                "elasticsearch_allow_mmap: false"):
        assert fix in log, fix
    assert proc.stderr == log
    # One line that wait_ready shows whole: it keeps the first line of a last state, 300 characters
    # (counted with the pod's path in place of the test's).
    in_the_pod = log.replace(str(tmp_path / "max_map_count"), "/proc/sys/vm/max_map_count")
    assert in_the_pod.count("\n") == 1 and len(in_the_pod) < 300, in_the_pod


@pytest.mark.parametrize("shell", SHELLS)
def test_check_reads_the_real_sysctl_file(command, tmp_path, shell):
    """/proc/sys files answer only the first read(2): the script must see the whole number."""
    real = pathlib.Path("/proc/sys/vm/max_map_count")
    if not real.exists():
        pytest.fail("this test needs Linux's /proc/sys/vm/max_map_count")
    value = int(real.read_text())
    proc, log = run_check(command, tmp_path, None, shell, sysctl=real)
    if value >= 262144:
        assert (proc.returncode, log) == (0, None), proc.stderr
        assert "vm.max_map_count=%d on this node" % value in proc.stdout
    else:
        assert proc.returncode == 1
        assert log.startswith("vm.max_map_count=%d on this node, below the 262144" % value), log


def test_the_wait_shows_the_message(command, tmp_path):
    """wait_ready's verdict on a pod whose check failed carries the fix."""
    waiter = load_waiter()
    _proc, log = run_check(command, tmp_path, "65530\n")
    pod = {"metadata": {"name": "elasticsearch-data-0"}, "status": {"phase": "Pending", "initContainerStatuses": [{
        "name": "check-max-map-count", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "message": log}}}]}}
    verdict = waiter.pod_fatal(pod)
    assert "check-max-map-count is in CrashLoopBackOff" in verdict
    assert verdict.endswith(log.strip())


def load_waiter():
    spec = importlib.util.spec_from_file_location("bigdata_stack_waiter", REPO / "plugins/module_utils/waiter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
