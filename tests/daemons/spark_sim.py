"""Run the pods the spark role renders (history server, HDFS directory Job) as processes here.

The image's /opt/spark/bin is stood in for by the bin/ directory of the pyspark package in this
virtualenv: the same spark-class / spark-submit launchers of the same Spark release as
spark_image_tag (requirements.txt pins pyspark to it), with SPARK_HOME pointing at that package as
the image's ENV points at /opt/spark. Everything else is podsim.py: volumes as directories, the
rendered ConfigMaps as files, the container command unchanged.

What differs on this machine is changed here, in the open (`MACHINE_CONF`, `machine_overrides`):
"""

import os
import re
import sys

import pyspark

from daemon_support import free_ports, find
from podsim import PodSandbox

SPARK_HOME = os.path.dirname(pyspark.__file__)
IMAGE_BIN = "/opt/spark/bin"
# Fast start on 2 shared cores instead of the image JVM's defaults; the cluster names resolve
# through the HdfsCluster's hosts file (JAVA_TOOL_OPTIONS reaches every JVM a launcher starts).
JVM_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true"


def parse_conf(text):
    """{key: value} of a spark-defaults.conf as the role renders it ("key value" lines)."""
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key] = value.strip()
    return conf


def replace_all(text, rewrites):
    """`text` with every key of `rewrites` replaced, longest first, in one pass."""
    if not rewrites:
        return text
    pattern = re.compile("|".join(re.escape(k) for k in sorted(rewrites, key=len, reverse=True)))
    return pattern.sub(lambda m: rewrites[m.group(0)], text)


class SparkPods:
    """The spark role's rendered pods, wired to a running HdfsCluster (hdfs_sim.py)."""

    def __init__(self, docs, hdfs, root):
        self.docs = docs
        self.hdfs = hdfs
        self.root = root
        self.namespace = hdfs.namespace
        self.defaults = find(docs, "ConfigMap", "spark-defaults")["data"]
        self.history = find(docs, "Deployment", "spark-history")
        jobs = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].startswith("spark-hdfs-dirs-")]
        assert len(jobs) == 1, "the spark role renders no (or more than one) spark-hdfs-dirs Job: %s" % [
            "%s/%s" % (d["kind"], d["metadata"]["name"]) for d in docs]
        self.dirs_job_doc = jobs[0]
        # The hdfs-config ConfigMap the Job and the init container mount, as the hdfs pods see it.
        self.hadoop_config = hdfs.config
        self.rewrites = hdfs.service_addresses()
        self.history_port = free_ports(1)[0]
        self.env = {"SPARK_HOME": SPARK_HOME, "JAVA_TOOL_OPTIONS": "%s -Djdk.net.hosts.file=%s" % (
            JVM_OPTS, hdfs.hosts_file), "PYSPARK_PYTHON": sys.executable,
                    # Spark's web UIs bind SPARK_LOCAL_IP, else 0.0.0.0: nothing listens beyond loopback here.
                    "SPARK_LOCAL_IP": "127.0.0.1"}

    def machine_overrides(self):
        """edit_config for PodSandbox: the only changes to the rendered files, with the reasons."""
        edit_hdfs = self.hdfs.machine_overrides()

        def edit(key, text):
            if key in ("core-site.xml", "hdfs-site.xml"):
                # The namenode's address with the port it has here (hdfs_sim.py).
                return edit_hdfs(key, text)
            # hdfs://hdfs-namenode:8020 is the Service; here its port is the namenode's own.
            text = replace_all(text, self.rewrites)
            if key == "spark-history.conf":
                # 18080 may be taken on a shared machine; the pod owns its IP, here a free port.
                text = re.sub(r"(?m)^spark\.history\.ui\.port .*$",
                              "spark.history.ui.port %d" % self.history_port, text)
            return text
        return edit

    def _sandbox(self, name, pod_spec, container):
        sandbox = PodSandbox(os.path.join(self.root, name), pod_spec, name, self.namespace,
                             {"spark-defaults": self.defaults, "hdfs-config": self.hadoop_config},
                             {IMAGE_BIN: os.path.join(SPARK_HOME, "bin")},
                             edit_config=self.machine_overrides(), extra_env=self.env,
                             container=container)
        # The Service address inside the command (the Job's script, the init container's wait).
        sandbox.command = [replace_all(part, self.rewrites) for part in sandbox.command]
        return sandbox

    def dirs_job(self):
        """The pod of the Job that creates the HDFS directories."""
        return self._sandbox(self.dirs_job_doc["metadata"]["name"] + "-x",
                             self.dirs_job_doc["spec"]["template"]["spec"], "hdfs-dirs")

    def history_server(self, container="history-server"):
        """The history server pod's container (or its init container, by name)."""
        return self._sandbox("spark-history-x-" + container, self.history["spec"]["template"]["spec"],
                             container)

    def history_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.history_port, path)

    def application_conf(self):
        """spark-defaults.conf as a driver gets it, with the namenode Service's port of here."""
        return parse_conf(replace_all(self.defaults["spark-defaults.conf"], self.rewrites))
