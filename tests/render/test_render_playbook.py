"""playbooks/render.yml itself: a second render into the same directory leaves no file of the first
that is no longer rendered, keeps what is not its own, and a render runs no module process of its own
but that removal (issue 12: every module run is a Python start-up).

Only the platform component is rendered: the render of every role is tests/render/test_render.py's.
"""

from __future__ import annotations

import json

import playbook

# Actions that run in the controller's process: action plugins without a module, and the
# collection's own (k8s_apply writes the files in render mode).
IN_PROCESS = {"ansible.builtin.include_role", "ansible.builtin.assert", "ansible.builtin.debug",
              "ansible.builtin.set_fact", "ansible.builtin.validate_argument_spec", "bigdata.stack.k8s_apply"}


def render_platform(out_dir):
    run = playbook.run("playbooks/render.yml", "-i", "inventories/dev", "-e", "bigdata_render_dir=%s" % out_dir,
                       "-e", json.dumps({"bigdata_components": ["platform"]}), env={"K8S_AUTH_KUBECONFIG": None})
    assert run.returncode == 0, run.report()
    return run


def module_tasks(run):
    return sorted({r["task"] for r in run.task_results()
                   if r["status"] != "skipped" and r["action"] not in IN_PROCESS})


def test_a_fresh_render_runs_no_module_and_counts_its_files(tmp_path):
    out = tmp_path / "out"
    run = render_platform(out)
    assert module_tasks(run) == []
    files = sorted(p.name for p in (out / "platform").glob("*.yaml"))
    assert files, "nothing rendered"
    said = [r["result"]["msg"] for r in run.task_results() if r["task"] == "Say where the manifests are"]
    assert said == ["%d manifest files of platform in %s" % (len(files), out)]
    assert sorted(p.name for p in out.iterdir()) == ["platform"]  # no work directory left behind


def test_a_second_render_removes_what_it_no_longer_renders_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    render_platform(out)
    (out / "platform" / "left-from-before.yaml").write_text("kind: ConfigMap\n")
    (out / "not-a-component").mkdir()
    (out / "not-a-component" / "mine.yaml").write_text("kept: true\n")

    run = render_platform(out)
    assert not (out / "platform" / "left-from-before.yaml").exists()
    assert (out / "not-a-component" / "mine.yaml").read_text() == "kept: true\n"
    assert module_tasks(run) == ["Empty the output directories of the enabled components"]
