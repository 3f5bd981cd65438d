# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""site.yml's preflight (bigdata.stack.preflight) on the simulated cluster: each check fires before
any write, and a stack that passes it deploys, re-deploys with changed=0 and dry-runs.

Kafka alone (bigdata_components: [kafka], so platform and kafka) keeps each run short; its external
listener asks for a NodePort, its brokers claim volumes, so every check has something to check.
The tests pick a NodePort no Service of the cluster holds, so they do not depend on what else runs.
Bad inputs that need no setup on the cluster (a missing Secret, an unknown StorageClass) are
cases of tests/validation (``# phase: preflight``).
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import run_playbook, wait_for

PREFLIGHT = "bigdata.stack.preflight"
SELECTOR = "app.kubernetes.io/part-of=bigdata-stack,app.kubernetes.io/instance=%s"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
HOLD = "bigdata.stack/test-hold"


def site(name, kubeconfig, *args, **extra):
    variables = dict({"bigdata_namespace": name, "bigdata_instance": name, "bigdata_components": ["kafka"],
                      "bigdata_wait_application_health": False, "bigdata_wait_timeout": 240}, **extra)
    return run_playbook("site.yml", "-i", "inventories/dev", "-e", json.dumps(variables), *args, kubeconfig=kubeconfig)


def failed_in_preflight(run):
    """The message of the preflight task that failed; asserts it was the first failure and nothing changed before."""
    assert run.returncode != 0, "the run succeeded:\n" + run.report()
    ran = run.task_results()
    failed = [r for r in ran if r["status"] == "failed" and not r["ignore_errors"]]
    assert failed and failed[0]["action"] == PREFLIGHT, "did not fail in the preflight:\n" + run.report()
    before = ran[:ran.index(failed[0])]
    assert not [r["task"] for r in before if r["changed"]], "something changed before the preflight failed"
    assert not [r for r in ran[ran.index(failed[0]) + 1:] if r["status"] != "skipped"], "tasks ran after it"
    return failed[0]["result"]["msg"]


def objects_of(api_client, instance):
    """Every object of the stack's instance that the stack writes, as Kind/namespace/name."""
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    net, policy = client.NetworkingV1Api(api_client), client.PolicyV1Api(api_client)
    selector = SELECTOR % instance
    found = []
    for kind, listing in (("Namespace", lambda: core.list_namespace(label_selector=selector)),
                          ("Service", lambda: core.list_service_for_all_namespaces(label_selector=selector)),
                          ("ConfigMap", lambda: core.list_config_map_for_all_namespaces(label_selector=selector)),
                          ("Secret", lambda: core.list_secret_for_all_namespaces(label_selector=selector)),
                          ("StatefulSet", lambda: apps.list_stateful_set_for_all_namespaces(label_selector=selector)),
                          ("NetworkPolicy", lambda: net.list_network_policy_for_all_namespaces(label_selector=selector)),
                          ("PodDisruptionBudget",
                           lambda: policy.list_pod_disruption_budget_for_all_namespaces(label_selector=selector))):
        found += ["%s/%s/%s" % (kind, item.metadata.namespace, item.metadata.name) for item in listing().items]
    return sorted(found)


def namespace_absent(core, name):
    try:
        core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def free_node_port(core, count=1):
    """The lowest base port with `count` consecutive NodePorts no Service holds (from 31500 up)."""
    held = {p.node_port for svc in core.list_service_for_all_namespaces().items for p in svc.spec.ports or []
            if p.node_port}
    for base in range(31500, 32767 - count):
        if not held.intersection(range(base, base + count)):
            return base
    raise AssertionError("no free NodePort on the cluster")


def delete_namespace(core, name):
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def first_stack(api_client, sim_kubeconfig):
    """A deployed stack holding a NodePort: (name, its NodePort, the first run)."""
    core = client.CoreV1Api(api_client)
    name = "pfa-" + uuid.uuid4().hex[:6]
    port = free_node_port(core)
    run = site(name, sim_kubeconfig, kafka_external_base_nodeport=port)
    try:
        assert run.returncode == 0, run.report()
        yield name, port, run
    finally:
        run_playbook("teardown.yml", "-i", "inventories/dev", "-e", json.dumps(
            {"bigdata_namespace": name, "bigdata_instance": name, "bigdata_components": ["kafka"],
             "bigdata_teardown_delete_data": True}), kubeconfig=sim_kubeconfig)
        delete_namespace(core, name)


def test_the_happy_path_passes_again_with_no_change_and_in_check_mode(first_stack, sim_kubeconfig):
    name, port, first = first_stack
    preflight = [r for r in first.task_results() if r["action"] == PREFLIGHT]
    assert len(preflight) == 1 and preflight[0]["status"] == "ok" and not preflight[0]["changed"]
    # The stack's own NodePort Service holds the port now: no conflict with itself.
    again = site(name, sim_kubeconfig, kafka_external_base_nodeport=port)
    assert again.returncode == 0, again.report()
    assert again.recap()["changed"] == 0, again.report()
    dry = site(name, sim_kubeconfig, "--check", kafka_external_base_nodeport=port)
    assert dry.returncode == 0, dry.report()
    assert [r["result"]["namespace_exists"] for r in dry.task_results() if r["action"] == PREFLIGHT] == [True]


def test_a_nodeport_held_by_another_stack_fails_before_any_write(first_stack, api_client, sim_kubeconfig):
    holder, port, _ = first_stack
    name = "pfb-" + uuid.uuid4().hex[:6]
    run = site(name, sim_kubeconfig, kafka_external_base_nodeport=port)
    message = failed_in_preflight(run)
    for part in ("kafka_external_base_nodeport", "NodePort %d" % port,
                 "Service %s/kafka-broker-0-external" % holder, "bigdata instance %s" % holder,
                 "e.g. kafka_external_base_nodeport: "):
        assert part in message, message
    assert objects_of(api_client, name) == []
    assert namespace_absent(client.CoreV1Api(api_client), name)


def test_no_default_storage_class_fails_naming_the_classes(api_client, sim_kubeconfig):
    storage = client.StorageV1Api(api_client)
    defaults = [sc.metadata.name for sc in storage.list_storage_class().items
                if (sc.metadata.annotations or {}).get(DEFAULT_CLASS) == "true"]
    assert defaults, "the simulated cluster marks its StorageClass default (roles/simcluster)"
    name = "pfs-" + uuid.uuid4().hex[:6]
    try:
        for sc in defaults:
            storage.patch_storage_class(sc, {"metadata": {"annotations": {DEFAULT_CLASS: "false"}}})
        message = failed_in_preflight(site(name, sim_kubeconfig, kafka_external_enabled=False))
    finally:
        for sc in defaults:
            storage.patch_storage_class(sc, {"metadata": {"annotations": {DEFAULT_CLASS: "true"}}})
    assert "bigdata_storage_class is empty" in message and "no StorageClass is marked default" in message, message
    for sc in defaults:
        assert sc in message, message
    assert objects_of(api_client, name) == []
    assert namespace_absent(client.CoreV1Api(api_client), name)


@pytest.fixture
def terminating_namespace(api_client):
    """A namespace held in Terminating by a ConfigMap with a finalizer; release() lets it go."""
    core = client.CoreV1Api(api_client)
    name = "pft-" + uuid.uuid4().hex[:6]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="held", finalizers=[HOLD])))
    core.delete_namespace(name)
    # The API server makes the namespace Terminating at once; the namespace controller says what holds
    # it (condition NamespaceFinalizersRemaining, naming HOLD) only after its first pass over the
    # content, which a busy control plane takes seconds to make. The preflight relays that condition.
    wait_for(lambda: any(c.type == "NamespaceFinalizersRemaining" and c.status == "True" and HOLD in (c.message or "")
                         for c in core.read_namespace(name).status.conditions or []),
             what="namespace %s Terminating, held by %s" % (name, HOLD))

    def release():
        core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})

    yield name, release
    try:
        release()
    except ApiException as exc:
        if exc.status != 404:
            raise
    delete_namespace(core, name)


def test_a_namespace_still_terminating_fails_before_any_write(terminating_namespace, api_client, sim_kubeconfig):
    name, _ = terminating_namespace
    core = client.CoreV1Api(api_client)
    message = failed_in_preflight(site(name, sim_kubeconfig, kafka_external_enabled=False,
                                       bigdata_preflight_namespace_timeout=3))
    for part in ("namespace %s is still being deleted" % name, HOLD, "bigdata_preflight_namespace_timeout"):
        assert part in message, message
    # Nothing was written: the namespace is as the test left it, with only the held ConfigMap.
    assert core.read_namespace(name).status.phase == "Terminating"
    assert [cm.metadata.name for cm in core.list_namespaced_config_map(name).items] == ["held"]
    assert objects_of(api_client, name) == []


def test_a_namespace_that_goes_while_the_preflight_waits_passes(terminating_namespace, api_client, sim_kubeconfig):
    """The wait alone (tests/integration/playbooks/preflight.yml, which starts in seconds), released while it waits."""
    name, release = terminating_namespace
    # Long enough for ansible to start and the module to find the namespace Terminating.
    timer = threading.Timer(15, release)
    timer.start()
    try:
        run = run_playbook("tests/integration/playbooks/preflight.yml", "-e", json.dumps(
            {"test_namespace": name, "test_namespace_timeout": 300}), kubeconfig=sim_kubeconfig)
    finally:
        timer.cancel()
    assert run.returncode == 0, run.report()
    result = [r["result"] for r in run.task_results() if r["action"] == PREFLIGHT][0]
    assert result["namespace_exists"] is False and result["namespace_waited"] > 0, result
    assert namespace_absent(client.CoreV1Api(api_client), name)
