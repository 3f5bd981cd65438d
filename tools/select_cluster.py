#!/usr/bin/env python3
"""Choose the Kubernetes cluster `make up` deploys to, and say loudly which one it is.

Order: BIGDATA_KUBECONFIG (and BIGDATA_KUBE_CONTEXT) if set; else the current context of
$KUBECONFIG / ~/.kube/config when its API server answers; else kind when a Docker engine and the
kind binary exist; else the simulated cluster (real control plane, kwok nodes, no containers).

Prints shell assignments for `eval`: BIGDATA_KUBECONFIG and BIGDATA_EXTRA_ARGS. Everything meant
for people goes to stderr.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")
SIM_NAME = os.environ.get("SIM_NAME", "bigdata-sim")
SIM_KUBECONFIG = os.path.join(CACHE, "kwok", "clusters", SIM_NAME, "kubeconfig.yaml")
KIND_NAME = "bigdata"


def banner(*lines):
    width = max(len(line) for line in lines) + 4
    sys.stderr.write("\n" + "#" * width + "\n")
    for line in lines:
        sys.stderr.write("# " + line.ljust(width - 4) + " #\n")
    sys.stderr.write("#" * width + "\n\n")


def api_answers(kubeconfig, context=None, timeout=5):
    """True when the kubeconfig's (current or given) context reaches an API server."""
    try:
        from kubernetes import client, config
    except ImportError:
        return False
    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        client.VersionApi(api_client).get_code(_request_timeout=timeout)
        return True
    except Exception:  # any failure means "not usable"; the reason is not ours to fix here
        return False


def default_kubeconfig():
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    return path if os.path.isfile(path) else None


def docker_engine_runs():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0


def kind_cluster(existing_only):
    kubeconfig = os.path.join(CACHE, "kind", KIND_NAME + ".kubeconfig")
    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
    if KIND_NAME not in clusters.stdout.split():
        if existing_only:
            return None
        subprocess.run(["kind", "create", "cluster", "--name", KIND_NAME, "--kubeconfig", kubeconfig],
                       check=True, stdout=sys.stderr)
    os.makedirs(os.path.dirname(kubeconfig), exist_ok=True)
    with open(kubeconfig, "w") as out:
        subprocess.run(["kind", "get", "kubeconfig", "--name", KIND_NAME], check=True, stdout=out)
    return kubeconfig


def start_simcluster(env):
    subprocess.run(["make", "--no-print-directory", "-C", REPO, "sim-up", "ENV=" + env],
                   check=True, stdout=sys.stderr)


def choose(env, existing_only):
    if os.environ.get("BIGDATA_KUBECONFIG"):
        kubeconfig = os.environ["BIGDATA_KUBECONFIG"]
        context = os.environ.get("BIGDATA_KUBE_CONTEXT")
        extra = ["-e", "bigdata_kube_context=" + context] if context else []
        banner("Cluster: BIGDATA_KUBECONFIG=%s%s" % (kubeconfig, " context " + context if context else ""))
        return kubeconfig, extra

    kubeconfig = default_kubeconfig()
    if kubeconfig and kubeconfig != SIM_KUBECONFIG and api_answers(kubeconfig):
        banner("Cluster: the current context of %s (it answers)." % kubeconfig,
               "Set BIGDATA_KUBECONFIG / BIGDATA_KUBE_CONTEXT to choose another.")
        return kubeconfig, []

    if docker_engine_runs() and shutil.which("kind"):
        kubeconfig = kind_cluster(existing_only)
        if kubeconfig:
            banner("Cluster: kind cluster '%s' (Docker). Containers really run." % KIND_NAME)
            return kubeconfig, []

    if existing_only and not os.path.isfile(SIM_KUBECONFIG):
        sys.stderr.write("No reachable cluster and no simulated cluster: nothing to act on.\n")
        sys.exit(1)
    if not existing_only:
        start_simcluster(env)
    banner(
        "Cluster: the SIMULATED cluster '%s' (no reachable kubeconfig context, no Docker+kind)." % SIM_NAME,
        "Real etcd, kube-apiserver (Pod Security admission), controller-manager and scheduler;",
        "kwok fakes the nodes: pods are admitted, scheduled and marked Ready but run NO containers.",
        "Application health checks are therefore off (bigdata_wait_application_health=false).",
        "kubeconfig: " + SIM_KUBECONFIG,
    )
    return SIM_KUBECONFIG, ["-e", "bigdata_wait_application_health=false"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", help="inventory whose node shapes a simulated cluster gets")
    parser.add_argument("--existing", action="store_true", help="never create a cluster (teardown, status)")
    args = parser.parse_args()
    kubeconfig, extra = choose(args.env, args.existing)
    print("BIGDATA_KUBECONFIG=%s" % shlex.quote(kubeconfig))
    print("BIGDATA_EXTRA_ARGS=%s" % shlex.quote(" ".join(shlex.quote(a) for a in extra)))


if __name__ == "__main__":
    main()
