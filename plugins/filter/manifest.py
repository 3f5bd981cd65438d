# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Filters that shape the pieces every bigdata.stack manifest shares.

Labels, selectors, image references, Pod Security ``restricted`` security contexts,
anti-affinity, PodDisruptionBudgets, volume claim templates, the Ingress or Route that exposes a
web UI and the rules every workload's resources follow are the same for every component; the
role templates and validate tasks call these filters instead of repeating the YAML, so a rule
changes in one place. Every filter is a pure function; each is documented in the ``<name>.yml``
file beside this one.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean


def _load_parse_quantity():
    """kubernetes.utils.quantity's parse_quantity, without ``import kubernetes``.

    That module needs only ``decimal``, but importing it through its package runs
    ``kubernetes/__init__.py``, which imports the whole client (about half a second). Ansible
    imports filter plugins in each task's forked worker, so every validate task that reads a
    quantity paid it again: 3 s of a 13 s validation run (py-spy, docs/benchmarks.md). The file
    is loaded on its own from the installed package; if the package is laid out otherwise, the
    ordinary import is used.
    """
    spec = importlib.util.find_spec("kubernetes")  # finds the package without importing it
    if spec is None:  # pragma: no cover - the collection's requirements install it
        return None
    path = os.path.join(os.path.dirname(spec.origin), "utils", "quantity.py") if spec.origin else ""
    if os.path.isfile(path):
        file_spec = importlib.util.spec_from_file_location("_bigdata_stack_kubernetes_quantity", path)
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        return module.parse_quantity
    from kubernetes.utils import parse_quantity  # pragma: no cover - another layout of the package
    return parse_quantity


parse_quantity = _load_parse_quantity()

PART_OF = "bigdata-stack"
MANAGED_BY = "ansible"

ANTI_AFFINITY_MODES = ("none", "preferred", "required")

# The Route terminations a UI can use: edge (the router ends TLS, the UI serves plain HTTP) and
# passthrough (the UI serves HTTPS itself). reencrypt would need the UI's CA in the Route.
ROUTE_TERMINATIONS = ("edge", "passthrough")
# ingress-nginx's annotation for a backend that serves HTTPS (it speaks plain HTTP to it otherwise).
BACKEND_PROTOCOL = "nginx.ingress.kubernetes.io/backend-protocol"


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


def pod_security_context(uid, fs_group=None, platform="kubernetes"):
    """Pod-level securityContext that Pod Security ``restricted`` admits.

    ``fsGroup`` makes mounted volumes writable by the image's non-root user. On ``openshift`` the
    restricted-v2 SCC assigns every pod a uid and fsGroup from the namespace's range and refuses
    others, so ``runAsUser``, ``runAsGroup`` and ``fsGroup`` are left out there.
    """
    uid = int(uid)
    if uid == 0:
        raise ValueError("pod_security_context: uid 0 is root; restricted forbids it")
    if platform not in ("kubernetes", "openshift"):
        raise ValueError("pod_security_context: platform must be kubernetes or openshift, not %r" % (platform,))
    if platform == "openshift":
        return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
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


# Kubernetes resource.Quantity as the API server accepts it: a signed decimal number with a binary
# (Ki..Ei), decimal (n, u, m, k, M..E) or exponent (e3, E-2) suffix. parse_quantity computes the
# value but is more lenient than the API server ("1K", "1_000", "NaN"), so the form is checked first.
_QUANTITY_RE = re.compile(
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
# JVM -Xms/-Xmx sizes: an integer with an optional binary k, m, g or t suffix (either case).
_JVM_SIZE_RE = re.compile(r"^(?P<number>[0-9]+)(?P<suffix>[kKmMgGtT]?)$")
_JVM_FACTORS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}

_NO_DEFAULT = object()


def _quantity(value):
    """The Decimal value of a Kubernetes quantity, or None when ``value`` is not one."""
    if parse_quantity is None:
        raise ValueError("the kubernetes Python package is required to read quantities (pip install kubernetes)")
    if value is None or isinstance(value, bool):
        return None
    # repr keeps what YAML said: 0.1 stays 0.1, not the binary fraction just above it.
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _QUANTITY_RE.match(text):
        return None
    try:
        return parse_quantity(text)
    except ValueError:
        return None


def _or_default(what, value, default):
    if default is _NO_DEFAULT:
        raise ValueError("%s: %r is not well-formed" % (what, value))
    return default


def quantity_bytes(value, default=_NO_DEFAULT):
    """Bytes in a Kubernetes memory or storage quantity (``512Mi``, ``2Gi``, ``1G``, ``1e9``).

    Fractions round up, as the API server does. A malformed value raises, unless ``default`` is
    given: ``size | bigdata.stack.quantity_bytes(-1) > 0`` is a format check.
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
        elif char < " " or char > "~":
            # Kafka and log4j2 read .properties as ISO-8859-1: anything else only survives as
            # \uXXXX (UTF-16 units, a surrogate pair beyond the BMP), as Properties.store writes it.
            units = char.encode("utf-16-be")
            out.extend("\\u%02X%02X" % (units[i], units[i + 1]) for i in range(0, len(units), 2))
        else:
            out.append(char)
    return "".join(out)


def java_properties(mapping, header=None):
    """A mapping as the text of a Java ``.properties`` file, one ``key=value`` a line, in order.

    Keys and values are escaped as ``java.util.Properties.load`` reads them, from a stream
    (ISO-8859-1) too; booleans become ``true``/``false``, lists are comma-joined. ``header`` lines
    become ``#`` comments.
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


def pod_disruption_budget(name, instance, component, version=None, pdb_name=None, max_unavailable=1):
    """The PodDisruptionBudget of one workload: a drain evicts at most ``max_unavailable`` of its pods.

    It is named ``<name>-<component>`` (``kafka-broker``) unless ``pdb_name`` says otherwise, and
    selects the workload's pods by its selector labels.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": str(pdb_name) if pdb_name else "%s-%s" % (name, component),
            "labels": labels(name, instance, component, version),
        },
        "spec": {
            "maxUnavailable": int(max_unavailable),
            "selector": {"matchLabels": selector_labels(name, instance, component)},
        },
    }


def volume_claim_template(name, instance, component, size, storage_class="", claim="data"):
    """A StatefulSet's ``volumeClaimTemplates`` entry: one ReadWriteOnce volume of ``size`` per pod.

    Claim templates cannot change once the StatefulSet exists, so their labels carry no version.
    An empty ``storage_class`` leaves the choice to the cluster's default StorageClass.
    """
    if _quantity(size) is None or _quantity(size) <= 0:
        raise ValueError("volume_claim_template: storage size %r of %s-%s is not a Kubernetes quantity"
                         % (size, name, component))
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(size)}}}
    if storage_class:
        spec["storageClassName"] = str(storage_class)
    return {"metadata": {"name": str(claim), "labels": labels(name, instance, component)}, "spec": spec}


def _ui_metadata(name, labels, annotations):
    metadata = {"name": str(name), "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def ui_ingress(name, labels, host, service=None, port="http", class_name="", tls_secret="", annotations=None,
               backend_https=False):
    """The Ingress that exposes a web UI at ``host``: every path to ``service``'s port ``port``.

    ``service`` defaults to ``name``. No ``ingressClassName`` without ``class_name`` (the cluster's
    default class), no ``tls`` without ``tls_secret``. ``backend_https`` (the UI serves HTTPS itself)
    adds ingress-nginx's backend-protocol HTTPS annotation; ``annotations`` are added after it and win.
    """
    if not host:
        raise ValueError("ui_ingress: the Ingress %s needs a host" % name)
    merged = {BACKEND_PROTOCOL: "HTTPS"} if boolean(backend_https, strict=True) else {}
    merged.update(annotations or {})
    spec = {}
    if class_name:
        spec["ingressClassName"] = str(class_name)
    if tls_secret:
        spec["tls"] = [{"hosts": [str(host)], "secretName": str(tls_secret)}]
    spec["rules"] = [{
        "host": str(host),
        "http": {"paths": [{
            "path": "/",
            "pathType": "Prefix",
            "backend": {"service": {"name": str(service or name), "port": {"name": str(port)}}},
        }]},
    }]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": _ui_metadata(name, labels, merged), "spec": spec}


def ui_route(name, labels, host, service=None, port="http", annotations=None, termination="edge"):
    """The OpenShift Route that exposes a web UI at ``host``, to ``service``'s port ``port``.

    ``service`` defaults to ``name``. TLS always ends at or passes through the router
    (``termination``: edge or passthrough); plain HTTP is redirected to HTTPS.
    """
    if not host:
        raise ValueError("ui_route: the Route %s needs a host" % name)
    if termination not in ROUTE_TERMINATIONS:
        raise ValueError("ui_route: termination %r of the Route %s is not one of %s"
                         % (termination, name, ", ".join(ROUTE_TERMINATIONS)))
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": _ui_metadata(name, labels, annotations),
        "spec": {
            "host": str(host),
            "to": {"kind": "Service", "name": str(service or name), "weight": 100},
            "port": {"targetPort": str(port)},
            "tls": {"termination": termination, "insecureEdgeTerminationPolicy": "Redirect"},
            "wildcardPolicy": "None",
        },
    }


def jvm_heap_options(heap):
    """``-Xms<heap> -Xmx<heap>``: the whole heap is reserved at start, so a pod that fits keeps fitting."""
    if jvm_bytes(heap, None) is None:
        raise ValueError("jvm_heap_options: %r is not a JVM heap size (512m, 2g)" % (heap,))
    return "-Xms%s -Xmx%s" % (heap, heap)


_BINARY_UNITS = (("Ei", 2 ** 60), ("Pi", 2 ** 50), ("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10))
_QUANTITY_EXAMPLES = {"cpu": "500m or 2", "memory": "512Mi or 2Gi", "ephemeral-storage": "256Mi or 2Gi"}
# What every container's resources hold, requests and limits alike. ephemeral-storage bounds what
# the container writes outside its volumes that claim space (its log files, a writable root, and
# for the pod as a whole its emptyDirs): without it one pod can fill a node's disk and the kubelet
# evicts whatever it picks.
RESOURCE_KINDS = ("cpu", "memory", "ephemeral-storage")


def _binary_size(size):
    """``size`` bytes as the largest binary quantity that is exact (1073741824 is 1Gi)."""
    for suffix, factor in _BINARY_UNITS:
        if size >= factor and size % factor == 0:
            return "%d%s" % (size // factor, suffix)
    return str(size)


def _jvm_size(size):
    """``size`` bytes rounded down to a JVM size in m or g (805306368 is 768m)."""
    mebibytes = size // 2 ** 20
    return "%dg" % (mebibytes // 1024) if mebibytes % 1024 == 0 else "%dm" % mebibytes


def _resource_quantities(resources, prefix, problems):
    """{(section, resource): (value, amount)} of the well-formed quantities; the others go to problems."""
    found = {}
    for section in ("requests", "limits"):
        block = resources.get(section)
        for resource in RESOURCE_KINDS:
            name = "%sresources.%s.%s" % (prefix, section, resource)
            value = block.get(resource) if isinstance(block, Mapping) else None
            if value is None:
                problems.append("%s is missing: set the requests and limits of cpu, memory and ephemeral-storage."
                                % name)
                continue
            amount = cpu_millicores(value, None) if resource == "cpu" else quantity_bytes(value, None)
            if amount is None or amount <= 0:
                problems.append("%s=%s is not a positive Kubernetes quantity (e.g. %s)."
                                % (name, value, _QUANTITY_EXAMPLES[resource]))
            else:
                found[section, resource] = (value, amount)
    return found


def resource_errors(workload, prefix, max_heap_percent=100, min_storage=None):
    """What is wrong with a workload's resources, heap and storage: one sentence per problem.

    ``workload`` has the shape every role uses: ``resources`` as a container takes it
    (``{requests: {cpu, memory, ephemeral-storage}, limits: {cpu, memory, ephemeral-storage}}``), and where the workload has them ``heap``
    (a JVM size) and ``storage_size`` (a quantity). ``prefix`` followed by a key is the name the
    user wrote: ``kafka_broker_`` names ``kafka_broker_resources.limits.memory`` and
    ``kafka_broker_heap``; ``elasticsearch_node_pools[name=data].`` names the keys of a pool.

    Rules: the six quantities are present, positive and well-formed, requests do not exceed limits, the
    heap is below the memory limit and at most ``max_heap_percent`` of it, the storage at least
    ``min_storage``. An empty list means the workload is fine.
    """
    percent = int(max_heap_percent)
    if not 0 < percent <= 100:
        raise ValueError("resource_errors: max_heap_percent %r is not between 1 and 100" % (max_heap_percent,))
    workload = dict(workload)
    problems = []
    resources = workload.get("resources")
    if isinstance(resources, Mapping) and resources:
        found = _resource_quantities(resources, prefix, problems)
    else:
        problems.append("%sresources=%s must be a mapping {requests: {cpu, memory, ephemeral-storage}, "
                        "limits: {cpu, memory, ephemeral-storage}}, "
                        "as Kubernetes takes a container's resources." % (prefix, resources))
        found = {}
    for resource in RESOURCE_KINDS:
        request, limit = found.get(("requests", resource)), found.get(("limits", resource))
        if request and limit and request[1] > limit[1]:
            problems.append("%sresources.requests.%s=%s exceeds %sresources.limits.%s=%s: lower the request "
                            "or raise the limit." % (prefix, resource, request[0], prefix, resource, limit[0]))

    if "heap" in workload:
        heap = workload["heap"]
        heap_bytes = jvm_bytes(heap, None)
        limit = found.get(("limits", "memory"))
        if heap_bytes is None or heap_bytes <= 0:
            problems.append("%sheap=%s is not a JVM heap size (-Xmx syntax, e.g. 512m or 2g)." % (prefix, heap))
        elif limit and percent == 100 and heap_bytes >= limit[1]:
            problems.append("%sheap=%s must be smaller than %sresources.limits.memory=%s: the JVM needs memory "
                            "beyond its heap (off-heap buffers, threads), and the page cache uses what is left. "
                            "Lower the heap (half the limit, %s, is a good start) or raise the limit."
                            % (prefix, heap, prefix, limit[0], _jvm_size(limit[1] // 2)))
        elif limit and heap_bytes * 100 > limit[1] * percent:
            problems.append("%sheap=%s must be at most %d%% of %sresources.limits.memory=%s, i.e. %s: the rest is "
                            "for off-heap memory and the page cache. Lower the heap or raise the limit."
                            % (prefix, heap, percent, prefix, limit[0], _jvm_size(limit[1] * percent // 100)))

    if "storage_size" in workload:
        size = workload["storage_size"]
        size_bytes = quantity_bytes(size, None)
        minimum = quantity_bytes(min_storage) if min_storage is not None else None
        if size_bytes is None or size_bytes <= 0:
            problems.append("%sstorage_size=%s is not a positive Kubernetes quantity (e.g. 10Gi)." % (prefix, size))
        elif minimum is not None and size_bytes < minimum:
            problems.append("%sstorage_size=%s is below the minimum of %s: raise it (a volume's size is fixed "
                            "once the StatefulSet exists)."
                            % (prefix, size, min_storage if isinstance(min_storage, str) else _binary_size(minimum)))
    return problems


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
            "pod_disruption_budget": pod_disruption_budget,
            "volume_claim_template": volume_claim_template,
            "ui_ingress": ui_ingress,
            "ui_route": ui_route,
            "jvm_heap_options": jvm_heap_options,
            "resource_errors": resource_errors,
        }
