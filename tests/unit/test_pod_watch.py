"""tests/helpers.PodWatch: which deletions were the roll's and which were kwok's.

The roll tests assert the order in which the roll deleted pods. kwok's pod-delete stage ends every
graceful delete with a DELETE by name and grace 0, without a uid precondition
(sigs.k8s.io/kwok@v0.8.0 pkg/kwok/controllers/pod_controller.go, deleteOpt), so when it runs late it
takes the pod the StatefulSet controller has just created in place of the deleted one. The events
below are the ones the API server sends for each delete: a pod is graceful-deletable even at grace
0, so every DELETE first writes deletionTimestamp and deletionGracePeriodSeconds (a MODIFIED event)
and only then removes the pod (k8s.io/apiserver@v0.36.3 pkg/registry/rest/delete.go BeforeDelete,
pkg/registry/generic/registry/store.go updateForGracefulDeletionAndFinalizers).
"""

import datetime

from kubernetes import client

from helpers import PodWatch

NOW = datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc)


def pod(name, uid, ready=True, grace=None):
    meta = client.V1ObjectMeta(name=name, uid=uid)
    if grace is not None:
        meta.deletion_timestamp = NOW
        meta.deletion_grace_period_seconds = grace
    status = client.V1PodStatus(conditions=[client.V1PodCondition(type="Ready", status=str(ready))])
    return client.V1Pod(metadata=meta, status=status)


def graceful_delete_then_kwok(name, uid, grace):
    """The roll's delete (the pod's grace period), then kwok's grace-0 delete of the same pod."""
    return [("MODIFIED", pod(name, uid, grace=grace)), ("MODIFIED", pod(name, uid, grace=0)),
            ("DELETED", pod(name, uid, grace=0))]


def replacement(name, uid):
    return [("ADDED", pod(name, uid, ready=False)), ("MODIFIED", pod(name, uid))]


def kwok_late_delete(name, uid):
    """kwok's DELETE by name, late: it takes the replacement, which no one deleted gracefully."""
    return [("MODIFIED", pod(name, uid, grace=0)), ("DELETED", pod(name, uid, grace=0))]


def watch_of(events, names=("a-0", "a-1")):
    seen = PodWatch(client.ApiClient(), "ns", "app=a")
    seen.state = {name: True for name in names}
    for kind, obj in events:
        seen.seen({"type": kind, "object": obj})
    return seen


def test_the_rolls_graceful_deletes_are_listed_in_order():
    seen = watch_of(graceful_delete_then_kwok("a-1", "u1", 60) + replacement("a-1", "u1b")
                    + graceful_delete_then_kwok("a-0", "u0", 60) + replacement("a-0", "u0b"))
    assert seen.deleted == ["a-1", "a-0"]
    assert seen.forced == []
    assert seen.worst == (1, ["a-1"])


def test_kwoks_late_delete_of_the_replacement_is_listed_apart():
    # CI of stop 23: kafka-controller-0 was counted twice, the second time the
    # replacement that kwok's late grace-0 DELETE took.
    seen = watch_of(graceful_delete_then_kwok("a-1", "u1", 60) + replacement("a-1", "u1b")
                    + kwok_late_delete("a-1", "u1b") + replacement("a-1", "u1c")
                    + graceful_delete_then_kwok("a-0", "u0", 60) + replacement("a-0", "u0b"))
    assert seen.deleted == ["a-1", "a-0"]
    assert seen.forced == ["a-1"]


def test_a_graceful_delete_by_someone_else_still_counts():
    # Two graceful deletes of the same name are two restarts, whoever sent them: the test must see it.
    seen = watch_of(graceful_delete_then_kwok("a-1", "u1", 60) + replacement("a-1", "u1b")
                    + graceful_delete_then_kwok("a-1", "u1b", 60) + replacement("a-1", "u1c"))
    assert seen.deleted == ["a-1", "a-1"]
    assert seen.forced == []


def test_two_pods_down_at_once_is_the_worst_seen():
    seen = watch_of([("MODIFIED", pod("a-1", "u1", grace=60)), ("MODIFIED", pod("a-0", "u0", grace=60))])
    assert seen.worst == (2, ["a-0", "a-1"])
