#!/usr/bin/env python3
"""Deploy time against the size of the topology, and a plot of it (`make bench`).

prod as shipped, then more Kafka brokers and HDFS datanodes, up to 30 brokers and 100 datanodes,
on a simulated cluster of 110 prod-shaped nodes that this benchmark builds for itself (named
bench-topo, removed at the end unless --keep-cluster). Application health off (no container runs
on the simulated cluster), no pipeline submitted, external Kafka listener off. For each size, in
a fresh namespace:

* site.yml  - `ansible-playbook site.yml -i inventories/prod` with the size's replicas, to ready
* kubectl   - the floor: the same manifests (rendered by playbooks/render.yml, not timed) applied
              with `kubectl apply --server-side` per role, then `kubectl rollout status` / `wait`
* Ansible's own time: site.yml minus the floor (what the cluster takes is in both)

Also timed: building the 110-node cluster, and the same playbook again (nothing to change).
Prints a Markdown table and writes the plot to docs/bench-topology.png (--plot to change).
Asserts nothing about time.
"""

import argparse
import os
import statistics
import sys
import shutil
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tools"))

import bench_deploy  # noqa: E402  the kubectl floor and namespace clean-up
import benchlib  # noqa: E402  the simulated-cluster guard
import playbook  # noqa: E402  tests/playbook.py: how tests and tools run Ansible

CLUSTER = "bench-topo"
NODES = 110
# (Kafka brokers, HDFS datanodes): prod as shipped first.
SIZES = ((3, 3), (10, 33), (20, 66), (30, 100))
SAME_AS_BENCH = ["-e", "kafka_external_enabled=false", "-e", '{"pipelines_enabled": []}',
                 "-e", "bigdata_wait_application_health=false"]
POOLS = ('{"simcluster_node_pools": [{"name": "worker", "count": %d, "cpu": "16", "memory": "64Gi", "pods": 110,'
         ' "zones": ["zone-a", "zone-b", "zone-c"], "labels": {}}]}' % NODES)


def cache_dir():
    return os.environ.get("BIGDATA_CACHE_DIR", os.path.expanduser("~/.cache/bigdata-stack"))


def simcluster(*extra):
    """The run of playbooks/simcluster.yml for the bench cluster (prod shapes, NODES nodes). Volumes:
    the largest size claims about 140 and its kubectl twin as many, each in a namespace of its own."""
    run = playbook.run("playbooks/simcluster.yml", "-i", "inventories/prod", "-e", "simcluster_name=" + CLUSTER,
                       "-e", POOLS, "-e", "simcluster_pv_count=%d" % (4 * NODES), *extra)
    if run.returncode != 0:
        raise SystemExit("simcluster.yml failed:\n" + run.report(4000, 2000))
    return run


def size_args(brokers, datanodes):
    return ["-e", "kafka_broker_replicas=%d" % brokers, "-e", "hdfs_datanode_replicas=%d" % datanodes]


# Secrets prod's inventory names but the stack does not make (certificates the user provides):
# site.yml's preflight wants them to exist. Placeholders do here, where no container reads them.
PROVIDED_SECRETS = ("kafka-tls", "kibana-ingress-tls", "grafana-ingress-tls")


def provide_secrets(kubeconfig, namespace):
    bench_deploy.kubectl(kubeconfig, "create", "namespace", namespace)
    for name in PROVIDED_SECRETS:
        bench_deploy.kubectl(kubeconfig, "create", "secret", "generic", name, "-n", namespace,
                             "--from-literal=tls.crt=placeholder", "--from-literal=tls.key=placeholder",
                             "--from-literal=ca.crt=placeholder")


def deploy(kubeconfig, namespace, brokers, datanodes):
    run = playbook.run("site.yml", "-i", "inventories/prod", "-e", "bigdata_namespace=" + namespace,
                       "-e", "bigdata_kubeconfig=" + kubeconfig, *size_args(brokers, datanodes), *SAME_AS_BENCH,
                       env={"PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
    if run.returncode != 0:
        raise SystemExit("site.yml failed:\n" + run.report(4000, 2000))
    return run


def render(namespace, out_dir, brokers, datanodes):
    run = playbook.run("playbooks/render.yml", "-i", "inventories/prod", "-e", "bigdata_namespace=" + namespace,
                       "-e", "bigdata_render_dir=" + out_dir, *size_args(brokers, datanodes), *SAME_AS_BENCH,
                       env={"K8S_AUTH_KUBECONFIG": None})
    if run.returncode != 0:
        raise SystemExit("render failed:\n" + run.report(4000, 2000))


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pods = [r["pods"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(pods, [r["site"] for r in rows], "o-", label="site.yml deploy, ready")
    ax.plot(pods, [r["floor"] for r in rows], "s-", label="kubectl apply + rollout status (the floor)")
    ax.plot(pods, [r["site"] - r["floor"] for r in rows], "^--", label="Ansible's own time (difference)")
    ax.plot(pods, [r["again"] for r in rows], "d:", label="site.yml again, changed=0")
    for r in rows:
        ax.annotate("%d/%d" % (r["brokers"], r["datanodes"]), (r["pods"], r["site"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("pods of the stack (labels: Kafka brokers / HDFS datanodes)")
    ax.set_ylabel("seconds")
    ax.set_ylim(0, 1.2 * max(r["site"] for r in rows))
    ax.set_title("prod on a %d-node simulated cluster: deploy time against topology size" % NODES)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="deploys per size (the median is kept)")
    parser.add_argument("--plot", default=os.path.join(REPO, "docs", "bench-topology.png"))
    parser.add_argument("--sizes", default=",".join("%dx%d" % s for s in SIZES),
                        help="BROKERSxDATANODES,... (the first is the base of the comparison)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the bench-topo cluster running")
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes.split(",")]

    build = simcluster()
    rebuild = simcluster()
    kubeconfig = os.path.join(cache_dir(), "kwok", "clusters", CLUSTER, "kubeconfig.yaml")
    benchlib.guard(kubeconfig)
    print("simulated cluster of %d nodes: %.1f s, again (changed=%d) %.1f s"
          % (NODES, build.seconds, rebuild.recap()["changed"], rebuild.seconds), file=sys.stderr, flush=True)

    tag = uuid.uuid4().hex[:6]
    rows, namespaces = [], []
    work = tempfile.mkdtemp(prefix="bench-topology-")
    try:
        for brokers, datanodes in sizes:
            samples = []
            for round_no in range(1, args.rounds + 1):
                ns_a, ns_k = "topo-a%d-%d-%s" % (datanodes, round_no, tag), "topo-k%d-%d-%s" % (datanodes, round_no, tag)
                namespaces += [ns_a, ns_k]
                rendered = os.path.join(work, ns_k)
                render(ns_k, rendered, brokers, datanodes)
                floor = bench_deploy.kubectl_floor(kubeconfig, ns_k, rendered)
                provide_secrets(kubeconfig, ns_a)
                site = deploy(kubeconfig, ns_a, brokers, datanodes)
                again = deploy(kubeconfig, ns_a, brokers, datanodes)
                pods = len(bench_deploy.kubectl(kubeconfig, "get", "pods", "-n", ns_a, "-o", "name").split())
                samples.append({"site": site.seconds, "floor": floor, "again": again.seconds,
                                "changed": again.recap()["changed"], "pods": pods})
                print("%d brokers / %d datanodes (%d pods): site.yml %.1f s, kubectl %.1f s, again %.1f s (changed=%d)"
                      % (brokers, datanodes, pods, site.seconds, floor, again.seconds, samples[-1]["changed"]),
                      file=sys.stderr, flush=True)
                bench_deploy.delete_namespaces(kubeconfig, namespaces)
            row = {k: statistics.median(s[k] for s in samples) for k in ("site", "floor", "again", "pods")}
            row.update(brokers=brokers, datanodes=datanodes, changed=max(s["changed"] for s in samples))
            rows.append(row)
    finally:
        bench_deploy.delete_namespaces(kubeconfig, namespaces)
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep_cluster:
            simcluster("-e", "simcluster_state=absent")

    base = rows[0]["site"] - rows[0]["floor"]
    print("| Kafka brokers / HDFS datanodes | pods | site.yml | kubectl floor | Ansible's own time | vs prod as shipped"
          " | again (changed) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        own = r["site"] - r["floor"]
        print("| %d / %d | %d | %.1f s | %.1f s | %.1f s | %.2f× | %.1f s (%d) |"
              % (r["brokers"], r["datanodes"], r["pods"], r["site"], r["floor"], own, own / base if base > 0 else 0,
                 r["again"], r["changed"]))
    print("\nsimulated cluster of %d nodes built in %.1f s (again: %.1f s); %s %s"
          % (NODES, build.seconds, rebuild.seconds, time.strftime("%Y-%m-%d"), "plot: " + args.plot))
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
