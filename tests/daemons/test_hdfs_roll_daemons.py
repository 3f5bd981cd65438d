"""The hdfs role's datanode roll (module_utils/rolling.py, gate `hdfs`) on real daemons, under reads.

stage's HDFS (a namenode, three datanodes, dfs.replication 3) runs on this machine as in
test_hdfs_daemons.py. A file of several blocks is read in a loop by the real HDFS client
(`hdfs dfs -cat`, which goes to the datanodes for the data and tries another replica when one
fails) while every datanode is rolled by bigdata.stack.rolling_update's own Roller and HdfsGate,
the gate reading the NameNode's JMX the way the module does (health.http_checks, the same beans):

- no read fails and every read returns the file's bytes;
- no block is lost: afterwards the NameNode counts no missing and no under-replicated blocks, and
  every block has a replica on each of the three datanodes again.

A pod's delete is a SIGTERM to its process group (what the kubelet sends), then its unchanged
start script again on the same volume. Ready is the rendered readinessProbe: its exec command (curl
of the datanode's own JMX: ActorState RUNNING, i.e. registered with the NameNode), run against the
daemon's HTTP port; a restarted datanode must not be Ready before it has registered.
"""

import json
import os
import sys
import threading
import time
from urllib.parse import urlencode

import pytest

from daemon_support import REPO, DaemonGroup, exec_probe, port_open, wait_probe, wait_until
from hdfs_sim import HdfsCluster
from kafka_sim import load_health
from test_hdfs_daemons import _wait_healthy

sys.path.insert(0, os.path.join(REPO, "collections"))
from ansible_collections.bigdata.stack.plugins.module_utils import rolling  # noqa: E402

PATH = "/roll-test/blocks.txt"
BLOCK = 1024 * 1024  # dfs.namenode.fs-limits.min-block-size: four blocks of the smallest size HDFS takes


@pytest.fixture(scope="module")
def stage(render, inventory_vars, hadoop_classpath, tmp_path_factory):
    inv = inventory_vars("stage")
    hdfs = HdfsCluster(render("stage", "hdfs"), inv["bigdata_namespace"], hadoop_classpath,
                       str(tmp_path_factory.mktemp("hdfs-roll")), heap="-Xms64m -Xmx256m")
    group = DaemonGroup()
    try:
        pods = {"hdfs-namenode-0": group.add(hdfs.namenode().start())}
        for ordinal in range(hdfs.datanode_sts["spec"]["replicas"]):
            pods["hdfs-datanode-%d" % ordinal] = group.add(hdfs.datanode(ordinal).start())
        _wait_healthy(hdfs, load_health(), inv["hdfs_datanode_replicas"], list(pods.values()))
        yield inv, hdfs, group, pods
    finally:
        group.stop_all()


class DatanodePods:
    """The calls rolling_update makes to the cluster, answered by the daemons."""

    def __init__(self, hdfs, group, pods):
        self.hdfs = hdfs
        self.group = group
        self.pods = pods
        self.restarts = 0
        self.ready_before_registered = []  # probes that found the data port open, not yet registered

    def probe_command(self, name):
        """The rendered readinessProbe's exec command, its localhost:<http port> this datanode's HTTP
        port here (the pods share 127.0.0.1, each on ports of its own)."""
        container = self.hdfs.datanode_sts["spec"]["template"]["spec"]["containers"][0]
        rendered = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        ports = self.hdfs.datanode_ports[rolling.pod_ordinal({"metadata": {"name": name}})]
        command = container["readinessProbe"]["exec"]["command"]
        assert any("localhost:%d/jmx" % rendered in part for part in command), command
        return [part.replace("localhost:%d/" % rendered, "127.0.0.1:%d/" % ports["http"]) for part in command]

    def list_pods(self):
        return [{"metadata": {"name": name, "labels": {"app.kubernetes.io/component": "datanode"}}}
                for name in sorted(self.pods) if name.startswith("hdfs-datanode-")]

    def delete_pod(self, pod):
        name = rolling.pod_name(pod)
        self.pods[name].stop()
        self.restarts += 1
        self.pods[name] = self.group.replace(self.pods[name], self.hdfs.datanode(rolling.pod_ordinal(pod)).start(
            log_name="restart-%d.log" % self.restarts))

    def wait_ready(self, pod, timeout):
        name = rolling.pod_name(pod)
        command = self.probe_command(name)
        data_port = self.hdfs.datanode_ports[rolling.pod_ordinal(pod)]["data"]

        def probe():
            if exec_probe(command):
                return True
            if port_open(data_port):  # what the tcpSocket probe said before: listening, not registered
                self.ready_before_registered.append(name)
            return False
        return wait_probe(self.pods[name], probe, timeout)

    def namenode_get(self, path, query):
        """http_get(path, query) of the HdfsGate: the NameNode's HTTP port, as the module's curl reads it."""
        status, _headers, body = self.hdfs.request("GET", self.hdfs.namenode_url("/" + path.lstrip("/") + "?" + urlencode(query)))
        return status, body.decode("utf-8", "replace")


class Reader(threading.Thread):
    """`hdfs dfs -cat` of the file, again and again, until stopped; every answer recorded."""

    def __init__(self, hdfs, expected):
        super().__init__(daemon=True)
        self.hdfs = hdfs
        self.expected = expected
        self.reads = []  # (started, seconds, ok, detail)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            started = time.monotonic()
            proc = self.hdfs.client("dfs", "-cat", PATH)
            ok = proc.returncode == 0 and proc.stdout == self.expected
            detail = "" if ok else "exit %s, %d of %d bytes, %s" % (proc.returncode, len(proc.stdout),
                                                                    len(self.expected), proc.stderr[-800:])
            self.reads.append((started, time.monotonic() - started, ok, detail))

    def stop(self):
        self.halt.set()
        self.join(300)
        return self.reads


def block_replicas(hdfs):
    """{block offset: sorted datanode hosts} from the NameNode (GETFILEBLOCKLOCATIONS)."""
    status, _h, body = hdfs.request("GET", hdfs.namenode_url(
        "/webhdfs/v1%s?op=GETFILEBLOCKLOCATIONS&user.name=hadoop" % PATH))
    assert status == 200, body[:500]
    return {b["offset"]: sorted(b["hosts"]) for b in json.loads(body)["BlockLocations"]["BlockLocation"]}


def test_gated_datanode_roll_fails_no_read_and_loses_no_block(stage):
    inv, hdfs, group, pods = stage
    expected_hosts = ["hdfs-datanode-%d.hdfs-datanode-headless.%s.svc" % (i, inv["bigdata_namespace"])
                      for i in range(inv["hdfs_datanode_replicas"])]
    text = "".join("%09d\n" % n for n in range(4 * BLOCK // 10))  # 4 MB: four blocks
    _loc, (status, _h, body) = hdfs.webhdfs("PUT", PATH, "CREATE", body=text.encode(), blocksize=BLOCK, replication=3)
    assert status == 201, (status, body[:500])
    wait_until(lambda: all(h == expected_hosts for h in block_replicas(hdfs).values()),
               "a replica of every block on %s" % expected_hosts, 120, daemons=list(pods.values()))
    blocks = block_replicas(hdfs)
    assert len(blocks) == 4, blocks

    io = DatanodePods(hdfs, group, pods)
    reader = Reader(hdfs, text)
    reader.start()
    try:
        wait_until(lambda: len(reader.reads) >= 2, "the reader reading", 180, daemons=list(pods.values()))
        rolled_from = time.monotonic()
        steps = rolling.Roller(rolling.HdfsGate(io.namenode_get), io.delete_pod, io.wait_ready,
                               timeout=300, interval=2).run(io.list_pods())
        rolled_until = time.monotonic()
        time.sleep(5)  # keep reading a little after the last restart
    finally:
        reads = reader.stop()

    assert [s.pod for s in steps] == ["hdfs-datanode-2", "hdfs-datanode-1", "hdfs-datanode-0"]
    assert io.restarts == 3
    print("datanodes listening on their data port but not yet registered (the old tcpSocket probe would "
          "have called them Ready):", sorted(set(io.ready_before_registered)))
    during = [r for r in reads if r[0] <= rolled_until and r[0] + r[1] >= rolled_from]  # in progress during the roll
    print("gated datanode roll:", [s.as_dict() for s in steps], "reads:", len(reads), "during the roll:", len(during))
    assert len(during) >= 3, "too few reads during the roll to mean anything: %d" % len(during)
    failed = [r for r in reads if not r[2]]
    assert not failed, "%d of %d reads failed, e.g. %s" % (len(failed), len(reads), failed[0][3])

    # No block lost: the NameNode's own counters (FSNamesystem, the metrics source of the block
    # counts), and every replica back where it was.
    status, body = io.namenode_get("/jmx", {"qry": "Hadoop:service=NameNode,name=FSNamesystem"})
    assert status == 200, body[:500]
    counts = json.loads(body)["beans"][0]
    assert (counts["MissingBlocks"], counts["UnderReplicatedBlocks"], counts["CorruptBlocks"]) == (0, 0, 0), counts
    wait_until(lambda: block_replicas(hdfs) == {b: expected_hosts for b in blocks},
               "every block back on %s" % expected_hosts, 120, daemons=list(pods.values()))
