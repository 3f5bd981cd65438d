# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""What the stack needs from the cluster, checked against what the cluster has, before any write.

Every role declares its needs (``<role>_preflight`` in its vars/main.yml): Secrets it refers to
but does not create, the StorageClass of the volumes it claims, the NodePorts its Services ask
for. ``problems`` compares those needs with one read of the cluster and returns every problem as
a sentence that names the variable, the object and the fix. Pure functions over API objects as
dictionaries (no client), so the unit tests need no cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
INSTANCE_LABEL = "app.kubernetes.io/instance"
PART_OF_LABEL = "app.kubernetes.io/part-of"
NODE_PORT_RANGE = (30000, 32767)


def _name(obj):
    return (obj.get("metadata") or {}).get("name")


def _namespace(obj):
    return (obj.get("metadata") or {}).get("namespace")


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def merged(needs):
    """The roles' declarations as one dict of lists, each entry tagged with its component."""
    out = {"secrets": [], "storage": [], "node_ports": []}
    for need in needs or []:
        for key in out:
            for entry in need.get(key) or []:
                out[key].append(dict(entry, component=need.get("component") or "?"))
    return out


# -- Secrets

def secret_problems(secrets, existing_names, namespace, namespace_exists=True):
    """A sentence per declared Secret that is missing (each Secret named once)."""
    problems, seen = [], set()
    for need in secrets:
        name = need.get("name") or ""
        if not name or name in existing_names or name in seen:
            continue
        seen.add(name)
        sharing = sorted({n["variable"] for n in secrets if n.get("name") == name} - {need["variable"]})
        text = "%s=%s (%s): Secret %s does not exist in namespace %s%s." % (
            need["variable"], name, need["component"], name, namespace,
            (", nor does the namespace (create it first: kubectl create namespace %s)" % namespace)
            if not namespace_exists else "")
        if sharing:
            text += " It is also named by %s." % ", ".join(sharing)
        if need.get("create"):
            text += " " + need["create"].strip()
        problems.append(text)
    return problems


# -- storage

def is_default_class(storage_class):
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return any(str(annotations.get(key, "")).lower() == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def describe_classes(storage_classes):
    """'a (default), b' or 'none'."""
    names = ["%s%s" % (_name(sc), " (default)" if is_default_class(sc) else "")
             for sc in sorted(storage_classes, key=_name)]
    return ", ".join(names) if names else "none"


def storage_problems(storage, storage_classes):
    """A sentence per named class that does not exist, and one when unset means a default there is not."""
    names = {_name(sc) for sc in storage_classes}
    defaults = [sc for sc in storage_classes if is_default_class(sc)]
    have = describe_classes(storage_classes)
    problems, seen = [], set()
    unset = []
    for need in storage:
        wanted = need.get("storage_class") or ""
        if not wanted:
            unset.append(need)
            continue
        if wanted in names or (need["variable"], wanted) in seen:
            continue
        seen.add((need["variable"], wanted))
        problems.append(
            "%s=%s (%s): no StorageClass %s on this cluster; it has: %s. Set %s to one of them, or to '' "
            "(the default) for the cluster's default StorageClass." % (
                need["variable"], wanted, need["component"], wanted, have, need["variable"]))
    if unset and not defaults:
        variables = sorted({n["variable"] for n in unset})
        components = sorted({n["component"] for n in unset})
        example = _name(sorted(storage_classes, key=_name)[0]) if storage_classes else "<class>"
        problems.append(
            "%s is empty, so the volumes of %s use the cluster's default StorageClass, but no "
            "StorageClass is marked default (annotation %s=\"true\"); the cluster has: %s. Set %s to a "
            "StorageClass%s, or mark one default: kubectl patch storageclass %s -p "
            "'{\"metadata\":{\"annotations\":{\"%s\":\"true\"}}}'." % (
                " and ".join(variables), ", ".join(components), DEFAULT_CLASS_ANNOTATIONS[0], have,
                variables[0], " that exists" if storage_classes else " (none exists yet: install a provisioner)",
                example, DEFAULT_CLASS_ANNOTATIONS[0]))
    return problems


# -- NodePorts

def node_port_holders(services):
    """{nodePort: service} over every Service of the cluster."""
    held = {}
    for svc in services:
        for port in ((svc.get("spec") or {}).get("ports") or []):
            if port.get("nodePort"):
                held[int(port["nodePort"])] = svc
    return held


def _is_own(svc, need, namespace):
    """A port this stack already holds: its own Service of that name, in its namespace (a re-run)."""
    return _namespace(svc) == namespace and _name(svc) == need["service"]


def free_base(ports, held, namespace, needs, low=NODE_PORT_RANGE[0], high=NODE_PORT_RANGE[1]):
    """The lowest shift of ports (one variable's) above them that lands every port on a free NodePort."""
    taken = {port for port, svc in held.items() if not any(_is_own(svc, n, namespace) for n in needs)}
    start = min(ports)
    for base in range(start + 1, high + 1):
        shifted = [p - start + base for p in ports]
        if max(shifted) > high:
            break
        if not taken.intersection(shifted):
            return base
    for base in range(low, start):
        shifted = [p - start + base for p in ports]
        if not taken.intersection(shifted):
            return base
    return None


def node_port_problems(node_ports, services, namespace):
    """A sentence per NodePort the stack asks for that another Service holds, naming it and its stack."""
    held = node_port_holders(services)
    problems = []
    wanted = {}
    for need in node_ports:
        wanted.setdefault(int(need["port"]), []).append(need)
    for port, askers in sorted(wanted.items()):
        services_asking = sorted({n["service"] for n in askers})
        if len(services_asking) > 1:
            problems.append("NodePort %d is asked for twice by this stack (%s, from %s): give each its own port." % (
                port, ", ".join(services_asking), ", ".join(sorted({n["variable"] for n in askers}))))
    for need in node_ports:
        port = int(need["port"])
        svc = held.get(port)
        if svc is None or _is_own(svc, need, namespace):
            continue
        labels = _labels(svc)
        owner = ("bigdata instance %s" % labels[INSTANCE_LABEL]) if labels.get(PART_OF_LABEL) == "bigdata-stack" \
            and labels.get(INSTANCE_LABEL) else (
                ("instance %s" % labels[INSTANCE_LABEL]) if labels.get(INSTANCE_LABEL) else "not a bigdata stack")
        same_variable = [n for n in node_ports if n["variable"] == need["variable"]]
        base = free_base([int(n["port"]) for n in same_variable], held, namespace, node_ports)
        problems.append(
            "%s: NodePort %d (for Service %s/%s, %s) is already allocated to Service %s/%s (%s). Set %s to "
            "a free port%s, or remove that Service." % (
                need["variable"], port, namespace, need["service"], need["component"], _namespace(svc), _name(svc),
                owner, need["variable"], (", e.g. %s: %d" % (need["variable"], base)) if base else ""))
    return problems


# -- namespace

def is_terminating(namespace_obj):
    if not namespace_obj:
        return False
    return bool((namespace_obj.get("metadata") or {}).get("deletionTimestamp")) or \
        (namespace_obj.get("status") or {}).get("phase") == "Terminating"


def terminating_message(namespace_obj, timeout, variable):
    """Why a namespace being deleted still is: its conditions (content or finalizers left)."""
    meta = namespace_obj.get("metadata") or {}
    reasons = ["%s: %s" % (c.get("reason"), c.get("message")) for c in (namespace_obj.get("status") or {}).get("conditions") or []
               if c.get("status") == "True" and c.get("message")]
    return (
        "namespace %s is still being deleted (Terminating since %s) after waiting %ss%s. Nothing was written. "
        "Deploy again once it is gone (kubectl get namespace %s), raise %s, or deploy to another "
        "bigdata_namespace." % (
            meta.get("name"), meta.get("deletionTimestamp") or "?", timeout,
            (": " + "; ".join(reasons)) if reasons else "", meta.get("name"), variable))


def report(problems):
    """One message with every problem, numbered, and the promise that nothing was written."""
    if len(problems) == 1:
        return "preflight: %s Nothing was written to the cluster." % problems[0]
    return "preflight: %d problems, nothing was written to the cluster:\n%s" % (
        len(problems), "\n".join("%d. %s" % (i + 1, p) for i, p in enumerate(problems)))
