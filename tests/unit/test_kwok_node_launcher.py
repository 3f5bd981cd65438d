"""roles/simcluster/templates/kwok-node.sh.j2: kwok of a cluster with the node agent runs in a mount
namespace of its own, and `kubectl exec` of an agent's pod (wait_ready's Kafka and HDFS health
checks) enters, from there, a network namespace the agent adds later.

On a fresh machine whose / is a private mount (a container), /run/netns is a plain directory until
the first `ip netns add`, which makes it a shared mount in the machine's namespace only. A kwok
started before that never saw a pod's namespace: every exec failed with "setting the network
namespace ... failed: Invalid argument" (exit 255), and wait_ready timed out (the CI run of
2026-12-03: Molecule's default scenario and the process runtime test, on two clusters started
before any network namespace existed).

The test renders the launcher with a stand-in for kwok, runs it in a private mount namespace of the
test's own where /run/netns is unmounted (a fresh machine, without touching the machine's), adds a
network namespace after the launcher started, and asks the stand-in to enter it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import jinja2
import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "roles" / "simcluster" / "templates" / "kwok-node.sh.j2"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="mount and network namespaces need root, unshare and ip (so does the node agent)")


def render(tmp_path, bin_dir):
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(TEMPLATE.read_text()).render(
        ansible_managed="test", simcluster_name="launcher-test", simcluster_runtime_images=["apache/kafka"],
        simcluster_runtime_dir=str(tmp_path / "runtime"), simcluster_bin_dir=str(bin_dir))
    launcher = tmp_path / "kwok-node.sh"
    launcher.write_text(text)
    launcher.chmod(0o755)
    return launcher


def test_kwok_enters_a_network_namespace_added_after_it_started_on_a_fresh_machine(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "runtime" / "exec-bin" / "kafka").mkdir(parents=True)
    netns = "bds-launcher-test-" + uuid.uuid4().hex[:6]
    go, result = tmp_path / "go", tmp_path / "result"
    # The stand-in for kwok: waits until the namespace exists, then does what an exec does.
    kwok = bin_dir / "kwok"
    kwok.write_text(textwrap.dedent("""\
        #!/bin/sh
        while [ ! -e %(go)s ]; do sleep 0.05; done
        test -d /opt/kafka/bin || { echo "no /opt/kafka/bin" > %(result)s; exit 0; }
        ip netns exec %(netns)s true 2>%(result)s.err
        echo "rc=$?" > %(result)s
        """ % {"go": go, "result": result, "netns": netns}))
    kwok.chmod(0o755)
    launcher = render(tmp_path, bin_dir)
    script = textwrap.dedent("""\
        umount -l /run/netns 2>/dev/null
        if findmnt -n /run/netns >/dev/null; then echo "cannot make a fresh /run/netns" >&2; exit 3; fi
        %(launcher)s & kwok=$!
        sleep 0.5
        ip netns add %(netns)s || exit 4
        touch %(go)s
        wait $kwok
        ip netns del %(netns)s
        """ % {"launcher": launcher, "netns": netns, "go": go})
    try:
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    err = (tmp_path / "result.err").read_text() if (tmp_path / "result.err").exists() else ""
    assert result.read_text().strip() == "rc=0", err
