# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.preflight in the controller's process: see plugins/modules/preflight.py for the docs."""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.modules import preflight
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.preflight"
    module_main = staticmethod(preflight.main)
