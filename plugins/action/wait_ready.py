# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.wait_ready in the controller's process: see plugins/modules/wait_ready.py for the docs.

The module's own ``main`` runs here on plugin_utils/inprocess.py's stand-in for AnsibleModule, so a
wait costs no module process and no ``import kubernetes`` (the controller imported it once, when
the strategy loaded this plugin). Same arguments, same result, same failures.
"""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.modules import wait_ready
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.wait_ready"
    module_main = staticmethod(wait_ready.main)
