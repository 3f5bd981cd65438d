"""Spark's side of the stack on real processes: event logs in HDFS and the history server.

The spark role's pods never ran on the simulated cluster (it runs no container). Here the
rendered pods of the spark role run their own commands against a real namenode and datanode booted
from the rendered hdfs role (hdfs_sim.py), with Spark of the pinned release (the pyspark package of
this virtualenv; spark_sim.py says how the image is stood in for):

1. without its log directory, the history server's own command exits (what a real cluster did
   before the stack created the directory: site.yml timed out waiting for it);
2. the history server's init container waits while the directory is missing;
3. the Job spark-hdfs-dirs-<hash> creates it, owned by spark_hdfs_user with mode 1777 (and that user's
   home /user/<user>, where applications keep their data), and the init
   container then lets the pod start;
4. a real Spark application, configured by the rendered spark-defaults.conf, writes its event log
   there as the pinned HDFS user;
5. the history server serves that application on /api/v1/applications.
"""

import json
import os
import subprocess
import sys
import time

from daemon_support import free_ports, wait_until
from hdfs_sim import HdfsCluster
from spark_sim import SPARK_HOME, SparkPods
from test_hdfs_daemons import _read_log, _wait_healthy
from kafka_sim import load_health

APP = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("history-proof").getOrCreate()
total = spark.range(0, 1000, numPartitions=4).groupBy().sum("id").first()[0]
assert total == 499500, total
print("history-proof total", total)
spark.stop()
"""


def _get(url, timeout=10):
    import urllib.request
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return json.loads(response.read().decode("utf-8"))


def _file_status(hdfs, path):
    _location, (status, _headers, body) = hdfs.webhdfs("GET", path, "GETFILESTATUS")
    return status, json.loads(body.decode("utf-8")) if body else {}


def _submit(pods, app_file, log_path):
    """spark-submit of the pinned release, with the rendered spark-defaults.conf.

    Only where and how to run differs from a driver pod: local master in client mode, and the
    ports the role pins for its NetworkPolicies (7078/7079/4040) made free ones, since every
    process here shares 127.0.0.1.
    """
    conf = pods.application_conf()
    props = os.path.join(os.path.dirname(app_file), "spark-defaults.conf")
    with open(props, "w", encoding="utf-8") as handle:
        handle.write("".join("%s %s\n" % item for item in sorted(conf.items())))
    driver_port, block_port = free_ports(2)
    cmd = [os.path.join(SPARK_HOME, "bin", "spark-submit"), "--properties-file", props,
           "--master", "local[2]", "--deploy-mode", "client",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.driver.port=%d" % driver_port,
           "--conf", "spark.driver.blockManager.port=%d" % block_port,
           "--conf", "spark.blockManager.port=%d" % block_port,
           "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=512m", app_file]
    # The driver pod's environment: the user the role pins (spark.kubernetes.driverEnv.*).
    env = dict(pods.env, PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=os.path.dirname(app_file),
               HADOOP_USER_NAME=conf["spark.kubernetes.driverEnv.HADOOP_USER_NAME"])
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=300,
                              check=False, stdin=subprocess.DEVNULL, cwd=os.path.dirname(app_file))
    return proc.returncode, conf


def test_history_server_serves_an_application_whose_event_log_spark_wrote_to_hdfs(
        render, inventory_vars, hadoop_classpath, daemons, tmp_path):
    inv = inventory_vars("dev")
    hdfs = HdfsCluster(render("dev", "hdfs"), inv["bigdata_namespace"], hadoop_classpath,
                       str(tmp_path / "hdfs"))
    pods = SparkPods(render("dev", "spark"), hdfs, str(tmp_path / "spark"))
    conf = pods.application_conf()
    event_dir = conf["spark.eventLog.dir"]
    path = "/" + event_dir.split("://", 1)[1].split("/", 1)[1]
    user = conf["spark.kubernetes.driverEnv.HADOOP_USER_NAME"]
    assert conf["spark.executorEnv.HADOOP_USER_NAME"] == user

    namenode = daemons.add(hdfs.namenode().start())
    datanode = daemons.add(hdfs.datanode(0).start(), new_wave=False)
    _wait_healthy(hdfs, load_health(), 1, [namenode, datanode])
    assert _file_status(hdfs, path)[0] == 404, "the event log directory exists before the Job ran"

    # 1. The history server's own command, before anything created the directory: it exits.
    early = pods.history_server().start(log_name="without-directory.log")
    wait_until(lambda: not early.alive(), "the history server to exit without its log directory", 120,
               interval=1)
    assert early.proc.returncode != 0
    assert "does not exist" in _read_log(early), _read_log(early)[-3000:]

    # 2. The init container of the pod waits instead.
    init = daemons.add(pods.history_server("wait-for-event-log-dir").start(log_name="init.log"))
    wait_until(lambda: "waiting for " + event_dir in _read_log(init),
               "the init container to say it waits for the directory", 120, daemons=[init])
    assert init.alive()

    # 3. The Job's own command creates the directory for the pinned user, sticky and world-writable.
    job = pods.dirs_job().run(timeout=300)
    assert job.returncode == 0, "%s\n%s" % (job.stdout[-3000:], job.stderr[-3000:])
    status, body = _file_status(hdfs, path)
    assert status == 200, body
    assert body["FileStatus"]["type"] == "DIRECTORY"
    assert body["FileStatus"]["owner"] == user and body["FileStatus"]["group"] == user, body
    assert body["FileStatus"]["permission"] == "1777", body
    # The Spark user's home, where applications keep their data (the pipelines' base directory).
    status, home = _file_status(hdfs, "/user/" + user)
    assert status == 200 and home["FileStatus"]["owner"] == user, home
    assert home["FileStatus"]["permission"] == "755", home
    # Idempotent: a second run of the same Job changes nothing and succeeds.
    again = pods.dirs_job().run(timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _file_status(hdfs, path)[1]["FileStatus"]["permission"] == "1777"

    wait_until(lambda: not init.alive(), "the init container to finish once the directory exists",
               120, interval=1)
    assert init.proc.returncode == 0, _read_log(init)[-3000:]

    # 4. A real application writes its event log there.
    app = tmp_path / "app"
    app.mkdir()
    (app / "history_proof.py").write_text(APP, encoding="utf-8")
    rc, _ = _submit(pods, str(app / "history_proof.py"), str(tmp_path / "app.log"))
    with open(tmp_path / "app.log", encoding="utf-8", errors="replace") as handle:
        app_log = handle.read()
    assert rc == 0 and "history-proof total 499500" in app_log, app_log[-4000:]
    _loc, (status, _h, listing) = hdfs.webhdfs("GET", path, "LISTSTATUS")
    logs = json.loads(listing.decode("utf-8"))["FileStatuses"]["FileStatus"]
    assert len(logs) == 1 and logs[0]["owner"] == user, logs

    # 5. The history server pod's own command serves it.
    server = daemons.add(pods.history_server().start())
    started = time.monotonic()

    def listed():
        apps = _get(pods.history_url("/api/v1/applications"))
        return [a for a in apps if a["name"] == "history-proof"]
    found = wait_until(listed, "the history server to list the application", 180,
                       daemons=[server], interval=2)
    attempt = found[0]["attempts"][0]
    assert attempt["completed"] is True and attempt["sparkUser"] == user, found
    jobs = _get(pods.history_url("/api/v1/applications/%s/jobs" % found[0]["id"]))
    assert jobs and all(j["status"] == "SUCCEEDED" for j in jobs), jobs
    sys.stderr.write("history server listed the application %.1f s after it started\n"
                     % (time.monotonic() - started))
