# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""Run a module built on kubernetes.core's AnsibleK8SModule inside the controller's process.

Every cluster task of a run used to start a module process of its own: a Python interpreter,
``import kubernetes`` (about half a second), kubernetes.core's module_utils and a new client, for
each of some twenty tasks of ``site.yml`` on localhost. The action plugins of this collection
instead call the module's own entry point here, in the task's worker (forked from the controller,
which imported kubernetes once when it loaded the action plugin). The module code, its argument
spec and kubernetes.core's client and server-side apply are the same; only where they run changes.

``AnsibleK8SModule`` (kubernetes.core.plugins.module_utils.k8s.core) takes the class it wraps as
``module_class``; :class:`InProcessModule` is that class: it validates the arguments with
ansible-core's own validator, and ``exit_json``/``fail_json`` raise :class:`ModuleExit` instead of
printing JSON and exiting.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.process import get_bin_path


class ModuleExit(Exception):
    """The end of a module run: ``result`` is what exit_json/fail_json was given (no_log values masked)."""

    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class InProcessModule:
    """The part of AnsibleModule that kubernetes.core's AnsibleK8SModule and this collection's modules use."""

    def __init__(self, argument_spec, *, params, check_mode=False, diff=False, name="module", created=None,
                 mutually_exclusive=None, required_together=None, required_one_of=None,
                 required_if=None, required_by=None, supports_check_mode=True):
        self._name = name
        self._tmpdir = None
        if created is not None:
            created.append(self)
        self.check_mode = bool(check_mode) and supports_check_mode
        self._diff = bool(diff)
        self._warnings = []
        validator = ModuleArgumentSpecValidator(
            argument_spec, mutually_exclusive=mutually_exclusive, required_together=required_together,
            required_one_of=required_one_of, required_if=required_if, required_by=required_by,
        )
        validation = validator.validate(params)
        self.no_log_values = set(validation._no_log_values)  # pylint: disable=protected-access
        self.params = validation.validated_parameters
        if validation.error_messages:
            self.fail_json(msg="%s: %s" % (name, "; ".join(validation.error_messages)))

    def warn(self, warning):
        self._warnings.append(str(warning))

    def deprecate(self, msg, *args, **kwargs):
        self._warnings.append("deprecated: %s" % msg)

    def debug(self, msg):
        pass

    def log(self, msg, log_args=None):
        pass

    @property
    def tmpdir(self):
        """A private directory that is removed when the run ends (AnsibleModule.tmpdir)."""
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="ansible-%s-" % self._name.rsplit(".", 1)[-1])
        return self._tmpdir

    def cleanup(self):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        """The path of executable ``arg``, None when it is not found (AnsibleModule.get_bin_path)."""
        try:
            return get_bin_path(arg, opt_dirs=opt_dirs)
        except ValueError as e:
            if required:
                self.fail_json(msg=str(e))
            return None

    def run_command(self, args, check_rc=False, environ_update=None, data=None, cwd=None):
        """(rc, stdout, stderr) of ``args`` (a list: no shell), like AnsibleModule.run_command."""
        if isinstance(args, str):
            raise TypeError("run_command takes an argument list here, not a shell string")
        env = dict(os.environ, **(environ_update or {}))
        try:
            proc = subprocess.run([str(a) for a in args], env=env, cwd=cwd, input=data, capture_output=True,
                                  text=True, errors="replace", check=False)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except OSError as e:
            rc, out, err = 2, "", str(e)
        if rc != 0 and check_rc:
            self.fail_json(msg=err.strip() or "%s exited with %s" % (args[0], rc), rc=rc, stdout=out, stderr=err,
                           cmd=[str(a) for a in args])
        return rc, out, err

    def _end(self, result):
        if self._warnings:
            result.setdefault("warnings", []).extend(self._warnings)
        raise ModuleExit(remove_values(result, self.no_log_values))

    def exit_json(self, **kwargs):
        self._end(dict(kwargs, failed=False))

    def fail_json(self, msg, **kwargs):
        self._end(dict(kwargs, failed=True, msg=msg))


def kubernetes_core_main(argument_spec, execute):
    """``main(module_class)`` of a kubernetes.core module (6.x): its AnsibleK8SModule on the class
    given, ``execute(module)`` run, CoreException turned into fail_json as the module's own main does."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

    def main(module_class):
        module = AnsibleK8SModule(module_class=module_class, argument_spec=argument_spec(), supports_check_mode=True)
        try:
            execute(module)
        except CoreException as e:
            module.fail_from_exception(e)
    return main


def k8s_info_main(module_class):
    """kubernetes.core.k8s_info's main(), on the module class it is given."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService
    from ansible_collections.kubernetes.core.plugins.modules.k8s_info import argspec, execute_module

    kubernetes_core_main(argspec, lambda module: execute_module(module, K8sService(get_api_client(module), module)))(
        module_class)


def run(main, params, check_mode=False, diff=False, name="module"):
    """The result of ``main(module_class=...)`` run on ``params``, as the module would return it.

    ``main`` builds its AnsibleK8SModule with the ``module_class`` it is given and ends with
    exit_json or fail_json; an exception it lets through propagates to the caller.
    """
    created = []
    module_class = functools.partial(InProcessModule, params=params, check_mode=check_mode, diff=diff, name=name,
                                     created=created)
    try:
        main(module_class=module_class)
    except ModuleExit as end:
        return end.result
    finally:
        for module in created:
            module.cleanup()
    raise RuntimeError("%s returned without exit_json or fail_json" % name)
