"""The HDFS configuration the hdfs role renders boots a real namenode and datanode.

The rendered hdfs-config files and the StatefulSets' start scripts run unchanged (podsim.py says
how a pod is stood in for, hdfs_sim.py lists the few machine-specific overrides), on the Hadoop
release of hdfs_image_tag from Maven Central.
"""

import json
import os
import re

import yaml

from daemon_support import REPO, wait_until
from hdfs_sim import HdfsCluster, xml_properties
from kafka_sim import load_health, parse_properties


def _expected(inv, name):
    """An hdfs_* setting as the role sees it: the inventory's value, else the role default."""
    if name in inv:
        return inv[name]
    with open(os.path.join(REPO, "roles", "hdfs", "defaults", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)[name]


def _wait_healthy(hdfs, health, min_datanodes, daemons, timeout=180):
    """Poll the NameNode JMX the way bigdata.stack.wait_ready does (same beans, same parser)."""
    state = {}

    def healthy():
        answers = {}
        for name, _path, query in health.http_checks("hdfs"):
            status, _headers, body = hdfs.jmx(query[0][1])
            answers[name] = (status, body.decode("utf-8", "replace"))
        state["result"] = health.interpret("hdfs", answers, {"min_datanodes": min_datanodes})
        return state["result"]["ok"] and state["result"]
    try:
        return wait_until(healthy, "HDFS out of safe mode with %d live datanodes" % min_datanodes,
                          timeout, daemons=daemons, interval=2)
    except AssertionError as exc:
        raise AssertionError("%s\nlast health: %s" % (exc, state.get("result")))


def _version_file(hdfs):
    """The namenode's current/VERSION (written by the format) as a dict, or None."""
    name_dir = hdfs.namenode().volume("/data/namenode")
    path = os.path.join(name_dir, "name", "current", "VERSION")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return parse_properties(handle.read())


def _read_log(daemon):
    with open(daemon.log_path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def test_dev_namenode_formats_once_and_data_survives_a_restart(render, inventory_vars,
                                                               hadoop_classpath, daemons, tmp_path):
    inv = inventory_vars("dev")
    docs = render("dev", "hdfs")
    hdfs = HdfsCluster(docs, inv["bigdata_namespace"], hadoop_classpath, str(tmp_path))
    replicas = hdfs.datanode_sts["spec"]["replicas"]
    assert replicas == _expected(inv, "hdfs_datanode_replicas")
    cluster_id = _expected(inv, "hdfs_cluster_id")
    health = load_health()

    # First start on empty volumes: the start script formats the namenode.
    first_nn = daemons.add(hdfs.namenode().start(log_name="first-start.log"))
    dns = [daemons.add(hdfs.datanode(i).start(log_name="first-start.log")) for i in range(replicas)]
    result = _wait_healthy(hdfs, health, replicas, [first_nn] + dns)
    assert result["cluster_id"] == cluster_id, result
    assert result["live_datanodes"] == replicas
    assert "holds no namespace yet: formatting it" in _read_log(first_nn)
    version = _version_file(hdfs)
    assert version and version["clusterID"] == cluster_id, version

    # WebHDFS: the namenode redirects the write to a datanode by its registered host name (the
    # pod's name through the headless service), where the bytes go.
    payload = os.urandom(3 * 1024 * 1024 + 7)
    path = "/daemons-test/round-trip.bin"
    location, (status, _h, body) = hdfs.webhdfs("PUT", path, "CREATE", body=payload, overwrite="true")
    assert status == 201, (status, body[:500])
    assert re.match(r"^http://hdfs-datanode-\d+\.hdfs-datanode-headless\.%s\.svc:\d+/" %
                    re.escape(inv["bigdata_namespace"]), location or ""), location
    _loc, (status, _h, body) = hdfs.webhdfs("GET", path, "OPEN")
    assert status == 200 and body == payload, (status, len(body))

    # Restart both pods on their volumes (a rollout, a rescheduled pod): no second format, same
    # cluster id, the file is still there.
    for daemon in dns + [first_nn]:
        daemon.stop()
    second_nn = daemons.add(hdfs.namenode().start(log_name="second-start.log"))
    dns = [daemons.add(hdfs.datanode(i).start(log_name="second-start.log")) for i in range(replicas)]
    result = _wait_healthy(hdfs, health, replicas, [second_nn] + dns)
    assert "formatting" not in _read_log(second_nn)
    assert result["cluster_id"] == cluster_id
    assert _version_file(hdfs) == version, "the namenode directory was formatted again"
    _loc, (status, _h, body) = hdfs.webhdfs("GET", path, "OPEN")
    assert status == 200 and body == payload, (status, len(body))
    status, _h, body = hdfs.request("GET", hdfs.namenode_url(
        "/webhdfs/v1/daemons-test?op=LISTSTATUS&user.name=hadoop"))
    listing = json.loads(body)["FileStatuses"]["FileStatus"]
    assert [(f["pathSuffix"], f["length"]) for f in listing] == [("round-trip.bin", len(payload))]


def test_stage_blocks_replicate_to_every_datanode(render, inventory_vars, hadoop_classpath, daemons,
                                                  tmp_path):
    """stage: three datanodes, each registering by its own pod name, hold a replica of every
    block. (256m heaps instead of the rendered 1g: four JVMs on a shared 2-core machine.)"""
    inv = inventory_vars("stage")
    docs = render("stage", "hdfs")
    hdfs = HdfsCluster(docs, inv["bigdata_namespace"], hadoop_classpath, str(tmp_path),
                       heap="-Xms64m -Xmx256m")
    replicas = hdfs.datanode_sts["spec"]["replicas"]
    assert replicas == inv["hdfs_datanode_replicas"] == 3
    assert xml_properties(hdfs.config["hdfs-site.xml"])["dfs.replication"] == "3"

    nn = daemons.add(hdfs.namenode().start())
    dns = [daemons.add(hdfs.datanode(i).start()) for i in range(replicas)]
    result = _wait_healthy(hdfs, load_health(), replicas, [nn] + dns)
    assert result["cluster_id"] == inv["hdfs_cluster_id"]

    payload = os.urandom(1024 * 1024)
    path = "/daemons-test/replicated.bin"
    _loc, (status, _h, body) = hdfs.webhdfs("PUT", path, "CREATE", body=payload)
    assert status == 201, (status, body[:500])
    # The file is complete once one replica is stored (dfs.namenode.replication.min); the other
    # datanodes report theirs a moment later (incremental block reports), so read until all three.
    expected = ["hdfs-datanode-%d.hdfs-datanode-headless.%s.svc" % (i, inv["bigdata_namespace"])
                for i in range(replicas)]

    def block_hosts():
        status, _h, body = hdfs.request("GET", hdfs.namenode_url(
            "/webhdfs/v1%s?op=GETFILEBLOCKLOCATIONS&user.name=hadoop" % path))
        assert status == 200, body[:500]
        blocks = json.loads(body)["BlockLocations"]["BlockLocation"]
        return sorted(h for block in blocks for h in block["hosts"])
    wait_until(lambda: block_hosts() == expected, "a replica of every block on %s" % expected, 60,
               daemons=[nn] + dns)
    assert block_hosts() == expected
    _loc, (status, _h, body) = hdfs.webhdfs("GET", path, "OPEN")
    assert status == 200 and body == payload


def test_the_node_agent_needs_none_of_the_machine_overrides(render, inventory_vars, tmp_path):
    """The simulated cluster's node agent (roles/simcluster/files/runtime/agent.py) runs the same
    rendered pods, each in a network namespace with its own IP: its sandbox gives the daemons the
    rendered files with only the paths moved into the pod's directories; the ports and bind
    addresses machine_overrides changes here (every pod on 127.0.0.1) stay as rendered."""
    import agent  # on sys.path through daemon_support (podsim.py's directory)

    inv = inventory_vars("dev")
    namespace = inv["bigdata_namespace"]
    docs = render("dev", "hdfs")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "hdfs-config")["data"]
    here = HdfsCluster(docs, namespace, "/nonexistent.jar", str(tmp_path / "here"))

    class Api:
        @staticmethod
        def configmap(ns, name):
            assert (ns, name) == (namespace, "hdfs-config")
            return {"data": config}

    images = ["apache/kafka", "apache/hadoop"]
    fake = type("Agent", (), dict(
        api=Api(), state_dir=str(tmp_path / "agent"),
        matcher=agent.ImageMatcher(r"^(.+/)?(%s)(:[^/@]*)?(@.*)?$" % "|".join(re.escape(i) for i in images)),
        image_files=lambda self, image: {"/opt/hadoop/bin": agent.IMAGES["apache/hadoop"]["write_bin"](
            str(tmp_path / "agent" / "bin"), "/nonexistent.jar")}))()
    for sts, data_dir in ((here.namenode_sts, "/data/namenode"), (here.datanode_sts, "/data/datanode")):
        name = sts["metadata"]["name"] + "-0"
        spec = dict(sts["spec"]["template"]["spec"], nodeName="kwok-node-0", hostname=name,
                    subdomain=sts["spec"]["serviceName"])
        # The StatefulSet controller adds the claim of each volumeClaimTemplate as a volume.
        spec["volumes"] = spec["volumes"] + [{"name": "data", "persistentVolumeClaim": {"claimName": "data-" + name}}]
        runner = agent.PodRunner(fake, {"metadata": {"name": name, "namespace": namespace, "uid": "u-" + name},
                                        "spec": spec})
        runner.ip = "10.213.0.7"
        box = runner.sandbox(spec["containers"][0]["name"])
        assert fake.matcher.owned(runner.pod)
        conf = box.env["HADOOP_CONF_DIR"]
        assert conf.startswith(runner.root + os.sep) and conf != "/opt/hadoop/etc/hadoop", conf
        assert sorted(os.listdir(conf)) == ["core-site.xml", "hdfs-site.xml", "log4j.properties"]
        assert box.env["POD_NAME"] == name
        assert box.command[:2] == ["/bin/sh", "-c"] and os.path.join(str(tmp_path / "agent" / "bin"), "hdfs") in box.command[2]
        moved = {}
        for key in ("core-site.xml", "hdfs-site.xml"):
            with open(os.path.join(conf, key), encoding="utf-8") as handle:
                local = xml_properties(handle.read())
            rendered = xml_properties(config[key])
            assert set(local) == set(rendered)
            moved.update({p: (rendered[p], local[p]) for p in rendered if local[p] != rendered[p]})
            # What tests/daemons must change for the same file: ports and bind addresses.
            overridden = xml_properties(here.machine_overrides()(key, config[key]))
            assert {p for p in rendered if overridden[p] != rendered[p]} - set(moved), key
        # Only the paths the pod mounts moved, each into the pod's own directory for its mount (the
        # other daemon's data directory is not mounted here and not used by this daemon).
        own = "dfs.namenode.name.dir" if data_dir == "/data/namenode" else "dfs.datanode.data.dir"
        assert set(moved) == {"hadoop.tmp.dir", own}, moved
        assert moved["hadoop.tmp.dir"] == ("/tmp/hadoop", os.path.join(box.volume("/tmp"), "hadoop"))
        assert moved[own][1].startswith("file://" + box.volume(data_dir) + os.sep), moved[own]
        # The data directory is the claim's, kept whichever pod mounts it (the agent's claim_dirs).
        assert box.volume(data_dir) == os.path.join(fake.state_dir, "claims", namespace, "data-" + name)
