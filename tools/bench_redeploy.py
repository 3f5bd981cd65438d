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

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
REDEPLOYED = re.compile(r"\(Re\)deployed in ([0-9.]+) s")
CHANGED = re.compile(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)")


def playbook(kubeconfig, namespace, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    cmd = [os.path.join(BIN, "ansible-playbook"), *args, "-i", "inventories/dev",
           "-e", "bigdata_namespace=" + namespace, "-e", "bigdata_kubeconfig=" + kubeconfig,
           "-e", "bigdata_wait_application_health=false"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (" ".join(cmd), proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kubeconfig = os.environ.get("BIGDATA_TEST_KUBECONFIG")
    if not kubeconfig or not os.path.exists(kubeconfig):
        raise SystemExit("BIGDATA_TEST_KUBECONFIG must name the simulated cluster's kubeconfig (make sim-up)")
    namespace = "bench-redeploy-" + uuid.uuid4().hex[:6]
    try:
        deploy, _ = playbook(kubeconfig, namespace, "site.yml")
        rows = []
        for round_no in range(1, args.rounds + 1):
            trigger = "%d seconds" % (10 + round_no)
            wall, out = playbook(kubeconfig, namespace, "site.yml", "--tags", "pipelines",
                                 "-e", "pipelines_stream_trigger='%s'" % trigger)
            redeployed = REDEPLOYED.search(out)
            changed = CHANGED.search(out)
            if not redeployed:
                raise SystemExit("round %d restarted nothing:\n%s" % (round_no, out[-3000:]))
            rows.append((wall, float(redeployed.group(1)), int(changed.group(1)) if changed else -1))
    finally:
        playbook(kubeconfig, namespace, "teardown.yml", "-e", "bigdata_teardown_delete_data=true")
    print("dev stack deployed into %s in %.1f s (site.yml, first run)" % (namespace, deploy))
    print("| round | site.yml --tags pipelines (wall) | redeploy (old driver gone, new submitted) | changed |")
    print("| ---: | ---: | ---: | ---: |")
    for number, (wall, redeployed, changed) in enumerate(rows, 1):
        print("| %d | %.1f s | %.1f s | %d |" % (number, wall, redeployed, changed))
    print("| median | %.1f s | %.1f s | |" % (statistics.median(r[0] for r in rows),
                                               statistics.median(r[1] for r in rows)))


if __name__ == "__main__":
    main()
