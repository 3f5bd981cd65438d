# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Filters that shape the pieces every bigdata.stack manifest shares.

Labels, selectors, image references, Pod Security ``restricted`` security contexts and
anti-affinity are the same for every component; the role templates call these filters instead
of repeating the YAML, so a rule changes in one place.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

PART_OF = "bigdata-stack"
MANAGED_BY = "ansible"

ANTI_AFFINITY_MODES = ("none", "preferred", "required")


def selector_labels(name, instance, component=None):
    """Labels that select a workload's pods.

    Selectors of StatefulSets and Deployments are immutable, so they carry only what never
    changes for a workload: name, instance and component (never the version).
    """
    labels = {
        "app.kubernetes.io/name": str(name),
        "app.kubernetes.io/instance": str(instance),
    }
    if component:
        labels["app.kubernetes.io/component"] = str(component)
    return labels


def labels(name, instance, component=None, version=None, extra=None):
    """The full label set of an object: selector labels plus part-of, managed-by and version."""
    result = selector_labels(name, instance, component)
    result["app.kubernetes.io/part-of"] = PART_OF
    result["app.kubernetes.io/managed-by"] = MANAGED_BY
    if version:
        result["app.kubernetes.io/version"] = str(version)
    if extra:
        result.update({str(k): str(v) for k, v in dict(extra).items()})
    return result


def image(repository, tag, registry=""):
    """``repository:tag``, moved to ``registry`` when one is set (air-gapped mirrors).

    The mirror keeps the repository path and drops the original registry host:
    ``docker.elastic.co/elasticsearch/elasticsearch`` with registry ``mirror:5000`` becomes
    ``mirror:5000/elasticsearch/elasticsearch``; ``apache/kafka`` becomes ``mirror:5000/apache/kafka``.
    """
    repository = str(repository)
    if not tag:
        raise ValueError("image: a tag is required for %s (images are pinned)" % repository)
    if registry:
        first, sep, rest = repository.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            repository = rest
        repository = "%s/%s" % (str(registry).rstrip("/"), repository)
    return "%s:%s" % (repository, tag)


def pod_security_context(uid, fs_group=None):
    """Pod-level securityContext that Pod Security ``restricted`` admits.

    ``fsGroup`` makes mounted volumes writable by the image's non-root user.
    """
    uid = int(uid)
    if uid == 0:
        raise ValueError("pod_security_context: uid 0 is root; restricted forbids it")
    ctx = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": int(fs_group if fs_group is not None else uid),
        "fsGroup": int(fs_group if fs_group is not None else uid),
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return ctx


def container_security_context(read_only_root=False):
    """Container-level securityContext that Pod Security ``restricted`` admits."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": bool(read_only_root),
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def anti_affinity(selector, mode="none", topology_key="kubernetes.io/hostname"):
    """An ``affinity`` block spreading pods that match ``selector`` across ``topology_key``.

    ``none`` gives ``{}``; ``preferred`` a weighted preference (pods still schedule on one node);
    ``required`` a hard rule (one pod per topology domain, so replicas need that many nodes).
    """
    if mode not in ANTI_AFFINITY_MODES:
        raise ValueError(
            "anti_affinity: mode %r is not one of %s" % (mode, ", ".join(ANTI_AFFINITY_MODES))
        )
    if mode == "none":
        return {}
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": topology_key}
    if mode == "required":
        rule = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    else:
        rule = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    return {"podAntiAffinity": rule}


def topology_spread(selector, mode="none", topology_key="topology.kubernetes.io/zone"):
    """``topologySpreadConstraints`` across zones: soft for ``preferred``, hard for ``required``."""
    if mode not in ANTI_AFFINITY_MODES:
        raise ValueError(
            "topology_spread: mode %r is not one of %s" % (mode, ", ".join(ANTI_AFFINITY_MODES))
        )
    if mode == "none":
        return []
    return [
        {
            "maxSkew": 1,
            "topologyKey": topology_key,
            "whenUnsatisfiable": "DoNotSchedule" if mode == "required" else "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
    ]


# Kubernetes resource.Quantity: a decimal number with a binary (Ki..Ei), decimal (n, u, m, k, M..E)
# or exponent (e3, E-2) suffix. Memory and storage sizes are quantities too.
_QUANTITY_RE = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_QUANTITY_FACTORS = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# JVM -Xms/-Xmx sizes: an integer with an optional binary k, m, g or t suffix (either case).
_JVM_SIZE_RE = re.compile(r"^(?P<number>[0-9]+)(?P<suffix>[kKmMgGtT]?)$")
_JVM_FACTORS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}

_NO_DEFAULT = object()


def _quantity(value):
    """The Decimal value of a Kubernetes quantity, or None when ``value`` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    match = _QUANTITY_RE.match(str(value).strip()) if value is not None else None
    if not match:
        return None
    suffix = match.group("suffix") or ""
    try:
        number = Decimal(match.group("number"))
        if suffix[:1] in ("e", "E"):
            return number * (Decimal(10) ** int(suffix[1:]))
        return number * _QUANTITY_FACTORS[suffix]
    except (InvalidOperation, OverflowError):
        return None


def _or_default(what, value, default):
    if default is _NO_DEFAULT:
        raise ValueError("%s: %r is not well-formed" % (what, value))
    return default


def quantity_bytes(value, default=_NO_DEFAULT):
    """Bytes in a Kubernetes memory or storage quantity (``512Mi``, ``2Gi``, ``1G``, ``1e9``).

    Fractions round up, as the API server does. A malformed value raises, unless ``default`` is
    given: ``kafka_memory_limit | bigdata.stack.quantity_bytes(-1) > 0`` is a format check.
    """
    number = _quantity(value)
    if number is None:
        return _or_default("quantity_bytes", value, default)
    return int(math.ceil(number))


def cpu_millicores(value, default=_NO_DEFAULT):
    """Millicores in a Kubernetes CPU quantity (``500m`` is 500, ``2`` is 2000, ``0.5`` is 500)."""
    number = _quantity(value)
    if number is None:
        return _or_default("cpu_millicores", value, default)
    return int(math.ceil(number * 1000))


def jvm_bytes(value, default=_NO_DEFAULT):
    """Bytes in a JVM heap size as ``-Xmx`` takes it (``512m``, ``2g``, ``1048576``).

    Unlike a Kubernetes quantity, ``m`` here means mebibytes. A malformed value raises, unless
    ``default`` is given.
    """
    match = _JVM_SIZE_RE.match(str(value).strip()) if value is not None else None
    if not match or isinstance(value, bool):
        return _or_default("jvm_bytes", value, default)
    return int(match.group("number")) * _JVM_FACTORS[match.group("suffix").lower()]


def _properties_escape(text, is_key):
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char in "=:#!" and (is_key or index == 0):
            out.append("\\" + char)
        elif char == " " and (is_key or index == 0):
            out.append("\\ ")
        else:
            out.append(char)
    return "".join(out)


def java_properties(mapping, header=None):
    """A mapping as the text of a Java ``.properties`` file, one ``key=value`` a line, in order.

    Keys and values are escaped as ``java.util.Properties.load`` reads them; booleans become
    ``true``/``false``, lists are comma-joined. ``header`` lines become ``#`` comments.
    """
    lines = ["# " + line if line else "#" for line in str(header).splitlines()] if header else []
    for key, value in dict(mapping).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif value is None:
            value = ""
        lines.append("%s=%s" % (_properties_escape(str(key), True), _properties_escape(str(value), False)))
    return "\n".join(lines) + "\n"


def _xml_escape(text):
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def hadoop_xml(mapping, header=None):
    """A mapping as a Hadoop ``*-site.xml`` ``<configuration>``, one ``<property>`` per key, in order.

    Booleans become ``true``/``false``; ``header`` becomes an XML comment.
    """
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    if header:
        lines.append("<!-- %s -->" % str(header).replace("--", "- -"))
    lines.append("<configuration>")
    for key, value in dict(mapping).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append("  <property>")
        lines.append("    <name>%s</name>" % _xml_escape(key))
        lines.append("    <value>%s</value>" % _xml_escape("" if value is None else value))
        lines.append("  </property>")
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


class FilterModule(object):
    """bigdata.stack manifest filters."""

    def filters(self):
        return {
            "labels": labels,
            "selector_labels": selector_labels,
            "image": image,
            "pod_security_context": pod_security_context,
            "container_security_context": container_security_context,
            "anti_affinity": anti_affinity,
            "topology_spread": topology_spread,
            "quantity_bytes": quantity_bytes,
            "cpu_millicores": cpu_millicores,
            "jvm_bytes": jvm_bytes,
            "java_properties": java_properties,
            "hadoop_xml": hadoop_xml,
        }
