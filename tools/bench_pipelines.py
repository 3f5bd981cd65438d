#!/usr/bin/env python3
"""Benchmark of the streaming sample pipeline in local mode: throughput and end-to-end latency.

Boots dev's Kafka from the kafka role's rendered configuration on this machine (as
tests/daemons does: tests/daemons/kafka_sim.py), creates the topics with the rendered topics Job,
then runs tests/daemons/pipeline_support.measure_streaming: events_generator.py and
events_stream.py as real spark-submit processes (master local[2]) writing to the Elasticsearch
stand-in. Prints the numbers as JSON; asserts nothing about time.

    .venv/bin/python tools/bench_pipelines.py [--backlog 30000] [--rate 200] [--seconds 60]

Needs java 17+, the Kafka jars (tools/daemons/fetch.py, cached) and, the first time, Maven
Central for Spark's Kafka connector (cached under ${BIGDATA_CACHE_DIR:-~/.cache/bigdata-stack}/ivy).
"""

import argparse
import json
import os
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tests", "daemons"))

import playbook  # noqa: E402  tests/playbook.py: how tests and tools run Ansible
from daemon_support import DaemonGroup, fetch  # noqa: E402
from kafka_sim import KafkaCluster, load_health  # noqa: E402
from pipeline_support import measure_streaming  # noqa: E402


def inventory_vars(env):
    run = playbook.run("-i", "inventories/" + env, "--host", "localhost", program="ansible-inventory")
    if run.returncode != 0:
        sys.exit("reading the %s inventory failed:\n%s" % (env, run.report(3000, 3000)))
    return json.loads(run.stdout)


def render_kafka(env, out):
    """The kafka role's objects for `env`, through playbooks/render.yml (what site.yml applies)."""
    os.makedirs(out, exist_ok=True)
    extra = os.path.join(out, "extra-vars.json")
    with open(extra, "w", encoding="utf-8") as handle:
        json.dump({"bigdata_render_dir": out, "bigdata_components": ["kafka"]}, handle)
    run = playbook.run(os.path.join(REPO, "playbooks", "render.yml"), "-i", "inventories/" + env, "-e", "@" + extra)
    if run.returncode != 0:
        sys.exit("rendering kafka for %s failed:\n%s" % (env, run.report(3000, 3000)))
    docs = []
    directory = os.path.join(out, "kafka")
    for name in sorted(os.listdir(directory)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                docs.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return docs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=30000, help="events read as fast as possible (throughput)")
    parser.add_argument("--rate", type=float, default=200, help="events/s during the latency phase")
    parser.add_argument("--seconds", type=int, default=60, help="length of the latency phase")
    parser.add_argument("--trigger", default="1 second", help="micro-batch interval of the stream")
    parser.add_argument("--work-dir", default=None, help="keep logs here (default: a temporary directory)")
    args = parser.parse_args()

    work = args.work_dir or tempfile.mkdtemp(prefix="bench-pipelines-")
    inv = inventory_vars("dev")
    docs = render_kafka("dev", os.path.join(work, "render"))
    cluster = KafkaCluster(docs, inv["bigdata_namespace"], fetch.classpath("kafka"), os.path.join(work, "kafka"))
    group = DaemonGroup()
    try:
        cluster.start(group)
        pod = cluster.pods[0]
        cluster.wait_healthy(load_health(), cluster.in_pod(pod, "localhost:9092"), inv["kafka_broker_replicas"],
                             pod=pod, timeout=240)
        job = cluster.job_sandbox([d for d in docs if d["kind"] == "Job"][0], os.path.join(work, "topics-job")).run(300)
        if job.returncode != 0:
            sys.exit("the topics Job failed:\n%s" % (job.stdout[-2000:] + job.stderr[-2000:]))
        bootstrap = "%s:%d" % (inv["bigdata_external_host"], cluster.node_port(pod))
        result = measure_streaming(bootstrap, os.path.join(work, "bench"), backlog=args.backlog, rate=args.rate,
                                   seconds=args.seconds, trigger=args.trigger)
    finally:
        group.stop_all()
    result["work_dir"] = work
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
