# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Which components a deployment runs, in which order, and how to render them offline.

``bigdata_profile`` names a set of components, an explicit ``bigdata_components`` list wins over
it, and every component brings what it needs (kibana needs elasticsearch, spark writing its event
log to HDFS needs hdfs, the sample pipelines need spark and elasticsearch, everything needs
platform). Which pipelines run is the pipelines role's choice (``pipelines_enabled``); whether
their sources (kafka, hdfs) are enabled is checked by that role's validation. The result is
ordered so that a component always comes after what it depends on: ``site.yml`` applies in this
order and ``teardown.yml`` removes in the reverse order.

``render_role_copy``, ``render_tasks`` and ``render_manifests`` serve ``playbooks/render.yml``: a
role's tasks run unchanged except that every ``kubernetes.core.k8s`` write becomes a file with
the manifests it would have applied, and every other write to the cluster is skipped.
"""

from __future__ import annotations

import copy
import os
import shutil

import yaml

# Canonical order: every component comes after all of its dependencies. pipelines is last: its
# wait entry point starts the pipelines, once everything before it is ready.
CATALOG = ("platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "pipelines")

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


# Modules that only read the cluster: a role skips them with bigdata_render_only (they fail on the
# unreachable kubeconfig playbooks/render.yml sets, never touching a real cluster).
_READ_ONLY_ACTIONS = {
    "k8s_info", "k8s_log", "k8s_cluster_info",
}
_K8S_PREFIXES = ("kubernetes.core.", "community.kubernetes.", "community.okd.", "redhat.openshift.")
_K8S_WRITE = ("k8s",)
# Ansible task keywords, so the key left over is the action.
_TASK_KEYWORDS = {
    "action", "any_errors_fatal", "args", "async", "become", "become_exe", "become_flags",
    "become_method", "become_user", "changed_when", "check_mode", "collections", "connection",
    "debugger", "delay", "delegate_facts", "delegate_to", "diff", "environment", "failed_when",
    "ignore_errors", "ignore_unreachable", "local_action", "loop", "loop_control", "module_defaults",
    "name", "no_log", "notify", "poll", "port", "register", "remote_user", "retries", "run_once",
    "tags", "throttle", "timeout", "until", "vars", "when",
}
_BLOCK_KEYS = ("block", "rescue", "always")
# Kinds that are not namespaced (the k8s module's namespace option does not apply to them).
CLUSTER_SCOPED_KINDS = {
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver", "VolumeAttachment",
}


def _task_action(task):
    """The action (module) key of a task dict, or None for blocks and includes of nothing."""
    candidates = [k for k in task if k not in _TASK_KEYWORDS and not k.startswith("with_")]
    return candidates[0] if len(candidates) == 1 else None


def _short(action):
    for prefix in _K8S_PREFIXES + ("bigdata.stack.", "ansible.builtin.", "ansible.legacy."):
        if action.startswith(prefix):
            return action[len(prefix):], prefix
    return action, ""


def _render_task(task, action, role, render_dir):
    args = task[action] if isinstance(task[action], dict) else {}
    if str(args.get("state", "present")) == "absent":
        return _skip_task(task, action)
    if "template" in args:
        source = args["template"]
        content = (
            "{{ query('ansible.builtin.template', *_bigdata_render_sources) | join('\\n---\\n')"
            " | bigdata.stack.render_manifests(_bigdata_render_namespace) }}"
        )
        sources = "{{ _bigdata_render_source | bigdata.stack.template_paths }}"
    elif "definition" in args or "resource_definition" in args:
        source = args.get("definition", args.get("resource_definition"))
        content = "{{ _bigdata_render_source | bigdata.stack.render_manifests(_bigdata_render_namespace) }}"
        sources = None
    elif "src" in args:
        source = args["src"]
        content = (
            "{{ lookup('ansible.builtin.file', _bigdata_render_source)"
            " | bigdata.stack.render_manifests(_bigdata_render_namespace) }}"
        )
        sources = None
    else:
        return _skip_task(task, action)
    rendered = {k: copy.deepcopy(v) for k, v in task.items() if k not in (action, "register")}
    rendered["name"] = "Render: %s" % task.get("name", action)
    task_vars = dict(rendered.get("vars") or {})
    task_vars["_bigdata_render_namespace"] = args.get("namespace", "")
    task_vars["_bigdata_render_source"] = source
    dest = "%s/%s/%s" % (render_dir, role, _slug(task.get("name", action)))
    if "loop" in task or any(k.startswith("with_") for k in task):
        # A looped write: one file per iteration, every template of the iteration in it.
        loop_control = dict(rendered.get("loop_control") or {})
        loop_control["index_var"] = "_bigdata_render_index"
        rendered["loop_control"] = loop_control
        if sources:
            task_vars["_bigdata_render_sources"] = sources
        dest += "-{{ _bigdata_render_index }}.yaml"
    elif sources:
        # One file per template, named like it: what a reviewer looks for.
        rendered["loop"] = sources
        rendered["loop_control"] = {"loop_var": "_bigdata_render_template"}
        task_vars["_bigdata_render_sources"] = ["{{ _bigdata_render_template }}"]
        dest = "%s/%s/{{ _bigdata_render_template | basename | regex_replace('[.]j2$', '') }}" % (
            render_dir,
            role,
        )
    else:
        dest += ".yaml"
    rendered["vars"] = task_vars
    rendered["ansible.builtin.copy"] = {"content": content, "dest": dest, "mode": "0644"}
    return rendered


def template_paths(template):
    """The paths of a ``k8s`` ``template`` option: a string, a dict with ``path``, or a list of them."""
    if template is None or template == "":
        return []
    if isinstance(template, (str, dict)):
        template = [template]
    return [str(t["path"]) if isinstance(t, dict) else str(t) for t in template]


def _skip_task(task, action):
    kept = {k: copy.deepcopy(v) for k, v in task.items() if k in ("name", "when", "tags", "vars")}
    kept["name"] = "Render: skip %s" % task.get("name", action)
    kept["ansible.builtin.debug"] = {"msg": "%s writes to the cluster: skipped while rendering" % action}
    return kept


def _slug(text):
    out = "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-")
    return "-".join(part for part in out.split("-") if part) or "definition"


def render_tasks(tasks, role, render_dir):
    """A role's task list for offline rendering (playbooks/render.yml).

    Every ``k8s`` write (``template``, ``definition`` or ``src``) becomes an
    ``ansible.builtin.copy`` of the manifests into ``<render_dir>/<role>/``; every other module of
    the Kubernetes collections and of bigdata.stack that is not read-only becomes a ``debug``
    that says it was skipped. Blocks are walked; everything else is kept as it is.
    """
    result = []
    for task in tasks or []:
        if not isinstance(task, dict):
            result.append(task)
            continue
        if any(k in task for k in _BLOCK_KEYS):
            task = dict(task)
            for key in _BLOCK_KEYS:
                if key in task:
                    task[key] = render_tasks(task[key], role, render_dir)
            result.append(task)
            continue
        action = _task_action(task)
        if action is None:
            result.append(task)
            continue
        short, prefix = _short(action)
        if prefix in _K8S_PREFIXES or (prefix == "" and short.startswith(("k8s", "helm"))):
            if short in _READ_ONLY_ACTIONS:
                result.append(task)
            elif short in _K8S_WRITE:
                result.append(_render_task(task, action, role, render_dir))
            else:
                result.append(_skip_task(task, action))
        elif prefix == "bigdata.stack." or short in ("wait_ready", "spark_submit"):
            result.append(_skip_task(task, action))
        else:
            result.append(task)
    return result


_ROLE_DIRS_LINKED = ("defaults", "vars", "meta", "templates", "files", "handlers", "library")


def render_role_copy(role, roles_dir, work_dir, render_dir):
    """Create the render copy of ``roles_dir/role`` under ``work_dir`` and return its path.

    The copy links the role's own defaults, vars, meta (argument specs, dependencies), templates
    and files, so role_path, template search and validation are the real ones; its task files
    are the role's, passed through ``render_tasks``. ``render_dir/role`` is emptied for the
    manifests. Like the ``password`` lookup, this writes on the controller, where the play runs
    (one call instead of a module run per file keeps rendering fast).
    """
    role = str(role)
    source = os.path.realpath(os.path.join(str(roles_dir), role))
    if not os.path.isdir(os.path.join(source, "tasks")):
        raise ComponentError("render_role_copy: %s has no tasks directory" % source)
    target = os.path.join(str(work_dir), role)
    output = os.path.join(str(render_dir), role)
    for path in (target, output):
        if os.path.lexists(path):
            shutil.rmtree(path)
    os.makedirs(output)
    os.makedirs(target)
    for name in _ROLE_DIRS_LINKED:
        if os.path.isdir(os.path.join(source, name)):
            os.symlink(os.path.join(source, name), os.path.join(target, name))
    from ansible.parsing.yaml.dumper import AnsibleDumper
    from ansible.parsing.yaml.loader import AnsibleLoader

    tasks_source = os.path.join(source, "tasks")
    for dirpath, _dirnames, filenames in os.walk(tasks_source):
        relative = os.path.relpath(dirpath, tasks_source)
        os.makedirs(os.path.normpath(os.path.join(target, "tasks", relative)), exist_ok=True)
        for filename in filenames:
            src = os.path.join(dirpath, filename)
            dest = os.path.normpath(os.path.join(target, "tasks", relative, filename))
            if not filename.endswith((".yml", ".yaml")):
                shutil.copyfile(src, dest)
                continue
            with open(src, encoding="utf-8") as handle:
                tasks = yaml.load(handle, Loader=AnsibleLoader)  # noqa: S506 - Ansible's own loader
            rendered = render_tasks(tasks, role, str(render_dir))
            with open(dest, "w", encoding="utf-8") as handle:
                handle.write("---\n# Render copy of %s (playbooks/render.yml); do not edit.\n" % src)
                yaml.dump(rendered, handle, Dumper=AnsibleDumper, default_flow_style=False, sort_keys=False, width=1000)
    return target


def render_manifests(source, namespace=""):
    """The manifests the ``k8s`` module would apply, as multi-document YAML text.

    ``source`` is YAML text (one or more documents), a dict or a list. Empty documents are
    dropped, ``*List`` kinds are flattened, and ``namespace`` fills ``metadata.namespace`` where
    a namespaced object has none, as the module does.
    """
    if isinstance(source, str):
        documents = list(yaml.safe_load_all(source))
    elif isinstance(source, (list, tuple)):
        documents = list(source)
    else:
        documents = [source]
    flat = []
    for doc in documents:
        if not doc:
            continue
        doc = _plain(doc)
        kind = str(doc.get("kind", ""))
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                item.setdefault("kind", kind[:-4])
                item.setdefault("apiVersion", doc.get("apiVersion"))
                flat.append(item)
        else:
            flat.append(doc)
    for doc in flat:
        if namespace and doc.get("kind") not in CLUSTER_SCOPED_KINDS:
            doc.setdefault("metadata", {}).setdefault("namespace", str(namespace))
    return yaml.safe_dump_all(flat, default_flow_style=False, sort_keys=False, explicit_start=True)


def _plain(value):
    """Ansible's tagged str/dict/list subclasses as plain Python types (yaml.safe_dump needs them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


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
            "render_tasks": render_tasks,
            "render_role_copy": _filter(render_role_copy),
            "render_manifests": render_manifests,
            "template_paths": template_paths,
        }
