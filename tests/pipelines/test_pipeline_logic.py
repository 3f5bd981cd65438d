"""The sample pipelines' logic, in local mode, on data each test makes.

Transformations (parse, windowed and daily totals, documents) run on a local SparkSession and are
checked row by row; argument validation, event generation and the Elasticsearch bulk sink run
without Spark. The same apps against real Kafka and HDFS daemons: tests/daemons/test_pipelines_on_daemons.py.
"""

import collections
import json
import os
import subprocess
import sys

import pytest

import bigdata_pipelines as bp
import events_batch
import events_generator
import events_stream
import hdfs_loader
from pipeline_support import APPS, BulkRejected, EsStandIn, parse_bulk_body

T0 = bp.parse_instant("2026-12-01T15:00:00Z")


def at(offset_seconds):
    return bp.format_ts(T0 + int(offset_seconds * 1000))


def event(n, user, kind, seconds, amount=0.0):
    return {"event_id": "t-%09d" % n, "user_id": user, "event_type": kind, "amount": amount,
            "ts": at(seconds)}


def lines_frame(spark, lines):
    return spark.createDataFrame([(line,) for line in lines], "value string")


def rows(frame, order_by=("_id",)):
    return [r.asDict() for r in frame.orderBy(*order_by).collect()]


# --------------------------------------------------------------------------- parsing

def test_parse_events_keeps_valid_events_and_drops_the_rest(spark):
    lines = [
        bp.to_json_line(event(1, "user-1", "view", 10)),
        '{"event_id":"t-2","user_id":"user-2","event_type":"purchase","amount":12.5,'
        '"ts":"2026-12-01T16:00:05.250+01:00"}',                           # offset: 15:00:05.250Z
        '{"event_id":"t-3","user_id":"user-3","event_type":"click","ts":"2026-12-01T15:00:07Z"}',  # no amount
        "not json at all",
        '{"event_id":"t-4","user_id":"user-4","event_type":"refund","amount":1,"ts":"2026-12-01T15:00:00Z"}',
        '{"event_id":"t-5","user_id":"user-5","event_type":"view","amount":0,"ts":"yesterday"}',
        '{"user_id":"user-6","event_type":"view","amount":0,"ts":"2026-12-01T15:00:00Z"}',
        '{"event_id":"t-7","event_type":"view","amount":0,"ts":"2026-12-01T15:00:00Z"}',
    ]
    parsed = bp.parse_events(lines_frame(spark, lines))
    got = [(r.event_id, r.user_id, r.event_type, r.amount, bp.format_ts(int(r.ts.timestamp() * 1000)))
           for r in parsed.orderBy("event_id").collect()]
    assert got == [
        ("t-000000001", "user-1", "view", 0.0, "2026-12-01T15:00:10.000Z"),
        ("t-2", "user-2", "purchase", 12.5, "2026-12-01T15:00:05.250Z"),
        ("t-3", "user-3", "click", 0.0, "2026-12-01T15:00:07.000Z"),
    ]


def test_parse_events_reads_kafka_binary_values(spark):
    frame = spark.createDataFrame([(bytearray(bp.to_json_line(event(1, "u", "click", 1)).encode()),)],
                                  "value binary")
    assert [r.event_id for r in bp.parse_events(frame).collect()] == ["t-000000001"]


# --------------------------------------------------------------------------- windowed totals

def test_window_documents_total_each_window_and_type(spark):
    events = [
        event(1, "user-1", "view", 10),
        event(2, "user-2", "view", 50),
        event(3, "user-1", "view", 59.999),            # still the first window
        event(4, "user-1", "view", 60),                # the second window starts here
        event(5, "user-2", "purchase", 20, 12.5),
        event(6, "user-3", "purchase", 30, 7.25),
        event(7, "user-2", "purchase", 40, 0.1),
        event(2, "user-2", "view", 50),                # event 2 delivered twice: counted once
    ]
    docs = bp.window_documents(bp.windowed_totals(
        bp.parse_events(lines_frame(spark, map(bp.to_json_line, events)))))
    assert rows(docs) == [
        {"_id": "purchase-%d" % T0, "window_start": "2026-12-01T15:00:00.000Z",
         "window_end": "2026-12-01T15:01:00.000Z", "event_type": "purchase", "events": 3, "users": 2,
         "amount": 19.85},
        {"_id": "view-%d" % T0, "window_start": "2026-12-01T15:00:00.000Z",
         "window_end": "2026-12-01T15:01:00.000Z", "event_type": "view", "events": 3, "users": 2,
         "amount": 0.0},
        {"_id": "view-%d" % (T0 + 60000), "window_start": "2026-12-01T15:01:00.000Z",
         "window_end": "2026-12-01T15:02:00.000Z", "event_type": "view", "events": 1, "users": 1,
         "amount": 0.0},
    ]


def test_streaming_update_mode_emits_changed_windows_and_drops_late_events(spark, tmp_path):
    """The streaming plan itself (watermark, dedup, window, update mode) on a file source, one
    file per micro-batch, with a foreachBatch sink like events_stream.py's."""
    source = tmp_path / "in"
    source.mkdir()
    batches = []
    raw = spark.readStream.format("text").option("maxFilesPerTrigger", 1).load(str(source))
    docs = bp.window_documents(bp.windowed_totals(bp.parse_events(raw), "1 minute", "1 minute"))
    query = (docs.writeStream.outputMode("update")
             .option("checkpointLocation", str(tmp_path / "checkpoint"))
             .foreachBatch(lambda frame, batch_id: batches.append(rows(frame))).start())

    def micro_batch(name, events):
        (source / name).write_text("".join(bp.to_json_line(e) + "\n" for e in events))
        query.processAllAvailable()
        return [b for b in batches if b]  # batches without data (watermark only) write nothing

    try:
        out = micro_batch("1.json", [event(1, "user-1", "view", 10), event(2, "user-2", "view", 20)])
        assert [(d["_id"], d["events"], d["users"]) for d in out[-1]] == [("view-%d" % T0, 2, 2)]
        # The window changes again: emitted with its new totals (a duplicate of event 2 within
        # the watermark is not counted); a window 3 minutes later moves the watermark to 15:02:10.
        out = micro_batch("2.json", [event(3, "user-1", "view", 30), event(2, "user-2", "view", 20),
                                     event(4, "user-3", "click", 190)])
        assert [(d["_id"], d["events"], d["users"]) for d in out[-1]] == [
            ("click-%d" % (T0 + 180000), 1, 1), ("view-%d" % T0, 3, 2)]
        # 15:00:40 is behind the watermark (its window ended at 15:01 <= 15:02:10): dropped, and the
        # first window is not sent again; 15:02:30's window is still open: counted.
        out = micro_batch("3.json", [event(5, "user-9", "view", 40), event(6, "user-4", "click", 150)])
        assert [(d["_id"], d["events"]) for d in out[-1]] == [("click-%d" % (T0 + 120000), 1)]
        assert len(out) == 3
    finally:
        query.stop()


# --------------------------------------------------------------------------- daily totals

def test_daily_documents_count_per_utc_day_with_exact_distinct_users(spark):
    day = bp.parse_instant("2026-11-30T00:00:00Z")

    def ev(n, user, kind, ts, amount=0.0):
        return {"event_id": "d-%d" % n, "user_id": user, "event_type": kind, "amount": amount, "ts": ts}
    events = [
        ev(1, "user-1", "view", bp.format_ts(day + 1000)),
        ev(2, "user-1", "view", "2026-11-30T23:59:59.999Z"),
        ev(3, "user-2", "view", "2026-12-01T00:30:00+01:00"),      # 23:30 UTC on the 30th
        ev(4, "user-2", "view", "2026-12-01T00:00:00.000Z"),       # the next day
        ev(5, "user-3", "purchase", "2026-12-01T10:00:00Z", 99.99),
        ev(6, "user-4", "purchase", "2026-12-01T11:00:00Z", 0.02),
        ev(6, "user-4", "purchase", "2026-12-01T11:00:00Z", 0.02),  # a duplicate: counted once
    ]
    totals = bp.daily_totals(bp.parse_events(lines_frame(spark, map(bp.to_json_line, events))))
    assert rows(bp.daily_documents(totals)) == [
        {"_id": "2026-11-30-view", "day": "2026-11-30", "event_type": "view", "events": 3, "users": 2,
         "amount": 0.0},
        {"_id": "2026-12-01-purchase", "day": "2026-12-01", "event_type": "purchase", "events": 2,
         "users": 2, "amount": 100.01},
        {"_id": "2026-12-01-view", "day": "2026-12-01", "event_type": "view", "events": 1, "users": 1,
         "amount": 0.0},
    ]


def test_documents_refuse_a_session_that_is_not_utc(spark):
    frame = bp.parse_events(lines_frame(spark, [bp.to_json_line(event(1, "u", "view", 1))]))
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        with pytest.raises(ValueError, match="spark.sql.session.timeZone is 'Europe/Berlin'"):
            bp.window_documents(bp.windowed_totals(frame))
        with pytest.raises(ValueError, match="session"):
            bp.daily_totals(frame)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


# --------------------------------------------------------------------------- arguments

STREAM_REQUIRED = ["--bootstrap-servers", "k:9092", "--checkpoint", "file:///tmp/cp", "--es-url", "http://es:9200"]
BATCH_REQUIRED = ["--input", "hdfs://nn:8020/raw", "--output", "hdfs://nn:8020/daily", "--es-url", "http://es:9200"]
GEN_REQUIRED = ["--bootstrap-servers", "k:9092"]
LOADER_REQUIRED = ["--output", "hdfs://nn:8020/raw"]


def test_defaults_follow_the_contract():
    stream = events_stream.parse_args(STREAM_REQUIRED)
    assert (stream.topic, stream.starting_offsets, stream.es_index, stream.window, stream.watermark,
            stream.trigger) == ("events", "earliest", "events-per-minute", "1 minutes", "2 minutes",
                                "10 seconds")
    assert events_batch.parse_args(BATCH_REQUIRED).es_index == "events-daily"
    gen = events_generator.parse_args(GEN_REQUIRED)
    assert (gen.topic, gen.count, gen.rate, gen.seed, gen.start_time) == ("events", 10000, 100.0, 42, None)


@pytest.mark.parametrize("module, args, option, message", [
    (events_generator, GEN_REQUIRED + ["--rate", "0"], "--rate", "must be a number > 0, got '0'"),
    (events_generator, GEN_REQUIRED + ["--rate", "-5"], "--rate", "must be a number > 0"),
    (events_generator, GEN_REQUIRED + ["--rate", "nan"], "--rate", "must be a number > 0"),
    (events_generator, GEN_REQUIRED + ["--rate", "fast"], "--rate", "'fast' is not a number"),
    (events_generator, GEN_REQUIRED + ["--count", "-1"], "--count", "must be >= 0, got '-1'"),
    (events_generator, GEN_REQUIRED + ["--count", "1.5"], "--count", "'1.5' is not a whole number"),
    (events_generator, GEN_REQUIRED + ["--keys", "0"], "--keys", "must be >= 1"),
    (events_generator, GEN_REQUIRED + ["--skew", "-0.1"], "--skew", "must be a number >= 0"),
    (events_generator, GEN_REQUIRED + ["--start-time", "2026-12-01T15:00:00"], "--start-time",
     "has no time zone"),
    (events_generator, GEN_REQUIRED + ["--start-time", "noon"], "--start-time", "is not an ISO-8601 time"),
    (events_generator, GEN_REQUIRED + ["--time-step", "1"], None, "--time-step needs --start-time"),
    (events_generator, GEN_REQUIRED + ["--kafka-ca", "/nonexistent/ca.pem"], "--kafka-ca",
     "is not a readable file"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "Events"], "--es-index", "has upper-case letters"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "_events"], "--es-index", "starts with '_'"),
    (events_stream, STREAM_REQUIRED + ["--es-index=-events"], "--es-index", "starts with '-'"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "+events"], "--es-index", "starts with '+'"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "my events"], "--es-index", "contains ' '"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "a,b#c"], "--es-index", "contains '#' ','"),
    (events_stream, STREAM_REQUIRED + ["--es-index", 'a\\b/c*d?e"f<g>h|i'], "--es-index",
     "contains '\"' '*' '/' '<' '>' '?' '\\\\' '|'"),
    (events_stream, STREAM_REQUIRED + ["--es-index", ".."], "--es-index", "is '..'"),
    (events_stream, STREAM_REQUIRED + ["--es-index", "x" * 256], "--es-index", "longer than 255 bytes"),
    (events_stream, STREAM_REQUIRED + ["--window", "1 minit"], "--window", "is not a duration"),
    (events_stream, STREAM_REQUIRED + ["--trigger", "0 seconds"], "--trigger", "is not a duration"),
    (events_stream, STREAM_REQUIRED + ["--watermark", "ten minutes"], "--watermark", "is not a duration"),
    (events_stream, STREAM_REQUIRED + ["--starting-offsets", "newest"], "--starting-offsets", "invalid choice"),
    (events_stream, STREAM_REQUIRED + ["--max-offsets-per-trigger", "0"], "--max-offsets-per-trigger",
     "must be >= 1"),
    (events_stream, STREAM_REQUIRED + ["--checkpoint", "/tmp/checkpoint"], "--checkpoint",
     "is not a URI such as hdfs://"),
    (events_stream, STREAM_REQUIRED + ["--es-url", "elasticsearch:9200"], "--es-url", "not an http:// or https:// URL"),
    (events_stream, ["--checkpoint", "file:///cp", "--es-url", "http://es:9200"], None,
     "the following arguments are required: --bootstrap-servers"),
    (events_batch, BATCH_REQUIRED + ["--es-index", "Daily"], "--es-index", "has upper-case letters"),
    (hdfs_loader, LOADER_REQUIRED + ["--files", "-1"], "--files", "must be >= 0"),
    (hdfs_loader, LOADER_REQUIRED + ["--events-per-file", "0"], "--events-per-file", "must be >= 1"),
    (hdfs_loader, LOADER_REQUIRED + ["--time-step", "0"], "--time-step", "must be a number > 0"),
])
def test_bad_arguments_fail_naming_the_option(module, args, option, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    if option:
        assert "argument %s" % option in err, err


@pytest.mark.parametrize("name", ["events-per-minute", "events-daily", "a", "logs.2026-12", "ü-events",
                                  "x" * 255])
def test_valid_index_names_pass(name):
    assert bp.index_name(name) == name


@pytest.mark.parametrize("script", ["events_stream.py", "events_batch.py", "events_generator.py",
                                    "hdfs_loader.py"])
def test_help_works_without_spark(script):
    """--help never imports pyspark (the import is made to fail here)."""
    code = ("import sys; sys.modules['pyspark'] = None; sys.path.insert(0, %r); sys.argv = [%r, '--help'];"
            " import runpy; runpy.run_path(%r, run_name='__main__')"
            % (APPS, script, os.path.join(APPS, script)))
    proc = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: %s" % script), proc.stdout


def test_elasticsearch_credentials_come_in_pairs():
    assert bp.elasticsearch_credentials({}) == (None, None)
    assert bp.elasticsearch_credentials({"ES_USERNAME": "u", "ES_PASSWORD": "p"}) == ("u", "p")
    for env, name in (({"ES_USERNAME": "u"}, "ES_USERNAME"), ({"ES_PASSWORD": "p"}, "ES_PASSWORD")):
        with pytest.raises(SystemExit, match="must be set together \\(only %s is set\\)" % name):
            bp.elasticsearch_credentials(env)


def test_ca_file_needs_https(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ValueError, match="--es-ca is given but --es-url http://es:9200 is not https://"):
        bp.ElasticsearchSink("http://es:9200", "events", ca_file=str(ca))


# --------------------------------------------------------------------------- event generation

def test_events_follow_the_contract():
    generator = bp.EventGenerator(42, keys=10, skew=1.0)
    events = generator.events(0, 2000, T0, 123.4)
    assert events[17]["event_id"] == "s42-000000017"
    assert [e["ts"] for e in events[:3]] == ["2026-12-01T15:00:00.000Z", "2026-12-01T15:00:00.123Z",
                                             "2026-12-01T15:00:00.247Z"]
    assert {e["event_type"] for e in events} == set(bp.EVENT_TYPES)
    assert all((e["amount"] > 0) == (e["event_type"] == "purchase") for e in events)
    assert all(round(e["amount"], 2) == e["amount"] for e in events)
    assert {e["user_id"] for e in events} <= {"user-%d" % k for k in range(10)}
    assert len({e["event_id"] for e in events}) == 2000
    assert set(events[0]) == {"event_id", "user_id", "event_type", "amount", "ts"}


def test_an_event_depends_only_on_seed_and_sequence():
    whole = bp.EventGenerator(7, 50, 1.2).events(0, 300, T0, 1000)
    parts = (bp.EventGenerator(7, 50, 1.2).events(200, 100, T0, 1000)
             + bp.EventGenerator(7, 50, 1.2).events(0, 200, T0, 1000))
    assert sorted(parts, key=lambda e: e["event_id"]) == whole
    other_seed = bp.EventGenerator(8, 50, 1.2).events(0, 300, T0, 1000)
    assert [e["user_id"] for e in other_seed] != [e["user_id"] for e in whole]
    assert other_seed[5]["event_id"] == "s8-000000005"


def test_zipf_skew_concentrates_events_on_few_users():
    keys, count = 10, 20000

    def shares(skew):
        users = collections.Counter(e["user_id"] for e in bp.EventGenerator(3, keys, skew).events(0, count, T0, 1))
        return [users["user-%d" % k] / count for k in range(keys)]
    uniform = shares(0.0)
    assert all(abs(share - 0.1) < 0.01 for share in uniform), uniform
    skewed = shares(1.2)
    weights = [1 / (k + 1) ** 1.2 for k in range(keys)]
    expected = [w / sum(weights) for w in weights]
    assert all(abs(s - e) < 0.015 for s, e in zip(skewed, expected)), (skewed, expected)
    assert skewed[0] > 5 * skewed[-1]


def test_generator_writes_one_chunk_per_second_of_events():
    args = events_generator.parse_args(GEN_REQUIRED + ["--count", "250", "--rate", "100", "--first-sequence", "1000"])
    assert list(events_generator.chunks(args)) == [(1000, 100, 0.0), (1100, 100, 1.0), (1200, 50, 2.0)]
    args = events_generator.parse_args(GEN_REQUIRED + ["--count", "3", "--rate", "0.5"])
    assert list(events_generator.chunks(args)) == [(0, 1, 0.0), (1, 1, 2.0), (2, 1, 4.0)]
    assert list(events_generator.chunks(events_generator.parse_args(GEN_REQUIRED + ["--count", "0"]))) == []


def test_loader_files_hold_consecutive_events_and_are_reproducible():
    args = hdfs_loader.parse_args(LOADER_REQUIRED + ["--files", "3", "--events-per-file", "4", "--seed", "9",
                                                     "--start-time", "2026-12-01T00:00:00Z", "--time-step", "30"])
    generator = bp.EventGenerator(args.seed, args.keys, args.skew)
    texts = [hdfs_loader.file_text(generator, i, args) for i in range(3)]
    events = [json.loads(line) for text in texts for line in text.splitlines()]
    assert [e["event_id"] for e in events] == ["s9-%09d" % n for n in range(12)]
    assert events[5]["ts"] == "2026-12-01T00:02:30.000Z"
    assert hdfs_loader.file_name(1) == "part-00001.jsonl"
    again = bp.EventGenerator(args.seed, args.keys, args.skew)
    assert [hdfs_loader.file_text(again, i, args) for i in range(3)] == texts


# --------------------------------------------------------------------------- bulk requests

def test_bulk_body_is_action_then_source_lines_ending_with_a_newline():
    body = bp.bulk_request_body("events-daily", [
        ("2026-12-01-view", {"day": "2026-12-01", "event_type": "view", "events": 3, "users": 2, "amount": 0.0}),
        ("2026-12-01-purchase", {"events": 1, "amount": 12.5}),
    ])
    assert body == (
        b'{"index":{"_index":"events-daily","_id":"2026-12-01-view"}}\n'
        b'{"amount":0.0,"day":"2026-12-01","event_type":"view","events":3,"users":2}\n'
        b'{"index":{"_index":"events-daily","_id":"2026-12-01-purchase"}}\n'
        b'{"amount":12.5,"events":1}\n')
    assert parse_bulk_body(body) == [
        ("index", "events-daily", "2026-12-01-view",
         {"day": "2026-12-01", "event_type": "view", "events": 3, "users": 2, "amount": 0.0}),
        ("index", "events-daily", "2026-12-01-purchase", {"events": 1, "amount": 12.5})]
    assert bp.bulk_request_body("x", []) == b""
    with pytest.raises(ValueError):
        bp.bulk_request_body("x", [("id", {"amount": float("nan")})])


@pytest.mark.parametrize("body, error", [
    (b'{"index":{"_index":"i","_id":"1"}}\n{"a":1}', "must be terminated by a newline"),
    (b'{"index":{"_index":"i","_id":"1"}}\n', "has no source line"),
    (b'{"upsert":{"_index":"i","_id":"1"}}\n{"a":1}\n', "expected one of [create, delete, index, update]"),
    (b'{"index":{"_id":"1"}}\n{"a":1}\n', "index is missing"),
    (b'{"index":{"_index":"Bad","_id":"1"}}\n{"a":1}\n', "Invalid index name [Bad]"),
    (b'{"index":{"_index":"i","_id":"1"}}\n[1,2]\n', "is not a JSON object"),
    (b'{"index":{"_index":"i","_id":"1"}} {"a":1}\n', "malformed action/metadata line"),
    (b"", "no requests added"),
])
def test_the_stand_in_rejects_malformed_bulk_bodies(body, error):
    with pytest.raises(BulkRejected) as info:
        parse_bulk_body(body)
    assert error in info.value.args[1]


def test_sink_writes_in_chunks_with_ndjson_and_overwrites_by_id(es):
    sink = bp.ElasticsearchSink(es.url, "events-per-minute", chunk=2)
    docs = [("view-%d" % n, {"events": n}) for n in range(5)]
    assert sink.write(docs) == 5
    assert [(r["method"], r["path"], r["content_type"]) for r in es.requests] == \
        [("POST", "/_bulk", "application/x-ndjson")] * 3
    assert es.count("events-per-minute") == 5
    assert sink.write([("view-3", {"events": 33})]) == 1
    status, doc = es.get("/events-per-minute/_doc/view-3")
    assert (status, doc["_source"], doc["_version"]) == (200, {"events": 33}, 2)
    assert es.documents("events-per-minute") == {"view-%d" % n: {"events": 33 if n == 3 else n} for n in range(5)}


def test_sink_writes_a_dataframe_with_id_column(spark, es):
    frame = spark.createDataFrame([("a-1", "a", 2), ("b-1", "b", 3)], "_id string, name string, events long")
    assert bp.ElasticsearchSink(es.url, "idx").write_dataframe(frame) == 2
    assert es.documents("idx") == {"a-1": {"name": "a", "events": 2}, "b-1": {"name": "b", "events": 3}}


def test_sink_fails_clearly_when_items_are_rejected(es):
    es.reject = lambda index, doc_id, source: "failed to parse field [events]" if doc_id == "bad" else None
    sink = bp.ElasticsearchSink(es.url, "events-daily")
    with pytest.raises(bp.BulkError) as info:
        sink.write([("good", {"events": 1}), ("bad", {"events": "x"})])
    message = str(info.value)
    assert "stored 1 of 2 documents in index events-daily; 1 failed" in message
    assert "_id=bad HTTP 400 document_parsing_exception: failed to parse field [events]" in message


def test_sink_retries_an_unavailable_cluster_then_gives_up(es):
    es.unavailable = 2
    sink = bp.ElasticsearchSink(es.url, "idx", retries=2, pause=0.01)
    assert sink.write([("a", {"n": 1})]) == 1
    es.unavailable = 3
    with pytest.raises(bp.BulkError, match="answered HTTP 503 to POST /_bulk"):
        sink.write([("b", {"n": 2})])
    assert set(es.documents("idx")) == {"a"}


def test_sink_sends_basic_auth_from_the_environment():
    server = EsStandIn(credentials=("writer", "s3cret"))
    try:
        good = bp.ElasticsearchSink.from_options(
            events_batch.parse_args(BATCH_REQUIRED[:-1] + [server.url]), {"ES_USERNAME": "writer", "ES_PASSWORD": "s3cret"})
        assert good.write([("a", {"n": 1})]) == 1
        bad = bp.ElasticsearchSink(server.url, "events-daily", "writer", "wrong")
        with pytest.raises(bp.BulkError, match="refused the request \\(HTTP 401\\): check ES_USERNAME / ES_PASSWORD"):
            bad.write([("a", {"n": 1})])
        anonymous = bp.ElasticsearchSink(server.url, "events-daily")
        with pytest.raises(bp.BulkError, match="HTTP 401"):
            anonymous.write([("a", {"n": 1})])
    finally:
        server.close()


def test_sink_verifies_tls_with_the_given_ca(tmp_path):
    from daemon_tls import tls_secret

    secret = tls_secret(["localhost"])
    for key in secret:
        (tmp_path / key).write_text(secret[key])
    server = EsStandIn(tls=(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")))
    try:
        assert server.url.startswith("https://localhost:")
        with_ca = bp.ElasticsearchSink(server.url, "events", ca_file=str(tmp_path / "ca.crt"))
        assert with_ca.write([("a", {"n": 1})]) == 1
        without_ca = bp.ElasticsearchSink(server.url, "events")
        with pytest.raises(bp.BulkError, match="TLS with Elasticsearch at https://localhost:\\d+ failed: .*--es-ca"):
            without_ca.write([("a", {"n": 1})])
    finally:
        server.close()


def test_sink_names_an_unreachable_cluster():
    from daemon_support import free_ports

    url = "http://127.0.0.1:%d" % free_ports(1)[0]
    with pytest.raises(bp.BulkError, match="cannot reach Elasticsearch at %s after 2 attempts" % url):
        bp.ElasticsearchSink(url, "idx", retries=1, pause=0.01).write([("a", {"n": 1})])


def test_stand_in_refuses_other_content_types(es):
    import urllib.error
    import urllib.request

    body = bp.bulk_request_body("idx", [("a", {"n": 1})])
    request = urllib.request.Request(es.url + "/_bulk", data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 406
    assert es.count("idx") is None  # nothing written, the index does not exist

