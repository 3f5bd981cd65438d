"""The simulated cluster behaves like a real one where it matters to this collection.

Control plane, admission, controllers and scheduler are the real Kubernetes binaries; kwok plays
the nodes (pods run no containers). Each test reads the outcome back from the API server.
"""

import json
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import run_playbook, wait_for

RESTRICTED_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000,
                           "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod(name, labels=None, memory="64Mi", privileged=False):
    container = {"name": "main", "image": "registry.invalid/app:1",
                 "resources": {"requests": {"cpu": "100m", "memory": memory},
                               "limits": {"cpu": "100m", "memory": memory}},
                 "securityContext": dict(RESTRICTED_CONTAINER)}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"securityContext": RESTRICTED_POD_SECURITY, "containers": [container],
                     "restartPolicy": "Never"}}


def test_control_plane_is_the_built_version(api_client):
    version = client.VersionApi(api_client).get_code()
    assert version.git_version == "v1.36.3"
    marker = client.CoreV1Api(api_client).read_namespaced_config_map("bigdata-simcluster", "kube-system")
    assert marker.data["kubeVersion"] == "v1.36.3"


def test_nodes_follow_the_topology(api_client):
    core = client.CoreV1Api(api_client)
    marker = core.read_namespaced_config_map("bigdata-simcluster", "kube-system")
    expected = set(marker.data["nodes"].split(","))
    nodes = {n.metadata.name: n for n in core.list_node(label_selector="bigdata.stack/simcluster").items}
    assert set(nodes) == expected
    for node in nodes.values():
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
        assert "topology.kubernetes.io/zone" in node.metadata.labels


def test_statefulset_with_volume_claims_becomes_ready_in_restricted_namespace(api_client, restricted_namespace):
    ns = restricted_namespace
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    template = pod("ignored", labels={"app": "store"})
    template["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    template["spec"].pop("restartPolicy")
    apps.create_namespaced_stateful_set(ns, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "store"},
        "spec": {"replicas": 3, "serviceName": "store", "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "store"}},
                 "template": {"metadata": {"labels": {"app": "store"}}, "spec": template["spec"]},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}]}})

    def ready():
        sts = apps.read_namespaced_stateful_set("store", ns)
        return (sts.status.ready_replicas or 0) == 3 and sts
    wait_for(ready, what="StatefulSet store readyReplicas == 3")
    claims = core.list_namespaced_persistent_volume_claim(ns).items
    assert sorted(c.metadata.name for c in claims) == ["data-store-0", "data-store-1", "data-store-2"]
    assert all(c.status.phase == "Bound" for c in claims), [(c.metadata.name, c.status.phase) for c in claims]
    for name in ("store-0", "store-1", "store-2"):
        assert core.read_namespaced_pod(name, ns).status.phase == "Running"


def test_a_deleted_claim_returns_its_volume_to_the_pool(api_client, restricted_namespace):
    """Released Retain volumes go back to Available (kwok stage), so long runs never drain the pool."""
    ns = restricted_namespace
    core = client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "scratch"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    user = pod("user")
    user["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    user["spec"]["volumes"] = [{"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch"}}]
    core.create_namespaced_pod(ns, user)

    def bound():
        claim = core.read_namespaced_persistent_volume_claim("scratch", ns)
        return claim.status.phase == "Bound" and claim.spec.volume_name
    volume = wait_for(bound, what="claim scratch Bound")

    core.delete_namespaced_pod("user", ns, grace_period_seconds=0)
    core.delete_namespaced_persistent_volume_claim("scratch", ns)

    def back_in_pool():
        pv = core.read_persistent_volume(volume)
        return pv.status.phase == "Available" and pv.spec.claim_ref is None and pv
    wait_for(back_in_pool, what="volume %s Available again" % volume)


def test_privileged_pod_is_rejected_by_pod_security_admission(api_client, restricted_namespace):
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(restricted_namespace, pod("root", privileged=True))
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message
    assert core.list_namespaced_pod(restricted_namespace).items == []


def test_pod_larger_than_any_node_stays_pending_with_failed_scheduling(api_client, restricted_namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(restricted_namespace, pod("huge", memory="4000Gi"))

    def failed_scheduling():
        events = core.list_namespaced_event(restricted_namespace,
                                            field_selector="involvedObject.name=huge,reason=FailedScheduling")
        return events.items
    events = wait_for(failed_scheduling, what="a FailedScheduling event for pod huge")
    assert "Insufficient memory" in events[0].message
    status = core.read_namespaced_pod("huge", restricted_namespace).status
    assert status.phase == "Pending"
    assert not core.read_namespaced_pod("huge", restricted_namespace).spec.node_name


@pytest.mark.parametrize("exit_code,phase", [(None, "Succeeded"), ("3", "Failed")])
def test_spark_driver_pod_finishes(api_client, restricted_namespace, exit_code, phase):
    core = client.CoreV1Api(api_client)
    labels = {"spark-role": "driver"}
    if exit_code:
        labels["sim.bigdata.stack/exit-code"] = exit_code
    core.create_namespaced_pod(restricted_namespace, pod("driver", labels=labels))

    def finished():
        status = core.read_namespaced_pod("driver", restricted_namespace).status
        return status.phase in ("Succeeded", "Failed") and status
    status = wait_for(finished, what="driver pod to finish")
    assert status.phase == phase
    assert status.container_statuses[0].state.terminated.exit_code == int(exit_code or 0)


def test_a_plain_pod_is_not_finished_like_a_driver(api_client, restricted_namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(restricted_namespace, pod("server"))
    wait_for(lambda: core.read_namespaced_pod("server", restricted_namespace).status.phase == "Running",
             what="pod server Running")
    time.sleep(7)  # longer than the driver stage's delay: a non-driver pod must keep running
    assert core.read_namespaced_pod("server", restricted_namespace).status.phase == "Running"


def test_kubernetes_core_applies_and_deletes_a_configmap(sim_kubeconfig, api_client, restricted_namespace):
    core = client.CoreV1Api(api_client)
    name = "cm-" + uuid.uuid4().hex[:6]
    args = ["tests/integration/playbooks/configmap.yml", "-e", "test_name=" + name,
            "-e", "test_namespace=" + restricted_namespace]
    first = run_playbook(*args, kubeconfig=sim_kubeconfig, check=True)
    assert first.recap()["changed"] == 1
    assert core.read_namespaced_config_map(name, restricted_namespace).data == {"greeting": "hello"}
    again = run_playbook(*args, kubeconfig=sim_kubeconfig, check=True)
    assert again.recap()["changed"] == 0, "re-applying the same ConfigMap must change nothing"
    run_playbook(*args, "-e", "test_state=absent", kubeconfig=sim_kubeconfig, check=True)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map(name, restricted_namespace)
    assert err.value.status == 404
