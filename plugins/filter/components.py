# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Filters the component roles share beyond the manifest basics of ``manifest.py``.

* Secrets generated once: ``existing_secret_data`` turns the results of a looped
  ``kubernetes.core.k8s_info`` into ``{secret name: {key: decoded value}}``, so a role renders a
  generated Secret only when it does not exist yet; ``tls_ca`` / ``tls_issue`` make the
  certificates those Secrets hold (keys never touch the disk of the controller).
* ``workload_refs`` builds the ``resources`` list of ``bigdata.stack.wait_ready``.
* ``streaming_progress`` reads the newest micro-batch progress out of a streaming driver's log
  (``playbooks/status.yml``).
"""

from __future__ import annotations

import base64
import json
import datetime
import ipaddress


def existing_secret_data(results):
    """``{name: {key: value}}`` of the Secrets a looped ``kubernetes.core.k8s_info`` found.

    ``results`` is the ``results`` list of the registered loop (each item names one Secret);
    Secrets that do not exist are absent from the answer. Values are base64-decoded text.
    """
    found = {}
    for result in results or []:
        resources = (result or {}).get("resources") or []
        if not resources:
            continue
        secret = resources[0]
        name = secret.get("metadata", {}).get("name") or result.get("item")
        data = secret.get("data") or {}
        found[str(name)] = {
            str(key): base64.b64decode(value).decode("utf-8") for key, value in data.items()
        }
    return found


def workload_refs(names, kind):
    """``[{kind: kind, name: n}, ...]`` for ``bigdata.stack.wait_ready``'s ``resources``."""
    if isinstance(names, str):
        names = [names]
    return [{"kind": str(kind), "name": str(name)} for name in names]


def streaming_progress(log_text):
    """The newest micro-batch progress a streaming driver logged, or ``{}`` when there is none.

    The sample streaming pipeline prints one line per micro-batch, ``<time> progress {json}``,
    where the JSON is Spark's own ``StreamingQueryProgress``. Returns ``batch`` (batchId),
    ``timestamp`` (the batch's trigger time), ``input_rows`` (numInputRows), and
    ``input_rate`` / ``processing_rate`` (inputRowsPerSecond / processedRowsPerSecond, rows/s),
    ``batch_ms`` (durationMs.triggerExecution); a line that is not valid JSON is skipped.
    """
    for line in reversed(str(log_text or "").splitlines()):
        _time, marker, payload = line.partition(" progress ")
        if not marker or not payload.lstrip().startswith("{"):
            continue
        try:
            progress = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(progress, dict) or "batchId" not in progress:
            continue
        return {
            "batch": progress.get("batchId"),
            "timestamp": progress.get("timestamp"),
            "input_rows": progress.get("numInputRows"),
            "input_rate": progress.get("inputRowsPerSecond"),
            "processing_rate": progress.get("processedRowsPerSecond"),
            "batch_ms": (progress.get("durationMs") or {}).get("triggerExecution"),
        }
    return {}


def _crypto():
    # Imported lazily: cryptography ships with ansible-core, but a filter module that fails to
    # import would hide every other filter of this file.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _pem_key(key, serialization):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def tls_ca(common_name, days=3650):
    """A new self-signed CA: ``{'tls.crt': PEM, 'tls.key': PEM}`` (ECDSA P-256, PKCS#8 key)."""
    x509, hashes, serialization, ec, _eku, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(common_name))])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=int(days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {
        "tls.crt": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "tls.key": _pem_key(key, serialization),
    }


def tls_issue(ca, common_name, dns_names=(), ip_addresses=(), days=825):
    """A server and client certificate signed by ``ca`` (the output of ``tls_ca``).

    Returns the keys of a ``kubernetes.io/tls`` Secret plus the CA: ``tls.crt``, ``tls.key``,
    ``ca.crt``.
    """
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    ca_cert = x509.load_pem_x509_certificate(str(ca["tls.crt"]).encode("ascii"))
    ca_key = serialization.load_pem_private_key(str(ca["tls.key"]).encode("ascii"), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(str(n)) for n in dns_names or ()]
    sans += [x509.IPAddress(ipaddress.ip_address(str(a))) for a in ip_addresses or ()]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(common_name))]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=int(days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return {
        "tls.crt": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "tls.key": _pem_key(key, serialization),
        "ca.crt": str(ca["tls.crt"]),
    }


class FilterModule(object):
    """bigdata.stack filters shared by the component roles."""

    def filters(self):
        return {
            "existing_secret_data": existing_secret_data,
            "workload_refs": workload_refs,
            "streaming_progress": streaming_progress,
            "tls_ca": tls_ca,
            "tls_issue": tls_issue,
        }
