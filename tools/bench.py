#!/usr/bin/env python3
"""Overhead of bigdata.stack.spark_submit over the spark-submit it runs (`make bench`).

Against the simulated cluster (BIGDATA_TEST_KUBECONFIG), in a fresh namespace prepared by the
bigdata.stack.spark role (restricted Pod Security, the role's pod templates):

* module   - `ansible-playbook tests/integration/playbooks/spark_submit.yml`, state=present, wait=false
* ad-hoc   - `ansible localhost -m bigdata.stack.spark_submit -a <json>`, same options
* raw      - the exact command the module returns (taken from a check-mode run), with the
             environment the module gives it (SPARK_HOME, SPARK_SUBMIT_OPTS)
* check    - the module playbook in check mode: everything but the RBAC reviews, spark-submit and
             the lookup of the new driver, i.e. the module's own fixed cost

Module and raw runs use one spark_home: a directory of links to the pyspark package whose
bin/spark-submit is a shim that logs when the real one started and ended (a bash process more,
the same for both), so the JVM's own time inside the module is known too.

One unmeasured warm-up of each, then ROUNDS rounds, the order rotating every round. Between two
runs the driver pods of the application are deleted and gone, so `present` always submits. The
task's own duration (ansible-runner's event of its result, tests/playbook.py) splits the module's
time into ansible-playbook start/stop, the module's own work and spark-submit. Prints a table; writes
nothing. Numbers are wall-clock seconds on whatever else the machine is doing.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests"))

import benchlib  # noqa: E402  the benchmarks' command line and cluster guard
import playbook  # noqa: E402  tests/playbook.py: how tests and tools run Ansible
SETUP = "tests/integration/playbooks/spark_setup.yml"
SUBMIT = "tests/integration/playbooks/spark_submit.yml"
APP = "bench-pi"


def ansible_env(kubeconfig):
    """What the Ansible runs get on top of playbook.BASE_ENV (ad-hoc `ansible` needs the callback)."""
    return {"K8S_AUTH_KUBECONFIG": kubeconfig, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


def timed(cmd, env):
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - start, proc


def module_task(run):
    """(module result, task seconds) of the spark_submit task on localhost."""
    for task in run.task_results():
        if task["host"] == "localhost" and ("spark_submit" in task["task"] or "Submit" in task["task"]):
            result = dict(task["result"], failed=task["status"] == "failed")
            return (result.get("results") or [result])[0], task["duration"]
    raise SystemExit("no spark_submit task in the run:\n" + run.report(3000, 3000))


class Bench(object):
    def __init__(self, kubeconfig, rounds):
        from kubernetes import client, config
        self.kubeconfig = kubeconfig
        self.rounds = rounds
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.client = client
        self.env = ansible_env(kubeconfig)
        self.tmp = tempfile.mkdtemp(prefix="bigdata-bench-")
        self.namespace = "bench-spark-" + uuid.uuid4().hex[:8]
        self.options = None
        self.raw_command = None
        self.raw_env = None
        self.spark_home = None
        self.times_log = os.path.join(self.tmp, "spark-submit-times.log")

    # -- spark-submit with a stopwatch

    def make_spark_home(self):
        import importlib.util
        pyspark = os.path.dirname(importlib.util.find_spec("pyspark").origin)
        home = os.path.join(self.tmp, "spark-home")
        os.makedirs(os.path.join(home, "bin"))
        for entry in os.listdir(pyspark):
            if entry != "bin":
                os.symlink(os.path.join(pyspark, entry), os.path.join(home, entry))
        for entry in os.listdir(os.path.join(pyspark, "bin")):
            if entry != "spark-submit":
                os.symlink(os.path.join(pyspark, "bin", entry), os.path.join(home, "bin", entry))
        shim = os.path.join(home, "bin", "spark-submit")
        with open(shim, "w") as handle:
            handle.write('#!/bin/bash\nstart=$(date +%%s.%%N)\n"%s" "$@"\nrc=$?\n'
                         'echo "$start $(date +%%s.%%N) $rc" >> "%s"\nexit $rc\n'
                         % (os.path.join(pyspark, "bin", "spark-submit"), self.times_log))
        os.chmod(shim, 0o755)
        return home

    def last_spark_submit_seconds(self):
        with open(self.times_log) as handle:
            start, end, dummy = handle.read().splitlines()[-1].split()
        return float(end) - float(start)

    # -- cluster

    def prepare(self):
        self.core.create_namespace(self.client.V1Namespace(metadata=self.client.V1ObjectMeta(
            name=self.namespace, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
        run = playbook.run(SETUP, "-e", "test_namespace=" + self.namespace, "-e", "test_dir=" + self.tmp, env=self.env)
        if run.returncode:
            raise SystemExit("setup failed:\n" + run.report(4000, 2000))
        self.options = dict(
            name=APP, namespace=self.namespace, image="apache/spark:4.2.0", image_pull_policy="IfNotPresent",
            service_account="spark-driver", application="local:///opt/spark/examples/src/main/python/pi.py",
            application_args=["10"], driver_cores=1, driver_memory="512m", executor_instances=1,
            driver_pod_template=os.path.join(self.tmp, "driver.yaml"),
            executor_pod_template=os.path.join(self.tmp, "executor.yaml"),
            conf={"spark.kubernetes.driver.request.cores": "250m"}, wait=False,
            spark_home=self.make_spark_home(),
        )
        result, dummy, dummy2 = self.run_playbook(check=True)
        self.raw_command = result["command"]
        if any("********" in arg for arg in self.raw_command):
            raise SystemExit("the module masked part of its command; the raw run would differ")
        opts = (os.environ.get("SPARK_SUBMIT_OPTS", "") +
                " -Dkubernetes.auth.tryKubeConfig=false -Dkubernetes.auth.tryServiceAccount=false").strip()
        self.raw_env = dict(os.environ, SPARK_HOME=self.options["spark_home"], SPARK_SUBMIT_OPTS=opts)

    def drivers(self):
        return self.core.list_namespaced_pod(
            self.namespace, label_selector="spark-role=driver,bigdata.stack/app-name=" + APP).items

    def clean(self):
        for pod in self.drivers():
            self.core.delete_namespaced_pod(pod.metadata.name, self.namespace)
        deadline = time.monotonic() + 120
        while self.drivers():
            if time.monotonic() > deadline:
                raise SystemExit("driver pods of %s are still there after 120s" % APP)
            time.sleep(0.5)

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            self.core.delete_namespace(self.namespace)
        except Exception as e:  # pylint: disable=broad-except
            print("could not delete namespace %s: %s" % (self.namespace, e), file=sys.stderr)

    # -- the three ways

    def run_playbook(self, check=False):
        vars_file = os.path.join(self.tmp, "vars.json")
        with open(vars_file, "w") as handle:
            json.dump({"spark": self.options}, handle)
        run = playbook.run(SUBMIT, "-e", "@" + vars_file, *(["--check"] if check else []), env=self.env)
        result, task = module_task(run)
        if run.returncode or result.get("failed") or not result.get("changed"):
            raise SystemExit("module run failed: %s\n%s" % (result.get("msg"), run.stderr[-3000:]))
        return result, run.seconds, task

    def run_adhoc(self):
        run = playbook.run("localhost", "-m", "bigdata.stack.spark_submit", "-a", json.dumps(self.options),
                           env=self.env, program="ansible")
        result, task = module_task(run)
        if run.returncode or result.get("failed") or not result.get("submitted"):
            raise SystemExit("ad-hoc run failed: %s\n%s" % (result.get("msg"), run.report(2000, 2000)))
        return result, run.seconds, task

    def run_raw(self):
        seconds, proc = timed(self.raw_command, self.raw_env)
        if proc.returncode:
            raise SystemExit("raw spark-submit failed:\n" + proc.stderr[-3000:])
        if not self.drivers():
            raise SystemExit("raw spark-submit created no driver pod")
        return None, seconds, None

    def measure(self):
        ways = [("module", self.run_playbook), ("ad-hoc", self.run_adhoc), ("raw", self.run_raw),
                ("check", lambda: self.run_playbook(check=True))]
        samples = dict((name, []) for name, dummy in ways)
        tasks = dict((name, []) for name, dummy in ways)
        jvm = dict((name, []) for name, dummy in ways)
        for name, run in ways:  # warm-up: page cache, JIT-less JVM start, ansible's caches
            self.clean()
            run()
        for round_ in range(self.rounds):
            order = ways[round_ % len(ways):] + ways[:round_ % len(ways)]
            for name, run in order:
                self.clean()
                result, seconds, task = run()
                if name in ("module", "ad-hoc") and not result.get("submitted"):
                    raise SystemExit("%s did not submit in round %s: %s" % (name, round_, result))
                samples[name].append(seconds)
                if task is not None:
                    tasks[name].append(task)
                if name != "check":
                    jvm[name].append(self.last_spark_submit_seconds())
                print("round %s %-7s %6.2fs%s%s" % (
                    round_ + 1, name, seconds, "" if task is None else " task %.2fs" % task,
                    " spark-submit %.2fs" % jvm[name][-1] if name != "check" else ""), file=sys.stderr)
        self.clean()
        return samples, tasks, jvm


def report(samples, tasks, jvm, rounds):
    med = dict((name, statistics.median(values)) for name, values in samples.items())
    task = dict((name, statistics.median(values)) for name, values in tasks.items() if values)
    inner = dict((name, statistics.median(values)) for name, values in jvm.items() if values)
    raw = med["raw"]
    print()
    print("spark_submit (submit only, wait=false) vs raw spark-submit; median of %d, wall seconds" % rounds)
    print()
    print("| way | median | min | max | ratio to raw |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, label in (("raw", "raw spark-submit (the module's command)"), ("module", "spark_submit, ansible-playbook"),
                        ("ad-hoc", "spark_submit, ansible -m"), ("check", "spark_submit --check (no JVM)")):
        values = samples[name]
        print("| %s | %.2f | %.2f | %.2f | %.2fx |" % (label, med[name], min(values), max(values), med[name] / raw))
    print()
    print("Where the time goes (medians of each part, seconds; task = the task's duration in the JSON callback,")
    print("spark-submit = the JVM's run as the shim timed it):")
    print()
    print("| part | ansible-playbook | ansible -m | raw |")
    print("| --- | ---: | ---: | ---: |")
    print("| ansible start-up and shutdown (wall - task) | %.2f | %.2f | |" % (
        med["module"] - task["module"], med["ad-hoc"] - task["ad-hoc"]))
    print("| module work around spark-submit (task - spark-submit) | %.2f | %.2f | |" % (
        statistics.median([t - j for t, j in zip(tasks["module"], jvm["module"])]),
        statistics.median([t - j for t, j in zip(tasks["ad-hoc"], jvm["ad-hoc"])])))
    print("| of it fixed (check-mode task: AnsiballZ, Python, imports, connection, driver lookup, Java/Spark checks) "
          "| %.2f | | |" % task["check"])
    print("| spark-submit | %.2f | %.2f | %.2f |" % (inner["module"], inner["ad-hoc"], inner["raw"]))
    print("| total (wall) | %.2f | %.2f | %.2f |" % (med["module"], med["ad-hoc"], raw))


def main():
    args, kubeconfig = benchlib.simulated_cluster(__doc__, rounds=5)
    bench = Bench(kubeconfig, args.rounds)
    try:
        bench.prepare()
        samples, tasks, jvm = bench.measure()
    finally:
        bench.teardown()
    report(samples, tasks, jvm, args.rounds)
    load = os.getloadavg()
    print()
    print("load average during the run: %.1f %.1f %.1f on %d CPUs" % (load[0], load[1], load[2], os.cpu_count()))


if __name__ == "__main__":
    main()
