"""Every manifest every role renders, for every inventory, checked offline.

* schema: strict kubernetes-validate against Kubernetes 1.33 and 1.36 (unknown fields fail);
* Pod Security restricted for every pod spec, including pod templates kept in ConfigMaps;
* requests and limits for cpu, memory and ephemeral-storage on every container of a workload and
  of the Spark pod templates kept in ConfigMaps, and
  a pod's ephemeral-storage limit at least the size limits of its disk-backed emptyDirs;
* the app.kubernetes.io labels on every object, pod template and volume claim template;
* pinned images, all moved to bigdata_image_registry when it is set;
* StatefulSets keep their volumes (PVC retention Retain);
* OpenShift Routes, which kubernetes-validate has no schema for: known fields only, TLS at the
  router, and a Service of the same render with the port they name;
* spreading as the inventory asks: prod requires anti-affinity per node and an even zone spread
  for every multi-replica workload, stage prefers them.

Test ids read <variant>/<role>/<Kind>/<name>. A check that finds nothing to check fails.
"""

from __future__ import annotations

import functools
import re

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from kubernetes.utils import parse_quantity

from render_support import MIRROR, REPO, doc_id, documents, enabled_components, inventory_vars, rendered

KUBERNETES_VERSIONS = ("1.33.0", "1.36.0")
CLUSTER_SCOPED_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
# OpenShift's API groups: kubernetes-validate has no schemas for them (test_openshift_route checks
# Routes instead).
OPENSHIFT_API_PREFIXES = ("route.openshift.io/",)
# route.openshift.io/v1 Route: the fields of its spec and of spec.tls (OpenShift's API reference).
ROUTE_SPEC_FIELDS = {"host", "subdomain", "path", "to", "alternateBackends", "port", "tls", "wildcardPolicy"}
ROUTE_TLS_FIELDS = {"termination", "insecureEdgeTerminationPolicy", "certificate", "key", "caCertificate",
                    "destinationCACertificate", "externalCertificate"}
DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Pod Security restricted: the volume types it allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}

# Schemas are big JSON files that kubernetes-validate reads for every document: read each once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)


def pod_spec(doc):
    """The pod spec of a workload document, or None."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def configmap_pod_specs(doc):
    """Pod templates kept as YAML in a ConfigMap (Spark pod templates): {key: pod spec}."""
    found = {}
    if doc.get("kind") != "ConfigMap":
        return found
    for key, value in (doc.get("data") or {}).items():
        if not key.endswith((".yaml", ".yml")):
            continue
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            continue
        if isinstance(parsed, dict) and parsed.get("kind") == "Pod":
            found[key] = parsed.get("spec") or {}
    return found


def containers(spec):
    return [c for group in ("initContainers", "containers", "ephemeralContainers")
            for c in (spec.get(group) or [])]


def restricted_violations(spec, need_containers=True):
    """Pod Security `restricted` violations of a pod spec (empty list: admitted)."""
    problems = []
    pod_ctx = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append("%s is true" % flag)
    for volume in spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if types - RESTRICTED_VOLUMES:
            problems.append("volume %s uses %s" % (volume.get("name"), sorted(types - RESTRICTED_VOLUMES)))
    if need_containers and not spec.get("containers"):
        problems.append("no containers")
    for c in containers(spec):
        ctx = c.get("securityContext") or {}
        name = c.get("name", "?")
        if ctx.get("privileged"):
            problems.append("%s: privileged" % name)
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append("%s: allowPrivilegeEscalation is not false" % name)
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append("%s: capabilities.drop lacks ALL" % name)
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append("%s: adds capabilities %s" % (name, caps.get("add")))
        if not (ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True):
            problems.append("%s: runAsNonRoot is not true" % name)
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            problems.append("%s: runs as uid 0" % name)
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append("%s: seccompProfile is %s, not RuntimeDefault" % (name, seccomp))
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append("%s: hostPort %s" % (name, port["hostPort"]))
    return problems


def images(spec):
    return [(c.get("name", "?"), c.get("image", "")) for c in containers(spec)]


def image_problem(image):
    if not image:
        return "no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "%s has no tag" % image
    if last.rsplit(":", 1)[1] in ("latest", ""):
        return "%s is not pinned" % image
    return None


def _nothing(name):
    return pytest.param(None, id="NO-%s" % name)


def pytest_generate_tests(metafunc):
    docs = documents()
    if "role_status" in metafunc.fixturenames:
        params = []
        for variant, roles in rendered().items():
            for role, info in roles.items():
                params.append(pytest.param((variant, role, info), id="%s/%s" % (variant, role)))
        metafunc.parametrize("role_status", params or [_nothing("ROLES")])
    if "any_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs]
        metafunc.parametrize("any_doc", params or [_nothing("DOCUMENTS")])
    if "kubernetes_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs
                  if not str(d.get("apiVersion", "")).startswith(OPENSHIFT_API_PREFIXES)]
        metafunc.parametrize("kubernetes_doc", params or [_nothing("DOCUMENTS")])
    if "route_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs if d.get("kind") == "Route"]
        metafunc.parametrize("route_doc", params or [_nothing("ROUTES")])
    if "version" in metafunc.fixturenames:
        metafunc.parametrize("version", KUBERNETES_VERSIONS)
    if "pod_doc" in metafunc.fixturenames:
        params = []
        for v, r, _f, d in docs:
            if pod_spec(d) is not None:
                params.append(pytest.param((v, r, d, pod_spec(d), True), id=doc_id(v, r, d)))
            for key, spec in configmap_pod_specs(d).items():
                params.append(pytest.param((v, r, d, spec, False), id=doc_id(v, r, d, "/" + key)))
        metafunc.parametrize("pod_doc", params or [_nothing("POD-SPECS")])
    if "workload_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs
                  if pod_spec(d) is not None]
        metafunc.parametrize("workload_doc", params or [_nothing("WORKLOADS")])
    if "statefulset_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs
                  if d.get("kind") == "StatefulSet"]
        metafunc.parametrize("statefulset_doc", params or [_nothing("STATEFULSETS")])
    if "mirror_doc" in metafunc.fixturenames:
        params = [pytest.param((v, r, d), id=doc_id(v, r, d)) for v, r, _f, d in docs
                  if v == "prod-mirror"]
        metafunc.parametrize("mirror_doc", params or [_nothing("MIRROR-DOCUMENTS")])
    if "spread_doc" in metafunc.fixturenames:
        params = []
        for v, r, _f, d in docs:
            replicas = (d.get("spec") or {}).get("replicas", 1)
            if v in ("prod", "stage") and d.get("kind") in ("StatefulSet", "Deployment") and replicas > 1:
                params.append(pytest.param((v, r, d), id=doc_id(v, r, d)))
        metafunc.parametrize("spread_doc", params or [_nothing("MULTI-REPLICA-WORKLOADS")])


def test_role_renders(role_status):
    assert role_status is not None, "no role was rendered at all"
    variant, role, info = role_status
    assert info["error"] is None, info["error"]
    files = sorted(info["dir"].glob("*.yaml"))
    assert files, "%s rendered no manifest file for %s" % (role, variant)
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    assert docs, "%s rendered only empty documents for %s" % (role, variant)


def test_every_component_of_the_inventory_is_rendered():
    for variant, roles in rendered().items():
        inventory = variant.split("-")[0]
        assert list(roles) == enabled_components(inventory), variant


def test_schema(kubernetes_doc, version):
    assert kubernetes_doc is not None, "no document was rendered"
    _variant, _role, doc = kubernetes_doc
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(p) for p in err.path)
        pytest.fail("Kubernetes %s schema (strict): %s at %s" % (version, err.message, path or "/"))
    except kubernetes_validate.utils.SchemaNotFoundError as err:
        pytest.fail(err.message)


@functools.lru_cache(maxsize=None)
def _services(variant):
    """{name: Service} of one variant's render."""
    return {d["metadata"]["name"]: d for v, _r, _f, d in documents() if v == variant and d.get("kind") == "Service"}


def test_openshift_route(route_doc):
    """Routes are OpenShift's (route.openshift.io/v1) and kubernetes-validate has no schema for
    them: their fields are checked here against OpenShift's API, and their target must be a
    Service of the same render with a port of the name they give (the router looks the name up
    among the Service's endpoint ports)."""
    assert route_doc is not None, "no Route was rendered (dev-openshift exposes its UIs)"
    variant, _role, doc = route_doc
    assert doc["apiVersion"] == "route.openshift.io/v1"
    spec = doc.get("spec") or {}
    assert set(spec) <= ROUTE_SPEC_FIELDS, "unknown Route fields: %s" % sorted(set(spec) - ROUTE_SPEC_FIELDS)
    assert DNS_NAME.match(str(spec.get("host", ""))), "spec.host %r is not a DNS name" % spec.get("host")
    tls = spec.get("tls") or {}
    assert set(tls) <= ROUTE_TLS_FIELDS, "unknown Route tls fields: %s" % sorted(set(tls) - ROUTE_TLS_FIELDS)
    assert tls.get("termination") in ("edge", "passthrough", "reencrypt"), "no TLS at the router: %s" % tls
    assert tls.get("insecureEdgeTerminationPolicy") in ("None", "Redirect") + (
        ("Allow",) if tls["termination"] != "passthrough" else ()), tls
    assert spec.get("wildcardPolicy", "None") in ("None", "Subdomain")
    target = spec.get("to") or {}
    assert target.get("kind") == "Service" and set(target) <= {"kind", "name", "weight"}, target
    service = _services(variant).get(target.get("name"))
    assert service is not None, "the Route targets Service %r, which this render has not" % target.get("name")
    port = (spec.get("port") or {}).get("targetPort")
    names = [p.get("name") for p in service["spec"]["ports"]]
    numbers = [p.get(key) for p in service["spec"]["ports"] for key in ("port", "targetPort")]
    assert port in (names if isinstance(port, str) else numbers), (
        "spec.port.targetPort %r is no port of Service %s (%s)" % (port, target["name"], names))


def test_labels(any_doc):
    assert any_doc is not None, "no document was rendered"
    variant, _role, doc = any_doc
    instance = inventory_vars(variant.split("-")[0]).get("bigdata_instance", "bigdata")
    labels = (doc.get("metadata") or {}).get("labels") or {}
    missing = [key for key in REQUIRED_LABELS if key not in labels]
    assert not missing, "metadata.labels lacks %s" % missing
    assert labels["app.kubernetes.io/part-of"] == "bigdata-stack"
    assert labels["app.kubernetes.io/managed-by"] == "ansible"
    assert labels["app.kubernetes.io/instance"] == instance
    # Teardown, status and logs find pods and volumes by these labels too.
    spec = doc.get("spec") or {}
    templates = []
    if pod_spec(doc) is not None and doc.get("kind") != "Pod":
        template = spec.get("template") if doc.get("kind") != "CronJob" else \
            ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        templates.append(("pod template", template or {}))
    for claim in spec.get("volumeClaimTemplates") or []:
        templates.append(("volumeClaimTemplate %s" % (claim.get("metadata") or {}).get("name"), claim))
    for what, template in templates:
        found = (template.get("metadata") or {}).get("labels") or {}
        missing = [key for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                                   "app.kubernetes.io/part-of") if key not in found]
        assert not missing, "%s labels lack %s" % (what, missing)


def test_namespace(any_doc):
    assert any_doc is not None, "no document was rendered"
    variant, _role, doc = any_doc
    namespace = inventory_vars(variant.split("-")[0])["bigdata_namespace"]
    meta = doc.get("metadata") or {}
    if doc.get("kind") == "Namespace":
        assert meta.get("name") == namespace
    elif doc.get("kind") in CLUSTER_SCOPED_KINDS:
        # Cluster-scoped (the spark role's admission policy): named after the namespace instead.
        assert "namespace" not in meta and namespace in meta.get("name", ""), meta
    else:
        assert meta.get("namespace") == namespace, "object lands in %r, not %r" % (meta.get("namespace"), namespace)


def test_pod_security_restricted(pod_doc):
    assert pod_doc is not None, "no pod spec was rendered"
    _variant, _role, _doc, spec, is_workload = pod_doc
    problems = restricted_violations(spec, need_containers=is_workload)
    assert not problems, "Pod Security restricted would reject: %s" % "; ".join(problems)


def test_resources(pod_doc):
    """Every container of a workload, and of the pod templates kept in ConfigMaps: spark-submit makes
    Spark's drivers and executors from those, and Spark sets their cpu and memory itself but keeps
    what else the template's container asks for (ephemeral-storage); see the spark role's
    configmaps.yaml.j2."""
    assert pod_doc is not None, "no pod spec was rendered"
    _variant, _role, _doc, spec, _is_workload = pod_doc
    missing = []
    for c in containers(spec):
        resources = c.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory", "ephemeral-storage"):
                if not (resources.get(section) or {}).get(resource):
                    missing.append("%s: %s.%s" % (c.get("name"), section, resource))
    assert not missing, "containers without resources: %s" % ", ".join(missing)


def quantity_bytes(value):
    return int(parse_quantity(value))


def _ephemeral_limit(container):
    return quantity_bytes(((container.get("resources") or {}).get("limits") or {}).get("ephemeral-storage", "0"))


def test_ephemeral_storage_limit_covers_the_emptydirs(workload_doc):
    """The kubelet evicts a pod whose emptyDirs and logs exceed the pod's ephemeral-storage limit
    (the sum of its containers' limits, or the largest init container's if larger): the limit a
    role gives must leave room for the size limits of the emptyDirs it mounts on disk."""
    assert workload_doc is not None, "no workload was rendered"
    _variant, _role, doc = workload_doc
    spec = pod_spec(doc)
    pod_limit = max([sum(_ephemeral_limit(c) for c in spec.get("containers") or [])]
                    + [_ephemeral_limit(c) for c in spec.get("initContainers") or []])
    empty_dirs = {v["name"]: quantity_bytes(v["emptyDir"].get("sizeLimit", "0"))
                  for v in spec.get("volumes") or [] if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"}
    unbounded = sorted(name for name, size in empty_dirs.items() if size == 0)
    assert not unbounded, "emptyDirs on disk without a sizeLimit: %s" % ", ".join(unbounded)
    assert pod_limit > sum(empty_dirs.values()), (
        "the pod's ephemeral-storage limit (%d MiB) does not exceed its emptyDirs' size limits (%s): raise the "
        "workload's resources.limits.ephemeral-storage" % (pod_limit // 2 ** 20, empty_dirs))


def test_images_pinned(pod_doc):
    assert pod_doc is not None, "no pod spec was rendered"
    _variant, _role, _doc, spec, is_workload = pod_doc
    # A pod template kept for Spark may leave the image to spark.kubernetes.container.image.
    problems = [p for _name, image in images(spec) if image or is_workload for p in [image_problem(image)] if p]
    assert not problems, "; ".join(problems)


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@functools.lru_cache(maxsize=None)
def _default_image_repositories():
    """Every *_image_repository default of the roles (what a mirror must replace)."""
    repositories = set()
    for path in REPO.glob("roles/*/defaults/main.yml"):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if key.endswith("_image_repository") and isinstance(value, str) and "{{" not in value:
                repositories.add(value)
    return sorted(repositories)


def test_images_from_mirror(mirror_doc):
    assert mirror_doc is not None, "nothing was rendered with bigdata_image_registry set"
    _variant, _role, doc = mirror_doc
    spec = pod_spec(doc)
    problems = []
    if spec is not None:
        problems += ["%s: %s" % (name, image) for name, image in images(spec)
                     if not image.startswith(MIRROR + "/")]
    # Image references in configuration (Spark's executor image, pod templates) move too.
    for text in _strings(doc):
        for repository in _default_image_repositories():
            first, _sep, rest = repository.partition("/")
            tail = rest if rest and ("." in first or ":" in first) else repository
            for match in re.finditer(re.escape(tail) + r":[\w.-]+", text):
                if not text[:match.start()].endswith(MIRROR + "/"):
                    problems.append("image %s in configuration" % text[:match.end()].split()[-1])
    assert not problems, "not from %s: %s" % (MIRROR, sorted(set(problems)))


def test_statefulset_keeps_volumes(statefulset_doc):
    assert statefulset_doc is not None, "no StatefulSet was rendered"
    _variant, _role, doc = statefulset_doc
    policy = doc["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    assert policy.get("whenDeleted") == "Retain" and policy.get("whenScaled") == "Retain", (
        "persistentVolumeClaimRetentionPolicy is %s; data must survive deleting or scaling the set" % policy)


def _matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_spreading(spread_doc):
    assert spread_doc is not None, "no multi-replica workload in stage or prod"
    variant, _role, doc = spread_doc
    values = inventory_vars(variant.split("-")[0])
    template = doc["spec"]["template"]
    labels = (template.get("metadata") or {}).get("labels") or {}
    spec = template.get("spec") or {}
    anti = ((spec.get("affinity") or {}).get("podAntiAffinity") or {})
    mode = values.get("bigdata_anti_affinity", "none")
    if mode == "required":
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        assert any(t.get("topologyKey") == "kubernetes.io/hostname"
                   and _matches((t.get("labelSelector") or {}).get("matchLabels"), labels) for t in terms), (
            "%s replicas without required pod anti-affinity on kubernetes.io/hostname matching the pods: %s"
            % (doc["spec"].get("replicas"), anti))
    elif mode == "preferred":
        terms = [t.get("podAffinityTerm") or {} for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        assert any(t.get("topologyKey") == "kubernetes.io/hostname"
                   and _matches((t.get("labelSelector") or {}).get("matchLabels"), labels) for t in terms), (
            "no preferred pod anti-affinity on kubernetes.io/hostname matching the pods: %s" % anti)
    zone = values.get("bigdata_zone_spread", "none")
    if zone != "none":
        wanted = "DoNotSchedule" if zone == "required" else "ScheduleAnyway"
        constraints = spec.get("topologySpreadConstraints") or []
        assert any(c.get("topologyKey") == "topology.kubernetes.io/zone"
                   and c.get("whenUnsatisfiable") == wanted
                   and _matches((c.get("labelSelector") or {}).get("matchLabels"), labels) for c in constraints), (
            "no %s zone spread (%s) matching the pods: %s" % (zone, wanted, constraints))
