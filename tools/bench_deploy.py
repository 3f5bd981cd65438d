#!/usr/bin/env python3
"""Deploy time of `site.yml` against the kubectl floor, side by side (`make bench`).

On the simulated cluster (BIGDATA_TEST_KUBECONFIG), where pods are Ready at once, so the time is
almost all the tool's own. Dev inventory, application health off (no container runs there),
external Kafka listener off and no pipeline submitted (spark-submit is benchmarked by
tools/bench.py); each way gets a fresh namespace every round. ROUNDS rounds of:

* site.yml       - `ansible-playbook site.yml` deploy to ready (every role's wait)
* site.yml again - the same command again: must report changed=0
* kubectl        - the floor: the same manifests (rendered beforehand by playbooks/render.yml, not
                   timed), `kubectl apply --server-side` per role in the deployment order, then
                   `kubectl rollout status` of every StatefulSet and Deployment and
                   `kubectl wait --for=condition=complete` of every Job
* render.yml     - `playbooks/render.yml` for dev, no cluster
* teardown.yml   - `ansible-playbook teardown.yml` of the site.yml namespace (data kept), against
                   `kubectl delete` of the same kinds by the same labels in the kubectl namespace
                   (foreground, one final wait: kubectl deletes everything, then waits)

API requests: the API server's own counter `apiserver_request_total` (by verb and resource), read
before and after the deploy and the no-op run of the first round. Other clients (controllers,
scheduler, kwok) count too, so the same counter over an idle interval of the same length is
reported beside it ("background").

Prints Markdown tables; asserts nothing about time. The namespaces are deleted after each round
(two dev stacks fill the simulated dev cluster).
"""

import collections
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests"))

import benchlib  # noqa: E402  the benchmarks' command line and cluster guard
import playbook  # noqa: E402  tests/playbook.py: how tests and tools run Ansible

# plugins/filter/stack.py CATALOG: the order site.yml applies the roles in.
ORDER = ("platform", "hdfs", "kafka", "elasticsearch", "kibana", "spark", "monitoring", "pipelines")
SAME_AS_BENCH = ["-e", "kafka_external_enabled=false", "-e", '{"pipelines_enabled": []}',
                 "-e", "bigdata_wait_application_health=false"]
METRIC = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$')


def kubectl_binary():
    """The simulated cluster's own kubectl (same version as its API server), else the one on PATH."""
    cached = sorted(glob.glob(os.path.join(os.environ.get("BIGDATA_CACHE_DIR", os.path.expanduser(
        "~/.cache/bigdata-stack")), "simcluster", "*", "kubectl")))
    found = os.environ.get("BIGDATA_KUBECTL") or (cached[-1] if cached else shutil.which("kubectl"))
    if not found:
        raise SystemExit("no kubectl: set BIGDATA_KUBECTL or run make sim-up first")
    return found


def ansible(kubeconfig, namespace, *args):
    """ansible-playbook *args on the dev inventory in `namespace`; the PlaybookRun, or exit on failure."""
    run = playbook.run(*args, "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                       "-e", "bigdata_kubeconfig=" + kubeconfig, *SAME_AS_BENCH,
                       env={"PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
    if run.returncode != 0:
        raise SystemExit("playbook failed:\n" + run.report(4000, 2000))
    return run


def render(namespace, out_dir):
    """Seconds of playbooks/render.yml for dev into out_dir (no cluster)."""
    run = playbook.run("playbooks/render.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                       "-e", "bigdata_render_dir=" + out_dir, *SAME_AS_BENCH,
                       env={"K8S_AUTH_KUBECONFIG": None})
    if run.returncode != 0:
        raise SystemExit("render failed:\n" + run.report(4000, 2000))
    return run.seconds


def kubectl(kubeconfig, *args):
    proc = subprocess.run([kubectl_binary(), "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit("kubectl %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))
    return proc.stdout


def kubectl_floor(kubeconfig, namespace, rendered):
    """Seconds to apply `rendered` role by role and wait for every workload and Job, with kubectl only."""
    roles = [r for r in ORDER if os.path.isdir(os.path.join(rendered, r))]
    waits = []
    for role in roles:
        for path in sorted(glob.glob(os.path.join(rendered, role, "*.yaml"))):
            with open(path, encoding="utf-8") as handle:
                for doc in yaml.safe_load_all(handle):
                    if doc and doc.get("kind") in ("StatefulSet", "Deployment", "Job"):
                        waits.append((doc["kind"].lower(), doc["metadata"]["name"], doc["spec"]))
    start = time.monotonic()
    for role in roles:
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=bench-kubectl",
                "-n", namespace, "-f", os.path.join(rendered, role))
    for kind, name, spec in waits:
        if kind == "job":
            kubectl(kubeconfig, "wait", "-n", namespace, "--for=condition=complete", "--timeout=300s", "job/" + name)
        elif spec.get("updateStrategy", {}).get("type") == "OnDelete":
            # The roles roll their StatefulSets themselves (OnDelete), and `kubectl rollout status`
            # refuses that strategy: a fresh one is ready when every replica is.
            kubectl(kubeconfig, "wait", "-n", namespace, "--timeout=300s",
                    "--for=jsonpath={.status.readyReplicas}=%d" % spec.get("replicas", 1), "statefulset/" + name)
        else:
            kubectl(kubeconfig, "rollout", "status", "-n", namespace, "--timeout=300s", "%s/%s" % (kind, name))
    return time.monotonic() - start


# roles/common/defaults/main.yml bigdata_teardown_kinds, and the selectors of roles/common/tasks/teardown.yml.
TEARDOWN_KINDS = ("job,statefulset,deployment,pod,poddisruptionbudget,ingress,networkpolicy,service,configmap,"
                  "secret,rolebinding,role,serviceaccount")
TEARDOWN_SELECTOR = "app.kubernetes.io/part-of=bigdata-stack,app.kubernetes.io/instance=bigdata,bigdata.stack/lifecycle!=data"


def kubectl_delete(kubeconfig, namespace):
    """Seconds of `kubectl delete` of what teardown.yml removes (data kept), one final wait."""
    start = time.monotonic()
    kubectl(kubeconfig, "delete", TEARDOWN_KINDS, "-n", namespace, "-l", TEARDOWN_SELECTOR, "--cascade=foreground",
            "--wait=true", "--timeout=300s")
    return time.monotonic() - start


def delete_namespaces(kubeconfig, namespaces):
    """Delete the namespaces and wait until they are gone (not timed)."""
    if namespaces:
        subprocess.run([kubectl_binary(), "--kubeconfig", kubeconfig, "delete", "namespace", *namespaces,
                        "--ignore-not-found", "--timeout=300s"], capture_output=True, check=False)
        namespaces.clear()


def request_counts(kubeconfig):
    """{(verb, resource): count} of apiserver_request_total, summed over the other labels."""
    counts = collections.Counter()
    for line in kubectl(kubeconfig, "get", "--raw", "/metrics").splitlines():
        match = METRIC.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
            resource = labels.get("resource") or labels.get("subresource") or "-"
            if labels.get("subresource") and labels.get("resource"):
                resource += "/" + labels["subresource"]
            counts[(labels.get("verb", "?"), resource)] += int(float(match.group("value")))
    return counts


def counted(kubeconfig, action):
    """(result of action(), {(verb, resource): requests during it}, seconds)."""
    before = request_counts(kubeconfig)
    start = time.monotonic()
    result = action()
    seconds = time.monotonic() - start
    after = request_counts(kubeconfig)
    return result, {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > 0}, seconds


def requests_table(columns):
    """Markdown table of requests by verb, one column per (title, {(verb, resource): n})."""
    verbs = sorted({verb for _title, counts in columns for verb, _res in counts})
    lines = ["| requests | " + " | ".join(title for title, _c in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for verb in verbs:
        lines.append("| %s | %s |" % (verb, " | ".join(
            str(sum(n for (v, _r), n in counts.items() if v == verb)) for _t, counts in columns)))
    lines.append("| **total** | %s |" % " | ".join(str(sum(counts.values())) for _t, counts in columns))
    return "\n".join(lines)


def top_resources(counts, limit=12):
    return ", ".join("%s %s %d" % (verb, res, n) for (verb, res), n in
                     sorted(counts.items(), key=lambda item: -item[1])[:limit])


def main():
    args, kubeconfig = benchlib.simulated_cluster(__doc__, rounds=3)
    tag = uuid.uuid4().hex[:6]
    namespaces, rows, requests = [], [], None
    work = tempfile.mkdtemp(prefix="bench-deploy-")
    try:
        for round_no in range(1, args.rounds + 1):
            ns_ansible, ns_kubectl = "bench-a%d-%s" % (round_no, tag), "bench-k%d-%s" % (round_no, tag)
            namespaces += [ns_ansible, ns_kubectl]
            rendered = os.path.join(work, ns_kubectl)
            render_seconds = render(ns_kubectl, rendered)
            floor = kubectl_floor(kubeconfig, ns_kubectl, rendered)
            deploy, deploy_requests, _s = counted(kubeconfig, lambda: ansible(kubeconfig, ns_ansible, "site.yml"))
            again, again_requests, again_seconds = counted(
                kubeconfig, lambda: ansible(kubeconfig, ns_ansible, "site.yml"))
            if requests is None:
                _none, idle, _s = counted(kubeconfig, lambda: time.sleep(again_seconds))
                requests = (deploy_requests, again_requests, idle)
            teardown = ansible(kubeconfig, ns_ansible, "teardown.yml")
            rows.append((deploy.seconds, floor, again.seconds, again.recap()["changed"], render_seconds,
                         teardown.seconds, kubectl_delete(kubeconfig, ns_kubectl)))
            print("round %d: site.yml %.1f s, kubectl %.1f s, again %.1f s (changed=%d), render %.1f s, "
                  "teardown %.1f s, kubectl delete %.1f s" % ((round_no,) + rows[-1]), file=sys.stderr, flush=True)
            # Two dev stacks fill the simulated dev cluster: the next round starts on an empty one.
            delete_namespaces(kubeconfig, namespaces)
    finally:
        delete_namespaces(kubeconfig, namespaces)
        shutil.rmtree(work, ignore_errors=True)

    print("| way | " + " | ".join("run %d" % n for n in range(1, len(rows) + 1)) + " | median |")
    print("| --- |" + " ---: |" * (len(rows) + 1))

    def line(title, values, fmt="%.1f s"):
        print("| %s | %s | %s |" % (title, " | ".join(fmt % v for v in values), fmt % statistics.median(values)))

    line("`site.yml` deploy, ready", [r[0] for r in rows])
    line("kubectl apply --server-side per role + rollout status / wait (the floor)", [r[1] for r in rows])
    line("ratio", [r[0] / r[1] for r in rows], "%.1f×")
    line("`site.yml` again, nothing to change", [r[2] for r in rows])
    print("| changed on the second run | %s | |" % " | ".join(str(r[3]) for r in rows))
    line("`playbooks/render.yml` (dev, no cluster)", [r[4] for r in rows])
    line("`teardown.yml` (data kept)", [r[5] for r in rows])
    line("`kubectl delete` of the same kinds by label, one final wait", [r[6] for r in rows])
    line("ratio", [r[5] / r[6] for r in rows], "%.1f×")
    print()
    deploy_requests, again_requests, idle = requests
    print(requests_table([("deploy", deploy_requests), ("no-op re-run", again_requests),
                          ("background, same length as the re-run", idle)]))
    print()
    print("no-op re-run, by resource: " + top_resources(again_requests))


if __name__ == "__main__":
    main()
