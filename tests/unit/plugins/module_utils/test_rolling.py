# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""rolling.py: the roll mechanism, and the Kafka and HDFS gates on the tools' and JMX's answers.

The Kafka outputs are those of the Kafka 4.4 tools (TopicCommand, MetadataQuorumCommand,
BrokerApiVersionsCommand, FeatureCommand); tests/daemons/test_roll_daemons.py runs the same
parsers on the real tools' output.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import rolling


def pod(name, component="broker", revision="old", ready=True, uid=None):
    return {
        "metadata": {"name": name, "uid": uid or name + "-uid",
                     "labels": {"controller-revision-hash": "%s-%s" % (name.rsplit("-", 1)[0], revision),
                                "app.kubernetes.io/component": component}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def sts(name, update="new", generation=2, observed=2):
    return {"metadata": {"name": name, "generation": generation},
            "status": {"observedGeneration": observed, "updateRevision": "%s-%s" % (name, update)}}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


# --------------------------------------------------------------------------- stale pods


def test_stale_pods_are_those_not_on_the_update_revision_highest_ordinal_first():
    pods = [pod("kafka-broker-0"), pod("kafka-broker-1", revision="new"), pod("kafka-broker-2")]
    assert [rolling.pod_name(p) for p in rolling.stale_pods(sts("kafka-broker"), pods)] == ["kafka-broker-2", "kafka-broker-0"]


def test_nothing_stale_when_every_pod_is_on_the_update_revision():
    pods = [pod("kafka-broker-%d" % i, revision="new") for i in range(3)]
    assert rolling.stale_pods(sts("kafka-broker"), pods) == []


def test_unobserved_generation_is_not_an_answer():
    assert rolling.stale_pods(sts("kafka-broker", generation=3, observed=2), [pod("kafka-broker-0")]) is None


def test_a_pod_being_deleted_is_not_rolled_again():
    terminating = pod("kafka-broker-0")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert rolling.stale_pods(sts("kafka-broker"), [terminating]) == []


# --------------------------------------------------------------------------- Roller


class RecordingGate(rolling.Gate):
    name = "recording"

    def __init__(self, events, refuse=(), unsafe_polls=0, settle_polls=0, never_settles=None):
        self.events = events
        self.refuse = list(refuse)
        self.unsafe_polls = unsafe_polls
        self.settle_polls = settle_polls
        self.never_settles = never_settles

    def precheck(self, pods):
        self.events.append(("precheck", [rolling.pod_name(p) for p in pods]))
        if len(pods) == 1 and self.unsafe_polls:
            self.unsafe_polls -= 1
            return ["partition events-0 at its min ISR"]
        return self.refuse

    def order(self, pods):
        return sorted(pods, key=rolling.pod_ordinal)  # lowest first: not the default, so the test sees it used

    def before(self, pod):
        self.events.append(("before", rolling.pod_name(pod)))

    def settled(self, pod):
        name = rolling.pod_name(pod)
        if name == self.never_settles:
            return False, "%s not in the ISR" % name
        if self.settle_polls:
            self.settle_polls -= 1
            return False, "catching up"
        self.events.append(("settled", name))
        return True, ""

    def after(self):
        self.events.append(("after",))


def make_roller(gate, events, clock, ready_after=30.0, never_ready=None, **kwargs):
    def delete(p):
        events.append(("delete", rolling.pod_name(p)))

    def wait_ready(p, timeout):
        if rolling.pod_name(p) == never_ready:
            clock.now += timeout
            return None
        clock.now += ready_after
        events.append(("ready", rolling.pod_name(p)))
        return ready_after
    return rolling.Roller(gate, delete, wait_ready, timeout=kwargs.pop("timeout", 300), interval=5,
                          clock=clock, sleep=clock.sleep, **kwargs)


PODS = [pod("kafka-broker-2"), pod("kafka-broker-1"), pod("kafka-broker-0")]


def test_one_pod_at_a_time_in_the_gates_order_each_settled_before_the_next():
    events, clock = [], Clock()
    steps = make_roller(RecordingGate(events), events, clock).run(PODS)
    assert [s.pod for s in steps] == ["kafka-broker-0", "kafka-broker-1", "kafka-broker-2"]
    assert [s.order for s in steps] == [1, 2, 3]
    assert events == [
        ("precheck", ["kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]),
        ("before", "kafka-broker-0"), ("delete", "kafka-broker-0"), ("ready", "kafka-broker-0"), ("settled", "kafka-broker-0"),
        ("precheck", ["kafka-broker-1"]),
        ("before", "kafka-broker-1"), ("delete", "kafka-broker-1"), ("ready", "kafka-broker-1"), ("settled", "kafka-broker-1"),
        ("precheck", ["kafka-broker-2"]),
        ("before", "kafka-broker-2"), ("delete", "kafka-broker-2"), ("ready", "kafka-broker-2"), ("settled", "kafka-broker-2"),
        ("after",),
    ]
    assert steps[0].as_dict() == dict(pod="kafka-broker-0", order=1, waited_safe=0.0, waited_ready=30.0,
                                      waited_settled=0.0, seconds=30.0)


def test_nothing_to_roll_calls_no_gate():
    events = []
    assert make_roller(RecordingGate(events), events, Clock()).run([]) == []
    assert events == []


def test_precheck_reasons_refuse_before_any_pod_is_deleted():
    events = []
    roller = make_roller(RecordingGate(events, refuse=["events-0 already under min ISR"]), events, Clock())
    with pytest.raises(rolling.RollRefused) as refused:
        roller.run(PODS)
    assert refused.value.reasons == ["events-0 already under min ISR"]
    assert not [e for e in events if e[0] in ("before", "delete")]


def test_force_rolls_anyway_and_says_what_it_overrode():
    events = []
    roller = make_roller(RecordingGate(events, refuse=["events-0 already under min ISR"]), events, Clock(),
                         force=True, force_variable="kafka_roll_force")
    assert len(roller.run(PODS)) == 3
    assert roller.warnings == ["kafka_roll_force=true: rolling although events-0 already under min ISR"]


def test_the_next_pod_waits_until_the_gate_lets_it_go():
    events, clock = [], Clock()
    steps = make_roller(RecordingGate(events, unsafe_polls=2), events, clock).run(PODS)
    assert steps[1].waited_safe == 10.0  # two refusals, 5 s apart
    assert steps[2].waited_safe == 0.0


def test_the_next_pod_never_goes_while_the_gate_says_unsafe():
    events, clock = [], Clock()
    roller = make_roller(RecordingGate(events, unsafe_polls=1000), events, clock, timeout=60)
    with pytest.raises(rolling.RollFailed) as failed:
        roller.run(PODS)
    assert "not restarting kafka-broker-1: partition events-0 at its min ISR" in str(failed.value)
    assert [s.pod for s in failed.value.steps] == ["kafka-broker-0"]
    assert [e for e in events if e[0] == "delete"] == [("delete", "kafka-broker-0")]
    assert events[-1] == ("after",)


def test_settle_time_is_reported():
    events, clock = [], Clock()
    steps = make_roller(RecordingGate(events, settle_polls=3), events, clock).run(PODS)
    assert steps[0].waited_settled == 15.0


def test_a_pod_that_does_not_settle_stops_the_roll_and_after_still_runs():
    events = []
    roller = make_roller(RecordingGate(events, never_settles="kafka-broker-1"), events, Clock(), timeout=60)
    with pytest.raises(rolling.RollFailed) as failed:
        roller.run(PODS)
    assert "kafka-broker-1 is Ready but has not settled after 60s: kafka-broker-1 not in the ISR" in str(failed.value)
    assert ("delete", "kafka-broker-2") not in events
    assert events[-1] == ("after",)


def test_a_pod_that_is_not_ready_again_stops_the_roll():
    events = []
    roller = make_roller(RecordingGate(events), events, Clock(), never_ready="kafka-broker-0", timeout=60)
    with pytest.raises(rolling.RollFailed) as failed:
        roller.run(PODS)
    assert "kafka-broker-0 was deleted and is not Ready again after 60s" in str(failed.value)
    assert failed.value.steps == []
    assert [e[0] for e in events].count("delete") == 1


def test_the_readiness_only_gate_keeps_the_statefulset_controllers_order_statefulset_by_statefulset():
    pods = [pod("kafka-controller-0", "controller"), pod("kafka-controller-2", "controller")] + list(reversed(PODS))
    assert [rolling.pod_name(p) for p in rolling.Gate().order(pods)] == [
        "kafka-controller-2", "kafka-controller-0", "kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]


# --------------------------------------------------------------------------- Kafka


# kafka-topics.sh --describe --under-min-isr-partitions and friends print partition lines only
# (TopicCommand prints the topic line only for a plain --describe).
TOPICS_HEALTHY = ""
AT_MIN_ISR = (
    "\tTopic: events\tPartition: 1\tLeader: 101\tReplicas: 102,101,100\tIsr: 101,100\tElr: \tLastKnownElr: \n"
)
UNDER_MIN_ISR = (
    "\tTopic: events\tPartition: 0\tLeader: 100\tReplicas: 100,101,102\tIsr: 100\tElr: \tLastKnownElr: \n"
    "\tTopic: events\tPartition: 2\tLeader: none\tReplicas: 101,102,100\tIsr: \tElr: \tLastKnownElr: \n"
)
UNDER_REPLICATED_101 = (
    "\tTopic: events\tPartition: 0\tLeader: 100\tReplicas: 100,101,102\tIsr: 100,102\tElr: \tLastKnownElr: \n"
)
SINGLE_REPLICA_AT_MIN = (
    "\tTopic: logs\tPartition: 0\tLeader: 101\tReplicas: 101\tIsr: 101\tElr: \tLastKnownElr: \n"
)
QUORUM_STATUS = (
    "ClusterId:              4L6g3nShT-eMCtK--X86sw\n"
    "LeaderId:               1\n"
    "LeaderEpoch:            4\n"
    "HighWatermark:          1234\n"
    "MaxFollowerLag:         0\n"
    "MaxFollowerLagTimeMs:   0\n"
    'CurrentVoters:          [{"id": 0, "directoryId": "RbDvTJQ8Tf6VM1xIyuQzYw", "endpoints": ["CONTROLLER://kafka-controller-0.kafka-controller-headless.bigdata.svc:9093"]}, '
    '{"id": 1, "directoryId": "5ZzXPKv4SXmkg1o9yZbN6w", "endpoints": ["CONTROLLER://kafka-controller-1.kafka-controller-headless.bigdata.svc:9093"]}, '
    '{"id": 2, "directoryId": "dRkqYiW3T8Cv5fq0u0ewqA", "endpoints": ["CONTROLLER://kafka-controller-2.kafka-controller-headless.bigdata.svc:9093"]}]\n'
    'CurrentObservers:       [{"id": 100, "directoryId": "v4tGbkxGQWWwO3i6QfpVkQ"}, {"id": 101, "directoryId": "uAXQvXgXRmOu3JgoeA9oQA"}, '
    '{"id": 102, "directoryId": "nFZ6d3Xw7R2G0T0ZxQe2pw"}]\n'
)
QUORUM_NO_LEADER = QUORUM_STATUS.replace("LeaderId:               1", "LeaderId:               -1")
REPLICATION = (
    "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n"
    "1     \t5ZzXPKv4SXmkg1o9yZbN6w\t1234        \t0  \t1764651600000     \t1764651600000        \tLeader  \t\n"
    "0     \tRbDvTJQ8Tf6VM1xIyuQzYw\t1234        \t0  \t1764651599800     \t1764651599800        \tFollower\t\n"
    "2     \tdRkqYiW3T8Cv5fq0u0ewqA\t1180        \t54 \t1764651599000     \t1764651590000        \tFollower\t\n"
    "100   \tv4tGbkxGQWWwO3i6QfpVkQ\t1234        \t0  \t1764651599900     \t1764651599900        \tObserver\t\n"
)
BROKERS = (
    "kafka-broker-0.kafka-broker-headless.bigdata.svc:9092 (id: 100 rack: null isFenced: false) -> (\n"
    "\tProduce(0): 3 to 12 [usable: 12],\n)\n"
    "kafka-broker-2.kafka-broker-headless.bigdata.svc:9092 (id: 102 rack: null isFenced: false) -> (\n"
    "\tProduce(0): 3 to 12 [usable: 12],\n)\n"
)
FEATURES = (
    "Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1\tEpoch: 12\n"
    "Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 4.4-IV0\tFinalizedVersionLevel: 4.4-IV0\tEpoch: 12\n"
)


class FakeKafka:
    """exec_in_pod answering each Kafka tool with recorded output (keyed by the command's distinguishing part)."""

    def __init__(self, **answers):
        self.answers = dict(dict(status=QUORUM_STATUS, replication=REPLICATION, brokers=BROKERS, features=FEATURES,
                                 under_min="", at_min="", under_replicated=""), **answers)
        self.calls = []

    def __call__(self, pod_name, container, argv):
        self.calls.append((pod_name, argv))
        key = {"--under-min-isr-partitions": "under_min", "--at-min-isr-partitions": "at_min",
               "--under-replicated-partitions": "under_replicated", "--status": "status",
               "--replication": "replication"}.get(argv[-1])
        if argv[0].endswith("kafka-broker-api-versions.sh"):
            key = "brokers"
        elif argv[0].endswith("kafka-features.sh"):
            key = "features"
        answer = self.answers[key]
        if isinstance(answer, tuple):
            return answer
        return 0, answer, ""


BROKER_PODS = [pod("kafka-broker-%d" % i) for i in range(3)]
CONTROLLER_PODS = [pod("kafka-controller-%d" % i, component="controller") for i in range(3)]


def kafka_gate(fake, **kwargs):
    return rolling.KafkaGate(fake, lambda: BROKER_PODS + CONTROLLER_PODS, bootstrap_server="kafka.bigdata.svc:9092",
                             broker_node_id_offset=100, **kwargs)


def test_parse_partitions_of_the_tools_lines():
    assert rolling.parse_partitions(UNDER_MIN_ISR) == [
        dict(topic="events", partition=0, leader=100, replicas=[100, 101, 102], isr=[100]),
        dict(topic="events", partition=2, leader=-1, replicas=[101, 102, 100], isr=[]),
    ]


def test_parse_quorum_replication_by_header():
    rows = rolling.parse_quorum_replication(REPLICATION)
    assert rows[1] == dict(lag=0, status="Leader")
    assert rows[2] == dict(lag=54, status="Follower")
    assert rows[100]["status"] == "Observer"


def test_kafka_precheck_healthy_cluster_is_safe():
    fake = FakeKafka()
    assert kafka_gate(fake).precheck(BROKER_PODS + CONTROLLER_PODS) == []
    argv = fake.calls[0][1]
    assert argv[:3] == ["/opt/kafka/bin/kafka-metadata-quorum.sh", "--bootstrap-server", "kafka.bigdata.svc:9092"]
    assert fake.calls[0][0] == "kafka-broker-0"  # the tools run in a Ready broker


def test_kafka_precheck_refuses_partitions_already_under_min_isr():
    reasons = kafka_gate(FakeKafka(under_min=UNDER_MIN_ISR)).precheck(BROKER_PODS)
    assert reasons == ["2 partition(s) already below min.insync.replicas: events-0 (replicas 100,101,102, in sync 100), "
                       "events-2 (replicas 101,102,100, in sync none)"]


def test_kafka_a_broker_in_the_isr_of_a_partition_at_min_isr_must_not_go():
    gate = kafka_gate(FakeKafka(at_min=AT_MIN_ISR))
    assert gate.precheck([BROKER_PODS[2]]) == []  # broker 102 is the replica already out of that ISR
    assert gate.precheck([BROKER_PODS[1]]) == [
        "restarting kafka-broker-1 (node 101) would take events-1 (replicas 102,101,100, in sync 101,100) below min.insync.replicas"]


def test_kafka_a_partition_with_no_more_replicas_than_its_min_isr_does_not_hold_the_roll():
    assert kafka_gate(FakeKafka(at_min=SINGLE_REPLICA_AT_MIN)).precheck([BROKER_PODS[1]]) == []


def test_kafka_no_quorum_leader_refuses():
    assert kafka_gate(FakeKafka(status=QUORUM_NO_LEADER)).precheck(BROKER_PODS)[0].startswith("the KRaft quorum has no leader")


def test_kafka_a_failing_tool_is_a_reason_with_its_error():
    fake = FakeKafka(under_min=(1, "", "Error while executing topic command : Timed out waiting for a node assignment."))
    assert kafka_gate(fake).precheck(BROKER_PODS) == [
        "kafka-topics.sh failed in pod kafka-broker-0 (exit 1): Error while executing topic command : "
        "Timed out waiting for a node assignment."]


def test_kafka_downgrade_below_the_finalized_metadata_version_is_refused_naming_the_variable():
    gate = kafka_gate(FakeKafka(), image_tag="4.3.1", image_tag_variable="kafka_image_tag")
    assert gate.refusals(BROKER_PODS) == [
        "kafka_image_tag=4.3.1 is older than the metadata.version 4.4-IV0 the cluster already uses: Kafka 4.3 "
        "cannot read it (downgrading metadata.version is not supported). Set kafka_image_tag to 4.4 or newer"]
    assert gate.precheck(BROKER_PODS) == []  # a state of the cluster: not what refuses a downgrade
    assert kafka_gate(FakeKafka(), image_tag="4.4.1").refusals(BROKER_PODS) == []
    assert kafka_gate(FakeKafka(), image_tag="4.5.0").refusals(BROKER_PODS) == []


def test_kafka_downgrade_is_refused_even_when_forced_and_nothing_restarts():
    deleted = []
    roller = rolling.Roller(kafka_gate(FakeKafka(), image_tag="4.3.1"), deleted.append, lambda pod, timeout: 0,
                            force=True, force_variable="kafka_roll_force", sleep=lambda s: None)
    with pytest.raises(rolling.RollRefused) as refused:
        roller.run(BROKER_PODS)
    assert refused.value.forceable is False
    assert refused.value.reasons[0].startswith("image_tag=4.3.1 is older than the metadata.version 4.4-IV0")
    assert deleted == [] and roller.warnings == []


def test_kafka_order_controllers_then_brokers_leader_last():
    gate = kafka_gate(FakeKafka())
    ordered = gate.order(BROKER_PODS + CONTROLLER_PODS)
    assert [rolling.pod_name(p) for p in ordered] == [
        "kafka-controller-2", "kafka-controller-0", "kafka-controller-1",  # quorum leader 1 last
        "kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]


def test_kafka_tools_do_not_run_in_the_broker_being_restarted():
    fake = FakeKafka()
    gate = kafka_gate(fake)
    gate.before(BROKER_PODS[0])
    gate.settled(BROKER_PODS[0])
    assert {call[0] for call in fake.calls} == {"kafka-broker-1"}
    gate.after()


def test_kafka_broker_settles_when_registered_and_back_in_every_isr():
    assert kafka_gate(FakeKafka()).settled(BROKER_PODS[0]) == (True, "")
    ok, reason = kafka_gate(FakeKafka()).settled(BROKER_PODS[1])
    assert not ok and reason == "broker 101 is not registered (or still fenced)"
    brokers_all = BROKERS + "kafka-broker-1.kafka-broker-headless.bigdata.svc:9092 (id: 101 rack: null isFenced: false) -> (\n)\n"
    ok, reason = kafka_gate(FakeKafka(brokers=brokers_all, under_replicated=UNDER_REPLICATED_101)).settled(BROKER_PODS[1])
    assert not ok and reason == "broker 101 is not back in the ISR of events-0 (replicas 100,101,102, in sync 100,102)"
    assert kafka_gate(FakeKafka(brokers=brokers_all)).settled(BROKER_PODS[1]) == (True, "")


def test_kafka_fenced_broker_has_not_settled():
    fenced = BROKERS.replace("(id: 100 rack: null isFenced: false)", "(id: 100 rack: null isFenced: true)")
    assert not kafka_gate(FakeKafka(brokers=fenced)).settled(BROKER_PODS[0])[0]


def test_kafka_controller_settles_at_lag_zero():
    gate = kafka_gate(FakeKafka())
    assert gate.settled(CONTROLLER_PODS[0]) == (True, "")
    assert gate.settled(CONTROLLER_PODS[2]) == (False, "controller 2 is Follower with lag 54 behind the quorum leader")


# --------------------------------------------------------------------------- HDFS


def jmx(live_contacts, under_replicated=0, safemode=""):
    live = dict(("hdfs-datanode-%d.hdfs-datanode-headless.bigdata.svc:9866" % i,
                 {"infoAddr": "10.0.0.%d:9864" % i, "xferaddr": "10.0.0.%d:9866" % i, "lastContact": contact,
                  "adminState": "In Service", "numBlocks": 12})
                for i, contact in live_contacts.items())
    info = {"beans": [{"name": "Hadoop:service=NameNode,name=NameNodeInfo", "Safemode": safemode,
                       "LiveNodes": json.dumps(live), "Version": "3.4.3"}]}
    state = {"beans": [{"name": "Hadoop:service=NameNode,name=FSNamesystemState", "FSState": "Operational",
                        "NumLiveDataNodes": len(live), "NumDeadDataNodes": 0,
                        "UnderReplicatedBlocks": under_replicated}]}
    return json.dumps(info), json.dumps(state)


class FakeNameNode:
    def __init__(self, *answers):
        self.answers = list(answers)

    def __call__(self, path, query):
        info, state = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        return 200, info if "NameNodeInfo" in query[0][1] else state


DATANODES = [pod("hdfs-datanode-%d" % i, component="datanode") for i in range(3)]


def test_hdfs_precheck_records_the_under_replicated_baseline():
    gate = rolling.HdfsGate(FakeNameNode(jmx({0: 1, 1: 0, 2: 2}, under_replicated=4)))
    assert gate.precheck(DATANODES) == []
    assert gate.baseline == 4


def test_hdfs_safe_mode_refuses():
    gate = rolling.HdfsGate(FakeNameNode(jmx({0: 1}, safemode="Safe mode is ON. The reported blocks 0 needs additional 10 blocks")))
    assert gate.precheck(DATANODES)[0].startswith("NameNode is in safe mode: Safe mode is ON.")


def test_hdfs_datanode_settles_when_live_again_and_no_more_blocks_under_replicated():
    namenode = FakeNameNode(jmx({0: 0, 1: 0, 2: 0}, under_replicated=1))
    gate = rolling.HdfsGate(namenode)
    gate.precheck(DATANODES)
    namenode.answers = [jmx({1: 0, 2: 0}, under_replicated=1)]
    assert gate.settled(DATANODES[0]) == (False, "datanode hdfs-datanode-0 is not live at the NameNode yet")
    namenode.answers = [jmx({0: 30, 1: 0, 2: 0}, under_replicated=1)]
    assert gate.settled(DATANODES[0]) == (False, "the NameNode last heard from datanode hdfs-datanode-0 30s ago")
    namenode.answers = [jmx({0: 0, 1: 0, 2: 0}, under_replicated=7)]
    assert gate.settled(DATANODES[0]) == (False, "7 under-replicated blocks, 1 before the roll")
    namenode.answers = [jmx({0: 0, 1: 0, 2: 0}, under_replicated=1)]
    assert gate.settled(DATANODES[0]) == (True, "")


def test_hdfs_datanode_settles_only_once_heard_from_after_its_restart():
    """The NameNode declares a silent datanode dead only after ~10 min, so right after a restart
    the old process's registration still looks live; only a contact after the delete counts."""
    now = [100.0]
    namenode = FakeNameNode(jmx({0: 0, 1: 0, 2: 0}))
    gate = rolling.HdfsGate(namenode, clock=lambda: now[0])
    gate.precheck(DATANODES)
    gate.before(DATANODES[0])  # deleted at 100; its last heartbeat was 2 s before
    now[0] = 106.0
    namenode.answers = [jmx({0: 8, 1: 0, 2: 0})]
    assert gate.settled(DATANODES[0]) == (
        False, "the NameNode has not heard from datanode hdfs-datanode-0 since it was restarted 6s ago (last contact 8s ago)")
    now[0] = 109.0
    namenode.answers = [jmx({0: 1, 1: 0, 2: 0})]
    assert gate.settled(DATANODES[0]) == (True, "")


def test_hdfs_namenode_unreachable_is_a_reason():
    gate = rolling.HdfsGate(lambda path, query: (0, "curl in pod hdfs-namenode-0 failed (exit 7): Connection refused"))
    assert gate.precheck(DATANODES) == ["NameNode /jmx answered 0: curl in pod hdfs-namenode-0 failed (exit 7): Connection refused"]
