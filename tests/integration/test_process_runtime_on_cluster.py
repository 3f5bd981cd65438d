# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The simulated cluster's node agent (roles/simcluster/files/runtime/agent.py) runs Kafka and HDFS
for real.

* dev's Kafka and HDFS, deployed by site.yml with application health ON for them and off for the
  rest, as `make up` deploys to this cluster (the switches tools/select_cluster.py derives from the
  cluster's marker): wait_ready's KRaft checks
  (kubectl exec of kafka-metadata-quorum.sh and kafka-broker-api-versions.sh) pass against the
  broker process, and its HDFS checks (curl of the NameNode's JMX: safe mode off, the datanode
  live) against the NameNode and DataNode processes, each in its own network namespace with the
  pod IP, listening on the rendered ports; a hung broker or NameNode JVM makes the same wait fail,
  naming the pod; killed, the agent restarts them (restartPolicy Always: restartCount 1, last state
  exit code 137; the NameNode on its volume, not formatted again), after which the wait passes.
* Two pods both listen on 9092, each reached at its own pod IP (no port rewriting), and
  `simcluster_state=absent` leaves no process, network namespace, veth or bridge of the runtime
  (counted, on a cluster of this test's own so that the session's cluster stays up).

The runtime is off by default (simcluster_runtime=false: it needs root, and booting a real broker
for every stack the other tests deploy would cost minutes each), so both tests start a simulated
cluster of their own with it on.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest
from kubernetes import client, config

from helpers import CACHE, REPO, cluster_name, kubectl, pod_range, run_playbook, simulated_cluster, wait_for

sys.path.insert(0, os.path.join(REPO, "tools"))
import select_cluster  # noqa: E402  pylint: disable=wrong-import-position
# A range of this module's own, apart from the default (roles/simcluster/defaults/main.yml);
# BIGDATA_TEST_RUNTIME_CIDR gives another, for a second run of this module at the same time on the
# same machine (two bridges with one range would take each other's routes: the agent refuses it).
RUNTIME_CIDR = pod_range("10.215.0.0/24", "BIGDATA_TEST_RUNTIME_CIDR")
SIM_DOWN_CIDR = pod_range("10.214.0.0/24", "BIGDATA_TEST_SIM_DOWN_RUNTIME_CIDR")


def netns_prefix(name):
    """What agent.py names a pod's network namespace: bds-<sha256(cluster)[:6]>-<ns>-<pod>."""
    return "bds-%s-" % hashlib.sha256(name.encode()).hexdigest()[:6]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def site(namespace, kubeconfig, *args, **extra):
    """site.yml with the health switches `make up` gives this cluster: tools/select_cluster.py reads
    what runs for real from the cluster's marker and turns health on for exactly those components
    (bigdata_wait_application_health=false for the rest)."""
    marker = select_cluster.simcluster_marker(kubeconfig)
    real = select_cluster.real_components(marker)
    assert real == ["kafka", "hdfs"], "the node agent's cluster should run Kafka and HDFS for real: %s" % real
    mirror = select_cluster.mirror_arguments(marker, "dev")
    assert mirror, "no Maven mirror for the pods in the marker: %s" % marker
    # Metrics on, as in make up's full profile: the brokers' init container fetches the JMX
    # exporter agent, which the pods can only get from the agent's mirror.
    variables = {"bigdata_namespace": namespace, "bigdata_instance": namespace,
                 "bigdata_components": ["kafka", "hdfs"], "kafka_metrics_enabled": True, "bigdata_wait_timeout": 420}
    variables.update(extra)
    return run_playbook("site.yml", "-i", "inventories/dev", *select_cluster.health_arguments(real), *mirror,
                        "-e", json.dumps(variables), *args, kubeconfig=kubeconfig)


# What each pod the test checks runs: the JVM's main class, the ports it listens on (as rendered).
JVMS = {"kafka-broker-0": ("kafka.Kafka", [9092]),
        "hdfs-namenode-0": ("org.apache.hadoop.hdfs.server.namenode.NameNode", [8020, 9870]),
        "hdfs-datanode-0": ("org.apache.hadoop.hdfs.server.datanode.DataNode", [9866, 9864, 9867])}


def jvm_pid(state_dir, pod):
    """The pod's JVM: the agent's pid file of the pod (the start script execs the JVM)."""
    path = os.path.join(state_dir, "pids", pod.metadata.uid)
    with open(path, encoding="utf-8") as handle:
        pid = int(handle.read())
    main_class = JVMS[pod.metadata.name][0]
    assert main_class in cmdline(pid) and state_dir in cmdline(pid), cmdline(pid)
    return pid


def namenode_jmx(ip, query):
    """A bean of the NameNode's JMX, read from this machine (the bridge reaches every pod IP)."""
    with urllib.request.urlopen("http://%s:9870/jmx?qry=%s" % (ip, query), timeout=10) as response:
        return json.load(response)["beans"][0]


@pytest.fixture
def runtime_kubeconfig():
    """A dev-shaped simulated cluster of the test's own, with the node agent on; removed after the
    test (before the next one counts what is left on the machine)."""
    with simulated_cluster("rt-" + uuid.uuid4().hex[:6], simcluster_runtime=True,
                           simcluster_runtime_cidr=str(RUNTIME_CIDR)) as kubeconfig:
        yield kubeconfig


def test_kafka_and_hdfs_run_as_processes_and_wait_ready_checks_them(runtime_kubeconfig):
    sim_kubeconfig = runtime_kubeconfig
    api_client = config.new_client_from_config(config_file=sim_kubeconfig)
    core = client.CoreV1Api(api_client)
    namespace = "test-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=namespace, labels={"pod-security.kubernetes.io/enforce": "restricted",
                                "pod-security.kubernetes.io/enforce-version": "latest"})))
    state_dir = os.path.join(CACHE, "runtime", cluster_name(sim_kubeconfig))

    deployed = site(namespace, sim_kubeconfig)
    assert deployed.returncode == 0, deployed.report()

    pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    assert set(JVMS) <= set(pods), sorted(pods)
    ips = {name: pods[name].status.pod_ip for name in JVMS}
    assert all(ipaddress.ip_address(ip) in RUNTIME_CIDR for ip in ips.values()), ips
    assert len(set(ips.values())) == len(ips), ips
    for name, (_main_class, ports) in JVMS.items():
        pod = pods[name]
        netns = netns_prefix(cluster_name(sim_kubeconfig)) + "%s-%s" % (namespace, name)
        for port in ports:
            listening = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", "sport", "= :%d" % port],
                                       capture_output=True, text=True, check=True).stdout
            assert "0.0.0.0:%d" % port in listening, (netns, listening)
        pid = jvm_pid(state_dir, pod)
        if name == "kafka-broker-0":
            # The JMX exporter agent its init container fetched through the mirror, loaded.
            assert "-javaagent:" in cmdline(pid) and "jmx_prometheus_javaagent.jar" in cmdline(pid), cmdline(pid)
        assert [(c.status, c.reason) for c in pod.status.conditions if c.type == "bigdata.stack/ProcessRuntime"] == [
            ("True", "NodeAgent")], (name, pod.status.conditions)
    # What wait_ready's HDFS check read is the real NameNode's: out of safe mode, the datanode live
    # under the name it registers with (its pod's name through the headless service).
    info = namenode_jmx(ips["hdfs-namenode-0"], "Hadoop:service=NameNode,name=NameNodeInfo")
    assert info["Safemode"] == "" and info["ClusterId"] == "CID-bigdata-dev", info
    assert [n.split(":")[0] for n in json.loads(info["LiveNodes"])] == [
        "hdfs-datanode-0.hdfs-datanode-headless.%s.svc" % namespace], info["LiveNodes"]
    # Formatted in its pod: the block pool id carries the address the pod's own name resolves to,
    # its pod IP as on a cluster (BP-<random>-<address>-<time>; it carried 127.0.0.1 while the
    # agent's hosts file put the pod's name on the loopback line).
    assert info["BlockPoolId"].split("-")[2] == ips["hdfs-namenode-0"], info["BlockPoolId"]

    # status.yml tells the pods the agent runs from kwok's.
    shown = run_playbook("playbooks/status.yml", "-i", "inventories/dev", "-e", json.dumps(
        {"bigdata_namespace": namespace, "bigdata_instance": namespace}), kubeconfig=sim_kubeconfig)
    assert shown.returncode == 0, shown.report()
    for name in JVMS:
        line = [line for line in shown.stdout.splitlines() if name + " " in line and " node=" in line]
        assert line and line[0].rstrip().rstrip('",').endswith("runs=process"), (name, shown.stdout[-3000:])

    # kubectl logs (kwok's Logs object per pod, the agent's log file per container start) shows
    # what the processes printed, init containers too.
    assert "Kafka Server started" in core.read_namespaced_pod_log("kafka-broker-0", namespace)
    assert "Starting NameNode" in core.read_namespaced_pod_log("hdfs-namenode-0", namespace)
    assert "JMX exporter agent from http://" in core.read_namespaced_pod_log(
        "kafka-broker-0", namespace, container="fetch-jmx-exporter")
    # kubectl port-forward (kwok's PortForward object, dialling the pod IP): the NameNode's web
    # server from this machine, with the command roles/hdfs/README.md gives for the HDFS UI.
    forward = subprocess.Popen([kubectl(), "--kubeconfig", sim_kubeconfig, "-n", namespace, "port-forward",
                                "svc/hdfs-namenode", ":9870"], stdout=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()  # Forwarding from 127.0.0.1:<port> -> 9870
        local = re.search(r"127\.0\.0\.1:(\d+) -> 9870", line)
        assert local, line
        # HTTP/1.1 keeping the connection, as browsers and curl do: the answer is chunked. kwok's
        # tunnel (pkg/utils/net/tunnel.go) ends only when both directions have, so an answer that
        # ends by the server closing (urllib's Connection: close) never ends at the client.
        connection = http.client.HTTPConnection("127.0.0.1", int(local.group(1)), timeout=30)
        try:
            connection.request("GET", "/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo")
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
            assert json.load(response)["beans"][0]["ClusterId"] == "CID-bigdata-dev"
        finally:
            connection.close()
    finally:
        forward.terminate()
        forward.wait(timeout=30)

    # The broker's JVM hangs (SIGSTOP: its port still accepts connections, so the pod stays Ready
    # by its tcpSocket probe): the wait's KRaft checks, run in the pod, fail and say so.
    broker_pid = jvm_pid(state_dir, pods["kafka-broker-0"])
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        hung = site(namespace, sim_kubeconfig, "--tags", "wait", bigdata_wait_timeout=15)
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    assert hung.returncode != 0, hung.report()
    assert "waiting in namespace %s" % namespace in hung.stdout, hung.stdout[-3000:]
    assert "ready: false" in hung.stdout and "kafka" in hung.stdout, hung.stdout[-3000:]

    # The NameNode's JVM hangs the same way (its RPC port still accepts connections): the HDFS
    # check, curl of its JMX in the pod, fails and names the NameNode's address (only HDFS's wait
    # runs). kwok answers an exec whose command failed with an API error quoting the command, not
    # with the exit code a kubelet sends, so the reason is that error.
    namenode_pid = jvm_pid(state_dir, pods["hdfs-namenode-0"])
    os.kill(namenode_pid, signal.SIGSTOP)
    try:
        hung = site(namespace, sim_kubeconfig, "--tags", "wait", "--skip-tags", "kafka", bigdata_wait_timeout=15)
    finally:
        os.kill(namenode_pid, signal.SIGCONT)
    assert hung.returncode != 0, hung.report()
    assert "waiting in namespace %s" % namespace in hung.stdout, hung.stdout[-3000:]
    assert "hdfs health: " in hung.stdout, hung.stdout[-3000:]
    assert "http://%s:9870/jmx" % ips["hdfs-namenode-0"] in hung.stdout, hung.stdout[-3000:]

    # Both JVMs are killed: the agent reports it and restarts them (restartPolicy Always), the
    # NameNode on its volume (formatted once, at the first start); then the wait passes again
    # against the new processes.
    os.kill(broker_pid, signal.SIGKILL)
    os.kill(namenode_pid, signal.SIGKILL)

    def restarted(name):
        def check():
            status = core.read_namespaced_pod(name, namespace).status.container_statuses[0]
            return status.restart_count >= 1 and status.last_state.terminated and status
        return check
    for name in ("kafka-broker-0", "hdfs-namenode-0"):
        status = wait_for(restarted(name), timeout=60, what="the agent to restart " + name)
        assert status.last_state.terminated.exit_code == 137, (name, status.last_state)
    # kubectl logs --previous: the first start, which formatted the volume; the start after the
    # kill did not format it again.
    def previous_log():
        try:
            return core.read_namespaced_pod_log("hdfs-namenode-0", namespace, previous=True)
        except client.exceptions.ApiException as exc:
            if exc.status == 400:  # kwok has not yet seen the Logs object naming the previous start
                return None
            raise
    previous = wait_for(previous_log, timeout=30, what="kubectl logs --previous of hdfs-namenode-0")
    assert previous.count("formatting it") == 1 and "Starting NameNode" in previous, previous[-3000:]
    # The current log is the new start's once its first line (kubectl logs --timestamps) is later
    # than the end the status reports for the killed one.
    ended = core.read_namespaced_pod("hdfs-namenode-0", namespace).status.container_statuses[0] \
        .last_state.terminated.finished_at.strftime("%Y-%m-%dT%H:%M:%S")

    def current_log():
        log = core.read_namespaced_pod_log("hdfs-namenode-0", namespace, timestamps=True)
        return "Starting NameNode" in log and log[:19] >= ended and log
    current = wait_for(current_log, timeout=60, what="the restarted NameNode's log")
    assert "formatting it" not in current, current[:3000]

    recovered = site(namespace, sim_kubeconfig)
    assert recovered.returncode == 0, recovered.report()
    assert recovered.recap()["changed"] == 0, recovered.report()


def links():
    return {line.split(":")[1].strip().split("@")[0]
            for line in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                                       check=True).stdout.splitlines()}


def netns_list():
    return {line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                       check=True).stdout.splitlines() if line.strip()}


# The pod's command: answer every connection on 9092 with the pod's name.
LISTEN_9092 = """
import os, socket
server = socket.create_server(("0.0.0.0", 9092))
while True:
    conn, _ = server.accept()
    conn.sendall(os.environ["POD_NAME"].encode())
    conn.close()
"""


def processes_under(path):
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and path in cmdline(int(p)))


def test_sim_down_leaves_nothing_of_the_runtime():
    name = "rt-" + uuid.uuid4().hex[:6]
    state_dir = os.path.join(CACHE, "runtime", name)
    bridge = "bds-br-" + hashlib.sha256(name.encode()).hexdigest()[:6]
    variables = json.dumps({"simcluster_name": name, "simcluster_runtime": True,
                            "simcluster_runtime_cidr": str(SIM_DOWN_CIDR),
                            "simcluster_node_pools": [{"name": "w", "count": 1, "cpu": "4", "memory": "8Gi"}]})
    links_before = links()
    started = []
    up = run_playbook("playbooks/simcluster.yml", "-i", "inventories/dev", "-e", variables)
    try:
        assert up.returncode == 0, up.report()
        kubeconfig = os.path.join(CACHE, "kwok", "clusters", name, "kubeconfig.yaml")
        core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        # The service account controller may be slow on a loaded machine; the pod needs only this.
        try:
            core.create_namespaced_service_account("default", client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name="default")))
        except client.exceptions.ApiException as exc:
            assert exc.status == 409, exc
        for index in range(2):
            core.create_namespaced_pod("default", client.V1Pod(
                metadata=client.V1ObjectMeta(name="sleeper-%d" % index),
                spec=client.V1PodSpec(termination_grace_period_seconds=5, containers=[client.V1Container(
                    name="main", image="apache/kafka:4.4.0", command=["python3", "-c", LISTEN_9092],
                    env=[client.V1EnvVar(name="POD_NAME", value_from=client.V1EnvVarSource(
                        field_ref=client.V1ObjectFieldSelector(field_path="metadata.name")))])])))
        try:
            wait_for(lambda: all(p.status.pod_ip and p.status.phase == "Running"
                                 for p in core.list_namespaced_pod("default").items), timeout=120,
                     what="the agent to run both pods")
        except AssertionError as exc:
            # Seen failing now and then (2 of 4 runs on 2026-12-02): say where the pods stopped.
            pods = [(p.metadata.name, p.spec.node_name, p.status.phase, p.status.pod_ip)
                    for p in core.list_namespaced_pod("default").items]
            agent_log = os.path.join(state_dir, "agent.log")
            log = pathlib.Path(agent_log).read_text(encoding="utf-8")[-3000:] if os.path.exists(agent_log) else "(none)"
            raise AssertionError("%s\npods (name, node, phase, ip): %s\nagent log tail:\n%s" % (exc, pods, log)) from exc
        # Both on 9092, each at its own IP.
        for pod in core.list_namespaced_pod("default").items:
            def answer():
                try:
                    with socket.create_connection((pod.status.pod_ip, 9092), timeout=2) as conn:
                        return conn.recv(100).decode()
                except OSError:
                    return None
            assert wait_for(answer, timeout=30, what="%s on %s:9092" % (pod.metadata.name, pod.status.pod_ip)) \
                == pod.metadata.name
        made_netns = {n for n in netns_list() if n.startswith(netns_prefix(name))}
        made_links = links() - links_before
        assert len(made_netns) == 2, made_netns
        assert bridge in made_links and len(made_links) == 3, made_links  # bridge + one veth per pod
        assert all(link.startswith("bds-") for link in made_links), made_links
        agent = processes_under(state_dir)
        assert len(agent) == 1, "one agent (its command names %s): %s" % (state_dir, agent)
        pod_pids = [int(pid) for netns in made_netns for pid in subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout.split()]
        assert len(pod_pids) == 2, pod_pids
        started = agent + pod_pids
        # What make up reads to choose the health checks, and the one thing an existing cluster
        # cannot be asked for: the agent taken away (kwok would not run its pods either).
        marker = select_cluster.simcluster_marker(kubeconfig)
        assert (marker["runtime"], marker["runtimeImages"]) == ("true", "apache/kafka,apache/hadoop"), marker
        without = run_playbook("playbooks/simcluster.yml", "-i", "inventories/dev", "-e", variables,
                               "-e", "simcluster_runtime=false")
        assert without.returncode != 0, without.report()
        said = " ".join(without.stdout.split())  # the message as one line (the callback wraps it)
        assert "was created with the node agent and simcluster_runtime is now false" in said, without.report()
        assert "make sim-down SIM_NAME=%s && make sim-up SIM_NAME=%s SIM_RUNTIME=false" % (name, name) in said, \
            without.report()
        assert without.recap()["changed"] == 0, without.report()
        assert processes_under(state_dir) == agent, "the refused run stopped the agent"
    finally:
        down = run_playbook("playbooks/simcluster.yml", "-i", "inventories/dev", "-e", variables,
                            "-e", "simcluster_state=absent")
    assert down.returncode == 0, down.report()
    assert processes_under(state_dir) == []
    assert [pid for pid in started if os.path.exists("/proc/%d" % pid)] == []
    assert {n for n in netns_list() if n.startswith(netns_prefix(name))} == set()
    assert links() - links_before == set()
    assert [d for d in os.listdir("/etc/netns") if d.startswith(netns_prefix(name))] == []
    assert not os.path.exists(state_dir)
    kwok_dir = os.path.join(CACHE, "kwok")
    assert [f for f in os.listdir(kwok_dir) if f.startswith(name + ".")] == [], "the cluster's kwokctl files are left"
    assert not os.path.exists(os.path.join(kwok_dir, "clusters", name))
