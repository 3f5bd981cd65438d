# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""The bigdata.stack modules' calls to the cluster, on kubernetes.core's client.

kubernetes.core (module_utils.k8s.client.get_api_client) turns the module's auth options,
K8S_AUTH_* variables, a kubeconfig or the in-cluster account into one cached dynamic client, and
finds resources by kind through its discovery (K8SClient.resource). `Cluster` uses that client and
adds only what it lacks:

- plain dictionaries in and out, so the decision functions (spark.py, waiter.py, health.py) stay
  free of client classes;
- errors a user can act on: ApiError carries the API server's own message, Unreachable names the
  API server that could not be reached;
- a pod watch that reads the pod again and watches anew when a watch breaks (watch_pod_until);
- exec in a pod with stdin and a deadline, a GET through a service proxy, a pod log tail.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

try:
    import urllib3
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
    from kubernetes.watch import Watch
except ImportError:  # AnsibleK8SModule fails the task naming the missing requirement
    urllib3 = Watch = None

    class ApiException(Exception):
        status = reason = body = None

    class ResourceNotFoundError(Exception):
        pass

# The field manager of what the modules write with server-side apply: the roles' own (bigdata_field_manager).
FIELD_MANAGER = "bigdata-stack"
# A request that gets no answer for this long is treated as a broken connection.
REQUEST_TIMEOUT = 30


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
    """(Cluster, kubernetes Configuration) from kubernetes.core's resolution of the auth options."""
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
    return Cluster(k8s), k8s.configuration


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


class Cluster(object):
    """Reads and writes of the bigdata.stack modules through a kubernetes.core K8SClient.

    Objects are addressed by kind, API version, namespace and name, and returned as dictionaries.
    """

    def __init__(self, k8s):
        self.k8s = k8s
        self.resources = {}

    @property
    def host(self):
        return self.k8s.configuration.host

    @property
    def client(self):
        """The dynamic client (kubernetes.dynamic.DynamicClient)."""
        return self.k8s.client

    def resource(self, kind, api_version="v1"):
        key = (kind, api_version)
        if key not in self.resources:
            self.resources[key] = self._call("discover %s %s" % (api_version, kind), self.k8s.resource, kind, api_version)
        return self.resources[key]

    def _call(self, what, func, *args, **kwargs):
        """func(*args, **kwargs) with the client's errors turned into ApiError and Unreachable."""
        try:
            return func(*args, **kwargs)
        except ApiException as e:
            if not e.status:  # the client's own failure, e.g. a TLS handshake that failed
                raise Unreachable(unreachable_message(self.host, e.reason or e))
            raise ApiError(e.status, e.reason, _text(e.body), what)
        except ResourceNotFoundError as e:
            raise ApiError(404, "Not Found", "the API server serves no such kind: %s" % e, what)
        except Exception as e:  # pylint: disable=broad-except
            if _is_connection_error(e):
                raise Unreachable(unreachable_message(self.host, e))
            raise

    # -- objects

    def get(self, kind, namespace, name, api_version="v1"):
        """The object as a dictionary, None when it does not exist."""
        resource = self.resource(kind, api_version)
        what = "get %s %s/%s" % (kind, namespace, name)
        try:
            return self._call(what, self.k8s.get, resource, name=name, namespace=namespace,
                              _request_timeout=REQUEST_TIMEOUT).to_dict()
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(self, kind, namespace, label_selector=None, api_version="v1", field_selector=None):
        """The objects of a kind in a namespace that match the label (and field) selector, as dictionaries."""
        found = self._call("list %s in %s" % (kind, namespace), self.k8s.get, self.resource(kind, api_version),
                           namespace=namespace, label_selector=label_selector or None,
                           field_selector=field_selector or None, _request_timeout=REQUEST_TIMEOUT)
        return found.to_dict().get("items") or []

    def list_pods(self, namespace, label_selector):
        return self.list("Pod", namespace, label_selector)

    def delete(self, kind, namespace, name, api_version="v1", propagation_policy=None, uid=None):
        """Delete an object (graceful, default grace period); False when it was already gone.

        With ``uid``, only that object: the API server refuses (409) to delete another of the same
        name (a StatefulSet pod recreated meanwhile), and that too returns False. A DELETE by name
        alone that is sent again (the HTTP client retries idempotent requests) can hit the
        replacement."""
        resource = self.resource(kind, api_version)
        body = {}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._call("delete %s %s/%s" % (kind, namespace, name), self.k8s.delete, resource, name=name,
                       namespace=namespace, body=body or None, _request_timeout=REQUEST_TIMEOUT)
        except ApiError as e:
            if e.status == 404 or (uid and e.status == 409):
                return False
            raise
        return True

    def create(self, kind, body, api_version="v1"):
        """POST an object, e.g. a SubjectAccessReview; the API server's answer as a dictionary."""
        resource = self.resource(kind, api_version)
        return self._call("create %s" % kind, self.k8s.create, resource, body,
                          _request_timeout=REQUEST_TIMEOUT).to_dict()

    def apply(self, body):
        """Server-side apply of one object by this collection's field manager; the object as applied."""
        meta = body["metadata"]
        resource = self.resource(body["kind"], body["apiVersion"])
        what = "apply %s %s/%s" % (body["kind"], meta.get("namespace"), meta["name"])
        return self._call(what, self.client.server_side_apply, resource, body=body, field_manager=FIELD_MANAGER,
                          force_conflicts=True, _request_timeout=REQUEST_TIMEOUT).to_dict()

    def watch_pod(self, namespace, name, resource_version, timeout_seconds):
        """Events ({"type": ..., "object": {...}}) of one pod from resource_version on, until the server ends the watch.

        This is kubernetes' Watch over the dynamic client's get, as DynamicClient.watch does, with
        a read timeout added: a connection that dies without a reset must not hang the module.
        """
        resource = self.resource("Pod")
        stream = Watch().stream(
            self.client.get, resource, namespace=namespace, field_selector="metadata.name=" + name,
            resource_version=resource_version, timeout_seconds=int(timeout_seconds), serialize=False,
            _request_timeout=(10, timeout_seconds + 10),
        )
        events = iter(stream)
        while True:
            event = self._call("watch pod %s/%s" % (namespace, name), next, events, None)
            if event is None:
                return
            yield {"type": event["type"], "object": event["raw_object"]}

    # -- subresources

    def pod_log(self, namespace, name, tail_lines, container=None):
        query = [("tailLines", str(tail_lines))]
        if container:
            query.append(("container", container))
        log = self.resource("Pod").subresources["log"]
        response = self._call("log of pod %s/%s" % (namespace, name), self.client.get, log, name=name,
                              namespace=namespace, query_params=query, serialize=False,
                              _request_timeout=REQUEST_TIMEOUT)
        return _text(response.data)

    def service_proxy_get(self, namespace, service, port, path, scheme="http", query=None, timeout=15):
        """(status, body text) of a GET through the API server's service proxy.

        /api/v1/namespaces/{ns}/services/{scheme}:{service}:{port}/proxy/{path} reaches a service
        from wherever the API server is reachable. The API server consumes the Authorization
        header, so backend credentials cannot travel this way (see exec_in_pod).
        """
        proxy = self.resource("Service").subresources["proxy"]
        full = "%s/%s" % (proxy.path(name="%s:%s:%s" % (scheme, service, port), namespace=namespace), path.lstrip("/"))
        try:
            response = self._call("GET " + full, self.client.request, "get", full, query_params=list(query or []),
                                  header_params={"Accept": "*/*"}, serialize=False, _request_timeout=timeout)
        except ApiError as e:
            return e.status, e.body or ""
        return response.status, _text(response.data)

    def exec_in_pod(self, namespace, pod, command, container=None, stdin=None, timeout=60):
        """(exit code, stdout, stderr) of a command run in a pod container (pods/exec).

        The exit code is None when the command did not end within timeout seconds.
        """
        from kubernetes.client import CoreV1Api
        from kubernetes.stream import stream

        api = CoreV1Api(self.client.client)
        kwargs = dict(command=command, stderr=True, stdout=True, stdin=stdin is not None, tty=False,
                      _preload_content=False)
        if container:
            kwargs["container"] = container
        ws = self._call("exec in pod %s/%s" % (namespace, pod), stream, api.connect_get_namespaced_pod_exec,
                        pod, namespace, **kwargs)
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
            # The status channel (3), read here rather than through the client's returncode, which
            # raises "invalid literal for int()" when the command never ran (no such container, no
            # exec on the node): that status carries a message, not an exit code.
            return (exec_exit_code(ws.read_channel(EXEC_STATUS_CHANNEL), "exec in pod %s/%s" % (namespace, pod)),
                    "".join(stdout), "".join(stderr))
        finally:
            ws.close()


EXEC_STATUS_CHANNEL = 3


def exec_exit_code(status_text, what):
    """The exit code in pods/exec's status channel (a metav1.Status as JSON).

    Success is 0; a command that ended with another code is reported as a Failure whose
    details.causes hold reason ExitCode and the code. Any other Failure means the command did not
    run (e.g. "no exec found for container"): ApiError with the API server's message.
    """
    try:
        status = json.loads(status_text) if status_text else {}
    except ValueError:
        status = {}
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    raise ApiError(status.get("code") or 500, status.get("reason") or "ExecFailed",
                   status.get("message") or status_text or "the exec ended without a status", what)


def _text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def watch_pod_until(cluster, namespace, name, predicate, timeout, clock=time.monotonic, sleep=time.sleep):
    """Follow one pod until predicate(pod) holds, it is deleted, or timeout seconds pass.

    Returns (last pod seen, outcome) with outcome "done", "deleted" or "timeout". A watch
    reacts as soon as the pod changes (no polling delay); when the watch breaks (expired
    resourceVersion, connection reset) the pod is read again and a new watch starts.
    """
    deadline = clock() + timeout
    pod = None
    while True:
        try:
            current = cluster.get("Pod", namespace, name)
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
        resource_version = (pod.get("metadata") or {}).get("resourceVersion") or "0"
        try:
            for event in cluster.watch_pod(namespace, name, resource_version, max(1, min(remaining, 300))):
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


def wait_pod_gone(cluster, namespace, name, timeout, clock=time.monotonic, sleep=time.sleep, interval=1):
    """Poll until a pod no longer exists; True when it went within timeout seconds."""
    deadline = clock() + timeout
    while cluster.get("Pod", namespace, name) is not None:
        if clock() >= deadline:
            return False
        sleep(interval)
    return True
