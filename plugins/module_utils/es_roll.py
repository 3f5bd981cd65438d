# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""The Elasticsearch gate of a roll: which pod restarts when, and when the next one may.

Elastic's rolling restart ("Full-cluster restart and rolling restart", Elasticsearch reference,
https://www.elastic.co/docs/deploy-manage/maintenance/start-stop-services/full-cluster-restart-rolling-restart-procedures):
restrict allocation to primaries (PUT _cluster/settings, persistent
cluster.routing.allocation.enable: primaries), optionally flush, restart one node, wait until it
has rejoined (_cat/nodes), re-enable allocation (the setting back to null), wait for green. ECK
does the same for pods and sorts master-eligible pods after every other one
(elastic/cloud-on-k8s pkg/controller/elasticsearch/driver/stateful/upgrade_pods_deletion.go,
sortCandidates: masters last, then StatefulSet name, then higher ordinal first), refuses to
restart a healthy node while the cluster is red (docs/reference/upgrade-predicates.md,
only_restart_healthy_node_if_green_or_yellow) or when the node holds the only started copy of a
shard (require_started_replica). This gate also restarts the elected master last, so one roll
causes at most one master election.

Decisions are pure functions over the parsed answers; ElasticsearchGate makes the requests
through a callable http(method, path, body=None) -> (status, parsed JSON or text), and
exec_http() is that callable for a pod: curl in a ready Elasticsearch pod, as wait_ready does.

Response shapes (elastic/elasticsearch):
- GET _cluster/health: rest-api-spec/.../test/cluster.health/10_basic.yml (status, number_of_nodes,
  unassigned_shards, unassigned_primary_shards since the unassigned_pri_shard_count capability,
  initializing_shards ...).
- GET _cat/nodes?format=json&h=name,node.role,master: server/.../rest/action/cat/RestNodesAction.java
  (node.role: the sorted role abbreviations, "-" for none; master: "*" elected, "-" not, "x" when
  no master is known) and rest-api-spec/.../test/cat.nodes/10_basic.yml.
- GET/PUT _cluster/settings?flat_settings=true: rest-api-spec/.../test/cluster.put_settings/10_basic.yml
  ({"persistent": {"cluster.routing.allocation.enable": "none"}, "transient": {}}; null resets).
- GET _cat/shards?format=json&h=index,shard,prirep,state,node: the cat shards API reference
  (prirep p or r; state STARTED, INITIALIZING, RELOCATING, UNASSIGNED; node null when unassigned).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.bigdata.stack.plugins.module_utils import health as hc
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError, Unreachable

ALLOCATION_SETTING = "cluster.routing.allocation.enable"
ALLOCATION_RESTRICTED = "primaries"

HEALTH_PATH = "_cluster/health"
NODES_PATH = "_cat/nodes?format=json&h=name,node.role,master"
SETTINGS_PATH = "_cluster/settings?flat_settings=true"
SHARDS_PATH = "_cat/shards?format=json&h=index,shard,prirep,state,node"
FLUSH_PATH = "_flush"

# RestNodesAction: "*" marks the elected master.
ELECTED = "*"
# DiscoveryNodeRole abbreviations of the roles that hold shards: data, data_content, data_hot,
# data_warm, data_cold, data_frozen. "m" is master-eligible.
DATA_ROLE_LETTERS = frozenset("dshwcf")
MASTER_ROLE_LETTER = "m"

# Label every Elasticsearch pod carries (templates/statefulsets.yaml.j2): the order falls back on
# it when the cluster cannot be asked.
MASTER_LABEL = "bigdata.stack/elasticsearch-master"

# The variable the user sets to roll anyway; the roll mechanism passes its value as force (and
# its own name as force_variable when it differs), so refusals name it.
FORCE_VARIABLE = "bigdata_roll_force"

# Restart groups, first to last.
GROUP_NOT_JOINED = 0
GROUP_NOT_MASTER = 1
GROUP_MASTER = 2
GROUP_ELECTED = 3

_ORDINAL_RE = re.compile(r"^(.*)-(\d+)$")


class GateError(Exception):
    """A step of the gate that must stop the roll (e.g. allocation could not be restricted)."""


# --------------------------------------------------------------------------- parsing


def _answer_error(status, body, what):
    return hc.http_error_reason(status, body, what)


def parse_nodes(status, body):
    """(nodes, error) of GET _cat/nodes?format=json&h=name,node.role,master.

    nodes: [{"name", "roles" (abbreviations), "elected" (bool)}].
    """
    doc = hc._load_json(body)
    if status != 200 or not isinstance(doc, list):
        return None, _answer_error(status, body, "Elasticsearch _cat/nodes")
    nodes = []
    for row in doc:
        if not isinstance(row, dict) or not row.get("name"):
            continue
        roles = row.get("node.role") or "-"
        nodes.append(dict(name=row["name"], roles="" if roles == "-" else roles, elected=row.get("master") == ELECTED))
    return nodes, None


def parse_health(status, body):
    """(health document, error) of GET _cluster/health."""
    doc = hc._load_json(body)
    if status != 200 or not isinstance(doc, dict) or doc.get("status") not in hc.ES_STATUS_RANK:
        return None, _answer_error(status, body, "Elasticsearch _cluster/health")
    return doc, None


def allocation_value(settings):
    """(value, scope) of cluster.routing.allocation.enable in GET _cluster/settings?flat_settings=true.

    A transient value wins over a persistent one (Elasticsearch applies transient settings on
    top); (None, None) means unset, i.e. the default "all".
    """
    for scope in ("transient", "persistent"):
        value = ((settings or {}).get(scope) or {}).get(ALLOCATION_SETTING)
        if value is not None:
            return value, scope
    return None, None


def parse_shards(status, body):
    """(shards, error) of GET _cat/shards?format=json&h=index,shard,prirep,state,node."""
    doc = hc._load_json(body)
    if status != 200 or not isinstance(doc, list):
        return None, _answer_error(status, body, "Elasticsearch _cat/shards")
    return [row for row in doc if isinstance(row, dict)], None


# --------------------------------------------------------------------------- decisions


def is_master_eligible(node):
    return MASTER_ROLE_LETTER in node["roles"]


def holds_data(node):
    return bool(DATA_ROLE_LETTERS.intersection(node["roles"]))


def elected_master(nodes):
    """Name of the elected master, or None (no master known: every row says "x")."""
    for node in nodes or []:
        if node["elected"]:
            return node["name"]
    return None


def _pod_name(pod):
    return pod["metadata"]["name"]


def _set_and_ordinal(name):
    match = _ORDINAL_RE.match(name)
    if match:
        return match.group(1), int(match.group(2))
    return name, -1


def restart_group(pod, nodes_by_name):
    """Where a pod goes in the roll: not joined, not master-eligible, master-eligible, elected master.

    A pod whose node is not in the cluster (crash-looping, not started) goes first: it serves
    nothing now, and its restart is often what the change is for. Without an answer from the
    cluster (nodes_by_name None) the pod's master label decides, and the elected master is unknown.
    """
    name = _pod_name(pod)
    if nodes_by_name is None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return GROUP_MASTER if labels.get(MASTER_LABEL) == "true" else GROUP_NOT_MASTER
    node = nodes_by_name.get(name)
    if node is None:
        return GROUP_NOT_JOINED
    if node["elected"]:
        return GROUP_ELECTED
    if is_master_eligible(node):
        return GROUP_MASTER
    return GROUP_NOT_MASTER


def restart_order(pods, nodes):
    """The pods in restart order (ECK's sortCandidates, plus the elected master last).

    Group (see restart_group), then StatefulSet name, then higher ordinal first (the order the
    StatefulSet controller itself uses). nodes: parse_nodes' list, or None when unknown.
    """
    nodes_by_name = None if nodes is None else dict((node["name"], node) for node in nodes)

    def key(pod):
        set_name, ordinal = _set_and_ordinal(_pod_name(pod))
        return (restart_group(pod, nodes_by_name), set_name, -ordinal)

    return sorted(pods, key=key)


def single_copy_shards(shards, node_names):
    """Shards (index, shard, node) whose only started copy is on one of node_names while a copy
    that should exist is not started: restarting that node makes the shard unavailable (ECK's
    require_started_replica). Indices without replicas (one row per shard) are left out: no
    order can keep them available, that is the index's own setting.
    """
    copies = {}
    for row in shards or []:
        copies.setdefault((row.get("index"), str(row.get("shard"))), []).append(row)
    found = []
    names = set(node_names)
    for (index, shard), rows in sorted(copies.items()):
        if len(rows) < 2:
            continue
        started = [row for row in rows if row.get("state") in ("STARTED", "RELOCATING")]
        if len(started) == 1 and started[0].get("node") in names:
            found.append((index, shard, started[0]["node"]))
    return found


def precheck_findings(health, nodes, allocation, shards, pod_names, health_error=None, shards_error=None):
    """(refusals, notes) before the first pod is touched.

    health: _cluster/health document (None: unreadable); nodes: parse_nodes' list or None;
    allocation: (value, scope) of allocation_value; shards: parse_shards' list or None (asked
    only for a yellow cluster of several nodes). *_error: why an answer is missing.
    """
    refusals, notes = [], []
    if health is None:
        return ["the cluster health cannot be read, so nothing tells whether a restart is safe: %s" % health_error], notes
    cluster = health.get("cluster_name")
    status = health["status"]
    nodes_count = health.get("number_of_nodes") or 0
    unassigned_primaries = health.get("unassigned_primary_shards") or 0
    if status == "red":
        refusals.append(
            "cluster %s is red before the change (%s unassigned shards, %s of them primaries): some data is "
            "unavailable already, and restarting a node can take more with it; find why with "
            "GET _cluster/allocation/explain" % (cluster, health.get("unassigned_shards"), unassigned_primaries or "some")
        )
    elif unassigned_primaries:
        refusals.append(
            "cluster %s has %s unassigned primary shards (a new index still being allocated?): wait until "
            "they are assigned, then run again" % (cluster, unassigned_primaries)
        )
    if nodes_count == 1 and status != "red":
        notes.append(
            "cluster %s has one node: it is unavailable while that node restarts, whatever the order; the "
            "gate still restricts allocation and waits for the node and for %s again" % (cluster, status)
        )
    elif status == "yellow" and shards_error:
        refusals.append("cluster %s is yellow and its shards cannot be listed to tell which restart is safe: %s"
                        % (cluster, shards_error))
    elif status == "yellow" and shards is not None:
        for index, shard, node in single_copy_shards(shards, pod_names)[:5]:
            refusals.append(
                "index %s shard %s has its only started copy on %s (its other copies are unassigned): "
                "restarting %s would make it unavailable; get the replicas assigned first "
                "(GET _cluster/allocation/explain)" % (index, shard, node, node)
            )
    value, scope = allocation
    if scope == "transient":
        refusals.append(
            "%s is set transiently to %r: a transient value overrides the persistent one the roll sets; "
            "reset it (PUT _cluster/settings {\"transient\": {\"%s\": null}})" % (ALLOCATION_SETTING, value, ALLOCATION_SETTING)
        )
    elif value == ALLOCATION_RESTRICTED:
        notes.append(
            "%s is already %r (persistent), as an interrupted roll leaves it: the roll continues and sets "
            "it back to the default (all) at the end" % (ALLOCATION_SETTING, value)
        )
    elif value not in (None, "all"):
        refusals.append(
            "%s is %r (persistent): allocation was restricted on purpose, and a restarted node's shards "
            "would not recover under it; reset it or force the roll (the value is put back afterwards)"
            % (ALLOCATION_SETTING, value)
        )
    if nodes is not None:
        joined = set(node["name"] for node in nodes)
        missing = [name for name in pod_names if name not in joined]
        if missing:
            notes.append("not in the cluster now, restarted first: %s" % ", ".join(missing))
    return refusals, notes


def restore_value(original):
    """The allocation value the roll puts back: the user's own restriction, else the default (null)."""
    value, scope = original
    if scope == "persistent" and value not in (None, ALLOCATION_RESTRICTED):
        return value
    return None


def settled_decision(node_name, nodes, allocation, health, baseline, restore):
    """(ok, reason) after a restarted pod is Ready: node back, allocation restored, health back.

    allocation and health are only read once the node is back (None before). baseline: the
    health document from before the roll (None when it could not be read and
    the roll was forced: at least yellow is then asked). The health is back when its status is
    at least the baseline's, nothing is initializing, and no more shards are unassigned than
    before (so a cluster that was yellow is back to that same yellow, not to a worse one).
    """
    names = [node["name"] for node in nodes]
    if node_name not in names:
        return False, "node %s has not rejoined the cluster yet (%s nodes: %s)" % (
            node_name, len(names), ", ".join(sorted(names)) or "none")
    value, dummy = allocation
    if value != restore:
        return False, "%s is %r, waiting for %r" % (ALLOCATION_SETTING, value, restore if restore is not None else "the default (all)")
    status = health["status"]
    target = baseline["status"] if baseline else "yellow"
    rank = hc.ES_STATUS_RANK
    figures = "%s unassigned, %s initializing, %s relocating shards" % (
        health.get("unassigned_shards"), health.get("initializing_shards"), health.get("relocating_shards"))
    if rank[status] < rank[target]:
        return False, "cluster %s is %s, waiting for %s (%s)" % (health.get("cluster_name"), status, target, figures)
    if health.get("initializing_shards"):
        return False, "cluster %s is %s, shards still recovering (%s)" % (health.get("cluster_name"), status, figures)
    before = (baseline or {}).get("unassigned_shards")
    if before is not None and (health.get("unassigned_shards") or 0) > before:
        return False, "cluster %s is %s with %s unassigned shards, %s before the roll (%s)" % (
            health.get("cluster_name"), status, health.get("unassigned_shards"), before, figures)
    return True, "node %s rejoined, allocation re-enabled, cluster %s is %s" % (node_name, health.get("cluster_name"), status)


# --------------------------------------------------------------------------- the gate


class ElasticsearchGate(object):
    """One roll of the Elasticsearch pods (the roll mechanism's gate contract).

    refusals(pods) -> reasons no force overrides (none here); precheck(pods) -> reasons ([] = safe
    to start); order(pods) -> pods in restart order;
    before(pod) just before the pod is deleted; settled(pod) -> (ok, reason) once the new pod is
    Ready, asked again until ok; after() once at the end or on failure. `notes` collects what the
    mechanism should report without stopping (one-node cluster, forced refusals, flush failures).
    """

    name = "elasticsearch"

    def __init__(self, http, force=False, flush=True, force_variable=FORCE_VARIABLE):
        self.http = http
        self.force = bool(force)
        self.force_variable = force_variable
        self.flush = flush
        self.notes = []
        self.baseline = None
        self.original = None
        self.restricted = False

    # -- requests

    def _get(self, path, parse):
        status, body = self.http("GET", path)
        return parse(status, body)

    def _health(self):
        return self._get(HEALTH_PATH, parse_health)

    def _nodes(self):
        return self._get(NODES_PATH, parse_nodes)

    def _allocation(self):
        status, body = self.http("GET", SETTINGS_PATH)
        doc = hc._load_json(body)
        if status != 200 or not isinstance(doc, dict):
            return None, _answer_error(status, body, "Elasticsearch _cluster/settings")
        return allocation_value(doc), None

    def _put_allocation(self, value):
        status, body = self.http("PUT", SETTINGS_PATH, {"persistent": {ALLOCATION_SETTING: value}})
        doc = hc._load_json(body)
        if status != 200 or not isinstance(doc, dict) or doc.get("acknowledged") is not True:
            return _answer_error(status, body, "PUT _cluster/settings %s=%s" % (ALLOCATION_SETTING, json.dumps(value)))
        return None

    def _restore(self):
        return restore_value(self.original or (None, None))

    # -- contract

    def refusals(self, pods):
        """Nothing makes the new Elasticsearch pods unable to run that a roll could check first."""
        return []

    def precheck(self, pods):
        names = [_pod_name(pod) for pod in pods]
        health, health_error = self._health()
        nodes, error = self._nodes()
        if error:
            self.notes.append(error)
        allocation, error = self._allocation()
        if error:
            self.notes.append(error)
            allocation = (None, None)
        else:
            self.original = allocation
        shards, shards_error = None, None
        if health and health["status"] == "yellow" and (health.get("number_of_nodes") or 0) > 1:
            shards, shards_error = self._get(SHARDS_PATH, parse_shards)
        self.baseline = health
        refusals, notes = precheck_findings(health, nodes, allocation, shards, names, health_error, shards_error)
        self.notes.extend(notes)
        if refusals and self.force:
            self.notes.extend("forced (%s): %s" % (self.force_variable, reason) for reason in refusals)
            return []
        return ["%s (%s=true rolls anyway)" % (reason, self.force_variable) for reason in refusals]

    def order(self, pods):
        nodes, error = self._nodes()
        if error:
            self.notes.append("order from the pods' master label, the elected master unknown: " + error)
        return restart_order(pods, nodes)

    def before(self, pod):
        if self.original is None:
            allocation, error = self._allocation()
            if error:
                raise GateError("before restarting %s: %s" % (_pod_name(pod), error))
            self.original = allocation
        # Marked first: a PUT that timed out may still have been applied, and after() then puts
        # the value back (harmless when it was not applied).
        self.restricted = True
        error = self._put_allocation(ALLOCATION_RESTRICTED)
        if error:
            raise GateError("before restarting %s, shard allocation could not be restricted: %s" % (_pod_name(pod), error))
        if self.flush:
            status, body = self.http("POST", FLUSH_PATH)
            if status != 200:
                self.notes.append("flush before restarting %s failed (recovery is only slower): %s" % (
                    _pod_name(pod), _answer_error(status, body, "POST _flush")))

    def settled(self, pod):
        node_name = _pod_name(pod)
        nodes, error = self._nodes()
        if error:
            return False, error
        if node_name not in [node["name"] for node in nodes]:
            return settled_decision(node_name, nodes, None, None, self.baseline, self._restore())
        restore = self._restore()
        if self.restricted:
            error = self._put_allocation(restore)
            if error:
                return False, error
            self.restricted = False
        allocation, error = self._allocation()
        if error:
            return False, error
        health, error = self._health()
        if error:
            return False, error
        return settled_decision(node_name, nodes, allocation, health, self.baseline, restore)

    def after(self):
        """Put allocation back when a step left it restricted. (ok, reason); never raises."""
        if not self.restricted:
            return True, "shard allocation is not restricted by the roll"
        restore = self._restore()
        try:
            error = self._put_allocation(restore)
        except Exception as e:  # pylint: disable=broad-except  # must not hide the roll's own error
            error = "%s: %s" % (type(e).__name__, e)
        if error:
            manual = json.dumps({"persistent": {ALLOCATION_SETTING: restore}})
            reason = "shard allocation is still restricted (%s=%s): %s; reset it by hand with PUT _cluster/settings %s" % (
                ALLOCATION_SETTING, ALLOCATION_RESTRICTED, error, manual)
            self.notes.append(reason)
            return False, reason
        self.restricted = False
        return True, "shard allocation restored (%s=%s)" % (ALLOCATION_SETTING, json.dumps(restore))


# --------------------------------------------------------------------------- transport


def ready(pod):
    """Ready and not being deleted (a terminating pod may still say Ready for a moment)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in ((pod.get("status") or {}).get("conditions") or []):
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def exec_http(rest, namespace, pods, base_url, credentials=None, container="elasticsearch", timeout=30):
    """The gate's http callable: curl in a Ready Elasticsearch pod, as wait_ready's exec checks.

    pods() returns the current Elasticsearch pods (e.g. a list by label); each request runs in the
    first Ready one that is not being deleted, so the pod being restarted is skipped from its
    deletion on. base_url is the client Service (https://elasticsearch:9200), which sends the
    request to a node that serves HTTP whichever pod runs curl (NetworkPolicies: the platform's
    platform-allow-stack-egress, the role's elasticsearch ingress on 9200 from stack pods). Any
    failure is an answer (status 0 and the reason), never an exception. Credentials (username, password) go through stdin as a
    curl config line (health.curl_config), never into the command; a request body is a cluster
    setting, never a secret.
    """

    def http(method, path, body=None):
        pod = next((pod for pod in pods() or [] if ready(pod)), None)
        if pod is None:
            return 0, "no Ready Elasticsearch pod to run curl in"
        name = pod["metadata"]["name"]
        url = "%s/%s" % (base_url.rstrip("/"), path.lstrip("/"))
        data = json.dumps(body) if body is not None else None
        command = hc.curl_command(url, timeout=timeout, method=method, data=data)
        stdin = hc.curl_config(*credentials) if credentials else "\n"
        try:
            rc, out, err = rest.exec_in_pod(namespace, name, command, container, stdin=stdin, timeout=timeout + 10)
        except (ApiError, Unreachable) as e:
            return 0, "exec in pod %s/%s failed: %s" % (namespace, name, e)
        if rc != 0:
            return 0, "curl in pod %s failed (exit %s): %s" % (name, rc, (err or out or "").strip()[-300:])
        status, text = hc.parse_curl_output(out)
        parsed = hc._load_json(text)
        return status, parsed if parsed is not None else text

    return http
