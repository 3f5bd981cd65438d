"""A real Prometheus scraping the daemons of tests/daemons with the monitoring role's scrape jobs.

The monitoring role renders prometheus.yml with one scrape job per metrics endpoint, found through
Kubernetes service discovery. Here the same jobs, with every setting they render (metrics_path,
params, scheme, ...), get static targets instead: the daemons' addresses on this machine, labelled
as the job's relabelling labels a pod (namespace, pod, component). A real Prometheus, built by
tools/build_prometheus.sh at the version of the monitoring role's image, scrapes them; its
/api/v1/targets says whether each scrape succeeded (and why not), and the metric names are read
back from its database, so a name is one Prometheus really ingested.

The names are written to tests/monitoring/scraped/<component>.txt (sorted, one per line), which
tests/monitoring/test_metric_names.py reads: every metric name a dashboard or an alert uses must
be there or documented in roles/monitoring/files/metric-sources.yml.
"""

import json
import os
import subprocess
import urllib.parse
import urllib.request

import yaml

from daemon_support import LOOPBACK, REPO, Daemon, free_ports, wait_until

BUILD_SCRIPT = os.path.join(REPO, "tools", "build_prometheus.sh")
SCRAPED_DIR = os.path.join(REPO, "tests", "monitoring", "scraped")
# How often the cheap endpoints (Hadoop's /prom, Spark's servlets) are scraped here, to keep the
# tests short. The JMX exporter agent is scraped as the monitoring role renders it (every 30 s,
# 10 s timeout): one scrape walks every MBean of the JVM, 1-7 s of CPU here (six JVMs on two busy
# cores, the C1 compiler only), and every 10 s the stage brokers starved (fenced by the
# controllers) and the agent's piled-up scrapes ran their 256m heaps out of memory.
FAST_SCRAPE = {"scrape_interval": "5s", "scrape_timeout": "5s"}


def prometheus_binary():
    """The prometheus of tools/build_prometheus.sh (built from the Go module proxy when missing)."""
    run = subprocess.run(["bash", BUILD_SCRIPT], capture_output=True, text=True, timeout=3600, check=False)
    assert run.returncode == 0, "tools/build_prometheus.sh failed (exit %d):\n%s\n%s" % (
        run.returncode, run.stdout[-3000:], run.stderr[-3000:])
    return os.path.join(run.stdout.strip().splitlines()[-1], "prometheus")


def rendered_config(monitoring_docs):
    """The prometheus.yml the monitoring role renders, parsed."""
    for doc in monitoring_docs:
        if doc.get("kind") == "ConfigMap" and "prometheus.yml" in (doc.get("data") or {}):
            return yaml.safe_load(doc["data"]["prometheus.yml"])
    raise AssertionError("the monitoring role rendered no ConfigMap with prometheus.yml: %s" % sorted(
        "%s/%s" % (d.get("kind"), (d.get("metadata") or {}).get("name")) for d in monitoring_docs))


def rendered_jobs(monitoring_docs):
    """{job name: scrape config} of the prometheus.yml the monitoring role renders."""
    return {job["job_name"]: job for job in rendered_config(monitoring_docs)["scrape_configs"]}


def rendered_timing(monitoring_docs):
    """The scrape interval and timeout the monitoring role renders (its global section)."""
    config = rendered_config(monitoring_docs)["global"]
    return {"scrape_interval": config["scrape_interval"], "scrape_timeout": config["scrape_timeout"]}


def static_job(job, targets):
    """`job` as rendered, discovering `targets` [(host:port, {label: value})] instead of pods."""
    static = {key: value for key, value in job.items()
              if key not in ("kubernetes_sd_configs", "relabel_configs", "scrape_interval", "scrape_timeout")}
    static["static_configs"] = [{"targets": [address], "labels": labels} for address, labels in targets]
    return static


class Prometheus:
    """One Prometheus server on 127.0.0.1, its data and configuration under `root`."""

    def __init__(self, binary, root, jobs, group, timing=None):
        """jobs: scrape configs (static_job); group: the DaemonGroup that stops it; timing:
        {scrape_interval, scrape_timeout} (rendered_timing, or FAST_SCRAPE by default)."""
        os.makedirs(root, exist_ok=True)
        self.port = free_ports(1)[0]
        self.jobs = jobs
        config = os.path.join(root, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"global": dict(timing or FAST_SCRAPE), "scrape_configs": jobs}, handle, sort_keys=False)
        self.daemon = group.add(Daemon("prometheus", [
            binary, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(root, "data"),
            "--web.listen-address=%s:%d" % (LOOPBACK, self.port), "--log.level=warn"],
            os.path.join(root, "prometheus.log")))

    def api(self, path, **params):
        url = "http://%s:%d/api/v1/%s" % (LOOPBACK, self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            body = json.loads(response.read().decode("utf-8"))
        assert body["status"] == "success", body
        return body["data"]

    def targets(self):
        return self.api("targets", state="active")["activeTargets"]

    def wait_all_scraped(self, timeout, daemons=()):
        """Wait until Prometheus has scraped every target successfully at least once.

        At least once, not all at the same moment: on this shared machine one scrape of a busy JVM
        may run past the timeout now and then, and what is tested is that the endpoint serves what
        Prometheus ingests. A target that answers but cannot be ingested (a content type or a line
        Prometheus's parser refuses) never succeeds, and the failure shows its last error.
        """
        expected = sum(len(config["targets"]) for job in self.jobs for config in job["static_configs"])
        state = {}

        def all_scraped():
            state["up"] = self.query("max_over_time(up[1h])")
            return len(state["up"]) == expected and all(value == 1 for _labels, value in state["up"])
        try:
            wait_until(all_scraped, "Prometheus to scrape each of %d targets successfully" % expected, timeout,
                       daemons=[self.daemon, *daemons], interval=1)
        except AssertionError as exc:
            raise AssertionError("%s\ntargets: %s" % (exc, json.dumps([
                {k: t.get(k) for k in ("scrapePool", "scrapeUrl", "health", "lastError", "lastScrapeDuration")}
                for t in self.targets()], indent=1)))

    def names(self, job, **labels):
        """Every metric name Prometheus ingested from `job`'s targets with `labels` (its own up,
        scrape_* included)."""
        selector = ",".join('%s="%s"' % item for item in sorted(dict(labels, job=job).items()))
        return sorted(self.api("label/__name__/values", **{"match[]": "{%s}" % selector}))

    def query(self, expr):
        """The instant vector of `expr`: [(labels, float value)].

        Wrap a selector in last_over_time(...[1m]) to read the newest sample even when the latest
        scrape of its target failed."""
        result = self.api("query", query=expr)["result"]
        return [(sample["metric"], float(sample["value"][1])) for sample in result]


# Series Prometheus adds to every scrape itself: not the component's.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "scrape_samples_post_metric_relabeling", "scrape_series_added"}


def write_scraped(component, names, source):
    """tests/monitoring/scraped/<component>.txt: the names, sorted, after a header saying where from."""
    names = sorted(set(names) - PROMETHEUS_OWN)
    assert names, "no %s metric was scraped" % component
    os.makedirs(SCRAPED_DIR, exist_ok=True)
    path = os.path.join(SCRAPED_DIR, component + ".txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by %s: the metric names a real Prometheus scraped from %s.\n"
                     "# Regenerated on every run of that test; do not edit.\n" % (source, component))
        handle.write("".join(name + "\n" for name in names))
    return path
