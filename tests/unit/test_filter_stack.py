# -*- coding: utf-8 -*-
"""Unit tests of plugins/filter/stack.py (profile and component resolution)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import yaml

FILTER_PATH = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "filter" / "stack.py"
_spec = importlib.util.spec_from_file_location("bigdata_stack_filter_stack", FILTER_PATH)
stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stack)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("streaming", ["platform", "kafka", "elasticsearch", "kibana", "spark", "pipelines"]),
        ("batch", ["platform", "hdfs", "elasticsearch", "kibana", "spark", "pipelines"]),
        ("full", ["platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "pipelines"]),
    ],
)
def test_profiles(profile, expected):
    assert stack.enabled_components(profile) == expected


@pytest.mark.parametrize("empty", [None, [], ""])
def test_empty_component_list_means_profile(empty):
    assert stack.enabled_components("batch", empty) == stack.enabled_components("batch")


def test_explicit_components_win_over_profile():
    assert stack.enabled_components("full", ["kafka"]) == ["platform", "kafka"]


def test_kibana_brings_elasticsearch():
    assert stack.enabled_components("full", ["kibana"]) == ["platform", "elasticsearch", "kibana"]


def test_spark_brings_hdfs_only_with_event_log_on_hdfs():
    assert stack.enabled_components("full", ["spark"]) == ["platform", "spark"]
    assert stack.enabled_components("full", ["spark"], spark_event_log_hdfs=True) == [
        "platform",
        "hdfs",
        "spark",
    ]


def test_streaming_with_spark_on_hdfs_adds_hdfs():
    result = stack.enabled_components("streaming", None, spark_event_log_hdfs=True)
    assert "hdfs" in result
    assert result.index("hdfs") < result.index("spark")


def test_pipelines_bring_spark_and_elasticsearch_but_not_their_sources():
    # Kafka and HDFS depend on pipelines_enabled, which the pipelines role validates.
    assert stack.enabled_components("full", ["pipelines"]) == ["platform", "elasticsearch", "spark", "pipelines"]


def test_pipelines_come_last_so_they_start_after_everything_else():
    for profile in stack.PROFILES:
        assert stack.enabled_components(profile)[-1] == "pipelines"
    assert stack.CATALOG[-1] == "pipelines"


def test_platform_alone():
    assert stack.enabled_components("full", ["platform"]) == ["platform"]


def test_order_follows_dependencies_not_input_order():
    result = stack.enabled_components("full", ["spark", "kibana", "kafka", "hdfs"], True)
    assert result == ["platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark"]
    for component in result:
        for dep in stack.component_dependencies(component, True):
            assert result.index(dep) < result.index(component)


def test_duplicates_collapse():
    assert stack.enabled_components("full", ["kafka", "kafka"]) == ["platform", "kafka"]


def test_comma_separated_string_is_a_list():
    assert stack.enabled_components("full", "kafka, kibana") == [
        "platform",
        "kafka",
        "elasticsearch",
        "kibana",
    ]


def test_unknown_component_fails_naming_the_variable_and_the_choices():
    with pytest.raises(stack.ComponentError) as err:
        stack.enabled_components("full", ["kafka", "cassandra"])
    message = str(err.value)
    assert "bigdata_components" in message
    assert "cassandra" in message
    assert "elasticsearch" in message


def test_unknown_profile_fails_naming_the_variable():
    with pytest.raises(stack.ComponentError, match="bigdata_profile.*lambda"):
        stack.enabled_components("lambda")


def test_unknown_profile_is_irrelevant_with_explicit_components():
    assert stack.enabled_components("lambda", ["kafka"]) == ["platform", "kafka"]


def test_unknown_components_lists_only_unknown_names_sorted():
    assert stack.unknown_components(["zk", "kafka", "cassandra", "zk"]) == ["cassandra", "zk"]
    assert stack.unknown_components([]) == []
    assert stack.unknown_components(None) == []


def test_catalog_order_is_a_valid_dependency_order():
    for component in stack.CATALOG:
        for dep in stack.component_dependencies(component, True):
            assert stack.CATALOG.index(dep) < stack.CATALOG.index(component)


def test_every_profile_names_only_known_components():
    for members in stack.PROFILES.values():
        assert not stack.unknown_components(members)


def test_filter_module_exposes_filters_and_maps_errors():
    from ansible.errors import AnsibleFilterError

    filters = stack.FilterModule().filters()
    assert set(filters) == {"enabled_components", "unknown_components", "render_tasks",
                            "render_role_copy", "render_manifests", "template_paths"}
    with pytest.raises(AnsibleFilterError, match="bigdata_components"):
        filters["enabled_components"]("full", ["nope"])


# Offline rendering (playbooks/render.yml)


def test_render_tasks_turns_a_k8s_template_write_into_files():
    tasks = [
        {"name": "Read secrets", "kubernetes.core.k8s_info": {"kind": "Secret"}, "when": "not bigdata_render_only"},
        {"name": "Apply", "kubernetes.core.k8s": {"state": "present", "namespace": "{{ ns }}",
                                                  "template": ["a.yaml.j2", "b.yaml.j2"]},
         "no_log": True, "register": "applied"},
    ]
    out = stack.render_tasks(tasks, "kafka", "/out")
    assert out[0] == tasks[0]
    render = out[1]
    assert "kubernetes.core.k8s" not in render and "register" not in render
    assert render["no_log"] is True
    assert render["loop"] == "{{ _bigdata_render_source | bigdata.stack.template_paths }}"
    assert render["vars"]["_bigdata_render_source"] == ["a.yaml.j2", "b.yaml.j2"]
    assert render["vars"]["_bigdata_render_namespace"] == "{{ ns }}"
    assert render["ansible.builtin.copy"]["dest"].startswith("/out/kafka/")


def test_render_tasks_keeps_an_original_loop_and_walks_blocks():
    task = {"name": "Apply each", "kubernetes.core.k8s": {"template": "{{ item }}"}, "loop": ["x.j2"]}
    out = stack.render_tasks([{"block": [task], "rescue": []}], "spark", "/out")
    render = out[0]["block"][0]
    assert render["loop"] == ["x.j2"]
    assert render["loop_control"]["index_var"] == "_bigdata_render_index"
    assert render["ansible.builtin.copy"]["dest"] == "/out/spark/apply-each-{{ _bigdata_render_index }}.yaml"


@pytest.mark.parametrize(
    "task",
    [
        {"kubernetes.core.k8s": {"state": "absent", "kind": "Pod"}},
        {"kubernetes.core.k8s_json_patch": {"kind": "Pod"}},
        {"bigdata.stack.wait_ready": {"resources": []}},
        {"k8s_scale": {"replicas": 0}},
    ],
)
def test_render_tasks_skips_every_other_cluster_write(task):
    out = stack.render_tasks([dict(task, name="write")], "r", "/out")[0]
    assert set(out) == {"name", "ansible.builtin.debug"}


def test_render_tasks_leaves_other_modules_alone():
    task = {"name": "fact", "ansible.builtin.set_fact": {"x": 1}}
    assert stack.render_tasks([task], "r", "/out") == [task]


def test_render_manifests_fills_namespace_flattens_lists_and_drops_empty_documents():
    text = (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- {kind: Service, metadata: {name: s, namespace: other}}\n"
    )
    docs = list(yaml.safe_load_all(stack.render_manifests(text, "ns")))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        ("ConfigMap", "ns"), ("Namespace", None), ("Service", "other")]
    assert docs[2]["apiVersion"] == "v1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.j2", ["a.j2"]), ({"path": "b.j2"}, ["b.j2"]), (["a.j2", {"path": "b.j2"}], ["a.j2", "b.j2"]), ("", [])],
)
def test_template_paths(value, expected):
    assert stack.template_paths(value) == expected


def test_render_role_copy_links_the_role_and_rewrites_its_tasks(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "tasks").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "templates").mkdir()
    (role / "tasks" / "apply.yml").write_text(
        "---\n- name: Apply\n  kubernetes.core.k8s:\n    template: [x.yaml.j2]\n")
    render_dir = tmp_path / "out"
    (render_dir / "demo").mkdir(parents=True)
    (render_dir / "demo" / "stale.yaml").write_text("old")
    copy = pathlib.Path(stack.render_role_copy("demo", tmp_path / "roles", tmp_path / "work", render_dir))
    assert (copy / "defaults").is_symlink() and (copy / "templates").is_symlink()
    assert not (copy / "vars").exists()
    tasks = yaml.safe_load((copy / "tasks" / "apply.yml").read_text())
    assert "ansible.builtin.copy" in tasks[0]
    assert list((render_dir / "demo").iterdir()) == []


def test_render_role_copy_needs_a_role_with_tasks(tmp_path):
    (tmp_path / "roles" / "empty").mkdir(parents=True)
    with pytest.raises(stack.ComponentError, match="no tasks"):
        stack.render_role_copy("empty", tmp_path / "roles", tmp_path / "work", tmp_path / "out")
