# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Day-2 steps the elasticsearch role does itself, on the simulated cluster.

* cluster.initial_master_nodes: present while the cluster forms for the first time, removed by the
  role once its wait has passed, never rendered again for a cluster whose StatefulSets exist.
* Certificates: renewed by a re-run when they expire within bigdata_tls_renew_before_days, signed
  by the kept CA, and the node pools' pod template changes so that they roll.

site.yml deploys only Elasticsearch (with platform) into a fresh restricted namespace. The wait
phase runs without application health: no container runs on the simulated cluster, kwok marks the
pods ready, so the wait sees every pool rolled out.
"""

from __future__ import annotations

import base64
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import run_playbook


def site(namespace, kubeconfig, *args, **extra):
    variables = {"bigdata_namespace": namespace, "bigdata_instance": namespace,
                 "bigdata_components": ["elasticsearch"], "bigdata_wait_application_health": False,
                 "bigdata_wait_timeout": 300}
    variables.update(extra)
    run = run_playbook("site.yml", "-i", "inventories/dev", "-e", json.dumps(variables), *args,
                       kubeconfig=kubeconfig)
    assert run.returncode == 0, run.report()
    return run


def bootstrap_config_map(core, namespace):
    try:
        return core.read_namespaced_config_map("elasticsearch-bootstrap", namespace).data
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_initial_master_nodes_only_while_the_cluster_forms(api_client, sim_kubeconfig, restricted_namespace):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    namespace = restricted_namespace

    # First formation, before any wait: the ConfigMap is there and the pods read it.
    site(namespace, sim_kubeconfig, "--skip-tags", "wait")
    assert bootstrap_config_map(core, namespace) == {"initial_master_nodes": "elasticsearch-default-0"}
    env = apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template.spec.containers[0].env
    reference = [e.value_from.config_map_key_ref for e in env if e.name == "cluster.initial_master_nodes"]
    assert [(r.name, r.key, r.optional) for r in reference] == [("elasticsearch-bootstrap", "initial_master_nodes", True)]
    template_before = apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template

    # The run with the wait: the cluster has formed, the role removes the setting, restarting nothing.
    formed = site(namespace, sim_kubeconfig)
    assert bootstrap_config_map(core, namespace) is None
    assert formed.recap()["changed"] == 1, formed.report()
    assert apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template == template_before

    # A second run changes nothing and does not bring it back.
    again = site(namespace, sim_kubeconfig)
    assert again.recap()["changed"] == 0, again.report()
    assert bootstrap_config_map(core, namespace) is None

    # Nor does a run without the wait (it would not remove it again): the StatefulSets exist.
    apply_only = site(namespace, sim_kubeconfig, "--skip-tags", "wait")
    assert apply_only.recap()["changed"] == 0, apply_only.report()
    assert bootstrap_config_map(core, namespace) is None


# --------------------------------------------------------------------------- certificate renewal

def read_secret(core, namespace, name):
    return {k: base64.b64decode(v).decode() for k, v in core.read_namespaced_secret(name, namespace).data.items()}


def write_secret(core, namespace, name, data):
    core.patch_namespaced_secret(name, namespace, {"data": {k: base64.b64encode(v.encode()).decode()
                                                            for k, v in data.items()}})


def not_after(pem):
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc


def make_certificate(subject_pem, signer_key_pem, issuer_pem, days, ca=False):
    """A certificate with the subject and extensions of subject_pem, a new key, valid for `days`."""
    from cryptography.hazmat.primitives.asymmetric import ec
    template = x509.load_pem_x509_certificate(subject_pem.encode())
    issuer = x509.load_pem_x509_certificate(issuer_pem.encode()) if issuer_pem else None
    key = ec.generate_private_key(ec.SECP256R1())
    signer = serialization.load_pem_private_key(signer_key_pem.encode(), None) if signer_key_pem else key
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(template.subject)
               .issuer_name(issuer.subject if issuer else template.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=days)))
    for extension in template.extensions:
        if extension.oid in (x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER, x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER):
            continue
        builder = builder.add_extension(extension.value, extension.critical)
    certificate = builder.sign(signer, hashes.SHA256())
    return (certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def tls_checksum(apps, namespace):
    return apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template.metadata.annotations[
        "bigdata.stack/tls-checksum"]


def test_certificates_are_renewed_before_they_end(api_client, sim_kubeconfig, restricted_namespace, tmp_path):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    namespace = restricted_namespace
    first = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True)
    assert first.recap()["changed"] > 0
    ca = read_secret(core, namespace, "elasticsearch-ca")
    http = read_secret(core, namespace, "elasticsearch-http-tls")
    checksum = tls_checksum(apps, namespace)

    # Far from their end: nothing is renewed, nothing changes.
    again = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True)
    assert again.recap()["changed"] == 0, again.report()

    # A transport certificate of the same CA that ends in 5 days, within the default 30.
    transport = read_secret(core, namespace, "elasticsearch-transport-tls")
    short_crt, short_key = make_certificate(transport["tls.crt"], ca["tls.key"], ca["tls.crt"], days=5)
    write_secret(core, namespace, "elasticsearch-transport-tls", {"tls.crt": short_crt, "tls.key": short_key})
    assert tls_checksum(apps, namespace) == checksum

    renewed_run = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True)
    # The one apply task of the role: the transport Secret and the StatefulSet, checked below.
    assert renewed_run.recap()["changed"] == 1, renewed_run.report()
    renewed = read_secret(core, namespace, "elasticsearch-transport-tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert renewed["tls.crt"] != short_crt and renewed["tls.key"] != short_key
    assert now + datetime.timedelta(days=824) < not_after(renewed["tls.crt"]) <= now + datetime.timedelta(days=826)
    # Same CA (not renewed, its Secret untouched), which signed the new certificate.
    assert read_secret(core, namespace, "elasticsearch-ca") == ca and renewed["ca.crt"] == ca["tls.crt"]
    certificate = x509.load_pem_x509_certificate(renewed["tls.crt"].encode())
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(ca["tls.crt"].encode()))
    assert certificate.subject == x509.load_pem_x509_certificate(transport["tls.crt"].encode()).subject
    # The HTTP certificate was not due: kept as it was.
    assert read_secret(core, namespace, "elasticsearch-http-tls") == http
    # The pod template changed, so the pool rolls: OnDelete, the role's wait step restarts the pods one
    # at a time (tests/integration/test_rolling_update_on_cluster.py); this run skipped the wait.
    assert tls_checksum(apps, namespace) != checksum
    assert apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.update_strategy.type == "OnDelete"

    # Renewed: the next run changes nothing.
    settled = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True)
    assert settled.recap()["changed"] == 0, settled.report()

    # A CA that ends within the window is not replaced by a run: it stops, before Elasticsearch's
    # apply, with the steps to replace it, and no Secret or StatefulSet of the role changes.
    short_ca_crt, short_ca_key = make_certificate(ca["tls.crt"], None, None, days=5)
    write_secret(core, namespace, "elasticsearch-ca", {"tls.crt": short_ca_crt, "tls.key": short_ca_key})
    before = {name: read_secret(core, namespace, name) for name in ("elasticsearch-transport-tls", "elasticsearch-http-tls")}
    template = apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template
    refused = run_playbook("site.yml", "-i", "inventories/dev", "--skip-tags", "wait", "-e", json.dumps({
        "bigdata_namespace": namespace, "bigdata_instance": namespace, "bigdata_components": ["elasticsearch"],
        "bigdata_tls_enabled": True}), kubeconfig=sim_kubeconfig)
    assert refused.returncode != 0
    assert "The CA in Secret elasticsearch-ca" in refused.stdout, refused.report()
    assert "bigdata_tls_renew_before_days=30" in refused.stdout
    assert {name: read_secret(core, namespace, name) for name in before} == before
    assert apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template == template


# --------------------------------------------------------------------------- vm.max_map_count check

def test_max_map_count_check_is_admitted_under_restricted(api_client, sim_kubeconfig, restricted_namespace):
    """The API server's Pod Security admission (enforce: restricted) takes a pod of the template."""
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    namespace = restricted_namespace
    site(namespace, sim_kubeconfig, "--skip-tags", "wait", elasticsearch_allow_mmap=True)
    template = api_client.sanitize_for_serialization(
        apps.read_namespaced_stateful_set("elasticsearch-default", namespace).spec.template)
    # copy-config first: the root file system is read-only and the image writes its config dir.
    assert [c["name"] for c in template["spec"]["initContainers"]] == ["copy-config", "check-max-map-count"]
    # The StatefulSet's volumeClaimTemplates give its pods the volume data: an emptyDir stands in.
    spec = dict(template["spec"], volumes=template["spec"]["volumes"] + [{"name": "data", "emptyDir": {}}])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "admission-check", "labels": template["metadata"]["labels"]},
           "spec": spec}
    core.create_namespaced_pod(namespace, pod, dry_run="All")

    # The same pod with the init container privileged, as the usual sysctl recipe has it: refused.
    check = next(c for c in pod["spec"]["initContainers"] if c["name"] == "check-max-map-count")
    check["securityContext"] = {"privileged": True, "runAsUser": 0}
    try:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as exc:
        assert exc.status == 403 and "violates PodSecurity" in exc.body, exc.body
    else:
        raise AssertionError("a privileged init container was admitted: the namespace does not enforce restricted")


def test_kibana_certificate_is_renewed_before_it_ends(api_client, sim_kubeconfig, restricted_namespace):
    """Kibana's certificate: renewed with a new CA of its own (its CA's key is not kept); the pods roll."""
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    namespace = restricted_namespace
    site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True, bigdata_components=["kibana"])
    kibana = read_secret(core, namespace, "kibana-tls")
    elasticsearch = {name: read_secret(core, namespace, name)
                     for name in ("elasticsearch-ca", "elasticsearch-transport-tls", "elasticsearch-http-tls")}

    def kibana_checksum():
        return apps.read_namespaced_deployment("kibana", namespace).spec.template.metadata.annotations[
            "bigdata.stack/tls-checksum"]

    checksum = kibana_checksum()
    short_crt, short_key = make_certificate(kibana["tls.crt"], None, None, days=5)
    write_secret(core, namespace, "kibana-tls", {"tls.crt": short_crt, "tls.key": short_key, "ca.crt": short_crt})

    renewed_run = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True,
                       bigdata_components=["kibana"])
    assert renewed_run.recap()["changed"] == 1, renewed_run.report()  # Kibana's apply: Secret and Deployment
    renewed = read_secret(core, namespace, "kibana-tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now + datetime.timedelta(days=824) < not_after(renewed["tls.crt"]) <= now + datetime.timedelta(days=826)
    certificate = x509.load_pem_x509_certificate(renewed["tls.crt"].encode())
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(renewed["ca.crt"].encode()))
    assert renewed["ca.crt"] != kibana["ca.crt"]
    assert kibana_checksum() != checksum
    assert {name: read_secret(core, namespace, name) for name in elasticsearch} == elasticsearch

    settled = site(namespace, sim_kubeconfig, "--skip-tags", "wait", bigdata_tls_enabled=True,
                   bigdata_components=["kibana"])
    assert settled.recap()["changed"] == 0, settled.report()
