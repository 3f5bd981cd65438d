# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""roles/common/tasks/tls.yml: the CA and certificates of the Elasticsearch and Kibana Secrets.

One playbook run (no cluster) includes the entry point the way the roles do: a new CA with the
transport and HTTP certificates of Elasticsearch, a certificate signed by a CA given (a kept CA
Secret), the render placeholders, and an incomplete CA. The PEM it returns is checked with
`openssl verify` and read back with cryptography: subject, SANs, constraints, validity, keys.
It runs with --check: a dry run must show complete Secrets, so the entry point makes them in
check mode too (a normal run takes the same path).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from playbook import run

# Elasticsearch's names in namespace "ns" (roles/elasticsearch/tasks/apply.yml builds the real ones).
ES_DNS = ["elasticsearch", "elasticsearch.ns.svc", "localhost", "*.elasticsearch-headless.ns.svc"]

PLAYBOOK = textwrap.dedent("""\
    - name: Exercise bigdata.stack.common tls
      hosts: localhost
      gather_facts: false
      tasks:
        - name: A new CA and the certificates of Elasticsearch
          ansible.builtin.include_role:
            name: bigdata.stack.common
            tasks_from: tls
          vars:
            common_tls_ca: {}
            common_tls_ca_common_name: test Elasticsearch CA
            common_tls_certificates:
              - {name: es-transport, common_name: elasticsearch-transport, dns_names: %(dns)s}
              - {name: es-http, common_name: elasticsearch, dns_names: %(dns)s, ip_addresses: [127.0.0.1]}

        - name: Keep them
          ansible.builtin.set_fact:
            fresh: "{{ common_tls }}"

        - name: A certificate signed by the CA given
          ansible.builtin.include_role:
            name: bigdata.stack.common
            tasks_from: tls
          vars:
            common_tls_ca: "{{ fresh.ca }}"
            common_tls_ca_common_name: unused
            common_tls_certificates:
              - {name: later, common_name: later, dns_names: [later.example]}

        - name: Keep it
          ansible.builtin.set_fact:
            given: "{{ common_tls }}"

        - name: Placeholders while rendering
          ansible.builtin.include_role:
            name: bigdata.stack.common
            tasks_from: tls
          vars:
            bigdata_render_only: true
            common_tls_ca: {}
            common_tls_ca_common_name: kibana CA
            common_tls_certificates:
              - {name: kibana, common_name: kibana, dns_names: [kibana]}

        - name: Keep them too
          ansible.builtin.set_fact:
            rendered: "{{ common_tls }}"

        - name: An incomplete CA
          block:
            - name: Include with a CA that lost its key
              ansible.builtin.include_role:
                name: bigdata.stack.common
                tasks_from: tls
              vars:
                common_tls_ca: {tls.crt: "{{ fresh.ca['tls.crt'] }}"}
                common_tls_ca_common_name: unused
                common_tls_certificates:
                  - {name: es-transport, common_name: elasticsearch-transport, dns_names: [a]}
          rescue:
            - name: Keep the message
              ansible.builtin.set_fact:
                refused: "{{ ansible_failed_result.msg }}"

        - name: Write what was made for the test to read
          ansible.builtin.copy:
            content: "{{ {'fresh': fresh, 'given': given, 'rendered': rendered, 'refused': refused} | to_json }}"
            dest: "{{ out }}"
            mode: "0600"
          check_mode: false
    """) % {"dns": json.dumps(ES_DNS)}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """What the playbook made, and the directory the test's files go to."""
    tmp = tmp_path_factory.mktemp("tls")
    (tmp / "play.yml").write_text(PLAYBOOK)
    result = run(str(tmp / "play.yml"), "-e", "out=%s" % (tmp / "out.json"), "--check")
    assert result.returncode == 0, result.report()
    # The key material must never reach the output, only "censored" stand-ins.
    values = json.loads((tmp / "out.json").read_text())
    for key_pem in [values["fresh"]["ca"]["tls.key"]] + [c["tls.key"] for c in values["fresh"]["certificates"].values()]:
        assert key_pem.splitlines()[1] not in result.stdout + result.stderr
    # Generating in memory changes nothing: only the copy of the test itself may report a change.
    tls_tasks = [t for t in result.task_results() if t["role"] == "common"]
    assert tls_tasks and not [t["task"] for t in tls_tasks if t["changed"]]
    return values, tmp


def _pem_file(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


def _openssl_verify(tmp, ca_pem, cert_pem, purpose):
    ca = _pem_file(tmp, "ca.pem", ca_pem)
    cert = _pem_file(tmp, "cert.pem", cert_pem)
    proc = subprocess.run(["openssl", "verify", "-purpose", purpose, "-CAfile", ca, cert],
                          capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _validity(cert):
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _private_key(pem):
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n"), "not an unencrypted PKCS#8 PEM key: " + pem[:40]
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    return key


def test_the_new_ca_is_a_ca_valid_for_ten_years(made):
    values, _tmp = made
    ca = x509.load_pem_x509_certificate(values["fresh"]["ca"]["tls.crt"].encode())
    assert ca.subject.rfc4514_string() == "CN=test Elasticsearch CA" == ca.issuer.rfc4514_string()
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    # Not before: an hour ago (clock skew); not after: 3650 days from now.
    assert abs(_validity(ca) - datetime.timedelta(days=3650, hours=1)) < datetime.timedelta(minutes=5)
    assert ca.not_valid_before_utc < datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=50)
    key = _private_key(values["fresh"]["ca"]["tls.key"])
    assert _public_bytes(key.public_key()) == _public_bytes(ca.public_key())


@pytest.mark.parametrize("name,common_name,ips", [("es-transport", "elasticsearch-transport", []),
                                                  ("es-http", "elasticsearch", ["127.0.0.1"])])
def test_each_certificate_is_signed_by_the_ca_for_its_names(made, name, common_name, ips):
    values, tmp = made
    issued = values["fresh"]["certificates"][name]
    assert sorted(issued) == ["ca.crt", "tls.crt", "tls.key"]
    assert issued["ca.crt"] == values["fresh"]["ca"]["tls.crt"]
    for purpose in ("sslserver", "sslclient"):
        assert _openssl_verify(tmp, issued["ca.crt"], issued["tls.crt"], purpose) == (0, "%s: OK" % (tmp / "cert.pem"))
    cert = x509.load_pem_x509_certificate(issued["tls.crt"].encode())
    assert cert.subject.rfc4514_string() == "CN=" + common_name
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ES_DNS
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ips
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert abs(_validity(cert) - datetime.timedelta(days=825, hours=1)) < datetime.timedelta(minutes=5)
    key = _private_key(issued["tls.key"])
    assert _public_bytes(key.public_key()) == _public_bytes(cert.public_key())


def test_each_certificate_has_its_own_key(made):
    values, _tmp = made
    keys = [values["fresh"]["ca"]["tls.key"]] + [c["tls.key"] for c in values["fresh"]["certificates"].values()]
    assert len(set(keys)) == 3


def test_a_ca_given_signs_and_is_kept(made):
    values, tmp = made
    given = values["given"]
    assert given["ca"] == values["fresh"]["ca"]
    later = given["certificates"]["later"]
    assert later["ca.crt"] == values["fresh"]["ca"]["tls.crt"]
    assert _openssl_verify(tmp, later["ca.crt"], later["tls.crt"], "sslserver")[0] == 0
    # The check can fail: against a certificate that is not its CA, it does.
    not_its_ca = values["fresh"]["certificates"]["es-http"]["tls.crt"]
    assert _openssl_verify(tmp, not_its_ca, later["tls.crt"], "sslserver")[0] != 0


def test_rendering_makes_placeholders_not_keys(made):
    values, _tmp = made
    placeholder = "render-only-placeholder"
    assert values["rendered"] == {
        "ca": {"tls.crt": placeholder, "tls.key": placeholder},
        "certificates": {"kibana": {"tls.crt": placeholder, "tls.key": placeholder, "ca.crt": placeholder}},
    }


def test_an_incomplete_ca_is_refused_naming_the_variable_and_the_fix(made):
    values, _tmp = made
    assert "common_tls_ca (the CA that signs es-transport) must hold tls.crt and tls.key" in values["refused"]
    assert "but has only [tls.crt]" in values["refused"]
    assert "restore its keys, or delete it together with the certificate Secrets it signed" in values["refused"]
