"""The kafka role's roll (module_utils/rolling.py, gate `kafka`) on real brokers, under load.

stage's Kafka (3 controllers, 3 brokers, TLS) runs on this machine as the other daemon tests run
it (kafka_sim.py). A topic with replication 3 and min.insync.replicas 2 takes a continuous
acks=all stream from Kafka's VerifiableProducer (the producer Kafka's own system tests use for
rolling upgrades), while every broker is rolled:

- by bigdata.stack.rolling_update's own Roller and KafkaGate, with the tools run "in a pod" the way
  the module runs them (the pod's environment, the bootstrap Service, the pod's client settings):
  zero failed sends, every acknowledged message consumed afterwards;
- then the same roll the naive way: the readiness-only gate (rolling.Gate, what the StatefulSet
  controller does: the next broker as soon as the restarted one's port is open). That roll takes
  partitions below min.insync.replicas, and the producer is told so: NOT_ENOUGH_REPLICAS answers
  (which it retries, and which become failed sends once they outlast delivery.timeout.ms). The
  gated roll must see none of them, the naive one some: the gate is what makes the difference.

A restarted broker here has little to catch up (a few seconds of a small stream over loopback),
where a production broker has minutes of traffic: with nothing else, it is back in every ISR
before the naive roll even reaches the next broker, and the comparison shows nothing. So both rolls
run as a loaded cluster does: bulk traffic (kafka-producer-perf-test, acks=1) on the same topic at
two thirds of Kafka's own replication throttle (follower.replication.throttled.rate, which limits
what a broker fetches for the replicas it has out of the ISR: every partition of the topic is
listed in follower.replication.throttled.replicas). A restarted broker fetches what it missed while
down at the throttled rate less what keeps arriving, so it rejoins the ISR after
bulk/(throttle-bulk) = 2 times its downtime, about 20 s.

That holds only with three broker settings, none of which the role renders (KafkaCluster refuses to
add one it does) and whose defaults suit production, where no roll needs to be slow. Each was
learnt from a run that went wrong:
- The bulk traffic is on the acks=all topic itself. On a topic of its own (as this test had it
  until a9db280) it delayed only that topic's ISR: the acks=all topic's small gap came over in the
  restarted broker's first fetch, and whether that came before the next broker stopped was a race
  of a second or two. A CI run lost it: 0 NOT_ENOUGH_REPLICAS answers, 0 failed sends.
- replication.quota.window.num=2. The throttle is a rate over the quota's samples, and a sensor
  with fewer samples than the window counts as if it had the full window
  (org.apache.kafka.common.metrics.stats.Rate.windowSize pads the elapsed time to window.num - 1
  samples): with the default 11 one-second samples, a broker whose throttled fetching starts afresh
  may take 10 seconds' worth at once, more than it missed.
- replica.fetch.max.bytes=65536 and replica.fetch.backoff.ms=100. The quota is checked before a
  fetch, never within one: with 1 MiB per partition (the default) one fetch takes the whole gap.
  A follower over its quota leaves the throttled partitions out of its next fetch and, with nothing
  left to fetch, waits replica.fetch.backoff.ms (1 s by default) before it looks again: with 16 KiB
  per partition and that wait, it fetched less per second than kept arriving and never rejoined
  (the gated roll gave up on broker 102 after 300 s).

A pod's delete is a SIGTERM to its process group (what the kubelet sends), then its unchanged
start script again on the same volume. The producer's delivery.timeout.ms is 30 s (its default
is 2 min, which retries through most outages): a send that cannot be acknowledged by the ISR
within 30 s counts as failed. (At 10 s, one gated run on this 2-core machine, with a playbook
run beside it, lost a burst of sends to a broker that answered nothing for 10 s, none of them
NOT_ENOUGH_REPLICAS: the machine's stall, not the roll's.)
"""

import json
import os
import subprocess
import sys
import time

import pytest

from daemon_support import DaemonGroup, port_open, wait_port_open, wait_until
from kafka_sim import REPO, load_health, stage_tls_cluster

sys.path.insert(0, os.path.join(REPO, "collections"))
from ansible_collections.bigdata.stack.plugins.module_utils import rolling  # noqa: E402

TOPIC = "roll-test"
THROTTLE_BYTES_PER_S = 225000  # per follower broker, only on replicas out of the ISR (catching up); see the docstring
# The throttle binds on every fetch, from the first second (the docstring says why).
THROTTLE_BINDS = {"replica.fetch.max.bytes": "65536", "replica.fetch.backoff.ms": "100",
                  "replication.quota.window.num": "2"}
BULK_RECORDS_PER_S, BULK_RECORD_BYTES = 150, 1000
PRODUCER_TIMEOUTS = "delivery.timeout.ms=30000\nrequest.timeout.ms=5000\nlinger.ms=0\nretries=2147483647\n"


@pytest.fixture(scope="module")
def stage(render, inventory_vars, kafka_classpath, tmp_path_factory):
    inv = inventory_vars("stage")
    docs = render("stage", "kafka")
    root = str(tmp_path_factory.mktemp("kafka-roll"))
    cluster, client_config = stage_tls_cluster(docs, inv["bigdata_namespace"], inv["kafka_tls_secret"],
                                               kafka_classpath, root, added_properties=THROTTLE_BINDS)
    group = DaemonGroup()
    try:
        cluster.start(group)
        yield inv, cluster, group, client_config, root
    finally:
        group.stop_all()


class PodsLikeTheModule:
    """The calls rolling_update makes to the cluster (ClusterIO), answered by the daemons."""

    def __init__(self, cluster, group, namespace):
        self.cluster = cluster
        self.group = group
        self.namespace = namespace
        self.generation = {}
        self.restarts = 0

    @staticmethod
    def _probe_port(pod):
        """The rendered readinessProbe: tcpSocket on `internal` (brokers) or `controller`."""
        container = pod.statefulset["spec"]["template"]["spec"]["containers"][0]
        return pod.ports[container["readinessProbe"]["tcpSocket"]["port"].upper()]

    def as_dict(self, pod):
        labels = pod.statefulset["spec"]["template"]["metadata"]["labels"]
        return {"metadata": {"name": pod.name, "uid": "%s-%d" % (pod.name, self.generation.get(pod.name, 0)),
                             "labels": {"app.kubernetes.io/component": labels["app.kubernetes.io/component"],
                                        "controller-revision-hash": "before-the-roll"}},
                "status": {"conditions": [{"type": "Ready", "status": "True" if pod.daemon.alive() and port_open(self._probe_port(pod))
                                           else "False"}]}}

    def image_tag(self):
        """kafka_image_tag as rendered into the StatefulSets (the image the pods run)."""
        return self.cluster.statefulsets[0]["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]

    def list_pods(self):
        return [self.as_dict(p) for p in self.cluster.pods]

    def delete_pod(self, pod_dict):
        pod = self.cluster.pod(rolling.pod_name(pod_dict))
        pod.daemon.stop()
        self.restarts += 1
        self.generation[pod.name] = self.generation.get(pod.name, 0) + 1
        pod.daemon = self.group.replace(pod.daemon, pod.sandbox.start(log_name="restart-%d.log" % self.restarts))

    def wait_ready(self, pod_dict, timeout):
        pod = self.cluster.pod(rolling.pod_name(pod_dict))
        return wait_port_open(pod.daemon, self._probe_port(pod), timeout)

    def exec_in_pod(self, pod_name, container, argv):
        """argv as `kubectl exec` runs it in the pod: the image's script, the pod's environment and files."""
        pod = self.cluster.pod(pod_name)
        cmd = [os.path.join(self.cluster.bin, os.path.basename(argv[0]))]
        args = iter(argv[1:])
        for arg in args:
            cmd.append(arg)
            if arg in ("--bootstrap-server", "--bootstrap-controller"):
                cmd.append(self.cluster.in_pod(pod, next(args)))
            elif arg == "--command-config":
                cmd.append(pod.sandbox.rewrite(next(args)))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=pod.sandbox.env,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        return proc.returncode, proc.stdout, proc.stderr


def kafka_gate(inv, io, image_tag=None):
    """The gate exactly as roles/kafka/tasks/wait.yml configures it for stage (image_tag: the rendered one)."""
    return rolling.KafkaGate(io.exec_in_pod, io.list_pods,
                             bootstrap_server="kafka.%s.svc:9092" % inv["bigdata_namespace"],
                             command_config="/etc/kafka/runtime/client.properties",
                             broker_node_id_offset=100, image_tag=image_tag or io.image_tag(),
                             image_tag_variable="kafka_image_tag")


class Producer:
    """VerifiableProducer with acks=all, sending continuously; its JSON lines say what was acknowledged."""

    def __init__(self, cluster, client_config, root, name):
        self.cluster = cluster
        config = os.path.join(root, "%s-producer.properties" % name)
        with open(client_config, encoding="utf-8") as src, open(config, "w", encoding="utf-8") as handle:
            handle.write(src.read() + PRODUCER_TIMEOUTS)
        self.out = os.path.join(root, "%s-producer.jsonl" % name)
        self.handle = open(self.out, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [os.path.join(cluster.bin, "kafka-verifiable-producer.sh"), "--bootstrap-server", cluster.bootstrap(),
             "--topic", TOPIC, "--acks", "-1", "--throughput", "40", "--max-messages", "-1",
             "--value-prefix", {"gated": "1", "naive": "2", "controllers": "3"}[name], "--producer.config", config],
            stdout=self.handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=cluster.tool_env(),
            start_new_session=True)

    def events(self):
        found = []
        with open(self.out, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("{"):
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        pass
        return found

    def under_min_isr_answers(self):
        """The produce responses that said a partition was below min.insync.replicas.

        The producer logs each retriable error it retries at WARN (Sender.completeBatch:
        "Got error produce response ... Error: NOT_ENOUGH_REPLICAS"); the role's tools logging
        prints warnings. NOT_ENOUGH_REPLICAS_AFTER_APPEND counts too.
        """
        with open(self.out, encoding="utf-8", errors="replace") as handle:
            return [line.strip() for line in handle if "NOT_ENOUGH_REPLICAS" in line and not line.startswith("{")]

    def stop(self):
        os.killpg(self.proc.pid, 15)
        self.proc.wait(60)
        self.handle.close()
        events = self.events()
        acked = [e["value"] for e in events if e.get("name") == "producer_send_success"]
        failed = [e for e in events if e.get("name") == "producer_send_error"]
        return acked, failed, self.under_min_isr_answers()


def in_sync(cluster, client_config):
    proc = cluster.tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config", client_config,
                        "--describe", "--under-replicated-partitions")
    return proc.returncode == 0 and not rolling.parse_partitions(proc.stdout)


def roll_under_load(stage, gate, name, component="broker"):
    inv, cluster, group, client_config, root = stage
    io = PodsLikeTheModule(cluster, group, inv["bigdata_namespace"])
    wait_until(lambda: in_sync(cluster, client_config), "every partition in sync before the roll", 180,
               daemons=cluster.daemons(), interval=3)
    producer = Producer(cluster, client_config, root, name)
    bulk_log = open(os.path.join(root, "%s-bulk.log" % name), "w", encoding="utf-8")
    bulk = subprocess.Popen(
        [os.path.join(cluster.bin, "kafka-producer-perf-test.sh"), "--topic", TOPIC, "--num-records", "100000000",
         "--record-size", str(BULK_RECORD_BYTES), "--throughput", str(BULK_RECORDS_PER_S),
         "--producer.config", client_config, "--producer-props", "acks=1", "bootstrap.servers=" + cluster.bootstrap()],
        stdout=bulk_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=cluster.tool_env(),
        start_new_session=True)
    try:
        wait_until(lambda: sum(e.get("name") == "producer_send_success" for e in producer.events()) > 50,
                   "the producer sending", 120, interval=1)
        pods = [p for p in io.list_pods() if rolling.pod_component(p) == component]
        steps = rolling.Roller(gate(io), io.delete_pod, io.wait_ready, timeout=300, interval=2).run(pods)
        time.sleep(5)  # keep sending a little after the last restart
    finally:
        acked, failed, below_min_isr = producer.stop()
        os.killpg(bulk.pid, 15)
        bulk.wait(60)
        bulk_log.close()
    return steps, acked, failed, below_min_isr


def records_in_topic(cluster, client_config):
    """The sum of the topic's end offsets (kafka-get-offsets.sh: `topic:partition:offset` lines)."""
    proc = cluster.tool("kafka-get-offsets.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config", client_config,
                        "--topic", TOPIC, "--time", "-1")
    offsets = [line.rsplit(":", 1)[1] for line in proc.stdout.splitlines() if line.startswith(TOPIC + ":")]
    assert proc.returncode == 0 and len(offsets) == 3, proc.stdout + proc.stderr[-2000:]
    return sum(int(o) for o in offsets)


def consumed_values(cluster, client_config):
    """Every record of the topic (the acks=all producer's and the bulk traffic's), as printed values."""
    proc = cluster.tool("kafka-console-consumer.sh", "--bootstrap-server", cluster.bootstrap(),
                        "--consumer.config", client_config, "--topic", TOPIC, "--from-beginning",
                        "--max-messages", str(records_in_topic(cluster, client_config)), "--timeout-ms", "60000",
                        timeout=180)
    return proc.stdout.splitlines(), proc


@pytest.fixture(scope="module")
def topic(stage):
    """The role's wait.yml health check first (a quorum leader, 3 brokers), as the role does before
    a roll; then the topic: replication 3, min.insync.replicas 2 (prod's `events`), and the
    replication throttle (the module docstring says why)."""
    inv, cluster, _group, client_config, _root = stage
    pod = cluster.pod("kafka-broker-0")
    cluster.wait_healthy(load_health(), cluster.in_pod(pod, "kafka.%s.svc:9092" % inv["bigdata_namespace"]),
                         inv["kafka_broker_replicas"], timeout=300,
                         command_config=pod.sandbox.rewrite("/etc/kafka/runtime/client.properties"), pod=pod)
    throttled = ["--config", "follower.replication.throttled.replicas=*"]
    created = cluster.tool("kafka-topics.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config", client_config,
                           "--create", "--topic", TOPIC, "--partitions", "3", "--replication-factor", "3",
                           "--config", "min.insync.replicas=2", *throttled)
    assert created.returncode == 0, created.stderr[-2000:]
    rate = cluster.tool("kafka-configs.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config", client_config,
                        "--alter", "--entity-type", "brokers", "--entity-default", "--add-config",
                        "follower.replication.throttled.rate=%d" % THROTTLE_BYTES_PER_S)
    assert rate.returncode == 0, rate.stderr[-2000:]
    return TOPIC


def test_gated_roll_of_every_broker_loses_no_acks_all_send(stage, topic):
    inv, cluster, _group, client_config, _root = stage
    steps, acked, failed, below_min_isr = roll_under_load(stage, lambda io: kafka_gate(inv, io), "gated")
    assert [s.pod for s in steps] == ["kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]
    assert len(acked) > 200, "the producer sent too little during the roll to mean anything: %d" % len(acked)
    assert failed == [], "%d sends failed during the gated roll, e.g. %s" % (len(failed), failed[:3])
    assert below_min_isr == [], "the gated roll took a partition below min ISR: %s" % below_min_isr[:3]
    print("gated roll:", [s.as_dict() for s in steps], "acknowledged", len(acked))

    values, proc = consumed_values(cluster, client_config)
    missing = set(acked) - set(values)
    assert not missing, "%d acknowledged messages not consumed, e.g. %s\n%s" % (len(missing), sorted(missing)[:5],
                                                                             proc.stderr[-2000:])


def test_the_same_roll_without_the_gate_takes_partitions_below_min_isr(stage, topic):
    """The comparison: rolling.Gate (readiness only) on the same cluster, topic and producer."""
    _inv, _cluster, _group, _client_config, _root = stage
    steps, acked, failed, below_min_isr = roll_under_load(stage, lambda io: rolling.Gate(), "naive")
    assert [s.pod for s in steps] == ["kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]
    assert len(acked) > 200, "the producer sent too little during the roll to mean anything: %d" % len(acked)
    print("naive roll:", [s.as_dict() for s in steps], "acknowledged", len(acked), "failed", len(failed),
          "NOT_ENOUGH_REPLICAS answers", len(below_min_isr))
    assert failed or below_min_isr, (
        "the readiness-only roll kept every partition at min ISR: this test no longer shows what the gate is for")


def test_gated_roll_of_the_controllers_keeps_the_quorum_and_every_send(stage, topic):
    """Controllers: highest ordinal first, the quorum leader last, each caught up (lag 0) before the next."""
    inv, cluster, _group, client_config, _root = stage
    status = load_health().parse_quorum_status(cluster.tool(
        "kafka-metadata-quorum.sh", "--bootstrap-server", cluster.bootstrap(), "--command-config", client_config,
        "describe", "--status").stdout)
    leader = "kafka-controller-%d" % status["LeaderId"]
    steps, acked, failed, below_min_isr = roll_under_load(stage, lambda io: kafka_gate(inv, io), "controllers",
                                                          component="controller")
    print("gated controller roll:", [s.as_dict() for s in steps], "acknowledged", len(acked))
    order = [s.pod for s in steps]
    assert sorted(order) == ["kafka-controller-0", "kafka-controller-1", "kafka-controller-2"]
    assert order[-1] == leader, "the quorum leader %s was not rolled last: %s" % (leader, order)
    others = [p for p in order if p != leader]
    assert others == sorted(others, reverse=True), order
    assert len(acked) > 100, "the producer sent too little during the roll to mean anything: %d" % len(acked)
    assert failed == [] and below_min_isr == [], (failed[:3], below_min_isr[:3])


def test_a_downgrade_across_the_metadata_version_is_refused_before_any_restart(stage, topic):
    """kafka_image_tag older than the finalized metadata.version: the gate reads it with the real
    kafka-features.sh and the roll stops before the first pod."""
    inv, cluster, group, _client_config, _root = stage
    io = PodsLikeTheModule(cluster, group, inv["bigdata_namespace"])
    gate = kafka_gate(inv, io, image_tag="3.9.1")
    brokers = [p for p in io.list_pods() if rolling.pod_component(p) == "broker"]
    # kafka_roll_force=true too: brokers of 3.9 could not read the cluster's metadata.
    with pytest.raises(rolling.RollRefused) as refused:
        rolling.Roller(gate, io.delete_pod, io.wait_ready, timeout=60, interval=2, force=True).run(brokers)
    assert io.restarts == 0 and refused.value.forceable is False
    assert any(r.startswith("kafka_image_tag=3.9.1 is older than the metadata.version 4.")
               for r in refused.value.reasons), refused.value.reasons
