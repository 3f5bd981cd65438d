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
        ("full", ["platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "monitoring", "pipelines"]),
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


def test_monitoring_is_in_full_only_and_selectable_alone():
    assert "monitoring" not in stack.enabled_components("streaming")
    assert "monitoring" not in stack.enabled_components("batch")
    # It scrapes whatever of the stack runs, so it brings nothing but the namespace.
    assert stack.enabled_components("streaming", ["monitoring"]) == ["platform", "monitoring"]
    # After every component it watches, before the pipelines that start last.
    full = stack.enabled_components("full")
    assert full.index("spark") < full.index("monitoring") < full.index("pipelines")


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
    assert set(filters) == {"enabled_components", "unknown_components"}
    with pytest.raises(AnsibleFilterError, match="bigdata_components"):
        filters["enabled_components"]("full", ["nope"])
