# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Spark runs for real on the simulated cluster: bigdata.stack.spark_submit, the driver, its
executors and the history server as processes of the node agent (apache/spark among its images).

The spark role deploys a namespace under Pod Security `restricted` (driver ServiceAccount and Role,
pod templates, the history server on the claim spark-events). Then spark_submit, as a user's
playbook calls it, submits SparkPi (the image's examples/src/main/python/pi.py) in cluster mode
with the real spark-submit:

* the driver pod's own process (the image's entrypoint: spark-submit in client mode) reaches the
  API server at https://kubernetes.default.svc with its service account's token, creates its
  executor pod, which runs as a process too and registers with the driver from its own pod IP;
  the application computes pi and the module returns the driver's real exit code, 0;
* the history server (a pod of its own, the same claim) lists the application from its event log;
* the same application given a bad argument raises in the driver (ValueError), and the module
  fails with the driver's exit code 1 and its log.

kwok plays no part in these pods: the agent runs them (its own simulated cluster, with apache/spark
only; make up's default stays Kafka and HDFS).
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.request
import uuid

import pytest
from kubernetes import client, config

from helpers import pod_range, run_playbook, simulated_cluster, spark_submit, wait_for

# A range of this module's own: make up's cluster has 10.213, Molecule's 10.212, the runtime test
# 10.214 and 10.215, and they may all run at the same time (another if this machine routes it).
RUNTIME_CIDR = pod_range("10.211.0.0/24", "BIGDATA_TEST_SPARK_RUNTIME_CIDR")
IMAGE = "apache/spark:4.2.0"  # the role's spark_image_tag: the same release as the agent's pyspark
PI = "local:///opt/spark/examples/src/main/python/pi.py"
EVENTS = "file:/opt/spark/events"  # the claim spark-events, mounted there by the role's pod templates


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A simulated cluster whose node agent runs apache/spark, with the spark role in a namespace
    (site.yml, as make up deploys it); yields (kubeconfig, namespace, directory of the pod templates)."""
    with simulated_cluster("rts-" + uuid.uuid4().hex[:6], simcluster_runtime=True,
                           simcluster_runtime_images=["apache/spark"],
                           simcluster_runtime_cidr=str(RUNTIME_CIDR)) as kubeconfig:
        namespace = "spark-" + uuid.uuid4().hex[:8]
        core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=namespace, labels={"pod-security.kubernetes.io/enforce": "restricted",
                                    "pod-security.kubernetes.io/enforce-version": "latest"})))
        deployed = run_playbook("site.yml", "-i", "inventories/dev", "-e", json.dumps(
            {"bigdata_namespace": namespace, "bigdata_instance": namespace, "bigdata_components": ["spark"],
             "bigdata_wait_application_health": False}), kubeconfig=kubeconfig)
        assert deployed.returncode == 0, deployed.report()
        directory = tmp_path_factory.mktemp("spark-runtime")
        templates = core.read_namespaced_config_map("spark-pod-templates", namespace).data
        for name in ("driver.yaml", "executor.yaml"):
            (directory / name).write_text(templates[name])
        yield kubeconfig, namespace, directory


def submit(spark_cluster, name, args, tmp_path):
    """spark_submit of pi.py with `args`, waiting for the driver; the module's result."""
    kubeconfig, namespace, directory = spark_cluster
    options = {"name": name, "namespace": namespace, "image": IMAGE, "image_pull_policy": "IfNotPresent",
               "service_account": "spark-driver", "application": PI, "application_args": args,
               "driver_memory": "512m", "executor_instances": 1, "executor_memory": "512m",
               "driver_pod_template": str(directory / "driver.yaml"),
               "executor_pod_template": str(directory / "executor.yaml"), "event_log_dir": EVENTS,
               # Small requests: the simulated nodes are shared with the rest of the tests.
               "conf": {"spark.kubernetes.driver.request.cores": "250m",
                        "spark.kubernetes.executor.request.cores": "250m"},
               "wait": True, "wait_timeout": 420, "log_tail_lines": 400}
    [result], _run = spark_submit(tmp_path, kubeconfig, options)
    return result


def test_spark_pi_runs_with_executor_pods_and_the_history_server_lists_it(spark_cluster, tmp_path):
    kubeconfig, namespace, _directory = spark_cluster
    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))

    result = submit(spark_cluster, "pi", ["8"], tmp_path)

    log = "\n".join(result.get("log_tail", []))
    assert not result.get("failed"), "%s\n%s" % (result.get("msg"), log[-6000:])
    assert (result["phase"], result["exit_code"]) == ("Succeeded", 0)
    # SparkPi's own answer, from the driver's log as the API server serves it (kubectl logs).
    assert "Pi is roughly 3.1" in log, log[-6000:]
    # Nothing the driver asked the API server for was refused (with Spark's defaults it listed and
    # deleted the namespace's claims, which the role's Role does not allow: a 403 at every stop).
    assert "is forbidden" not in log, log[-6000:]
    driver = core.read_namespaced_pod(result["driver_pod"], namespace)
    assert any(c.type == "bigdata.stack/ProcessRuntime" and c.status == "True" for c in driver.status.conditions)
    assert ipaddress.ip_address(driver.status.pod_ip) in RUNTIME_CIDR
    assert driver.status.container_statuses[0].state.terminated.exit_code == 0
    # The executor: a pod the driver created through the API server, which registered with the
    # driver from a pod IP of the agent's, and which the driver deleted when the application ended.
    # "Registered executor NettyRpcEndpointRef(spark-client://Executor) (10.211.0.4:35008) with ID 1"
    registered = re.findall(r"Registered executor .* \((\d+\.\d+\.\d+\.\d+):\d+\) with ID", log)
    assert registered, log[-6000:]
    assert ipaddress.ip_address(registered[0]) in RUNTIME_CIDR and registered[0] != driver.status.pod_ip, registered
    wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector="spark-role=executor").items,
             timeout=60, what="the driver to delete its executor pods")

    # The history server, in a pod of its own on the same claim, lists the application.
    [history] = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/component=history").items
    assert ipaddress.ip_address(history.status.pod_ip) in RUNTIME_CIDR

    def listed():
        url = "http://%s:18080/api/v1/applications" % history.status.pod_ip
        with urllib.request.urlopen(url, timeout=10) as response:
            apps = json.load(response)
        return [a for a in apps if a["id"] == result["app_id"] and a["attempts"][0]["completed"]]
    wait_for(listed, timeout=90, interval=3, what="the history server to list %s" % result["app_id"])


def test_an_application_that_raises_fails_the_task_with_the_driver_exit_code(spark_cluster, tmp_path):
    result = submit(spark_cluster, "pi-raises", ["not-a-number"], tmp_path)

    assert result["failed"] and result["submitted"]
    assert (result["phase"], result["exit_code"]) == ("Failed", 1), result.get("msg")
    assert "driver pod %s/%s is Failed, exit code 1" % (spark_cluster[1], result["driver_pod"]) in result["msg"]
    # The driver's real log: pi.py's int(sys.argv[1]) raised.
    assert "ValueError: invalid literal for int() with base 10: 'not-a-number'" in result["msg"], result["msg"][-4000:]
