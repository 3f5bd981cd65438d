"""`make sim-up` / `make sim-down` semantics: bad topology fails before anything starts, a second
start changes nothing, removing a cluster that does not exist is harmless."""

import json
import os
import shutil
import socket

import pytest
import yaml
from kubernetes import client

from helpers import REPO, cluster_name, run_playbook

CACHE = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")
PLAYBOOK = "playbooks/simcluster.yml"
LOCAL = ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"]


def pools(**override):
    pool = {"name": "worker", "count": 1, "cpu": "4", "memory": "8Gi"}
    pool.update(override)
    return json.dumps({"simcluster_node_pools": [pool]})


BAD_INPUT = [
    ("unknown-key", pools(gpus=2), "gpus"),
    ("zero-nodes", pools(count=0), "count and pods must be at least 1"),
    ("negative-nodes", pools(count=-3), "count=-3"),
    ("malformed-memory", pools(memory="32 gigs"), "memory a quantity"),
    ("malformed-cpu", pools(cpu="eight"), "cpu a"),
    ("missing-memory", json.dumps({"simcluster_node_pools": [{"name": "w", "count": 1, "cpu": "1"}]}), "memory"),
    ("unbuilt-kube-version", json.dumps({"simcluster_kube_version": "v1.99.0"}), "simcluster_kube_version"),
    ("no-pools", json.dumps({"simcluster_node_pools": []}), "simcluster_node_pools"),
]


@pytest.mark.parametrize("case,extra_vars,message", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_topology_fails_before_anything_starts(case, extra_vars, message):
    name = "bad-" + case
    proc = run_playbook(PLAYBOOK, *LOCAL, "-e", "simcluster_name=" + name, "-e", extra_vars)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert message in output, output[-3000:]
    assert "Build the control plane" not in output, "validation must come before any build or start"
    assert not os.path.exists(os.path.join(CACHE, "kwok", "clusters", name))


@pytest.fixture
def session_cluster(sim_kubeconfig):
    """The playbook's arguments that name the session's cluster (make test's, not make up's)."""
    return ["-e", "simcluster_name=" + cluster_name(sim_kubeconfig)]


def test_second_sim_up_changes_nothing(session_cluster):
    # The running cluster was started by `make sim-up` with the dev topology; starting it again
    # with the same topology must be a no-op.
    proc = run_playbook(PLAYBOOK, "-i", "inventories/dev", *session_cluster, check=True)
    assert proc.recap()["changed"] == 0, proc.stdout[-3000:]


def expected_shapes(environment):
    """(zone, cpu, memory) of every node inventories/<environment> asks the simulated cluster for."""
    path = os.path.join(REPO, "inventories", environment, "group_vars", "all", "simcluster.yml")
    with open(path, encoding="utf-8") as handle:
        node_pools = yaml.safe_load(handle)["simcluster_node_pools"]
    return sorted((pool["zones"][i % len(pool["zones"])], str(pool["cpu"]), str(pool["memory"]))
                  for pool in node_pools for i in range(pool["count"]))


def node_shapes(api_client):
    nodes = client.CoreV1Api(api_client).list_node(label_selector="bigdata.stack/simcluster").items
    return sorted((n.metadata.labels["topology.kubernetes.io/zone"], n.status.capacity["cpu"],
                   n.status.capacity["memory"]) for n in nodes)


def test_reshaping_for_another_environment_changes_node_capacity(api_client, session_cluster):
    # Node names repeat across environments (bigdata-sim-worker-0 exists in dev and prod) and an
    # apply never changes a node's status: without recreating reshaped nodes, prod would rehearse
    # on two nodes that kept dev's 16Gi and its 8Gi datanodes would stay Pending.
    assert node_shapes(api_client) == expected_shapes("dev"), "the test cluster starts dev-shaped"
    try:
        run_playbook(PLAYBOOK, "-i", "inventories/prod", *session_cluster, check=True)
        assert node_shapes(api_client) == expected_shapes("prod")
        again = run_playbook(PLAYBOOK, "-i", "inventories/prod", *session_cluster, check=True)
        assert again.recap()["changed"] == 0, again.stdout[-3000:]
    finally:
        run_playbook(PLAYBOOK, "-i", "inventories/dev", *session_cluster, check=True)
    assert node_shapes(api_client) == expected_shapes("dev")


def test_sim_down_of_a_cluster_that_does_not_exist_is_harmless():
    proc = run_playbook(PLAYBOOK, *LOCAL, "-e", "simcluster_name=never-created",
                        "-e", "simcluster_state=absent", check=True)
    assert proc.recap()["changed"] == 0


def test_a_stopped_cluster_whose_port_was_taken_fails_before_starting():
    # kwokctl lists a cluster by its directory and kwok.yaml; a stopped one keeps the kubeconfig
    # with the API server port it was given. Here that port is held by another process (a plain TCP
    # listener, as another cluster's API server would be): the start must not be tried.
    name = "port-taken"
    directory = os.path.join(CACHE, "kwok", "clusters", name)
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        os.makedirs(directory)
        try:
            with open(os.path.join(directory, "kwok.yaml"), "w", encoding="utf-8") as handle:
                handle.write("kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\n")
            with open(os.path.join(directory, "kubeconfig.yaml"), "w", encoding="utf-8") as handle:
                yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": name,
                                "clusters": [{"name": name, "cluster": {
                                    "server": "https://127.0.0.1:%d" % port, "insecure-skip-tls-verify": True}}],
                                "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                                "users": [{"name": name, "user": {}}]}, handle)
            proc = run_playbook(PLAYBOOK, *LOCAL, "-e", "simcluster_name=" + name)
        finally:
            shutil.rmtree(directory)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "API server port %d is now held by another process" % port in output, output[-3000:]
    assert "make sim-down SIM_NAME=%s" % name in output, output[-3000:]
    assert "Start the stopped simulated cluster" not in output, output[-3000:]
