"""k8s_client.Cluster.exec_in_pod reads pods/exec's status channel itself.

The kubernetes client's WSClient.returncode does int() of the first cause's message whenever the
status is not Success. When the command never ran (no such container, a node without exec, as the
simulated cluster's kwok nodes) that message is the API server's text, and wait_ready died with
"invalid literal for int() with base 10: 'Internal error occurred: ...'" (found by
tests/integration/test_secrets_not_in_output.py's failing run). Now such a status is an ApiError
with the API server's message, which wait_ready reports as the reason it keeps waiting.
"""

from __future__ import annotations

import json
import types

import kubernetes.stream
import pytest
from kubernetes.stream.ws_client import WSClient

from ansible_collections.bigdata.stack.plugins.module_utils import k8s_client
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError

NO_EXEC = {"metadata": {}, "status": "Failure", "code": 500, "reason": "InternalError",
           "message": 'Internal error occurred: error executing command in container: no exec found for '
                      'container "elasticsearch" in pod "ns/elasticsearch-default-0"',
           "details": {"causes": [{"message": 'error executing command in container: no exec found for '
                                              'container "elasticsearch" in pod "ns/elasticsearch-default-0"'}]}}
EXIT_3 = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
          "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
SUCCESS = {"metadata": {}, "status": "Success"}


class FakeSocket(object):
    """A closed exec websocket whose status channel holds `status`; returncode is the client's own."""

    returncode = WSClient.returncode

    def __init__(self, status, stdout=""):
        self._returncode = None
        self._channels = {3: json.dumps(status)}
        self._stdout = stdout

    def is_open(self):
        return False

    def read_channel(self, channel):
        return self._channels.pop(channel, "")

    def write_stdin(self, data):
        pass

    def close(self):
        pass


@pytest.fixture
def cluster(monkeypatch):
    sockets = []
    monkeypatch.setattr(kubernetes.stream, "stream", lambda func, *args, **kwargs: sockets.pop(0))
    k8s = types.SimpleNamespace(client=types.SimpleNamespace(client=None),
                                configuration=types.SimpleNamespace(host="https://127.0.0.1:6443"))
    return k8s_client.Cluster(k8s), sockets


@pytest.mark.parametrize(("status", "code"), [(SUCCESS, 0), (EXIT_3, 3)])
def test_the_exit_code_of_a_command_that_ran(cluster, status, code):
    rest, sockets = cluster
    sockets.append(FakeSocket(status))
    assert rest.exec_in_pod("ns", "pod-0", ["true"], stdin="\n")[0] == code


def test_a_command_that_never_ran_is_an_api_error_with_the_servers_message(cluster):
    rest, sockets = cluster
    sockets.append(FakeSocket(NO_EXEC))
    with pytest.raises(ApiError) as error:
        rest.exec_in_pod("ns", "elasticsearch-default-0", ["sh", "-c", "curl"], stdin="\n")
    assert error.value.status == 500
    assert 'no exec found for container "elasticsearch"' in str(error.value)
    assert "invalid literal" not in str(error.value)


@pytest.mark.parametrize("text", ["", "not json", json.dumps({"status": "Failure"})])
def test_a_status_without_an_exit_code_is_an_api_error(text):
    with pytest.raises(ApiError):
        k8s_client.exec_exit_code(text, "exec in pod ns/p")
