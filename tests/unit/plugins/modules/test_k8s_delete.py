"""bigdata.stack.k8s_delete: find by label, delete everything, then one wait."""

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError
from ansible_collections.bigdata.stack.plugins.modules import k8s_delete

KINDS = [{"api_version": "apps/v1", "kind": "StatefulSet"}, {"api_version": "v1", "kind": "Service"},
         {"api_version": "route.openshift.io/v1", "kind": "Route"}]


def obj(name, uid, deleting=False):
    meta = {"name": name, "namespace": "ns", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return {"metadata": meta}


class FakeCluster:
    """Objects by kind; a deleted object stays listed for `linger` more lists (pods going away)."""

    def __init__(self, objects, linger=1):
        self.objects = objects
        self.linger = linger
        self.deleted = {}
        self.calls = []

    def list(self, kind, namespace, label_selector=None, api_version="v1", field_selector=None):
        self.calls.append(("list", kind, label_selector) + ((field_selector,) if field_selector else ()))
        if kind == "Route":
            raise ApiError(404, "Not Found", "the API server serves no such kind", "list Route")
        items = []
        for item in self.objects.get(kind, []):
            name = item["metadata"]["name"]
            if name in self.deleted:
                if self.deleted[name] <= 0:
                    continue
                self.deleted[name] -= 1
            items.append(item)
        return items

    def delete(self, kind, namespace, name, api_version="v1", propagation_policy=None):
        self.calls.append(("delete", kind, name, propagation_policy))
        self.deleted[name] = self.linger


def params(**extra):
    return dict({"namespace": "ns", "kinds": KINDS, "label_selectors": ["a=b", "c!=d"],
                 "propagation_policy": "Foreground", "wait": True, "wait_timeout": 10, "wait_sleep": 1}, **extra)



def test_deletes_everything_first_then_waits_once_and_skips_kinds_not_served(clock):
    cluster = FakeCluster({"StatefulSet": [obj("kafka", "1")], "Service": [obj("kafka", "2"), obj("hdfs", "3")]})
    result = k8s_delete.delete_all(cluster, params(), False, clock=clock.monotonic, sleep=clock.sleep)
    assert result["changed"] is True
    assert result["deleted"] == ["StatefulSet/ns/kafka", "Service/ns/kafka", "Service/ns/hdfs"]
    assert result["skipped_kinds"] == ["route.openshift.io/v1/Route"]
    deletes = [c for c in cluster.calls if c[0] == "delete"]
    assert [c[1:] for c in deletes] == [("StatefulSet", "kafka", "Foreground"), ("Service", "kafka", "Foreground"),
                                        ("Service", "hdfs", "Foreground")]
    # every delete comes before the first look at what is left
    first_wait_list = next(i for i, c in enumerate(cluster.calls) if c[0] == "list" and i > cluster.calls.index(deletes[-1]))
    assert all(c[0] == "delete" for c in cluster.calls[cluster.calls.index(deletes[0]):first_wait_list])
    assert all(c[2] == "a=b,c!=d" for c in cluster.calls if c[0] == "list")


def test_a_kinds_own_selectors_are_added_to_the_common_ones_in_the_find_and_the_wait(clock):
    kinds = [{"api_version": "v1", "kind": "ConfigMap", "field_selectors": ["metadata.name=boot"]},
             {"api_version": "v1", "kind": "Service", "label_selectors": ["tier in (x,y)"], "field_selectors": []}]
    cluster = FakeCluster({"ConfigMap": [obj("boot", "1")], "Service": [obj("kafka", "2")]})
    result = k8s_delete.delete_all(cluster, params(kinds=kinds), False, clock=clock.monotonic, sleep=clock.sleep)
    assert result["deleted"] == ["ConfigMap/ns/boot", "Service/ns/kafka"]
    lists = {c[1:] for c in cluster.calls if c[0] == "list"}
    assert lists == {("ConfigMap", "a=b,c!=d", "metadata.name=boot"), ("Service", "a=b,c!=d,tier in (x,y)")}


def test_nothing_found_is_no_change_and_no_delete():
    cluster = FakeCluster({})
    result = k8s_delete.delete_all(cluster, params(), False)
    assert result["changed"] is False and result["deleted"] == []
    assert not [c for c in cluster.calls if c[0] == "delete"]


def test_check_mode_lists_and_deletes_nothing():
    cluster = FakeCluster({"Service": [obj("kafka", "2")]})
    result = k8s_delete.delete_all(cluster, params(), True)
    assert result["changed"] is True and result["deleted"] == ["Service/ns/kafka"]
    assert not [c for c in cluster.calls if c[0] == "delete"]


def test_objects_already_being_deleted_are_waited_for_not_deleted_again(clock):
    cluster = FakeCluster({"Service": [obj("old", "9", deleting=True)]})
    cluster.deleted["old"] = 2  # someone else's delete, still in progress for two more looks
    result = k8s_delete.delete_all(cluster, params(), False, clock=clock.monotonic, sleep=clock.sleep)
    assert not [c for c in cluster.calls if c[0] == "delete"]
    assert result["deleted"] == ["Service/ns/old"] and sum(clock.sleeps) >= 1


def test_a_timeout_names_what_is_left(clock):
    cluster = FakeCluster({"StatefulSet": [obj("kafka", "1")]}, linger=1000)
    with pytest.raises(TimeoutError, match="StatefulSet/ns/kafka"):
        k8s_delete.delete_all(cluster, params(wait_timeout=3), False, clock=clock.monotonic, sleep=clock.sleep)
