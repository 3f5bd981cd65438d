# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.wait_ready in the controller's process: see plugins/modules/wait_ready.py for the docs.

The module's own ``main`` runs here on plugin_utils/inprocess.py's stand-in for AnsibleModule, so a
wait costs no module process and no ``import kubernetes`` (the controller imported it once, when
the strategy loaded this plugin). Same arguments, same result, same failures.

While it waits, the module reports progress through ``progress``: here that is ansible's Display.
The task runs in a worker process forked from the controller; Display in a worker sends each line
over the worker's result queue to the controller, which prints it (ansible.utils.display.Display
proxies through ``_final_q`` in a WorkerProcess), so the lines reach the console as the wait goes on.
"""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.bigdata.stack.plugins.modules import wait_ready
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction

display = Display()


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.wait_ready"

    def module_main(self, module_class):
        host = self._task.get_name() if self._task else "wait_ready"
        return wait_ready.main(module_class=module_class, progress=lambda line: display.display("%s: %s" % (host, line)))
