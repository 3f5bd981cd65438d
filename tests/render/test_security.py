"""The network and admission rules of issue 10, read off the rendered manifests of every variant.

NetworkPolicies are not enforced by the simulated cluster (no network plugin runs there), so
their shape is what can be tested: who may reach the API server, who may reach HDFS. The Spark
driver's admission policy is enforced there and tested on it
(tests/integration/test_spark_driver_pod_policy_on_cluster.py); here, that every variant renders it
for its own namespace and service account with the Secrets its pipelines need. On OpenShift no pod
sets a uid or fsGroup.
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
