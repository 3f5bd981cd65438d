"""The monitoring role on the simulated cluster, in both of its modes, one after the other in one
namespace (the own mode's volume must survive the switch and the teardown).

Own mode (bigdata_monitoring_mode auto, no Prometheus Operator): `site.yml` with only the monitoring
component converges in a namespace of its own (Prometheus StatefulSet with its volume, Grafana, the
blackbox exporter, a generated admin password), and a second run changes nothing.

Operator mode: with the Prometheus Operator's CRDs installed (tests/integration/fixtures: the three
CRDs auto looks for, with a schema that keeps every field), the next run finds them by itself,
creates one PodMonitor per scrape job and one PrometheusRule per rule file, and removes our own
Prometheus, keeping its volume; a second run changes nothing; teardown removes the PodMonitors and
PrometheusRules and keeps the volume. The CRDs are cluster-wide, so the test installs them only when
absent, as late as it can, and deletes them at its end.

kwok plays the nodes, so pods go Running and Ready without a container: what is proven is what the
API server admits (Pod Security restricted), schedules and binds, not that Prometheus scrapes.
"""

import json
import pathlib
import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import REPO, run_playbook, wait_for

ROLE = pathlib.Path(REPO) / "roles" / "monitoring"
CRDS = pathlib.Path(__file__).resolve().parent / "fixtures" / "prometheus-operator-crds.yaml"
GROUP, VERSION = "monitoring.coreos.com", "v1"
SELECTOR = "app.kubernetes.io/part-of=bigdata-stack,app.kubernetes.io/instance=bigdata"


def stack(playbook, namespace, kubeconfig, *extra):
    """Run a playbook of the dev inventory with only the monitoring component, in `namespace`."""
    return run_playbook("playbooks/%s.yml" % playbook, "-i", "inventories/dev",
                        "-e", json.dumps({"bigdata_components": ["monitoring"], "bigdata_namespace": namespace,
                                          "bigdata_wait_application_health": False}),
                        *extra, kubeconfig=kubeconfig)


def converge(namespace, kubeconfig):
    run = stack("site", namespace, kubeconfig)
    assert run.returncode == 0, run.report()
    return run


def names(items):
    return sorted(item["metadata"]["name"] if isinstance(item, dict) else item.metadata.name for item in items)


def scrape_jobs():
    return sorted(t["job"] for t in yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["monitoring_targets"])


def rule_files():
    return sorted(p.stem for p in (ROLE / "files" / "rules").glob("*.yml"))


@pytest.fixture
def namespace(api_client, sim_kubeconfig):
    """A namespace name for the stack (platform creates it); everything removed at the end."""
    name = "mon-" + uuid.uuid4().hex[:8]
    yield name
    stack("teardown", name, sim_kubeconfig, "-e", "bigdata_teardown_delete_data=true")
    core = client.CoreV1Api(api_client)
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def no_operator(api_client):
    """The Prometheus Operator's CRDs are absent, so auto means own."""
    present = _present_crds(api_client)
    if present:
        pytest.fail("the cluster serves %s (left by another run?): auto would mean operator" % present)


def _crd_docs():
    return [doc for doc in yaml.safe_load_all(CRDS.read_text()) if doc]


def _present_crds(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    present = []
    for doc in _crd_docs():
        try:
            ext.read_custom_resource_definition(doc["metadata"]["name"])
            present.append(doc["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise
    return present


@pytest.fixture
def operator_crds(api_client):
    """Install the fixture CRDs (only those absent), yield, then delete what was installed."""
    ext = client.ApiextensionsV1Api(api_client)
    installed = []

    def install():
        for doc in _crd_docs():
            if doc["metadata"]["name"] in _present_crds(api_client):
                continue
            ext.create_custom_resource_definition(doc)
            installed.append(doc["metadata"]["name"])
        for name in [d["metadata"]["name"] for d in _crd_docs()]:
            wait_for(lambda n=name: any(c.type == "Established" and c.status == "True"
                                        for c in (ext.read_custom_resource_definition(n).status.conditions or [])),
                     timeout=60, what="CRD %s established" % name)

    yield install
    for name in installed:
        try:
            ext.delete_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for name in installed:
        wait_for(lambda n=name: n not in _present_crds(api_client), timeout=120, what="CRD %s deleted" % name)


def custom(api_client, namespace, plural):
    return client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, label_selector=SELECTOR)["items"]


def test_own_mode_then_operator_mode_and_teardown(api_client, sim_kubeconfig, namespace, no_operator, operator_crds):
    """One namespace through both modes: the own mode's volume must survive the switch and the teardown."""
    apps, core, net = client.AppsV1Api(api_client), client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)

    # Own mode (auto, no operator): converges, then a second run changes nothing.
    first = converge(namespace, sim_kubeconfig)
    assert first.recap()["changed"] > 0
    prometheus = apps.read_namespaced_stateful_set("prometheus", namespace)
    assert prometheus.status.ready_replicas == 1, prometheus.status
    assert prometheus.spec.template.spec.service_account_name == "prometheus"
    for name in ("grafana", "blackbox-exporter"):
        assert apps.read_namespaced_deployment(name, namespace).status.ready_replicas == 1, name
    [volume] = core.list_namespaced_persistent_volume_claim(namespace, label_selector=SELECTOR).items
    assert volume.metadata.name == "data-prometheus-0" and volume.status.phase == "Bound", volume.status
    # Service discovery may read pods, endpoints and services of this namespace, nothing more.
    role = client.RbacAuthorizationV1Api(api_client).read_namespaced_role("prometheus", namespace)
    assert [(r.resources, r.verbs) for r in role.rules] == [(["pods", "endpoints", "services"], ["get", "list", "watch"])]
    config = yaml.safe_load(core.read_namespaced_config_map("prometheus-config", namespace).data["prometheus.yml"])
    assert sorted(job["job_name"] for job in config["scrape_configs"]) == scrape_jobs()
    for job in config["scrape_configs"]:
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [namespace]}}], job
    assert sorted(core.read_namespaced_config_map("prometheus-rules", namespace).data) == \
        sorted(p + ".yml" for p in rule_files())
    secret = core.read_namespaced_secret("grafana-admin-credentials", namespace)
    password = secret.data["password"]
    assert secret.type == "kubernetes.io/basic-auth" and len(password) > 0
    assert "port-forward svc/grafana 3000" in first.stdout and "port-forward svc/prometheus 9090" in first.stdout

    second = converge(namespace, sim_kubeconfig)
    assert second.recap()["changed"] == 0, second.report()
    # Generated once, kept: the second run read the Secret back.
    assert core.read_namespaced_secret("grafana-admin-credentials", namespace).data["password"] == password

    # The Prometheus Operator's CRDs appear: the next run (still auto) switches to operator mode.
    operator_crds()
    switched = converge(namespace, sim_kubeconfig)
    assert switched.recap()["changed"] > 0

    podmonitors = custom(api_client, namespace, "podmonitors")
    assert names(podmonitors) == scrape_jobs()
    for monitor in podmonitors:
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [namespace]}
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/part-of"] == "bigdata-stack"
        [endpoint] = spec["podMetricsEndpoints"]
        # The job label is the table's, not the operator's default <namespace>/<name>.
        assert {"targetLabel": "job", "replacement": monitor["metadata"]["name"]} in endpoint["relabelings"]
    kibana = next(m for m in podmonitors if m["metadata"]["name"] == "kibana")
    assert kibana["spec"]["podMetricsEndpoints"][0]["params"] == {"module": ["kibana_status"]}

    rules = custom(api_client, namespace, "prometheusrules")
    assert names(rules) == rule_files()
    for rule in rules:
        source = yaml.safe_load((ROLE / "files" / "rules" / (rule["metadata"]["name"] + ".yml")).read_text())
        assert rule["spec"]["groups"] == source["groups"], rule["metadata"]["name"]

    # No Prometheus of ours any more; its volume stays.
    assert names(apps.list_namespaced_stateful_set(namespace, label_selector=SELECTOR).items) == []
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("prometheus-config", namespace)
    assert gone.value.status == 404
    assert core.read_namespaced_persistent_volume_claim("data-prometheus-0", namespace).metadata.uid == volume.metadata.uid
    # Grafana now queries the operator's Prometheus; the operator's pods may scrape the stack.
    datasources = yaml.safe_load(core.read_namespaced_config_map("grafana-provisioning", namespace).data["datasources.yml"])
    assert datasources["datasources"][0]["url"] == "http://prometheus-operated.monitoring.svc:9090"
    policies = names(net.list_namespaced_network_policy(namespace, label_selector=SELECTOR).items)
    assert "prometheus-operator-access" in policies and "prometheus" not in policies, policies
    assert "the Prometheus Operator's" in switched.stdout

    again = converge(namespace, sim_kubeconfig)
    assert again.recap()["changed"] == 0, again.report()

    # Teardown: the PodMonitors, PrometheusRules and workloads go; the volume and the Grafana Secret stay.
    down = stack("teardown", namespace, sim_kubeconfig)
    assert down.returncode == 0, down.report()
    assert custom(api_client, namespace, "podmonitors") == []
    assert custom(api_client, namespace, "prometheusrules") == []
    assert names(apps.list_namespaced_deployment(namespace, label_selector=SELECTOR).items) == []
    assert core.read_namespaced_persistent_volume_claim("data-prometheus-0", namespace).metadata.uid == volume.metadata.uid
    # Labelled bigdata.stack/lifecycle=data: a redeploy keeps the admin password.
    assert core.read_namespaced_secret("grafana-admin-credentials", namespace).data["password"] == password
