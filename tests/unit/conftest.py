# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Shared fixtures of the unit tests: import path, module runner, fake API server and clock."""

from __future__ import annotations

import copy
import json
import os
import sys

import pytest

# `ansible_collections.bigdata.stack` resolves through collections/ (a symlink to this checkout);
# `ansible_collections.kubernetes.core` comes from the ansible package in the virtualenv. Both are
# namespace packages, so putting collections/ first on sys.path merges them.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError  # noqa: E402


class ModuleExit(Exception):
    """exit_json was called."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    """fail_json was called."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() with the given arguments; return (outcome, result)."""

    from ansible.module_utils import _internal
    from ansible.module_utils.common import warnings

    monkeypatch.setattr(warnings, "_global_warnings", {})
    # A module runs in a process of its own, where warn() records the warning for the result. Once
    # a test in this process has imported controller code (ansible.errors, a filter plugin),
    # ansible-core marks the process as the controller and warn() prints instead: the result of
    # every module run afterwards would lose its warnings, depending on test order.
    monkeypatch.setattr(_internal, "is_controller", False)

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(warnings.get_warning_messages())
        raise ModuleExit(_sanitize(self, kwargs))

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise ModuleFail(_sanitize(self, kwargs))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(main, args, check_mode=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        with patch_module_args(args):
            try:
                main()
            except ModuleExit as e:
                return "exit", e.result
            except ModuleFail as e:
                return "fail", e.result
        raise AssertionError("module returned without exit_json/fail_json")

    return run


def _sanitize(module, result):
    """What Ansible would print: no_log values replaced, as AnsibleModule._return_formatted does."""
    from ansible.module_utils.common.parameters import remove_values

    return remove_values(result, module.no_log_values)


class FakeClock:
    """monotonic() and sleep() that only move when told to: waits cost no real time."""

    def __init__(self, start=1000.0):
        self.now = start
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


class FakeRest:
    """An in-memory stand-in for k8s_client.Cluster: pods and a few other objects by API path.

    Calls are recorded by verb and API path ("get", "delete", "post", "apply", "watch", ...), so
    tests read as what the API server would have been asked.
    """

    host = "https://10.0.0.1:6443"

    def __init__(self):
        self.objects = {}
        self.calls = []
        self.logs = {}
        self.watch_events = []
        self.sar_denied = set()
        self.sar_status = None
        self.proxy = {}
        self.exec_results = []
        self.on_get = None
        self.denied = set()

    path = staticmethod(lambda namespace, plural, name=None, group=None, subresource=None: _path(
        namespace, plural, name, group, subresource))

    def add_pod(self, pod):
        meta = pod["metadata"]
        self.objects[_path(meta["namespace"], "pods", meta["name"])] = pod

    def add(self, namespace, plural, obj, group=None):
        self.objects[_path(namespace, plural, obj["metadata"]["name"], group)] = obj

    # -- the Cluster interface

    def get(self, kind, namespace, name, api_version="v1"):
        return self.get_or_none(_kind_path(kind, api_version, namespace, name))

    def list_pods(self, namespace, label_selector):
        self.calls.append(("list_pods", namespace, label_selector))
        wanted = dict(part.split("=", 1) for part in label_selector.split(",") if "=" in part)
        prefix = _path(namespace, "pods") + "/"
        found = []
        for path, obj in self.objects.items():
            if path.startswith(prefix) and "/" not in path[len(prefix):]:
                labels = obj["metadata"].get("labels") or {}
                if all(labels.get(k) == v for k, v in wanted.items()):
                    found.append(copy.deepcopy(obj))
        return found

    def list(self, kind, namespace, label_selector=None, api_version="v1"):
        prefix = _kind_path(kind, api_version, namespace) + "/"
        self.calls.append(("list", prefix[:-1]))
        if prefix[:-1] in self.denied:
            raise ApiError(403, "Forbidden", "{}", prefix[:-1])
        return [copy.deepcopy(obj) for path, obj in self.objects.items()
                if path.startswith(prefix) and "/" not in path[len(prefix):]]

    def delete(self, kind, namespace, name, api_version="v1", uid=None):
        path = _kind_path(kind, api_version, namespace, name)
        self.calls.append(("delete", path))
        current = self.objects.get(path)
        if uid and current is not None and (current.get("metadata") or {}).get("uid") != uid:
            return False  # the API server's 409: precondition failed, another object of that name
        return self.objects.pop(path, None) is not None

    def create(self, kind, body, api_version="v1"):
        path = _kind_path(kind, api_version, (body.get("metadata") or {}).get("namespace"))
        self.calls.append(("post", path, body))
        if kind == "SubjectAccessReview":
            if self.sar_status:
                raise ApiError(self.sar_status, "Forbidden", "{}", path)
            attrs = body["spec"]["resourceAttributes"]
            allowed = (attrs["resource"], attrs["verb"]) not in self.sar_denied
            status = {"allowed": allowed}
            if not allowed:
                status["reason"] = ""
            return dict(body, status=status)
        if path in self.denied:
            plural = path.rsplit("/", 1)[1]
            raise ApiError(403, "Forbidden", json.dumps({"message": (
                '%s is forbidden: User "system:serviceaccount:ci:deployer" cannot create resource "%s" in API group "" '
                'in the namespace "%s"' % (plural, plural, body["metadata"].get("namespace")))}), path)
        if path + "/" + body["metadata"]["name"] in self.objects:
            raise ApiError(409, "Conflict", '{"message": "already exists"}', path)
        self.objects[path + "/" + body["metadata"]["name"]] = body
        return body

    def apply(self, body):
        meta = body["metadata"]
        path = _kind_path(body["kind"], body["apiVersion"], meta.get("namespace"), meta["name"])
        self.calls.append(("apply", path, body))
        self.objects[path] = body
        return body

    def watch_pod(self, namespace, name, resource_version, timeout_seconds):
        query = [("fieldSelector", "metadata.name=" + name), ("resourceVersion", resource_version)]
        return self.watch(_path(namespace, "pods"), query, timeout_seconds)

    # -- by API path

    def get_or_none(self, path, query=None):
        self.calls.append(("get", path))
        if self.on_get:
            self.on_get(path)
        obj = self.objects.get(path)
        return copy.deepcopy(obj) if obj is not None else None

    def watch(self, path, query, timeout_seconds):
        self.calls.append(("watch", path, tuple(query)))
        events, self.watch_events = self.watch_events, []
        for event in events:
            if event.get("type") in ("ADDED", "MODIFIED") and "metadata" in event.get("object", {}):
                self.add_pod(event["object"])
            yield event

    def pod_log(self, namespace, name, tail_lines, container=None):
        self.calls.append(("log", name, tail_lines, container))
        return "\n".join(self.logs.get(name, [])[-tail_lines:])

    def service_proxy_get(self, namespace, service, port, path, scheme="http", query=None, timeout=15):
        self.calls.append(("proxy", namespace, "%s:%s:%s" % (scheme, service, port), path, tuple(query or ())))
        answer = self.proxy[(path, tuple(query or ()))]
        return answer.pop(0) if isinstance(answer, list) else answer

    def exec_in_pod(self, namespace, pod, command, container=None, stdin=None, timeout=60):
        self.calls.append(("exec", pod, tuple(command), stdin))
        return self.exec_results.pop(0)


def _kind_path(kind, api_version, namespace, name=None):
    """The API path of an object of a built-in kind: the plural is the lower-cased kind plus s."""
    group = api_version if "/" in api_version else None
    if namespace is None:
        base = "/apis/%s" % group if group else "/api/v1"
        return "%s/%ss" % (base, kind.lower()) + ("/" + name if name else "")
    return _path(namespace, kind.lower() + "s", name, group)


def _path(namespace, plural, name=None, group=None, subresource=None):
    base = "/apis/%s" % group if group else "/api/v1"
    path = "%s/namespaces/%s/%s" % (base, namespace, plural)
    if name:
        path += "/" + name
    if subresource:
        path += "/" + subresource
    return path


@pytest.fixture
def fake_rest():
    return FakeRest()


def make_pod(name, namespace="bigdata", phase="Running", labels=None, ready=None, created="2026-01-01T00:00:00Z",
             containers=None, exit_code=None, **extra):
    """A pod dictionary shaped like the API server's."""
    statuses = containers
    if statuses is None:
        state = {"running": {"startedAt": created}}
        if exit_code is not None:
            state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}}
        statuses = [{"name": "spark-kubernetes-driver", "ready": phase == "Running", "restartCount": 0, "state": state}]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "uid": "uid-" + name,
                     "creationTimestamp": created, "resourceVersion": "100"},
        "spec": {"containers": [{"name": s["name"]} for s in statuses]},
        "status": {"phase": phase, "containerStatuses": statuses},
    }
    if ready is not None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    pod.update(extra)
    return pod
