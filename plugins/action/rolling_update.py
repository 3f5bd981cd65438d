# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.rolling_update in the controller's process: see plugins/modules/rolling_update.py for the docs.

As wait_ready: the module's own ``main`` runs here on plugin_utils/inprocess.py's stand-in for
AnsibleModule, and each step of the roll ("restarting kafka-broker-2 (1 of 3)") reaches the
console through ansible's Display while the roll goes on.
"""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.bigdata.stack.plugins.modules import rolling_update
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction

display = Display()


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.rolling_update"

    def module_main(self, module_class):
        host = self._task.get_name() if self._task else "rolling_update"
        return rolling_update.main(module_class=module_class, progress=lambda line: display.display("%s: %s" % (host, line)))
