"""Helpers for tests that run playbooks against the simulated cluster."""

import contextlib
import importlib.util
import ipaddress
import json
import os
import subprocess
import threading
import time
import uuid

import yaml
from kubernetes import client, watch

from playbook import REPO, run as run_ansible  # noqa: F401 (REPO: the tests import it from here)


def run_playbook(playbook, *args, kubeconfig=None, check=False):
    """Run ansible-playbook from the repository root (tests/playbook.py); returns its PlaybookRun.

    kubeconfig: given to the Kubernetes modules as K8S_AUTH_KUBECONFIG. check: fail the test when
    the playbook fails (not Ansible's check mode: pass "--check" for that).
    """
    run = run_ansible(playbook, *args, env={"K8S_AUTH_KUBECONFIG": kubeconfig} if kubeconfig else None)
    if check and run.returncode != 0:
        raise AssertionError("playbook failed:\n" + run.report())
    return run


# Runs bigdata.stack.spark_submit with the options in a vars file and writes its results to a file.
SPARK_SUBMIT = "tests/integration/playbooks/spark_submit.yml"


def spark_submit(tmp_path, kubeconfig, options, runs=1, check=False, verbose=False):
    """Run bigdata.stack.spark_submit `runs` times in one play; (list of task results, PlaybookRun)."""
    tag = uuid.uuid4().hex[:8]
    result_file = tmp_path / ("result-%s.json" % tag)
    vars_file = tmp_path / ("vars-%s.json" % tag)
    vars_file.write_text(json.dumps({"spark": options, "spark_runs": runs, "result_file": str(result_file)}))
    args = ["-e", "@%s" % vars_file] + (["--check"] if check else []) + (["-vvv"] if verbose else [])
    proc = run_playbook(SPARK_SUBMIT, *args, kubeconfig=kubeconfig)
    assert proc.returncode == 0 and result_file.exists(), proc.report()
    return json.loads(result_file.read_text()), proc


# Where the simulated clusters live (roles/simcluster: <cache>/kwok/clusters/<name>/kubeconfig.yaml).
CACHE = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")


def cluster_name(kubeconfig):
    """A simulated cluster's name, from its kubeconfig's path (<cache>/kwok/clusters/<name>/...)."""
    return os.path.basename(os.path.dirname(kubeconfig))


@contextlib.contextmanager
def simulated_cluster(name, inventory="inventories/dev", **variables):
    """A simulated cluster of a test's own (not the session's one that `make test` starts), shaped
    like `inventory`, with the simcluster role's `variables`; yields its kubeconfig's path and
    removes the cluster afterwards, failing the test if either step fails."""
    extra = json.dumps(dict(variables, simcluster_name=name))
    up = run_playbook("playbooks/simcluster.yml", "-i", inventory, "-e", extra)
    try:
        assert up.returncode == 0, up.report()
        yield os.path.join(CACHE, "kwok", "clusters", name, "kubeconfig.yaml")
    finally:
        down = run_playbook("playbooks/simcluster.yml", "-i", inventory, "-e", extra,
                            "-e", "simcluster_state=absent")
        assert down.returncode == 0, down.report()


def _agent():
    """roles/simcluster/files/runtime/agent.py as a module (not a package of the collection)."""
    path = os.path.join(REPO, "roles", "simcluster", "files", "runtime", "agent.py")
    spec = importlib.util.spec_from_file_location("bds_agent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pod_range(preferred, variable):
    """The node agent's pod range for a test module: $`variable` if set, else `preferred` (each
    module has its own, as they run at the same time) unless something on this machine already
    routes it (the agent would refuse it: e.g. a cluster a killed run left), then the first free
    one of 10.<b+20>, 10.<b+30>, ... (b: preferred's second byte, so two modules never pick alike)."""
    if os.environ.get(variable):
        return ipaddress.ip_network(os.environ[variable])
    routes = subprocess.run(["ip", "-o", "-4", "route", "show"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    network_class = _agent().Network
    second = ipaddress.ip_network(preferred).network_address.packed[1]
    for candidate in [preferred] + ["10.%d.0.0/24" % b for b in range(second + 20, 255, 10)]:
        if not network_class("", candidate, "/nonexistent").taken_by_others(routes):
            return ipaddress.ip_network(candidate)
    raise AssertionError("no free pod range like %s on this machine (ip -4 route): set %s" % (preferred, variable))


def kubectl():
    """The kubectl built with the simulated cluster (roles/simcluster: <cache>/simcluster/k8s-<kube
    version>_etcd-<etcd version>_kwok-<kwok version>/kubectl, the versions its defaults pin)."""
    with open(os.path.join(REPO, "roles", "simcluster", "defaults", "main.yml"), encoding="utf-8") as handle:
        pins = yaml.safe_load(handle)
    return os.path.join(CACHE, "simcluster", "k8s-{simcluster_kube_version}_etcd-{simcluster_etcd_version}"
                        "_kwok-{simcluster_kwok_version}".format(**pins), "kubectl")


def wait_for(predicate, timeout=60, interval=0.5, what="condition"):
    """Poll predicate until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


# JVM options for a fast start on 2 shared cores, for the JVMs tests start that live seconds (the
# same as every JVM of tests/daemons). Never for measurements: tools/ do not use them.
FAST_START_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


class PodWatch:
    """Every change of the namespace's pods (by label, optionally only `names`) while a run goes on:
    the order they went in, and how many were not Ready at once."""

    def __init__(self, api_client, namespace, label_selector, names=None):
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.label_selector = label_selector
        self.names = names
        self.state = {}
        self.worst = (0, [])
        self.deleted = []
        self.deleted_uids = set()
        self.forced = []  # deleted at grace 0: kwok's, see seen()
        self.resource_version = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def watched(self, name):
        return self.names is None or name in self.names

    def __enter__(self):
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.label_selector)
        self.state = {p.metadata.name: self.ready(p) for p in pods.items if self.watched(p.metadata.name)}
        self.resource_version = pods.metadata.resource_version
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)

    @staticmethod
    def ready(pod):
        if pod.metadata.deletion_timestamp:
            return False
        return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))

    def run(self):
        # Each watch goes on from the last event the previous one delivered: no event is missed
        # between them, so a pod's first event with a deletionTimestamp is its delete's own.
        while not self.stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(self.core.list_namespaced_pod, self.namespace,
                                       label_selector=self.label_selector, timeout_seconds=5,
                                       resource_version=self.resource_version):
                self.seen(event)
                if self.stop.is_set():
                    break
            self.resource_version = stream.resource_version

    def seen(self, event):
        pod = event["object"]
        name = pod.metadata.name
        if self.watched(name):
            going = event["type"] == "DELETED" or pod.metadata.deletion_timestamp
            if going and pod.metadata.uid not in self.deleted_uids:
                self.deleted_uids.add(pod.metadata.uid)
                # A pod's first event with a deletionTimestamp carries the grace period of the
                # DELETE that set it: even at grace 0 the API server writes it before it removes
                # the pod (k8s.io/apiserver pkg/registry/rest/delete.go BeforeDelete). The roll
                # deletes with the pod's grace period. kwok's pod-delete stage ends every graceful
                # delete with a DELETE by name at grace 0, without the uid precondition a kubelet's
                # final delete carries (sigs.k8s.io/kwok pkg/kwok/controllers/pod_controller.go,
                # deleteOpt); run late, on a loaded machine, it takes the pod that replaced the one
                # deleted. That is kwok's, not the roll's: listed apart.
                if not pod.metadata.deletion_grace_period_seconds:
                    self.forced.append(name)
                else:
                    self.deleted.append(name)
            self.state[name] = False if event["type"] == "DELETED" else self.ready(pod)
            down = sorted(n for n, ok in self.state.items() if not ok)
            if len(down) > self.worst[0]:
                self.worst = (len(down), down)
