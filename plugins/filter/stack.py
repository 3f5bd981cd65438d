# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Which components a deployment runs, and in which order.

``bigdata_profile`` names a set of components, an explicit ``bigdata_components`` list wins over
it, and every component brings what it needs (kibana needs elasticsearch, spark writing its event
log to HDFS needs hdfs, the sample pipelines need spark and elasticsearch, everything needs
platform). Which pipelines run is the pipelines role's choice (``pipelines_enabled``); whether
their sources (kafka, hdfs) are enabled is checked by that role's validation. The result is
ordered so that a component always comes after what it depends on: ``site.yml`` applies in this
order and ``teardown.yml`` removes in the reverse order.
"""

from __future__ import annotations

# Canonical order: every component comes after all of its dependencies. pipelines is last: its
# wait entry point starts the pipelines, once everything before it is ready.
CATALOG = ("platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "monitoring", "pipelines")

# Every profile brings the sample pipelines; pipelines_enabled picks which (by default the
# profile's own: streaming, batch or both).
PROFILES = {
    "streaming": ("kafka", "spark", "elasticsearch", "kibana", "pipelines"),
    "batch": ("hdfs", "spark", "elasticsearch", "kibana", "pipelines"),
    "full": CATALOG,
}

DEPENDENCIES = {
    "platform": (),
    "hdfs": ("platform",),
    "kafka": ("platform",),
    "elasticsearch": ("platform",),
    "kibana": ("platform", "elasticsearch"),
    "spark": ("platform",),
    # Scrapes whatever of the stack runs; needs none of it to be there.
    "monitoring": ("platform",),
    "pipelines": ("platform", "spark", "elasticsearch"),
}


class ComponentError(ValueError):
    """An input names a profile or component this collection does not know."""


def _as_list(components):
    if components is None or components == "":
        return []
    if isinstance(components, str):
        return [c.strip() for c in components.split(",") if c.strip()]
    return [str(c).strip() for c in components]


def unknown_components(components):
    """Names in ``components`` that are not components of this collection (sorted, unique)."""
    return sorted({c for c in _as_list(components) if c not in CATALOG})


def component_dependencies(component, spark_event_log_hdfs=False):
    """Direct dependencies of ``component``."""
    deps = list(DEPENDENCIES[component])
    if component == "spark" and spark_event_log_hdfs:
        deps.append("hdfs")
    return deps


def enabled_components(profile, components=None, spark_event_log_hdfs=False):
    """The ordered component list for ``profile`` / ``components`` (see module docstring)."""
    requested = _as_list(components)
    unknown = unknown_components(requested)
    if unknown:
        raise ComponentError(
            "bigdata_components: unknown component(s) %s; known components are %s"
            % (", ".join(unknown), ", ".join(CATALOG))
        )
    if not requested:
        if profile not in PROFILES:
            raise ComponentError(
                "bigdata_profile: unknown profile %r; choose one of %s"
                % (profile, ", ".join(sorted(PROFILES)))
            )
        requested = list(PROFILES[profile])

    enabled = set()
    pending = list(requested)
    while pending:
        name = pending.pop()
        if name in enabled:
            continue
        enabled.add(name)
        pending.extend(component_dependencies(name, bool(spark_event_log_hdfs)))
    return [c for c in CATALOG if c in enabled]


def _filter(function):
    """Turn the plain ValueErrors above into AnsibleFilterError when Ansible is importable."""
    try:
        from ansible.errors import AnsibleFilterError
    except ImportError:  # pragma: no cover - unit tests import without Ansible on the path
        return function

    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ComponentError as e:
            raise AnsibleFilterError(str(e)) from e

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


class FilterModule(object):
    """bigdata.stack component resolution filters."""

    def filters(self):
        return {
            "enabled_components": _filter(enabled_components),
            "unknown_components": unknown_components,
        }
