# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The elasticsearch role's roll (bigdata.stack.rolling_update) on the simulated cluster.

Elasticsearch does not run here: kwok marks the pods Ready without starting a container, so the
roll runs with bigdata_wait_application_health=false, i.e. the readiness-only gate `none` (no request
to Elasticsearch; each pod Ready before the next goes). What this proves on a real API server and
StatefulSet controller: the role's StatefulSets are OnDelete, an image change restarts every node
one at a time in the order the role lists them (data pools first, master-eligible pools last, each
highest ordinal first: the order es_roll.restart_order gives from the pods' master label when the
cluster cannot be asked), and a re-run changes nothing. The Elasticsearch gate's decisions are
unit-tested (tests/unit/test_es_roll.py, tests/unit/plugins/modules/test_rolling_update.py).

Node pools are prod-shaped through -e on the dev inventory (fits a dev-shaped sim cluster):
`master` x3 [master], `data` x2 [data, ingest].
"""

from __future__ import annotations

import json

from kubernetes import client

from helpers import PodWatch, run_playbook
from test_rolling_update_on_cluster import roll_result

ES_PODS = "app.kubernetes.io/name=elasticsearch"
MASTER_LABEL = "bigdata.stack/elasticsearch-master"
POOL = {"heap": "512m", "storage_size": "5Gi",
        "resources": {"requests": {"cpu": "100m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                      "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "5Gi"}}}
POOLS = [dict(POOL, name="master", roles=["master"], replicas=3),
         dict(POOL, name="data", roles=["data", "ingest"], replicas=2)]
# Not master-eligible first, then master-eligible; in each StatefulSet the highest ordinal first.
ORDER = ["elasticsearch-data-1", "elasticsearch-data-0",
         "elasticsearch-master-2", "elasticsearch-master-1", "elasticsearch-master-0"]


def site(namespace, kubeconfig, **extra):
    settings = {"bigdata_namespace": namespace, "bigdata_instance": namespace, "bigdata_components": ["elasticsearch"],
                "bigdata_wait_application_health": False, "bigdata_wait_timeout": 120,
                "elasticsearch_node_pools": POOLS}
    settings.update(extra)
    return run_playbook("site.yml", "-i", "inventories/dev", "-e", json.dumps(settings), kubeconfig=kubeconfig)


def es_pods(core, namespace):
    return {p.metadata.name: p for p in core.list_namespaced_pod(namespace, label_selector=ES_PODS).items
            if p.metadata.name.startswith(("elasticsearch-data-", "elasticsearch-master-"))}


def test_elasticsearch_image_change_rolls_data_nodes_then_masters_one_at_a_time_and_a_rerun_changes_nothing(
        api_client, sim_kubeconfig, restricted_namespace):
    ns = restricted_namespace
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)

    first = site(ns, sim_kubeconfig)
    assert first.returncode == 0, first.report()
    assert roll_result(first)["result"]["rolled"] == []  # a new cluster: nothing to roll
    for name in ("elasticsearch-master", "elasticsearch-data"):
        assert apps.read_namespaced_stateful_set(name, ns).spec.update_strategy.type == "OnDelete"
    before = es_pods(core, ns)
    assert sorted(before) == sorted(ORDER)
    # The order follows the master label the gate reads when it cannot ask the cluster.
    assert [n for n in ORDER if before[n].metadata.labels[MASTER_LABEL] == "true"] == ORDER[2:]

    with PodWatch(api_client, ns, ES_PODS, names=ORDER) as seen:
        upgrade = site(ns, sim_kubeconfig, elasticsearch_image_tag="9.5.7")
    assert upgrade.returncode == 0, upgrade.report()
    roll = roll_result(upgrade)
    assert roll["changed"] is True
    assert [s["pod"] for s in roll["result"]["rolled"]] == ORDER
    assert seen.deleted == ORDER, seen.deleted
    assert seen.worst[0] == 1, "more than one Elasticsearch pod was down at once: %s" % (seen.worst,)
    now = es_pods(core, ns)
    assert all(now[name].metadata.uid != before[name].metadata.uid for name in ORDER)
    assert all(c.image.endswith("elasticsearch:9.5.7") for p in now.values() for c in p.spec.containers
               if c.name == "elasticsearch")
    for step in roll["result"]["rolled"]:
        assert "%-28s %s s" % (step["pod"], step["seconds"]) in upgrade.stdout, upgrade.stdout[-3000:]

    again = site(ns, sim_kubeconfig, elasticsearch_image_tag="9.5.7")
    assert again.returncode == 0, again.report()
    assert roll_result(again)["changed"] is False and roll_result(again)["result"]["rolled"] == []
    assert again.recap()["changed"] == 0, [t["task"] for t in again.task_results() if t["changed"]]
    assert {n: p.metadata.uid for n, p in es_pods(core, ns).items()} == {n: p.metadata.uid for n, p in now.items()}
