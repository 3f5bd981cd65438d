# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""bigdata.stack.spark_submit in the controller's process: see plugins/modules/spark_submit.py for the docs.

The module's own ``main`` runs here on plugin_utils/inprocess.py's stand-in for AnsibleModule
(with its ``run_command`` and ``tmpdir``): spark-submit is the only process the task starts.
"""

from __future__ import annotations

from ansible_collections.bigdata.stack.plugins.modules import spark_submit
from ansible_collections.bigdata.stack.plugins.plugin_utils.module_action import ModuleAction


class ActionModule(ModuleAction):
    module_name = "bigdata.stack.spark_submit"
    module_main = staticmethod(spark_submit.main)
