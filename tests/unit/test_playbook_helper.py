"""tests/playbook.py: the numbers and results it reads are the ones Ansible prints.

Runs a small real playbook (no cluster) through the helper. What every test and tool asserts
through it rests on this: the recap equals the PLAY RECAP line, each task's status, action and
role come from the events, the environment is set and removed as asked, stderr stays apart and
unwrapped, and a timeout kills the run.
"""

import os

import playbook

PLAYBOOK = """\
- name: Exercise every outcome
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the environment
      ansible.builtin.debug:
        msg: >-
          kept={{ lookup('ansible.builtin.env', 'BIGDATA_HELPER_KEPT') }}
          removed={{ lookup('ansible.builtin.env', 'BIGDATA_HELPER_REMOVED') }}
    - name: Change something
      ansible.builtin.command: "true"
      changed_when: true
    - name: Skip
      ansible.builtin.debug:
        msg: never
      when: false
    - name: Fail and carry on
      ansible.builtin.fail:
        msg: ignored
      ignore_errors: true
    - name: Rescue a failure
      block:
        - name: Fail inside a block
          ansible.builtin.fail:
            msg: rescued
      rescue:
        - name: Rescue
          ansible.builtin.debug:
            msg: rescued
    - name: Run a role
      ansible.builtin.include_role:
        name: demo
"""
ROLE_TASKS = """\
- name: Check the value
  ansible.builtin.assert:
    that: demo_value == 3
    fail_msg: demo_value is wrong, set it to 3
"""


def recap_line(stdout, host="localhost"):
    """The numbers of the PLAY RECAP line as printed, to compare with run.recap()."""
    for line in stdout.splitlines():
        if line.startswith(host) and "changed=" in line:
            return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}
    raise AssertionError("no PLAY RECAP line in:\n" + stdout[-3000:])


def test_run_reads_recap_and_task_results_as_ansible_prints_them(tmp_path, monkeypatch):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "roles" / "demo" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "tasks" / "main.yml").write_text(ROLE_TASKS)
    monkeypatch.setenv("BIGDATA_HELPER_REMOVED", "from-the-caller")
    # No inventory at this (long) path: Ansible warns on stderr in a line longer than a terminal.
    missing = str(tmp_path / ("no-such-inventory-" + "x" * 80))

    run = playbook.run(str(tmp_path / "play.yml"), "-i", missing, "-e", "demo_value=2",
                       env={"ANSIBLE_ROLES_PATH": tmp_path / "roles", "BIGDATA_HELPER_KEPT": "yes",
                            "BIGDATA_HELPER_REMOVED": None})

    assert run.returncode == 2 and not run.timed_out, run.report()
    assert run.command[0] == os.path.join(playbook.VENV_BIN, "ansible-playbook")
    assert run.recap() == recap_line(run.stdout)
    assert run.recap() == {"ok": 5, "changed": 1, "unreachable": 0, "failed": 1, "skipped": 1,
                           "rescued": 1, "ignored": 1}
    results = run.task_results()
    assert [(r["task"], r["status"], r["changed"], r["ignore_errors"]) for r in results] == [
        ("Read the environment", "ok", False, False),
        ("Change something", "ok", True, False),
        ("Skip", "skipped", False, False),
        ("Fail and carry on", "failed", False, True),
        ("Fail inside a block", "failed", False, False),
        ("Rescue", "ok", False, False),
        ("Run a role", "ok", False, False),
        ("demo : Check the value", "failed", False, False),
    ]
    assert results[0]["result"]["msg"] == "kept=yes removed="
    last = results[-1]
    assert (last["role"], last["action"], last["host"]) == ("demo", "ansible.builtin.assert", "localhost")
    assert last["result"]["msg"] == "demo_value is wrong, set it to 3"
    assert last["duration"] >= 0
    # stdout is the default callback's text; warnings stay on stderr, on one line.
    assert "TASK [demo : Check the value]" in run.stdout and "fatal: [localhost]" in run.stdout
    assert "Unable to parse %s as an inventory source" % missing in run.stderr
    assert missing not in run.stdout
    assert "rc=2" in run.report()


def test_run_is_killed_at_its_timeout(tmp_path):
    (tmp_path / "slow.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.pause:\n        seconds: 120\n")

    run = playbook.run(str(tmp_path / "slow.yml"), "-i", "localhost,", "-c", "local", timeout=4)

    assert run.timed_out and run.returncode == 254, run.report()
    assert run.seconds < 60
    assert "timed out after 4 s" in run.report()
