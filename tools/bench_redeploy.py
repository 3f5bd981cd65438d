#!/usr/bin/env python3
"""Redeploy time of the streaming sample pipeline on the simulated cluster (`make bench`).

Deploys the dev stack into a fresh namespace of the simulated cluster (BIGDATA_TEST_KUBECONFIG,
application health off: no container runs there), then ROUNDS times changes one setting that is
part of the streaming pipeline's submission (its trigger), as a code change would, and runs the
developer loop's command, `ansible-playbook site.yml --tags pipelines`. Each round reports the
playbook's wall time and the redeploy time the play itself prints (old driver stopped and gone,
new one submitted with the real spark-submit). The namespace is deleted at the end. Prints a
table; asserts nothing about time.
"""

import os
import re
import statistics
import sys
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests"))

import benchlib  # noqa: E402  the benchmarks' command line and cluster guard
import playbook  # noqa: E402  tests/playbook.py: how tests and tools run Ansible

# In the message of the pipelines role's "Say where the pipelines run" task.
REDEPLOYED = re.compile(r"\(Re\)deployed in ([0-9.]+) s")


def run_dev(kubeconfig, namespace, *args):
    """ansible-playbook *args on the dev inventory in `namespace`; the PlaybookRun, or exit on failure."""
    run = playbook.run(*args, "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                       "-e", "bigdata_kubeconfig=" + kubeconfig, "-e", "bigdata_wait_application_health=false",
                       env={"PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
    if run.returncode != 0:
        raise SystemExit("playbook failed:\n" + run.report(4000, 2000))
    return run


def main():
    args, kubeconfig = benchlib.simulated_cluster(__doc__, rounds=3)
    namespace = "bench-redeploy-" + uuid.uuid4().hex[:6]
    try:
        deploy = run_dev(kubeconfig, namespace, "site.yml").seconds
        rows = []
        for round_no in range(1, args.rounds + 1):
            trigger = "%d seconds" % (10 + round_no)
            run = run_dev(kubeconfig, namespace, "site.yml", "--tags", "pipelines",
                          "-e", "pipelines_stream_trigger='%s'" % trigger)
            messages = "\n".join(str(task["result"].get("msg", "")) for task in run.task_results())
            redeployed = REDEPLOYED.search(messages)
            if not redeployed:
                raise SystemExit("round %d restarted nothing:\n%s" % (round_no, run.stdout[-3000:]))
            rows.append((run.seconds, float(redeployed.group(1)), run.recap()["changed"]))
    finally:
        run_dev(kubeconfig, namespace, "teardown.yml", "-e", "bigdata_teardown_delete_data=true")
    print("dev stack deployed into %s in %.1f s (site.yml, first run)" % (namespace, deploy))
    print("| round | site.yml --tags pipelines (wall) | redeploy (old driver gone, new submitted) | changed |")
    print("| ---: | ---: | ---: | ---: |")
    for number, (wall, redeployed, changed) in enumerate(rows, 1):
        print("| %d | %.1f s | %.1f s | %d |" % (number, wall, redeployed, changed))
    print("| median | %.1f s | %.1f s | |" % (statistics.median(r[0] for r in rows),
                                               statistics.median(r[1] for r in rows)))


if __name__ == "__main__":
    main()
