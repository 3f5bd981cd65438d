"""Fixtures shared by several modules of tests/integration (pytest finds them here by name).

Shared, because setting them up costs an `ansible-playbook` run or more, and more than one module
only reads what they set up (docs/testing.md, "Where the time goes, and what is shared"). A test
that changes what a shared fixture made (deletes, tears down, redeploys with other values) does
not use it: it makes its own namespace.
"""

import json
import os
import uuid

import pytest
import yaml
from kubernetes import client

from helpers import FAST_START_JVM, run_playbook
# The names its tests assert on (the gate of driver-held.yaml, the submitter's account) stay there.
from test_spark_submit_on_cluster import GATE, SETUP, SUBMITTER_SA


@pytest.fixture(scope="session")
def spark_ns(api_client, sim_kubeconfig, tmp_path_factory):
    """A restricted namespace prepared by the bigdata.stack.spark role; its pod templates as files.

    {"name": namespace, "dir": directory with driver.yaml, executor.yaml and driver-held.yaml (the
    driver's template with the scheduling gate GATE, so its pod stays Pending until the test
    lets it go)}. Session-scoped: test_spark_submit_on_cluster.py and test_faults_on_cluster.py both
    submit into it; each submission has an application name of its own and its test removes or
    reads only that application's pods, so they do not see each other.
    """
    core = client.CoreV1Api(api_client)
    name = "test-spark-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"pod-security.kubernetes.io/enforce": "restricted",
                           "pod-security.kubernetes.io/enforce-version": "latest"})))
    directory = tmp_path_factory.mktemp("spark-templates")
    try:
        core.create_namespaced_service_account(name, {"metadata": {"name": SUBMITTER_SA}})
        subjects = json.dumps({"spark_submitter_subjects": [{"kind": "ServiceAccount", "name": SUBMITTER_SA}]})
        run_playbook(SETUP, "-e", "test_namespace=" + name, "-e", "test_dir=%s" % directory, "-e", subjects,
                     kubeconfig=sim_kubeconfig, check=True)
        driver = yaml.safe_load((directory / "driver.yaml").read_text())
        driver["spec"]["schedulingGates"] = [{"name": GATE}]
        (directory / "driver-held.yaml").write_text(yaml.safe_dump(driver))
        yield {"name": name, "dir": directory}
    finally:
        core.delete_namespace(name)


@pytest.fixture(autouse=True)
def fast_start_spark_submit(monkeypatch):
    """SPARK_SUBMIT_OPTS with FAST_START_JVM for every test here, so the spark-submit JVMs the
    spark_submit module starts (through ansible-playbook, which passes the environment on) start as
    the daemon tests' JVMs do. The module adds its own options after these
    (plugins/modules/spark_submit.py, run_spark_submit); nothing it submits changes."""
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", (os.environ.get("SPARK_SUBMIT_OPTS", "") + " " + FAST_START_JVM).strip())
