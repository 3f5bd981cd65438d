# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""rolling_update: the elasticsearch gate's wiring through main(), with a fake API server and a fake Elasticsearch.

The gate's decisions are tested in tests/unit/test_es_roll.py; here: the options reach
ElasticsearchGate, its requests are curl in a Ready pod of the StatefulSets to the Service URL
with the Secret's credentials on stdin (never in the command, never in the result), and a
refusal names the role's force variable.
"""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import es_roll, rolling
from ansible_collections.bigdata.stack.plugins.modules import rolling_update

from conftest import make_pod

PASSWORD = "Sup3r-S3cret!"


class FakeElasticsearch:
    """Answers the gate's curl commands from a small cluster state."""

    def __init__(self, nodes, status="green"):
        self.nodes = nodes  # [(name, roles, elected)]
        self.status = status
        self.allocation = None
        self.requests = []

    def answer(self, command):
        script, url = command[2], command[4]
        method = script.split("--request ", 1)[1].split(" ", 1)[0] if "--request " in script else "GET"
        path = url.split("/", 3)[3]
        self.requests.append((method, path))
        if path.startswith("_cluster/health"):
            body = {"cluster_name": "bigdata", "status": self.status, "number_of_nodes": len(self.nodes),
                    "unassigned_shards": 0, "unassigned_primary_shards": 0, "initializing_shards": 0}
        elif path.startswith("_cat/nodes"):
            body = [{"name": n, "node.role": r, "master": "*" if e else "-"} for n, r, e in self.nodes]
        elif path.startswith("_cluster/settings") and method == "GET":
            body = {"persistent": {es_roll.ALLOCATION_SETTING: self.allocation} if self.allocation else {}, "transient": {}}
        elif path.startswith("_cluster/settings"):
            self.allocation = json.loads(command[5])["persistent"][es_roll.ALLOCATION_SETTING]
            body = {"acknowledged": True}
        elif path == "_flush":
            body = {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        else:
            return 0, "", "unexpected path %s" % path
        return 0, json.dumps(body) + "\n200", ""


def add_statefulset(rest, name):
    rest.add("bigdata", "statefulsets", {
        "metadata": {"name": name, "namespace": "bigdata", "generation": 2, "uid": name + "-uid"},
        "spec": {"replicas": 1, "updateStrategy": {"type": "OnDelete"},
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "elasticsearch", "pool": name}}},
        "status": {"observedGeneration": 2, "updateRevision": name + "-new"},
    }, group="apps/v1")


def add_pod(rest, sts, ordinal, revision="old", uid=None, master=False):
    name = "%s-%d" % (sts, ordinal)
    pod = make_pod(name, labels={"app.kubernetes.io/name": "elasticsearch", "pool": sts,
                                 "controller-revision-hash": "%s-%s" % (sts, revision),
                                 es_roll.MASTER_LABEL: "true" if master else "false"}, ready=True)
    pod["metadata"]["uid"] = uid or "uid-%s-%s" % (name, revision)
    pod["metadata"]["ownerReferences"] = [{"uid": sts + "-uid"}]
    pod["status"]["podIP"] = "10.244.0.%d" % (ordinal + 10)
    rest.add_pod(pod)
    return pod


@pytest.fixture
def cluster(monkeypatch, fake_rest):
    """Pools data (1 pod) and master (2 pods, master-1 elected), every pod on the old revision.

    Deleting a pod brings it back at once on the new revision (the StatefulSet controller)."""
    monkeypatch.setattr(rolling_update, "connect", lambda module: (fake_rest, None))
    for sts in ("elasticsearch-data", "elasticsearch-master"):
        add_statefulset(fake_rest, sts)
    add_pod(fake_rest, "elasticsearch-data", 0)
    add_pod(fake_rest, "elasticsearch-master", 0, master=True)
    add_pod(fake_rest, "elasticsearch-master", 1, master=True)
    fake_rest.add("bigdata", "secrets", {"metadata": {"name": "es-credentials"}, "data": {
        "username": base64.b64encode(b"elastic").decode(), "password": base64.b64encode(PASSWORD.encode()).decode()}})
    fake_rest.es = FakeElasticsearch([("elasticsearch-data-0", "dis", False), ("elasticsearch-master-0", "m", False),
                                      ("elasticsearch-master-1", "m", True)])
    fake_rest.exec_in_pod = lambda namespace, pod, command, container=None, stdin=None, timeout=60: (
        fake_rest.calls.append(("exec", pod, tuple(command), stdin, container)) or fake_rest.es.answer(command))
    delete = fake_rest.delete

    def recreate(kind, namespace, name, api_version="v1", uid=None):
        fake_rest.calls.append(("delete-uid", name, uid))
        gone = delete(kind, namespace, name, api_version, uid=uid)
        sts, ordinal = name.rsplit("-", 1)
        add_pod(fake_rest, sts, int(ordinal), revision="new", master=sts.endswith("master"))
        return gone

    fake_rest.delete = recreate
    return fake_rest


def es_args(**overrides):
    args = dict(namespace="bigdata", statefulsets=["elasticsearch-data", "elasticsearch-master"], gate="elasticsearch",
                elasticsearch={"scheme": "https", "credentials_secret": "es-credentials"},
                force_variable="elasticsearch_roll_force", wait_timeout=30, wait_sleep=1)
    args.update(overrides)
    return args


def test_elasticsearch_gate_rolls_data_then_masters_the_elected_one_last(cluster, run_module):
    outcome, result = run_module(rolling_update.main, es_args())
    assert outcome == "exit" and result["changed"], result
    assert [s["pod"] for s in result["rolled"]] == [
        "elasticsearch-data-0", "elasticsearch-master-0", "elasticsearch-master-1"]
    deletes = [c[1].rsplit("/", 1)[1] for c in cluster.calls if c[0] == "delete"]
    assert deletes == ["elasticsearch-data-0", "elasticsearch-master-0", "elasticsearch-master-1"]
    # Each delete names the old pod's uid, so it can never take the pod that replaced it.
    assert [c[1:] for c in cluster.calls if c[0] == "delete-uid"] == [
        (name, "uid-%s-old" % name) for name in deletes]
    # Allocation restricted before each pod and re-enabled (null) once its node is back; flushed each time.
    puts = [path for method, path in cluster.es.requests if method == "PUT"]
    assert len(puts) == 6 and cluster.es.allocation is None
    assert [m for m, p in cluster.es.requests if p == "_flush"] == ["POST"] * 3


def test_elasticsearch_requests_are_curl_in_a_ready_pod_to_the_service_with_credentials_on_stdin(cluster, run_module):
    outcome, result = run_module(rolling_update.main, es_args())
    assert outcome == "exit", result
    execs = [c for c in cluster.calls if c[0] == "exec"]
    assert execs and all(c[4] == "elasticsearch" for c in execs)
    assert all(c[2][4].startswith("https://elasticsearch:9200/") for c in execs)
    assert all(c[3] == 'user = "elastic:%s"\n' % PASSWORD for c in execs)
    assert not [c for c in execs if PASSWORD in " ".join(c[2])]
    assert PASSWORD not in json.dumps(result)


def test_elasticsearch_options_reach_the_gate(cluster, run_module):
    outcome, result = run_module(rolling_update.main, es_args(
        elasticsearch={"scheme": "http", "service": "es-client", "port": 9201, "container": "es", "flush": False}))
    assert outcome == "exit", result
    execs = [c for c in cluster.calls if c[0] == "exec"]
    assert all(c[2][4].startswith("http://es-client:9201/") and c[4] == "es" and c[3] == "\n" for c in execs)
    assert "_flush" not in [p for m, p in cluster.es.requests]


def test_red_cluster_is_refused_naming_the_force_variable_and_nothing_restarts(cluster, run_module):
    cluster.es.status = "red"
    outcome, result = run_module(rolling_update.main, es_args())
    assert outcome == "fail" and not [c for c in cluster.calls if c[0] == "delete"]
    assert "cluster bigdata is red before the change" in result["msg"]
    assert "elasticsearch_roll_force=true rolls anyway" in result["reasons"][0]
    assert result["msg"].endswith("or set elasticsearch_roll_force=true to roll anyway")
    assert PASSWORD not in json.dumps(result)


def test_force_rolls_a_red_cluster_and_reports_it(cluster, run_module):
    cluster.es.status = "red"
    outcome, result = run_module(rolling_update.main, es_args(force=True))
    assert outcome == "exit" and len(result["rolled"]) == 3, result
    assert any(w.startswith("forced (elasticsearch_roll_force): cluster bigdata is red") for w in result["warnings"])


def test_missing_credentials_secret_fails_before_any_restart(cluster, run_module):
    outcome, result = run_module(rolling_update.main, es_args(elasticsearch={"credentials_secret": "nope"}))
    assert outcome == "fail" and not [c for c in cluster.calls if c[0] in ("delete", "exec")]
    assert result["msg"].startswith("gate elasticsearch: credentials_secret bigdata/nope does not exist. Nothing was restarted")


def test_check_mode_reads_no_secret_and_runs_no_gate(cluster, run_module):
    outcome, result = run_module(rolling_update.main, es_args(elasticsearch={"credentials_secret": "nope"}), check_mode=True)
    assert outcome == "exit" and result["changed"]
    assert sorted(result["pending"]) == ["elasticsearch-data-0", "elasticsearch-master-0", "elasticsearch-master-1"]
    assert not [c for c in cluster.calls if c[0] in ("delete", "exec")]


def test_nothing_stale_nothing_asked(cluster, run_module):
    for sts, ordinal in (("elasticsearch-data", 0), ("elasticsearch-master", 0), ("elasticsearch-master", 1)):
        add_pod(cluster, sts, ordinal, revision="new")
    outcome, result = run_module(rolling_update.main, es_args())
    assert outcome == "exit" and not result["changed"] and result["rolled"] == []
    assert not [c for c in cluster.calls if c[0] in ("delete", "exec")]


def test_a_refusal_no_force_overrides_says_so_and_nothing_restarts(cluster, run_module, monkeypatch):
    """As the Kafka gate refuses a kafka_image_tag older than the metadata.version in use."""
    class Downgrade(rolling.Gate):
        def refusals(self, pods):
            return ["kafka_image_tag=4.3.1 is older than the metadata.version 4.4-IV0 the cluster already uses"]

    monkeypatch.setattr(rolling_update, "make_gate", lambda params, io, credentials=None: Downgrade())
    outcome, result = run_module(rolling_update.main, es_args(force=True, force_variable="kafka_roll_force"))
    assert outcome == "fail" and not [c for c in cluster.calls if c[0] == "delete"]
    assert result["reasons"] == ["kafka_image_tag=4.3.1 is older than the metadata.version 4.4-IV0 the cluster "
                                 "already uses"]
    assert result["msg"].endswith("Nothing was restarted. Fix that and run again (kafka_roll_force does not override "
                                  "this)"), result["msg"]
