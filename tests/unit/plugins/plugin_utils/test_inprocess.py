"""plugin_utils/inprocess.py: modules built on AnsibleK8SModule, run in the controller's process."""

import pytest

from ansible_collections.bigdata.stack.plugins.plugin_utils import inprocess
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

SPEC = {
    "namespace": {"type": "str", "required": True},
    "password": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 30, "aliases": ["wait_timeout"]},
}


def echo_main(module_class):
    """A module that returns its validated parameters, warns once and says whether it is in check mode."""
    module = AnsibleK8SModule(module_class=module_class, argument_spec=SPEC, supports_check_mode=True)
    module.warn("careful")
    module.exit_json(changed=False, params=module.params, check_mode=module.check_mode, diff=module._diff)


def failing_main(module_class):
    module = AnsibleK8SModule(module_class=module_class, argument_spec=SPEC, supports_check_mode=True)
    module.fail_json(msg="could not log in with %s" % module.params["password"], attempts=2)


def test_parameters_are_validated_with_defaults_aliases_and_modes():
    result = inprocess.run(echo_main, {"namespace": "data", "wait_timeout": "5"}, check_mode=True, diff=True)
    assert result["failed"] is False
    assert result["params"]["timeout"] == 5  # alias resolved, string converted like AnsibleModule does
    assert result["params"]["namespace"] == "data"
    assert (result["check_mode"], result["diff"]) == (True, True)
    assert result["warnings"] == ["careful"]


def test_bad_arguments_fail_naming_the_option_and_the_module():
    result = inprocess.run(echo_main, {"timeout": 3}, name="bigdata.stack.wait_ready")
    assert result["failed"] is True
    assert "bigdata.stack.wait_ready" in result["msg"] and "namespace" in result["msg"]


def test_no_log_values_never_leave_the_result():
    result = inprocess.run(failing_main, {"namespace": "data", "password": "s3cr3t-value"})
    assert result["failed"] is True and result["attempts"] == 2
    assert "s3cr3t-value" not in repr(result)
    assert "********" in result["msg"]


def test_a_main_that_returns_without_exit_is_an_error():
    with pytest.raises(RuntimeError, match="without exit_json"):
        inprocess.run(lambda module_class: None, {"namespace": "data"}, name="broken")


def command_main(module_class):
    """Runs a command with an extra variable, keeps a file in tmpdir, reports both."""
    module = AnsibleK8SModule(module_class=module_class, argument_spec=SPEC, supports_check_mode=True)
    inner = module._module
    rc, out, err = inner.run_command(["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 3'],
                                     environ_update={"GREETING": "hello"})
    with open(inner.tmpdir + "/token", "w", encoding="utf-8") as handle:
        handle.write("x")
    module.exit_json(rc=rc, out=out, err=err, tmpdir=inner.tmpdir)


def test_run_command_and_a_tmpdir_that_goes_when_the_run_ends():
    import os
    result = inprocess.run(command_main, {"namespace": "data"}, name="bigdata.stack.spark_submit")
    assert (result["rc"], result["out"], result["err"]) == (3, "hello\n", "oops\n")
    assert "spark_submit" in os.path.basename(result["tmpdir"])
    assert not os.path.exists(result["tmpdir"])


def test_run_command_with_check_rc_fails_the_module():
    def main(module_class):
        module = AnsibleK8SModule(module_class=module_class, argument_spec=SPEC, supports_check_mode=True)
        module._module.run_command(["false"], check_rc=True)
        module.exit_json(changed=False)

    result = inprocess.run(main, {"namespace": "data"})
    assert result["failed"] is True and result["rc"] == 1


def test_get_bin_path_finds_executables_and_says_none_for_the_missing():
    def main(module_class):
        module = AnsibleK8SModule(module_class=module_class, argument_spec=SPEC, supports_check_mode=True)
        module.exit_json(sh=module._module.get_bin_path("sh"),
                         missing=module._module.get_bin_path("no-such-tool-anywhere"))

    result = inprocess.run(main, {"namespace": "data"})
    assert result["sh"].endswith("/sh") and result["missing"] is None
