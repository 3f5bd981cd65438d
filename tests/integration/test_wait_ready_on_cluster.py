"""bigdata.stack.wait_ready's rollout stage against real StatefulSets and Deployments.

The controllers and the scheduler are the real ones; kwok makes scheduled pods Running and Ready
(no container runs, so application health is not tested here: see tests/daemons). Each case
applies its workloads and waits for them in one play (playbooks/wait_ready.yml), as a role's
apply and wait do, then compares what the module said with what the API server says.
"""

import json
import uuid

from kubernetes import client

from helpers import run_playbook

PLAYBOOK = "tests/integration/playbooks/wait_ready.yml"
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_spec(memory="64Mi", node_selector=None, cpu="10m"):
    spec = {"securityContext": RESTRICTED_POD,
            "containers": [{"name": "main", "image": "registry.invalid/app:1",
                            "securityContext": RESTRICTED_CONTAINER,
                            "resources": {"requests": {"cpu": cpu, "memory": memory},
                                          "limits": {"cpu": cpu if cpu != "10m" else "100m", "memory": memory}}}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return spec


def statefulset(name, replicas, annotations=None, **pod):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                                  "spec": pod_spec(**pod)}}}


def deployment(name, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()}}}


def wait_ready(tmp_path, kubeconfig, options, manifests=(), check=False):
    """(module result, CompletedProcess) of one apply + wait_ready play."""
    tag = uuid.uuid4().hex[:8]
    result_file = tmp_path / ("result-%s.json" % tag)
    vars_file = tmp_path / ("vars-%s.json" % tag)
    vars_file.write_text(json.dumps({"wait": options, "manifests": list(manifests), "result_file": str(result_file)}))
    proc = run_playbook(PLAYBOOK, "-e", "@%s" % vars_file, *(["--check"] if check else []), kubeconfig=kubeconfig)
    assert proc.returncode == 0 and result_file.exists(), (proc.stdout[-6000:], proc.stderr[-3000:])
    return json.loads(result_file.read_text()), proc


def test_statefulset_rollout_and_rolling_update(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    ns = restricted_namespace
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    options = {"namespace": ns, "resources": [{"kind": "StatefulSet", "name": "store"}],
               "wait_timeout": 180, "wait_sleep": 1}

    # OrderedReady: the controller creates store-1 only once store-0 is Ready, and so on.
    result, proc = wait_ready(tmp_path, sim_kubeconfig, options, [statefulset("store", 3)])

    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is True and result["changed"] is False
    assert result["checks"] == ["rollout of StatefulSet %s/store" % ns]
    [summary] = result["resources"]
    assert summary["ready"] is True and summary["message"] == "3 of 3 replicas ready"
    assert (summary["replicas"], summary["ready_replicas"], summary["updated_replicas"]) == (3, 3, 3)
    assert summary["current_revision"] == summary["update_revision"]
    assert result["health"] == {}
    sts = apps.read_namespaced_stateful_set("store", ns)
    assert sts.status.ready_replicas == 3 and sts.status.current_revision == summary["current_revision"]
    pods = core.list_namespaced_pod(ns, label_selector="app=store").items
    assert sorted(p.metadata.name for p in pods) == ["store-0", "store-1", "store-2"]
    assert all(p.status.phase == "Running" for p in pods)

    # A template change rolls the pods one by one, in reverse order; the wait covers the whole update.
    changed = statefulset("store", 3, annotations={"bigdata.stack/config-checksum": "v2"})
    result, dummy = wait_ready(tmp_path, sim_kubeconfig, options, [changed])

    assert not result.get("failed"), result.get("msg")
    [summary] = result["resources"]
    assert summary["ready"] is True
    assert summary["update_revision"] != sts.status.update_revision
    sts = apps.read_namespaced_stateful_set("store", ns)
    assert sts.status.current_revision == sts.status.update_revision == summary["update_revision"]
    assert sts.status.updated_replicas == 3 and sts.status.ready_replicas == 3
    pods = core.list_namespaced_pod(ns, label_selector="app=store").items
    assert {p.metadata.labels["controller-revision-hash"] for p in pods} == {summary["update_revision"]}
    assert proc.recap()["failed"] == 0


def _unschedulable(api_client, sim_kubeconfig, ns, tmp_path, **pod):
    core = client.CoreV1Api(api_client)
    options = {"namespace": ns, "resources": [{"kind": "StatefulSet", "name": "big"}], "wait_timeout": 10,
               "wait_sleep": 2}

    result, proc = wait_ready(tmp_path, sim_kubeconfig, options, [statefulset("big", 2, **pod)])

    assert result["failed"] and result["ready"] is False
    assert proc.recap()["ignored"] == 1
    assert result["elapsed"] >= 10
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=big-0,reason=FailedScheduling").items
    assert events, "no FailedScheduling event for big-0"
    pod0 = core.read_namespaced_pod("big-0", ns)
    assert pod0.status.phase == "Pending" and not pod0.spec.node_name
    [scheduled] = [c for c in pod0.status.conditions if c.type == "PodScheduled"]
    # The message names the workload, each missing pod and the scheduler's reason, as the event has it.
    prefix = "timed out after 10s waiting in namespace %s: StatefulSet %s/big: 0 of 2 replicas ready (missing " % (ns, ns)
    assert result["msg"].startswith(prefix + "big-0: Pending, Unschedulable: " + scheduled.message.strip()), result["msg"]
    assert result["msg"].endswith("; big-1: not created)")
    assert events[0].message.strip() in result["msg"]
    [summary] = result["resources"]
    assert summary["ready"] is False and summary["ready_replicas"] == 0 and summary["replicas"] == 2
    # OrderedReady: the controller never created the second pod.
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=big").items] == ["big-0"]
    return result["msg"]


def test_timeout_names_pods_that_cannot_get_memory(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    message = _unschedulable(api_client, sim_kubeconfig, restricted_namespace, tmp_path, memory="4000Gi")
    assert "Insufficient memory" in message


def test_timeout_names_pods_whose_node_selector_matches_no_node(
        api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    message = _unschedulable(api_client, sim_kubeconfig, restricted_namespace, tmp_path,
                             node_selector={"bigdata.stack/pool": "does-not-exist"})
    assert "didn't match Pod's node affinity/selector" in message


def test_unschedulable_pod_fails_early_with_the_schedulers_message_and_progress_lines(
        api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    """A pod asking for more CPU than any node has stays Pending (the real scheduler says why); no node
    joins, so the wait ends after stuck_timeout, far before wait_timeout, with the scheduler's message,
    and the progress lines reached the console while it waited."""
    ns = restricted_namespace
    core = client.CoreV1Api(api_client)
    options = {"namespace": ns, "resources": [{"kind": "StatefulSet", "name": "huge"}], "wait_timeout": 600,
               "wait_sleep": 1, "stuck_timeout": 12, "progress_interval": 4}

    result, proc = wait_ready(tmp_path, sim_kubeconfig, options, [statefulset("huge", 1, cpu="500")])

    assert result["failed"] and proc.recap()["ignored"] == 1
    assert 12 <= result["elapsed"] < 60, result["elapsed"]
    pod = core.read_namespaced_pod("huge-0", ns)
    [scheduled] = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert (pod.status.phase, scheduled.reason) == ("Pending", "Unschedulable")
    assert "Insufficient cpu" in scheduled.message
    assert result["msg"] == (
        "%s/huge-0 cannot be scheduled and no node is being added (node count unchanged, no TriggeredScaleUp event) "
        "after 12s: %s. Free or add capacity, or lower the requests" % (ns, scheduled.message.strip()))
    # Progress: a line every 4 s naming the pod and the scheduler's reason, printed before the task's result.
    lines = [line for line in proc.stdout.splitlines() if "still waiting for StatefulSet %s/huge" % ns in line]
    assert len(lines) >= 2, proc.stdout[-3000:]
    assert lines[0].startswith("Wait for the rollout: [4s of 600s] still waiting for StatefulSet %s/huge: 0 of 1 "
                               "replicas ready (missing huge-0: Pending, Unschedulable: 0/" % ns), lines[0]
    assert proc.stdout.index(lines[-1]) < proc.stdout.index("cannot be scheduled")


def test_deployment_rollout(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    ns = restricted_namespace
    options = {"namespace": ns, "resources": [{"kind": "Deployment", "name": "web"}], "wait_timeout": 120,
               "wait_sleep": 1}

    result, dummy = wait_ready(tmp_path, sim_kubeconfig, options, [deployment("web", 2)])

    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is True
    [summary] = result["resources"]
    assert summary["ready"] is True and summary["message"] == "2 of 2 replicas ready"
    assert (summary["replicas"], summary["ready_replicas"], summary["available_replicas"]) == (2, 2, 2)
    status = client.AppsV1Api(api_client).read_namespaced_deployment("web", ns).status
    assert (status.ready_replicas, status.available_replicas, status.updated_replicas) == (2, 2, 2)


def test_check_mode_reports_the_plan_without_waiting(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    ns = restricted_namespace
    options = {"namespace": ns, "resources": [{"kind": "StatefulSet", "name": "elasticsearch"}],
               "health": {"type": "elasticsearch", "wait_for_status": "yellow"}, "wait_timeout": 600}

    result, dummy = wait_ready(tmp_path, sim_kubeconfig, options, check=True)

    # Nothing exists to wait for; check mode does not look, it says what a run would check.
    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is None and result["changed"] is False and result["elapsed"] == 0.0
    assert result["checks"] == ["rollout of StatefulSet %s/elasticsearch" % ns,
                                "elasticsearch health via service proxy of http://elasticsearch:9200"]
    assert result["resources"] == []
    assert client.AppsV1Api(api_client).list_namespaced_stateful_set(ns).items == []

    # The same without check mode looks, and finds nothing.
    result, dummy = wait_ready(tmp_path, sim_kubeconfig, dict(options, wait_timeout=2, wait_sleep=1))
    assert result["failed"]
    assert result["msg"] == "timed out after 2s waiting in namespace %s: StatefulSet %s/elasticsearch: not found" % (ns, ns)
