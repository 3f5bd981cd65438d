"""The sample pipelines (roles/pipelines/files/apps) as real spark-submit processes against the
real Kafka and HDFS daemons the roles' rendered configs boot (kafka_sim.py, hdfs_sim.py).

Elasticsearch is the stand-in of pipeline_support.EsStandIn (see its docstring: no Elasticsearch
distribution can be installed here). Expected results are computed in Python from the events
themselves, never taken from the pipelines' output.
"""

import json

from daemon_support import wait_until
from hdfs_sim import IMAGE_USER, HdfsCluster, xml_properties
from kafka_sim import KafkaCluster, load_health
from pipeline_support import (EsStandIn, SparkApps, batch_writes, bp, checkpoint_offsets, daily_totals,
                              kill_hard, progress_events, read_text, same_totals, window_totals)

# kafka_internal_port (roles/kafka/vars/main.yml): what wait.yml's health check bootstraps from.
INTERNAL_PORT = 9092
SEED, KEYS, SKEW = 11, 40, 1.1
START = "2026-12-01T15:00:00Z"
STEP_SECONDS = 0.1          # 3000 events over 5 minutes of event time
FIRST_RUN_EVENTS, SECOND_RUN_EVENTS = 2000, 1000
MAX_PER_BATCH = 400         # several micro-batches, so the kill lands in the middle


def _offsets(value):
    """{topic: {partition: offset}} from a checkpoint line or a progress startOffset."""
    if isinstance(value, str):
        value = json.loads(value)
    return {topic: {str(p): int(o) for p, o in parts.items()} for topic, parts in value.items()}


def test_stream_killed_mid_way_resumes_from_its_checkpoint(render, inventory_vars, kafka_classpath,
                                                           daemons, tmp_path):
    """events_generator.py -> dev's Kafka -> events_stream.py -> the stand-in, with a SIGKILL
    of the stream after a micro-batch reached Elasticsearch but before Spark committed it; a
    restart on the same checkpoint ends with exactly the totals of the generated events."""
    inv = inventory_vars("dev")
    docs = render("dev", "kafka")
    cluster = KafkaCluster(docs, inv["bigdata_namespace"], kafka_classpath, str(tmp_path / "kafka"))
    cluster.start(daemons)
    pod = cluster.pods[0]
    cluster.wait_healthy(load_health(), cluster.in_pod(pod, "localhost:%d" % INTERNAL_PORT),
                         inv["kafka_broker_replicas"], pod=pod, timeout=240)
    # The rendered topics Job creates `events` with the inventory's partitions.
    job = cluster.job_sandbox([d for d in docs if d["kind"] == "Job"][0], str(tmp_path / "topics-job")).run(300)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    topic = next(t for t in inv["kafka_topics"] if t["name"] == "events")
    # The developer's machine reaches Kafka through the advertised EXTERNAL listener.
    bootstrap = "%s:%d" % (inv["bigdata_external_host"], cluster.node_port(pod))

    es = EsStandIn()
    apps = SparkApps(str(tmp_path / "spark"), kafka=True)
    events_args = ["--bootstrap-servers", bootstrap, "--seed", SEED, "--keys", KEYS, "--skew", SKEW,
                   "--start-time", START, "--time-step", STEP_SECONDS, "--rate", 100000]
    checkpoint_dir = str(tmp_path / "checkpoint")
    stream_args = ["--bootstrap-servers", bootstrap, "--checkpoint", "file://" + checkpoint_dir,
                   "--es-url", es.url, "--trigger", "2 seconds", "--watermark", "2 minutes",
                   "--max-offsets-per-trigger", MAX_PER_BATCH]
    try:
        produced = apps.run("events_generator.py", events_args + ["--count", FIRST_RUN_EVENTS], "generator-1")
        assert "produced %d events (sequences 0..%d of seed %d)" % (
            FIRST_RUN_EVENTS, FIRST_RUN_EVENTS - 1, SEED) in produced

        # First run: its third micro-batch's documents reach Elasticsearch, but the answer is held
        # back, and the driver is SIGKILLed while it waits: written, never committed.
        es.hold_after = 2
        first = apps.start("events_stream.py", stream_args, "stream-1")
        wait_until(es.holding.is_set, "the first stream's third bulk request", 420, daemons=[first], interval=0.5)
        kill_hard(first)
        es.hold_after = None
        es.release.set()
        held = {w["_id"]: w["source"] for w in es.writes if w["request"] == 3}
        assert held, "the held request carried no documents"
        assert [b for b, _n in batch_writes(read_text(first.log_path))] == [0, 1]
        offsets, commits = checkpoint_offsets(checkpoint_dir)
        assert commits == [0, 1], "batch 2 must be planned (offsets/2) but not committed: %s" % commits
        assert sorted(offsets) == [0, 1, 2]
        last_commit = commits[-1]
        committed = _offsets(offsets[last_commit])
        consumed = sum(committed["events"].values())
        assert len(committed["events"]) == topic["partitions"]
        assert 0 < consumed < FIRST_RUN_EVENTS, "not killed in the middle: %d consumed" % consumed

        # More events while the stream is down, continuing the same sequence.
        apps.run("events_generator.py", events_args + ["--count", SECOND_RUN_EVENTS,
                                                       "--first-sequence", FIRST_RUN_EVENTS], "generator-2")

        every_event = bp.EventGenerator(SEED, KEYS, SKEW).events(
            0, FIRST_RUN_EVENTS + SECOND_RUN_EVENTS, bp.parse_instant(START), STEP_SECONDS * 1000)
        expected = window_totals(every_event)
        unread = FIRST_RUN_EVENTS + SECOND_RUN_EVENTS - consumed
        second = apps.start("events_stream.py", stream_args, "stream-2")
        try:
            def final():
                # The totals, and the progress report of the micro-batch that completed them
                # (the listener reports a batch after its sink ran).
                read = sum(p["numInputRows"] for p in progress_events(read_text(second.log_path)))
                return read >= unread and not same_totals(es.documents("events-per-minute"), expected)
            try:
                wait_until(final, "the final window totals in the stand-in", 420, daemons=[second], interval=1)
            except AssertionError as exc:
                raise AssertionError("%s\ndifferences: %s" % (exc, same_totals(
                    es.documents("events-per-minute"), expected)[:20]))
        finally:
            second.stop()

        # Every document once, under its idempotent id, and no other id was ever written.
        assert es.count("events-per-minute") == len(expected) == 15
        assert {w["_id"] for w in es.writes} == set(expected)
        # The restarted query continued from the checkpoint: it first re-ran the planned batch 2
        # exactly (from the committed offsets to the planned ones), and sent the very documents
        # the killed driver had written: overwritten under the same ids, not added ...
        restarted = progress_events(read_text(second.log_path))
        assert restarted, "the restarted stream reported no progress"
        first_batch = restarted[0]
        assert first_batch["batchId"] == last_commit + 1 == 2
        assert _offsets(first_batch["sources"][0]["startOffset"]) == committed
        assert _offsets(first_batch["sources"][0]["endOffset"]) == _offsets(offsets[2])
        assert {w["_id"]: w["source"] for w in es.writes if w["request"] == 4} == held
        # ... and then read exactly the events after them: nothing again from the start, nothing
        # skipped.
        assert sum(p["numInputRows"] for p in restarted) == unread
    finally:
        es.close()


def _wait_hdfs_ready(hdfs, datanodes, daemons):
    """NameNode JMX as bigdata.stack.wait_ready reads it: out of safe mode, datanodes live."""
    health = load_health()

    def ready():
        answers = {}
        for name, _path, query in health.http_checks("hdfs"):
            status, _headers, body = hdfs.jmx(query[0][1])
            answers[name] = (status, body.decode("utf-8", "replace"))
        return health.interpret("hdfs", answers, {"min_datanodes": datanodes})["ok"]
    wait_until(ready, "HDFS out of safe mode with %d live datanodes" % datanodes, 180, daemons=daemons,
               interval=2)


def _listing(hdfs, path):
    status, _h, body = hdfs.request("GET", hdfs.namenode_url(
        "/webhdfs/v1%s?op=LISTSTATUS&user.name=%s" % (path, IMAGE_USER)))
    assert status == 200, body[:500]
    return {f["pathSuffix"]: f for f in json.loads(body)["FileStatuses"]["FileStatus"]}


def _read(hdfs, path):
    _loc, (status, _h, body) = hdfs.webhdfs("GET", path, "OPEN")
    assert status == 200, (path, status, body[:300])
    return body


READ_BACK = """\
import json, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
for row in spark.read.parquet(sys.argv[1]).collect():
    record = row.asDict()
    record["day"] = record["day"].isoformat()
    print("ROW " + json.dumps(record, sort_keys=True))
spark.stop()
"""


def test_batch_pipeline_turns_raw_events_in_hdfs_into_daily_totals(render, inventory_vars, hadoop_classpath,
                                                                   daemons, tmp_path):
    """hdfs_loader.py (twice: idempotent) -> dev's HDFS -> events_batch.py -> Parquet in HDFS and
    the stand-in, checked against totals computed from the raw files read back over WebHDFS."""
    inv = inventory_vars("dev")
    docs = render("dev", "hdfs")
    hdfs = HdfsCluster(docs, inv["bigdata_namespace"], hadoop_classpath, str(tmp_path / "hdfs"))
    replicas = hdfs.datanode_sts["spec"]["replicas"]
    nn = daemons.add(hdfs.namenode().start())
    dns = [daemons.add(hdfs.datanode(i).start()) for i in range(replicas)]
    _wait_hdfs_ready(hdfs, replicas, [nn] + dns)

    # Clients address the namenode as fs.defaultFS names it (its port is this machine's, see
    # hdfs_sim.machine_overrides); the JVM resolves the cluster names through the hosts file.
    host = xml_properties(hdfs.config["core-site.xml"])["fs.defaultFS"].split("//", 1)[1].split(":")[0]
    base = "hdfs://%s:%d" % (host, hdfs.namenode_ports["rpc"])
    replication = xml_properties(hdfs.config["hdfs-site.xml"]).get("dfs.replication", "3")
    apps = SparkApps(str(tmp_path / "spark"), hosts_file=hdfs.hosts_file,
                     env={"HADOOP_USER_NAME": IMAGE_USER}, conf={"spark.hadoop.dfs.replication": replication})
    es = EsStandIn()
    files, per_file, start, step = 4, 500, "2026-11-29T20:00:00Z", 60
    loader_args = ["--output", base + "/data/raw/events", "--files", files, "--events-per-file", per_file,
                   "--seed", 7, "--keys", 30, "--skew", 1.0, "--start-time", start, "--time-step", step]
    try:
        apps.run("hdfs_loader.py", loader_args, "loader-1")
        first = _listing(hdfs, "/data/raw/events")
        names = ["part-%05d.jsonl" % i for i in range(files)]
        assert sorted(first) == names
        contents = {name: _read(hdfs, "/data/raw/events/" + name) for name in names}

        # The raw files hold events 0..1999 of seed 7, one minute apart, as JSON lines.
        events = [json.loads(line) for name in names for line in contents[name].decode().splitlines()]
        assert [e["event_id"] for e in events] == ["s7-%09d" % n for n in range(files * per_file)]
        assert [bp.parse_instant(e["ts"]) for e in events] == [
            bp.parse_instant(start) + n * step * 1000 for n in range(files * per_file)]
        assert {e["ts"][:10] for e in events} == {"2026-11-29", "2026-11-30", "2026-12-01"}

        # A second run rewrites the same files with the same bytes and removes a file it does not
        # own any more (as left by an earlier run with more --files).
        _loc, (status, _h, body) = hdfs.webhdfs("PUT", "/data/raw/events/part-00009.jsonl", "CREATE",
                                                body=b'{"stale": true}\n', overwrite="true")
        assert status == 201, body[:300]
        apps.run("hdfs_loader.py", loader_args, "loader-2")
        second = _listing(hdfs, "/data/raw/events")
        assert sorted(second) == names
        assert {n: f["length"] for n, f in second.items()} == {n: f["length"] for n, f in first.items()}
        assert all(second[n]["modificationTime"] > first[n]["modificationTime"] for n in names), \
            "the second run did not rewrite the files"
        assert {name: _read(hdfs, "/data/raw/events/" + name) for name in names} == contents

        apps.run("events_batch.py", ["--input", base + "/data/raw/events", "--output", base + "/data/daily",
                                     "--es-url", es.url], "batch")
        expected = daily_totals(events)
        assert len(expected) == 9  # 3 days x 3 types

        # Parquet partitioned by day, read back by Spark from HDFS.
        assert sorted(n for n in _listing(hdfs, "/data/daily") if n.startswith("day=")) == [
            "day=2026-11-29", "day=2026-11-30", "day=2026-12-01"]
        script = tmp_path / "read_back.py"
        script.write_text(READ_BACK)
        out = apps.run(str(script), [base + "/data/daily"], "read-back")
        parquet = [json.loads(line[4:]) for line in out.splitlines() if line.startswith("ROW ")]
        assert len(parquet) == len(expected), parquet
        assert same_totals({"%s-%s" % (r["day"], r["event_type"]): r for r in parquet}, expected) == []

        # The same totals in the daily index, one document per day and type, under <day>-<type>.
        assert es.count("events-daily") == len(expected)
        assert same_totals(es.documents("events-daily"), expected) == []
    finally:
        es.close()
