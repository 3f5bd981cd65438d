# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.k8s_delete in the controller's process: see plugins/modules/k8s_delete.py for the docs."""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.modules import k8s_delete
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.k8s_delete"
    module_main = staticmethod(k8s_delete.main)
