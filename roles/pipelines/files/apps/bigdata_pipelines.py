"""Shared code of the sample pipelines (docs/pipelines.md is the contract).

Everything here is importable without Spark: the event generator, the argument helpers and the
Elasticsearch bulk sink use the standard library only, and the DataFrame functions import pyspark
when they are called. So `<entry script> --help` works on any Python, and the unit tests exercise
the pure parts without a JVM.

The image this runs in (apache/spark, see apache/spark-docker's Dockerfile) ships python3 but no
extra packages: HTTP goes through urllib, nothing here needs pip.
"""

import argparse
import base64
import bisect
import datetime
import json
import os
import random
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

EVENT_TYPES = ("view", "click", "purchase")
# How often each type occurs: mostly views, few purchases (the only events with an amount).
EVENT_TYPE_WEIGHTS = (0.70, 0.22, 0.08)
# Spark's format of a UTC instant in documents: 2026-12-01T15:00:00.123Z.
SPARK_UTC_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"


# --------------------------------------------------------------------------- events

def format_ts(epoch_ms):
    """An instant (epoch milliseconds) as the events carry it: 2026-12-01T15:00:00.123Z."""
    moment = datetime.datetime.fromtimestamp(epoch_ms // 1000, tz=datetime.timezone.utc)
    return "%s.%03dZ" % (moment.strftime("%Y-%m-%dT%H:%M:%S"), epoch_ms % 1000)


def parse_instant(text):
    """An ISO-8601 instant with an explicit zone (Z or +hh:mm) -> epoch milliseconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("%r is not an ISO-8601 time such as 2026-12-01T15:00:00Z" % text)
    if moment.tzinfo is None:
        raise ValueError("%r has no time zone: add Z (UTC) or an offset such as +01:00" % text)
    return int(round(moment.timestamp() * 1000))


def run_id(seed):
    """The run id of event ids: events of seed 42 are s42-000000000, s42-000000001, ..."""
    return "s%d" % seed


class EventGenerator:
    """Deterministic events: event number `sequence` of `seed` is always the same event.

    Each event draws from its own random stream, seeded with (seed, sequence), so a range of
    sequences gives the same events however it is split between runs, files or chunks.

    keys  number of users (user-0 .. user-<keys-1>)
    skew  Zipf exponent s of the user distribution: user-k is chosen with a weight of
          1/(k+1)^s, so 0 is uniform and 1.2 makes a few users produce most events (hot keys
          for Kafka partitions and Spark tasks).
    """

    def __init__(self, seed, keys, skew):
        if keys < 1:
            raise ValueError("keys must be at least 1, got %r" % keys)
        if skew < 0:
            raise ValueError("skew must be 0 (uniform) or more, got %r" % skew)
        self.seed = seed
        self.keys = keys
        self.skew = skew
        self.run_id = run_id(seed)
        total = 0.0
        self._user_cdf = []
        for rank in range(1, keys + 1):
            total += 1.0 / rank ** skew
            self._user_cdf.append(total)
        self._type_cdf = []
        total = 0.0
        for weight in EVENT_TYPE_WEIGHTS:
            total += weight
            self._type_cdf.append(total)

    def event(self, sequence, epoch_ms):
        """Event `sequence` (an int >= 0) at time `epoch_ms`, as the dict the topic carries."""
        rng = random.Random("%d/%d" % (self.seed, sequence))
        user = bisect.bisect_left(self._user_cdf, rng.random() * self._user_cdf[-1])
        kind = EVENT_TYPES[min(bisect.bisect_left(self._type_cdf, rng.random() * self._type_cdf[-1]),
                               len(EVENT_TYPES) - 1)]
        amount = round(rng.uniform(1.0, 200.0), 2) if kind == "purchase" else 0.0
        return {"event_id": "%s-%09d" % (self.run_id, sequence),
                "user_id": "user-%d" % min(user, self.keys - 1),
                "event_type": kind, "amount": amount, "ts": format_ts(epoch_ms)}

    def events(self, first, count, start_ms, step_ms):
        """Events first .. first+count-1; event n happens at start_ms + n * step_ms."""
        return [self.event(n, start_ms + int(round(n * step_ms))) for n in range(first, first + count)]


def to_json_line(event):
    """One event as the JSON text of a Kafka value or a line of a raw file."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, allow_nan=False)


# --------------------------------------------------------------------------- arguments

_DURATION = re.compile(r"^\s*(\d+)\s+(millisecond|second|minute|hour|day)s?\s*$")
_INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number > 0, got %r" % text)
    return value


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number >= 0, got %r" % text)
    return value


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)


def non_negative_int(text):
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0, got %r" % text)
    return value


def positive_int(text):
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1, got %r" % text)
    return value


def duration(text):
    """A Spark interval such as `10 seconds` or `1 minute` (what window/watermark/trigger take)."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            "%r is not a duration such as '10 seconds' or '1 minute' (a whole number > 0 and a unit: "
            "milliseconds, seconds, minutes, hours or days)" % text)
    return "%s %ss" % (match.group(1), match.group(2))


def index_name(text):
    """An Elasticsearch index name, checked against the rules of the create index API."""
    problems = []
    if not text:
        problems.append("is empty")
    if text != text.lower():
        problems.append("has upper-case letters")
    if text[:1] in ("_", "-", "+"):
        problems.append("starts with %r" % text[:1])
    bad = sorted(set(text) & _INDEX_FORBIDDEN)
    if bad:
        problems.append("contains %s" % " ".join(repr(c) for c in bad))
    if text in (".", ".."):
        problems.append("is %r" % text)
    if len(text.encode("utf-8")) > 255:
        problems.append("is longer than 255 bytes")
    if problems:
        raise argparse.ArgumentTypeError(
            "%r is not a valid Elasticsearch index name: it %s (use lower case letters, digits and "
            "- _ . , not starting with _ - +)" % (text, ", ".join(problems)))
    return text


def http_url(text):
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise argparse.ArgumentTypeError("%r is not an http:// or https:// URL" % text)
    return text.rstrip("/")


def readable_file(text):
    if not os.path.isfile(text) or not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError("%r is not a readable file" % text)
    return text


def instant(text):
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def storage_uri(text):
    """A checkpoint or data location Spark can share between restarts: hdfs://, file://, s3a://..."""
    if not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", text):
        raise argparse.ArgumentTypeError(
            "%r is not a URI such as hdfs://namenode:8020/path or file:///path" % text)
    return text


def add_elasticsearch_options(parser, default_index):
    parser.add_argument("--es-url", type=http_url, required=True,
                        help="Elasticsearch base URL, e.g. https://elasticsearch:9200")
    parser.add_argument("--es-index", type=index_name, default=default_index,
                        help="target index (default %(default)s)")
    parser.add_argument("--es-ca", type=readable_file, default=None,
                        help="PEM file of the CA that signed Elasticsearch's certificate")


def add_event_options(parser):
    """Options of the generators that decide which events are made."""
    parser.add_argument("--seed", type=non_negative_int, default=42,
                        help="seed of the events; event ids are s<seed>-<sequence> (default %(default)s)")
    parser.add_argument("--keys", type=positive_int, default=100,
                        help="number of distinct users (default %(default)s)")
    parser.add_argument("--skew", type=non_negative_float, default=1.1,
                        help="Zipf exponent of the user distribution, 0 = uniform (default %(default)s)")
    parser.add_argument("--start-time", type=instant, default=None,
                        help="ISO-8601 time of event 0, e.g. 2026-12-01T15:00:00Z: event n then "
                             "happens at start-time + n * time-step")
    parser.add_argument("--time-step", type=positive_float, default=None,
                        help="seconds between two events' times when --start-time is given")


def elasticsearch_credentials(environ=None):
    """(username, password) from ES_USERNAME / ES_PASSWORD, or (None, None) when both are unset."""
    environ = os.environ if environ is None else environ
    username, password = environ.get("ES_USERNAME") or None, environ.get("ES_PASSWORD") or None
    if (username is None) != (password is None):
        raise SystemExit("ES_USERNAME and ES_PASSWORD must be set together (only %s is set): set "
                         "both for basic authentication, or neither"
                         % ("ES_USERNAME" if username else "ES_PASSWORD"))
    return username, password


def log(message):
    """One line on stdout, flushed: what `kubectl logs` shows for the driver."""
    sys.stdout.write("%s %s\n" % (format_ts(int(time.time() * 1000)), message))
    sys.stdout.flush()


# --------------------------------------------------------------------------- Elasticsearch

class BulkError(RuntimeError):
    """Elasticsearch did not store every document of a bulk request."""


def bulk_request_body(index, docs):
    """The NDJSON body of a bulk request indexing `docs` ((_id, source) pairs) into `index`.

    `index` replaces a document with the same _id, so sending a document again (a replayed
    micro-batch, a re-run batch job) overwrites it instead of adding one. Every line, the last
    one included, ends with a newline, as the bulk API requires.
    """
    lines = []
    for doc_id, source in docs:
        lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}, separators=(",", ":")))
        lines.append(json.dumps(source, separators=(",", ":"), sort_keys=True, allow_nan=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def bulk_failures(response):
    """[(action, _id, status, error)] of the items of a bulk response that were not stored."""
    failures = []
    for item in response.get("items", []):
        for action, result in item.items():
            status = result.get("status", 0)
            if "error" in result or not 200 <= status < 300:
                error = result.get("error")
                if isinstance(error, dict):
                    error = "%s: %s" % (error.get("type"), error.get("reason"))
                failures.append((action, result.get("_id"), status, error))
    return failures


class ElasticsearchSink:
    """Writes documents with the bulk API (`POST /_bulk`), in requests of at most `chunk` docs.

    Retries a request that Elasticsearch rejected as a whole for load (429, 502, 503, 504) or
    that did not reach it, `retries` times with a growing pause; the ids make a retry harmless.
    A request whose items failed (mapping errors, a closed index) raises BulkError naming them.
    """

    RETRY_STATUSES = (429, 502, 503, 504)

    def __init__(self, url, index, username=None, password=None, ca_file=None, timeout=60,
                 chunk=500, retries=3, pause=1.0):
        self.url = url.rstrip("/")
        self.index = index
        self.timeout = timeout
        self.chunk = chunk
        self.retries = retries
        self.pause = pause
        self.headers = {"Content-Type": "application/x-ndjson", "Accept": "application/json"}
        if username is not None:
            token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = "Basic " + token
        self.context = None
        if self.url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=ca_file)
        elif ca_file:
            raise ValueError("--es-ca is given but --es-url %s is not https://" % url)

    @classmethod
    def from_options(cls, args, environ=None):
        username, password = elasticsearch_credentials(environ)
        return cls(args.es_url, args.es_index, username, password, args.es_ca)

    def write(self, docs):
        """Index every (_id, source) of the iterable `docs`; returns how many were written."""
        written = 0
        batch = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= self.chunk:
                written += self._send(batch)
                batch = []
        if batch:
            written += self._send(batch)
        return written

    def write_dataframe(self, frame):
        """Index the rows of a DataFrame with an `_id` column; the other columns are the source.

        Rows come to the driver one partition at a time (toLocalIterator), so memory stays
        bounded by a partition, not by the result.
        """
        def docs():
            for row in frame.toLocalIterator():
                source = row.asDict()
                yield source.pop("_id"), source
        return self.write(docs())

    def _send(self, docs):
        body = bulk_request_body(self.index, docs)
        response = self._post("/_bulk", body)
        if response.get("errors"):
            failures = bulk_failures(response)
            first = failures[0] if failures else None
            raise BulkError(
                "Elasticsearch at %s stored %d of %d documents in index %s; %d failed, the first: "
                "%s _id=%s HTTP %s %s" % (self.url, len(docs) - len(failures), len(docs), self.index,
                                          len(failures), *(first or ("?", "?", "?", "?"))))
        return len(docs)

    def _post(self, path, body):
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(self.url + path, data=body, method="POST",
                                             headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as reply:
                    return json.loads(reply.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")[:1000]
                if exc.code in self.RETRY_STATUSES and attempt <= self.retries:
                    time.sleep(self.pause * attempt)
                    continue
                if exc.code in (401, 403):
                    raise BulkError("Elasticsearch at %s refused the request (HTTP %d): check "
                                    "ES_USERNAME / ES_PASSWORD and that the user may write to index "
                                    "%s. %s" % (self.url, exc.code, self.index, text))
                raise BulkError("Elasticsearch at %s answered HTTP %d to POST %s: %s"
                                % (self.url, exc.code, path, text))
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLError):
                    raise BulkError("TLS with Elasticsearch at %s failed: %s (give the CA that signed "
                                    "its certificate with --es-ca)" % (self.url, exc.reason))
                if attempt <= self.retries:
                    time.sleep(self.pause * attempt)
                    continue
                raise BulkError("cannot reach Elasticsearch at %s after %d attempts: %s"
                                % (self.url, attempt, exc.reason))


# --------------------------------------------------------------------------- Spark

def spark_session(app_name):
    """The application's SparkSession, with the settings the documents depend on.

    Times in documents and the `day` of the daily totals are UTC whatever the machine's zone,
    so the session zone is pinned. spark.sql.shuffle.partitions defaults to 200, far too many
    for the few groups here (and a streaming query keeps its number in the checkpoint forever),
    so the apps use 4 unless the submitter chose a number.
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC").getOrCreate()
    if not spark.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):
        spark.conf.set("spark.sql.shuffle.partitions", "4")
    return spark


def event_json_schema():
    """The fields of an event value; `ts` is text here and parsed by parse_events."""
    from pyspark.sql import types as T

    return T.StructType([
        T.StructField("event_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("event_type", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("ts", T.StringType()),
    ])


def parse_events(raw, column="value"):
    """Events (event_id, user_id, event_type, amount, ts: timestamp) from JSON text in `column`.

    Works on a Kafka source (binary value) and on text files alike. A record that is not valid
    JSON, lacks event_id, user_id or a parseable ts, or has another event_type is dropped:
    one bad producer must not stop the pipeline. try_to_timestamp returns null instead of failing
    the query under ANSI mode (on by default since Spark 4).
    """
    from pyspark.sql import functions as F

    parsed = raw.select(F.from_json(F.col(column).cast("string"), event_json_schema()).alias("e"))
    events = parsed.select(
        F.col("e.event_id").alias("event_id"),
        F.col("e.user_id").alias("user_id"),
        F.col("e.event_type").alias("event_type"),
        F.coalesce(F.col("e.amount"), F.lit(0.0)).alias("amount"),
        F.try_to_timestamp(F.col("e.ts")).alias("ts"))
    return events.where(F.col("event_id").isNotNull() & F.col("user_id").isNotNull()
                        & F.col("ts").isNotNull() & F.col("event_type").isin(*EVENT_TYPES))


def _totals(grouped):
    """events, users (exact distinct count), amount (rounded to cents) of a grouping."""
    from pyspark.sql import functions as F

    return grouped.agg(F.count(F.lit(1)).alias("events"),
                       # collect_set: an exact count that streaming aggregation supports
                       # (count(DISTINCT) is not allowed on a stream); at most --keys per group.
                       F.size(F.collect_set("user_id")).alias("users"),
                       F.round(F.sum("amount"), 2).alias("amount"))


def windowed_totals(events, window="1 minute", watermark="2 minutes"):
    """Totals per tumbling event-time window and event_type (window struct: start, end).

    An event delivered twice (a producer retry) is counted once: on a stream, duplicates are
    dropped by event_id while the watermark keeps them in state; on a batch DataFrame (the watermark
    does nothing there) by plain dropDuplicates, so both give the same totals.
    """
    from pyspark.sql import functions as F

    watermarked = events.withWatermark("ts", watermark)
    if events.isStreaming:
        unique = watermarked.dropDuplicatesWithinWatermark(["event_id"])
    else:
        unique = watermarked.dropDuplicates(["event_id"])
    return _totals(unique.groupBy(F.window("ts", window).alias("window"), "event_type"))


def _require_utc(frame):
    zone = frame.sparkSession.conf.get("spark.sql.session.timeZone")
    if zone != "UTC":
        raise ValueError("spark.sql.session.timeZone is %r: documents carry UTC times, build the "
                         "session with bigdata_pipelines.spark_session()" % zone)


def window_documents(totals):
    """Documents of windowed_totals: _id = <event_type>-<window start in epoch ms>."""
    from pyspark.sql import functions as F

    _require_utc(totals)
    start, end = F.col("window.start"), F.col("window.end")
    return totals.select(
        F.concat_ws("-", F.col("event_type"), F.unix_millis(start).cast("string")).alias("_id"),
        F.date_format(start, SPARK_UTC_FORMAT).alias("window_start"),
        F.date_format(end, SPARK_UTC_FORMAT).alias("window_end"),
        "event_type", "events", "users", "amount")


def daily_totals(events):
    """Totals per UTC day (a date column) and event_type; an event_id counts once."""
    from pyspark.sql import functions as F

    _require_utc(events)
    unique = events.dropDuplicates(["event_id"]).withColumn("day", F.to_date("ts"))
    return _totals(unique.groupBy("day", "event_type"))


def daily_documents(totals):
    """Documents of daily_totals: _id = <day>-<event_type>, day as yyyy-MM-dd."""
    from pyspark.sql import functions as F

    day = F.date_format("day", "yyyy-MM-dd")
    return totals.select(F.concat_ws("-", day, F.col("event_type")).alias("_id"), day.alias("day"),
                         "event_type", "events", "users", "amount")
