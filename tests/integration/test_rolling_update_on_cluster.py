"""The kafka role's roll (bigdata.stack.rolling_update) on the simulated cluster.

stage's Kafka shape (3 dedicated controllers, 3 brokers; TLS off, so no Secret is needed) is
deployed with site.yml, then the image tag changes. The StatefulSets use updateStrategy OnDelete,
so only the role's roll restarts pods. kwok makes pods Ready without running anything, so the roll
runs with bigdata_wait_application_health=false, that is gate `none` (each pod Ready before the
next goes): this test proves the mechanism (what is rolled, in which order, one at a time, changed=0
on a re-run, resume after an interruption), not the Kafka gate, which tests/daemons runs on real
brokers.
"""

import json

from kubernetes import client

from helpers import PodWatch, run_playbook

KAFKA_PODS = "app.kubernetes.io/name=kafka,app.kubernetes.io/component in (controller,broker)"
ORDER = ["kafka-controller-2", "kafka-controller-1", "kafka-controller-0",
         "kafka-broker-2", "kafka-broker-1", "kafka-broker-0"]


def site(namespace, kubeconfig, **extra):
    settings = {"bigdata_namespace": namespace, "bigdata_components": ["kafka"], "bigdata_tls_enabled": False,
                "bigdata_wait_application_health": False, "bigdata_wait_timeout": 120}
    settings.update(extra)
    return run_playbook("site.yml", "-i", "inventories/stage", "-e", "bigdata_kubeconfig=%s" % kubeconfig,
                        "-e", json.dumps(settings), kubeconfig=kubeconfig)


def roll_result(run):
    [task] = [t for t in run.task_results() if t["action"] == "bigdata.stack.rolling_update"]
    return task


def pods_by_name(core, namespace):
    return {p.metadata.name: p for p in core.list_namespaced_pod(namespace, label_selector=KAFKA_PODS).items}


def revisions(apps, core, namespace):
    """{pod: True when on its StatefulSet's update revision}."""
    target = {name: apps.read_namespaced_stateful_set(name, namespace).status.update_revision
              for name in ("kafka-controller", "kafka-broker")}
    return {name: pod.metadata.labels["controller-revision-hash"] == target[name.rsplit("-", 1)[0]]
            for name, pod in pods_by_name(core, namespace).items()}


def test_image_tag_change_rolls_one_pod_at_a_time_reruns_change_nothing_and_an_interrupted_roll_resumes(
        api_client, sim_kubeconfig, restricted_namespace):
    ns = restricted_namespace
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)

    first = site(ns, sim_kubeconfig)
    assert first.returncode == 0, first.report()
    assert roll_result(first)["result"]["rolled"] == []  # a new cluster: nothing to roll
    for name in ("kafka-controller", "kafka-broker"):
        assert apps.read_namespaced_stateful_set(name, ns).spec.update_strategy.type == "OnDelete"
    uids = {name: p.metadata.uid for name, p in pods_by_name(core, ns).items()}
    assert sorted(uids) == sorted(ORDER)

    # A new image tag: the apply changes the StatefulSets, the roll restarts every pod, one at a time.
    with PodWatch(api_client, ns, KAFKA_PODS) as seen:
        upgrade = site(ns, sim_kubeconfig, kafka_image_tag="4.4.1")
    assert upgrade.returncode == 0, upgrade.report()
    roll = roll_result(upgrade)
    assert roll["changed"] is True
    assert [s["pod"] for s in roll["result"]["rolled"]] == ORDER
    assert [s["order"] for s in roll["result"]["rolled"]] == [1, 2, 3, 4, 5, 6]
    assert all(s["waited_ready"] > 0 for s in roll["result"]["rolled"])
    assert seen.deleted == ORDER, seen.deleted
    assert seen.worst[0] == 1, "more than one Kafka pod was down at once: %s" % (seen.worst,)
    now = pods_by_name(core, ns)
    assert all(now[name].metadata.uid != uids[name] for name in ORDER)
    assert all(revisions(apps, core, ns).values())
    assert all(c.image == "apache/kafka:4.4.1" for p in now.values() for c in p.spec.containers)
    # site.yml says what it rolled, in which order, how long each step waited.
    for step in roll["result"]["rolled"]:
        assert "%-28s %s s" % (step["pod"], step["seconds"]) in upgrade.stdout, upgrade.stdout[-3000:]

    # The same inventory again: nothing restarts, nothing changes.
    again = site(ns, sim_kubeconfig, kafka_image_tag="4.4.1")
    assert again.returncode == 0, again.report()
    assert roll_result(again)["changed"] is False and roll_result(again)["result"]["rolled"] == []
    assert again.recap()["changed"] == 0, [t["task"] for t in again.task_results() if t["changed"]]
    assert {name: p.metadata.uid for name, p in pods_by_name(core, ns).items()} == {
        name: p.metadata.uid for name, p in now.items()}

    # Interrupted: no node takes a new pod, so the first restarted pod never comes back and the roll
    # stops there, with every other pod on the old revision.
    nodes = [n.metadata.name for n in core.list_node().items]
    for node in nodes:
        core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        stuck = site(ns, sim_kubeconfig, kafka_image_tag="4.4.2", bigdata_wait_timeout=20)
    finally:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": False}})
    assert stuck.returncode != 0
    failed = roll_result(stuck)
    assert failed["status"] == "failed"
    assert "kafka-controller-2 was deleted and is not Ready again after 20s" in failed["result"]["msg"]
    assert "restarted by the next run" in failed["result"]["msg"]
    assert failed["result"]["pending"] == ORDER[1:]
    on_new = revisions(apps, core, ns)
    assert not [name for name in ORDER[1:] if on_new[name]], on_new  # all but the first still on the old revision

    # The next run resumes: the pods still on the old revision, in the same order, and only those.
    with PodWatch(api_client, ns, KAFKA_PODS) as seen:
        resumed = site(ns, sim_kubeconfig, kafka_image_tag="4.4.2")
    assert resumed.returncode == 0, resumed.report()
    assert [s["pod"] for s in roll_result(resumed)["result"]["rolled"]] == ORDER[1:]
    assert seen.deleted == ORDER[1:], seen.deleted
    assert seen.worst[0] <= 1, seen.worst
    assert all(revisions(apps, core, ns).values())
