# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The one way this collection writes manifests: see plugins/modules/k8s_apply.py for the docs.

Templates are rendered on the controller by the ``ansible.builtin.template`` lookup (the role's
templates directory, the task's variables). Then either every object goes to kubernetes.core's
``k8s`` module in one server-side apply, or, with ``render_dir``, the same objects are written to
files and nothing reaches a cluster. The values of the secret-bearing templates are masked in
everything this action returns.

The module runs in this process (plugin_utils/inprocess.py): kubernetes.core's own ``run_module``
of ``kubernetes.core.k8s``, with that module's argument spec, one client for the task's calls and
no module process. Importing it here, at the top, makes the controller import the kubernetes
client once, when the strategy loads this plugin, instead of once per task.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import lookup_loader

from ansible_collections.bigdata.stack.plugins.plugin_utils import inprocess, manifests
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.runner import run_module
from ansible_collections.kubernetes.core.plugins.modules.k8s import argspec as k8s_argspec

# The connection options of kubernetes.core (doc fragment kubernetes.core.k8s_auth_options),
# passed on unchanged.
AUTH_OPTIONS = (
    "api_key", "ca_cert", "client_cert", "client_key", "context", "host", "impersonate_groups",
    "impersonate_user", "kubeconfig", "no_proxy", "password", "persist_config", "proxy",
    "proxy_headers", "username", "validate_certs",
)

ARGUMENT_SPEC = {
    "templates": {"type": "list", "elements": "str", "default": []},
    "secret_templates": {"type": "list", "elements": "str", "default": []},
    "namespace": {"type": "str", "required": True},
    "field_manager": {"type": "str", "default": "bigdata-stack"},
    "render_dir": {"type": "path"},
    "component": {"type": "str"},
}
ARGUMENT_SPEC.update({name: {"type": "raw"} for name in AUTH_OPTIONS})


# kubernetes.core.k8s's main(), on the module class it is given.
k8s_main = inprocess.kubernetes_core_main(k8s_argspec, run_module)


class _SharedVariables(dict):
    """The task's variables for the template lookup, which deep-copies them for every template.

    ansible-core's template lookup copies ``variables`` so that the template variables it adds
    (``template_path`` and the like, top-level keys) do not reach the caller's dict. For this
    stack's variables the deep copy took 0.1 to 0.3 s per template, a fifth of ``render.yml``
    (py-spy, docs/benchmarks.md). A shallow copy keeps the caller's dict just as clean; no
    template of the collection changes a variable, and the task's worker process ends with the
    task.
    """

    def __deepcopy__(self, memo):
        return dict(self)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        namespace = args["namespace"]
        plain = self._objects(args["templates"], namespace, task_vars)
        secret = self._objects(args["secret_templates"], namespace, task_vars)

        if args["render_dir"]:
            component = args["component"] or self._component()
            return dict(result, **self._render(plain + secret, args["render_dir"], component))

        auth = {k: args[k] for k in AUTH_OPTIONS if args.get(k) is not None}
        hidden = manifests.secret_values(o for _source, docs in secret for o in docs)
        plain_objects = [o for _source, docs in plain for o in docs]
        secret_objects = [o for _source, docs in secret for o in docs]
        # One apply, in order: Secrets before the workloads that mount them, but after a Namespace
        # they live in.
        first = [o for o in plain_objects if secret_objects and o.get("kind") in manifests.CLUSTER_SCOPED_KINDS]
        objects = first + secret_objects + [o for o in plain_objects if o not in first]
        # A server-side dry run of an object in a namespace that does not exist yet fails (the
        # namespace is not created by a dry run): such objects would be created, and say so.
        absent = self._absent_namespaces(objects, auth) if self._task.check_mode else set()
        unsent = [o for o in objects if manifests.namespace_of(o) in absent]
        sent = [o for o in objects if o not in unsent]
        outcomes = self._apply(sent, namespace, args["field_manager"], auth, hidden) if sent else []
        outcomes += [(o, True, manifests.object_diff(o, {"before": {}, "after": o})) for o in unsent]

        result["changed"] = any(changed for _obj, changed, _diff in outcomes)
        result["objects"] = [
            {"ref": manifests.ref(obj), "changed": changed} for obj, changed, _diff in outcomes
        ]
        diffs = [d for _obj, changed, d in outcomes if changed and d]
        if diffs and self._task.diff:
            result["diff"] = diffs
        return result

    def _component(self):
        role = self._task._role
        if role is None:
            raise AnsibleActionFail("k8s_apply: render_dir needs component when the task is not in a role")
        return role.get_name().split(".")[-1]

    def _objects(self, templates, namespace, task_vars):
        """``[(template, objects)]``: each template rendered like the template lookup does."""
        lookup = lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        rendered = []
        for template in templates:
            text = lookup.run([template], variables=_SharedVariables(task_vars))[0]
            rendered.append((template, manifests.documents(text, namespace)))
        return rendered

    def _render(self, rendered, render_dir, component):
        """Write one file per template, named like it, in ``render_dir/component``."""
        out_dir = os.path.join(render_dir, component)
        written, changed = [], False
        for template, objects in rendered:
            path = os.path.join(out_dir, os.path.basename(template).removesuffix(".j2"))
            content = manifests.dump(objects)
            try:
                with open(path, encoding="utf-8") as handle:
                    same = handle.read() == content
            except FileNotFoundError:
                same = False
            if not same and not self._task.check_mode:
                os.makedirs(out_dir, exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(content)
            changed = changed or not same
            written.append(path)
        return {"changed": changed, "rendered": written}

    def _absent_namespaces(self, objects, auth):
        """The namespaces of ``objects`` that the cluster does not have (one read each)."""
        absent = set()
        for name in sorted({manifests.namespace_of(o) for o in objects} - {None}):
            response = inprocess.run(
                inprocess.k8s_info_main, dict(auth, api_version="v1", kind="Namespace", name=name), name="kubernetes.core.k8s_info"
            )
            if response.get("failed"):
                raise AnsibleActionFail("reading namespace %s for the dry run: %s" % (name, response.get("msg")))
            if not response.get("resources"):
                absent.add(name)
        return absent

    def _apply(self, objects, namespace, field_manager, auth, hidden):
        """Server-side apply of ``objects`` in one kubernetes.core.k8s call: ``[(obj, changed, diff)]``."""
        module_args = dict(
            auth,
            state="present",
            apply=True,
            server_side_apply={"field_manager": field_manager, "force_conflicts": True},
            namespace=namespace,
            definition=objects,
        )
        # In this process: no module arguments are logged anywhere, and a failure's message is
        # censored below before it reaches the output.
        try:
            response = inprocess.run(
                k8s_main, module_args, check_mode=self._task.check_mode, diff=True, name="kubernetes.core.k8s"
            )
        except Exception as e:  # pylint: disable=broad-except
            response = {"failed": True, "msg": "%s: %s" % (type(e).__name__, e)}
        if response.get("failed"):
            message = response.get("msg", "kubernetes.core.k8s failed")
            refs = ", ".join(manifests.ref(o) for o in objects)
            raise AnsibleActionFail(manifests.censor("applying %s: %s" % (refs, message), hidden))
        per_object = response.get("result", {}).get("results") if len(objects) > 1 else [response]
        # kubernetes.core calls an object changed when anything differs between its read and the
        # apply's answer, status included: a controller or kubelet updating the status meanwhile
        # made a no-op run report changed. Changed here means what was applied differs.
        outcomes = []
        for obj, outcome in zip(objects, per_object or []):
            diff = manifests.object_diff(obj, outcome.get("diff")) if outcome.get("changed") else None
            outcomes.append((obj, diff is not None, diff))
        return outcomes
