"""The network and admission rules of issue 10, read off the rendered manifests of every variant.

NetworkPolicies are not enforced by the simulated cluster (no network plugin runs there), so
their shape is what can be tested: who may reach the API server, who may reach HDFS. The Spark
driver's admission policy is enforced there and tested on it
(tests/integration/test_spark_driver_pod_policy_on_cluster.py); here, that every variant renders it
for its own namespace and service account with the Secrets its pipelines need. On OpenShift no pod
sets a uid or fsGroup. Every UI exposed through a Route or Ingress is admitted from the OpenShift
router or the ingress controller's namespace.
"""

from __future__ import annotations

import functools
import json

import pytest
import yaml

from render_support import doc_id, documents, inventory_vars, rendered

API_CLIENT_LABEL = {"bigdata.stack/api-client": "true"}
ID_FIELDS = ("runAsUser", "runAsGroup", "fsGroup")


@functools.lru_cache(maxsize=None)
def _all_documents():
    """Every rendered document, read once for this module (documents() parses the files each call)."""
    return documents()


def _docs(variant=None, role=None, kind=None, name=None):
    return [(v, r, d) for v, r, _f, d in _all_documents()
            if (variant is None or v == variant) and (role is None or r == role)
            and (kind is None or d.get("kind") == kind)
            and (name is None or (d.get("metadata") or {}).get("name") == name)]


def _one(variant, role, kind, name):
    found = _docs(variant, role, kind, name)
    assert len(found) == 1, "%s/%s/%s/%s rendered %d times" % (variant, role, kind, name, len(found))
    return found[0][2]


def _values(variant):
    return inventory_vars(variant.split("-")[0])


def _pod_templates(variant):
    spark = _one(variant, "spark", "ConfigMap", "spark-pod-templates")
    return {key: yaml.safe_load(text) for key, text in spark["data"].items()}


@pytest.mark.parametrize("variant", sorted(rendered()))
def test_only_api_clients_reach_the_api_server(variant):
    policy = _one(variant, "platform", "NetworkPolicy", "platform-allow-apiserver-egress")
    assert policy["spec"]["podSelector"] == {"matchLabels": API_CLIENT_LABEL}
    cidrs = [peer["ipBlock"]["cidr"] for rule in policy["spec"]["egress"] for peer in rule["to"]]
    assert cidrs
    if _values(variant).get("bigdata_environment") == "prod":
        assert not [c for c in cidrs if c.endswith("/0")], "prod opens the API server egress to %s" % cidrs


@pytest.mark.parametrize("variant", sorted(rendered()))
def test_the_api_client_label_is_on_drivers_only(variant):
    templates = _pod_templates(variant)
    assert API_CLIENT_LABEL.items() <= templates["driver.yaml"]["metadata"]["labels"].items()
    assert templates["driver.yaml"]["spec"]["automountServiceAccountToken"] is True
    assert "bigdata.stack/api-client" not in templates["executor.yaml"]["metadata"]["labels"]
    defaults = _one(variant, "spark", "ConfigMap", "spark-defaults")["data"]["spark-defaults.conf"]
    assert "spark.kubernetes.driver.label.bigdata.stack/api-client true" in defaults.splitlines()
    # No workload of the stack carries it: none of them talks to the API server.
    labelled = [doc_id(v, r, d) for v, r, d in _docs(variant)
                if "bigdata.stack/api-client" in json.dumps(((d.get("spec") or {}).get("template") or {}).get("metadata"))]
    assert labelled == []


@pytest.mark.parametrize("variant", sorted(rendered()))
def test_driver_pod_policy_binds_this_namespace_and_account(variant):
    values = _values(variant)
    namespace, instance = values["bigdata_namespace"], values.get("bigdata_instance", "bigdata")
    name = "spark-driver-pods.%s.%s" % (instance, namespace)
    policy = _one(variant, "spark", "ValidatingAdmissionPolicy", name)
    binding = _one(variant, "spark", "ValidatingAdmissionPolicyBinding", name)
    assert "namespace" not in policy["metadata"] and "namespace" not in binding["metadata"]
    assert binding["spec"] == {"policyName": name, "validationActions": ["Deny"], "matchResources": {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["matchConditions"] == [{
        "name": "driver-service-account",
        "expression": 'request.userInfo.username == "system:serviceaccount:%s:spark-driver"' % namespace}]
    allowed = json.loads(next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "allowed"))
    assert "elasticsearch-credentials" not in allowed
    # Every variant runs the sample pipelines: their executors' Secrets, and those keys only.
    assert allowed["pipelines-elasticsearch-credentials"] == ["username", "password"]
    assert all(keys == ["ca.crt"] for secret, keys in allowed.items() if secret != "pipelines-elasticsearch-credentials")


@pytest.mark.parametrize("variant", sorted(rendered()))
def test_hdfs_admits_its_own_clients_only(variant):
    instance = _values(variant).get("bigdata_instance", "bigdata")
    clients = [
        {"app.kubernetes.io/name": "hdfs", "app.kubernetes.io/instance": instance},
        {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": instance, "app.kubernetes.io/component": "hdfs-dirs"},
        {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": instance, "app.kubernetes.io/component": "history"},
        {"app.kubernetes.io/name": "pipelines", "app.kubernetes.io/instance": instance, "app.kubernetes.io/component": "loader"},
    ]
    spark_apps = {"matchLabels": {"app.kubernetes.io/part-of": "bigdata-stack", "app.kubernetes.io/instance": instance},
                  "matchExpressions": [{"key": "spark-role", "operator": "In", "values": ["driver", "executor"]}]}
    prometheus = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "bigdata-stack"}
    http = {"hdfs-namenode": 9870, "hdfs-datanode": 9864}
    for name in ("hdfs-namenode", "hdfs-datanode"):
        rules = _one(variant, "hdfs", "NetworkPolicy", name)["spec"]["ingress"]
        for rule in rules:
            selectors = [peer["podSelector"] for peer in rule["from"]]
            assert all(set(peer) == {"podSelector"} for peer in rule["from"]), "%s admits a namespace or IP block" % name
            assert all(s in [{"matchLabels": c} for c in clients] + [spark_apps, {"matchLabels": prometheus}]
                       for s in selectors), "%s admits %s" % (name, selectors)
            ports = [p["port"] for p in rule["ports"]]
            if http[name] in ports:
                # The web UI, WebHDFS and metrics: HDFS itself, or Prometheus alone.
                assert selectors in ([{"matchLabels": clients[0]}], [{"matchLabels": prometheus}]), (name, selectors)
            else:
                assert len(selectors) == 5 and spark_apps in selectors, (name, selectors)


def _id_fields(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ID_FIELDS:
                yield "%s.%s" % (path, key)
            yield from _id_fields(item, "%s.%s" % (path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _id_fields(item, "%s[%d]" % (path, index))
    elif isinstance(value, str) and value.lstrip().startswith(("apiVersion", "{")) and "kind" in value:
        # Pod templates kept as YAML in ConfigMaps (Spark's).
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return
        yield from _id_fields(parsed, path + "|yaml")


OPENSHIFT_DOCS = [(r, d) for v, r, d in _docs("dev-openshift")]


@pytest.mark.parametrize(("role", "doc"), OPENSHIFT_DOCS or [(None, None)],
                         ids=[doc_id("dev-openshift", r, d) for r, d in OPENSHIFT_DOCS] or ["NO-OPENSHIFT-DOCUMENTS"])
def test_openshift_pods_leave_uid_and_fs_group_to_the_scc(role, doc):
    assert doc is not None, "nothing was rendered for OpenShift"
    found = sorted(set(_id_fields(doc)))
    assert found == [], "fixed uid/gid on OpenShift (restricted-v2 refuses them): %s" % found


# What admits traffic from outside the cluster to an exposed UI: OpenShift's router pods run in
# namespaces labelled network.openshift.io/policy-group=ingress; an ingress controller in its own
# namespace, selected by name.
ROUTER_PEER = {"namespaceSelector": {"matchLabels": {"network.openshift.io/policy-group": "ingress"}}}


def _exposures():
    """(variant, role, Route or Ingress, [(Service name, Service port as the exposure names it)])."""
    found = []
    for v, r, d in _docs():
        spec = d.get("spec") or {}
        if d.get("kind") == "Route":
            found.append((v, r, d, [(spec["to"]["name"], (spec.get("port") or {}).get("targetPort"))]))
        elif d.get("kind") == "Ingress":
            backends = [path["backend"]["service"] for rule in spec.get("rules") or []
                        for path in (rule.get("http") or {}).get("paths") or []]
            found.append((v, r, d, [(b["name"], b["port"].get("name", b["port"].get("number"))) for b in backends]))
    return found


def _container_ports(variant, selector, port):
    """The container port numbers behind a Service port's targetPort, in the pods the selector picks."""
    if isinstance(port, int):
        return {port}
    numbers = set()
    for _v, _r, d in _docs(variant):
        template = (d.get("spec") or {}).get("template") or {}
        if d.get("kind") in ("Deployment", "StatefulSet") and \
                selector.items() <= ((template.get("metadata") or {}).get("labels") or {}).items():
            numbers |= {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports") or []
                        if p.get("name") == port}
    return numbers


EXPOSURES = _exposures()


@pytest.mark.parametrize("exposure", EXPOSURES or [None],
                         ids=[doc_id(v, r, d) for v, r, d, _b in EXPOSURES] or ["NO-EXPOSED-UI"])
def test_an_exposed_ui_admits_the_router_or_ingress_controller(exposure):
    """Behind the default deny, a Route or Ingress reaches its pods only when their NetworkPolicy
    admits the OpenShift router (Route) or the ingress controller's namespace (Ingress) on the
    port the Service sends to."""
    assert exposure is not None, "no Route or Ingress was rendered (stage, prod and dev-openshift expose UIs)"
    variant, _role, doc, backends = exposure
    assert backends, "the %s has no backend Service" % doc["kind"]
    services = {d["metadata"]["name"]: d for _v, _r, d in _docs(variant, kind="Service")}
    for name, service_port in backends:
        service = services[name]
        selector = service["spec"]["selector"]
        target = next(p.get("targetPort", p["port"]) for p in service["spec"]["ports"]
                      if service_port in (p.get("name"), p["port"], p.get("targetPort")))
        ports = _container_ports(variant, selector, target)
        assert ports, "no container port %r in the pods of Service %s" % (target, name)
        admitting = []
        for _v, _r, policy in _docs(variant, kind="NetworkPolicy"):
            pods = policy["spec"].get("podSelector") or {}
            if pods.get("matchExpressions") or not (pods.get("matchLabels") or {}).items() <= selector.items():
                continue
            for rule in policy["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                outside = [p for p in peers if p == ROUTER_PEER] if doc["kind"] == "Route" else [
                    p for p in peers if "kubernetes.io/metadata.name" in
                    ((p.get("namespaceSelector") or {}).get("matchLabels") or {})]
                if outside and ports & {p.get("port") for p in rule.get("ports") or []}:
                    admitting.append(policy["metadata"]["name"])
        assert admitting, "no NetworkPolicy admits %s to Service %s's pods on %s" % (
            "the OpenShift router" if doc["kind"] == "Route" else "an ingress controller's namespace", name, sorted(ports))
