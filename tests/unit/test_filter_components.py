"""Unit tests of plugins/filter/components.py: existing_secret_data (the Secrets a looped k8s_info
found), workload_refs (wait_ready's resources) and streaming_progress (the newest micro-batch
progress in a streaming driver's log)."""

import base64

from ansible_collections.bigdata.stack.plugins.filter.components import (
    FilterModule,
    existing_secret_data,
    streaming_progress,
    workload_refs,
)

# A line the sample streaming pipeline printed in tests/daemons/test_pipelines_on_daemons.py
# (Spark 4.2.0's StreamingQueryProgress JSON, as the driver logs it).
REAL_LINE = "2026-12-01T16:23:29.582Z progress {\"id\":\"c7cb3b85-150d-458e-9f1a-2ee8e2814110\",\"runId\":\"74fc4d87-fae9-4738-b709-f83a2c4fb745\",\"name\":\"events-per-window\",\"timestamp\":\"2026-12-01T16:23:28.001Z\",\"batchId\":7,\"batchDuration\":1268,\"numInputRows\":209,\"inputRowsPerSecond\":104.4,\"processedRowsPerSecond\":164.8,\"durationMs\":{\"addBatch\":1108,\"commitOffsets\":54,\"getBatch\":0,\"latestOffset\":9,\"queryPlanning\":49,\"triggerExecution\":1267,\"walCommit\":41},\"eventTime\":{\"avg\":\"2026-12-01T15:04:09.107Z\",\"max\":\"2026-12-01T15:04:59.900Z\",\"min\":\"2026-12-01T15:03:49.600Z\",\"watermark\":\"2026-12-01T15:02:56.900Z\"},\"stateOperators\":[{\"operatorName\":\"stateStoreSave\",\"numRowsTotal\":9,\"numRowsUpdated\":6,\"allUpdatesTimeMs\":44,\"numRowsRemoved\":0,\"allRemovalsTimeMs\":7,\"commitTimeMs\":69,\"memoryUsedBytes\":11416,\"numRowsDroppedByWatermark\":0,\"numShufflePartitions\":2,\"numStateStoreInstances\":2,\"customMetrics\":{\"SnapshotLastUploaded.partition_0_default\":-1,\"SnapshotLastUploaded.partition_1_default\":-1,\"forceSnapshotCount\":0,\"loadedMapCacheHitCount\":22,\"loadedMapCacheMissCount\":2,\"numSnapshotsAutoRepaired\":0,\"stateOnCurrentVersionSizeBytes\":7016}},{\"operatorName\":\"dedupeWithinWatermark\",\"numRowsTotal\":2430,\"numRowsUpdated\":209,\"allUpdatesTimeMs\":40,\"numRowsRemoved\":192,\"allRemovalsTimeMs\":0,\"commitTimeMs\":67,\"memoryUsedBytes\":563408,\"numRowsDroppedByWatermark\":0,\"numShufflePartitions\":2,\"numStateStoreInstances\":2,\"customMetrics\":{\"SnapshotLastUploaded.partition_0_default\":-1,\"SnapshotLastUploaded.partition_1_default\":-1,\"forceSnapshotCount\":0,\"loadedMapCacheHitCount\":10,\"loadedMapCacheMissCount\":2,\"numDroppedDuplicateRows\":0,\"numSnapshotsAutoRepaired\":0,\"stateOnCurrentVersionSizeBytes\":453408}}],\"sources\":[{\"description\":\"KafkaV2[Subscribe[events]]\",\"startOffset\":{\"events\":{\"0\":302,\"1\":1329,\"2\":1160}},\"endOffset\":{\"events\":{\"0\":325,\"1\":1427,\"2\":1248}},\"latestOffset\":{\"events\":{\"0\":325,\"1\":1427,\"2\":1248}},\"numInputRows\":209,\"inputRowsPerSecond\":104.4,\"processedRowsPerSecond\":164.8,\"metrics\":{\"avgOffsetsBehindLatest\":\"0.0\",\"maxOffsetsBehindLatest\":\"0\",\"minOffsetsBehindLatest\":\"0\"}}],\"sink\":{\"description\":\"ForeachBatchSink\",\"numOutputRows\":-1}}"


def test_newest_progress_line_wins_over_older_ones_and_other_output():
    older = REAL_LINE.replace('"batchId":7', '"batchId":6')
    log = "\n".join([older, "2026-12-01T16:23:29.600Z batch 7: wrote 3 documents", REAL_LINE,
                      "26/12/01 16:23:30 INFO MicroBatchExecution: Streaming query has been idle"])
    assert streaming_progress(log) == {
        "batch": 7, "timestamp": "2026-12-01T16:23:28.001Z", "input_rows": 209,
        "input_rate": 104.4, "processing_rate": 164.8, "batch_ms": 1267}


def test_no_progress_yet_gives_nothing():
    assert streaming_progress("") == {}
    assert streaming_progress(None) == {}
    assert streaming_progress("26/12/01 INFO SparkContext: Running Spark version 4.2.0") == {}


def test_a_cut_or_foreign_progress_line_is_skipped():
    cut = REAL_LINE[:300]
    assert streaming_progress(REAL_LINE + "\n" + cut) == streaming_progress(REAL_LINE)
    assert streaming_progress('x progress {"no": "batch id"}') == {}


def test_a_progress_line_cut_at_the_start_of_a_log_tail_is_skipped():
    # `kubectl logs --tail` / k8s_log with tail_lines can start in the middle of a line.
    head_cut = REAL_LINE[REAL_LINE.index('"batchId"'):]
    assert streaming_progress(head_cut) == {}
    assert streaming_progress(REAL_LINE + "\n" + head_cut)["batch"] == 7


def test_windows_line_endings_and_surrounding_noise_are_read():
    log = "starting\r\n" + REAL_LINE + "\r\n26/12/01 WARN something\r\n"
    assert streaming_progress(log)["batch"] == 7


def test_rates_spark_leaves_out_come_back_as_none():
    # Spark drops rates that are not numbers (NaN on the first, empty micro-batch) from the JSON.
    line = '2026-12-01T16:00:00Z progress {"batchId": 0, "timestamp": "2026-12-01T16:00:00.000Z", ' \
           '"numInputRows": 0, "durationMs": {}}'
    assert streaming_progress(line) == {
        "batch": 0, "timestamp": "2026-12-01T16:00:00.000Z", "input_rows": 0,
        "input_rate": None, "processing_rate": None, "batch_ms": None}


def test_json_that_is_not_an_object_is_skipped():
    assert streaming_progress('t progress [1, 2]') == {}
    assert streaming_progress('t progress {"batchId": 1} trailing words') == {}


def _found(name, data, item=None):
    """One element of a looped k8s_info's results: the Secret `name` with `data` (plain text)."""
    secret = {"metadata": {"name": name}, "type": "Opaque"}
    if data is not None:
        secret["data"] = {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()
                          for k, v in data.items()}
    return {"item": item or name, "resources": [secret]}


def test_existing_secret_data_decodes_the_secrets_found_and_leaves_out_missing_ones():
    results = [
        _found("es-credentials", {"username": "elastic", "password": "pä55:word\n"}),
        {"item": "es-ca", "resources": []},  # k8s_info of a Secret that does not exist
        _found("es-transport", {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"}),
    ]
    assert existing_secret_data(results) == {
        "es-credentials": {"username": "elastic", "password": "pä55:word\n"},
        "es-transport": {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"},
    }


def test_existing_secret_data_of_nothing_found_or_a_skipped_read_is_empty():
    assert existing_secret_data(None) == {}
    assert existing_secret_data([]) == {}
    # While rendering the read is skipped: the loop registers skipped results without resources.
    assert existing_secret_data([{"item": "es-ca", "skipped": True, "changed": False}, None]) == {}


def test_an_empty_secret_exists_with_no_values():
    # A Secret without data (created by hand, or emptied) exists: its name is there, with nothing in it.
    assert existing_secret_data([_found("kibana-tls", None), _found("kibana-keys", {})]) == {
        "kibana-tls": {}, "kibana-keys": {}}


def test_the_looped_name_is_used_when_the_secret_has_no_metadata_name():
    result = _found("", {"password": "x"}, item="es-credentials")
    result["resources"][0]["metadata"] = None
    assert existing_secret_data([result]) == {"es-credentials": {"password": "x"}}


def test_a_binary_value_is_left_out_and_the_text_values_kept():
    # cert-manager can add PKCS#12 keystores next to the PEM keys of a TLS Secret.
    keystore = bytes([0x30, 0x82, 0x0A, 0xFF, 0xFE, 0x00])
    found = existing_secret_data([_found("es-http", {"tls.crt": "CERT", "keystore.p12": keystore})])
    assert found == {"es-http": {"tls.crt": "CERT"}}


def test_workload_refs_takes_one_name_a_list_or_a_lazy_map():
    assert workload_refs("kibana", "Deployment") == [{"kind": "Deployment", "name": "kibana"}]
    assert workload_refs(["elasticsearch-data", "elasticsearch-master"], "StatefulSet") == [
        {"kind": "StatefulSet", "name": "elasticsearch-data"},
        {"kind": "StatefulSet", "name": "elasticsearch-master"}]
    # Jinja's map() hands the filter a generator, not a list.
    assert workload_refs(("es-" + n for n in ("a", "b")), "StatefulSet") == [
        {"kind": "StatefulSet", "name": "es-a"}, {"kind": "StatefulSet", "name": "es-b"}]


def test_workload_refs_of_nothing_is_an_empty_list():
    assert workload_refs(None, "StatefulSet") == []
    assert workload_refs([], "StatefulSet") == []


def test_the_filter_plugin_exports_exactly_these_filters():
    # tls_ca / tls_issue are gone: certificates are made by community.crypto in roles/common/tasks/tls.yml.
    assert sorted(FilterModule().filters()) == ["existing_secret_data", "streaming_progress", "workload_refs"]
