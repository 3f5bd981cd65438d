# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""A roll of StatefulSet pods one at a time, gated on the application's health.

The stateful StatefulSets of the stack use ``updateStrategy: OnDelete``: a new pod template (an
image tag, a config checksum) changes the StatefulSet's ``status.updateRevision`` and restarts
nothing. ``bigdata.stack.rolling_update`` then finds the pods whose ``controller-revision-hash``
label is not that revision, and :class:`Roller` deletes them one at a time in the order a
:class:`Gate` gives, each after the gate said it is safe and the previous one settled.

A gate holds a component's decision logic and gets its I/O as callables in its constructor
(``exec_in_pod(pod_name, container, argv) -> (rc, stdout, stderr)``, ``http_get``, ...), so it is
tested on recorded command output without a cluster (tests/unit/test_rolling.py). The Roller is
free of I/O too: listing, deleting and waiting for pods are callables as well, so the same code
drives a roll of real daemons in tests/daemons.

The gates here: :class:`Gate` (readiness only), :class:`KafkaGate`, :class:`HdfsGate`. The
Elasticsearch gate lives in es_roll.py (``ElasticsearchGate``), on the same protocol.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.bigdata.stack.plugins.module_utils import health as hc
from ansible_collections.bigdata.stack.plugins.module_utils.waiter import wait_until

# The label the StatefulSet controller puts on each pod: the revision its template came from
# (k8s.io/api apps/v1 StatefulSetRevisionLabel / ControllerRevisionHashLabelKey).
REVISION_LABEL = "controller-revision-hash"
COMPONENT_LABEL = "app.kubernetes.io/component"


class RollRefused(Exception):
    """The roll cannot start safely: ``reasons`` say why. Nothing was restarted. ``forceable``: the
    reasons are a state that a forced roll may go through (False: the new pods could not run)."""

    def __init__(self, reasons, forceable=True):
        self.reasons = list(reasons)
        self.forceable = forceable
        super(RollRefused, self).__init__("; ".join(self.reasons))


class RollFailed(Exception):
    """A step of the roll did not finish: ``steps`` are the pods rolled before it."""

    def __init__(self, message, steps):
        self.steps = list(steps)
        super(RollFailed, self).__init__(message)


# --------------------------------------------------------------------------- pods


def pod_name(pod):
    return (pod.get("metadata") or {}).get("name")


def pod_ordinal(pod):
    match = re.search(r"-(\d+)$", pod_name(pod) or "")
    return int(match.group(1)) if match else -1


def statefulset_of(pod):
    """The StatefulSet a pod's name says it belongs to (<statefulset>-<ordinal>)."""
    return (pod_name(pod) or "").rsplit("-", 1)[0]


def pod_revision(pod):
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL)


def pod_component(pod):
    return ((pod.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL)


def stale_pods(sts, pods):
    """The pods of a StatefulSet whose template revision is not its ``status.updateRevision``.

    None when the controller has not observed the StatefulSet's latest generation yet (its
    updateRevision may still be the old one: ask again).
    """
    meta = sts.get("metadata") or {}
    status = sts.get("status") or {}
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        return None
    target = status.get("updateRevision")
    if not target:
        return None
    stale = [p for p in pods if pod_revision(p) and pod_revision(p) != target
             and not (p.get("metadata") or {}).get("deletionTimestamp")]
    return sorted(stale, key=pod_ordinal, reverse=True)


# --------------------------------------------------------------------------- the protocol


class Gate(object):
    """The readiness-only gate (``none``), and the protocol every component's gate follows.

    The roll is then what the StatefulSet controller does itself (highest ordinal first, next pod
    once this one is Ready), but held by the collection: it stops on the first pod that does not
    come back, and a re-run resumes it.
    """

    name = "none"

    def refusals(self, pods):
        """Reasons the new revision cannot run at all (no force overrides them); [] means none."""
        return []

    def precheck(self, pods):
        """Reasons not to start (or, for one pod, not to delete it now); [] means safe."""
        return []

    def order(self, pods):
        """The pods in restart order: StatefulSet by StatefulSet as listed, in each the StatefulSet
        controller's own order, highest ordinal first."""
        groups = []
        for pod in pods:
            if statefulset_of(pod) not in groups:
                groups.append(statefulset_of(pod))
        return sorted(pods, key=lambda pod: (groups.index(statefulset_of(pod)), -pod_ordinal(pod)))

    def before(self, pod):
        """Called just before ``pod`` is deleted."""

    def settled(self, pod):
        """After the new pod is Ready: (ok, reason why not)."""
        return True, ""

    def after(self):
        """Once, after the last pod, or on failure (to undo what ``before`` did)."""


class Step(object):
    """What the roll did to one pod, with the seconds each wait took."""

    def __init__(self, pod, order):
        self.pod = pod
        self.order = order
        self.waited_safe = 0.0
        self.waited_ready = 0.0
        self.waited_settled = 0.0

    def as_dict(self):
        return dict(pod=self.pod, order=self.order, waited_safe=round(self.waited_safe, 1),
                    waited_ready=round(self.waited_ready, 1), waited_settled=round(self.waited_settled, 1),
                    seconds=round(self.waited_safe + self.waited_ready + self.waited_settled, 1))


class Roller(object):
    """One roll: precheck all stale pods, then delete them one by one in the gate's order.

    ``delete_pod(pod)`` deletes a pod; ``wait_ready(pod, timeout)`` waits until the pod of that
    name was recreated (another uid) and is Ready, and returns the seconds it waited (raises
    :class:`RollFailed`-worthy exceptions itself, or returns None on timeout). ``clock`` and
    ``sleep`` are injected so tests need no time.
    """

    def __init__(self, gate, delete_pod, wait_ready, timeout=600, interval=5, force=False,
                 force_variable="force", progress=None, clock=time.monotonic, sleep=time.sleep):
        self.gate = gate
        self.delete_pod = delete_pod
        self.wait_ready = wait_ready
        self.timeout = timeout
        self.interval = interval
        self.force = force
        self.force_variable = force_variable
        self.progress = progress or (lambda line: None)
        self.clock = clock
        self.sleep = sleep
        self.warnings = []
        self.deleted = []

    def _poll(self, check, timeout):
        """check() -> (ok, reason) until ok or timeout: (ok, last reason, seconds)."""
        return wait_until(check, timeout, self.interval, clock=self.clock, sleep=self.sleep)

    def run(self, pods):
        """Roll ``pods`` (the stale ones); the list of steps done. Raises RollRefused or RollFailed."""
        if not pods:
            return []
        refused = self.gate.refusals(pods)
        if refused:
            raise RollRefused(refused, forceable=False)
        reasons = self.gate.precheck(pods)
        if reasons:
            if not self.force:
                raise RollRefused(reasons)
            self.warnings.append("%s=true: rolling although %s" % (self.force_variable, "; ".join(reasons)))
        ordered = self.gate.order(pods)
        steps = []
        try:
            for index, pod in enumerate(ordered, 1):
                name = pod_name(pod)
                step = Step(name, index)
                if index > 1 and not self.force:
                    # The previous pod settled; the cluster must still allow this one to go.
                    ok, reason, step.waited_safe = self._poll(lambda pod=pod: self._safe(pod), self.timeout)
                    if not ok:
                        raise RollFailed("not restarting %s: %s (waited %ss)" % (name, reason, int(step.waited_safe)), steps)
                self.progress("restarting %s (%s of %s)" % (name, index, len(ordered)))
                self.gate.before(pod)
                self.delete_pod(pod)
                self.deleted.append(name)
                waited = self.wait_ready(pod, self.timeout)
                if waited is None:
                    raise RollFailed("%s was deleted and is not Ready again after %ss" % (name, self.timeout), steps)
                step.waited_ready = waited
                ok, reason, step.waited_settled = self._poll(lambda pod=pod: self.gate.settled(pod), self.timeout)
                if not ok:
                    raise RollFailed("%s is Ready but has not settled after %ss: %s" % (name, self.timeout, reason), steps)
                steps.append(step)
        finally:
            self.gate.after()
        return steps

    def _safe(self, pod):
        reasons = self.gate.precheck([pod])
        return not reasons, "; ".join(reasons)


# --------------------------------------------------------------------------- Kafka

# `kafka-topics.sh --describe` partition lines (TopicCommand's PartitionDescription.printDescription):
#   \tTopic: events\tPartition: 0\tLeader: 101\tReplicas: 101,102,100\tIsr: 101,102,100\tElr: \tLastKnownElr: (trailing tab)
_PARTITION_RE = re.compile(
    r"Topic:\s*(?P<topic>\S+)\s+Partition:\s*(?P<partition>\d+)\s+Leader:\s*(?P<leader>\S+)\s+"
    r"Replicas:\s*(?P<replicas>[\d,]*)\s+Isr:\s*(?P<isr>[\d,]*)")


def _ids(text):
    return [int(i) for i in text.split(",") if i.strip()]


def parse_partitions(text):
    """[{topic, partition, leader, replicas, isr}] of the partition lines of `kafka-topics.sh --describe`."""
    partitions = []
    for match in _PARTITION_RE.finditer(text or ""):
        leader = match.group("leader")
        partitions.append(dict(
            topic=match.group("topic"), partition=int(match.group("partition")),
            leader=int(leader) if re.match(r"^-?\d+$", leader) else -1,
            replicas=_ids(match.group("replicas")), isr=_ids(match.group("isr")),
        ))
    return partitions


def parse_quorum_replication(text):
    """{node id: {lag, status}} of `kafka-metadata-quorum.sh describe --replication` (header names the columns)."""
    lines = [line.split() for line in (text or "").splitlines() if line.strip()]
    if not lines or "NodeId" not in lines[0]:
        return {}
    header = lines[0]
    rows = {}
    for row in lines[1:]:
        if len(row) != len(header) or not re.match(r"^\d+$", row[header.index("NodeId")]):
            continue
        lag = row[header.index("Lag")] if "Lag" in header else None
        rows[int(row[header.index("NodeId")])] = dict(
            lag=int(lag) if lag is not None and re.match(r"^-?\d+$", lag) else None,
            status=row[header.index("Status")] if "Status" in header else None,
        )
    return rows


def _partition_text(p):
    return "%s-%s (replicas %s, in sync %s)" % (p["topic"], p["partition"], ",".join(map(str, p["replicas"])) or "-",
                                                ",".join(map(str, p["isr"])) or "none")


def _some(items, limit=5):
    text = ", ".join(items[:limit])
    return text + (" and %s more" % (len(items) - limit) if len(items) > limit else "")


def _release(version):
    """(major, minor) of an image tag or a metadata.version level ("4.1.0", "3.9-IV0"), else None."""
    match = re.match(r"^v?(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_finalized_metadata_version(text):
    """The FinalizedVersionLevel of metadata.version in `kafka-features.sh describe`, else None."""
    for line in (text or "").splitlines():
        if re.search(r"Feature:\s*metadata\.version\b", line):
            match = re.search(r"FinalizedVersionLevel:\s*(\S+)", line)
            return match.group(1) if match else None
    return None


class KafkaGate(Gate):
    """Kafka's gate: no partition under (or, for the broker to go, at) its min ISR; after a restart
    the broker back in every ISR it belongs to, a controller caught up with the quorum leader.

    What the checks rest on:
    - ``kafka-topics.sh --describe --under-min-isr-partitions`` / ``--at-min-isr-partitions`` list the
      partitions whose ISR is below / equal to their ``min.insync.replicas`` (Kafka's TopicCommand,
      KIP-351). A broker in the ISR of a partition at its min ISR must not go: the ISR would drop
      below the minimum and ``acks=all`` producers get NotEnoughReplicas. That is the rule of
      Strimzi's KafkaRoller (KafkaAvailability: "would take the in-sync replicas count below
      min.insync.replicas"). A partition with no more replicas than its min ISR cannot stay
      available through any restart of one of them, so it does not hold the roll.
    - ``--under-replicated-partitions`` lists the partitions whose ISR is smaller than their
      replica set; the restarted broker has settled when it is in none of them as a missing replica
      and ``kafka-broker-api-versions.sh`` lists it unfenced.
    - ``kafka-metadata-quorum.sh describe --replication`` gives each voter's lag behind the quorum
      leader; a restarted controller has settled at lag 0 with status Leader or Follower.

    Order: pure controllers, then brokers (combined nodes), highest ordinal first, the quorum
    leader last in its group (as Strimzi rolls the active controller last).
    """

    name = "kafka"

    def __init__(self, exec_in_pod, list_pods, bootstrap_server="localhost:9092", command_config=None,
                 bin_dir="/opt/kafka/bin", container=None, broker_node_id_offset=0, image_tag=None,
                 max_lag=0, image_tag_variable="image_tag"):
        self.exec_in_pod = exec_in_pod
        self.list_pods = list_pods
        self.bootstrap_server = bootstrap_server
        self.command_config = command_config
        self.bin_dir = (bin_dir or "/opt/kafka/bin").rstrip("/")
        self.container = container
        self.broker_node_id_offset = broker_node_id_offset
        self.image_tag = image_tag
        self.image_tag_variable = image_tag_variable
        self.max_lag = max_lag
        self.rolling = None

    # -- helpers

    def node_id(self, pod):
        offset = self.broker_node_id_offset if pod_component(pod) == "broker" else 0
        return pod_ordinal(pod) + offset

    def _tool_pod(self):
        """A Ready broker pod other than the one being rolled, to run the Kafka tools in."""
        from ansible_collections.bigdata.stack.plugins.module_utils.waiter import pod_ready

        candidates = [p for p in self.list_pods() if pod_component(p) == "broker" and pod_ready(p)
                      and not (p.get("metadata") or {}).get("deletionTimestamp")]
        others = [p for p in candidates if pod_name(p) != self.rolling]
        chosen = sorted(others or candidates, key=pod_ordinal)
        return pod_name(chosen[0]) if chosen else None

    def _tool(self, script, *args):
        """(ok, stdout or the reason) of one Kafka tool run in a broker pod."""
        pod = self._tool_pod()
        if not pod:
            return False, "no Ready Kafka broker pod to run %s in" % script
        argv = [self.bin_dir + "/" + script, "--bootstrap-server", self.bootstrap_server]
        if self.command_config:
            argv += ["--command-config", self.command_config]
        argv += list(args)
        rc, out, err = self.exec_in_pod(pod, self.container, argv)
        if rc != 0:
            return False, "%s failed in pod %s (exit %s): %s" % (script, pod, rc, " ".join((err or out or "").split())[-400:])
        return True, out

    def _partitions(self, flag):
        ok, out = self._tool("kafka-topics.sh", "--describe", flag)
        return (parse_partitions(out), None) if ok else (None, out)

    def _quorum_status(self):
        ok, out = self._tool("kafka-metadata-quorum.sh", "describe", "--status")
        if not ok:
            return None, out
        status = hc.parse_quorum_status(out)
        if status.get("LeaderId") is None or status["LeaderId"] < 0:
            return None, "the KRaft quorum has no leader: %s" % " ".join((out or "").split())[:300]
        return status, None

    # -- protocol

    def precheck(self, pods):
        reasons = []
        status, problem = self._quorum_status()
        if problem:
            return [problem]
        under, problem = self._partitions("--under-min-isr-partitions")
        if problem:
            return reasons + [problem]
        if under:
            reasons.append("%s partition(s) already below min.insync.replicas: %s" % (
                len(under), _some([_partition_text(p) for p in under])))
        brokers = [p for p in pods if pod_component(p) == "broker"]
        if brokers:
            at_min, problem = self._partitions("--at-min-isr-partitions")
            if problem:
                return reasons + [problem]
            for pod in brokers:
                node = self.node_id(pod)
                held = [p for p in at_min if node in p["isr"] and len(p["replicas"]) > len(p["isr"])]
                if held:
                    reasons.append("restarting %s (node %s) would take %s below min.insync.replicas" % (
                        pod_name(pod), node, _some([_partition_text(p) for p in held])))
        return reasons

    def refusals(self, pods):
        """An image tag older than the metadata.version the cluster already uses: the restarted
        pods could not read the cluster's metadata, whatever the force variable says."""
        target = _release(self.image_tag)
        if not target:
            return []
        ok, out = self._tool("kafka-features.sh", "describe")
        if not ok:
            return []
        level = parse_finalized_metadata_version(out)
        if level and _release(level) and _release(level) > target:
            return ["%s=%s is older than the metadata.version %s the cluster already uses: Kafka %s.%s cannot "
                    "read it (downgrading metadata.version is not supported). Set %s to %s or newer"
                    % (self.image_tag_variable, self.image_tag, level, target[0], target[1], self.image_tag_variable,
                       ".".join(map(str, _release(level))))]
        return []

    def order(self, pods):
        status, dummy = self._quorum_status()
        leader = status["LeaderId"] if status else None

        def key(pod):
            group = 0 if pod_component(pod) == "controller" else 1
            return (group, self.node_id(pod) == leader, -pod_ordinal(pod))
        return sorted(pods, key=key)

    def before(self, pod):
        self.rolling = pod_name(pod)

    def settled(self, pod):
        node = self.node_id(pod)
        status, problem = self._quorum_status()
        if problem:
            return False, problem
        if node in status.get("CurrentVoters", []):
            ok, out = self._tool("kafka-metadata-quorum.sh", "describe", "--replication")
            if not ok:
                return False, out
            row = parse_quorum_replication(out).get(node)
            if row is None:
                return False, "controller %s is not in the quorum's replication state yet" % node
            if row["status"] not in ("Leader", "Follower") or row["lag"] is None or row["lag"] > self.max_lag:
                return False, "controller %s is %s with lag %s behind the quorum leader" % (node, row["status"], row["lag"])
        if pod_component(pod) == "broker":
            ok, out = self._tool("kafka-broker-api-versions.sh")
            if not ok:
                return False, out
            if node not in hc.parse_broker_ids(out):
                return False, "broker %s is not registered (or still fenced)" % node
            under, problem = self._partitions("--under-replicated-partitions")
            if problem:
                return False, problem
            behind = [p for p in under if node in p["replicas"] and node not in p["isr"]]
            if behind:
                return False, "broker %s is not back in the ISR of %s" % (node, _some([_partition_text(p) for p in behind]))
        return True, ""

    def after(self):
        self.rolling = None


# --------------------------------------------------------------------------- HDFS


def hdfs_state(info_body, state_body):
    """The figures of the NameNode JMX beans a datanode roll looks at."""
    info = hc._jmx_bean(hc._load_json(info_body), hc.HDFS_INFO_QUERY) or {}  # pylint: disable=protected-access
    state = hc._jmx_bean(hc._load_json(state_body), hc.HDFS_STATE_QUERY) or {}  # pylint: disable=protected-access
    live = hc._load_json(info.get("LiveNodes") or "{}") or {}  # pylint: disable=protected-access
    return dict(
        health=hc.hdfs_health(info_body, state_body, 0),
        live=dict((name.rsplit(":", 1)[0], node) for name, node in live.items()),
        under_replicated=state.get("UnderReplicatedBlocks"),
    )


class HdfsGate(Gate):
    """HDFS datanodes: the NameNode out of safe mode before; after a restart the datanode live again
    (in the NameNode's NameNodeInfo LiveNodes, by the pod's host name, heard from within
    ``max_contact`` seconds and since the pod was deleted) and no more under-replicated blocks
    (FSNamesystemState UnderReplicatedBlocks) than before the roll started.

    The NameNode declares a silent datanode dead only after its heartbeat expiry (about 10 minutes),
    so the old process's entry stays in LiveNodes through a restart; a last contact older than the
    delete is that entry, not the new process.

    ``http_get(path, query) -> (status, body)`` reads the NameNode's HTTP port (health.http_checks).
    """

    name = "hdfs"

    def __init__(self, http_get, max_contact=10, clock=time.monotonic):
        self.http_get = http_get
        self.max_contact = max_contact
        self.clock = clock
        self.baseline = None
        self.deleted_at = {}

    def before(self, pod):
        self.deleted_at[pod_name(pod)] = self.clock()

    def _state(self):
        answers = {}
        for name, path, query in hc.http_checks("hdfs"):
            status, body = self.http_get(path, query)
            if status != 200:
                return None, hc.http_error_reason(status, body, "NameNode /jmx")
            answers[name] = body
        return hdfs_state(answers["info"], answers["state"]), None

    def precheck(self, pods):
        state, problem = self._state()
        if problem:
            return [problem]
        health = state["health"]
        if health["ok"] is False and health.get("safemode"):
            return [health["reason"]]
        if self.baseline is None:
            self.baseline = state["under_replicated"] or 0
        return []

    def settled(self, pod):
        state, problem = self._state()
        if problem:
            return False, problem
        if state["health"].get("safemode"):
            return False, state["health"]["reason"]
        name = pod_name(pod)
        node = next((n for host, n in state["live"].items() if host.split(".")[0] == name), None)
        if node is None:
            return False, "datanode %s is not live at the NameNode yet" % name
        contact = node.get("lastContact")
        if contact is not None and contact > self.max_contact:
            return False, "the NameNode last heard from datanode %s %ss ago" % (name, contact)
        if contact is not None and name in self.deleted_at:
            since = self.clock() - self.deleted_at[name]
            if contact >= since:
                return False, "the NameNode has not heard from datanode %s since it was restarted %ds ago (last contact %ss ago)" % (
                    name, since, contact)
        under = state["under_replicated"] or 0
        if self.baseline is not None and under > self.baseline:
            return False, "%s under-replicated blocks, %s before the roll" % (under, self.baseline)
        return True, ""
