# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The certificates of Elasticsearch and Kibana, generated once, on the simulated cluster.

site.yml applies platform, elasticsearch and kibana (the dev inventory with TLS on) into a fresh
namespace, without the wait phase: what is under test is the Secrets the roles leave, not a
rollout (no container runs here). The PEM in the Secrets is checked with `openssl verify` and its
SANs read back. A second run, after the transport certificate's Secret was deleted, must keep
every other Secret as it is and sign a new transport certificate with the CA that was kept.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography import x509
from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import run_playbook

SECRETS = ("elasticsearch-ca", "elasticsearch-transport-tls", "elasticsearch-http-tls", "kibana-tls")


def deploy(namespace, kubeconfig):
    run = run_playbook("site.yml", "-i", "inventories/dev", "--skip-tags", "wait",
                       "-e", json.dumps({"bigdata_namespace": namespace, "bigdata_instance": namespace,
                                         "bigdata_components": ["kibana"], "bigdata_tls_enabled": True}),
                       kubeconfig=kubeconfig)
    assert run.returncode == 0, run.report()
    return run


def read_secrets(core, namespace):
    """{name: (resourceVersion, {key: text})} of the TLS Secrets that exist."""
    found = {}
    for name in SECRETS:
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        found[name] = (secret.metadata.resource_version,
                       {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()})
    return found


def verify(tmp_path, ca_pem, cert_pem):
    (tmp_path / "ca.pem").write_text(ca_pem)
    (tmp_path / "cert.pem").write_text(cert_pem)
    proc = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"),
                           str(tmp_path / "cert.pem")], capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


def dns_names(cert_pem):
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


@pytest.fixture
def tls_namespace(restricted_namespace, sim_kubeconfig):
    deploy(restricted_namespace, sim_kubeconfig)
    return restricted_namespace


def test_certificates_are_made_once_signed_by_the_kept_ca(api_client, sim_kubeconfig, tls_namespace, tmp_path):
    core = client.CoreV1Api(api_client)
    first = read_secrets(core, tls_namespace)
    assert sorted(first) == sorted(SECRETS)
    ca = first["elasticsearch-ca"][1]
    assert sorted(ca) == ["tls.crt", "tls.key"]
    for name in ("elasticsearch-transport-tls", "elasticsearch-http-tls"):
        data = first[name][1]
        assert sorted(data) == ["ca.crt", "tls.crt", "tls.key"]
        assert data["ca.crt"] == ca["tls.crt"]
        assert verify(tmp_path, ca["tls.crt"], data["tls.crt"]) == (True, "%s: OK\n" % (tmp_path / "cert.pem"))
        assert "elasticsearch.%s.svc" % tls_namespace in dns_names(data["tls.crt"])
        assert "*.elasticsearch-headless.%s.svc" % tls_namespace in dns_names(data["tls.crt"])
    kibana = first["kibana-tls"][1]
    assert verify(tmp_path, kibana["ca.crt"], kibana["tls.crt"])[0]
    assert "kibana.%s.svc.cluster.local" % tls_namespace in dns_names(kibana["tls.crt"])
    # Kibana's certificate has a CA of its own, not Elasticsearch's.
    assert not verify(tmp_path, ca["tls.crt"], kibana["tls.crt"])[0]

    # A second run, after the transport certificate's Secret was deleted: every Secret that exists
    # is kept as it is (same object version), the missing one is made again, signed by the kept CA.
    core.delete_namespaced_secret("elasticsearch-transport-tls", tls_namespace)
    deploy(tls_namespace, sim_kubeconfig)
    second = read_secrets(core, tls_namespace)
    for name in ("elasticsearch-ca", "elasticsearch-http-tls", "kibana-tls"):
        assert second[name] == first[name], name
    transport = second["elasticsearch-transport-tls"][1]
    assert transport["tls.key"] != first["elasticsearch-transport-tls"][1]["tls.key"]
    assert transport["ca.crt"] == ca["tls.crt"]
    assert verify(tmp_path, ca["tls.crt"], transport["tls.crt"])[0]
