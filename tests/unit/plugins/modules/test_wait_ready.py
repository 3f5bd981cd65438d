# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""wait_ready: both stages through main(), with a fake API server and a fake clock."""

from __future__ import annotations

import base64
import functools
import json
from types import SimpleNamespace

import pytest

from ansible_collections.bigdata.stack.plugins.modules import wait_ready

from conftest import make_pod

ES_GREEN = json.dumps({"cluster_name": "bigdata", "status": "green", "number_of_nodes": 3, "number_of_data_nodes": 3,
                       "unassigned_shards": 0, "active_shards_percent_as_number": 100.0})
ES_YELLOW = json.dumps({"cluster_name": "bigdata", "status": "yellow", "number_of_nodes": 1, "number_of_data_nodes": 1,
                        "unassigned_shards": 4, "active_shards_percent_as_number": 50.0})


@pytest.fixture
def cluster(monkeypatch, fake_rest, clock):
    monkeypatch.setattr(wait_ready, "connect", lambda module: (fake_rest, None))
    monkeypatch.setattr(wait_ready, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    return fake_rest


def statefulset(rest, name="kafka", replicas=3, ready=3):
    rest.add("bigdata", "statefulsets", {
        "metadata": {"name": name, "namespace": "bigdata", "generation": 1, "uid": name + "-uid"},
        "spec": {"replicas": replicas, "updateStrategy": {"type": "RollingUpdate"},
                 "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready, "updatedReplicas": replicas,
                   "currentRevision": name + "-1", "updateRevision": name + "-1"},
    }, group="apps/v1")


def member(rest, name, app="kafka", ready=True, phase="Running", **kwargs):
    pod = make_pod(name, phase=phase, labels={"app.kubernetes.io/name": app}, ready=ready, **kwargs)
    pod["metadata"]["ownerReferences"] = [{"uid": app + "-uid"}]
    pod["status"]["podIP"] = "10.244.0.%d" % (len(rest.objects) + 10)
    for status in pod["status"]["containerStatuses"]:
        status["ready"] = ready
    rest.add_pod(pod)
    return pod


def kafka_args(**overrides):
    base = dict(namespace="bigdata", resources=[{"kind": "StatefulSet", "name": "kafka"}], timeout=60, poll_interval=5)
    base.update(overrides)
    return base


class TestRollout:
    def test_ready_rollout_only(self, cluster, run_module, clock):
        statefulset(cluster)
        for i in range(3):
            member(cluster, "kafka-%d" % i)
        outcome, result = run_module(wait_ready.main, kafka_args())
        assert outcome == "exit" and result["ready"] is True and result["changed"] is False
        assert result["resources"][0]["ready"] and result["resources"][0]["message"] == "3 of 3 replicas ready"
        assert clock.sleeps == [] and result["health"] == {}

    def test_timeout_names_missing_replicas_and_why(self, cluster, run_module, clock):
        statefulset(cluster, ready=1)
        member(cluster, "kafka-0")
        pending = member(cluster, "kafka-1", ready=False, phase="Pending")
        pending["status"]["containerStatuses"] = []
        pending["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": "0/3 nodes are available: 3 Insufficient memory."}]
        cluster.add_pod(pending)
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=30))
        assert outcome == "fail" and result["ready"] is False and result["changed"] is False
        assert result["msg"] == (
            "timed out after 30s waiting in namespace bigdata: StatefulSet bigdata/kafka: 1 of 3 replicas ready "
            "(missing kafka-1: Pending, Unschedulable: 0/3 nodes are available: 3 Insufficient memory.; "
            "kafka-2: not created)"
        )
        assert clock.sleeps == [5, 5, 5, 5, 5, 5] and result["elapsed"] == 30.0

    def test_wait_options_have_kubernetes_core_names_and_the_old_ones_as_aliases(self, cluster, run_module, clock):
        statefulset(cluster, ready=0)
        outcome, result = run_module(wait_ready.main, dict(namespace="bigdata", resources=[{"kind": "StatefulSet", "name": "kafka"}],
                                                           wait_timeout=6, wait_sleep=2))
        assert outcome == "fail" and result["msg"].startswith("timed out after 6s waiting in namespace bigdata")
        assert clock.sleeps == [2, 2, 2]
        outcome, result = run_module(wait_ready.main, dict(namespace="bigdata", wait_sleep=0))
        assert outcome == "fail" and result["msg"] == "wait_sleep must be at least 1 and wait_timeout not negative"

    def test_crash_loop_fails_early(self, cluster, run_module, clock):
        statefulset(cluster, ready=2)
        member(cluster, "kafka-0")
        member(cluster, "kafka-1")
        member(cluster, "kafka-2", ready=False, containers=[{
            "name": "kafka", "ready": False, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}])
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=600))
        assert outcome == "fail" and clock.sleeps == []
        assert "pod kafka-2 container kafka is in CrashLoopBackOff (restarts 4)" in result["msg"]
        assert "last state: terminated Error exit code 1" in result["msg"]

    def test_missing_workload(self, cluster, run_module):
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=5))
        assert outcome == "fail" and "StatefulSet bigdata/kafka: not found" in result["msg"]

    def test_job_until_complete(self, cluster, run_module, clock):
        meta = {"name": "es-setup-1a2b", "namespace": "bigdata", "uid": "job-uid"}
        spec = {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}}}
        cluster.add("bigdata", "jobs", {"metadata": meta, "spec": spec, "status": {"active": 1}}, group="batch/v1")
        done = {"metadata": meta, "spec": spec, "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}

        def complete_after_the_first_look(path):
            if path.endswith("/jobs/es-setup-1a2b") and [c for c in cluster.calls if c[0] == "get"][1:]:
                cluster.add("bigdata", "jobs", done, group="batch/v1")

        cluster.on_get = complete_after_the_first_look
        outcome, result = run_module(wait_ready.main, dict(namespace="bigdata", resources=[{"kind": "Job", "name": "es-setup-1a2b"}],
                                                           wait_timeout=60, wait_sleep=5))
        assert outcome == "exit" and result["ready"], result
        assert result["checks"] == ["completion of Job bigdata/es-setup-1a2b"]
        assert result["resources"][0]["message"] == "complete, 1 of 1 completions succeeded"
        assert clock.sleeps == [5]
        assert ("get", "/apis/batch/v1/namespaces/bigdata/jobs/es-setup-1a2b") in cluster.calls

    def test_check_mode_only_describes(self, cluster, run_module):
        outcome, result = run_module(wait_ready.main, kafka_args(health={"type": "kafka", "min_brokers": 3}), check_mode=True)
        assert outcome == "exit" and result["ready"] is None and not result["changed"]
        assert result["checks"] == ["rollout of StatefulSet bigdata/kafka",
                                    "kafka health in a pod of StatefulSet kafka (KRaft leader, min_brokers 3)"]
        assert cluster.calls == []


UNSCHEDULABLE_MESSAGE = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."


def unschedulable(cluster, name):
    pod = member(cluster, name, ready=False, phase="Pending")
    pod["status"]["containerStatuses"] = []
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": UNSCHEDULABLE_MESSAGE}]
    cluster.add_pod(pod)
    return pod


def nodes(cluster, count):
    for path in [p for p in cluster.objects if p.startswith("/api/v1/nodes/")]:
        del cluster.objects[path]
    for i in range(count):
        cluster.objects["/api/v1/nodes/worker-%d" % i] = {"metadata": {"name": "worker-%d" % i}}


def pod_event(cluster, pod_name, reason, message):
    name = "%s.%s.%d" % (pod_name, reason, len(cluster.objects))
    cluster.add("bigdata", "events", {"metadata": {"name": name, "namespace": "bigdata"}, "reason": reason,
                                      "message": message,
                                      "involvedObject": {"kind": "Pod", "name": pod_name, "uid": "uid-" + pod_name}})


class TestStuckAndProgress:
    def test_unschedulable_fails_after_stuck_timeout_with_the_schedulers_message(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        nodes(cluster, 3)
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=900, poll_interval=5, stuck_timeout=60))
        assert outcome == "fail" and result["ready"] is None
        assert sum(clock.sleeps) == 60
        assert result["msg"] == (
            "bigdata/kafka-0 cannot be scheduled and no node is being added (node count unchanged, no TriggeredScaleUp "
            "event) after 60s: %s. Free or add capacity, or lower the requests" % UNSCHEDULABLE_MESSAGE)
        assert result["resources"][0]["message"].startswith("0 of 1 replicas ready (missing kafka-0: Pending, Unschedulable")

    def test_a_node_being_added_keeps_the_wait_going(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        nodes(cluster, 3)
        # A node joins every 50 s: never 60 s without one.
        cluster.on_get = lambda path: nodes(cluster, 3 + int(clock.now - 1000) // 50)
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=200, poll_interval=5, stuck_timeout=60))
        assert result["msg"].startswith("timed out after 200s")

    def test_triggered_scale_up_keeps_the_wait_going(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        pod_event(cluster, "kafka-0", "TriggeredScaleUp", "pod triggered scale-up: [{pool-a 2->3 (max: 5)}]")
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=200, poll_interval=5, stuck_timeout=60))
        assert result["msg"].startswith("timed out after 200s")

    def test_without_events_nor_nodes_to_read_only_the_timeout_ends_the_wait(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        cluster.denied.update(["/api/v1/nodes", "/api/v1/namespaces/bigdata/events"])
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=200, poll_interval=5, stuck_timeout=60))
        assert result["msg"].startswith("timed out after 200s")
        # With nodes readable (events not), the node count alone tells that no node came.
        cluster.denied.discard("/api/v1/nodes")
        nodes(cluster, 3)
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=200, poll_interval=5, stuck_timeout=60))
        assert "cannot be scheduled" in result["msg"]

    def test_stuck_timeout_zero_waits_for_the_timeout(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=200, poll_interval=5, stuck_timeout=0))
        assert result["msg"].startswith("timed out after 200s")
        assert not [call for call in cluster.calls if call[0] == "list"]

    def test_missing_secret_volume_fails_naming_it(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        creating = member(cluster, "kafka-0", ready=False, phase="Pending", containers=[
            {"name": "kafka", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
        pod_event(cluster, "kafka-0", "FailedMount",
                  'MountVolume.SetUp failed for volume "tls" : secret "kafka-tls" not found')
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=900, poll_interval=5, stuck_timeout=30))
        assert outcome == "fail" and sum(clock.sleeps) == 30
        assert result["msg"] == ("pod bigdata/kafka-0 cannot start: its volumes need Secret kafka-tls, which does not "
                                 "exist (FailedMount for 30s). Create it, or fix the volume's name")
        assert creating["metadata"]["name"] in result["resources"][0]["message"]

    def test_a_secret_that_exists_now_is_not_missing(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        member(cluster, "kafka-0", ready=False, phase="Pending", containers=[
            {"name": "kafka", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
        pod_event(cluster, "kafka-0", "FailedMount",
                  'MountVolume.SetUp failed for volume "tls" : secret "kafka-tls" not found')
        cluster.add("bigdata", "secrets", {"metadata": {"name": "kafka-tls"}, "data": {}})
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=120, poll_interval=5, stuck_timeout=30))
        assert result["msg"].startswith("timed out after 120s")

    def test_progress_lines_every_interval_say_what_is_missing(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        lines = []
        outcome, result = run_module(functools.partial(wait_ready.main, progress=lines.append),
                                     kafka_args(timeout=95, poll_interval=5, stuck_timeout=0, progress_interval=30))
        assert outcome == "fail"
        assert [line.split("]")[0] for line in lines] == ["[30s of 95s", "[60s of 95s", "[90s of 95s"]
        assert lines[0] == ("[30s of 95s] still waiting for StatefulSet bigdata/kafka: 0 of 1 replicas ready (missing "
                            "kafka-0: Pending, Unschedulable: %s)" % UNSCHEDULABLE_MESSAGE)

    def test_no_progress_lines_when_switched_off_or_done_early(self, cluster, run_module, clock):
        statefulset(cluster, ready=0, replicas=1)
        unschedulable(cluster, "kafka-0")
        lines = []
        run_module(functools.partial(wait_ready.main, progress=lines.append),
                   kafka_args(timeout=95, poll_interval=5, stuck_timeout=0, progress_interval=0))
        assert lines == []
        statefulset(cluster, replicas=1, ready=1)
        member(cluster, "kafka-0")
        outcome, result = run_module(functools.partial(wait_ready.main, progress=lines.append), kafka_args())
        assert outcome == "exit", result["msg"]
        assert lines == []

    def test_negative_stuck_timeout_is_refused(self, cluster, run_module):
        outcome, result = run_module(wait_ready.main, kafka_args(stuck_timeout=-1))
        assert outcome == "fail" and result["msg"] == (
            "stuck_timeout and progress_interval must not be negative (0 switches them off)")


def elasticsearch(cluster):
    statefulset(cluster, name="elasticsearch", replicas=1, ready=1)
    member(cluster, "elasticsearch-0", app="elasticsearch")


ES_ARGS = dict(namespace="bigdata", resources=[{"kind": "StatefulSet", "name": "elasticsearch"}], timeout=20, poll_interval=5)


class TestHealth:
    def test_elasticsearch_through_service_proxy_until_green(self, cluster, run_module, clock):
        elasticsearch(cluster)
        cluster.proxy[("_cluster/health", ())] = [(200, ES_YELLOW), (200, ES_GREEN)]
        outcome, result = run_module(wait_ready.main, dict(ES_ARGS, health={"type": "elasticsearch"}))
        assert outcome == "exit" and result["ready"]
        assert result["health"]["status"] == "green" and result["health"]["type"] == "elasticsearch"
        proxied = [c for c in cluster.calls if c[0] == "proxy"]
        assert proxied[0][1:4] == ("bigdata", "http:elasticsearch:9200", "_cluster/health")
        assert clock.sleeps == [5]

    def test_health_timeout_message(self, cluster, run_module):
        elasticsearch(cluster)
        cluster.proxy[("_cluster/health", ())] = (200, ES_YELLOW)
        outcome, result = run_module(wait_ready.main, dict(ES_ARGS, health={"type": "elasticsearch", "scheme": "https"}))
        assert outcome == "fail"
        assert result["msg"].startswith("timed out after 20s waiting in namespace bigdata: elasticsearch health: "
                                        "cluster bigdata is yellow, waiting for green")

    def test_application_false_skips_health(self, cluster, run_module):
        elasticsearch(cluster)
        outcome, result = run_module(wait_ready.main, dict(ES_ARGS, health={"type": "elasticsearch"}, application=False))
        assert outcome == "exit" and result["ready"] and not [c for c in cluster.calls if c[0] == "proxy"]

    def test_credentials_secret_runs_curl_in_the_pod_with_stdin_credentials(self, cluster, run_module):
        elasticsearch(cluster)
        password = "Sup3r-S3cret!"
        cluster.add("bigdata", "secrets", {"metadata": {"name": "es-monitor"}, "data": {
            "username": base64.b64encode(b"monitor").decode(), "password": base64.b64encode(password.encode()).decode()}})
        cluster.exec_results = [(0, ES_GREEN + "\n200", "")]
        outcome, result = run_module(wait_ready.main, dict(ES_ARGS, health={
            "type": "elasticsearch", "scheme": "https", "credentials_secret": "es-monitor"}))
        assert outcome == "exit" and result["ready"], result
        (call,) = [c for c in cluster.calls if c[0] == "exec"]
        assert call[1] == "elasticsearch-0"
        assert call[2][-1].startswith("https://10.244.0.") and call[2][-1].endswith(":9200/_cluster/health")
        assert password not in " ".join(call[2])
        assert call[3] == 'user = "monitor:%s"\n' % password
        assert password not in json.dumps(result)

    def test_kafka_quorum_and_brokers_by_exec(self, cluster, run_module):
        statefulset(cluster)
        for i in range(3):
            member(cluster, "kafka-%d" % i)
        quorum = "ClusterId: abc\nLeaderId: 1\nLeaderEpoch: 2\nCurrentVoters: [0,1,2]\nCurrentObservers: []\n"
        brokers = "".join("kafka-%d:9092 (id: %d rack: null isFenced: false) -> (\n)\n" % (i, i) for i in range(3))
        cluster.exec_results = [(0, quorum, ""), (0, brokers, "")]
        outcome, result = run_module(wait_ready.main, kafka_args(health={"type": "kafka", "min_brokers": 3}))
        assert outcome == "exit" and result["ready"], result
        assert result["health"]["leader_id"] == 1 and result["health"]["brokers"] == [0, 1, 2]
        commands = [c[2] for c in cluster.calls if c[0] == "exec"]
        assert commands[0][0] == "/opt/kafka/bin/kafka-metadata-quorum.sh" and commands[0][-2:] == ("describe", "--status")
        assert commands[1][0] == "/opt/kafka/bin/kafka-broker-api-versions.sh"

    def test_kafka_tool_failure_is_reported(self, cluster, run_module):
        statefulset(cluster, replicas=1, ready=1)
        member(cluster, "kafka-0")
        cluster.exec_results = [(1, "", "org.apache.kafka.common.errors.TimeoutException: Timed out waiting")] * 3
        outcome, result = run_module(wait_ready.main, kafka_args(timeout=10, health={"type": "kafka"}))
        assert outcome == "fail"
        assert "kafka health: kafka-metadata-quorum.sh failed in pod kafka-0 (exit 1)" in result["msg"]
        assert "TimeoutException" in result["msg"]

    def test_missing_credentials_secret_is_fatal(self, cluster, run_module, clock):
        elasticsearch(cluster)
        outcome, result = run_module(wait_ready.main, dict(ES_ARGS, health={"type": "elasticsearch", "credentials_secret": "nope"}))
        assert outcome == "fail" and "credentials_secret bigdata/nope does not exist" in result["msg"]
        assert clock.sleeps == []
