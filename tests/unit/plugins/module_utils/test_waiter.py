# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""waiter.py: rollout predicates, pod diagnosis and the wait loop (fake clock, no sleeping)."""

from __future__ import annotations

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import waiter as wt


def sts(replicas=3, ready=3, updated=3, current=None, generation=2, observed=2, cur_rev="kafka-6b9", upd_rev="kafka-6b9",
        strategy="RollingUpdate", partition=None):
    update = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    return {
        "metadata": {"name": "kafka", "namespace": "bigdata", "generation": generation, "uid": "sts-uid"},
        "spec": {"replicas": replicas, "updateStrategy": update,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "kafka", "app.kubernetes.io/instance": "dev"}}},
        "status": {"observedGeneration": observed, "replicas": replicas if current is None else current,
                   "readyReplicas": ready, "updatedReplicas": updated, "currentRevision": cur_rev, "updateRevision": upd_rev},
    }


def pod(name, ready=True, phase="Running", conditions=None, statuses=None, deleting=False):
    conds = conditions if conditions is not None else [{"type": "Ready", "status": "True" if ready else "False"}]
    meta = {"name": name, "namespace": "bigdata", "uid": "uid-" + name, "ownerReferences": [{"uid": "sts-uid"}]}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": conds,
                                         "containerStatuses": statuses if statuses is not None else [
                                             {"name": "kafka", "ready": ready, "restartCount": 0, "state": {"running": {}}}]}}


UNSCHEDULABLE = pod("kafka-1", ready=False, phase="Pending", statuses=[], conditions=[{
    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
               "3 No preemption victims found for incoming pod.",
}])


class TestStatefulSet:
    def test_ready(self):
        status = wt.statefulset_status(sts(), [pod("kafka-0"), pod("kafka-1"), pod("kafka-2")])
        assert status["ready"] and status["message"] == "3 of 3 replicas ready"

    def test_missing_pods_are_named_with_their_reason(self):
        status = wt.statefulset_status(sts(ready=1, updated=2, current=2), [pod("kafka-0"), UNSCHEDULABLE])
        assert not status["ready"]
        assert status["message"] == (
            "1 of 3 replicas ready (missing kafka-1: Pending, Unschedulable: 0/3 nodes are available: 3 Insufficient "
            "memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.; "
            "kafka-2: not created)"
        )

    def test_rolling_update_not_finished_until_one_revision(self):
        status = wt.statefulset_status(sts(updated=2, upd_rev="kafka-7c1"), [pod("kafka-%d" % i) for i in range(3)])
        assert not status["ready"]
        assert "2 of 3 updated to revision kafka-7c1" in status["message"]
        # all updated, but the controller has not flipped currentRevision yet
        assert not wt.statefulset_status(sts(upd_rev="kafka-7c1"), [pod("kafka-%d" % i) for i in range(3)])["ready"]

    def test_partitioned_update_and_on_delete(self):
        pods = [pod("kafka-%d" % i) for i in range(3)]
        assert wt.statefulset_status(sts(updated=1, upd_rev="kafka-7c1", partition=2), pods)["ready"]
        assert wt.statefulset_status(sts(updated=0, upd_rev="kafka-7c1", strategy="OnDelete"), pods)["ready"]

    def test_unobserved_generation(self):
        status = wt.statefulset_status(sts(generation=3, observed=2), [pod("kafka-%d" % i) for i in range(3)])
        assert not status["ready"] and "not yet observed generation 3" in status["message"]

    def test_scaled_to_zero(self):
        assert wt.statefulset_status(sts(replicas=0, ready=0, updated=0), [])["ready"]


def deployment(replicas=2, ready=2, updated=2, available=2, current=None, generation=5, observed=5, progressing=None):
    conditions = [progressing] if progressing else []
    return {
        "metadata": {"name": "kibana", "namespace": "bigdata", "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": "kibana"}}},
        "status": {"observedGeneration": observed, "replicas": replicas if current is None else current,
                   "readyReplicas": ready, "updatedReplicas": updated, "availableReplicas": available,
                   "conditions": conditions},
    }


class TestDeployment:
    def test_ready(self):
        assert wt.deployment_status(deployment(), [pod("kibana-a"), pod("kibana-b")])["ready"]

    def test_old_replicas_still_terminating(self):
        status = wt.deployment_status(deployment(current=3, updated=2), [pod("kibana-old", deleting=True)])
        assert not status["ready"] and "1 old replicas pending termination" in status["message"]

    def test_not_available_yet(self):
        status = wt.deployment_status(deployment(available=1), [])
        assert not status["ready"] and "1 of 2 available" in status["message"]

    def test_unready_pod_named(self):
        waiting = pod("kibana-x", ready=False, statuses=[
            {"name": "kibana", "ready": False, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}])
        status = wt.deployment_status(deployment(ready=1, available=1), [pod("kibana-a"), waiting])
        assert "missing kibana-x: Running, kibana ContainerCreating" in status["message"]

    def test_progress_deadline_is_fatal(self):
        stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "kibana-5d8" has timed out progressing.'}
        with pytest.raises(wt.FatalWait, match="progress deadline.*kibana-5d8"):
            wt.deployment_status(deployment(ready=0, available=0, progressing=stuck), [])


def job(conditions=(), succeeded=0, failed=0, active=0, completions=None):
    spec = {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}}}
    if completions is not None:
        spec["completions"] = completions
    return {"metadata": {"name": "es-setup-1a2b", "namespace": "bigdata", "uid": "job-uid"}, "spec": spec,
            "status": {"succeeded": succeeded, "failed": failed, "active": active, "conditions": list(conditions)}}


class TestJob:
    def test_complete(self):
        done = job([{"type": "Complete", "status": "True"}], succeeded=1)
        status = wt.resource_status("Job", done, [pod("es-setup-1a2b-x", ready=False, phase="Succeeded")])
        assert status["ready"] and status["message"] == "complete, 1 of 1 completions succeeded"
        assert (status["kind"], status["replicas"], status["ready_replicas"]) == ("Job", 1, 1)

    def test_running_names_its_pods_and_failed_attempts(self):
        failed_try = pod("es-setup-1a2b-a", ready=False, phase="Failed")
        running = pod("es-setup-1a2b-b", ready=False, statuses=[
            {"name": "setup", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
        status = wt.job_status(job(failed=1, active=1, completions=2), [failed_try, running])
        assert not status["ready"]
        assert status["message"] == ("0 of 2 completions succeeded, 1 failed attempts "
                                     "(running es-setup-1a2b-b: Running, setup ContainerCreating)")

    def test_failed_job_is_fatal_with_its_reason_and_where_to_look(self):
        failed = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                       "message": "Job has reached the specified backoff limit"}], failed=5)
        with pytest.raises(wt.FatalWait) as error:
            wt.job_status(failed, [])
        assert str(error.value) == (
            "Job bigdata/es-setup-1a2b failed: BackoffLimitExceeded (Job has reached the specified backoff limit). "
            "Its pods' log says why (kubectl -n bigdata logs job/es-setup-1a2b); fix the cause and run again")

    def test_image_pull_failure_of_a_job_pod_is_fatal(self):
        bad = pod("es-setup-1a2b-a", ready=False, phase="Pending", statuses=[
            {"name": "setup", "ready": False, "restartCount": 0,
             "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}])
        with pytest.raises(wt.FatalWait, match="Job bigdata/es-setup-1a2b: pod es-setup-1a2b-a container setup is in ErrImagePull"):
            wt.resource_status("Job", job(active=1), [bad])


class TestPodProblems:
    def test_crash_loop_is_fatal_with_last_state(self):
        crashing = pod("kafka-2", ready=False, statuses=[{
            "name": "kafka", "ready": False, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 2m40s restarting failed container=kafka pod=kafka-2_bigdata(uid)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-01-01T00:05:00Z"}},
        }])
        with pytest.raises(wt.FatalWait) as error:
            wt.resource_status("StatefulSet", sts(ready=2), [pod("kafka-0"), pod("kafka-1"), crashing])
        text = str(error.value)
        assert text.startswith("StatefulSet bigdata/kafka: pod kafka-2 container kafka is in CrashLoopBackOff (restarts 5)")
        assert "last state: terminated Error exit code 1 at 2026-01-01T00:05:00Z" in text

    def test_one_crash_backs_off_and_is_waited_for(self):
        # The kubelet's back-off before the first restart: CrashLoopBackOff with restartCount 1.
        def backing_off(restarts):
            return pod("kafka-0", ready=False, statuses=[{
                "name": "kafka", "ready": False, "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 10s restarting failed container=kafka"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "Error"}}}])
        assert wt.pod_fatal(backing_off(1)) is None
        assert wt.pod_fatal(backing_off(2)) is None
        assert "is in CrashLoopBackOff (restarts 3)" in wt.pod_fatal(backing_off(3))

    def test_image_pull_in_init_container(self):
        bad = pod("kafka-0", ready=False, statuses=[])
        bad["status"]["initContainerStatuses"] = [{
            "name": "format-storage", "ready": False, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "apache/kafka:9.9.9"'}}}]
        assert "format-storage is in ImagePullBackOff" in wt.pod_fatal(bad)

    def test_growing_restart_count(self):
        tracker = wt.RestartTracker()

        def flapping(restarts):
            return pod("kafka-0", ready=False, statuses=[{
                "name": "kafka", "ready": False, "restartCount": restarts, "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])

        assert wt.pod_fatal(flapping(4), tracker) is None  # restarts before the wait do not count
        assert wt.pod_fatal(flapping(6), tracker) is None
        assert "restarted 3 times during the wait" in wt.pod_fatal(flapping(7), tracker)
        assert "OOMKilled exit code 137" in wt.pod_fatal(flapping(7), tracker)

    def test_describe_variants(self):
        assert wt.describe_pod(pod("a", deleting=True)) == "Terminating"
        assert wt.describe_pod(pod("a", ready=False)) == "Running, not ready (kafka)"


class TestSelectors:
    def test_label_selector(self):
        selector = {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["x", "y"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "k", "operator": "Exists"}, {"key": "gone", "operator": "DoesNotExist"}]}
        assert wt.label_selector(selector) == "a=1,b=2,tier in (x,y),env notin (prod),k,!gone"

    def test_owned_by(self):
        assert wt.owned_by(pod("kafka-0"), "sts-uid")
        assert not wt.owned_by(pod("kafka-0"), "other-uid")
        assert wt.owned_by({"metadata": {}}, "sts-uid")


class TestWaitUntil:
    def test_times_out_without_real_sleep_and_keeps_last_info(self, clock):
        calls = []

        def probe():
            calls.append(clock.now)
            return False, "still %d" % len(calls)

        done, info, elapsed = wt.wait_until(probe, timeout=12, interval=5, clock=clock.monotonic, sleep=clock.sleep)
        assert not done
        assert clock.sleeps == [5, 5, 2]
        assert info == "still 4" and elapsed == 12

    def test_returns_when_done(self, clock):
        answers = iter([(False, None), (True, "ok")])
        done, info, elapsed = wt.wait_until(lambda: next(answers), 60, 5, clock=clock.monotonic, sleep=clock.sleep)
        assert done and info == "ok" and elapsed == 5

    def test_fatal_stops_at_once(self, clock):
        def probe():
            raise wt.FatalWait("boom")

        with pytest.raises(wt.FatalWait):
            wt.wait_until(probe, 60, 5, clock=clock.monotonic, sleep=clock.sleep)
        assert clock.sleeps == []


def event(pod_name, reason, message, uid=None):
    return {"reason": reason, "message": message,
            "involvedObject": {"kind": "Pod", "name": pod_name, "uid": uid or "uid-" + pod_name}}


MISSING_SECRET = 'MountVolume.SetUp failed for volume "tls" : secret "kafka-tls" not found'
MISSING_CONFIGMAP = 'MountVolume.SetUp failed for volume "conf" : configmap "kafka-config" not found'


class TestStuckPods:
    def test_unschedulable_message_is_the_schedulers(self):
        assert wt.unschedulable_message(UNSCHEDULABLE).startswith("0/3 nodes are available: 3 Insufficient memory.")
        assert wt.unschedulable_message(pod("kafka-0")) is None
        creating = pod("kafka-2", ready=False, phase="Pending", statuses=[], conditions=[
            {"type": "PodScheduled", "status": "True"}])
        assert wt.unschedulable_message(creating) is None

    def test_every_pending_pod_unschedulable_for_the_patience_fails_with_the_schedulers_message(self):
        judge = wt.StuckJudge(60)
        judge.nodes_seen(3, 0)
        assert judge.unschedulable([UNSCHEDULABLE], [], 0) is None
        assert judge.unschedulable([UNSCHEDULABLE], [], 59) is None
        message = judge.unschedulable([UNSCHEDULABLE], [], 60)
        assert message == (
            "bigdata/kafka-1 cannot be scheduled and no node is being added (node count unchanged, no "
            "TriggeredScaleUp event) after 60s: 0/3 nodes are available: 3 Insufficient memory. preemption: "
            "0/3 nodes are available: 3 No preemption victims found for incoming pod.. Free or add capacity, "
            "or lower the requests")

    def test_a_pending_pod_that_is_scheduled_keeps_the_wait_going(self):
        judge = wt.StuckJudge(10)
        creating = pod("kafka-2", ready=False, phase="Pending", statuses=[], conditions=[
            {"type": "PodScheduled", "status": "True"}])
        for now in (0, 30, 100):
            assert judge.unschedulable([UNSCHEDULABLE, creating], [], now) is None

    def test_a_scale_up_in_progress_keeps_the_wait_going(self):
        judge = wt.StuckJudge(10)
        scale_up = event("kafka-1", "TriggeredScaleUp", "pod triggered scale-up: [{pool-a 2->3 (max: 5)}]")
        for now in (0, 30, 100):
            assert judge.unschedulable([UNSCHEDULABLE], [scale_up], now) is None
        # The event of another pod (same name, older uid) does not count.
        stale = event("kafka-1", "TriggeredScaleUp", "pod triggered scale-up", uid="uid-old")
        assert judge.unschedulable([UNSCHEDULABLE], [stale], 100) is None
        assert judge.unschedulable([UNSCHEDULABLE], [stale], 110) is not None

    def test_a_node_added_starts_the_clock_again(self):
        judge = wt.StuckJudge(60)
        judge.nodes_seen(3, 0)
        assert judge.unschedulable([UNSCHEDULABLE], [], 0) is None
        judge.nodes_seen(4, 50)
        assert judge.unschedulable([UNSCHEDULABLE], [], 50) is None
        assert judge.unschedulable([UNSCHEDULABLE], [], 100) is None
        assert "after 60s" in judge.unschedulable([UNSCHEDULABLE], [], 110)

    def test_a_pod_created_again_starts_the_clock_again(self):
        judge = wt.StuckJudge(60)
        assert judge.unschedulable([UNSCHEDULABLE], [], 0) is None
        again = dict(UNSCHEDULABLE, metadata=dict(UNSCHEDULABLE["metadata"], uid="uid-new"))
        assert judge.unschedulable([again], [], 40) is None
        assert judge.unschedulable([again], [], 99) is None
        assert judge.unschedulable([again], [], 100) is not None

    def test_several_pods_name_each_and_each_message_once(self):
        judge = wt.StuckJudge(5)
        other = dict(UNSCHEDULABLE, metadata=dict(UNSCHEDULABLE["metadata"], name="kafka-2", uid="uid-kafka-2"))
        judge.unschedulable([UNSCHEDULABLE, other], [], 0)
        message = judge.unschedulable([UNSCHEDULABLE, other], [], 5)
        assert message.startswith("bigdata/kafka-1, bigdata/kafka-2 cannot be scheduled")
        assert message.count("Insufficient memory") == 1

    def test_missing_mounts_from_the_kubelets_events(self):
        creating = pod("kafka-0", ready=False, phase="Pending")
        events = [event("kafka-0", "FailedMount", MISSING_SECRET), event("kafka-0", "FailedMount", MISSING_SECRET),
                  event("kafka-0", "FailedMount", MISSING_CONFIGMAP), event("kafka-1", "FailedMount", MISSING_SECRET),
                  event("kafka-0", "Scheduled", "Successfully assigned bigdata/kafka-0 to worker-0"),
                  event("kafka-0", "FailedMount", 'MountVolume.SetUp failed for volume "data" : timed out')]
        assert wt.missing_mounts(creating, events) == [("Secret", "kafka-tls"), ("ConfigMap", "kafka-config")]
        assert wt.missing_mounts(pod("kafka-2", ready=False, phase="Pending"), events) == []

    def test_missing_mount_fails_after_the_patience_naming_what_is_missing(self):
        judge = wt.StuckJudge(30)
        creating = pod("kafka-0", ready=False, phase="Pending")
        assert judge.missing_mount(creating, [("Secret", "kafka-tls")], 0) is None
        assert judge.missing_mount(creating, [("Secret", "kafka-tls")], 29) is None
        assert judge.missing_mount(creating, [("Secret", "kafka-tls")], 30) == (
            "pod bigdata/kafka-0 cannot start: its volumes need Secret kafka-tls, which does not exist "
            "(FailedMount for 30s). Create it, or fix the volume's name")
        # Created meanwhile: the clock starts again when it goes missing again.
        assert judge.missing_mount(creating, [], 40) is None
        assert judge.missing_mount(creating, [("Secret", "kafka-tls"), ("ConfigMap", "c")], 50) is None
        assert "Secret kafka-tls and ConfigMap c, which do not exist" in judge.missing_mount(
            creating, [("Secret", "kafka-tls"), ("ConfigMap", "c")], 80)

    def test_progress_line(self):
        assert wt.progress_line(120.7, 900, "StatefulSet bigdata/kafka: 1 of 3 replicas ready") == (
            "[120s of 900s] still waiting for StatefulSet bigdata/kafka: 1 of 3 replicas ready")
