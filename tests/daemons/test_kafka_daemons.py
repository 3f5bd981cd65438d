"""The Kafka configuration the kafka role renders boots a real KRaft cluster.

The rendered ConfigMap, StatefulSet start script and topics Job run unchanged (see podsim.py for
how a pod is stood in for, kafka_sim.py for the few machine-specific overrides), on the Kafka
release of kafka_image_tag from Maven Central.
"""

import os
import re

import pytest

from daemon_support import LOOPBACK, DaemonGroup, wait_until
from kafka_sim import KafkaCluster, load_health, parse_properties, stage_tls_cluster
from metrics_support import Prometheus, prometheus_binary, rendered_jobs, rendered_timing, static_job, write_scraped

# kafka_internal_port (roles/kafka/vars/main.yml): the port wait.yml and the topics Job use.
INTERNAL_PORT = 9092


def _find_kind(docs, kind):
    return [doc for doc in docs if doc.get("kind") == kind]


def _meta_properties(sandbox, data_dir):
    """meta.properties that kafka-storage.sh format wrote into the pod's data volume."""
    matches = []
    for base, _dirs, files in os.walk(sandbox.volume(data_dir)):
        if "meta.properties" in files:
            with open(os.path.join(base, "meta.properties"), encoding="utf-8") as handle:
                matches.append(parse_properties(handle.read()))
    return matches


def wait_like_the_role(cluster, inv, health, timeout=240):
    """bigdata.stack.wait_ready's Kafka check exactly as roles/kafka/tasks/wait.yml asks for it,
    run the way the module runs it: in a ready pod of the first resource (kafka-broker), with the
    pod's environment. Without TLS the module's default bootstrap localhost:9092; with TLS the
    bootstrap Service and the client settings the start script wrote into the pod."""
    pod = cluster.pod("kafka-broker-0")
    if inv["bigdata_tls_enabled"]:
        bootstrap = "kafka.%s.svc:%d" % (inv["bigdata_namespace"], INTERNAL_PORT)
        command_config = pod.sandbox.rewrite("/etc/kafka/runtime/client.properties")
    else:
        bootstrap, command_config = "localhost:%d" % INTERNAL_PORT, None
    return cluster.wait_healthy(health, cluster.in_pod(pod, bootstrap), inv["kafka_broker_replicas"],
                                timeout=timeout, command_config=command_config, pod=pod)


def test_dev_combined_node_serves_topics_to_an_external_client(render, inventory_vars,
                                                               kafka_classpath, daemons, tmp_path):
    inv = inventory_vars("dev")
    docs = render("dev", "kafka")
    cluster = KafkaCluster(docs, inv["bigdata_namespace"], kafka_classpath, str(tmp_path))
    assert [p.name for p in cluster.pods] == ["kafka-broker-0"], "dev runs one combined node"
    node = cluster.pods[0]
    assert cluster.roles(node) == ["broker", "controller"]

    cluster.start(daemons)
    health = load_health()
    # The health check of roles/kafka/tasks/wait.yml, with the module's commands and parser.
    state = wait_like_the_role(cluster, inv, health)
    assert state["result"]["leader_id"] == 0
    assert state["result"]["voters"] == [0]
    assert state["result"]["brokers"] == [0]
    assert state["result"]["cluster_id"] == inv["kafka_cluster_id"]

    # The start script substituted @NODE_ID@ from the pod ordinal and formatted the volume with
    # the inventory's cluster id.
    server_properties = os.path.join(node.sandbox.volume("/etc/kafka/runtime"), "server.properties")
    with open(server_properties, encoding="utf-8") as handle:
        rendered = handle.read()
    assert not re.search(r"@[A-Z_]+@", rendered), rendered
    assert parse_properties(rendered)["node.id"] == "0"
    metas = _meta_properties(node.sandbox, "/var/lib/kafka/data")
    assert metas and all(m["cluster.id"] == inv["kafka_cluster_id"] and m["node.id"] == "0"
                         for m in metas), metas

    # The topics Job, as rendered, against the running node: creates the inventory's topics.
    jobs = _find_kind(docs, "Job")
    assert len(jobs) == 1, "dev has kafka_topics, so the role renders one topics Job"
    for attempt in (1, 2):  # a second run must be a no-op (--if-not-exists), as on a re-apply
        job = cluster.job_sandbox(jobs[0], str(tmp_path / ("topics-job-%d" % attempt))).run(300)
        assert job.returncode == 0, "topics Job run %d failed:\n%s\n%s" % (
            attempt, job.stdout[-3000:], job.stderr[-3000:])
    for topic in inv["kafka_topics"]:
        described = cluster.tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap(),
                                 "--describe", "--topic", topic["name"])
        assert described.returncode == 0, described.stderr
        assert "PartitionCount: %d" % topic["partitions"] in described.stdout, described.stdout
        assert "ReplicationFactor: %d" % topic["replication_factor"] in described.stdout

    # A client on the developer's machine, which resolves no cluster name: bootstrap
    # bigdata_external_host:nodePort, then the brokers it is told about (the advertised EXTERNAL
    # listener) must be reachable from there too.
    external = "%s:%d" % (inv["bigdata_external_host"], cluster.node_port(node))
    topic = inv["kafka_topics"][0]["name"]
    messages = ["hello from the laptop", "second message"]
    produced = cluster.tool("kafka-console-producer.sh", "--bootstrap-server", external,
                            "--topic", topic, "--producer-property", "acks=all",
                            input_text="\n".join(messages) + "\n", env=cluster.outside_env)
    assert produced.returncode == 0, produced.stderr
    consumed = cluster.tool("kafka-console-consumer.sh", "--bootstrap-server", external,
                            "--topic", topic, "--group", "daemons-test", "--from-beginning",
                            "--max-messages", str(len(messages)), "--timeout-ms", "60000",
                            env=cluster.outside_env)
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(consumed.stdout.splitlines()) == sorted(messages)


# ------------------------------------------------------------------ stage: dedicated quorum, TLS

@pytest.fixture(scope="module")
def stage_kafka(render, inventory_vars, kafka_classpath, tmp_path_factory):
    """stage's Kafka (3 dedicated controllers, 3 brokers, TLS on every listener) on this machine.

    The only change besides ports and bind address: every JVM gets a 256m heap instead of the
    rendered 512m/1g (six JVMs on a shared 2-core machine; heap size is not what is tested).
    The TLS Secret the inventory names is made here, for every name the pods and Services have.
    """
    inv = inventory_vars("stage")
    assert inv["kafka_mode"] == "dedicated" and inv["bigdata_tls_enabled"]
    docs = render("stage", "kafka")
    root = str(tmp_path_factory.mktemp("kafka-stage"))
    cluster, client_config = stage_tls_cluster(docs, inv["bigdata_namespace"], inv["kafka_tls_secret"],
                                               kafka_classpath, root)
    group = DaemonGroup()
    try:
        cluster.start(group)
        yield inv, docs, cluster, client_config
    finally:
        group.stop_all()


def _quorum(cluster, client_config, *args):
    proc = cluster.tool("kafka-metadata-quorum.sh", "--bootstrap-server", cluster.bootstrap(),
                        "--command-config", client_config, "describe", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_stage_dedicated_tls_quorum_serves_topics(stage_kafka):
    inv, docs, cluster, client_config = stage_kafka
    assert sorted(p.name for p in cluster.pods) == [
        "kafka-broker-0", "kafka-broker-1", "kafka-broker-2",
        "kafka-controller-0", "kafka-controller-1", "kafka-controller-2"]
    health = load_health()
    state = wait_like_the_role(cluster, inv, health)
    assert sorted(state["result"]["voters"]) == [0, 1, 2]
    assert state["result"]["brokers"] == [100, 101, 102]
    assert state["result"]["cluster_id"] == inv["kafka_cluster_id"]

    jobs = _find_kind(docs, "Job")
    assert len(jobs) == 1
    job = cluster.job_sandbox(jobs[0], os.path.join(cluster.root, "topics-job")).run(300)
    assert job.returncode == 0, "topics Job failed:\n%s\n%s" % (job.stdout[-3000:], job.stderr[-3000:])
    topic = inv["kafka_topics"][0]
    described = cluster.tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap(),
                             "--command-config", client_config, "--describe", "--topic", topic["name"])
    assert described.returncode == 0, described.stderr
    assert "PartitionCount: %d" % topic["partitions"] in described.stdout, described.stdout
    assert "ReplicationFactor: %d" % topic["replication_factor"] in described.stdout

    # acks=all needs min.insync.replicas (2 of 3) in sync: replication across brokers works.
    produced = cluster.tool("kafka-console-producer.sh", "--bootstrap-server", cluster.bootstrap(),
                            "--command-config", client_config, "--topic", topic["name"],
                            "--producer-property", "acks=all", input_text="over TLS\n")
    assert produced.returncode == 0, produced.stderr
    consumed = cluster.tool("kafka-console-consumer.sh", "--bootstrap-server", cluster.bootstrap(),
                            "--command-config", client_config, "--topic", topic["name"],
                            "--group", "daemons-test", "--from-beginning", "--max-messages", "1",
                            "--timeout-ms", "60000")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == ["over TLS"]


def test_a_broker_opens_its_readiness_port_only_once_it_runs(stage_kafka):
    """The brokers' readinessProbe is tcpSocket on `internal`; this is why that means "serving".

    Kafka 4's SocketServer binds a listener when its acceptor starts (Acceptor.start ->
    openServerSocket, which logs "Awaiting socket connections on <host>:<port>"), and BrokerServer
    starts the acceptors (SocketServer.enableRequestProcessing) only after "Waiting for the broker
    to be unfenced": after the broker has caught up with the metadata log, finished log recovery
    (RECOVERY) and been unfenced by the controller (RUNNING). Until then a connection to the port
    is refused, so the probe fails. Older Kafka bound the port first (Kafka 3 logged "Awaiting
    socket connections" before "Created data-plane acceptor"): this test reads the order in the
    real broker's log and fails if a new Kafka version goes back to that.
    (Controllers bind their port before the quorum has a leader: voters must reach each other to
    elect one, so theirs means "the Raft listener is up"; the kafka gate checks the quorum.)
    """
    inv, _docs, cluster, _client_config = stage_kafka
    wait_like_the_role(cluster, inv, load_health())
    brokers = [p for p in cluster.pods if p.name.startswith("kafka-broker-")]
    assert len(brokers) == 3
    for pod in brokers:
        probe = pod.statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        assert probe == {**probe, "tcpSocket": {"port": "internal"}}, probe
        with open(pod.daemon.log_path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        bound = [i for i, line in enumerate(lines)
                 if "Awaiting socket connections on %s:%d." % (LOOPBACK, pod.ports["INTERNAL"]) in line]
        running = [i for i, line in enumerate(lines) if "Transitioning from RECOVERY to RUNNING" in line]
        assert bound and running, "%s: no bind or RUNNING line in %s" % (pod.name, pod.daemon.log_path)
        assert running[0] < bound[0], "%s bound its readiness port (line %d) before it was RUNNING (line %d)" % (
            pod.name, bound[0] + 1, running[0] + 1)


# What a Kafka operator looks at first (the monitoring role's kafka alerts and dashboard), with the
# names the agent's rules (roles/kafka/files/jmx-exporter.yaml) give them.
BROKER_METRICS = ["kafka_server_replicamanager_underreplicatedpartitions",
                  "kafka_server_replicamanager_underminisrpartitioncount",
                  "kafka_server_brokertopicmetrics_bytesin_total", "kafka_server_brokertopicmetrics_bytesout_total",
                  "kafka_server_brokertopicmetrics_messagesin_total", "kafka_network_requestmetrics_totaltimems",
                  "kafka_log_log_logendoffset", "jvm_memory_used_bytes"]
CONTROLLER_METRICS = ["kafka_controller_kafkacontroller_activecontrollercount",
                      "kafka_controller_kafkacontroller_offlinepartitionscount",
                      "kafka_controller_kafkacontroller_fencedbrokercount",
                      "kafka_server_raft_metrics_current_state", "jvm_memory_used_bytes"]


def test_stage_brokers_and_controllers_serve_jmx_metrics_to_prometheus(stage_kafka, render, daemons, tmp_path):
    """Every broker and controller JVM runs the Prometheus JMX exporter agent as its pod gives it
    (-javaagent from the init container's jar, the rendered rules); a real Prometheus with the
    monitoring role's kafka job scrapes all six, and the cluster's state reads right from them."""
    inv, _docs, cluster, client_config = stage_kafka
    wait_like_the_role(cluster, inv, load_health())
    assert all(p.metrics_port for p in cluster.pods), "the rendered pods load no JMX exporter agent"
    # A topic with data, so that the per-partition series exist also when this test runs alone.
    topic = "metrics-probe"
    created = cluster.tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config",
                           client_config, "--create", "--if-not-exists", "--topic", topic,
                           "--partitions", "3", "--replication-factor", "3")
    assert created.returncode == 0, created.stderr
    produced = cluster.tool("kafka-console-producer.sh", "--bootstrap-server", cluster.bootstrap(),
                            "--command-config", client_config, "--topic", topic,
                            "--producer-property", "acks=all", input_text="one\ntwo\n")
    assert produced.returncode == 0, produced.stderr

    targets = []
    for pod in cluster.pods:
        labels = pod.statefulset["spec"]["template"]["metadata"]["labels"]
        targets.append(("%s:%d" % (LOOPBACK, pod.metrics_port),
                        {"namespace": inv["bigdata_namespace"], "pod": pod.name,
                         "component": labels["app.kubernetes.io/component"]}))
    monitoring = render("stage", "monitoring")
    job = static_job(rendered_jobs(monitoring)["kafka"], targets)
    # The role's scrape interval and timeout: the agent's scrapes are not cheap (metrics_support.py).
    prometheus = Prometheus(prometheus_binary(), str(tmp_path / "prometheus"), [job], daemons,
                            timing=rendered_timing(monitoring))
    prometheus.wait_all_scraped(180, daemons=cluster.daemons())

    brokers = set(prometheus.names("kafka", component="broker"))
    controllers = set(prometheus.names("kafka", component="controller"))
    missing = sorted(set(BROKER_METRICS) - brokers) + sorted(set(CONTROLLER_METRICS) - controllers)
    assert not missing, "not scraped: %s" % missing
    # The quorum has one active controller; every partition has a leader and all its replicas.
    active = prometheus.query(
        'sum(last_over_time(kafka_controller_kafkacontroller_activecontrollercount{job="kafka"}[1m]))')
    assert [value for _labels, value in active] == [1.0], active
    offline = prometheus.query(
        'max(last_over_time(kafka_controller_kafkacontroller_offlinepartitionscount{job="kafka"}[1m]))')
    assert [value for _labels, value in offline] == [0.0], offline

    def in_sync():
        rows = prometheus.query(
            'last_over_time(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"}[1m])')
        return len(rows) == inv["kafka_broker_replicas"] and all(value == 0 for _labels, value in rows)
    wait_until(in_sync, "no under-replicated partition on any broker", 120, daemons=cluster.daemons(), interval=2)
    write_scraped("kafka", prometheus.names("kafka"), "tests/daemons/test_kafka_daemons.py::"
                  "test_stage_brokers_and_controllers_serve_jmx_metrics_to_prometheus")


def test_stage_quorum_survives_losing_the_leader_controller(stage_kafka):
    """Kill the leading controller: the other two elect a leader; restarted on its volume, the
    pod's start script (format --ignore-formatted) brings it back into the quorum."""
    inv, _docs, cluster, client_config = stage_kafka
    health = load_health()
    leader = health.parse_quorum_status(_quorum(cluster, client_config, "--status"))["LeaderId"]
    victim = cluster.pod("kafka-controller-%d" % leader)
    victim.daemon.stop()

    def new_leader():
        status = health.parse_quorum_status(_quorum(cluster, client_config, "--status"))
        return status.get("LeaderId", -1) not in (-1, leader)  # (ids start at 0: not truthy)
    wait_until(new_leader, "a new KRaft leader after controller %d stopped" % leader, 120,
               daemons=[p.daemon for p in cluster.pods if p is not victim], interval=2)

    victim.daemon = victim.sandbox.start(log_name="restart.log")
    try:
        def caught_up():
            rows = [line.split() for line in
                    _quorum(cluster, client_config, "--replication").splitlines()[1:]]
            row = next((r for r in rows if r and r[0] == str(leader)), None)
            return row is not None and row[3] == "0" and row[-1] in ("Leader", "Follower")
        wait_until(caught_up, "controller %d back in the quorum" % leader, 120,
                   daemons=[victim.daemon], interval=2)
        with open(victim.daemon.log_path, encoding="utf-8", errors="replace") as handle:
            restart_log = handle.read()
        assert "All of the log directories are already formatted." in restart_log, restart_log[-2000:]
    finally:
        victim.daemon.stop()
