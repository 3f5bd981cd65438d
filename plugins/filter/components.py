# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Filters the component roles share beyond the manifest basics of ``manifest.py``.

* Secrets generated once: ``existing_secret_data`` turns the results of a looped
  ``kubernetes.core.k8s_info`` into ``{secret name: {key: decoded value}}``, so a role renders a
  generated Secret only when it does not exist yet (the certificates those Secrets hold are made
  by ``roles/common/tasks/tls.yml`` with community.crypto).
* ``workload_refs`` builds the ``resources`` list of ``bigdata.stack.wait_ready``.
* ``streaming_progress`` reads the newest micro-batch progress out of a streaming driver's log
  (``playbooks/status.yml``).
"""

from __future__ import annotations

import base64
import json


def existing_secret_data(results):
    """``{name: {key: value}}`` of the Secrets a looped ``kubernetes.core.k8s_info`` found.

    ``results`` is the ``results`` list of the registered loop (each item names one Secret);
    Secrets that do not exist are absent from the answer, a Secret without data maps to ``{}``.
    Values are base64-decoded text; a value that is not UTF-8 text (a PKCS#12 keystore that
    cert-manager may add next to the PEM keys) is left out, since no role reads one.
    """
    found = {}
    for result in results or []:
        resources = (result or {}).get("resources") or []
        if not resources:
            continue
        secret = resources[0]
        name = (secret.get("metadata") or {}).get("name") or result.get("item")
        values = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                values[str(key)] = base64.b64decode(value).decode("utf-8")
            except UnicodeDecodeError:
                continue
        found[str(name)] = values
    return found


def workload_refs(names, kind):
    """``[{kind: kind, name: n}, ...]`` for ``bigdata.stack.wait_ready``'s ``resources``.

    ``names`` is one name or a list of them; nothing (``None`` or an empty list) gives ``[]``.
    """
    if names is None:
        return []
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


class FilterModule(object):
    """bigdata.stack filters shared by the component roles."""

    def filters(self):
        return {
            "existing_secret_data": existing_secret_data,
            "workload_refs": workload_refs,
            "streaming_progress": streaming_progress,
        }
