# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The admission policy of the Spark driver's pods, enforced by the simulated cluster's kube-apiserver.

site.yml applies platform and spark (dev inventory) into a fresh namespace, with the Secrets the
sample pipelines' executors use listed in spark_executor_secrets. Then, acting as the driver's
service account (impersonation, as a driver's in-cluster token would), pods are created the way
Spark creates executors: the role's own executor pod template read back from the cluster, with
what Spark's executor feature steps add (its conf ConfigMap, local dirs, the pipelines' CA and
credentials). That pod is admitted; pods that reach for elasticsearch-credentials (a volume, an
env secretKeyRef, envFrom, a projected volume), a key not listed, another service account or a
CSI volume are refused with the policy's message. The same pod created by the cluster admin is
admitted: the policy binds the driver's account only. A second run changes nothing; the spark
role's teardown removes the cluster-scoped policy.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from helpers import run_playbook

SERVICE_ACCOUNT = "spark-driver"
SUPERUSER_SECRET = "elasticsearch-credentials"
EXECUTOR_SECRETS = [
    {"name": "pipelines-elasticsearch-credentials", "allowed_keys": ["username", "password"]},
    {"name": "elasticsearch-http-tls", "allowed_keys": ["ca.crt"]},
]


def extra_vars(namespace, **more):
    values = {"bigdata_namespace": namespace, "bigdata_instance": namespace,
              "bigdata_components": ["spark"], "spark_executor_secrets": EXECUTOR_SECRETS,
              "bigdata_wait_application_health": False}
    values.update(more)
    return json.dumps(values)


def policy_name(namespace):
    return "spark-driver-pods.%s.%s" % (namespace, namespace)


@pytest.fixture
def spark_namespace(restricted_namespace, sim_kubeconfig, api_client):
    run = run_playbook("site.yml", "-i", "inventories/dev", "--skip-tags", "wait",
                       "-e", extra_vars(restricted_namespace), kubeconfig=sim_kubeconfig)
    assert run.returncode == 0, run.report()
    core = client.CoreV1Api(api_client)
    for name, data in ((SUPERUSER_SECRET, {"username": "elastic", "password": "not-for-applications"}),
                       ("pipelines-elasticsearch-credentials", {"username": "pipelines", "password": "p"}),
                       ("elasticsearch-http-tls", {"ca.crt": "ca", "tls.crt": "crt", "tls.key": "key"})):
        core.create_namespaced_secret(restricted_namespace, client.V1Secret(
            metadata=client.V1ObjectMeta(name=name), string_data=data))
    yield restricted_namespace
    # The policy is cluster-scoped: the namespace's deletion does not take it along.
    run_playbook("teardown.yml", "-i", "inventories/dev", "--tags", "spark",
                 "-e", extra_vars(restricted_namespace), kubeconfig=sim_kubeconfig)


def as_driver(sim_kubeconfig, namespace):
    """A client that acts as the driver's service account (what its in-cluster token is)."""
    api = config.new_client_from_config(config_file=sim_kubeconfig)
    # RBAC binds the account by its user name, which is also what the policy matches on.
    api.set_default_header("Impersonate-User", "system:serviceaccount:%s:%s" % (namespace, SERVICE_ACCOUNT))
    return client.CoreV1Api(api)


def executor_pod(core, namespace, index):
    """An executor pod the way Spark builds it from the role's executor pod template."""
    templates = core.read_namespaced_config_map("spark-pod-templates", namespace).data
    pod = yaml.safe_load(templates["executor.yaml"])
    pod["metadata"]["name"] = "app-%s-exec-%d" % (namespace[-8:], index)
    pod["metadata"]["labels"].update({"spark-role": "executor", "spark-app-selector": "spark-0123"})
    spec = pod["spec"]
    # ExecutorKubernetesCredentialsFeatureStep: the driver's account when none is configured.
    spec["serviceAccountName"] = SERVICE_ACCOUNT
    spec["restartPolicy"] = "Never"
    spec["volumes"] = spec.get("volumes", []) + [
        # BasicExecutorFeatureStep: spark-conf-volume-exec from spark-exec-<id>-conf-map.
        {"name": "spark-conf-volume-exec", "configMap": {"name": "spark-exec-0123-conf-map",
                                                         "items": [{"key": "spark-env.sh", "path": "spark-env.sh"}]}},
        # LocalDirsFeatureStep.
        {"name": "spark-local-dir-1", "emptyDir": {}},
        # The pipelines' pod templates: ca.crt only, and their code.
        {"name": "elasticsearch-ca", "secret": {"secretName": "elasticsearch-http-tls", "defaultMode": 292,
                                                "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "app", "configMap": {"name": "pipelines-code"}},
    ]
    container = spec["containers"][0]
    container["image"] = "apache/spark:4.2.0"
    container["args"] = ["executor"]
    container["volumeMounts"] = container.get("volumeMounts", []) + [
        {"name": "spark-conf-volume-exec", "mountPath": "/opt/spark/conf"},
        {"name": "spark-local-dir-1", "mountPath": "/var/data/spark-1"},
        {"name": "elasticsearch-ca", "mountPath": "/etc/bigdata/elasticsearch-ca", "readOnly": True},
        {"name": "app", "mountPath": "/opt/spark/app"},
    ]
    container["env"] = [
        {"name": "SPARK_EXECUTOR_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # EnvSecretsFeatureStep: spark.kubernetes.executor.secretKeyRef.* (spark_submit env_secrets).
        {"name": "ES_USERNAME", "valueFrom": {"secretKeyRef": {"name": "pipelines-elasticsearch-credentials",
                                                               "key": "username"}}},
        {"name": "ES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "pipelines-elasticsearch-credentials",
                                                               "key": "password"}}},
    ]
    return pod


def superuser_volume(pod):
    pod["spec"]["volumes"].append({"name": "stolen", "secret": {"secretName": SUPERUSER_SECRET}})
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "stolen", "mountPath": "/stolen"})


def superuser_env(pod):
    pod["spec"]["containers"][0]["env"].append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": SUPERUSER_SECRET, "key": "password"}}})


def superuser_env_from(pod):
    pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": SUPERUSER_SECRET}}]


def superuser_projected(pod):
    pod["spec"]["volumes"].append({"name": "stolen", "projected": {"sources": [
        {"secret": {"name": SUPERUSER_SECRET, "items": [{"key": "password", "path": "p"}]}}]}})
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "stolen", "mountPath": "/stolen"})


def unlisted_key(pod):
    # An allowed Secret, but its server key, not ca.crt.
    pod["spec"]["volumes"][2]["secret"]["items"].append({"key": "tls.key", "path": "tls.key"})


def whole_allowed_secret(pod):
    # Without items a secret volume holds every key, tls.key included.
    del pod["spec"]["volumes"][2]["secret"]["items"]


def init_container_env(pod):
    init = copy.deepcopy(pod["spec"]["containers"][0])
    init["name"] = "init"
    init["env"] = [{"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": SUPERUSER_SECRET, "key": "password"}}}]
    pod["spec"]["initContainers"] = [init]


def other_service_account(pod):
    pod["spec"]["serviceAccountName"] = "default"


def csi_volume(pod):
    pod["spec"]["volumes"].append({"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io",
                                                           "volumeAttributes": {"secretProviderClass": "x"}}})


REFUSED = {
    "superuser secret volume": (superuser_volume, "spark_executor_secrets"),
    "superuser env secretKeyRef": (superuser_env, "spark_executor_secrets"),
    "superuser envFrom": (superuser_env_from, "spark_executor_secrets"),
    "superuser projected volume": (superuser_projected, "spark_executor_secrets"),
    "unlisted key of a listed secret": (unlisted_key, "spark_executor_secrets"),
    "whole listed secret": (whole_allowed_secret, "spark_executor_secrets"),
    "init container env": (init_container_env, "spark_executor_secrets"),
    "another service account": (other_service_account, "must run as that account"),
    "csi volume": (csi_volume, "may only have emptyDir"),
}


def test_driver_account_creates_executors_only(api_client, sim_kubeconfig, spark_namespace):
    namespace = spark_namespace
    admin = client.CoreV1Api(api_client)
    driver = as_driver(sim_kubeconfig, namespace)

    admitted = driver.create_namespaced_pod(namespace, executor_pod(admin, namespace, 1))
    assert admitted.metadata.name.endswith("-exec-1")

    for index, (what, (spoil, message)) in enumerate(sorted(REFUSED.items()), start=2):
        pod = executor_pod(admin, namespace, index)
        spoil(pod)
        with pytest.raises(ApiException) as refused:
            driver.create_namespaced_pod(namespace, pod)
        body = refused.value.body or ""
        assert refused.value.status in (403, 422), "%s: %s" % (what, body)
        assert "ValidatingAdmissionPolicy '%s'" % policy_name(namespace) in body, "%s: %s" % (what, body)
        assert message in body, "%s: %s" % (what, body)
        # Nobody else is bound: the same pod from the cluster admin passes admission (dry run).
        admin.create_namespaced_pod(namespace, pod, dry_run="All")

    # Re-running the deployment changes nothing, the dry run of the policy included.
    rerun = run_playbook("site.yml", "-i", "inventories/dev", "--skip-tags", "wait",
                         "-e", extra_vars(namespace), kubeconfig=sim_kubeconfig)
    assert rerun.returncode == 0, rerun.report()
    assert rerun.recap()["changed"] == 0, rerun.report()


def test_teardown_removes_the_policy(api_client, sim_kubeconfig, spark_namespace):
    admission = client.AdmissionregistrationV1Api(api_client)
    name = policy_name(spark_namespace)
    assert admission.read_validating_admission_policy(name).metadata.labels["bigdata.stack/namespace"] == spark_namespace
    assert admission.read_validating_admission_policy_binding(name).spec.policy_name == name
    run = run_playbook("teardown.yml", "-i", "inventories/dev", "--tags", "spark",
                       "-e", extra_vars(spark_namespace), kubeconfig=sim_kubeconfig)
    assert run.returncode == 0, run.report()
    for read in (admission.read_validating_admission_policy, admission.read_validating_admission_policy_binding):
        with pytest.raises(ApiException) as gone:
            read(name)
        assert gone.value.status == 404
