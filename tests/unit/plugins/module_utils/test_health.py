# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""health.py against answers shaped like the real components'."""

from __future__ import annotations

import json

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import health as hc

# --------------------------------------------------------------------------- Elasticsearch

ES_GREEN = {
    "cluster_name": "bigdata", "status": "green", "timed_out": False, "number_of_nodes": 3,
    "number_of_data_nodes": 3, "active_primary_shards": 12, "active_shards": 24, "relocating_shards": 0,
    "initializing_shards": 0, "unassigned_shards": 0, "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0,
    "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
    "active_shards_percent_as_number": 100.0,
}
ES_YELLOW = dict(ES_GREEN, status="yellow", number_of_nodes=1, number_of_data_nodes=1, active_shards=12,
                 unassigned_shards=12, active_shards_percent_as_number=50.0)
ES_RED = dict(ES_GREEN, status="red", active_primary_shards=10, unassigned_shards=6, unassigned_primary_shards=2,
              active_shards_percent_as_number=75.0)
ES_NO_MASTER = {
    "error": {"root_cause": [{"type": "master_not_discovered_exception", "reason": None}],
              "type": "master_not_discovered_exception", "reason": None},
    "status": 503,
}
ES_UNAUTHENTICATED = {
    "error": {"root_cause": [{"type": "security_exception", "reason": "missing authentication credentials for REST request [/_cluster/health]"}],
              "type": "security_exception", "reason": "missing authentication credentials for REST request [/_cluster/health]"},
    "status": 401,
}
APISERVER_NO_ENDPOINTS = json.dumps({
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": 'no endpoints available for service "http:elasticsearch:9200"', "reason": "ServiceUnavailable", "code": 503,
})


class TestElasticsearch:
    def test_green_satisfies_green(self):
        result = hc.elasticsearch_health(200, json.dumps(ES_GREEN), "green")
        assert result["ok"] and result["reason"] is None
        assert result["status"] == "green" and result["number_of_nodes"] == 3

    def test_yellow_satisfies_yellow_only(self):
        assert hc.elasticsearch_health(200, json.dumps(ES_YELLOW), "yellow")["ok"]
        result = hc.elasticsearch_health(200, json.dumps(ES_YELLOW), "green")
        assert not result["ok"]
        assert "yellow, waiting for green" in result["reason"] and "12 unassigned shards" in result["reason"]

    def test_red_never(self):
        for wanted in ("yellow", "green"):
            result = hc.elasticsearch_health(200, ES_RED, wanted)
            assert not result["ok"] and "is red" in result["reason"]

    def test_min_nodes(self):
        result = hc.elasticsearch_health(200, ES_YELLOW, "yellow", min_nodes=3)
        assert not result["ok"] and "1 of 3 nodes" in result["reason"]

    def test_errors_are_explained(self):
        no_master = hc.elasticsearch_health(503, json.dumps(ES_NO_MASTER))
        assert not no_master["ok"] and "master_not_discovered_exception" in no_master["reason"]
        unauth = hc.elasticsearch_health(401, json.dumps(ES_UNAUTHENTICATED))
        assert "credentials_secret" in unauth["reason"]
        no_endpoints = hc.elasticsearch_health(503, APISERVER_NO_ENDPOINTS)
        assert "no ready endpoints" in no_endpoints["reason"]


# --------------------------------------------------------------------------- Kibana

KIBANA_8_AVAILABLE = {
    "name": "kibana-7d9c", "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
    "version": {"number": "8.15.3", "build_hash": "a1b2", "build_number": 76200, "build_snapshot": False,
                "build_flavor": "traditional", "build_date": "2024-10-09T10:00:00.000Z"},
    "status": {
        "overall": {"level": "available", "summary": "All services and plugins are available"},
        "core": {"elasticsearch": {"level": "available", "summary": "Elasticsearch is available", "meta": {}},
                 "savedObjects": {"level": "available", "summary": "SavedObjects service has completed migrations and is available", "meta": {}}},
        "plugins": {"alerting": {"level": "available", "summary": "All services are available"}},
    },
    "metrics": {"last_updated": "2024-10-20T10:00:00.000Z", "collection_interval_in_millis": 5000},
}
KIBANA_9_DEGRADED = {
    "name": "kibana", "uuid": "0c3f", "version": {"number": "9.1.0", "build_flavor": "traditional"},
    "status": {
        "overall": {"level": "degraded", "summary": "1 service is degraded: savedObjects"},
        "core": {"elasticsearch": {"level": "available", "summary": "Elasticsearch is available"},
                 "savedObjects": {"level": "degraded", "summary": "SavedObjects service is waiting for migrations to complete"}},
        "plugins": {},
    },
}
KIBANA_REDACTED = {"status": {"overall": {"level": "available"}}}
KIBANA_7_GREEN = {"name": "kibana", "version": {"number": "7.17.24"},
                  "status": {"overall": {"since": "2024-01-01T00:00:00Z", "state": "green", "title": "Green",
                                         "nickname": "Looking good", "icon": "success"}, "statuses": []}}


class TestKibana:
    def test_8x_available(self):
        result = hc.kibana_health(200, json.dumps(KIBANA_8_AVAILABLE))
        assert result["ok"] and result["level"] == "available" and result["version"] == "8.15.3"

    def test_9x_degraded_names_the_service(self):
        result = hc.kibana_health(503, json.dumps(KIBANA_9_DEGRADED))
        assert not result["ok"]
        assert "degraded" in result["reason"]
        assert "savedObjects: SavedObjects service is waiting for migrations" in result["reason"]

    def test_redacted_answer_without_credentials(self):
        assert hc.kibana_health(200, json.dumps(KIBANA_REDACTED))["ok"]

    def test_7x_legacy_state(self):
        assert hc.kibana_health(200, KIBANA_7_GREEN)["ok"]
        red = json.loads(json.dumps(KIBANA_7_GREEN))
        red["status"]["overall"]["state"] = "red"
        assert not hc.kibana_health(503, red)["ok"]

    def test_not_ready_yet_text(self):
        result = hc.kibana_health(503, "Kibana server is not ready yet")
        assert not result["ok"] and "Kibana server is not ready yet" in result["reason"]


# --------------------------------------------------------------------------- HDFS

LIVE_NODES = {
    "hdfs-datanode-0.hdfs-datanode.bigdata.svc.cluster.local:9866": {
        "infoAddr": "10.244.1.7:9864", "infoSecureAddr": "10.244.1.7:0", "xferaddr": "10.244.1.7:9866",
        "lastContact": 1, "usedSpace": 24576, "adminState": "In Service", "nonDfsUsedSpace": 1, "capacity": 10737418240,
        "numBlocks": 3, "version": "3.4.1", "used": 24576, "remaining": 10000000000, "blockScheduled": 0,
        "blockPoolUsed": 24576, "blockPoolUsedPercent": 0.0, "volfails": 0, "lastBlockReport": 12},
    "hdfs-datanode-1.hdfs-datanode.bigdata.svc.cluster.local:9866": {
        "infoAddr": "10.244.2.5:9864", "xferaddr": "10.244.2.5:9866", "lastContact": 0, "adminState": "In Service",
        "numBlocks": 3, "version": "3.4.1"},
}


def nn_info(safemode="", live=None):
    live = LIVE_NODES if live is None else live
    return json.dumps({"beans": [{
        "name": "Hadoop:service=NameNode,name=NameNodeInfo",
        "modelerType": "org.apache.hadoop.hdfs.server.namenode.FSNamesystem",
        "Total": 21474836480, "ClusterId": "CID-6f1f2d3c-8e55-4c55-9a0e-0d4c1b7b1f00",
        "BlockPoolId": "BP-1250423321-10.244.1.5-1735689600000", "Version": "3.4.1, r4d7825309348e2e9d8f2d8d4b1b0a2c0f7e6f0a1",
        "Safemode": safemode, "LiveNodes": json.dumps(live), "DeadNodes": "{}", "DecomNodes": "{}",
        "NameDirStatuses": "{\"active\":{\"/hadoop/dfs/name\":\"IMAGE_AND_EDITS\"},\"failed\":{}}",
    }]})


def nn_state(fs_state="Operational", live=2, dead=0):
    return json.dumps({"beans": [{
        "name": "Hadoop:service=NameNode,name=FSNamesystemState",
        "modelerType": "org.apache.hadoop.hdfs.server.namenode.FSNamesystem",
        "CapacityTotal": 21474836480, "CapacityUsed": 49152, "CapacityRemaining": 20000000000, "TotalLoad": 4,
        "SnapshotStats": "{\"SnapshottableDirectories\":0,\"Snapshots\":0}", "FsLockQueueLength": 0,
        "BlocksTotal": 3, "MaxObjects": 0, "FilesTotal": 8, "PendingReplicationBlocks": 0, "UnderReplicatedBlocks": 0,
        "ScheduledReplicationBlocks": 0, "PendingDeletionBlocks": 0, "BlockDeletionStartTime": 1735689600000,
        "FSState": fs_state, "NumLiveDataNodes": live, "NumDeadDataNodes": dead, "NumDecomLiveDataNodes": 0,
        "NumDecomDeadDataNodes": 0, "VolumeFailuresTotal": 0, "NumStaleDataNodes": 0,
    }]})


SAFEMODE_TEXT = ("Safe mode is ON. The reported blocks 0 needs additional 3 blocks to reach the threshold 0.9990 of "
                 "total blocks 3.\nThe minimum number of live datanodes is not required. Safe mode will be turned off "
                 "automatically once the thresholds have been reached.")


class TestHdfs:
    def test_operational_with_enough_datanodes(self):
        result = hc.hdfs_health(nn_info(), nn_state(live=2), min_datanodes=2)
        assert result["ok"] and result["live_datanodes"] == 2 and result["safemode"] is False
        assert result["cluster_id"].startswith("CID-")

    def test_safe_mode_blocks(self):
        result = hc.hdfs_health(nn_info(SAFEMODE_TEXT), nn_state("safeMode"), min_datanodes=1)
        assert not result["ok"] and result["safemode"] is True
        assert "safe mode" in result["reason"] and "needs additional 3 blocks" in result["reason"]

    def test_too_few_datanodes(self):
        result = hc.hdfs_health(nn_info(), nn_state(live=2), min_datanodes=3)
        assert not result["ok"] and "2 of 3 DataNodes live" in result["reason"]

    def test_live_nodes_from_info_when_state_missing(self):
        result = hc.hdfs_health(nn_info(), json.dumps({"beans": []}), min_datanodes=2)
        assert result["ok"] and result["live_datanodes"] == 2

    def test_interpret_reports_proxy_errors(self):
        answers = {"info": (503, APISERVER_NO_ENDPOINTS), "state": (200, nn_state())}
        result = hc.interpret("hdfs", answers, {"min_datanodes": 1})
        assert not result["ok"] and "no ready endpoints" in result["reason"]


# --------------------------------------------------------------------------- Kafka

VOTERS_4X = ", ".join(
    '{"id": %d, "directoryId": "%s", "endpoints": ["CONTROLLER://kafka-%d.kafka-headless.bigdata.svc.cluster.local:9093"]}' % (i, d, i)
    for i, d in enumerate(["9pCBmfMVT0OQ5Gl1vdNQhw", "hF4OXd8sRLyc0xkyMaVdKQ", "q3L8bmj7SqGZ4bD1x8kJ2w"])
)
QUORUM_4X = """ClusterId:              MkU3OEVBNTcwNTJENDM2Qk
LeaderId:               1
LeaderEpoch:            3
HighWatermark:          4127
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   0
CurrentVoters:          [%s]
CurrentObservers:       []
""" % VOTERS_4X
QUORUM_3X = """ClusterId:              fMCL8kv1SWm87L_Md-I2hg
LeaderId:               3002
LeaderEpoch:            2
HighWatermark:          10
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   -1
CurrentVoters:          [3000,3001,3002]
CurrentObservers:       [0,1,2]
"""
BROKERS_4X = """kafka-0.kafka-headless.bigdata.svc.cluster.local:9092 (id: 0 rack: null isFenced: false) -> (
\tProduce(0): 3 to 12 [usable: 12],
\tFetch(1): 4 to 17 [usable: 17],
\tApiVersions(18): 0 to 4 [usable: 4]
)
kafka-1.kafka-headless.bigdata.svc.cluster.local:9092 (id: 1 rack: null isFenced: false) -> (
\tProduce(0): 3 to 12 [usable: 12],
\tApiVersions(18): 0 to 4 [usable: 4]
)
kafka-2.kafka-headless.bigdata.svc.cluster.local:9092 (id: 2 rack: null isFenced: true) -> (
\tProduce(0): 3 to 12 [usable: 12]
)
"""
BROKERS_3X = """localhost:9092 (id: 0 rack: null) -> (
\tProduce(0): 0 to 9 [usable: 9],
\tFetch(1): 0 to 15 [usable: 15]
)
kafka-1.kafka:9092 (id: 1 rack: zone-a) -> (
\tProduce(0): 0 to 9 [usable: 9]
)
"""


class TestKafka:
    def test_parse_4x_quorum_json_voters(self):
        parsed = hc.parse_quorum_status(QUORUM_4X)
        assert parsed["LeaderId"] == 1 and parsed["LeaderEpoch"] == 3
        assert parsed["CurrentVoters"] == [0, 1, 2] and parsed["CurrentObservers"] == []
        assert parsed["ClusterId"] == "MkU3OEVBNTcwNTJENDM2Qk"

    def test_parse_3x_quorum_int_lists(self):
        parsed = hc.parse_quorum_status(QUORUM_3X)
        assert parsed["LeaderId"] == 3002
        assert parsed["CurrentVoters"] == [3000, 3001, 3002] and parsed["CurrentObservers"] == [0, 1, 2]

    def test_fenced_brokers_do_not_count(self):
        assert hc.parse_broker_ids(BROKERS_4X) == [0, 1]
        assert hc.parse_broker_ids(BROKERS_3X) == [0, 1]

    def test_healthy_with_leader_and_brokers(self):
        result = hc.kafka_health(QUORUM_4X, BROKERS_4X, min_brokers=2)
        assert result["ok"] and result["leader_id"] == 1 and result["brokers"] == [0, 1]

    def test_fenced_broker_keeps_it_waiting(self):
        result = hc.kafka_health(QUORUM_4X, BROKERS_4X, min_brokers=3)
        assert not result["ok"] and "2 of 3 brokers" in result["reason"]

    def test_no_leader(self):
        result = hc.kafka_health(QUORUM_3X.replace("LeaderId:               3002", "LeaderId:               -1"), BROKERS_3X)
        assert not result["ok"] and "no leader" in result["reason"]

    def test_garbage_output(self):
        result = hc.kafka_health("Error while executing: org.apache.kafka.common.errors.TimeoutException", "", 1)
        assert not result["ok"] and "no LeaderId" in result["reason"] and "TimeoutException" in result["reason"]

    def test_commands(self):
        quorum, brokers = hc.kafka_commands("/opt/kafka/bin/", "localhost:9092", "kafka-0.kafka:9093", "/etc/kafka/admin.properties")
        assert quorum == ["/opt/kafka/bin/kafka-metadata-quorum.sh", "--bootstrap-controller", "kafka-0.kafka:9093",
                          "--command-config", "/etc/kafka/admin.properties", "describe", "--status"]
        assert brokers == ["/opt/kafka/bin/kafka-broker-api-versions.sh", "--bootstrap-server", "localhost:9092",
                           "--command-config", "/etc/kafka/admin.properties"]
        quorum, dummy = hc.kafka_commands("/opt/kafka/bin", "localhost:9092")
        assert quorum[1:3] == ["--bootstrap-server", "localhost:9092"]


# --------------------------------------------------------------------------- transports


class TestCurlTransport:
    def test_credentials_never_in_the_command(self):
        command = hc.curl_command("https://10.244.1.7:9200/_cluster/health", timeout=7)
        assert command[0:2] == ["sh", "-c"] and command[-1] == "https://10.244.1.7:9200/_cluster/health"
        assert "--config -" in command[2] and "--max-time 7" in command[2] and "read -r" in command[2]
        config = hc.curl_config("monitor", 'p"a\\ss')
        assert config == 'user = "monitor:p\\"a\\\\ss"\n'
        assert "p\"a" not in " ".join(command)

    def test_parse_output(self):
        assert hc.parse_curl_output('{"status":"green"}\n200') == (200, '{"status":"green"}')
        assert hc.parse_curl_output("\n401") == (401, "")
        assert hc.parse_curl_output("curl: (7) Failed to connect") == (0, "curl: (7) Failed to connect")

    def test_pod_url(self):
        assert hc.pod_url("http", "10.0.0.5", 9870, "/jmx", [("qry", hc.HDFS_INFO_QUERY)]) == \
            "http://10.0.0.5:9870/jmx?qry=Hadoop%3Aservice%3DNameNode%2Cname%3DNameNodeInfo"
        assert hc.pod_url("https", "fd00::5", 9200, "_cluster/health", []) == "https://[fd00::5]:9200/_cluster/health"

    @pytest.mark.parametrize("kind, names", [("elasticsearch", ["cluster_health"]), ("kibana", ["status"]),
                                             ("hdfs", ["info", "state"])])
    def test_http_checks(self, kind, names):
        assert [name for name, path, query in hc.http_checks(kind)] == names
