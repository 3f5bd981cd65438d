"""playbooks/site.yml and playbooks/render.yml check a role's argument spec once, when they include
its `validate` entry point, and include `apply` and `wait` with rolespec_validate false (one task
per role and phase less, issue 12). That is only sound while those entry points declare the very
same options as `validate`; this test keeps it so. Likewise common's `components` against `main`."""

import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = ("platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "monitoring", "pipelines")
PLAYBOOKS = ("playbooks/site.yml", "playbooks/render.yml")


def specs(role):
    return yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", ROLES)
def test_apply_and_wait_have_the_options_of_validate(role):
    spec = specs(role)
    for entry in ("apply", "wait"):
        if entry in spec:
            assert spec[entry].get("options") == spec["validate"].get("options"), (
                "roles/%s/meta/argument_specs.yml: the options of '%s' differ from those of 'validate', "
                "but the playbooks skip its argument spec check (rolespec_validate: false)" % (role, entry))


def test_components_has_the_options_of_main():
    spec = specs("common")
    assert spec["components"].get("options") == spec["main"].get("options")


def included_roles(tasks):
    for task in tasks:
        include = task.get("ansible.builtin.include_role")
        if include:
            yield task["name"], include


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_only_entry_points_validated_before_skip_their_spec(playbook):
    plays = yaml.safe_load((REPO / playbook).read_text())
    validated = set()
    skipped = []
    for play in plays:
        for name, include in included_roles(play.get("tasks", [])):
            entry = include.get("tasks_from", "main")
            if include.get("rolespec_validate", True):
                validated.add((include["name"], entry))
            else:
                skipped.append((name, include["name"], entry))
    assert skipped, "%s no longer skips any argument spec check: drop this test's premise" % playbook
    for name, role, entry in skipped:
        wanted = (role, "main") if entry == "components" else (role, "validate")
        assert wanted in validated, "%s: '%s' skips the spec of %s/%s before %s/%s was checked" % (
            playbook, name, role, entry, *wanted)
