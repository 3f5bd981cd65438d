# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The base of the action plugins that run a module in the controller's process (inprocess.run).

Apart from inprocess.py on purpose: importing ActionBase loads the controller, which routes
module_utils warnings to the display, and the modules' unit tests read those warnings the way a
module process collects them.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.bigdata.stack.plugins.plugin_utils.inprocess import run


class ModuleAction(ActionBase):
    """The action plugin of a module that runs in the controller's process.

    A subclass names the module's entry point (``main(module_class)``) and its full name; the
    task's arguments (module_defaults applied) and check mode go to it unchanged.
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    module_name = "module"

    @staticmethod
    def module_main(module_class):
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(run(self.module_main, dict(self._task.args), check_mode=self._task.check_mode,
                          diff=self._task.diff, name=self.module_name))
        return result
