# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Manifests as the ``k8s_apply`` action sends them: parsed, flattened, namespaced, shown.

Pure functions shared by the action plugin (plugins/action/k8s_apply.py) and its tests.
"""

from __future__ import annotations

import base64
import binascii
import copy

import yaml

# Kinds that are not namespaced (kubernetes.core's namespace option does not apply to them).
CLUSTER_SCOPED_KINDS = frozenset((
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver", "VolumeAttachment",
))

# What a diff of server state shows that nobody wrote: bookkeeping of the API server.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")

MASK = "*****"


class _DiffDumper(yaml.SafeDumper):
    """Multi-line strings (a ConfigMap's files) as literal blocks, so a diff shows their lines."""


def _represent_str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_DiffDumper.add_representer(str, _represent_str)


def plain(value):
    """Ansible's tagged str/dict/list subclasses as plain Python types (yaml.safe_dump needs them)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def documents(source, namespace=""):
    """The objects of ``source`` (YAML text or a list of dicts) as the k8s module would apply them.

    Empty documents are dropped, ``*List`` kinds are flattened, and ``namespace`` fills
    ``metadata.namespace`` where a namespaced object has none, as kubernetes.core does.
    """
    raw = list(yaml.safe_load_all(str(source))) if isinstance(source, str) else list(source)
    flat = []
    for doc in raw:
        if not doc:
            continue
        doc = plain(doc)
        kind = str(doc.get("kind", ""))
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                item.setdefault("kind", kind[:-4])
                item.setdefault("apiVersion", doc.get("apiVersion"))
                flat.append(item)
        else:
            flat.append(doc)
    for doc in flat:
        if namespace and doc.get("kind") not in CLUSTER_SCOPED_KINDS:
            doc.setdefault("metadata", {}).setdefault("namespace", str(namespace))
    return flat


def dump(objects):
    """Multi-document YAML of ``objects``, in their own key order (what render.yml writes)."""
    return yaml.safe_dump_all(objects, default_flow_style=False, sort_keys=False, explicit_start=True)


def ref(obj):
    """``Kind/namespace/name`` (``Kind/name`` for cluster-scoped objects) of a manifest."""
    meta = obj.get("metadata") or {}
    parts = [str(obj.get("kind", "?"))]
    if meta.get("namespace"):
        parts.append(str(meta["namespace"]))
    parts.append(str(meta.get("name", "?")))
    return "/".join(parts)


def namespace_of(obj):
    """The namespace of a namespaced manifest, None for a cluster-scoped one."""
    if obj.get("kind") in CLUSTER_SCOPED_KINDS:
        return None
    return (obj.get("metadata") or {}).get("namespace") or None


def _prune(value):
    """Drop empty dicts left once server bookkeeping is removed."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v != {}}
    return value


def _without_server_fields(side):
    side = copy.deepcopy(side) if isinstance(side, dict) else {}
    meta = side.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_FIELDS:
            meta.pop(key, None)
    side.pop("status", None)
    return _prune(side)


def _mask_secret(before, after):
    """Replace Secret values by a mask that still says which keys changed, as ``kubectl diff``."""
    for field in ("data", "stringData"):
        old = before.get(field) if isinstance(before.get(field), dict) else {}
        new = after.get(field) if isinstance(after.get(field), dict) else {}
        for key in set(old) | set(new):
            changed = key in old and key in new and old[key] != new[key]
            if key in old:
                old[key] = MASK + (" (before)" if changed else "")
            if key in new:
                new[key] = MASK + (" (after)" if changed else "")


def object_diff(obj, diff):
    """The diff of one object for Ansible's ``--diff`` output, or None when nothing shows.

    ``diff`` is what kubernetes.core returns per object (``before`` / ``after``: only the
    fields that differ). Server bookkeeping is dropped and Secret values are masked.
    """
    if not diff:
        return None
    before = _without_server_fields(diff.get("before"))
    after = _without_server_fields(diff.get("after"))
    if before == after:
        return None
    if obj.get("kind") == "Secret":
        _mask_secret(before, after)
    name = ref(obj)
    return {
        "before_header": name,
        "after_header": name,
        "before": yaml.dump(before, Dumper=_DiffDumper, default_flow_style=False) if before else "",
        "after": yaml.dump(after, Dumper=_DiffDumper, default_flow_style=False) if after else "",
    }


def secret_values(objects):
    """Every value of the Secrets in ``objects`` (``data`` also decoded): what output must not show."""
    values = set()
    for obj in objects:
        if obj.get("kind") != "Secret":
            continue
        for field in ("data", "stringData"):
            for value in (obj.get(field) or {}).values():
                if value in (None, ""):
                    continue
                values.add(str(value))
                if field == "data":
                    try:
                        values.add(base64.b64decode(str(value), validate=True).decode("utf-8"))
                    except (binascii.Error, UnicodeDecodeError):
                        pass
    return values


def censor(text, values):
    """``text`` with every one of ``values`` replaced by the mask (longest first)."""
    text = str(text)
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return text
