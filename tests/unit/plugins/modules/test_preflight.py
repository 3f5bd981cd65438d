"""bigdata.stack.preflight: the roles' needs against one read of the cluster, every problem named."""

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import preflight
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError
from ansible_collections.bigdata.stack.plugins.modules import preflight as module

NS = "bigdata"


def named(name, namespace=None, labels=None, annotations=None, **rest):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return dict({"metadata": meta}, **rest)


def node_port_service(name, namespace, port, instance=None):
    labels = {"app.kubernetes.io/part-of": "bigdata-stack", "app.kubernetes.io/instance": instance} if instance else None
    return named(name, namespace, labels=labels, spec={"type": "NodePort", "ports": [{"port": 9094, "nodePort": port}]})


def storage_class(name, default=False):
    return named(name, annotations={"storageclass.kubernetes.io/is-default-class": "true"} if default else None)


KAFKA_PORTS = [{"port": 30092 + i, "service": "kafka-broker-%d-external" % i, "variable": "kafka_external_base_nodeport",
                "component": "kafka"} for i in range(2)]


class TestSecrets:
    NEEDS = [{"name": "kafka-tls", "variable": "kafka_tls_secret", "component": "kafka", "create": "Create it: kubectl ..."},
             {"name": "kafka-tls", "variable": "pipelines_kafka_ca_secret", "component": "pipelines", "create": ""},
             {"name": "", "variable": "bigdata_image_pull_secret", "component": "platform", "create": ""}]

    def test_a_missing_secret_names_variable_secret_namespace_and_fix_once(self):
        problems = preflight.secret_problems(self.NEEDS, {"other"}, NS)
        assert len(problems) == 1
        text = problems[0]
        for part in ("kafka_tls_secret=kafka-tls", "Secret kafka-tls", "namespace bigdata", "Create it: kubectl",
                     "pipelines_kafka_ca_secret"):
            assert part in text

    def test_present_secrets_and_empty_names_pass(self):
        assert preflight.secret_problems(self.NEEDS, {"kafka-tls"}, NS) == []

    def test_a_missing_namespace_says_to_create_it_first(self):
        text = preflight.secret_problems(self.NEEDS[:1], set(), NS, namespace_exists=False)[0]
        assert "kubectl create namespace bigdata" in text


class TestStorage:
    def test_a_named_class_that_does_not_exist_lists_the_classes(self):
        problems = preflight.storage_problems(
            [{"variable": "bigdata_storage_class", "storage_class": "standard", "component": "kafka"},
             {"variable": "bigdata_storage_class", "storage_class": "standard", "component": "hdfs"}],
            [storage_class("gp3", default=True), storage_class("io2")])
        assert len(problems) == 1
        assert "bigdata_storage_class=standard" in problems[0]
        assert "gp3 (default), io2" in problems[0]

    def test_unset_without_a_default_class_fails_naming_the_classes(self):
        problems = preflight.storage_problems(
            [{"variable": "bigdata_storage_class", "storage_class": "", "component": "kafka"},
             {"variable": "monitoring_prometheus_storage_class", "storage_class": "", "component": "monitoring"}],
            [storage_class("io2"), storage_class("gp3")])
        assert len(problems) == 1
        text = problems[0]
        assert "bigdata_storage_class and monitoring_prometheus_storage_class is empty" in text
        assert "kafka, monitoring" in text and "gp3, io2" in text
        assert "kubectl patch storageclass gp3" in text

    def test_unset_with_a_default_class_passes_and_so_does_an_existing_name(self):
        classes = [storage_class("standard", default=True), storage_class("fast")]
        assert preflight.storage_problems([{"variable": "v", "storage_class": "", "component": "c"},
                                           {"variable": "w", "storage_class": "fast", "component": "c"}], classes) == []

    def test_the_beta_default_annotation_counts(self):
        beta = named("old", annotations={"storageclass.beta.kubernetes.io/is-default-class": "true"})
        assert preflight.is_default_class(beta)

    def test_no_class_at_all_says_so(self):
        text = preflight.storage_problems([{"variable": "v", "storage_class": "", "component": "c"}], [])[0]
        assert "the cluster has: none" in text and "install a provisioner" in text


class TestNodePorts:
    def test_a_port_of_another_stack_names_its_service_instance_variable_and_a_free_value(self):
        services = [node_port_service("kafka-broker-0-external", "team-a", 30092, instance="team-a")]
        problems = preflight.node_port_problems(KAFKA_PORTS, services, NS)
        assert len(problems) == 1
        text = problems[0]
        for part in ("kafka_external_base_nodeport: NodePort 30092", "Service team-a/kafka-broker-0-external",
                     "bigdata instance team-a", "e.g. kafka_external_base_nodeport: 30093"):
            assert part in text, text

    def test_the_same_stacks_own_services_are_no_conflict(self):
        services = [node_port_service("kafka-broker-%d-external" % i, NS, 30092 + i, instance="bigdata") for i in range(2)]
        assert preflight.node_port_problems(KAFKA_PORTS, services, NS) == []

    def test_another_service_of_the_same_namespace_is_a_conflict(self):
        services = [node_port_service("something-else", NS, 30093)]
        text = preflight.node_port_problems(KAFKA_PORTS, services, NS)[0]
        assert "NodePort 30093" in text and "not a bigdata stack" in text

    def test_the_suggestion_skips_ports_taken_further_up(self):
        held = {p: node_port_service("x%d" % p, "other", p) for p in (30092, 30094, 30095)}
        assert preflight.free_base([30092, 30093], held, NS, KAFKA_PORTS) == 30096

    def test_a_port_asked_for_twice_by_the_stack_is_a_problem(self):
        twice = KAFKA_PORTS + [{"port": 30092, "service": "other-external", "variable": "x_nodeport", "component": "x"}]
        assert any("asked for twice" in p for p in preflight.node_port_problems(twice, [], NS))


class TestNamespace:
    def test_terminating_by_phase_or_deletion_timestamp(self):
        assert preflight.is_terminating({"metadata": {"deletionTimestamp": "t"}})
        assert preflight.is_terminating({"metadata": {}, "status": {"phase": "Terminating"}})
        assert not preflight.is_terminating({"metadata": {}, "status": {"phase": "Active"}})
        assert not preflight.is_terminating(None)

    def test_the_message_says_what_holds_it(self):
        ns = {"metadata": {"name": NS, "deletionTimestamp": "2026-12-02T00:00:00Z"},
              "status": {"phase": "Terminating", "conditions": [
                  {"type": "NamespaceFinalizersRemaining", "status": "True", "reason": "SomeFinalizersRemain",
                   "message": "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"},
                  {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "message": "all good"}]}}
        text = preflight.terminating_message(ns, 5, "bigdata_preflight_namespace_timeout")
        assert "example.com/hold" in text and "all good" not in text
        assert "bigdata_preflight_namespace_timeout" in text and "Nothing was written" in text


class FakeCluster:
    """What the module reads: a namespace that stays Terminating for `terminating` looks, Secrets, classes, Services."""

    def __init__(self, terminating=0, namespace=True, secrets=(), classes=(), services=(), forbidden=()):
        self.terminating = terminating
        self.namespace = namespace
        self.secrets = [named(s, NS) for s in secrets]
        self.classes = list(classes)
        self.services = list(services)
        self.forbidden = forbidden
        self.calls = []

    def get(self, kind, namespace, name, api_version="v1"):
        self.calls.append(("get", kind))
        if self.terminating > 0:
            self.terminating -= 1
            return {"metadata": {"name": name, "deletionTimestamp": "t"}, "status": {"phase": "Terminating"}}
        return {"metadata": {"name": name}, "status": {"phase": "Active"}} if self.namespace else None

    def list(self, kind, namespace, label_selector=None, api_version="v1"):
        self.calls.append(("list", kind, namespace))
        if kind in self.forbidden:
            raise ApiError(403, "Forbidden", '{"message": "cannot list %s"}' % kind, "list " + kind)
        return {"Secret": self.secrets, "StorageClass": self.classes, "Service": self.services}[kind]


def params(**needs):
    return {"namespace": NS, "namespace_timeout": 10, "namespace_sleep": 2,
            "needs": [dict({"component": "kafka", "secrets": [], "storage": [], "node_ports": []}, **needs)]}



class TestCheck:
    def test_every_problem_at_once_with_one_read_per_kind(self):
        cluster = FakeCluster(classes=[storage_class("gp3")],
                              services=[node_port_service("kafka-broker-0-external", "team-a", 30092, "team-a")])
        result, problems = module.check(cluster, params(
            secrets=[{"name": "kafka-tls", "variable": "kafka_tls_secret", "create": ""}],
            storage=[{"variable": "bigdata_storage_class", "storage_class": ""}],
            node_ports=KAFKA_PORTS[:1]))
        assert len(problems) == 3
        assert result["changed"] is False and result["namespace_exists"] is True
        assert [c for c in cluster.calls if c[0] == "list"] == [
            ("list", "Secret", NS), ("list", "StorageClass", None), ("list", "Service", None)]

    def test_nothing_needed_reads_only_the_namespace(self):
        cluster = FakeCluster()
        result, problems = module.check(cluster, params())
        assert problems == [] and cluster.calls == [("get", "Namespace")]

    def test_a_terminating_namespace_is_waited_for(self, clock):
        cluster = FakeCluster(terminating=3, namespace=False)
        result, problems = module.check(cluster, params(), clock=clock.monotonic, sleep=clock.sleep)
        assert problems == [] and result["namespace_exists"] is False and result["namespace_waited"] == 6

    def test_a_namespace_still_terminating_at_the_timeout_fails(self, clock):
        with pytest.raises(TimeoutError, match="still being deleted"):
            module.check(FakeCluster(terminating=100), params(), clock=clock.monotonic, sleep=clock.sleep)

    def test_a_forbidden_cluster_wide_read_skips_that_check_only(self):
        cluster = FakeCluster(forbidden=("Service",), classes=[storage_class("gp3", default=True)])
        result, problems = module.check(cluster, params(storage=[{"variable": "v", "storage_class": ""}],
                                                        node_ports=KAFKA_PORTS[:1]))
        assert problems == []
        assert len(result["skipped"]) == 1 and "NodePort" in result["skipped"][0]

    def test_secrets_in_a_namespace_that_does_not_exist_are_missing_without_a_read(self):
        cluster = FakeCluster(namespace=False)
        result, problems = module.check(cluster, params(
            secrets=[{"name": "kafka-tls", "variable": "kafka_tls_secret", "create": ""}]))
        assert len(problems) == 1 and "nor does the namespace" in problems[0]
        assert ("list", "Secret", NS) not in cluster.calls


def test_the_report_numbers_several_problems_and_says_nothing_was_written():
    assert preflight.report(["a."]) == "preflight: a. Nothing was written to the cluster."
    text = preflight.report(["a.", "b."])
    assert text.startswith("preflight: 2 problems, nothing was written") and "\n1. a.\n2. b." in text
