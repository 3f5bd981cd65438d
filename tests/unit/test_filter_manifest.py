# -*- coding: utf-8 -*-
"""Unit tests of plugins/filter/manifest.py: the pieces every manifest shares, and their docs."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import subprocess
import sys

import pytest
import yaml

FILTER_DIR = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "filter"
_spec = importlib.util.spec_from_file_location("bigdata_stack_filter_manifest", FILTER_DIR / "manifest.py")
manifest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(manifest)

FILTERS = manifest.FilterModule().filters()
GI = 2 ** 30
MI = 2 ** 20
RESOURCES = {"requests": {"cpu": "250m", "memory": "1Gi", "ephemeral-storage": "256Mi"},
             "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}}


# Labels, images, security contexts, spreading


def test_labels_are_the_selector_plus_part_of_managed_by_and_version_in_that_order():
    assert list(manifest.labels("kafka", "bigdata", "broker", "4.4.0").items()) == [
        ("app.kubernetes.io/name", "kafka"),
        ("app.kubernetes.io/instance", "bigdata"),
        ("app.kubernetes.io/component", "broker"),
        ("app.kubernetes.io/part-of", "bigdata-stack"),
        ("app.kubernetes.io/managed-by", "ansible"),
        ("app.kubernetes.io/version", "4.4.0"),
    ]


def test_labels_leave_out_an_empty_component_and_version_and_stringify_extra_values():
    result = manifest.labels("kibana", "dev", extra={"bigdata.stack/flag": True, "n": 3})
    assert "app.kubernetes.io/component" not in result
    assert "app.kubernetes.io/version" not in result
    assert result["bigdata.stack/flag"] == "True" and result["n"] == "3"


def test_selector_labels_never_carry_the_version():
    assert manifest.selector_labels("hdfs", "bigdata", "datanode") == {
        "app.kubernetes.io/name": "hdfs",
        "app.kubernetes.io/instance": "bigdata",
        "app.kubernetes.io/component": "datanode",
    }
    assert manifest.selector_labels("hdfs", "bigdata") == {
        "app.kubernetes.io/name": "hdfs", "app.kubernetes.io/instance": "bigdata"}


@pytest.mark.parametrize(
    ("repository", "registry", "expected"),
    [
        ("apache/kafka", "", "apache/kafka:1"),
        ("apache/kafka", "mirror:5000", "mirror:5000/apache/kafka:1"),
        # The original registry host goes; the repository path stays.
        ("docker.elastic.co/elasticsearch/elasticsearch", "mirror:5000", "mirror:5000/elasticsearch/elasticsearch:1"),
        ("registry.local:5000/team/app", "m.example", "m.example/team/app:1"),
        ("localhost/app", "m.example", "m.example/app:1"),
        ("busybox", "m.example", "m.example/busybox:1"),
        # A mirror with a path of its own, written with or without the trailing slash.
        ("apache/spark", "mirror.internal:5000/bigdata/", "mirror.internal:5000/bigdata/apache/spark:1"),
    ],
)
def test_image_moves_to_the_mirror_keeping_the_repository_path(repository, registry, expected):
    assert manifest.image(repository, "1", registry) == expected


@pytest.mark.parametrize("tag", ["", None])
def test_image_needs_a_tag(tag):
    with pytest.raises(ValueError, match="apache/kafka"):
        manifest.image("apache/kafka", tag)


def test_pod_security_context_is_non_root_with_fs_group_and_seccomp():
    assert manifest.pod_security_context("1000") == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    context = manifest.pod_security_context(185, 0)
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (185, 0, 0)


def test_pod_security_context_refuses_root():
    with pytest.raises(ValueError, match="uid 0"):
        manifest.pod_security_context(0)


@pytest.mark.parametrize("read_only", [True, False])
def test_container_security_context_drops_everything(read_only):
    assert manifest.container_security_context(read_only) == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}


def test_anti_affinity_by_mode():
    selector = {"app.kubernetes.io/name": "kafka"}
    term = {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
    assert manifest.anti_affinity(selector) == {}
    assert manifest.anti_affinity(selector, "required") == {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    assert manifest.anti_affinity(selector, "preferred") == {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}]}}


def test_topology_spread_by_mode():
    selector = {"app.kubernetes.io/name": "hdfs"}
    assert manifest.topology_spread(selector) == []
    hard, = manifest.topology_spread(selector, "required")
    soft, = manifest.topology_spread(selector, "preferred", topology_key="rack")
    assert hard == {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": selector}}
    assert (soft["whenUnsatisfiable"], soft["topologyKey"]) == ("ScheduleAnyway", "rack")


@pytest.mark.parametrize("function", [manifest.anti_affinity, manifest.topology_spread])
def test_spreading_refuses_an_unknown_mode_naming_the_choices(function):
    with pytest.raises(ValueError, match="none, preferred, required"):
        function({}, "always")


# Quantities


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512Mi", 512 * MI),
        ("2Gi", 2 * GI),
        ("1Ti", 2 ** 40),
        ("1G", 10 ** 9),
        ("1k", 1000),
        ("1E", 10 ** 18),
        ("1e9", 10 ** 9),
        ("1E3", 1000),
        ("+1Ki", 1024),
        ("1.5Gi", 3 * GI // 2),
        (".5Ki", 512),
        ("5.", 5),
        # Fractions of a byte round up, as the API server rounds them.
        ("0.5", 1),
        ("100m", 1),
        ("1001m", 2),
        (" 1Gi ", GI),
        (1024, 1024),
        (0.1, 1),
        ("-1Gi", -GI),
    ],
)
def test_quantity_bytes(value, expected):
    assert manifest.quantity_bytes(value) == expected


# What the API server refuses, although kubernetes.utils.parse_quantity would read some of it.
MALFORMED_QUANTITIES = ["1 GB", "one-gig", "1Gb", "1K", "1ki", "1_000", "NaN", "Infinity", "1e", "Gi", "1.2.3",
                        "", None, True, "--1"]


@pytest.mark.parametrize("value", MALFORMED_QUANTITIES)
def test_quantity_bytes_refuses_what_the_api_server_refuses(value):
    with pytest.raises(ValueError, match="quantity_bytes"):
        manifest.quantity_bytes(value)
    assert manifest.quantity_bytes(value, -1) == -1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500m", 500), ("2", 2000), ("1", 1000), (2, 2000), (0.5, 500), (0.1, 100), ("0.1", 100),
     ("1.0001", 1001), ("100u", 1), ("250000u", 250), ("1e-3", 1)],
)
def test_cpu_millicores(value, expected):
    assert manifest.cpu_millicores(value) == expected


@pytest.mark.parametrize("value", ["1 core", "500 m", "1K", None, False])
def test_cpu_millicores_refuses_malformed_quantities(value):
    with pytest.raises(ValueError, match="cpu_millicores"):
        manifest.cpu_millicores(value)
    assert manifest.cpu_millicores(value, None) is None


def test_loading_the_filters_does_not_import_the_kubernetes_client():
    # Ansible imports filter plugins in every task's forked worker: `import kubernetes` there cost
    # about half a second per validate task (docs/benchmarks.md). Only the quantity module is read.
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('m', %r); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "assert m.quantity_bytes('1Gi') == 2 ** 30; "
            "print(sorted(n for n in sys.modules if n == 'kubernetes' or n.startswith('kubernetes.')))"
            % str(FILTER_DIR / "manifest.py"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("text", ["1Gi", "0.1", "100m", "2e3", "1.5Ki", "12E", "7n"])
def test_quantities_read_like_the_kubernetes_package(text):
    from kubernetes.utils import parse_quantity
    assert manifest.parse_quantity(text) == parse_quantity(text)


def test_quantities_need_the_kubernetes_package(monkeypatch):
    monkeypatch.setattr(manifest, "parse_quantity", None)
    with pytest.raises(ValueError, match="pip install kubernetes"):
        manifest.quantity_bytes("1Gi")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("512m", 512 * MI), ("512M", 512 * MI), ("2g", 2 * GI), ("1t", 2 ** 40), ("64k", 65536), ("1048576", MI),
     (4096, 4096)],
)
def test_jvm_bytes(value, expected):
    assert manifest.jvm_bytes(value) == expected


# -Xmx takes neither Kubernetes suffixes nor fractions.
@pytest.mark.parametrize("value", ["512Mi", "1.5g", "2 g", "1gb", "", None, True, "-1g"])
def test_jvm_bytes_refuses_what_the_jvm_refuses(value):
    with pytest.raises(ValueError, match="jvm_bytes"):
        manifest.jvm_bytes(value)
    assert manifest.jvm_bytes(value, -1) == -1


def test_jvm_heap_options_fix_the_heap():
    assert manifest.jvm_heap_options("512m") == "-Xms512m -Xmx512m"
    with pytest.raises(ValueError, match="512Mi"):
        manifest.jvm_heap_options("512Mi")


# Configuration files


def test_java_properties_escapes_as_properties_load_reads_back():
    # The text below is what java.util.Properties.load(InputStream) reads back as exactly the
    # mapping (checked with Java 17): keys escape separators, comment marks and spaces; values only
    # a leading one; everything outside printable ASCII becomes \\uXXXX (ISO-8859-1 streams).
    text = manifest.java_properties({
        "a b": "x",
        "k:v=w": " lead",
        "#hash": "!bang",
        "path": "C:\\dir\\x",
        "multi": "l1\nl2\tt\rz",
        "uni": "\u00e9\u20ac\U0001F600",
        "ctl": "\x01\x7f",
        "eq": "a=b:c#d!e",
    })
    assert text == (
        "a\\ b=x\n"
        "k\\:v\\=w=\\ lead\n"
        "\\#hash=\\!bang\n"
        "path=C:\\\\dir\\\\x\n"
        "multi=l1\\nl2\\tt\\rz\n"
        "uni=\\u00E9\\u20AC\\uD83D\\uDE00\n"
        "ctl=\\u0001\\u007F\n"
        "eq=a=b:c#d!e\n"
    )


def test_java_properties_values_header_and_order():
    text = manifest.java_properties({"z": True, "a": False, "roles": ["broker", "controller"], "empty": None, "n": 3},
                                    header="Rendered\n\nby us")
    assert text == "# Rendered\n#\n# by us\nz=true\na=false\nroles=broker,controller\nempty=\nn=3\n"
    assert manifest.java_properties({}) == "\n"


def test_hadoop_xml_escapes_names_values_and_the_header():
    text = manifest.hadoop_xml({"a<b": "x & \"y\" > z", "flag": False, "none": None}, header="a -- b")
    assert text == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- a - - b -->\n"
        "<configuration>\n"
        "  <property>\n    <name>a&lt;b</name>\n    <value>x &amp; &quot;y&quot; &gt; z</value>\n  </property>\n"
        "  <property>\n    <name>flag</name>\n    <value>false</value>\n  </property>\n"
        "  <property>\n    <name>none</name>\n    <value></value>\n  </property>\n"
        "</configuration>\n"
    )
    assert "<!--" not in manifest.hadoop_xml({})


# Shared objects


def test_pod_disruption_budget_selects_the_workload_and_is_named_after_it():
    assert manifest.pod_disruption_budget("kafka", "bigdata", "broker", "4.4.0") == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "kafka-broker", "labels": manifest.labels("kafka", "bigdata", "broker", "4.4.0")},
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": manifest.selector_labels("kafka", "bigdata", "broker")}},
    }


def test_pod_disruption_budget_with_its_own_name_and_budget():
    budget = manifest.pod_disruption_budget("kibana", "bigdata", "server", pdb_name="kibana", max_unavailable="2")
    assert budget["metadata"]["name"] == "kibana"
    assert budget["spec"]["maxUnavailable"] == 2
    assert "app.kubernetes.io/version" not in budget["metadata"]["labels"]


UI_LABELS = {"app.kubernetes.io/name": "kibana"}


def test_ui_ingress_with_class_tls_and_a_backend_serving_https():
    assert manifest.ui_ingress("kibana", UI_LABELS, "kibana.example.com", class_name="nginx",
                               tls_secret="kibana-ingress-tls", backend_https=True) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "kibana", "labels": UI_LABELS,
                     "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["kibana.example.com"], "secretName": "kibana-ingress-tls"}],
            "rules": [{"host": "kibana.example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "kibana", "port": {"name": "http"}}}}]}}],
        },
    }


def test_ui_ingress_without_class_tls_secret_or_annotations_leaves_them_out():
    ingress = manifest.ui_ingress("spark-history", UI_LABELS, "h.example.com", class_name="", tls_secret="",
                                  annotations={})
    assert "annotations" not in ingress["metadata"]
    assert list(ingress["spec"]) == ["rules"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "spark-history", "port": {"name": "http"}}


def test_ui_ingress_annotations_are_added_after_the_backend_protocol_and_win_over_it():
    given = {"a/x": "1", "nginx.ingress.kubernetes.io/backend-protocol": "GRPCS"}
    ingress = manifest.ui_ingress("kibana", UI_LABELS, "h", annotations=given, backend_https=True)
    assert ingress["metadata"]["annotations"] == given
    assert manifest.ui_ingress("kibana", UI_LABELS, "h", annotations=given)["metadata"]["annotations"] == given
    # The caller's mapping is not changed.
    assert given == {"a/x": "1", "nginx.ingress.kubernetes.io/backend-protocol": "GRPCS"}
    assert manifest.ui_ingress("kibana", UI_LABELS, "h", annotations={"a/x": "1"}, backend_https=True)[
        "metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS", "a/x": "1"}


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("true", True), ("false", False), (False, False)])
def test_ui_ingress_backend_https_reads_booleans_as_ansible_does(value, expected):
    annotations = manifest.ui_ingress("kibana", UI_LABELS, "h", backend_https=value)["metadata"].get("annotations")
    assert bool(annotations) is expected


def test_ui_ingress_and_route_to_another_service_and_port():
    ingress = manifest.ui_ingress("ui", UI_LABELS, "h", service="backend", port="web")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "backend", "port": {"name": "web"}}
    route = manifest.ui_route("ui", UI_LABELS, "h", service="backend", port="web")
    assert route["spec"]["to"]["name"] == "backend" and route["spec"]["port"] == {"targetPort": "web"}


@pytest.mark.parametrize("termination", ["edge", "passthrough"])
def test_ui_route_terminates_tls_at_the_router_or_passes_it_through(termination):
    assert manifest.ui_route("grafana", UI_LABELS, "grafana.example.com", termination=termination) == {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "grafana", "labels": UI_LABELS},
        "spec": {
            "host": "grafana.example.com",
            "to": {"kind": "Service", "name": "grafana", "weight": 100},
            "port": {"targetPort": "http"},
            "tls": {"termination": termination, "insecureEdgeTerminationPolicy": "Redirect"},
            "wildcardPolicy": "None",
        },
    }


def test_ui_route_carries_the_annotations_as_given_and_none_by_default():
    assert manifest.ui_route("k", UI_LABELS, "h")["metadata"] == {"name": "k", "labels": UI_LABELS}
    # No backend-protocol annotation: that is ingress-nginx's, not the router's.
    assert manifest.ui_route("k", UI_LABELS, "h", annotations={"a/x": "1"}, termination="passthrough")[
        "metadata"]["annotations"] == {"a/x": "1"}


@pytest.mark.parametrize("termination", ["reencrypt", "Edge", ""])
def test_ui_route_refuses_other_terminations_naming_the_choices(termination):
    with pytest.raises(ValueError, match="edge, passthrough"):
        manifest.ui_route("k", UI_LABELS, "h", termination=termination)


@pytest.mark.parametrize("function", [manifest.ui_ingress, manifest.ui_route])
def test_ui_exposure_needs_a_host(function):
    with pytest.raises(ValueError, match="needs a host"):
        function("kibana", UI_LABELS, "")


def test_volume_claim_template_without_storage_class_uses_the_default_class():
    assert manifest.volume_claim_template("hdfs", "bigdata", "datanode", "20Gi") == {
        "metadata": {"name": "data", "labels": manifest.labels("hdfs", "bigdata", "datanode")},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
    }


def test_volume_claim_template_with_storage_class_and_claim_name():
    claim = manifest.volume_claim_template("kafka", "bigdata", "broker", "10Gi", "standard", claim="logs")
    assert claim["metadata"]["name"] == "logs"
    assert list(claim["spec"]) == ["accessModes", "resources", "storageClassName"]
    assert claim["spec"]["storageClassName"] == "standard"
    # Claim templates are immutable: no version label that an upgrade would change.
    assert "app.kubernetes.io/version" not in claim["metadata"]["labels"]


@pytest.mark.parametrize("size", ["10 GB", "0", "-1Gi", ""])
def test_volume_claim_template_refuses_a_size_that_is_no_positive_quantity(size):
    with pytest.raises(ValueError, match="kafka-broker"):
        manifest.volume_claim_template("kafka", "bigdata", "broker", size)


# The shared resource rules


def test_a_workload_within_the_rules_has_no_errors():
    workload = {"resources": RESOURCES, "heap": "512m", "storage_size": "5Gi", "name": "ignored"}
    assert manifest.resource_errors(workload, "kafka_broker_", min_storage=GI) == []
    assert manifest.resource_errors({"resources": RESOURCES}, "kibana_") == []


def test_a_malformed_quantity_is_named_with_its_value_and_an_example():
    resources = {"requests": dict(RESOURCES["requests"]), "limits": dict(RESOURCES["limits"], memory="1 GB")}
    errors = manifest.resource_errors({"resources": resources, "heap": "512m"}, "kafka_broker_")
    # The heap cannot be compared with a malformed limit: one error, not two.
    assert errors == ["kafka_broker_resources.limits.memory=1 GB is not a positive Kubernetes quantity "
                      "(e.g. 512Mi or 2Gi)."]


@pytest.mark.parametrize(("resource", "value", "example"), [
    ("cpu", "0", "500m or 2"), ("cpu", "-1", "500m or 2"), ("memory", "0Gi", "512Mi or 2Gi"),
    ("cpu", "2 cores", "500m or 2"), ("ephemeral-storage", "0", "256Mi or 2Gi"),
    ("ephemeral-storage", "1 GB", "256Mi or 2Gi")])
def test_zero_negative_and_malformed_quantities_are_errors(resource, value, example):
    resources = {"requests": dict(RESOURCES["requests"], **{resource: value}), "limits": RESOURCES["limits"]}
    errors = manifest.resource_errors({"resources": resources}, "x_")
    assert errors == ["x_resources.requests.%s=%s is not a positive Kubernetes quantity (e.g. %s)."
                      % (resource, value, example)]


def test_requests_must_not_exceed_limits():
    resources = {"requests": {"cpu": "1500m", "memory": "2Gi", "ephemeral-storage": "2Gi"},
                 "limits": {"cpu": "1", "memory": "2048Mi", "ephemeral-storage": "1Gi"}}
    errors = manifest.resource_errors({"resources": resources}, "hdfs_namenode_")
    assert errors == ["hdfs_namenode_resources.requests.cpu=1500m exceeds hdfs_namenode_resources.limits.cpu=1: "
                      "lower the request or raise the limit.",
                      "hdfs_namenode_resources.requests.ephemeral-storage=2Gi exceeds "
                      "hdfs_namenode_resources.limits.ephemeral-storage=1Gi: lower the request or raise the limit."]


def test_every_quantity_is_required():
    errors = manifest.resource_errors({"resources": {"requests": {"cpu": "1"}, "limits": "2Gi"}}, "x_")
    assert [e.split(" ")[0] for e in errors] == [
        "x_resources.requests.memory", "x_resources.requests.ephemeral-storage", "x_resources.limits.cpu",
        "x_resources.limits.memory", "x_resources.limits.ephemeral-storage"]
    assert all("is missing: set the requests and limits of cpu, memory and ephemeral-storage." in e for e in errors)


def test_ephemeral_storage_is_required_where_cpu_and_memory_are_set():
    """A resources block written before ephemeral-storage was required is refused, naming both keys."""
    resources = {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert manifest.resource_errors({"resources": resources}, "kibana_") == [
        "kibana_resources.%s.ephemeral-storage is missing: set the requests and limits of cpu, memory and "
        "ephemeral-storage." % section for section in ("requests", "limits")]


@pytest.mark.parametrize("resources", [None, "1Gi", {}, []])
def test_resources_must_be_a_mapping_with_requests_and_limits(resources):
    errors = manifest.resource_errors({"resources": resources}, "kibana_")
    assert len(errors) == 1 and errors[0].startswith("kibana_resources=")
    assert "{requests: {cpu, memory, ephemeral-storage}, limits: {cpu, memory, ephemeral-storage}}" in errors[0]


def test_heap_must_be_smaller_than_the_memory_limit_by_default():
    assert manifest.resource_errors({"resources": RESOURCES, "heap": "1023m"}, "k_") == []
    errors = manifest.resource_errors({"resources": RESOURCES, "heap": "1g"}, "kafka_broker_")
    assert errors == ["kafka_broker_heap=1g must be smaller than kafka_broker_resources.limits.memory=1Gi: the JVM "
                      "needs memory beyond its heap (off-heap buffers, threads), and the page cache uses what is left. "
                      "Lower the heap (half the limit, 512m, is a good start) or raise the limit."]


@pytest.mark.parametrize(("percent", "largest", "too_large"), [(50, "512m", "513m"), (75, "768m", "769m")])
def test_heap_at_most_a_share_of_the_memory_limit(percent, largest, too_large):
    prefix = "elasticsearch_node_pools[name=data]."
    assert manifest.resource_errors({"resources": RESOURCES, "heap": largest}, prefix, percent) == []
    errors = manifest.resource_errors({"resources": RESOURCES, "heap": too_large}, prefix, percent)
    assert errors == ["%sheap=%s must be at most %d%% of %sresources.limits.memory=1Gi, i.e. %s: the rest is for "
                      "off-heap memory and the page cache. Lower the heap or raise the limit."
                      % (prefix, too_large, percent, prefix, largest)]


def test_suggested_heaps_are_jvm_sizes():
    resources = {"requests": dict(RESOURCES["requests"], memory="4Gi"), "limits": dict(RESOURCES["limits"], memory="4Gi")}
    too_large, = manifest.resource_errors({"resources": resources, "heap": "4g"}, "x_")
    assert "half the limit, 2g," in too_large
    too_large, = manifest.resource_errors({"resources": resources, "heap": "4g"}, "x_", max_heap_percent=30)
    assert "i.e. 1228m:" in too_large


@pytest.mark.parametrize("heap", ["512Mi", "1.5g", "0", None])
def test_heap_must_be_a_jvm_size(heap):
    errors = manifest.resource_errors({"resources": RESOURCES, "heap": heap}, "spark_history_")
    assert errors == ["spark_history_heap=%s is not a JVM heap size (-Xmx syntax, e.g. 512m or 2g)." % heap]


def test_storage_size_at_least_the_minimum_given_as_bytes_or_quantity():
    workload = {"resources": RESOURCES, "storage_size": "100Mi"}
    message = ("hdfs_datanode_storage_size=100Mi is below the minimum of 1Gi: raise it (a volume's size is fixed "
               "once the StatefulSet exists).")
    assert manifest.resource_errors(workload, "hdfs_datanode_", min_storage=GI) == [message]
    assert manifest.resource_errors(workload, "hdfs_datanode_", min_storage="1Gi") == [message]
    assert manifest.resource_errors(workload, "hdfs_datanode_", min_storage="100Mi") == []
    assert manifest.resource_errors(workload, "hdfs_datanode_") == []


@pytest.mark.parametrize("size", ["5 GB", "0", None])
def test_storage_size_must_be_a_positive_quantity(size):
    errors = manifest.resource_errors({"resources": RESOURCES, "storage_size": size}, "kafka_controller_")
    assert errors == ["kafka_controller_storage_size=%s is not a positive Kubernetes quantity (e.g. 10Gi)." % size]


def test_every_problem_is_reported_at_once():
    resources = {"requests": dict(RESOURCES["requests"], cpu="2", memory="2Gi"),
                 "limits": dict(RESOURCES["limits"], cpu="1", memory="1Gi")}
    errors = manifest.resource_errors({"resources": resources, "heap": "2g", "storage_size": "1Mi"}, "x_",
                                      min_storage="1Gi")
    assert [e.split("=")[0] for e in errors] == [
        "x_resources.requests.cpu", "x_resources.requests.memory", "x_heap", "x_storage_size"]


@pytest.mark.parametrize("percent", [0, 101, -5])
def test_max_heap_percent_is_a_share(percent):
    with pytest.raises(ValueError, match="max_heap_percent"):
        manifest.resource_errors({"resources": RESOURCES}, "x_", max_heap_percent=percent)


# Documentation: ansible-doc -t filter bigdata.stack.<name> reads plugins/filter/<name>.yml.


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_is_documented_with_its_own_arguments(name):
    path = FILTER_DIR / ("%s.yml" % name)
    assert path.is_file(), "%s has no documentation file %s" % (name, path.name)
    docs = yaml.safe_load(path.read_text())
    documentation = docs["DOCUMENTATION"]
    assert documentation["name"] == name
    assert documentation["short_description"] and documentation["description"] and documentation["version_added"]
    assert docs["EXAMPLES"].count("bigdata.stack.%s" % name) >= 1
    assert "_value" in docs["RETURN"]
    parameters = list(inspect.signature(FILTERS[name]).parameters)
    options = documentation.get("options") or {}
    assert "_input" in options
    assert set(options) - {"_input"} == set(parameters[1:]), "documented options differ from %s%s" % (
        name, inspect.signature(FILTERS[name]))
    positional = [p.strip() for p in str(documentation.get("positional", "")).split(",") if p.strip()]
    assert positional == parameters[1:len(positional) + 1]


def test_pod_security_context_leaves_uid_and_groups_to_openshift():
    # restricted-v2 assigns uid and fsGroup from the namespace's range and refuses fixed ones.
    assert manifest.pod_security_context(185, 185, platform="openshift") == {
        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert manifest.pod_security_context(185, platform="kubernetes")["runAsUser"] == 185
    with pytest.raises(ValueError):
        manifest.pod_security_context(185, platform="openshfit")
    with pytest.raises(ValueError):
        manifest.pod_security_context(0, platform="openshift")
