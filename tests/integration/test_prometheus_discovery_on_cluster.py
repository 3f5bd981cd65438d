"""The real Prometheus, with the configuration the monitoring role deployed, discovers the stack's
pods through the simulated cluster's API server with the role's own ServiceAccount.

`site.yml` deploys Kafka, HDFS and monitoring (own mode) in a namespace. The test then runs the
prometheus binary of tools/build_prometheus.sh (the release of the role's image) on this machine
with the prometheus.yml and rule files of the deployed ConfigMaps, changed in one way only: each
Kubernetes discovery gets a kubeconfig whose token is a TokenRequest of the `prometheus`
ServiceAccount, what the pod would read from its mounted token. So the namespaced Role the role
grants is what the discovery runs with. /api/v1/targets must then list, for every scrape job with
pods, exactly the pods the job's selector and port name pick, with the labels the dashboards and
alerts group by (namespace, pod, component, job) and the job's path. kwok's pods run nothing, so
each target is down and says why. The same run with the namespace's `default` account (no Role)
finds nothing and logs the API server's refusal: the Role is what makes the discovery work.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from helpers import REPO, run_playbook, wait_for

sys.path.insert(0, os.path.join(REPO, "tests", "monitoring"))
from monitoring_support import build_tools, rendered_prometheus  # noqa: E402  pylint: disable=wrong-import-position

ROLE_VARS = os.path.join(REPO, "roles", "monitoring", "vars", "main.yml")


def stack(playbook, namespace, kubeconfig, *extra):
    return run_playbook("playbooks/%s.yml" % playbook, "-i", "inventories/dev", "-e", json.dumps({
        "bigdata_components": ["kafka", "hdfs", "monitoring"], "bigdata_namespace": namespace,
        "bigdata_wait_application_health": False, "kafka_external_enabled": False,
        # The role's defaults are 30 s and 10 s; shorter, so every target is scraped within seconds.
        "monitoring_scrape_interval": "5s", "monitoring_scrape_timeout": "3s"}), *extra, kubeconfig=kubeconfig)


@pytest.fixture(scope="module")
def deployed(sim_kubeconfig):
    namespace = "prom-" + uuid.uuid4().hex[:8]
    run = stack("site", namespace, sim_kubeconfig)
    try:
        assert run.returncode == 0, run.report()
        yield namespace
    finally:
        down = stack("teardown", namespace, sim_kubeconfig, "-e", "bigdata_teardown_delete_data=true")
        try:
            client.CoreV1Api(config.new_client_from_config(config_file=sim_kubeconfig)).delete_namespace(namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        assert down.returncode == 0, down.report()


def kubeconfig_with_token(sim_kubeconfig, token, path):
    """A kubeconfig for the simulated cluster's API server that authenticates with `token` only."""
    with open(sim_kubeconfig, encoding="utf-8") as handle:
        source = yaml.safe_load(handle)
    contexts = {c["name"]: c["context"] for c in source["contexts"]}
    cluster_name = contexts[source["current-context"]]["cluster"]
    cluster = next(c["cluster"] for c in source["clusters"] if c["name"] == cluster_name)
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
              "clusters": [{"name": "sim", "cluster": cluster}],
              "users": [{"name": "sa", "user": {"token": token}}],
              "contexts": [{"name": "sa", "context": {"cluster": "sim", "user": "sa"}}]}
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return path


def service_account_token(core, namespace, account):
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    return core.create_namespaced_service_account_token(account, namespace, request).status.token


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prometheus(tools, config_maps, kubeconfig, directory):
    """The real prometheus with the deployed configuration, discovery through `kubeconfig`; yields
    (GET of an API path as JSON, the text of its log so far)."""
    path, config = rendered_prometheus(config_maps, directory)
    for job in config["scrape_configs"]:
        for sd in job["kubernetes_sd_configs"]:
            sd["kubeconfig_file"] = kubeconfig
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    port = free_port()
    log_path = os.path.join(str(directory), "prometheus.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([tools.prometheus, "--config.file=" + path,
                                 "--storage.tsdb.path=" + os.path.join(str(directory), "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)

    def log_text():
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def get(api_path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, api_path), timeout=10) as response:
            return json.load(response)

    def ready():
        if proc.poll() is not None:
            raise AssertionError("prometheus exited %s:\n%s" % (proc.returncode, log_text()[-4000:]))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, timeout=60, what="prometheus ready")
        yield get, log_text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def expected_targets(core, namespace):
    """{job: {pod name}} as the role's scrape jobs select them: every label of the row (with the
    stack's part-of and instance) and a container port of the row's name."""
    with open(ROLE_VARS, encoding="utf-8") as handle:
        rows = yaml.safe_load(handle)["monitoring_targets"]
    pods = core.list_namespaced_pod(namespace).items
    wanted = {}
    for row in rows:
        labels = dict(row["pods"], **{"app.kubernetes.io/part-of": "bigdata-stack",
                                      "app.kubernetes.io/instance": "bigdata"})
        wanted[row["job"]] = {
            p.metadata.name for p in pods
            if all((p.metadata.labels or {}).get(k) == v for k, v in labels.items())
            and any(port.name == row["port"] for c in p.spec.containers for port in c.ports or [])}
    return wanted, {row["job"]: row for row in rows}


def test_prometheus_discovers_every_pod_of_its_jobs_with_the_roles_account(deployed, sim_kubeconfig, api_client, tmp_path):
    namespace = deployed
    core = client.CoreV1Api(api_client)
    config_maps = [api_client.sanitize_for_serialization(core.read_namespaced_config_map(name, namespace))
                   for name in ("prometheus-config", "prometheus-rules")]
    wanted, rows = expected_targets(core, namespace)
    assert wanted["kafka"] and wanted["hdfs-namenode"] and wanted["hdfs-datanode"], wanted
    tools = build_tools()

    token = service_account_token(core, namespace, "prometheus")
    kubeconfig = kubeconfig_with_token(sim_kubeconfig, token, str(tmp_path / "prometheus.kubeconfig"))
    with prometheus(tools, config_maps, kubeconfig, tmp_path / "own") as (get, log_text):
        # Every job of the role is a scrape pool (the scrape manager has them once discovery reports).
        wait_for(lambda: sorted(get("/api/v1/scrape_pools")["data"]["scrapePools"]) == sorted(rows), timeout=60,
                 what="the scrape pools %s" % sorted(rows))

        def scraped():
            active = get("/api/v1/targets?state=active")["data"]["activeTargets"]
            found = {job: {t["labels"].get("pod") for t in active if t["labels"]["job"] == job} for job in rows}
            return active if found == wanted and all(t["health"] != "unknown" for t in active) else None

        active = wait_for(scraped, timeout=120, interval=2, what="prometheus to discover and scrape %s" % wanted)
        for target in active:
            row = rows[target["labels"]["job"]]
            pod = core.read_namespaced_pod(target["labels"]["pod"], namespace)
            assert target["labels"]["namespace"] == namespace, target
            assert target["labels"]["component"] == pod.metadata.labels["app.kubernetes.io/component"], target
            assert target["discoveredLabels"]["__meta_kubernetes_pod_container_port_name"] == row["port"], target
            assert target["scrapeUrl"].endswith(row["path"]), target
            # kwok's pods run nothing: down, saying why.
            assert target["health"] == "down" and target["lastError"], target
        groups = get("/api/v1/rules")["data"]["groups"]
        assert len(groups) >= len(os.listdir(tmp_path / "own" / "rules")), groups
        assert "forbidden" not in log_text(), log_text()[-4000:]

    # The same with the namespace's default account, which no Role names: nothing is found, and
    # the log carries the API server's refusal.
    token = service_account_token(core, namespace, "default")
    kubeconfig = kubeconfig_with_token(sim_kubeconfig, token, str(tmp_path / "default.kubeconfig"))
    with prometheus(tools, config_maps, kubeconfig, tmp_path / "default") as (get, log_text):
        wait_for(lambda: "forbidden" in log_text(), timeout=60, what="the API server to refuse the default account")
        assert get("/api/v1/targets?state=active")["data"]["activeTargets"] == []
