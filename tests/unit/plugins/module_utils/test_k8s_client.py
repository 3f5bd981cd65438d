# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""k8s_client.py: requests through a kubernetes ApiClient, watch parsing, pod waits."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import urllib3

from ansible_collections.bigdata.stack.plugins.module_utils import k8s_client as kc
from ansible_collections.bigdata.stack.plugins.module_utils.spark import driver_finished

from conftest import make_pod


class FakeStream:
    def __init__(self, chunks):
        self.chunks = chunks
        self.released = False

    def stream(self, amt=None, decode_content=False):
        return iter(self.chunks)

    def release_conn(self):
        self.released = True


class FakeApiClient:
    """The surface of kubernetes >= 33 ApiClient that RestClient uses."""

    def __init__(self, status=200, data=b"{}", raw=None, error=None):
        self.configuration = SimpleNamespace(host="https://10.0.0.1:6443")
        self.status, self.data, self.raw, self.error = status, data, raw, error
        self.serialized = []

    def param_serialize(self, method, resource_path, query_params, header_params, body, auth_settings):
        self.serialized.append(dict(method=method, path=resource_path, query=query_params, headers=header_params,
                                    body=body, auth=auth_settings))
        return method, self.configuration.host + resource_path, header_params, body, None

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        if self.error:
            raise self.error
        return SimpleNamespace(status=self.status, read=lambda: self.data, response=self.raw)


class TestRestClient:
    def test_get_returns_json_and_sends_bearer_auth(self):
        api = FakeApiClient(data=json.dumps({"items": [{"metadata": {"name": "p"}}]}).encode())
        rest = kc.RestClient(api)
        assert rest.list_pods("bigdata", "spark-role=driver") == [{"metadata": {"name": "p"}}]
        sent = api.serialized[0]
        assert sent["path"] == "/api/v1/namespaces/bigdata/pods"
        assert sent["query"] == [("labelSelector", "spark-role=driver")]
        assert sent["auth"] == ["BearerToken"]

    def test_error_status_becomes_api_error_with_server_message(self):
        body = json.dumps({"kind": "Status", "message": 'pods "x" is forbidden: User "u" cannot get resource "pods"'})
        rest = kc.RestClient(FakeApiClient(status=403, data=body.encode()))
        with pytest.raises(kc.ApiError) as error:
            rest.get("/api/v1/namespaces/a/pods/x")
        assert error.value.status == 403
        assert 'cannot get resource "pods"' in error.value.message()

    def test_404_is_none(self):
        assert kc.RestClient(FakeApiClient(status=404, data=b"{}")).get_or_none("/x") is None

    def test_connection_error_is_unreachable_with_host(self):
        error = urllib3.exceptions.MaxRetryError(None, "/api", "Connection refused")
        rest = kc.RestClient(FakeApiClient(error=error))
        with pytest.raises(kc.Unreachable, match="cannot reach the Kubernetes API server at https://10.0.0.1:6443"):
            rest.get("/api/v1/namespaces")

    def test_service_proxy_path(self):
        api = FakeApiClient(status=200, data=b'{"status":"green"}')
        status, body = kc.RestClient(api).service_proxy_get("bigdata", "elasticsearch", 9200, "/_cluster/health", "https")
        assert (status, body) == (200, '{"status":"green"}')
        assert api.serialized[0]["path"] == "/api/v1/namespaces/bigdata/services/https:elasticsearch:9200/proxy/_cluster/health"

    def test_watch_splits_lines_across_chunks(self):
        events = [{"type": "ADDED", "object": {"n": 1}}, {"type": "MODIFIED", "object": {"n": 2}}]
        payload = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
        raw = FakeStream([payload[:7], payload[7:40], payload[40:]])
        api = FakeApiClient(raw=raw)
        assert list(kc.RestClient(api).watch("/api/v1/namespaces/a/pods", [("fieldSelector", "metadata.name=x")], 30)) == events
        assert ("watch", "true") in api.serialized[0]["query"] and ("timeoutSeconds", "30") in api.serialized[0]["query"]
        assert raw.released


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

    def test_wait_pod_gone(self, fake_rest, clock):
        fake_rest.add_pod(make_pod("old-driver"))
        assert not kc.wait_pod_gone(fake_rest, "bigdata", "old-driver", 3, clock=clock.monotonic, sleep=clock.sleep)
        assert clock.sleeps == [1, 1, 1]
        fake_rest.on_get = lambda path: fake_rest.objects.pop(path, None)
        assert kc.wait_pod_gone(fake_rest, "bigdata", "old-driver", 3, clock=clock.monotonic, sleep=clock.sleep)
