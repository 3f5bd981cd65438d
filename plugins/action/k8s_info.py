# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.k8s_info: kubernetes.core.k8s_info in the controller's process (docs: plugins/modules/k8s_info.py)."""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.plugin_utils.inprocess import k8s_info_main
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction
# Imported here so that the controller imports kubernetes.core (and the kubernetes client) once,
# when the strategy loads this plugin, not in every task.
from ansible_collections.kubernetes.core.plugins.modules import k8s_info  # noqa: F401  pylint: disable=unused-import


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.k8s_info"
    module_main = staticmethod(k8s_info_main)
