"""Metrics of HDFS and Spark on real processes; the JMX exporter agent's download; the
Elasticsearch exporter's pod against the exporter's documented interface.

The hdfs role's core-site.xml (hadoop.prometheus.endpoint.enabled) and the spark role's
spark-defaults.conf (PrometheusServlet, spark.ui.prometheus.enabled, streaming metrics) are used as
rendered for dev, whose full profile enables the monitoring role. A real Prometheus
(metrics_support.py) scrapes the namenode, the datanode and a running Spark application's driver
with the monitoring role's own scrape jobs; the names it ingests go to
tests/monitoring/scraped/{hdfs,spark}.txt. Kafka's agent is scraped in test_kafka_daemons.py, on
the stage cluster that file boots anyway (tests/monitoring/scraped/kafka.txt).

The kafka role's init container, which fetches the agent's jar, runs here against a mirror on
this machine: one serving the jar, one serving another file. Neither Elasticsearch nor its
exporter can run here (no server on Maven Central; the Go module proxy refuses the exporter):
its rendered Deployment is checked against the flags and environment the exporter documents.
"""

import http.server
import os
import re
import sys
import threading
import time

import pytest
import yaml

import jmx_agent
from daemon_support import DaemonGroup, Daemon, LOOPBACK, find, free_ports, wait_until
from hdfs_sim import HdfsCluster, xml_properties
from kafka_sim import load_health
from metrics_support import Prometheus, prometheus_binary, rendered_jobs, static_job, write_scraped
from spark_sim import SPARK_HOME, SparkPods
from test_hdfs_daemons import _wait_healthy

THIS = "tests/daemons/test_metrics_daemons.py"


@pytest.fixture(scope="module")
def dev_hdfs(render, inventory_vars, hadoop_classpath, tmp_path_factory):
    """dev's namenode and datanode, booted from the rendered hdfs role, out of safe mode."""
    inv = inventory_vars("dev")
    hdfs = HdfsCluster(render("dev", "hdfs"), inv["bigdata_namespace"], hadoop_classpath,
                       str(tmp_path_factory.mktemp("metrics-hdfs")))
    group = DaemonGroup()
    try:
        namenode = group.add(hdfs.namenode().start())
        datanode = group.add(hdfs.datanode(0).start(), new_wave=False)
        _wait_healthy(hdfs, load_health(), 1, [namenode, datanode])
        yield inv, hdfs, [namenode, datanode]
    finally:
        group.stop_all()


def _pod_labels(workload, pod, namespace):
    """The labels the monitoring role's relabelling gives a scraped pod."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return {"namespace": namespace, "pod": pod, "component": labels.get("app.kubernetes.io/component", "")}


def _missing(names, wanted):
    return sorted(set(wanted) - set(names))


# What an HDFS operator looks at first (the monitoring role's hdfs alerts and dashboard).
NAMENODE_METRICS = ["fs_namesystem_capacity_total", "fs_namesystem_capacity_remaining",
                    "fs_namesystem_capacity_used", "fs_namesystem_num_live_data_nodes",
                    "fs_namesystem_num_dead_data_nodes", "fs_namesystem_missing_blocks",
                    "fs_namesystem_under_replicated_blocks", "jvm_metrics_mem_heap_used_m"]
DATANODE_METRICS = ["jvm_metrics_mem_heap_used_m"]


def test_hdfs_namenode_and_datanode_serve_prom_to_prometheus(dev_hdfs, render, daemons, tmp_path):
    inv, hdfs, hdfs_daemons = dev_hdfs
    core_site = xml_properties(hdfs.config["core-site.xml"])
    assert core_site.get("hadoop.prometheus.endpoint.enabled") == "true", core_site

    jobs = rendered_jobs(render("dev", "monitoring"))
    namespace = inv["bigdata_namespace"]
    scrape = [
        static_job(jobs["hdfs-namenode"], [("%s:%d" % (LOOPBACK, hdfs.namenode_ports["http"]),
                                           _pod_labels(hdfs.namenode_sts, "hdfs-namenode-0", namespace))]),
        static_job(jobs["hdfs-datanode"], [("%s:%d" % (LOOPBACK, hdfs.datanode_ports[0]["http"]),
                                           _pod_labels(hdfs.datanode_sts, "hdfs-datanode-0", namespace))]),
    ]
    # The role's own ports are named http: the jobs scrape /prom on that port.
    for sts in (hdfs.namenode_sts, hdfs.datanode_sts):
        ports = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert "http" in [p["name"] for p in ports], ports
    prometheus = Prometheus(prometheus_binary(), str(tmp_path / "prometheus"), scrape, daemons)
    prometheus.wait_all_scraped(180, daemons=hdfs_daemons)

    # Hadoop's sink publishes a record once the metrics system has taken its first snapshot
    # (period 10 s): wait for the names, not only for a successful scrape.
    state = {}

    def complete():
        state["namenode"] = prometheus.names("hdfs-namenode")
        state["datanode"] = prometheus.names("hdfs-datanode")
        return not _missing(state["namenode"], NAMENODE_METRICS) and not _missing(state["datanode"], DATANODE_METRICS)
    try:
        wait_until(complete, "the namenode's and the datanode's key metrics in Prometheus", 90,
                   daemons=hdfs_daemons + [prometheus.daemon], interval=2)
    except AssertionError as exc:
        raise AssertionError("%s\nmissing on the namenode: %s, on the datanode: %s" % (
            exc, _missing(state.get("namenode", []), NAMENODE_METRICS),
            _missing(state.get("datanode", []), DATANODE_METRICS)))
    live = prometheus.query('last_over_time(fs_namesystem_num_live_data_nodes{job="hdfs-namenode"}[1m])')
    assert [value for _labels, value in live] == [1.0], live
    assert all(labels["pod"] == "hdfs-namenode-0" and labels["component"] == "namenode"
               and labels["namespace"] == namespace for labels, _value in live), live
    missing = prometheus.query('last_over_time(fs_namesystem_missing_blocks{job="hdfs-namenode"}[1m])')
    assert [value for _labels, value in missing] == [0.0], missing
    capacity = prometheus.query('last_over_time(fs_namesystem_capacity_total{job="hdfs-namenode"}[1m])')
    assert capacity and all(value > 0 for _labels, value in capacity), capacity
    write_scraped("hdfs", state["namenode"] + state["datanode"],
                  THIS + "::test_hdfs_namenode_and_datanode_serve_prom_to_prometheus")


# A streaming query like the sample pipeline's (event-time window, watermark) on Spark's rate
# source, so that its metrics source exists; it runs until the test has scraped it.
STREAMING_APP = """\
import os, sys, time
from pyspark.sql import SparkSession
from pyspark.sql.functions import window

ready, stop = sys.argv[1], sys.argv[2]
# Two shuffle partitions instead of 200: the windowed count is tiny, and local[2] runs every state
# store partition of every micro-batch as a task.
spark = SparkSession.builder.appName("metrics-probe").config("spark.sql.shuffle.partitions", "2").getOrCreate()
events = spark.readStream.format("rate").option("rowsPerSecond", 20).load()
query = (events.withWatermark("timestamp", "5 seconds")
         .groupBy(window("timestamp", "5 seconds")).count()
         .writeStream.queryName("events_per_window").outputMode("update").format("noop")
         .trigger(processingTime="1 second").start())
deadline = time.time() + 240
while time.time() < deadline and not os.path.exists(stop):
    progress = query.recentProgress
    if len([p for p in progress if p["numInputRows"] > 0]) >= 2 and not os.path.exists(ready):
        with open(ready, "w") as handle:
            handle.write(spark.sparkContext.uiWebUrl or "")
    time.sleep(0.5)
query.stop()
spark.stop()
"""

# The driver's own metrics (metrics_<spark.metrics.namespace>_driver_...): the JVM, the
# scheduler, the application status and the streaming query, whatever the application's name.
DRIVER_PATTERNS = [r"metrics_.+_driver_jvm_heap_used_Value",
                   r"metrics_.+_driver_DAGScheduler_stage_runningStages_Value",
                   r"metrics_.+_driver_appStatus_jobs_succeededJobs_Count",
                   r"metrics_.+_driver_spark_streaming_events_per_window_inputRate_total_Value",
                   r"metrics_.+_driver_spark_streaming_events_per_window_processingRate_total_Value",
                   r"metrics_.+_driver_spark_streaming_events_per_window_latency_Value",
                   r"metrics_.+_driver_spark_streaming_events_per_window_eventTime_watermark_Value"]
EXECUTOR_METRICS = ["metrics_executor_activeTasks", "metrics_executor_memoryUsed_bytes",
                    "metrics_executor_maxMemory_bytes", "metrics_executor_totalGCTime_seconds_total",
                    "metrics_executor_failedTasks_total", "metrics_executor_JVMHeapMemory_bytes"]


def test_spark_driver_serves_its_and_its_executors_metrics_to_prometheus(dev_hdfs, render, daemons, tmp_path):
    inv, hdfs, hdfs_daemons = dev_hdfs
    spark_docs = render("dev", "spark")
    pods = SparkPods(spark_docs, hdfs, str(tmp_path / "spark"))
    conf = pods.application_conf()
    assert conf.get("spark.ui.prometheus.enabled") == "true", conf
    assert conf.get("spark.metrics.conf.*.sink.prometheusServlet.path") == "/metrics/prometheus", conf
    assert conf.get("spark.sql.streaming.metricsEnabled") == "true", conf
    # The event log directory the application writes to: the spark role's Job makes it.
    job = pods.dirs_job().run(timeout=300)
    assert job.returncode == 0, "%s\n%s" % (job.stdout[-3000:], job.stderr[-3000:])

    work = tmp_path / "app"
    work.mkdir()
    (work / "metrics_probe.py").write_text(STREAMING_APP, encoding="utf-8")
    props = work / "spark-defaults.conf"
    props.write_text("".join("%s %s\n" % item for item in sorted(conf.items())), encoding="utf-8")
    ui_port, driver_port, block_port = free_ports(3)
    ready, stop = str(work / "ready"), str(work / "stop")
    # As in a driver pod, with the rendered spark-defaults.conf; only where it runs differs (local
    # master, client mode) and the pinned ports (4040, 7078, 7079) become free ones, every process
    # here sharing 127.0.0.1 (spark_sim.py, docs/daemons.md).
    cmd = [os.path.join(SPARK_HOME, "bin", "spark-submit"), "--properties-file", str(props),
           "--master", "local[2]", "--deploy-mode", "client",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.driver.port=%d" % driver_port, "--conf", "spark.ui.port=%d" % ui_port,
           "--conf", "spark.driver.blockManager.port=%d" % block_port,
           "--conf", "spark.blockManager.port=%d" % block_port,
           "--conf", "spark.driver.memory=512m", str(work / "metrics_probe.py"), ready, stop]
    env = dict(pods.env, PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=str(work),
               HADOOP_USER_NAME=conf["spark.kubernetes.driverEnv.HADOOP_USER_NAME"])
    # Spark labels a driver pod spark-role=driver and names its UI port spark-ui; the monitoring
    # role's jobs select it so. The pod template gives the component label.
    driver_template = yaml.safe_load(find(spark_docs, "ConfigMap", "spark-pod-templates")["data"]["driver.yaml"])
    labels = {"namespace": inv["bigdata_namespace"], "pod": "metrics-probe-driver",
              "component": driver_template["metadata"]["labels"]["app.kubernetes.io/component"]}
    jobs = rendered_jobs(render("dev", "monitoring"))
    address = "%s:%d" % (LOOPBACK, ui_port)
    scrape = [static_job(jobs["spark-driver"], [(address, labels)]),
              static_job(jobs["spark-executors"], [(address, labels)])]

    started = time.monotonic()
    driver = daemons.add(Daemon("spark-driver", cmd, str(tmp_path / "driver.log"), env=env, cwd=str(work)))
    try:
        # Prometheus starts with the driver and scrapes it from the moment its UI answers.
        prometheus = Prometheus(prometheus_binary(), str(tmp_path / "prometheus"), scrape, daemons)
        wait_until(lambda: os.path.exists(ready), "the streaming query to process two batches", 240,
                   daemons=[driver, prometheus.daemon] + hdfs_daemons, interval=1)
        sys.stderr.write("streaming query running %.1f s after spark-submit\n" % (time.monotonic() - started))
        prometheus.wait_all_scraped(180, daemons=[driver])
        state = {}

        def complete():
            state["driver"] = prometheus.names("spark-driver")
            state["executors"] = prometheus.names("spark-executors")
            state["missing"] = [p for p in DRIVER_PATTERNS if not any(re.fullmatch(p, n) for n in state["driver"])] \
                + _missing(state["executors"], EXECUTOR_METRICS)
            return not state["missing"]
        try:
            wait_until(complete, "the driver's and the executors' key metrics in Prometheus", 60,
                       daemons=[driver, prometheus.daemon], interval=2)
        except AssertionError as exc:
            raise AssertionError("%s\nmissing: %s\ndriver names: %s" % (
                exc, state.get("missing"), state.get("driver")))
        # spark.metrics.namespace is the application's name, so the names do not change per run.
        assert any(n.startswith("metrics_metrics_probe_driver_") for n in state["driver"]), state["driver"]
        # The gauge is the rate of the last micro-batch: 0 in a scrape taken before the first batch
        # with rows, or between two. Some scrape of the last minute must show rows coming in.
        def input_rate():
            state["rate"] = prometheus.query('max_over_time({__name__=~"metrics_.+_driver_spark_streaming_'
                                             'events_per_window_inputRate_total_Value"}[1m])')
            return bool(state["rate"]) and all(value > 0 for _labels, value in state["rate"])
        try:
            wait_until(input_rate, "an input rate above 0 in Prometheus", 60,
                       daemons=[driver, prometheus.daemon], interval=2)
        except AssertionError as exc:
            raise AssertionError("%s\nlast answer: %s" % (exc, state.get("rate")))
        sys.stderr.write("driver and executors metrics in Prometheus %.1f s after spark-submit\n"
                         % (time.monotonic() - started))
        write_scraped("spark", state["driver"] + state["executors"],
                      THIS + "::test_spark_driver_serves_its_and_its_executors_metrics_to_prometheus")
    finally:
        open(stop, "w").close()
    wait_until(lambda: not driver.alive(), "the application to stop", 120, interval=1)
    sys.stderr.write("application stopped %.1f s after spark-submit\n" % (time.monotonic() - started))
    with open(tmp_path / "driver.log", encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert driver.proc.returncode == 0, log[-4000:]


# The command-line interface of prometheus-community/elasticsearch_exporter v1.11.0, which the
# pod's args must keep to: its main.go (kingpin.Flag: web.telemetry-path ... config.file), its
# collector/collector.go (registerCollector: collector.<name> and collector.no-<name>), the
# exporter-toolkit web flags it adds (web.listen-address, default :9114; web.config.file;
# web.systemd-socket), kingpin's log flags; README "Configuration". The binary itself cannot be
# built here: the Go module proxy refuses this module ("This module version is not available").
EXPORTER_VERSION = "v1.11.0"
EXPORTER_FLAGS = {
    "web.telemetry-path", "es.uri", "es.timeout", "es.all", "es.node", "es.indices", "es.indices_settings",
    "es.indices_mappings", "es.aliases", "es.shards", "es.clusterinfo.interval", "es.ca",
    "es.client-private-key", "es.client-cert", "es.ssl-skip-verify", "log.output", "log.level", "log.format",
    "aws.region", "aws.role-arn", "config.file", "web.listen-address", "web.config.file", "web.systemd-socket",
} | {"collector.%s" % c for c in ("cluster-info", "clustersettings", "data-stream", "health-report", "ilm",
                                   "slm", "snapshots", "tasks")}
# README, "Elasticsearch 7.x security privileges": the user and password, read by main.go.
EXPORTER_ENV = {"ES_USERNAME", "ES_PASSWORD"}


@pytest.mark.parametrize("env", ["dev", "stage"])
def test_elasticsearch_exporter_pod_keeps_to_the_exporters_documented_interface(env, render, inventory_vars):
    """Elasticsearch cannot run here, nor can the exporter be built: its pod spec is checked against
    the exporter's documented flags and environment, and against what the monitoring role scrapes."""
    inv = inventory_vars(env)
    docs = render(env, "elasticsearch")
    deployment = find(docs, "Deployment", "elasticsearch-exporter")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":" + EXPORTER_VERSION), (
        "the exporter image is %s: check its main.go and README for changed flags, then update "
        "EXPORTER_VERSION and EXPORTER_FLAGS here" % container["image"])
    assert "command" not in container, "the image's ENTRYPOINT is the exporter; args are its flags"
    flags = {}
    for arg in container["args"]:
        match = re.fullmatch(r"--([a-z0-9._-]+)(?:=(.*))?", arg)
        assert match, "%r is not a --flag[=value] argument" % arg
        flags[match.group(1)] = match.group(2)
    assert set(flags) <= EXPORTER_FLAGS, "flags the exporter %s does not have: %s" % (
        EXPORTER_VERSION, sorted(set(flags) - EXPORTER_FLAGS))
    env_names = {e["name"] for e in container.get("env", [])}
    assert env_names == EXPORTER_ENV, env_names
    for entry in container["env"]:
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["key"] == {"ES_USERNAME": "username", "ES_PASSWORD": "password"}[entry["name"]], entry

    # Where it asks: the elasticsearch Service the role renders, https with TLS on, and the CA
    # file given to --es.ca is the ca.crt of the mounted HTTP certificate Secret.
    tls = inv["bigdata_tls_enabled"]
    service = find(docs, "Service", "elasticsearch")
    assert flags["es.uri"] == "%s://elasticsearch.%s.svc:%d" % (
        "https" if tls else "http", inv["bigdata_namespace"], service["spec"]["ports"][0]["port"]), flags
    assert "es.all" in flags and "collector.clustersettings" in flags, flags
    if tls:
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounted = {}
        for mount in container["volumeMounts"]:
            secret = volumes[mount["name"]]["secret"]
            for item in secret["items"]:
                mounted[os.path.join(mount["mountPath"], item["path"])] = (secret["secretName"], item["key"])
        assert mounted.get(flags["es.ca"]) == (inv.get("elasticsearch_http_tls_secret", "elasticsearch-http-tls"),
                                               "ca.crt"), (flags["es.ca"], mounted)
    else:
        assert "es.ca" not in flags and "volumeMounts" not in container, container

    # What the monitoring role scrapes: port `metrics` at the exporter's telemetry path, and the
    # pods it selects; readiness asks /healthz, which main.go serves, and liveness is the same port
    # (tcpSocket: kube-score refuses a liveness probe identical to the readiness probe).
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert flags["web.listen-address"] == ":%d" % ports["metrics"], (flags, ports)
    job = next(j for j in rendered_jobs(render(env, "monitoring")).values() if j["job_name"] == "elasticsearch")
    assert job["metrics_path"] == flags.get("web.telemetry-path", "/metrics"), job
    selected = {r["regex"].replace("\\", "") for r in job["relabel_configs"] if r.get("action") == "keep"}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "metrics" in selected and pod_labels["app.kubernetes.io/name"] in selected, (selected, pod_labels)
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, container
    assert container["livenessProbe"]["tcpSocket"] == {"port": "metrics"}, container


class _Mirror:
    """An HTTP server on 127.0.0.1 serving one file at every path: a stand-in for a Maven mirror."""

    def __init__(self, payload):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = "http://%s:%d/repository/maven-central/jmx_prometheus_javaagent.jar" % self.server.server_address
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_kafka_init_container_takes_the_agent_from_a_mirror_and_refuses_another_file(render, inventory_vars, tmp_path):
    """The init container's own command, with kafka_jmx_exporter_url pointing at a mirror: the
    right jar is installed; a different file (a wrong mirror, a proxy's error page) is refused
    and nothing is left for the JVM to load."""
    inv = inventory_vars("dev")
    statefulset = next(d for d in render("dev", "kafka") if d["kind"] == "StatefulSet")
    env = jmx_agent.init_env(statefulset)
    assert env["JMX_EXPORTER_URL"].startswith("https://repo.maven.apache.org/maven2/io/prometheus/jmx/"), env
    jar = jmx_agent.agent_jar(statefulset, inv["bigdata_namespace"], str(tmp_path / "cache-fill"))
    with open(jar, "rb") as handle:
        good = handle.read()
    middle = len(good) // 2
    tampered = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:]
    for name, payload, expect_ok in (("mirror", good, True), ("tampered", tampered, False)):
        mirror = _Mirror(payload)
        try:
            result, sandbox = jmx_agent.run_init_container(
                statefulset, inv["bigdata_namespace"], str(tmp_path / name),
                extra_env={"JMX_EXPORTER_URL": mirror.url})
        finally:
            mirror.close()
        installed = os.listdir(sandbox.volume(jmx_agent.jar_mount(statefulset)))
        output = result.stdout + result.stderr
        if expect_ok:
            assert result.returncode == 0, output
            assert installed == ["jmx_prometheus_javaagent.jar"], installed
            assert jmx_agent.sha256_of(os.path.join(sandbox.volume(jmx_agent.jar_mount(statefulset)),
                                                    installed[0])) == env["JMX_EXPORTER_SHA256"]
        else:
            assert result.returncode != 0, output
            assert "kafka_jmx_exporter_sha256" in output and env["JMX_EXPORTER_SHA256"] in output, output
            assert installed == [], "the refused file was left in the volume: %s" % installed
    sys.stderr.write("init container: mirror accepted, tampered file refused\n")
