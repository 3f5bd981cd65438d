# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""A thin JSON client over the connection kubernetes.core resolves.

kubernetes.core (module_utils.k8s.client.get_api_client) turns the module's auth options,
K8S_AUTH_* variables, a kubeconfig or the in-cluster account into one cached, configured
kubernetes ApiClient. This module sends plain REST requests through that ApiClient and returns
dictionaries: the bigdata.stack modules read a handful of fixed paths, and plain dictionaries
keep the pure decision functions (spark.py, waiter.py, health.py) free of client model classes
and the import of the large generated API modules.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from urllib.parse import quote

K8S_IMPORT_ERROR = None
try:
    import urllib3
except ImportError as e:  # handled by AnsibleK8SModule's requirements check
    urllib3 = None
    K8S_IMPORT_ERROR = e

JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status, reason, body=None, path=None):
        self.status = status
        self.reason = reason
        self.body = body
        self.path = path
        super(ApiError, self).__init__(self.message())

    def details(self):
        try:
            return json.loads(self.body)
        except (TypeError, ValueError):
            return {}

    def message(self):
        text = self.details().get("message") if isinstance(self.details(), dict) else None
        if not text:
            text = (self.body or "").strip()[:300] if isinstance(self.body, str) else ""
        return "%s %s%s" % (self.status, self.reason or "", (": " + text) if text else "")


class ConnectError(Exception):
    """No usable connection to the API server: no configuration, or it cannot be reached."""


class Unreachable(ConnectError):
    """The API server could not be reached at all."""


def connect(module):
    """(RestClient, kubernetes Configuration) from kubernetes.core's resolution of the auth options."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    try:
        k8s = get_api_client(module=module)
    except Exception as e:  # pylint: disable=broad-except
        host = module.params.get("host") or os.environ.get("K8S_AUTH_HOST")
        if _is_connection_error(e):
            raise Unreachable(unreachable_message(host, e))
        raise ConnectError(
            "%s. Give the task a kubeconfig and context (module_defaults for group/bigdata.stack.k8s, "
            "K8S_AUTH_KUBECONFIG / K8S_AUTH_CONTEXT, or ~/.kube/config) or host with api_key or client_cert"
            % str(e).rstrip(".")
        )
    api_client = getattr(k8s.client, "client", k8s.client)
    return RestClient(api_client), k8s.configuration


def unreachable_message(host, error):
    return (
        "cannot reach the Kubernetes API server%s: %s. Check the kubeconfig/context (or host) the "
        "task uses and that the cluster is running" % ((" at " + host) if host else "", error)
    )


def _is_connection_error(error):
    if urllib3 is not None and isinstance(error, urllib3.exceptions.HTTPError):
        return True
    text = str(error)
    return "Max retries exceeded" in text or "Connection refused" in text or "timed out" in text


class RestClient(object):
    """GET/POST/DELETE against the API server; JSON in, dictionaries out."""

    def __init__(self, api_client, request_timeout=30):
        self.api_client = api_client
        self.request_timeout = request_timeout

    @property
    def host(self):
        return self.api_client.configuration.host

    # -- transport

    def _send(self, method, path, query=None, body=None, timeout=None, stream=False, headers=None):
        """(status, body bytes or streaming response) for one request."""
        hdrs = dict(JSON_HEADERS)
        hdrs.update(headers or {})
        query = list(query or [])
        timeout = timeout or self.request_timeout
        client = self.api_client
        try:
            if hasattr(client, "param_serialize"):  # kubernetes >= 33 (pydantic based client)
                method_, url, header_params, body_, post = client.param_serialize(
                    method=method,
                    resource_path=path,
                    query_params=query,
                    header_params=hdrs,
                    body=body,
                    auth_settings=["BearerToken"],
                )
                response = client.call_api(method_, url, header_params=header_params, body=body_,
                                           post_params=post, _request_timeout=timeout)
                if stream:
                    if not 200 <= response.status < 300:
                        return response.status, response.read()
                    return response.status, response.response
                return response.status, response.read()
            response = client.call_api(
                path, method, query_params=query, header_params=hdrs, body=body,
                auth_settings=["BearerToken"], _preload_content=False,
                _return_http_data_only=True, _request_timeout=timeout,
            )
            if stream:
                return response.status, response
            return response.status, response.data
        except Exception as e:  # pylint: disable=broad-except
            status = getattr(e, "status", None)
            if status:  # legacy clients raise ApiException for error statuses
                return status, getattr(e, "body", None)
            if _is_connection_error(e) or status == 0:
                raise Unreachable(unreachable_message(self.host, e))
            raise

    def request(self, method, path, query=None, body=None, timeout=None, text=False):
        status, data = self._send(method, path, query=query, body=body, timeout=timeout)
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise ApiError(status, _reason(status), data, path)
        if text:
            return data
        return json.loads(data) if data else {}

    def get(self, path, query=None, **kwargs):
        return self.request("GET", path, query=query, **kwargs)

    def post(self, path, body, query=None):
        return self.request("POST", path, query=query, body=body)

    def delete(self, path, body=None, query=None):
        return self.request("DELETE", path, query=query, body=body)

    def get_or_none(self, path, query=None):
        try:
            return self.get(path, query=query)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def watch(self, path, query, timeout_seconds):
        """Yield watch events ({"type": ..., "object": {...}}) until the server ends the watch."""
        query = list(query) + [("watch", "true"), ("timeoutSeconds", str(int(timeout_seconds)))]
        status, response = self._send("GET", path, query=query, timeout=(10, timeout_seconds + 10), stream=True)
        if not 200 <= status < 300:
            raise ApiError(status, _reason(status), response, path)
        buffer = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line.decode("utf-8"))
        finally:
            release = getattr(response, "release_conn", None)
            if release:
                release()

    # -- paths

    @staticmethod
    def path(namespace, kind_plural, name=None, group=None, subresource=None):
        base = "/apis/%s" % group if group else "/api/v1"
        if group and "/" not in group:
            raise ValueError("group must include the version, e.g. apps/v1")
        path = "%s/namespaces/%s/%s" % (base, quote(namespace, safe=""), kind_plural)
        if name:
            path += "/" + quote(name, safe=":")
        if subresource:
            path += "/" + subresource
        return path

    def list_pods(self, namespace, label_selector):
        return self.get(self.path(namespace, "pods"), [("labelSelector", label_selector)]).get("items") or []

    def pod_log(self, namespace, name, tail_lines, container=None, previous=False):
        query = [("tailLines", str(tail_lines))]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        return self.get(self.path(namespace, "pods", name, subresource="log"), query, text=True)

    def service_proxy_get(self, namespace, service, port, path, scheme="http", query=None, timeout=15):
        """(status, body text) of a GET through the API server's service proxy.

        /api/v1/namespaces/{ns}/services/{scheme}:{service}:{port}/proxy/{path} reaches a service
        from wherever the API server is reachable. The API server consumes the Authorization
        header, so backend credentials cannot travel this way (see exec transport).
        """
        target = "%s:%s:%s" % (scheme, service, port)
        full = "%s/proxy/%s" % (self.path(namespace, "services", target), path.lstrip("/"))
        status, data = self._send("GET", full, query=query, timeout=timeout, headers={"Accept": "*/*"})
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        return status, data

    def exec_in_pod(self, namespace, pod, command, container=None, stdin=None, timeout=60):
        """(exit code, stdout, stderr) of a command run in a pod container (pods/exec)."""
        from kubernetes.client import CoreV1Api
        from kubernetes.stream import stream

        api = CoreV1Api(self.api_client)
        kwargs = dict(command=command, stderr=True, stdout=True, stdin=stdin is not None, tty=False,
                      _preload_content=False)
        if container:
            kwargs["container"] = container
        try:
            ws = stream(api.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        except Exception as e:  # pylint: disable=broad-except
            status = getattr(e, "status", None)
            if status:
                raise ApiError(status, getattr(e, "reason", ""), getattr(e, "body", None), "exec " + pod)
            raise
        stdout, stderr = [], []
        try:
            if stdin is not None:
                ws.write_stdin(stdin)
            deadline = time.time() + timeout
            while ws.is_open() and time.time() < deadline:
                ws.update(timeout=1)
                if ws.peek_stdout():
                    stdout.append(ws.read_stdout())
                if ws.peek_stderr():
                    stderr.append(ws.read_stderr())
            if ws.is_open():
                return None, "".join(stdout), "".join(stderr) + "\ntimed out after %ss" % timeout
            return ws.returncode, "".join(stdout), "".join(stderr)
        finally:
            ws.close()


def _reason(status):
    return {
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
        410: "Gone", 422: "Unprocessable Entity", 500: "Internal Server Error", 502: "Bad Gateway",
        503: "Service Unavailable", 504: "Gateway Timeout",
    }.get(status, "HTTP %s" % status)


def watch_pod_until(rest, namespace, name, predicate, timeout, clock=time.monotonic, sleep=time.sleep):
    """Follow one pod until predicate(pod) holds, it is deleted, or timeout seconds pass.

    Returns (last pod seen, outcome) with outcome "done", "deleted" or "timeout". A watch
    reacts as soon as the pod changes (no polling delay); when the watch breaks (expired
    resourceVersion, connection reset) the pod is read again and a new watch starts.
    """
    deadline = clock() + timeout
    pods_path = rest.path(namespace, "pods")
    pod_path = rest.path(namespace, "pods", name)
    pod = None
    while True:
        try:
            current = rest.get_or_none(pod_path)
        except (ApiError, Unreachable):
            current = pod
            sleep(1)
        if current is None:
            return pod, "deleted"
        pod = current
        if predicate(pod):
            return pod, "done"
        remaining = deadline - clock()
        if remaining <= 0:
            return pod, "timeout"
        query = [
            ("fieldSelector", "metadata.name=" + name),
            ("resourceVersion", (pod.get("metadata") or {}).get("resourceVersion") or "0"),
        ]
        try:
            for event in rest.watch(pods_path, query, max(1, min(remaining, 300))):
                kind = event.get("type")
                if kind == "ERROR":
                    break
                obj = event.get("object") or {}
                if kind == "DELETED":
                    return obj, "deleted"
                if kind in ("ADDED", "MODIFIED"):
                    pod = obj
                    if predicate(pod):
                        return pod, "done"
                if clock() >= deadline:
                    break
        except (ApiError, Unreachable, ValueError):
            sleep(1)


def wait_pod_gone(rest, namespace, name, timeout, clock=time.monotonic, sleep=time.sleep, interval=1):
    """Poll until a pod no longer exists; True when it went within timeout seconds."""
    deadline = clock() + timeout
    path = rest.path(namespace, "pods", name)
    while rest.get_or_none(path) is not None:
        if clock() >= deadline:
            return False
        sleep(interval)
    return True
