"""Unit tests of plugins/filter/components.py. streaming_progress: the newest micro-batch progress in a streaming driver's log."""

from ansible_collections.bigdata.stack.plugins.filter.components import streaming_progress

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
