# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.k8s_info: kubernetes.core.k8s_info in the controller's process (docs: plugins/modules/k8s_info.py)."""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.plugin_utils.inprocess import kubernetes_core_main
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService
from ansible_collections.kubernetes.core.plugins.modules.k8s_info import argspec, execute_module


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.k8s_info"
    module_main = staticmethod(kubernetes_core_main(
        argspec, lambda module: execute_module(module, K8sService(get_api_client(module), module))))
