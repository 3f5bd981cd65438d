"""k8s_apply renders its templates with ansible-core's template lookup, without its deep copy."""

from __future__ import annotations

import copy
import types

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

from ansible_collections.bigdata.stack.plugins.action import k8s_apply


class _NoDeepCopy(list):
    def __deepcopy__(self, memo):
        raise AssertionError("a variable was deep-copied")


def _render(tmp_path, task_vars, monkeypatch):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "cm.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"
        "data:\n  ports: \"{{ ports | join(',') }}\"\n  from: {{ template_path | basename }}\n")
    loader = DataLoader()
    # The plugin loader, outside ansible-playbook, finds no ansible.builtin plugins by that name.
    get = lookup_loader.get
    monkeypatch.setattr(k8s_apply.lookup_loader, "get", lambda name, **kwargs: get("template", **kwargs))
    action = types.SimpleNamespace(_loader=loader, _templar=Templar(loader=loader, variables=task_vars))
    return k8s_apply.ActionModule._objects(action, ["cm.yaml.j2"], "ns1", task_vars)


def test_templates_render_without_deep_copying_the_variables(tmp_path, monkeypatch):
    ports = _NoDeepCopy([9092, 9093])
    task_vars = {"name": "brokers", "ports": ports, "ansible_search_path": [str(tmp_path)]}
    [(template, objects)] = _render(tmp_path, task_vars, monkeypatch)
    assert template == "cm.yaml.j2"
    assert objects[0]["metadata"] == {"name": "brokers", "namespace": "ns1"}
    assert objects[0]["data"] == {"ports": "9092,9093", "from": "cm.yaml.j2"}
    # The lookup's own variables (template_path, ...) did not reach the task's dict.
    assert sorted(task_vars) == ["ansible_search_path", "name", "ports"]
    assert task_vars["ports"] is ports


def test_the_copy_is_shallow_and_new():
    inner = [1]
    original = k8s_apply._SharedVariables({"a": inner})
    copied = copy.deepcopy(original)
    assert copied == {"a": [1]} and copied is not original and copied["a"] is inner
