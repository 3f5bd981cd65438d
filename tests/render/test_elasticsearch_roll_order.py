# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The Elasticsearch roll gate (plugins/module_utils/es_roll.py) against the rendered StatefulSets.

The gate maps a pod to its node by name and, without an answer from the cluster, orders pods by
their bigdata.stack/elasticsearch-master label. Both come from the templates: node.name is
${NODE_NAME}, which the StatefulSet sets from the pod's metadata.name, and the pod template carries
the label. Here the pods each inventory's StatefulSets would create (<set>-<ordinal>, the pod
template's labels) are ordered by the gate: from the labels, and from _cat/nodes rows made from
each pool's node.roles (abbreviated as Elasticsearch's RestNodesAction does) with the
master-eligible node of the highest ordinal elected: the one the StatefulSet order (highest
ordinal first) would restart first, so only the gate's own rule can put it last.
"""

from __future__ import annotations

import sys

import pytest
import yaml

from render_support import REPO, documents

COLLECTIONS = str(REPO / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.bigdata.stack.plugins.module_utils import es_roll  # noqa: E402

VARIANTS = ("dev", "stage", "prod")
# DiscoveryNodeRole abbreviations of the roles the inventories use.
ABBREVIATIONS = {"master": "m", "data": "d", "ingest": "i", "voting_only": "v", "ml": "l", "transform": "t",
                 "remote_cluster_client": "r", "data_content": "s", "data_hot": "h", "data_warm": "w",
                 "data_cold": "c", "data_frozen": "f"}


def statefulsets(variant):
    found = [d for v, r, _f, d in documents()
             if v == variant and r == "elasticsearch" and d.get("kind") == "StatefulSet"]
    assert found, "no Elasticsearch StatefulSet rendered for %s" % variant
    return found


def pods(variant):
    """The pods the StatefulSets create, with their template's labels, and each one's node.roles."""
    config = [d for v, r, _f, d in documents()
              if v == variant and r == "elasticsearch" and d.get("kind") == "ConfigMap"
              and d["metadata"]["name"] == "elasticsearch-config"][0]
    made, roles = [], {}
    for sts in statefulsets(variant):
        template = sts["spec"]["template"]
        container = template["spec"]["containers"][0]
        env = dict((e["name"], e) for e in container["env"])
        # node.name is the pod name
        assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        mount = [m for m in container["volumeMounts"] if m["name"] == "config"][0]
        pool_config = yaml.safe_load(config["data"][mount["subPath"]])
        assert pool_config["node.name"] == "${NODE_NAME}"
        for ordinal in range(sts["spec"]["replicas"]):
            name = "%s-%d" % (sts["metadata"]["name"], ordinal)
            made.append({"metadata": {"name": name, "labels": dict(template["metadata"]["labels"])}})
            roles[name] = pool_config["node.roles"]
    return made, roles


def cat_nodes(roles):
    rows, elected = [], False
    for name in sorted(roles, reverse=True):
        letters = "".join(sorted(ABBREVIATIONS[role] for role in roles[name])) or "-"
        master = "-"
        if "master" in roles[name] and not elected:
            master, elected = "*", True
        rows.append({"name": name, "node.role": letters, "master": master})
    return sorted(rows, key=lambda row: row["name"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_masters_last_elected_very_last(variant):
    made, roles = pods(variant)
    # without the cluster: the label orders, every master-eligible pod after every other one
    by_label = [p["metadata"]["name"] for p in es_roll.restart_order(made, None)]
    masters = [name for name in by_label if "master" in roles[name]]
    assert by_label[len(by_label) - len(masters):] == masters, by_label
    # with _cat/nodes: the elected master is the very last, and it is the one _cat/nodes marks
    rows = cat_nodes(roles)
    nodes, error = es_roll.parse_nodes(200, rows)
    assert error is None
    order = [p["metadata"]["name"] for p in es_roll.restart_order(made, nodes)]
    assert sorted(order) == sorted(roles)
    assert order[-1] == es_roll.elected_master(nodes) == [r["name"] for r in rows if r["master"] == "*"][0]
    assert order[len(order) - len(masters):] == [n for n in order if "master" in roles[n]]
    if variant == "prod":
        assert order == ["elasticsearch-data-2", "elasticsearch-data-1", "elasticsearch-data-0",
                         "elasticsearch-master-1", "elasticsearch-master-0", "elasticsearch-master-2"]
