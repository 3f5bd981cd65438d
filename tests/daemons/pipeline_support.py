"""Run the sample pipelines (roles/pipelines/files/apps) as real spark-submit processes, and the
Elasticsearch stand-in they write to.

* SparkApps: `spark-submit` of the virtualenv's pyspark, master local, for one app of the pipelines
  role with the shared module in --py-files (as spark.submit.pyFiles ships it in the cluster); the
  Kafka connector through spark.jars.packages with an Ivy cache under
  ${BIGDATA_CACHE_DIR:-~/.cache/bigdata-stack}/ivy (resolved once per Spark version).
* EsStandIn: see its docstring. It is NOT Elasticsearch.
* measure_streaming: throughput and produce-to-visible latency of events_stream.py (for make bench).
"""

import base64
import json
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from daemon_support import LOOPBACK, REPO, Daemon, tail, wait_until

APPS = os.path.join(REPO, "roles", "pipelines", "files", "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)
# The apps directory is shipped file by file: no __pycache__ may appear in it.
_write_bytecode = sys.dont_write_bytecode
sys.dont_write_bytecode = True
import bigdata_pipelines as bp  # noqa: E402  the apps' own code computes what the tests expect
sys.dont_write_bytecode = _write_bytecode

# Spark's Kafka connector for the installed pyspark (the image tag the roles deploy is the same).
SCALA_BINARY = "2.13"


def spark_home():
    import pyspark
    return os.path.dirname(os.path.abspath(pyspark.__file__))


def spark_version():
    import pyspark
    return pyspark.__version__


def kafka_package():
    return "org.apache.spark:spark-sql-kafka-0-10_%s:%s" % (SCALA_BINARY, spark_version())


def ivy_dir():
    base = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")
    return os.path.join(base, "ivy")


# Fast JVM start on 2 shared cores (the apps run seconds, not hours). Not for measurements.
FAST_START_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


class SparkApps:
    """spark-submit of the pipelines' apps in local mode, each in its own process group.

    work_dir    logs (<name>.log), Spark's local dirs (spark-local/)
    hosts_file  a hosts file for every JVM (-Djdk.net.hosts.file): cluster names of the HDFS pods.
                The JVM then resolves nothing else, so it is not given when Ivy must reach Maven.
    env         extra environment (HADOOP_USER_NAME, ES_USERNAME ...)
    conf        extra Spark settings
    """

    def __init__(self, work_dir, hosts_file=None, env=None, conf=None, kafka=False,
                 jvm_options=FAST_START_JVM, cores=2):
        self.work_dir = work_dir
        os.makedirs(work_dir, exist_ok=True)
        java_options = jvm_options + (" -Djdk.net.hosts.file=" + hosts_file if hosts_file else "")
        self.conf = {
            "spark.ui.enabled": "false",
            "spark.log.level": "WARN",
            "spark.sql.shuffle.partitions": "2",
            # Loopback only: nothing these tests start listens beyond 127.0.0.1.
            "spark.driver.host": LOOPBACK,
            "spark.driver.bindAddress": LOOPBACK,
            "spark.driver.extraJavaOptions": java_options.strip(),
        }
        if kafka:
            self.conf["spark.jars.packages"] = kafka_package()
            self.conf["spark.jars.ivy"] = ivy_dir()
        self.conf.update(conf or {})
        self.master = "local[%d]" % cores
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                    "HOME": os.environ.get("HOME", work_dir), "SPARK_HOME": spark_home(),
                    "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                    "SPARK_LOCAL_IP": LOOPBACK, "PYTHONDONTWRITEBYTECODE": "1", "SPARK_LOCAL_DIRS": os.path.join(work_dir, "spark-local"),
                    "TZ": os.environ.get("TZ", "UTC")}
        if os.environ.get("JAVA_HOME"):
            self.env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        self.env.update(env or {})

    def command(self, app, args, conf=None):
        """The spark-submit command line for `app` (a file name in the apps directory)."""
        merged = dict(self.conf, **(conf or {}))
        cmd = [os.path.join(spark_home(), "bin", "spark-submit"), "--master", self.master,
               "--driver-memory", "1g", "--py-files", os.path.join(APPS, "bigdata_pipelines.py")]
        for key in sorted(merged):
            cmd += ["--conf", "%s=%s" % (key, merged[key])]
        return cmd + [app if os.path.isabs(app) else os.path.join(APPS, app)] + [str(a) for a in args]

    def log_path(self, name):
        return os.path.join(self.work_dir, name + ".log")

    def run(self, app, args, name, timeout=600, conf=None, env=None):
        """Run an app to completion; fails with the log tail when it exits non-zero. Returns the log."""
        log_path = self.log_path(name)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(self.command(app, args, conf), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=dict(self.env, **(env or {})),
                                    cwd=self.work_dir, start_new_session=True)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError("%s (%s) did not finish within %ss:\n%s"
                                     % (name, app, timeout, tail(log_path, 60)))
        text = read_text(log_path)
        assert code == 0, "%s (%s) exited %s:\n%s" % (name, app, code, tail(log_path, 60))
        return text

    def start(self, app, args, name, conf=None, env=None):
        """Start a long-running app (the stream) as a Daemon; its log is <work_dir>/<name>.log."""
        return Daemon(name, self.command(app, args, conf), self.log_path(name),
                      env=dict(self.env, **(env or {})), cwd=self.work_dir)


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def kill_hard(daemon):
    """SIGKILL the app's whole process group (spark-submit, the driver JVM, its Python): a node
    lost or an OOM kill, no shutdown hook runs."""
    os.killpg(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait(timeout=30)
    daemon.stop()  # forgets it (already dead)


# --------------------------------------------------------------------------- app output

_PROGRESS = re.compile(r"^\S+ progress (\{.*\})\s*$")
_BATCH = re.compile(r"^\S+ batch (\d+): wrote (\d+) documents")


def progress_events(log_text):
    """Spark's progress JSON of every micro-batch events_stream.py reported, in order."""
    return [json.loads(m.group(1)) for m in map(_PROGRESS.match, log_text.splitlines()) if m]


def batch_writes(log_text):
    """[(batch id, documents written)] that events_stream.py logged."""
    return [(int(m.group(1)), int(m.group(2))) for m in map(_BATCH.match, log_text.splitlines()) if m]


def checkpoint_offsets(checkpoint_dir):
    """({batch id: {topic: {partition: offset}}} of offsets/, [committed batch ids] of commits/).

    The offset log is Spark's write-ahead log: a batch's end offsets are written before it runs,
    its commit file after its sink finished. Files: "v1", the batch metadata JSON, one line per
    source with that source's offsets (Kafka: {"<topic>": {"<partition>": <offset>}}).
    """
    offsets = {}
    for name in os.listdir(os.path.join(checkpoint_dir, "offsets")):
        if name.isdigit():
            lines = read_text(os.path.join(checkpoint_dir, "offsets", name)).splitlines()
            offsets[int(name)] = json.loads(lines[2])
    commits = sorted(int(n) for n in os.listdir(os.path.join(checkpoint_dir, "commits")) if n.isdigit())
    return offsets, commits


# --------------------------------------------------------------------------- expectations

def window_totals(events, window_ms=60000):
    """{_id: document} the streaming pipeline must end with, computed from the events in Python."""
    groups = {}
    for event in events:
        ts = bp.parse_instant(event["ts"])
        start = ts - ts % window_ms
        key = "%s-%d" % (event["event_type"], start)
        group = groups.setdefault(key, {"start": start, "type": event["event_type"], "n": 0,
                                        "users": set(), "cents": 0})
        group["n"] += 1
        group["users"].add(event["user_id"])
        group["cents"] += int(round(event["amount"] * 100))
    return {key: {"window_start": bp.format_ts(g["start"]), "window_end": bp.format_ts(g["start"] + window_ms),
                  "event_type": g["type"], "events": g["n"], "users": len(g["users"]),
                  "amount": g["cents"] / 100.0}
            for key, g in groups.items()}


def daily_totals(events):
    """{_id: document} of the batch pipeline, computed from the events in Python."""
    groups = {}
    for event in events:
        day = event["ts"][:10]
        group = groups.setdefault((day, event["event_type"]), {"n": 0, "users": set(), "cents": 0})
        group["n"] += 1
        group["users"].add(event["user_id"])
        group["cents"] += int(round(event["amount"] * 100))
    return {"%s-%s" % key: {"day": key[0], "event_type": key[1], "events": g["n"],
                            "users": len(g["users"]), "amount": g["cents"] / 100.0}
            for key, g in groups.items()}


def same_totals(actual, expected):
    """[differences] between documents; amounts equal to the cent (float sums vs exact cents)."""
    problems = []
    for key in sorted(set(actual) | set(expected)):
        got, want = actual.get(key), expected.get(key)
        if got is None or want is None:
            problems.append("%s: got %s, expected %s" % (key, got, want))
            continue
        for field, value in want.items():
            if field == "amount":
                if abs(got.get(field, float("nan")) - value) > 0.001:
                    problems.append("%s.amount: got %s, expected %s" % (key, got.get(field), value))
            elif got.get(field) != value:
                problems.append("%s.%s: got %r, expected %r" % (key, field, got.get(field), value))
    return problems


# --------------------------------------------------------------------------- Elasticsearch stand-in

class BulkRejected(Exception):
    """A request the real bulk API answers with 400: (ES error type, reason)."""


_INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')
_ACTIONS = ("create", "delete", "index", "update")
_ACTION_META = {"_index", "_id"}  # the only metadata the stand-in understands


def _index_problem(name):
    if (not name or name != name.lower() or name[0] in "_-+" or set(name) & _INDEX_FORBIDDEN
            or name in (".", "..") or len(name.encode()) > 255):
        return "Invalid index name [%s]" % name
    return None


def parse_bulk_body(body, path_index=None):
    """[(action, index, _id, source or None)] of an NDJSON bulk body, checked as the bulk API
    documents it; anything else raises BulkRejected with the error Elasticsearch would give.

    Format: pairs of lines, an action line ({"index"|"create"|"update"|"delete": {metadata}}) then,
    except for delete, a source line; every line, the last too, ends with a newline.
    """
    if not body:
        raise BulkRejected("action_request_validation_exception", "Validation Failed: 1: no requests added;")
    if not body.endswith(b"\n"):
        raise BulkRejected("illegal_argument_exception",
                           "The bulk request must be terminated by a newline [\\n]")
    try:
        lines = body[:-1].decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise BulkRejected("parse_exception", "the body is not UTF-8")
    items = []
    number = 0
    while number < len(lines):
        line = lines[number]
        try:
            action_line = json.loads(line)
        except ValueError:
            raise BulkRejected("x_content_parse_exception", "[%d:1] malformed action/metadata line: %r"
                               % (number + 1, line[:200]))
        if not isinstance(action_line, dict) or len(action_line) != 1:
            raise BulkRejected("illegal_argument_exception",
                               "Malformed action/metadata line [%d], expected a simple value for field "
                               "[%s] but found [START_OBJECT]" % (number + 1, line[:200]))
        action, meta = next(iter(action_line.items()))
        if action not in _ACTIONS:
            raise BulkRejected("illegal_argument_exception",
                               "Malformed action/metadata line [%d], expected one of [create, delete, "
                               "index, update] but found [%s]" % (number + 1, action))
        if not isinstance(meta, dict):
            raise BulkRejected("illegal_argument_exception",
                               "Malformed action/metadata line [%d]: metadata is not an object" % (number + 1))
        unknown = set(meta) - _ACTION_META
        if unknown:
            raise BulkRejected("illegal_argument_exception",
                               "Action/metadata line [%d] contains %s, which this stand-in does not "
                               "implement" % (number + 1, sorted(unknown)))
        index = meta.get("_index", path_index)
        if index is None:
            raise BulkRejected("action_request_validation_exception", "Validation Failed: 1: index is missing;")
        problem = _index_problem(index)
        if problem:
            raise BulkRejected("invalid_index_name_exception", problem)
        doc_id = meta.get("_id")
        if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id.encode()) > 512):
            raise BulkRejected("illegal_argument_exception", "id [%r] is not a string of 1 to 512 bytes" % doc_id)
        if action in ("update", "delete") and doc_id is None:
            raise BulkRejected("action_request_validation_exception", "Validation Failed: 1: id is missing;")
        source = None
        if action != "delete":
            number += 1
            if number >= len(lines):
                raise BulkRejected("illegal_argument_exception",
                                   "The bulk request must be terminated by a newline [\\n]"
                                   if not lines[-1] else "action line [%d] has no source line" % number)
            try:
                source = json.loads(lines[number])
            except ValueError:
                raise BulkRejected("mapper_parsing_exception", "failed to parse source line [%d]" % (number + 1))
            if not isinstance(source, dict):
                raise BulkRejected("mapper_parsing_exception",
                                   "source line [%d] is not a JSON object" % (number + 1))
        items.append((action, index, doc_id, source))
        number += 1
    return items


class EsStandIn:
    """A stand-in for Elasticsearch: just the HTTP API the pipelines' sink and these tests use.

    Elasticsearch itself cannot run on the machine these tests were written on: no Elasticsearch
    distribution is served by the package registries it can reach (PyPI, Maven Central, npm, the
    Go proxy, Debian), and there is no Docker. So this server implements, and only implements:

    * POST /_bulk and POST /<index>/_bulk with an NDJSON body (index, create, update with
      doc / doc_as_upsert, delete; metadata _index and _id), validated strictly as the bulk API
      documents it: Content-Type application/x-ndjson (406 otherwise, as Elasticsearch answers a
      type it does not take), action line then source line, newline-terminated body, valid index
      names; per-item results (created/updated 201/200, version conflicts) in the response;
    * GET /<index>/_count, GET /<index>/_doc/<id>, GET /<index>/_search (match-all only; `size`
      as in Elasticsearch, default 10);
    * basic authentication when `credentials` is given; TLS when `tls` (cert file, key file) is.

    Everything else answers 400 `stand-in does not implement`. Documents live in memory, with no
    mapping, analysis or refresh delay. What passes here is the request format and the sink's
    logic; the real cluster's behaviour (mappings from the index templates, refresh, shards) is
    not tested by it.

    `writes` records every bulk item (time, action, index, _id, source), `requests` every request
    (method, path, Content-Type); `reject` (callable (index, id, source) -> reason or None) makes
    the stand-in fail items like a mapping error would; `unavailable` = n answers the next n bulk
    requests with 503, as an overloaded or recovering cluster does; `hold_after` = n stores the
    items of every bulk request after the n-th but answers none of them until `release` is set
    (`holding` is set meanwhile): a client that dies then has written documents without knowing.
    Bulk requests are numbered from 1 (`request` in `writes`).
    """

    def __init__(self, credentials=None, tls=None, reject=None):
        self.credentials = credentials
        self.reject = reject
        self.unavailable = 0
        self.hold_after = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.bulk_requests = 0
        self.indices = {}          # index -> {_id: {"_source": ..., "_version": n}}
        self.writes = []
        self.requests = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: the tests look at `requests`
                pass

            def do_GET(self):
                stand_in._handle(self, "GET")

            def do_POST(self):
                stand_in._handle(self, "POST")

            def do_PUT(self):
                stand_in._handle(self, "PUT")

            def do_DELETE(self):
                stand_in._handle(self, "DELETE")

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = "%s://%s:%d" % (scheme, "localhost" if tls else LOOPBACK, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- reading (what a client sees, through HTTP)

    def get(self, path):
        """(status, JSON body) of GET <path> on the stand-in, as a client sees it."""
        request = urllib.request.Request(self.url + path, headers=self._auth_header())
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def count(self, index):
        status, body = self.get("/%s/_count" % index)
        return body["count"] if status == 200 else None

    def documents(self, index):
        """{_id: source} of every document of `index` (a match-all search), {} if there is none."""
        status, body = self.get("/%s/_search?size=10000" % index)
        if status == 404:
            return {}
        assert status == 200, body
        hits = body["hits"]["hits"]
        ids = [hit["_id"] for hit in hits]
        assert len(ids) == len(set(ids)), "a document id appears twice: %s" % ids
        return {hit["_id"]: hit["_source"] for hit in hits}

    def _auth_header(self):
        if not self.credentials:
            return {}
        token = base64.b64encode(("%s:%s" % self.credentials).encode()).decode()
        return {"Authorization": "Basic " + token}

    # -- serving

    def _reply(self, handler, status, body):
        data = json.dumps(body).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        if status == 401:
            handler.send_header("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"')
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client is gone (a test killed it while the request was held)

    @staticmethod
    def _error(error_type, reason, status):
        return status, {"error": {"root_cause": [{"type": error_type, "reason": reason}],
                                  "type": error_type, "reason": reason}, "status": status}

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        content_type = handler.headers.get("Content-Type")
        with self.lock:
            self.requests.append({"method": method, "path": handler.path, "content_type": content_type,
                                  "bytes": len(body)})
        if self.credentials and handler.headers.get("Authorization") != self._auth_header()["Authorization"]:
            status, reply = self._error("security_exception", "unable to authenticate user for REST request "
                                        "[%s]" % parts.path, 401)
            return self._reply(handler, status, reply)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = parse_qs(parts.query)
        try:
            status, reply = self._route(method, segments, query, body, content_type)
        except BulkRejected as exc:
            status, reply = self._error(exc.args[0], exc.args[1], 400)
        self._reply(handler, status, reply)

    def _route(self, method, segments, query, body, content_type):
        if method == "POST" and segments and segments[-1] == "_bulk" and len(segments) <= 2:
            media = (content_type or "").split(";")[0].strip().lower()
            if media != "application/x-ndjson":
                return 406, {"error": "Content-Type header [%s] is not supported" % content_type,
                             "status": 406}
            with self.lock:
                if self.unavailable > 0:
                    self.unavailable -= 1
                    return self._error("unavailable_shards_exception", "stand-in told to be unavailable", 503)
            reply = self._bulk(parse_bulk_body(body, segments[0] if len(segments) == 2 else None))
            if self.hold_after is not None and self.bulk_requests > self.hold_after:
                self.holding.set()
                self.release.wait(600)
            return 200, reply
        if method == "GET" and len(segments) == 2 and segments[1] in ("_count", "_search"):
            index = segments[0]
            with self.lock:
                docs = self.indices.get(index)
                if docs is None:
                    return self._error("index_not_found_exception", "no such index [%s]" % index, 404)
                if body and json.loads(body).get("query", {"match_all": {}}) != {"match_all": {}}:
                    raise BulkRejected("illegal_argument_exception", "stand-in does not implement queries")
                if segments[1] == "_count":
                    return 200, {"count": len(docs), "_shards": {"total": 1, "successful": 1, "failed": 0}}
                size = int(query.get("size", ["10"])[0])
                hits = [{"_index": index, "_id": doc_id, "_score": 1.0, "_source": doc["_source"]}
                        for doc_id, doc in sorted(docs.items())][:size]
                return 200, {"hits": {"total": {"value": len(docs), "relation": "eq"}, "hits": hits}}
        if method == "GET" and len(segments) == 3 and segments[1] == "_doc":
            index, doc_id = segments[0], segments[2]
            with self.lock:
                doc = self.indices.get(index, {}).get(doc_id)
            if index not in self.indices:
                return self._error("index_not_found_exception", "no such index [%s]" % index, 404)
            if doc is None:
                return 404, {"_index": index, "_id": doc_id, "found": False}
            return 200, {"_index": index, "_id": doc_id, "_version": doc["_version"], "found": True,
                         "_source": doc["_source"]}
        raise BulkRejected("illegal_argument_exception",
                           "stand-in does not implement %s /%s" % (method, "/".join(segments)))

    def _bulk(self, items):
        started = time.monotonic()
        results = []
        with self.lock:
            self.bulk_requests += 1
            now = time.time()
            for action, index, doc_id, source in items:
                results.append({action: self._apply(action, index, doc_id, source)})
                self.writes.append({"time": now, "action": action, "index": index, "_id": doc_id,
                                    "source": source, "status": results[-1][action]["status"],
                                    "request": self.bulk_requests})
        errors = any("error" in next(iter(r.values())) for r in results)
        return {"took": int((time.monotonic() - started) * 1000), "errors": errors, "items": results}

    def _apply(self, action, index, doc_id, source):
        docs = self.indices.setdefault(index, {})
        if doc_id is None:
            doc_id = "auto-%d" % len(self.writes)
        result = {"_index": index, "_id": doc_id}
        reason = self.reject(index, doc_id, source) if self.reject and source is not None else None
        if reason:
            result.update(status=400, error={"type": "document_parsing_exception", "reason": reason})
            return result
        existing = docs.get(doc_id)
        if action == "delete":
            if existing is None:
                result.update(status=404, result="not_found")
            else:
                del docs[doc_id]
                result.update(status=200, result="deleted", _version=existing["_version"] + 1)
            return result
        if action == "create" and existing is not None:
            result.update(status=409, error={
                "type": "version_conflict_engine_exception",
                "reason": "[%s]: version conflict, document already exists" % doc_id})
            return result
        if action == "update":
            if "doc" not in source or not isinstance(source["doc"], dict):
                result.update(status=400, error={"type": "action_request_validation_exception",
                                                 "reason": "stand-in implements only partial doc updates"})
                return result
            if existing is None and not source.get("doc_as_upsert"):
                result.update(status=404, error={"type": "document_missing_exception",
                                                 "reason": "[%s]: document missing" % doc_id})
                return result
            source = dict(existing["_source"] if existing else {}, **source["doc"])
        version = existing["_version"] + 1 if existing else 1
        docs[doc_id] = {"_source": source, "_version": version}
        result.update(status=200 if existing else 201, result="updated" if existing else "created",
                      _version=version)
        return result


# --------------------------------------------------------------------------- benchmark

def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure_streaming(bootstrap, work_dir, topic="events", backlog=30000, rate=200, seconds=60,
                      trigger="1 second", keys=100, skew=1.1, seed=1):
    """Throughput and latency of events_stream.py in local mode against a running Kafka.

    bootstrap  Kafka bootstrap servers reachable from this machine (the dev EXTERNAL listener)
    topic      an existing topic; the measurement uses its own seeds, so earlier data in the topic
               only adds to the backlog phase

    1. Throughput: `backlog` events are produced first (events_generator.py at full speed, event
       times spread over one hour), then the stream starts from the earliest offset with its
       micro-batches capped at 10000 records; throughput = events read / the summed duration
       (Spark's triggerExecution: read, aggregate, state commit, bulk writes, offset commit) of
       the batches that read them; also without the first batch, which includes JVM warm-up.
    2. Latency: with the stream caught up, events_generator.py produces `rate` events/s for
       `seconds` s with wall-clock event times. An event counts as visible at the first bulk write
       of its window's document whose `events` reaches the number of events of that window and type
       produced up to and including it; latency = that write's time - the event's time (both on
       this machine's clock). Ordering across partitions makes this exact only to within one
       micro-batch.

    Returns a dict of the numbers and the settings.
    """
    os.makedirs(work_dir, exist_ok=True)
    es = EsStandIn()
    apps = SparkApps(work_dir, kafka=True, jvm_options="-XX:+UseParallelGC")
    result = {"backlog": backlog, "rate": rate, "seconds": seconds, "trigger": trigger}
    try:
        backlog_seed, live_seed = seed, seed + 1
        started = time.monotonic()
        apps.run("events_generator.py", ["--bootstrap-servers", bootstrap, "--topic", topic,
                                         "--count", backlog, "--rate", 1000000, "--seed", backlog_seed,
                                         "--keys", keys, "--skew", skew,
                                         "--start-time", "2026-01-01T00:00:00Z",
                                         "--time-step", 3600.0 / max(backlog, 1)], "bench-backlog")
        result["backlog_produce_s"] = round(time.monotonic() - started, 1)
        checkpoint = "file://" + os.path.join(work_dir, "checkpoint")
        stream = apps.start("events_stream.py", [
            "--bootstrap-servers", bootstrap, "--topic", topic, "--checkpoint", checkpoint,
            "--es-url", es.url, "--trigger", trigger, "--watermark", "1 minute",
            "--max-offsets-per-trigger", 10000], "bench-stream", conf={"spark.sql.shuffle.partitions": "2"})
        try:
            def caught_up():
                batches = [p for p in progress_events(read_text(stream.log_path)) if p["numInputRows"] > 0]
                total = sum(p["numInputRows"] for p in batches)
                return total >= backlog and batches
            batches = wait_until(caught_up, "the stream to read the %d backlog events" % backlog, 900,
                                 daemons=[stream], interval=1)
            rows = sum(p["numInputRows"] for p in batches)
            busy_ms = sum(p["durationMs"].get("triggerExecution", 0) for p in batches)
            result["throughput_batches"] = len(batches)
            result["throughput_events_per_s"] = round(rows * 1000.0 / busy_ms, 1) if busy_ms else None
            warm = batches[1:]
            warm_ms = sum(p["durationMs"].get("triggerExecution", 0) for p in warm)
            result["throughput_events_per_s_after_first_batch"] = (
                round(sum(p["numInputRows"] for p in warm) * 1000.0 / warm_ms, 1) if warm_ms else None)

            live_start = time.time()
            apps.run("events_generator.py", ["--bootstrap-servers", bootstrap, "--topic", topic,
                                             "--count", int(rate * seconds), "--rate", rate,
                                             "--seed", live_seed, "--keys", keys, "--skew", skew],
                     "bench-live", timeout=seconds + 600)
            live_events = sent_events(read_text(apps.log_path("bench-live")), live_seed, keys, skew)
            assert len(live_events) == int(rate * seconds), "the generator logged %d of %d events" % (
                len(live_events), int(rate * seconds))
            result["live_produce_s"] = round(time.time() - live_start, 1)

            def all_visible():
                with es.lock:
                    writes = list(es.writes)
                latencies = visibility_latencies(live_events, writes)
                return latencies if len(latencies) == len(live_events) else None
            latencies = wait_until(all_visible, "every live event visible in the stand-in", 300,
                                   daemons=[stream], interval=1)
        finally:
            stream.stop()
        result["latency_events"] = len(latencies)
        result["latency_p50_s"] = round(_percentile(latencies, 0.50), 2)
        result["latency_p95_s"] = round(_percentile(latencies, 0.95), 2)
        result["latency_max_s"] = round(max(latencies), 2)
        result["latency_mean_s"] = round(statistics.mean(latencies), 2)
        return result
    finally:
        es.close()


_SENT = re.compile(r"^\S+ sent events (\d+)\.\.(\d+), event time (\S+)\s*$")


def sent_events(generator_log, seed, keys, skew):
    """The events an events_generator.py run sent, rebuilt from its log: each `sent events a..b,
    event time T` line names a write; without --start-time every event of it carries time T, and
    event n of a seed is always the same event apart from its time."""
    generator = bp.EventGenerator(seed, keys, skew)
    events = []
    for match in map(_SENT.match, generator_log.splitlines()):
        if match:
            first, last, ts = int(match.group(1)), int(match.group(2)), bp.parse_instant(match.group(3))
            events += [generator.event(n, ts) for n in range(first, last + 1)]
    return events


def visibility_latencies(events, writes, window_ms=60000):
    """Seconds from each event's time to the first bulk write that makes it visible (see
    measure_streaming); events not yet visible are left out."""
    counts = {}
    needed = []
    for event in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        ts = bp.parse_instant(event["ts"])
        doc_id = "%s-%d" % (event["event_type"], ts - ts % window_ms)
        counts[doc_id] = counts.get(doc_id, 0) + 1
        needed.append((doc_id, counts[doc_id], ts / 1000.0))
    history = {}
    for write in writes:
        if write["action"] == "index" and write["status"] in (200, 201):
            history.setdefault(write["_id"], []).append((write["time"], write["source"]["events"]))
    latencies = []
    for doc_id, count, ts in needed:
        seen = next((t for t, n in history.get(doc_id, []) if n >= count), None)
        if seen is not None:
            latencies.append(seen - ts)
    return latencies
