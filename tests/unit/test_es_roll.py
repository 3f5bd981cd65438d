# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""es_roll.py: the Elasticsearch gate of a roll, on answers shaped like Elasticsearch's own.

Where each fixture's shape comes from (elastic/elasticsearch unless said otherwise):
- _cluster/health: rest-api-spec/src/yamlRestTest/resources/rest-api-spec/test/cluster.health/10_basic.yml
  (cluster_name, timed_out, number_of_nodes, number_of_data_nodes, active_primary_shards,
  active_shards, relocating_shards, initializing_shards, unassigned_shards,
  unassigned_primary_shards, number_of_pending_tasks) and the Cluster health API reference
  (status, delayed_unassigned_shards, number_of_in_flight_fetch, task_max_waiting_in_queue_millis,
  active_shards_percent_as_number).
- _cat/nodes?format=json&h=name,node.role,master: server/src/main/java/org/elasticsearch/rest/action/
  cat/RestNodesAction.java (node.role = the node's role abbreviations sorted and joined: d data,
  i ingest, m master ...; master = "*" for the elected master, "-" otherwise, "x" when the node
  knows no master) and rest-api-spec/.../test/cat.nodes/10_basic.yml (node.role matches
  (-|[cdfhilmrstvwIS]{1,11}), master matches [-*x]). JSON cat output is a list of objects keyed
  by the column names, every value a string.
- _cluster/settings?flat_settings=true: rest-api-spec/.../test/cluster.put_settings/10_basic.yml
  (PUT persistent cluster.routing.allocation.enable "none" answers {persistent: {...: "none"}},
  null resets it to {persistent: {}}; GET answers the same shape) and the Cluster update settings
  reference ("acknowledged": true).
- _cat/shards?format=json&h=index,shard,prirep,state,node: the cat shards API reference (prirep p/r,
  state STARTED/INITIALIZING/RELOCATING/UNASSIGNED, no node for an unassigned copy).
- errors: Elasticsearch's error body {"error": {"root_cause": [...], "type", "reason"}, "status"}
  (master_not_discovered_exception 503, security_exception 401), as in test_health.py.

Topologies: dev (roles/elasticsearch/defaults: one pool `default`, [master, data, ingest], one
replica), stage (inventories/stage: `default` x3 with every role) and prod (inventories/prod:
`master` x3 [master] and `data` x3 [data, ingest]). Node names are pod names
(roles/elasticsearch/tasks/apply.yml: node.name ${NODE_NAME}, the pod's metadata.name).
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import es_roll
from ansible_collections.bigdata.stack.plugins.module_utils import health as hc
from ansible_collections.bigdata.stack.plugins.module_utils.es_roll import ElasticsearchGate, GateError
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError

SETTING = "cluster.routing.allocation.enable"

# --------------------------------------------------------------------------- fixtures


def health(status="green", nodes=6, data_nodes=3, primaries=10, replicas=10, unassigned=0, unassigned_primaries=0,
           initializing=0, relocating=0, name="bigdata"):
    active = primaries + replicas - unassigned - initializing
    total = primaries + replicas
    return {
        "cluster_name": name, "status": status, "timed_out": False, "number_of_nodes": nodes,
        "number_of_data_nodes": data_nodes, "active_primary_shards": primaries - unassigned_primaries,
        "active_shards": active, "relocating_shards": relocating, "initializing_shards": initializing,
        "unassigned_shards": unassigned, "unassigned_primary_shards": unassigned_primaries,
        "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0 * active / total,
    }


def cat_node(name, role, master="-"):
    return {"name": name, "node.role": role, "master": master}


# prod: dedicated masters (node.roles [master] -> "m") and data nodes ([data, ingest] -> "di");
# elasticsearch-master-1 is the elected master.
PROD_NODES = [
    cat_node("elasticsearch-data-0", "di"), cat_node("elasticsearch-data-1", "di"), cat_node("elasticsearch-data-2", "di"),
    cat_node("elasticsearch-master-0", "m"), cat_node("elasticsearch-master-1", "m", "*"),
    cat_node("elasticsearch-master-2", "m"),
]
# stage: three nodes with every role ([master, data, ingest] -> "dim"), elasticsearch-default-0 elected.
STAGE_NODES = [cat_node("elasticsearch-default-%d" % i, "dim", "*" if i == 0 else "-") for i in range(3)]
DEV_NODES = [cat_node("elasticsearch-default-0", "dim", "*")]

ES_NO_MASTER = {
    "error": {"root_cause": [{"type": "master_not_discovered_exception", "reason": None}],
              "type": "master_not_discovered_exception", "reason": None},
    "status": 503,
}
ES_UNAUTHENTICATED = {
    "error": {"root_cause": [{"type": "security_exception",
                              "reason": "missing authentication credentials for REST request [/_cluster/health]"}],
              "type": "security_exception",
              "reason": "missing authentication credentials for REST request [/_cluster/health]"},
    "status": 401,
}


def pod(name, ready=True, master=None):
    labels = {"app.kubernetes.io/name": "elasticsearch"}
    if master is not None:
        labels[es_roll.MASTER_LABEL] = "true" if master else "false"
    return {"metadata": {"name": name, "labels": labels},
            "status": {"podIP": "10.244.0.%d" % (len(name) % 200),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pods_of(nodes):
    return [pod(node["name"], master="m" in node["node.role"]) for node in nodes]


def shard(index, number, prirep, state, node):
    return {"index": index, "shard": str(number), "prirep": prirep, "state": state, "node": node}


class FakeES:
    """An Elasticsearch answering the gate's requests from state, recording every request."""

    def __init__(self, health_doc, nodes, persistent=None, transient=None, shards=None):
        self.health = health_doc
        self.nodes = nodes
        self.persistent = dict(persistent or {})
        self.transient = dict(transient or {})
        self.shards = shards or []
        self.calls = []
        self.fail = {}

    def __call__(self, method, path, body=None):
        self.calls.append((method, path, copy.deepcopy(body)))
        route = path.split("?")[0]
        if (method, route) in self.fail:
            answer = self.fail[(method, route)]
            if isinstance(answer, Exception):
                raise answer
            return answer
        if route == "_cluster/health":
            return 200, copy.deepcopy(self.health)
        if route == "_cat/nodes":
            return 200, copy.deepcopy(self.nodes)
        if route == "_cat/shards":
            return 200, copy.deepcopy(self.shards)
        if route == "_cluster/settings" and method == "GET":
            return 200, {"persistent": dict(self.persistent), "transient": dict(self.transient)}
        if route == "_cluster/settings" and method == "PUT":
            for key, value in body.get("persistent", {}).items():
                if value is None:
                    self.persistent.pop(key, None)
                else:
                    self.persistent[key] = value
            return 200, {"acknowledged": True, "persistent": dict(self.persistent), "transient": {}}
        if route == "_flush" and method == "POST":
            return 200, {"_shards": {"total": 20, "successful": 20, "failed": 0}}
        return 404, {"error": {"type": "unknown", "reason": path}, "status": 404}

    def writes(self):
        return [(method, path, body) for method, path, body in self.calls if method != "GET"]

    # what deleting a pod does to the cluster, and what its return does
    def node_leaves(self, name, unassigned=5):
        self.nodes = [node for node in self.nodes if node["name"] != name]
        self.health = dict(self.health, status="yellow", number_of_nodes=self.health["number_of_nodes"] - 1,
                           unassigned_shards=unassigned)

    def node_returns(self, row, initializing=5):
        self.nodes = self.nodes + [row]
        self.health = dict(self.health, number_of_nodes=self.health["number_of_nodes"] + 1,
                           unassigned_shards=0, initializing_shards=initializing)

    def recovered(self, status="green"):
        self.health = dict(self.health, status=status, initializing_shards=0)


def names(pods):
    return [p["metadata"]["name"] for p in pods]


# --------------------------------------------------------------------------- parsing


class TestParsing:
    def test_cat_nodes(self):
        nodes, error = es_roll.parse_nodes(200, json.dumps(PROD_NODES))
        assert error is None
        assert [n["name"] for n in nodes if n["elected"]] == ["elasticsearch-master-1"]
        assert [n["name"] for n in nodes if es_roll.is_master_eligible(n)] == [
            "elasticsearch-master-0", "elasticsearch-master-1", "elasticsearch-master-2"]
        assert [n["name"] for n in nodes if es_roll.holds_data(n)] == [
            "elasticsearch-data-0", "elasticsearch-data-1", "elasticsearch-data-2"]

    def test_coordinating_only_and_no_master_known(self):
        nodes, dummy = es_roll.parse_nodes(200, [cat_node("coord-0", "-", "x"), cat_node("elasticsearch-master-0", "m", "x")])
        assert nodes[0]["roles"] == "" and not es_roll.holds_data(nodes[0])
        assert es_roll.elected_master(nodes) is None

    def test_errors_are_named(self):
        nodes, error = es_roll.parse_nodes(503, ES_NO_MASTER)
        assert nodes is None and "master_not_discovered_exception" in error and "503" in error
        doc, error = es_roll.parse_health(401, ES_UNAUTHENTICATED)
        assert doc is None and "credentials" in error

    def test_allocation_value(self):
        assert es_roll.allocation_value({"persistent": {}, "transient": {}}) == (None, None)
        assert es_roll.allocation_value({"persistent": {SETTING: "primaries"}, "transient": {}}) == ("primaries", "persistent")
        # transient wins over persistent
        assert es_roll.allocation_value({"persistent": {SETTING: "all"}, "transient": {SETTING: "none"}}) == ("none", "transient")


# --------------------------------------------------------------------------- order


class TestOrder:
    def test_prod_data_first_then_masters_elected_last(self):
        pods = pods_of(PROD_NODES)
        random.Random(7).shuffle(pods)
        gate = ElasticsearchGate(FakeES(health(), PROD_NODES))
        assert names(gate.order(pods)) == [
            "elasticsearch-data-2", "elasticsearch-data-1", "elasticsearch-data-0",
            "elasticsearch-master-2", "elasticsearch-master-0",
            "elasticsearch-master-1",  # the elected master, the very last
        ]

    def test_prod_elected_master_last_wherever_it_is(self):
        nodes = [dict(n, master="*" if n["name"] == "elasticsearch-master-2" else "-") for n in PROD_NODES]
        order = names(ElasticsearchGate(FakeES(health(), nodes)).order(pods_of(nodes)))
        assert order[-1] == "elasticsearch-master-2" and order[-3:-1] == ["elasticsearch-master-1", "elasticsearch-master-0"]

    def test_stage_every_node_master_eligible(self):
        order = names(ElasticsearchGate(FakeES(health(nodes=3), STAGE_NODES)).order(pods_of(STAGE_NODES)))
        assert order == ["elasticsearch-default-2", "elasticsearch-default-1", "elasticsearch-default-0"]

    def test_dev_single_node(self):
        assert names(ElasticsearchGate(FakeES(health(nodes=1), DEV_NODES)).order(pods_of(DEV_NODES))) == [
            "elasticsearch-default-0"]

    def test_pod_not_in_the_cluster_goes_first(self):
        nodes = [n for n in PROD_NODES if n["name"] != "elasticsearch-master-0"]
        order = names(ElasticsearchGate(FakeES(health(nodes=5), nodes)).order(pods_of(PROD_NODES)))
        assert order[0] == "elasticsearch-master-0" and order[-1] == "elasticsearch-master-1"

    def test_without_an_answer_the_master_label_orders(self):
        es = FakeES(health(), PROD_NODES)
        es.fail[("GET", "_cat/nodes")] = (503, ES_NO_MASTER)
        gate = ElasticsearchGate(es)
        order = names(gate.order(pods_of(PROD_NODES)))
        assert order == ["elasticsearch-data-2", "elasticsearch-data-1", "elasticsearch-data-0",
                         "elasticsearch-master-2", "elasticsearch-master-1", "elasticsearch-master-0"]
        assert any("master_not_discovered_exception" in note for note in gate.notes)


# --------------------------------------------------------------------------- precheck


class TestPrecheck:
    def test_green_is_safe(self):
        gate = ElasticsearchGate(FakeES(health(), PROD_NODES))
        assert gate.precheck(pods_of(PROD_NODES)) == []
        assert gate.baseline["status"] == "green" and gate.notes == []

    def test_red_refuses_and_names_the_force_variable(self):
        es = FakeES(health("red", unassigned=4, unassigned_primaries=2), PROD_NODES)
        reasons = ElasticsearchGate(es).precheck(pods_of(PROD_NODES))
        assert len(reasons) == 1
        assert "red before the change" in reasons[0] and "2 of them primaries" in reasons[0]
        assert es_roll.FORCE_VARIABLE + "=true" in reasons[0]
        assert es.writes() == []  # nothing touched

    def test_refusal_names_the_mechanisms_variable(self):
        es = FakeES(health("red", unassigned=4, unassigned_primaries=2), PROD_NODES)
        reasons = ElasticsearchGate(es, force_variable="elasticsearch_roll_force").precheck(pods_of(PROD_NODES))
        assert reasons[0].endswith("(elasticsearch_roll_force=true rolls anyway)")

    def test_red_forced_proceeds_and_says_so(self):
        gate = ElasticsearchGate(FakeES(health("red", unassigned=4, unassigned_primaries=2), PROD_NODES), force=True)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        assert any(note.startswith("forced (%s): cluster bigdata is red" % es_roll.FORCE_VARIABLE) for note in gate.notes)

    def test_yellow_with_unassigned_primaries_refuses(self):
        # Elasticsearch reports a new index whose primaries are being allocated as yellow.
        es = FakeES(health("yellow", unassigned=2, unassigned_primaries=1), PROD_NODES,
                    shards=[shard("logs", 0, "p", "UNASSIGNED", None), shard("logs", 0, "r", "UNASSIGNED", None)])
        reasons = ElasticsearchGate(es).precheck(pods_of(PROD_NODES))
        assert any("1 unassigned primary shards" in r for r in reasons)

    def test_yellow_refuses_when_a_restart_takes_the_only_copy(self):
        shards = [shard("events", 0, "p", "STARTED", "elasticsearch-data-1"), shard("events", 0, "r", "UNASSIGNED", None),
                  shard("events", 1, "p", "STARTED", "elasticsearch-data-0"),
                  shard("events", 1, "r", "STARTED", "elasticsearch-data-2")]
        es = FakeES(health("yellow", unassigned=1), PROD_NODES, shards=shards)
        reasons = ElasticsearchGate(es).precheck(pods_of(PROD_NODES))
        assert len(reasons) == 1
        assert "index events shard 0 has its only started copy on elasticsearch-data-1" in reasons[0]

    def test_yellow_allowed_when_every_shard_keeps_a_copy(self):
        # two replicas, one of them unassignable: any one node can restart and the shard stays available
        shards = [shard("events", 0, "p", "STARTED", "elasticsearch-data-1"), shard("events", 0, "r", "STARTED", "elasticsearch-data-0"),
                  shard("events", 0, "r", "UNASSIGNED", None),
                  shard("single", 0, "p", "STARTED", "elasticsearch-data-2")]  # no replicas: its own choice
        gate = ElasticsearchGate(FakeES(health("yellow", unassigned=1), PROD_NODES, shards=shards))
        assert gate.precheck(pods_of(PROD_NODES)) == []
        assert gate.baseline["status"] == "yellow"

    def test_dev_single_node_rolls_with_a_note(self):
        # dev: one node, replicas never assignable, so always yellow. No order keeps it available;
        # refusing would make every dev change need the force variable, so the gate says so instead.
        es = FakeES(health("yellow", nodes=1, data_nodes=1, unassigned=10), DEV_NODES)
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(DEV_NODES)) == []
        assert any("has one node" in note and "unavailable while that node restarts" in note for note in gate.notes)
        assert not any(path.startswith("_cat/shards") for dummy, path, dummy2 in es.calls)

    def test_dev_single_node_red_still_refuses(self):
        es = FakeES(health("red", nodes=1, data_nodes=1, unassigned=10, unassigned_primaries=5), DEV_NODES)
        assert ElasticsearchGate(es).precheck(pods_of(DEV_NODES)) != []

    def test_transient_allocation_refuses(self):
        es = FakeES(health(), PROD_NODES, transient={SETTING: "none"})
        reasons = ElasticsearchGate(es).precheck(pods_of(PROD_NODES))
        assert len(reasons) == 1 and "set transiently to 'none'" in reasons[0]

    def test_user_restriction_refuses_and_forced_is_put_back(self):
        es = FakeES(health(), PROD_NODES, persistent={SETTING: "new_replicas"})
        assert "'new_replicas' (persistent)" in ElasticsearchGate(es).precheck(pods_of(PROD_NODES))[0]
        gate = ElasticsearchGate(es, force=True)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        gate.before(pod("elasticsearch-data-2"))
        assert es.persistent[SETTING] == "primaries"
        assert gate.after()[0] is True
        assert es.persistent[SETTING] == "new_replicas"

    def test_leftover_primaries_of_an_interrupted_roll_continues_and_ends_at_default(self):
        es = FakeES(health("yellow", unassigned=1), PROD_NODES, persistent={SETTING: "primaries"},
                    shards=[shard("a", 0, "p", "STARTED", "elasticsearch-data-0"), shard("a", 0, "r", "STARTED", "elasticsearch-data-1"),
                            shard("a", 0, "r", "UNASSIGNED", None)])
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        assert any("interrupted roll" in note for note in gate.notes)
        gate.before(pod("elasticsearch-data-2"))
        gate.after()
        assert SETTING not in es.persistent

    def test_unreadable_health_refuses(self):
        es = FakeES(health(), PROD_NODES)
        es.fail[("GET", "_cluster/health")] = (401, ES_UNAUTHENTICATED)
        gate = ElasticsearchGate(es)
        reasons = gate.precheck(pods_of(PROD_NODES))
        assert len(reasons) == 1 and "cannot be read" in reasons[0] and "answered 401" in reasons[0]
        assert es.writes() == []

    def test_yellow_with_unreadable_shards_refuses_unless_forced(self):
        es = FakeES(health("yellow", unassigned=1), PROD_NODES)
        es.fail[("GET", "_cat/shards")] = (403, {"error": {"type": "security_exception", "reason": "unauthorized"},
                                                 "status": 403})
        reasons = ElasticsearchGate(es).precheck(pods_of(PROD_NODES))
        assert len(reasons) == 1 and "shards cannot be listed" in reasons[0] and "403" in reasons[0]
        gate = ElasticsearchGate(es, force=True)
        assert gate.precheck(pods_of(PROD_NODES)) == [] and any("shards cannot be listed" in n for n in gate.notes)

    def test_missing_node_is_a_note_not_a_refusal(self):
        nodes = [n for n in PROD_NODES if n["name"] != "elasticsearch-data-0"]
        gate = ElasticsearchGate(FakeES(health(nodes=5), nodes))
        assert gate.precheck(pods_of(PROD_NODES)) == []
        assert "not in the cluster now, restarted first: elasticsearch-data-0" in gate.notes


# --------------------------------------------------------------------------- a whole roll


def roll(gate, es, pods, rows, status_after="green"):
    """Drive the gate as the mechanism does; returns the reasons settled() gave, per pod."""
    waited = {}
    assert gate.precheck(pods) == []
    for p in gate.order(pods):
        name = p["metadata"]["name"]
        gate.before(p)
        assert es.persistent.get(SETTING) == "primaries", "allocation restricted before %s is deleted" % name
        es.node_leaves(name)
        reasons = []
        ok, reason = gate.settled(p)
        reasons.append(reason)
        assert not ok
        assert es.persistent.get(SETTING) == "primaries", "allocation stays restricted until the node is back"
        es.node_returns(rows[name])
        ok, reason = gate.settled(p)
        reasons.append(reason)
        assert not ok and SETTING not in es.persistent, "re-enabled once the node rejoined"
        es.recovered(status_after)
        ok, reason = gate.settled(p)
        reasons.append(reason)
        assert ok, reason
        waited[name] = reasons
    gate.after()
    return waited


class TestRoll:
    def test_prod_roll_follows_elastics_procedure(self):
        es = FakeES(health(), PROD_NODES)
        gate = ElasticsearchGate(es)
        rows = dict((n["name"], n) for n in PROD_NODES)
        waited = roll(gate, es, pods_of(PROD_NODES), rows)
        assert list(waited) == ["elasticsearch-data-2", "elasticsearch-data-1", "elasticsearch-data-0",
                                "elasticsearch-master-2", "elasticsearch-master-0", "elasticsearch-master-1"]
        first = waited["elasticsearch-data-2"]
        assert first[0].startswith("node elasticsearch-data-2 has not rejoined the cluster yet (5 nodes")
        assert first[1] == "cluster bigdata is yellow, waiting for green (0 unassigned, 5 initializing, 0 relocating shards)"
        assert first[2] == "node elasticsearch-data-2 rejoined, allocation re-enabled, cluster bigdata is green"
        # each step: restrict, flush, (delete), re-enable; nothing else written
        step = [("PUT", es_roll.SETTINGS_PATH, {"persistent": {SETTING: "primaries"}}), ("POST", "_flush", None),
                ("PUT", es_roll.SETTINGS_PATH, {"persistent": {SETTING: None}})]
        assert es.writes() == step * 6
        assert SETTING not in es.persistent

    def test_waits_for_green_not_just_yellow(self):
        es = FakeES(health(), PROD_NODES)
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        p = pod("elasticsearch-data-2")
        gate.before(p)
        es.node_leaves("elasticsearch-data-2")
        es.node_returns(PROD_NODES[2], initializing=0)
        es.health = dict(es.health, status="yellow", unassigned_shards=3)
        ok, reason = gate.settled(p)
        assert not ok and reason.startswith("cluster bigdata is yellow, waiting for green (3 unassigned")

    def test_yellow_baseline_settles_back_at_the_same_yellow(self):
        shards = [shard("a", 0, "p", "STARTED", "elasticsearch-default-0"), shard("a", 0, "r", "STARTED", "elasticsearch-default-1"),
                  shard("a", 0, "r", "UNASSIGNED", None)]
        es = FakeES(health("yellow", nodes=3, unassigned=1), STAGE_NODES, shards=shards)
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(STAGE_NODES)) == []
        p = pod("elasticsearch-default-2")
        gate.before(p)
        es.node_leaves("elasticsearch-default-2", unassigned=2)
        es.node_returns(STAGE_NODES[2], initializing=0)
        es.health = dict(es.health, status="yellow", unassigned_shards=2)
        ok, reason = gate.settled(p)
        assert not ok and "2 unassigned shards, 1 before the roll" in reason
        es.health = dict(es.health, unassigned_shards=1)
        assert gate.settled(p) == (True, "node elasticsearch-default-2 rejoined, allocation re-enabled, cluster bigdata is yellow")

    def test_forced_red_settles_when_no_worse_than_before(self):
        es = FakeES(health("red", unassigned=4, unassigned_primaries=2), PROD_NODES)
        gate = ElasticsearchGate(es, force=True)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        p = pod("elasticsearch-data-2")
        gate.before(p)
        es.node_leaves("elasticsearch-data-2", unassigned=8)
        es.node_returns(PROD_NODES[2], initializing=2)
        es.health = dict(es.health, status="red", unassigned_shards=4)
        ok, reason = gate.settled(p)
        assert not ok and reason.startswith("cluster bigdata is red, shards still recovering (4 unassigned, 2 initializing")
        es.recovered("red")
        assert gate.settled(p)[0] is True

    def test_forced_without_a_baseline_waits_for_yellow(self):
        es = FakeES(health("red", unassigned=4, unassigned_primaries=2), PROD_NODES)
        es.fail[("GET", "_cluster/health")] = (503, ES_NO_MASTER)
        gate = ElasticsearchGate(es, force=True)
        assert gate.precheck(pods_of(PROD_NODES)) == [] and gate.baseline is None
        del es.fail[("GET", "_cluster/health")]
        p = pod("elasticsearch-master-0")
        gate.before(p)
        ok, reason = gate.settled(p)
        assert not ok and reason.startswith("cluster bigdata is red, waiting for yellow")
        es.health = health("yellow", unassigned=2)
        assert gate.settled(p)[0] is True

    def test_dev_single_node_roll(self):
        es = FakeES(health("yellow", nodes=1, data_nodes=1, unassigned=10), DEV_NODES)
        gate = ElasticsearchGate(es)
        p = pod("elasticsearch-default-0")
        assert gate.precheck([p]) == [] and names(gate.order([p])) == ["elasticsearch-default-0"]
        gate.before(p)
        es.nodes = []
        es.fail[("GET", "_cluster/health")] = (503, ES_NO_MASTER)
        ok, reason = gate.settled(p)
        assert not ok and "has not rejoined the cluster yet (0 nodes: none)" in reason
        del es.fail[("GET", "_cluster/health")]
        es.nodes = DEV_NODES
        assert gate.settled(p)[0] is True
        assert SETTING not in es.persistent


# --------------------------------------------------------------------------- failures


class TestFailures:
    def test_restriction_refused_stops_before_the_delete_and_after_undoes(self):
        es = FakeES(health(), PROD_NODES)
        es.fail[("PUT", "_cluster/settings")] = (403, {"error": {"type": "security_exception",
                                                                 "reason": "action [cluster:admin/settings/update] is unauthorized"},
                                                       "status": 403})
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        with pytest.raises(GateError, match="could not be restricted.*403"):
            gate.before(pod("elasticsearch-data-2"))
        del es.fail[("PUT", "_cluster/settings")]
        assert gate.after()[0] is True
        assert es.writes()[-1] == ("PUT", es_roll.SETTINGS_PATH, {"persistent": {SETTING: None}})

    def test_step_that_never_settles_is_undone_by_after(self):
        es = FakeES(health(), PROD_NODES)
        gate = ElasticsearchGate(es)
        assert gate.precheck(pods_of(PROD_NODES)) == []
        p = pod("elasticsearch-data-2")
        gate.before(p)
        es.node_leaves("elasticsearch-data-2")
        assert gate.settled(p)[0] is False  # the mechanism times out here and calls after()
        assert es.persistent[SETTING] == "primaries"
        assert gate.after() == (True, "shard allocation restored (%s=null)" % SETTING)
        assert SETTING not in es.persistent
        assert gate.after() == (True, "shard allocation is not restricted by the roll")

    def test_after_that_cannot_restore_says_how_and_never_raises(self):
        es = FakeES(health(), PROD_NODES)
        gate = ElasticsearchGate(es)
        gate.precheck(pods_of(PROD_NODES))
        gate.before(pod("elasticsearch-data-2"))
        es.fail[("PUT", "_cluster/settings")] = ConnectionError("exec stream closed")
        ok, reason = gate.after()
        assert not ok and "still restricted" in reason and "exec stream closed" in reason
        assert '{"persistent": {"cluster.routing.allocation.enable": null}}' in reason
        assert reason in gate.notes

    def test_flush_failure_is_a_note(self):
        es = FakeES(health(), PROD_NODES)
        es.fail[("POST", "_flush")] = (503, ES_NO_MASTER)
        gate = ElasticsearchGate(es)
        gate.precheck(pods_of(PROD_NODES))
        gate.before(pod("elasticsearch-data-2"))
        assert any(note.startswith("flush before restarting elasticsearch-data-2 failed") for note in gate.notes)

    def test_settled_reports_an_unreadable_cluster(self):
        es = FakeES(health(), PROD_NODES)
        gate = ElasticsearchGate(es)
        gate.precheck(pods_of(PROD_NODES))
        es.fail[("GET", "_cat/nodes")] = (503, ES_NO_MASTER)
        ok, reason = gate.settled(pod("elasticsearch-data-2"))
        assert not ok and "master_not_discovered_exception" in reason


# --------------------------------------------------------------------------- transport


class FakeRest:
    def __init__(self, out="", rc=0):
        self.calls = []
        self.out = out
        self.rc = rc

    def exec_in_pod(self, namespace, name, command, container=None, stdin=None, timeout=60):
        self.calls.append(dict(namespace=namespace, pod=name, command=command, container=container, stdin=stdin))
        return self.rc, self.out, ""


class TestExecHttp:
    def test_put_runs_curl_in_a_ready_pod_with_credentials_on_stdin(self):
        rest = FakeRest(out=json.dumps({"acknowledged": True, "persistent": {SETTING: "primaries"}, "transient": {}}) + "\n200")
        pods = [pod("elasticsearch-data-2", ready=False), pod("elasticsearch-data-1")]
        http = es_roll.exec_http(rest, "bigdata", lambda: pods, "https://elasticsearch:9200", ("elastic", "s3cr3t"))
        status, body = http("PUT", es_roll.SETTINGS_PATH, {"persistent": {SETTING: "primaries"}})
        assert status == 200 and body["acknowledged"] is True
        call = rest.calls[0]
        assert call["pod"] == "elasticsearch-data-1" and call["container"] == "elasticsearch"
        assert call["command"][-2] == "https://elasticsearch:9200/_cluster/settings?flat_settings=true"
        assert json.loads(call["command"][-1]) == {"persistent": {SETTING: "primaries"}}
        assert "--request PUT" in call["command"][2]
        assert "s3cr3t" not in json.dumps(call["command"]) and call["stdin"] == hc.curl_config("elastic", "s3cr3t")

    def test_get_is_the_wait_ready_command(self):
        rest = FakeRest(out=json.dumps(health()) + "\n200")
        http = es_roll.exec_http(rest, "bigdata", lambda: [pod("elasticsearch-data-0")], "https://elasticsearch:9200/")
        status, body = http("GET", "/_cluster/health")
        assert status == 200 and body["status"] == "green"
        assert rest.calls[0]["command"] == hc.curl_command("https://elasticsearch:9200/_cluster/health", timeout=30)
        assert rest.calls[0]["stdin"] == "\n"

    def test_failures_are_answers_not_exceptions(self):
        http = es_roll.exec_http(FakeRest(), "bigdata", lambda: [pod("elasticsearch-data-0", ready=False)], "http://elasticsearch:9200")
        assert http("GET", "_cat/nodes") == (0, "no Ready Elasticsearch pod to run curl in")
        http = es_roll.exec_http(FakeRest(out="curl: (7) Failed to connect", rc=7), "bigdata",
                                 lambda: [pod("elasticsearch-data-0")], "http://elasticsearch:9200")
        status, reason = http("GET", "_cat/nodes")
        assert status == 0 and "exit 7" in reason and "Failed to connect" in reason

    def test_terminating_pod_and_api_errors(self):
        terminating = pod("elasticsearch-data-2")
        terminating["metadata"]["deletionTimestamp"] = "2026-12-02T05:00:00Z"
        rest = FakeRest(out="[]\n200")
        http = es_roll.exec_http(rest, "bigdata", lambda: [terminating, pod("elasticsearch-data-1")], "http://elasticsearch:9200")
        assert http("GET", "_cat/nodes") == (200, [])
        assert rest.calls[0]["pod"] == "elasticsearch-data-1"

        class Forbidden(FakeRest):
            def exec_in_pod(self, *args, **kwargs):
                raise ApiError(403, "Forbidden", '{"message": "pods \\"elasticsearch-data-1\\" is forbidden"}')

        http = es_roll.exec_http(Forbidden(), "bigdata", lambda: [pod("elasticsearch-data-1")], "http://elasticsearch:9200")
        status, reason = http("GET", "_cat/nodes")
        assert status == 0 and reason.startswith("exec in pod bigdata/elasticsearch-data-1 failed: 403 Forbidden")

    def test_curl_methods(self):
        with pytest.raises(ValueError, match="PATCH"):
            hc.curl_command("http://x", method="PATCH")
        post = hc.curl_command("http://x/_flush", method="POST")
        assert "--request POST" in post[2] and "--data-binary" not in post[2] and post[-1] == "http://x/_flush"
