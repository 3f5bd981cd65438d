# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""k8s_client.py: kubernetes.core's dynamic client with canned HTTP answers, errors, pod waits.

TestCluster runs the real kubernetes ApiClient, kubernetes.core's dynamic client and its
discovery; only the HTTP connection pool is replaced, so what is asserted is what goes on the wire.
"""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qsl, urlparse

import kubernetes
import pytest
import urllib3

from ansible_collections.bigdata.stack.plugins.module_utils import k8s_client as kc
from ansible_collections.bigdata.stack.plugins.module_utils.spark import driver_finished
from ansible_collections.kubernetes.core.plugins.module_utils import k8sdynamicclient
from ansible_collections.kubernetes.core.plugins.module_utils.client.discovery import LazyDiscoverer
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import K8SClient

from conftest import make_pod

HOST = "https://10.0.0.1:6443"


def _resources(group_version, *entries):
    """An APIResourceList: entries are (name, kind, namespaced)."""
    return {"kind": "APIResourceList", "groupVersion": group_version, "resources": [
        {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]}
        for name, kind, namespaced in entries]}


def _group(name, version="v1"):
    gv = {"groupVersion": "%s/%s" % (name, version), "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


DISCOVERY = {
    ("GET", "/version"): (200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}),
    ("GET", "/api"): (200, {"kind": "APIVersions", "versions": ["v1"]}),
    ("GET", "/apis"): (200, {"kind": "APIGroupList", "groups": [_group("apps"), _group("authorization.k8s.io")]}),
    ("GET", "/api/v1"): (200, _resources(
        "v1", ("pods", "Pod", True), ("pods/log", "Pod", True), ("pods/exec", "PodExecOptions", True),
        ("services", "Service", True), ("services/proxy", "ServiceProxyOptions", True),
        ("configmaps", "ConfigMap", True), ("secrets", "Secret", True))),
    ("GET", "/apis/apps/v1"): (200, _resources("apps/v1", ("statefulsets", "StatefulSet", True))),
    ("GET", "/apis/authorization.k8s.io/v1"): (200, _resources(
        "authorization.k8s.io/v1", ("subjectaccessreviews", "SubjectAccessReview", False))),
}


class Body(io.BytesIO):
    """A response body that reports itself closed once read to the end, as a socket's does."""

    def read(self, *args):
        data = super().read(*args)
        if not data:
            self.close()
        return data


class FakePool:
    """Stands in for the urllib3 PoolManager of a kubernetes ApiClient: answers by (method, path)."""

    def __init__(self, answers):
        self.answers = dict(DISCOVERY)
        self.answers.update(answers)
        self.requests = []

    def request(self, method, url, body=None, headers=None, timeout=None, **kwargs):
        parsed = urlparse(url)
        sent = dict(method=method, path=parsed.path, query=parse_qsl(parsed.query), headers=dict(headers or {}),
                    body=json.loads(body) if body else None, timeout=timeout)
        self.requests.append(sent)
        answer = self.answers.get((method, parsed.path), (404, {"kind": "Status", "message": "not found"}))
        if isinstance(answer, Exception):
            raise answer
        status, payload = answer
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return urllib3.HTTPResponse(body=Body(data), status=status, preload_content=False,
                                    headers={"Content-Type": "application/json"})

    def clear(self):
        pass

    def sent(self, method, path):
        return [r for r in self.requests if r["method"] == method and r["path"] == path]


@pytest.fixture
def cluster_with(tmp_path, monkeypatch):
    """A Cluster over kubernetes.core's client whose HTTP answers are `answers`; returns (cluster, pool)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the discovery cache file goes here

    def make(answers=None):
        configuration = kubernetes.client.Configuration(host=HOST)
        configuration.api_key = {"authorization": "Bearer tok-123"}
        api_client = kubernetes.client.ApiClient(configuration)
        pool = FakePool(answers or {})
        api_client.rest_client.pool_manager = pool
        dynamic = k8sdynamicclient.K8SDynamicClient(api_client, discoverer=LazyDiscoverer)
        return kc.Cluster(K8SClient(configuration=configuration, client=dynamic)), pool

    return make


POD_PATH = "/api/v1/namespaces/bigdata/pods"


class TestCluster:
    def test_list_pods_returns_dicts_and_sends_bearer_auth(self, cluster_with):
        cluster, pool = cluster_with({("GET", POD_PATH): (200, {"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "p"}}]})})
        assert cluster.list_pods("bigdata", "spark-role=driver") == [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}]
        (sent,) = pool.sent("GET", POD_PATH)
        assert ("labelSelector", "spark-role=driver") in sent["query"]
        assert sent["headers"]["authorization"] == "Bearer tok-123"

    def test_get_by_kind_and_api_version(self, cluster_with):
        path = "/apis/apps/v1/namespaces/bigdata/statefulsets/kafka"
        cluster, pool = cluster_with({("GET", path): (200, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kafka"}})})
        assert cluster.get("StatefulSet", "bigdata", "kafka", api_version="apps/v1")["metadata"] == {"name": "kafka"}
        assert pool.sent("GET", path)

    def test_error_status_becomes_api_error_with_server_message(self, cluster_with):
        body = {"kind": "Status", "message": 'pods "x" is forbidden: User "u" cannot get resource "pods"'}
        cluster, dummy = cluster_with({("GET", POD_PATH + "/x"): (403, body)})
        with pytest.raises(kc.ApiError) as error:
            cluster.get("Pod", "bigdata", "x")
        assert error.value.status == 403
        assert 'cannot get resource "pods"' in error.value.message()
        assert error.value.path == "get Pod bigdata/x"

    def test_404_is_none_and_delete_of_a_missing_object_is_false(self, cluster_with):
        cluster, pool = cluster_with()
        assert cluster.get("Pod", "bigdata", "gone") is None
        assert cluster.delete("Pod", "bigdata", "gone") is False
        assert pool.sent("DELETE", POD_PATH + "/gone")

    def test_delete_with_a_uid_deletes_that_object_only(self, cluster_with):
        # The API server answers 409 when the object of that name has another uid (a StatefulSet
        # pod recreated meanwhile): that is "already gone", and the replacement is left alone.
        conflict = {"kind": "Status", "reason": "Conflict", "message": "Precondition failed: UID in precondition: a, UID in object meta: b"}
        cluster, pool = cluster_with({("DELETE", POD_PATH + "/kafka-broker-0"): (409, conflict)})
        assert cluster.delete("Pod", "bigdata", "kafka-broker-0", uid="a") is False
        (sent,) = pool.sent("DELETE", POD_PATH + "/kafka-broker-0")
        assert sent["body"] == {"preconditions": {"uid": "a"}}
        # Without a uid a 409 is an error like any other.
        with pytest.raises(kc.ApiError):
            cluster.delete("Pod", "bigdata", "kafka-broker-0")

    def test_connection_error_is_unreachable_with_host(self, cluster_with):
        cluster, dummy = cluster_with({("GET", POD_PATH + "/x"): urllib3.exceptions.MaxRetryError(None, "/api", "Connection refused")})
        with pytest.raises(kc.Unreachable, match="cannot reach the Kubernetes API server at https://10.0.0.1:6443"):
            cluster.get("Pod", "bigdata", "x")

    def test_configmap_is_one_server_side_apply(self, cluster_with):
        path = "/api/v1/namespaces/bigdata/configmaps/etl-code"
        manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "etl-code", "namespace": "bigdata"},
                    "data": {"etl.py": "print(1)\n"}}
        cluster, pool = cluster_with({("PATCH", path): (200, manifest)})
        assert cluster.apply(manifest)["data"] == {"etl.py": "print(1)\n"}
        assert [r["method"] for r in pool.requests if "/configmaps" in r["path"]] == ["PATCH"]
        (sent,) = pool.sent("PATCH", path)
        assert sent["headers"]["Content-Type"] == "application/apply-patch+yaml"
        assert ("fieldManager", "bigdata-stack") in sent["query"] and ("force", "true") in sent["query"]
        assert sent["body"] == manifest

    def test_subject_access_review_is_created_cluster_wide(self, cluster_with):
        path = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "u"}}
        cluster, pool = cluster_with({("POST", path): (201, dict(review, status={"allowed": True}))})
        assert cluster.create("SubjectAccessReview", review, api_version="authorization.k8s.io/v1")["status"] == {"allowed": True}
        assert pool.sent("POST", path)[0]["body"] == review

    def test_service_proxy_path_and_error_answers(self, cluster_with):
        base = "/api/v1/namespaces/bigdata/services/https:elasticsearch:9200/proxy/"
        cluster, pool = cluster_with({("GET", base + "_cluster/health"): (200, b'{"status":"green"}'),
                                      ("GET", base + "jmx"): (503, b'no endpoints available for service "x"')})
        assert cluster.service_proxy_get("bigdata", "elasticsearch", 9200, "/_cluster/health", "https") == (200, '{"status":"green"}')
        status, body = cluster.service_proxy_get("bigdata", "elasticsearch", 9200, "jmx", "https", [("qry", "a")])
        assert status == 503 and "no endpoints available" in body
        assert pool.sent("GET", base + "jmx")[0]["query"] == [("qry", "a")]

    def test_pod_log_is_text_even_when_it_looks_like_json(self, cluster_with):
        cluster, pool = cluster_with({("GET", POD_PATH + "/drv/log"): (200, b"42\n")})
        assert cluster.pod_log("bigdata", "drv", 5, container="spark-kubernetes-driver") == "42\n"
        assert pool.sent("GET", POD_PATH + "/drv/log")[0]["query"] == [("tailLines", "5"), ("container", "spark-kubernetes-driver")]

    def test_watch_pod_yields_whole_events_as_dicts(self, cluster_with):
        events = [{"type": "ADDED", "object": {"metadata": {"name": "x", "resourceVersion": "7"}}},
                  {"type": "MODIFIED", "object": {"metadata": {"name": "x", "resourceVersion": "8"}}}]
        payload = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
        cluster, pool = cluster_with({("GET", POD_PATH): (200, payload)})
        assert list(cluster.watch_pod("bigdata", "x", "6", 30)) == events
        (sent,) = pool.sent("GET", POD_PATH)
        assert {("watch", "true"), ("fieldSelector", "metadata.name=x"), ("resourceVersion", "6"),
                ("timeoutSeconds", "30")} <= set(sent["query"])
        assert sent["timeout"].read_timeout == 40  # a silent connection cannot hang the module

    def test_expired_watch_is_an_api_error(self, cluster_with):
        gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}
        cluster, dummy = cluster_with({("GET", POD_PATH): (200, json.dumps(gone).encode() + b"\n")})
        with pytest.raises(kc.ApiError) as error:
            list(cluster.watch_pod("bigdata", "x", "1", 30))
        assert error.value.status == 410


class TestWatchPodUntil:
    def test_follows_watch_events_to_completion(self, fake_rest, clock):
        fake_rest.add_pod(make_pod("etl-driver", phase="Running"))
        done = make_pod("etl-driver", phase="Succeeded", exit_code=0)
        fake_rest.watch_events = [{"type": "MODIFIED", "object": make_pod("etl-driver", phase="Running")},
                                  {"type": "MODIFIED", "object": done}]
        pod, outcome = kc.watch_pod_until(fake_rest, "bigdata", "etl-driver", driver_finished, 60,
                                          clock=clock.monotonic, sleep=clock.sleep)
        assert outcome == "done" and pod["status"]["phase"] == "Succeeded"
        watch_call = [c for c in fake_rest.calls if c[0] == "watch"][0]
        assert ("fieldSelector", "metadata.name=etl-driver") in watch_call[2]
        assert ("resourceVersion", "100") in watch_call[2]

    def test_deleted_and_timeout(self, fake_rest, clock):
        fake_rest.add_pod(make_pod("etl-driver"))
        fake_rest.watch_events = [{"type": "DELETED", "object": make_pod("etl-driver")}]
        assert kc.watch_pod_until(fake_rest, "bigdata", "etl-driver", driver_finished, 60,
                                  clock=clock.monotonic, sleep=clock.sleep)[1] == "deleted"

        def slow_watch(path, query, timeout_seconds):
            clock.now += timeout_seconds  # the server held the watch open this long, nothing changed
            return iter([])

        fake_rest.watch = slow_watch
        pod, outcome = kc.watch_pod_until(fake_rest, "bigdata", "etl-driver", driver_finished, 90,
                                          clock=clock.monotonic, sleep=clock.sleep)
        assert outcome == "timeout" and pod["status"]["phase"] == "Running"

    def test_broken_watch_reads_the_pod_again(self, fake_rest, clock):
        fake_rest.add_pod(make_pod("etl-driver"))
        watches = []

        def breaking_watch(path, query, timeout_seconds):
            watches.append(query)
            if len(watches) == 1:
                raise kc.ApiError(410, "Gone", '{"message": "too old resource version"}', "watch")
            fake_rest.add_pod(make_pod("etl-driver", phase="Succeeded", exit_code=0))
            return iter([{"type": "MODIFIED", "object": make_pod("etl-driver", phase="Succeeded", exit_code=0)}])

        fake_rest.watch = breaking_watch
        pod, outcome = kc.watch_pod_until(fake_rest, "bigdata", "etl-driver", driver_finished, 60,
                                          clock=clock.monotonic, sleep=clock.sleep)
        assert outcome == "done" and len(watches) == 2 and clock.sleeps == [1]
        assert [c[0] for c in fake_rest.calls].count("get") == 2

    def test_wait_pod_gone(self, fake_rest, clock):
        fake_rest.add_pod(make_pod("old-driver"))
        assert not kc.wait_pod_gone(fake_rest, "bigdata", "old-driver", 3, clock=clock.monotonic, sleep=clock.sleep)
        assert clock.sleeps == [1, 1, 1]
        fake_rest.on_get = lambda path: fake_rest.objects.pop(path, None)
        assert kc.wait_pod_gone(fake_rest, "bigdata", "old-driver", 3, clock=clock.monotonic, sleep=clock.sleep)
