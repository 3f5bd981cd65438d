"""What each role declares it needs from the cluster (<role>_preflight in vars/main.yml), templated
by Ansible as a play would: role defaults, then the inventory's values, then the role's vars."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = ("platform", "kafka", "hdfs", "elasticsearch", "kibana", "spark", "monitoring", "pipelines")

# Templated in a process of its own: the roles' defaults use this collection's filters
# (bigdata.stack.enabled_components), which Ansible's plugin loader finds only when it is set up
# before anything imports ansible_collections, as tests/unit/conftest.py does for the other tests.
TEMPLATE_SCRIPT = r"""
import json, pathlib, sys
import yaml
from ansible.plugins.loader import init_plugin_loader
repo = pathlib.Path(sys.argv[1])
init_plugin_loader([str(repo / "collections")])
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
try:
    from ansible.template import trust_as_template
except ImportError:  # before ansible-core 2.19 every string is a template
    trust_as_template = lambda value: value

def trusted(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value

def load(path):
    return yaml.safe_load(path.read_text()) if path.is_file() else {}

roles = json.loads(sys.argv[2])
out = {}
for key, (role, inventory, overrides) in json.load(sys.stdin).items():
    variables = {}
    for name in ["common"] + roles:  # every role's defaults, as after site.yml's validate
        variables.update(load(repo / "roles" / name / "defaults" / "main.yml"))
    for path in sorted((repo / "inventories" / inventory / "group_vars" / "all").glob("*.yml")):
        variables.update(load(path))
    variables.update(overrides)
    for name in roles:
        variables.update(load(repo / "roles" / name / "vars" / "main.yml"))
    variables = trusted(variables)
    out[key] = Templar(loader=DataLoader(), variables=variables).template(variables[role + "_preflight"])
json.dump(out, sys.stdout)
"""

SCENARIOS = {}


def scenario(key, role, inventory="dev", **overrides):
    SCENARIOS[key] = (role, inventory, overrides)
    return key


@pytest.fixture(scope="module")
def declared():
    """{scenario: the role's <role>_preflight, templated}: every scenario of this file in one process."""
    proc = subprocess.run([sys.executable, "-c", TEMPLATE_SCRIPT, str(REPO), json.dumps(list(ROLES))],
                          input=json.dumps(SCENARIOS), capture_output=True, text=True, check=False, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def secret_names(decl):
    return [s["name"] for s in decl.get("secrets") or []]


DEV = {role: scenario("dev-" + role, role) for role in ROLES}
PROD = {role: scenario("prod-" + role, role, "prod") for role in ("kafka", "kibana", "monitoring")}
STAGE_KAFKA = scenario("stage-kafka", "kafka", "stage")
THREE_BROKERS = scenario("three-brokers", "kafka", kafka_broker_replicas=3, kafka_external_base_nodeport=31000)
CERT_MANAGER = scenario("cert-manager", "kibana", "prod",
                        kibana_ingress_annotations={"cert-manager.io/cluster-issuer": "letsencrypt"})
ES_TLS = scenario("es-tls", "elasticsearch", bigdata_tls_enabled=True)
ES_TLS_NOT_GENERATED = scenario("es-tls-given", "elasticsearch", bigdata_tls_enabled=True,
                                elasticsearch_http_tls_generate=False)
KIBANA_TLS_NOT_GENERATED = scenario("kibana-tls-given", "kibana", bigdata_tls_enabled=True, kibana_tls_generate=False)
GRAFANA_TLS_NOT_GENERATED = scenario("grafana-tls-given", "monitoring", bigdata_tls_enabled=True,
                                     monitoring_grafana_tls_generate=False)
PULL_SECRET = scenario("pull-secret", "platform", bigdata_image_pull_secret="registry-creds")
PULL_SECRET_MADE = scenario("pull-secret-made", "platform", bigdata_image_pull_secret="registry-creds",
                            platform_image_pull_secret_dockerconfigjson='{"auths": {}}')
PROMETHEUS_CLASS = scenario("prometheus-class", "monitoring", monitoring_prometheus_storage_class="fast")
MONITORING_OFF = scenario("monitoring-off", "monitoring", bigdata_monitoring_mode="off")
SPARK_HDFS = scenario("spark-hdfs", "spark", spark_event_log_storage="hdfs")
SPARK_PVC = scenario("spark-pvc", "spark", spark_event_log_storage="pvc")
SPARK_PROD = scenario("spark-prod", "spark", "prod")
SPARK_EXPOSED = scenario("spark-exposed", "spark", "prod", spark_history_ingress_enabled=True)
SPARK_EXPOSED_ON_OPENSHIFT = scenario("spark-exposed-openshift", "spark", "prod", spark_history_ingress_enabled=True,
                                      bigdata_platform="openshift")
SPARK_EXPOSED_CERT_MANAGER = scenario("spark-exposed-cert-manager", "spark", "prod", spark_history_ingress_enabled=True,
                                      spark_history_ingress_annotations={"cert-manager.io/cluster-issuer": "letsencrypt"})
PIPELINES_PVC = scenario("pipelines-pvc", "pipelines", pipelines_enabled="streaming", pipelines_checkpoint_storage="pvc")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_declares_its_needs_under_its_own_name(role, declared):
    decl = declared[DEV[role]]
    assert decl["component"] == role
    assert set(decl) <= {"component", "secrets", "storage", "node_ports"}


def test_dev_needs_no_secret_and_one_nodeport(declared):
    assert all(secret_names(declared[DEV[role]]) == [] for role in ROLES)
    assert declared[DEV["kafka"]]["node_ports"] == [
        {"port": 30092, "variable": "kafka_external_base_nodeport", "service": "kafka-broker-0-external"}]


def test_prod_needs_the_certificates_it_names(declared):
    assert secret_names(declared[PROD["kafka"]]) == ["kafka-tls"]
    assert "create secret generic kafka-tls" in declared[PROD["kafka"]]["secrets"][0]["create"]
    assert "brokers' certificate" in declared[PROD["kafka"]]["secrets"][0]["create"]
    assert secret_names(declared[PROD["kibana"]]) == ["kibana-ingress-tls"]
    assert "kibana_ingress_tls_secret: '' for plain HTTP" in declared[PROD["kibana"]]["secrets"][0]["create"]
    assert secret_names(declared[PROD["monitoring"]]) == ["grafana-ingress-tls"]
    assert declared[PROD["kafka"]]["node_ports"] == []


def test_the_history_server_needs_its_ingress_certificate_only_when_exposed_through_an_ingress(declared):
    # prod's Kibana has an Ingress certificate, so the history server's Ingress would have one too,
    # but the history server is exposed only when asked for (it has no login of its own).
    assert secret_names(declared[SPARK_PROD]) == []
    assert secret_names(declared[SPARK_EXPOSED]) == ["spark-history-ingress-tls"]
    create = declared[SPARK_EXPOSED]["secrets"][0]["create"]
    assert "create secret tls spark-history-ingress-tls" in create and "spark-history.bigdata.example.com" in create
    # A Route ends TLS at the router with the router's certificate; cert-manager makes its own.
    assert secret_names(declared[SPARK_EXPOSED_ON_OPENSHIFT]) == []
    assert secret_names(declared[SPARK_EXPOSED_CERT_MANAGER]) == []


def test_kafka_one_nodeport_per_broker_from_the_base(declared):
    ports = declared[THREE_BROKERS]["node_ports"]
    assert [p["port"] for p in ports] == [31000, 31001, 31002]
    assert [p["service"] for p in ports] == ["kafka-broker-%d-external" % i for i in range(3)]


def test_an_ingress_certificate_cert_manager_makes_is_not_needed_beforehand(declared):
    assert secret_names(declared[CERT_MANAGER]) == []


def test_certificates_the_stack_generates_are_not_needed_and_the_others_are(declared):
    assert secret_names(declared[ES_TLS]) == []
    assert secret_names(declared[ES_TLS_NOT_GENERATED]) == ["elasticsearch-http-tls"]
    assert "elasticsearch_http_tls_generate: true" in declared[ES_TLS_NOT_GENERATED]["secrets"][0]["create"]
    assert secret_names(declared[KIBANA_TLS_NOT_GENERATED]) == ["kibana-tls"]
    assert secret_names(declared[GRAFANA_TLS_NOT_GENERATED]) == ["grafana-tls"]


def test_an_image_pull_secret_is_needed_unless_the_stack_creates_it(declared):
    assert secret_names(declared[PULL_SECRET]) == ["registry-creds"]
    assert "create secret docker-registry registry-creds" in declared[PULL_SECRET]["secrets"][0]["create"]
    assert secret_names(declared[PULL_SECRET_MADE]) == []


def test_storage_follows_the_volumes_the_roles_claim(declared):
    assert declared[DEV["hdfs"]]["storage"] == [{"variable": "bigdata_storage_class", "storage_class": ""}]
    assert declared[PROMETHEUS_CLASS]["storage"] == [
        {"variable": "monitoring_prometheus_storage_class", "storage_class": "fast"}]
    assert declared[MONITORING_OFF]["storage"] == []
    assert declared[SPARK_HDFS]["storage"] == []
    assert declared[SPARK_PVC]["storage"] == [{"variable": "bigdata_storage_class", "storage_class": ""}]
    # dev runs HDFS, so the streaming checkpoints go there unless told otherwise.
    assert declared[DEV["pipelines"]]["storage"] == []
    assert declared[PIPELINES_PVC]["storage"] == [{"variable": "bigdata_storage_class", "storage_class": ""}]


def test_no_shipped_inventory_names_a_storage_class(declared):
    for key in (DEV["kafka"], STAGE_KAFKA, PROD["kafka"]):
        assert declared[key]["storage"] == [{"variable": "bigdata_storage_class", "storage_class": ""}]
