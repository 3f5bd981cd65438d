"""Faults the stack must survive, tried on the simulated cluster.

One dev stack (Kafka, HDFS, Spark) is deployed once for the module (site.yml, application health off:
no container runs), and the tests below break it in the ways a real cluster breaks, then prove the
playbooks bring it back. The order matters only at the end: the teardown test runs last and the fixture then removes
the namespace and its data.

The API server restart kills the cluster's own kube-apiserver process and starts it again with the
same command line (kwokctl runs each component as a local process with a pid file and has no command
to restart one). The simulated cluster runs its controller manager and scheduler without leader
election (roles/simcluster/templates/kwokctl.yaml.j2): with it they exit when they cannot renew their
lease for 10 s, and nothing here would start them again. The fixture still makes sure all three run
again whatever happens, so the shared cluster of `make test` is whole for the tests after it (etcd and
kwok keep running throughout).
"""

import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import run_playbook, wait_for
from test_spark_submit_on_cluster import app_options, spark_submit
from test_spark_submit_on_cluster import drivers as spark_drivers

STACK = "app.kubernetes.io/part-of=bigdata-stack"
WAIT_PLAYBOOK = "tests/integration/playbooks/wait_ready.yml"


# Three components with the stack's budgets, volumes, Jobs and generated Secrets: enough to break, quick to
# deploy. Two datanodes, so one PodDisruptionBudget guards two pods (dev has one of each).
COMPONENTS = '{"bigdata_components": ["kafka", "hdfs", "spark"], "hdfs_datanode_replicas": 2}'


def site(namespace, kubeconfig, *extra):
    return run_playbook("site.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace, "-e", COMPONENTS,
                        "-e", "bigdata_wait_application_health=false", "-e", "bigdata_wait_timeout=300", *extra,
                        kubeconfig=kubeconfig)


def teardown(namespace, kubeconfig, *extra):
    return run_playbook("teardown.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                        "-e", COMPONENTS, *extra, kubeconfig=kubeconfig)


def inventory(api_client, namespace):
    """What the stack is, by kind: names of its objects, and the uid and data of what must never be lost."""
    core, apps, policy = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.PolicyV1Api(api_client)
    return {
        "statefulsets": sorted(s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items),
        "deployments": sorted(d.metadata.name for d in apps.list_namespaced_deployment(namespace).items),
        "services": sorted(s.metadata.name for s in core.list_namespaced_service(namespace).items),
        "configmaps": sorted(c.metadata.name for c in core.list_namespaced_config_map(namespace, label_selector=STACK).items),
        "pdbs": sorted(p.metadata.name for p in policy.list_namespaced_pod_disruption_budget(namespace).items),
        # Generated credentials and the data volumes: the same objects with the same content.
        "secrets": {s.metadata.name: (s.metadata.uid, s.data) for s in core.list_namespaced_secret(namespace).items},
        "pvcs": {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(namespace).items},
    }


# --------------------------------------------------------------------------- the API server process


class Component:
    """One control-plane process of the simulated cluster, stopped and started as kwokctl does.

    kwokctl (binary runtime) records each component's binary, arguments and work directory in the
    cluster's kwok.yaml and its process id in pids/<component>.pid; the same command started again is
    the same component, on the same etcd. kwokctl supervises nothing: a component that died is started
    again by `ensure_up`, as the kubelet or systemd does on a real control plane.
    """

    def __init__(self, kubeconfig, api_client, name="kube-apiserver"):
        self.name = name
        self.workdir = os.path.dirname(os.path.abspath(kubeconfig))
        self.pid_file = os.path.join(self.workdir, "pids", name + ".pid")
        self.log_file = os.path.join(self.workdir, "logs", name + ".log")
        self.api_client = api_client
        with open(os.path.join(self.workdir, "kwok.yaml")) as handle:
            [config] = [doc for doc in yaml.safe_load_all(handle) if doc and doc.get("kind") == "KwokctlConfiguration"]
        [component] = [c for c in config["components"] if c["name"] == name]
        self.command = [component["binary"]] + list(component.get("args") or [])
        self.cwd = component.get("workDir") or self.workdir

    def pid(self):
        with open(self.pid_file) as handle:
            return int(handle.read().strip())

    def running(self):
        """Whether the process of the pid file lives (a zombie, exited but not yet reaped, does not)."""
        try:
            with open("/proc/%d/stat" % self.pid()) as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError):
            return False

    def answers(self):
        if self.name != "kube-apiserver":
            return self.running()
        try:
            client.VersionApi(self.api_client).get_code(_request_timeout=2)
        except Exception:  # pylint: disable=broad-except
            return False
        return True

    def stop(self):
        """SIGTERM; after 15 s SIGKILL (a graceful stop waits up to a minute for open watches)."""
        pid = self.pid()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.running():
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.running(), timeout=30, what=self.name + " to exit")

    def start(self):
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(  # pylint: disable=consider-using-with (it outlives the test, as kwokctl's does)
                self.command, cwd=self.cwd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        with open(self.pid_file, "w") as handle:
            handle.write(str(process.pid))
        wait_for(self.answers, timeout=120, interval=1, what=self.name + " to answer again")

    def restart(self, down_seconds):
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def ensure_up(self):
        """Whatever happened: an API server process runs and answers."""
        deadline = time.monotonic() + 120
        while not self.answers():
            if not self.running():
                self.start()
            assert time.monotonic() < deadline, self.name + " does not answer"
            time.sleep(1)


CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def control_plane_up(components):
    """Start again what died (the API server first), as the kubelet or systemd does on a real control plane."""
    for component in components:
        component.ensure_up()


@pytest.fixture
def control_plane(sim_kubeconfig, api_client):
    """The cluster's kube-apiserver, controller manager and scheduler; all running again after the test."""
    components = [Component(sim_kubeconfig, api_client, name) for name in CONTROL_PLANE]
    try:
        yield components
    finally:
        control_plane_up(components)


# --------------------------------------------------------------------------- the deployed stack


@pytest.fixture(scope="module")
def stack(api_client, sim_kubeconfig):
    """A dev stack deployed once for the module; removed with its data afterwards."""
    namespace = "test-faults-" + uuid.uuid4().hex[:6]
    try:
        proc = site(namespace, sim_kubeconfig)
        assert proc.returncode == 0, proc.report()
        yield namespace
    finally:
        teardown(namespace, sim_kubeconfig, "-e", "bigdata_teardown_delete_data=true")
        try:
            client.CoreV1Api(api_client).delete_namespace(namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_half_applied_role_converges_when_run_again(api_client, sim_kubeconfig, stack):
    """A role whose objects were partly deleted (as an interrupted apply or a hand-made mistake leaves
    it) is whole again after one more run of site.yml, and the run after that changes nothing."""
    core, policy = client.CoreV1Api(api_client), client.PolicyV1Api(api_client)
    before = inventory(api_client, stack)
    kafka = "app.kubernetes.io/name=kafka"
    deleted = {
        "configmaps": [c.metadata.name for c in core.list_namespaced_config_map(stack, label_selector=kafka).items],
        "services": [s.metadata.name for s in core.list_namespaced_service(stack, label_selector=kafka).items],
        "pdbs": [p.metadata.name for p in policy.list_namespaced_pod_disruption_budget(stack, label_selector=kafka).items],
    }
    assert all(deleted.values()), deleted
    for name in deleted["configmaps"]:
        core.delete_namespaced_config_map(name, stack)
    for name in deleted["services"]:
        core.delete_namespaced_service(name, stack)
    for name in deleted["pdbs"]:
        policy.delete_namespaced_pod_disruption_budget(name, stack)
    assert set(deleted["services"]).isdisjoint(inventory(api_client, stack)["services"])

    again = site(stack, sim_kubeconfig, "--tags", "kafka")
    assert again.returncode == 0, again.report()
    assert inventory(api_client, stack) == before
    third = site(stack, sim_kubeconfig, "--tags", "kafka")
    assert third.returncode == 0 and third.recap()["changed"] == 0, third.report()


class Background(threading.Thread):
    """A playbook run in a thread, so the test can break the cluster while it runs."""

    def __init__(self, func, *args):
        super().__init__(daemon=True)
        self.func, self.args, self.result = func, args, None

    def run(self):
        self.result = self.func(*self.args)

    def outcome(self, timeout=900):
        self.join(timeout)
        assert not self.is_alive(), "the playbook did not end within %ss" % timeout
        return self.result


def evict(core, namespace, name):
    """HTTP status of an eviction (the API drains use): 201 evicted, 429 refused by a PodDisruptionBudget."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
    try:
        core.create_namespaced_pod_eviction(name, namespace, body)
    except ApiException as exc:
        if exc.status == 404:
            return 404
        assert exc.status == 429, (exc.status, exc.body)
        assert "disruption budget" in exc.body, exc.body
        return 429
    return 201


def test_node_drained_mid_deploy_respects_budgets_and_the_run_converges(api_client, sim_kubeconfig, stack):
    """A node cordoned and drained through the eviction API while site.yml runs: an eviction beyond a
    PodDisruptionBudget is refused with 429 (kubectl drain would retry it), every pod comes back on
    the other nodes, and the run (or, if it lost the race, the next one) ends with everything ready."""
    core, policy = client.CoreV1Api(api_client), client.PolicyV1Api(api_client)
    # The node to drain: the one running a pod of a budget with at least two pods.
    budgets = [pdb for pdb in policy.list_namespaced_pod_disruption_budget(stack).items
               if pdb.spec.max_unavailable == 1 and pdb.status.expected_pods >= 2]
    assert budgets, "no PodDisruptionBudget with two pods to test"
    budget = budgets[0]
    selector = ",".join("%s=%s" % item for item in sorted(budget.spec.selector.match_labels.items()))
    guarded = core.list_namespaced_pod(stack, label_selector=selector).items
    node = guarded[0].spec.node_name
    on_node = running_on(core, stack, node)
    others = [p.metadata.name for p in guarded[1:]]

    run = Background(site, stack, sim_kubeconfig)
    run.start()
    try:
        core.patch_node(node, {"spec": {"unschedulable": True}})
        # The budget allows one: the first eviction goes, a second one of the same budget is refused.
        assert evict(core, stack, guarded[0].metadata.name) == 201
        assert evict(core, stack, others[0]) == 429
        # The drain: every pod of the node evicted, each refusal retried, as kubectl drain does.
        statuses = {}

        def drained():
            for name in on_node:
                try:
                    pod = core.read_namespaced_pod(name, stack)
                except ApiException:
                    continue
                if pod.spec.node_name != node:
                    continue
                statuses.setdefault(name, []).append(evict(core, stack, name))
            return not running_on(core, stack, node)
        wait_for(drained, timeout=240, interval=2, what="node %s drained" % node)
        first = run.outcome()
        final = first if first.returncode == 0 else site(stack, sim_kubeconfig)
        assert final.returncode == 0, (first.report(), final.report())
        # Everything the drain evicted runs again, elsewhere: the budget's pods are all back and ready.
        assert running_on(core, stack, node) == []
        back = core.list_namespaced_pod(stack, label_selector=selector).items
        assert sorted(p.metadata.name for p in back) == sorted(p.metadata.name for p in guarded)
        assert all(p.spec.node_name != node and p.status.phase == "Running" for p in back)
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})
    print("drained %s: %s; evictions %s; first run rc=%s" % (node, on_node, statuses, first.returncode))


def running_on(core, namespace, node):
    """Pods of the namespace on the node that have not ended (a drain leaves none)."""
    return [p.metadata.name for p in core.list_namespaced_pod(namespace, field_selector="spec.nodeName=" + node).items
            if p.status.phase not in ("Succeeded", "Failed")]


def test_api_server_restarted_during_site_yml(api_client, sim_kubeconfig, stack, control_plane):
    """kube-apiserver killed and started again while site.yml applies: the run either fails naming
    the API server it cannot reach or rides it out; the next run converges with nothing lost (same
    generated Secrets with the same data, same volume claims), and the one after changes nothing."""
    core = client.CoreV1Api(api_client)
    before = inventory(api_client, stack)
    # A marker of the apply phase: hdfs's configuration is deleted, and the restart comes when it is back.
    [marker] = [c.metadata.name for c in core.list_namespaced_config_map(
        stack, label_selector="app.kubernetes.io/name=hdfs").items][:1]
    core.delete_namespaced_config_map(marker, stack)

    def reapplied():
        try:
            return core.read_namespaced_config_map(marker, stack, _request_timeout=5)
        except ApiException:
            return None

    run = Background(site, stack, sim_kubeconfig)
    run.start()
    wait_for(reapplied, timeout=600, interval=0.2, what="site.yml to apply %s" % marker)
    control_plane[0].restart(down_seconds=5)
    # Without leader election the controller manager and the scheduler ride out the API server's absence.
    assert all(component.running() for component in control_plane[1:]), [c.name for c in control_plane if not c.running()]
    interrupted = run.outcome()

    if interrupted.returncode != 0:
        failed = [t for t in interrupted.task_results() if t["status"] == "failed" and not t["ignore_errors"]]
        assert failed, interrupted.report()
        # The failed task names what it was doing and the broken connection, e.g. "applying ConfigMap/<ns>/hdfs-config,
        # ...: Failed to apply object: ('Connection aborted.', RemoteDisconnected(...))".
        message = str(failed[-1]["result"].get("msg"))
        assert any(words in message for words in ("Connection refused", "Connection aborted", "RemoteDisconnected",
                                                  "cannot reach the Kubernetes API server")), message
    again = site(stack, sim_kubeconfig)
    assert again.returncode == 0, (interrupted.report(), again.report())
    assert inventory(api_client, stack) == before
    last = site(stack, sim_kubeconfig)
    assert last.returncode == 0 and last.recap()["changed"] == 0, last.report()
    print("interrupted run: rc=%s recap=%s; last failure: %s" % (
        interrupted.returncode, interrupted.recap(),
        [t["result"].get("msg") for t in interrupted.task_results() if t["status"] == "failed"][-1:]))


def test_pod_deleted_while_wait_ready_waits(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    """A pod of the workload deleted while wait_ready waits: the controller creates it again (new uid)
    and the wait succeeds once it is ready. The pods wait on a node label no node has until the
    test deletes one of them, then the label is put on a node and they schedule."""
    from test_wait_ready_on_cluster import statefulset, wait_ready

    ns = restricted_namespace
    core = client.CoreV1Api(api_client)
    label = "faults.bigdata.stack/hold-" + uuid.uuid4().hex[:6]
    sts = statefulset("held", 2, node_selector={label: "yes"})
    sts["spec"]["podManagementPolicy"] = "Parallel"
    options = {"namespace": ns, "resources": [{"kind": "StatefulSet", "name": "held"}], "wait_timeout": 300,
               "wait_sleep": 1, "stuck_timeout": 0}
    node = core.list_node().items[0].metadata.name
    run = Background(wait_ready, tmp_path, sim_kubeconfig, options, [sts])
    run.start()
    try:
        first = wait_for(lambda: _pod_uid(core, ns, "held-0"), timeout=300, what="held-0 created")
        core.delete_namespaced_pod("held-0", ns, grace_period_seconds=0)
        wait_for(lambda: _pod_uid(core, ns, "held-0") not in (None, first), timeout=60, what="held-0 created again")
        core.patch_node(node, {"metadata": {"labels": {label: "yes"}}})
        result, proc = run.outcome()
    finally:
        core.patch_node(node, {"metadata": {"labels": {label: None}}})
    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is True and result["resources"][0]["message"] == "2 of 2 replicas ready"
    assert _pod_uid(core, ns, "held-0") != first


def _pod_uid(core, namespace, name):
    try:
        return core.read_namespaced_pod(name, namespace).metadata.uid
    except ApiException:
        return None


def test_spark_submit_twice_at_once_leaves_one_driver(api_client, sim_kubeconfig, spark_ns, tmp_path):
    """Two spark_submit runs of the same application at the same time (two operators, or a retried
    CI job while the first still submits): while one driver of the name is active, no second one
    stays. Both runs succeed and name the same driver pod; the driver is held Pending (a scheduling
    gate), which the module treats like Running."""
    options = app_options(spark_ns, "twice", driver_pod_template=str(spark_ns["dir"] / "driver-held.yaml"))
    # Two JVMs start at once on a busy machine: give spark-submit's client more than its 10 s to connect.
    options["conf"] = dict(options["conf"], **{"spark.kubernetes.submission.connectionTimeout": "60000",
                                               "spark.kubernetes.submission.requestTimeout": "60000"})
    runs = [Background(spark_submit, tmp_path, sim_kubeconfig, options) for dummy in range(2)]
    for run in runs:
        run.start()
    results = [run.outcome()[0][0] for run in runs]

    assert not any(r.get("failed") for r in results), [r.get("msg") for r in results]
    active = [p for p in spark_drivers(api_client, spark_ns, "twice") if not p.metadata.deletion_timestamp]
    assert len(active) == 1, [(p.metadata.name, p.status.phase) for p in active]
    assert {r["driver_pod"] for r in results} == {active[0].metadata.name}, results
    # The same again while that driver is active: nothing submitted.
    [third], dummy = spark_submit(tmp_path, sim_kubeconfig, options)
    assert not third["changed"] and not third["submitted"] and third["driver_pod"] == active[0].metadata.name


def test_teardown_twice_second_run_changes_nothing(api_client, sim_kubeconfig, stack):
    """teardown.yml run again on a stack it already removed is green and changes nothing."""
    first = teardown(stack, sim_kubeconfig)
    assert first.returncode == 0 and first.recap()["changed"] > 0, first.report()
    second = teardown(stack, sim_kubeconfig)
    assert second.returncode == 0, second.report()
    assert second.recap()["failed"] == 0 and second.recap()["changed"] == 0, second.report()
    apps = client.AppsV1Api(api_client)
    assert apps.list_namespaced_stateful_set(stack).items == [] and apps.list_namespaced_deployment(stack).items == []
    # Data stays (bigdata_teardown_delete_data is false): the claims are still there.
    assert client.CoreV1Api(api_client).list_namespaced_persistent_volume_claim(stack).items
