# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Filters that shape the pieces every bigdata.stack manifest shares.

Labels, selectors, image references, Pod Security ``restricted`` security contexts and
anti-affinity are the same for every component; the role templates call these filters instead
of repeating the YAML, so a rule changes in one place.
"""

from __future__ import annotations

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
        }
