"""Run ansible-playbook (or ansible) as every test and tool of this repository does, and read the result.

What every caller relies on lives here once: the virtualenv's own executable, the repository root
as working directory, the repository's ansible.cfg (ANSIBLE_CONFIG), no colour, and the outcome as
data. ansible-runner starts the command and its event callback (awx_display, the one AWX uses)
records every task's result, so nothing here parses Ansible's text: `recap()` is the PLAY RECAP
taken from the stats event, `task_results()` the final result of each task on each host. Its stdout
callback prints what the default one prints, so `stdout` stays the text a person reads in an
assertion message.

Runner's subprocess mode, not its default pexpect mode: no pseudo-terminal, so stdout and stderr
stay apart and Ansible does not wrap warnings at a terminal's width (tests search them for a
sentence). It lives under tests/ because pytest puts tests/ on the import path
(pyproject.toml); the tools in tools/ add that directory themselves.

    run = playbook.run("site.yml", "-i", "inventories/dev", "--check", env={"K8S_AUTH_KUBECONFIG": path})
    assert run.returncode == 0, run.report()
    assert run.recap()["changed"] == 0
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from ansible_runner.config.command import CommandConfig
from ansible_runner.runner import Runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
BASE_ENV = {"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
# The events that carry a task's final result on one host (loop items have their own, earlier).
RESULT_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped",
                 "runner_on_unreachable": "unreachable"}
# Names in the stats event -> names on the PLAY RECAP line.
RECAP_NAMES = {"ok": "ok", "changed": "changed", "dark": "unreachable", "failures": "failed",
               "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


class PlaybookRun:
    """The outcome of one run: what a CompletedProcess has, plus Ansible's own record of it.

    command: the argument list; returncode, stdout, stderr: as subprocess gives them (stdout is
    the default callback's text); timed_out: the run was killed at its timeout (returncode 254);
    seconds: wall time of the process; events: ansible-runner's events, in order.
    """

    def __init__(self, command, returncode, stdout, stderr, events, timed_out, seconds, timeout=None):
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.events = events
        self.timed_out = timed_out
        self.seconds = seconds
        self.timeout = timeout

    def recap(self, host="localhost"):
        """The PLAY RECAP numbers of `host`, e.g. {'ok': 20, 'changed': 0, 'unreachable': 0, 'failed': 0, ...}."""
        stats = [e["event_data"] for e in self.events if e["event"] == "playbook_on_stats"]
        if not stats or host not in stats[-1].get("processed", {}):
            raise AssertionError("no PLAY RECAP for %s in the run of %s\n%s" % (host, " ".join(self.command),
                                                                                  self.report()))
        return {name: (stats[-1].get(key) or {}).get(host, 0) for key, name in RECAP_NAMES.items()}

    def task_results(self):
        """The final result of every task on every host, in the order they came, as dicts:

        host; task (as Ansible prints it, "role : name" inside a role); role (short name or "");
        action (as written in the task, e.g. ansible.builtin.assert); status (ok, failed, skipped,
        unreachable); changed; ignore_errors; result (the module's result; {} when skipped);
        duration (seconds on the host).
        """
        results = []
        for event in self.events:
            if event["event"] not in RESULT_EVENTS:
                continue
            data = event["event_data"]
            role = data.get("role") or ""
            shown_role = data.get("resolved_role") or role
            result = data.get("res") or {}
            results.append({
                "host": data.get("host"),
                "task": "%s : %s" % (shown_role, data.get("task")) if shown_role else data.get("task"),
                "role": role,
                "action": data.get("task_action"),
                "status": RESULT_EVENTS[event["event"]],
                "changed": bool(result.get("changed")),
                "ignore_errors": bool(data.get("ignore_errors")),
                "result": result,
                "duration": data.get("duration"),
            })
        return results

    def report(self, stdout_chars=6000, stderr_chars=3000):
        """Command, exit status and the tails of stdout and stderr, for an assertion message."""
        status = "timed out after %s s" % self.timeout if self.timed_out else "rc=%s" % self.returncode
        return "%s\n%s\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s" % (
            " ".join(self.command), status, self.stdout[-stdout_chars:], self.stderr[-stderr_chars:])


def run(*args, env=None, timeout=None, program="ansible-playbook"):
    """Run `program *args` (the virtualenv's) from the repository root and return a PlaybookRun.

    env: variables set on top of this process's environment and BASE_ENV; a value of None removes
    the variable. timeout: seconds, after which the process is killed (run.timed_out). A failing
    run is returned, not raised: each caller decides what failure means to it.
    """
    with tempfile.TemporaryDirectory(prefix="bigdata-ansible-run-") as private_dir:
        config = CommandConfig(private_data_dir=private_dir, host_cwd=REPO, runner_mode="subprocess",
                               envvars=dict(BASE_ENV), timeout=timeout, quiet=True, suppress_env_files=True)
        config.prepare_run_command(os.path.join(VENV_BIN, program), list(args))
        # Set after prepare, which starts from os.environ and adds runner's own variables: only here
        # can a variable be removed (a stale K8S_AUTH_KUBECONFIG must not reach a render).
        for name, value in (env or {}).items():
            if value is None:
                config.env.pop(name, None)
            else:
                config.env[name] = str(value)
        runner = Runner(config=config)
        started = time.monotonic()
        runner.run()
        seconds = time.monotonic() - started
        with runner.stdout as out, runner.stderr as err:
            stdout, stderr = out.read(), err.read()
        return PlaybookRun(config.command, runner.rc, stdout, stderr, list(runner.events), runner.timed_out,
                           seconds, timeout)
