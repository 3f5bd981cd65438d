#!/usr/bin/env python3
"""The simulated cluster's node agent: runs, as local processes, the pods whose image it knows.

kwok drives every other pod (its stages exclude these, kwokctl.yaml.j2). For a pod bound to a
node of the simulated cluster whose every container image is one of --image (apache/kafka: the
kafka role's brokers and controllers; apache/hadoop: the hdfs role's namenode and datanodes;
apache/spark: Spark's driver and executor pods, the history server and the spark role's Jobs), the
agent does what a kubelet and a CNI plugin would:

* a network namespace of the pod's own (`bds-<cluster>-<namespace>-<pod>`), its IP from
  --cidr on eth0 (a veth to the bridge --bridge, which has the first address), loopback up: every
  pod listens on its rendered ports (several brokers on 9092) and nothing reaches beyond the bridge;
* the pod's host name (spec.hostname, else its name) in a UTS namespace of its own;
* /etc/hosts of the pod (`ip netns exec` binds /etc/netns/<netns>/hosts over it): the pod's own
  name and FQDN on its IP as the kubelet writes them, every pod FQDN <hostname>.<subdomain>.<namespace>.svc[.cluster.local] and every Service
  name, a ClusterIP Service standing for its first ready pod (no kube-proxy here: a Service port
  reaches the same port of that pod);
* the containers' own commands through podsim.PodSandbox (the image's files as shims over the
  Maven Central jars, or the pyspark distribution as /opt/spark; the image's ENTRYPOINT for a
  container that sets only args; volumes as directories, one per claim whichever pod mounts it;
  projected volumes as the kubelet writes them, the service account's token from the TokenRequest
  API; env with fieldRef and secretKeyRef), init containers first, each as `ip netns exec <netns>
  unshare --uts ...` (in_pod), once the ConfigMaps and Secrets the pod mounts exist;
* the API server for the pods at kubernetes.default.svc:443 (ApiRelay on the bridge), which Spark's
  driver uses to create its executors;
* status on the API server: podIP, Running, Ready from the readiness probe (tcpSocket, httpGet or
  exec; startup and liveness probes too),
  restarts per restartPolicy with back-off, Terminated with the exit code; a deleted pod gets
  SIGTERM, SIGKILL after its grace period, then the final delete a kubelet sends;
* a pull-through mirror of Maven Central for the pods (MavenMirror), on the bridge's address: pods
  have no route beyond the bridge, as on an air-gapped cluster, so what they download at start
  (the kafka role's JMX exporter agent, in its init container) comes from there;
* `kubectl logs` and `kubectl port-forward`: the containers' output into a CRI log file per start
  (ContainerOutput), kwok serving it from a Logs object per pod; a PortForward object per pod
  sending each container port to the pod IP;
* `kubectl exec` (wait_ready's Kafka checks): kwok serves it from an Exec object per pod that this
  agent writes; kwok runs in a mount namespace where /opt/<image>/bin is the dispatcher below,
  which enters the pod's network namespace and runs the image's shim with the pod's env. Any other
  command (wait_ready's HDFS check: `sh -c ... curl http://<pod IP>:9870/jmx...`) runs on this
  machine, which reaches every pod IP through the bridge.

Everything it creates on the machine carries the prefix `bds-`; its state lives under --state-dir.
SIGTERM stops every pod (grace periods honoured, capped by --stop-grace) and removes what it made.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import http.server
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from podsim import (FAST_JVM_OPTS, HADOOP_IMAGE_BIN, HADOOP_IMAGE_CONF, JAVA, KAFKA_IMAGE_BIN,  # noqa: E402
                    KAFKA_SCRIPTS, PodSandbox, path_rewriter, write_hadoop_image_conf, write_hdfs_shim, write_hosts_file,
                    write_shims)

PREFIX = "bds-"
LOG = logging.getLogger("bds-agent")
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2/"
# /maven2/<group path>/<artifact>/<version>/<file>: what a Maven repository serves, nothing else.
MIRROR_PATH = re.compile(r"^/maven2/((?:[A-Za-z0-9_.-]+/){3,}[A-Za-z0-9_.-]+)$")


def write_kafka_bin(directory, classpath):
    """The apache/kafka image's /opt/kafka/bin scripts the kafka role calls, as podsim shims."""
    return write_shims(directory, classpath, KAFKA_SCRIPTS, FAST_JVM_OPTS, heap_env="KAFKA_HEAP_OPTS",
                       opts_env="KAFKA_OPTS", log_opts_env="KAFKA_LOG4J_OPTS", log_dir_property="kafka.logs.dir")


# The apache/spark image (apache/spark-docker, <version>/scala2.13-java17-ubuntu/Dockerfile):
# the release unpacked into /opt/spark (bin, jars, python/lib, examples), ENV SPARK_HOME
# /opt/spark, WORKDIR /opt/spark/work-dir, ENTRYPOINT /opt/entrypoint.sh (entrypoint.sh.template:
# `driver` runs spark-submit in client mode, `executor` KubernetesExecutorBackend, anything else
# passes through). Its stand-in for /opt/spark is the pyspark package the agent runs beside: the
# same release's bin/, jars/ (spark-kubernetes among them), python/lib and examples/ (the roles
# pin spark_image_tag to it).
SPARK_IMAGE_HOME = "/opt/spark"
SPARK_IMAGE_ENTRYPOINT = "/opt/entrypoint.sh"
# Where every pod mounts its service account's token and CA (the ServiceAccount admission plugin's
# kube-api-access-* volume), and where Spark's driver reads them by default (Config.scala,
# KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# What the image's entrypoint.sh does for the two commands Spark's pods run, on this machine: the
# class path and JVM options as the script builds them, no tini and no gosu (the agent's processes
# run as its own user), and one addition. Spark's driver reads its service account from
# SERVICE_ACCOUNT_DIR, a path of the image's file system, not of a command the sandbox rewrites: the
# agent passes where that mount is here (BDS_SERVICE_ACCOUNT_DIR) and the driver gets it as
# spark.kubernetes.authenticate.driver.mounted.{oauthTokenFile,caCertFile}, the settings that
# override the default path (KubernetesClusterManager, SparkKubernetesClientFactory).
SPARK_ENTRYPOINT = r"""#!/bin/bash
# Stand-in for the apache/spark image's /opt/entrypoint.sh (roles/simcluster/files/runtime/agent.py).
set -eo pipefail
export JAVA_HOME=%(java_home)s
SPARK_CLASSPATH="${SPARK_CLASSPATH:-}:${SPARK_HOME}/jars/*"
SPARK_EXECUTOR_JAVA_OPTS=()
for v in "${!SPARK_JAVA_OPT_@}"; do
  SPARK_EXECUTOR_JAVA_OPTS+=( "${!v}" )
done
if [ -n "${SPARK_EXTRA_CLASSPATH:-}" ]; then SPARK_CLASSPATH="$SPARK_CLASSPATH:$SPARK_EXTRA_CLASSPATH"; fi
if [ -n "${HADOOP_CONF_DIR+x}" ]; then SPARK_CLASSPATH="$HADOOP_CONF_DIR:$SPARK_CLASSPATH"; fi
if [ -n "${SPARK_CONF_DIR+x}" ]; then
  SPARK_CLASSPATH="$SPARK_CONF_DIR:$SPARK_CLASSPATH"
else
  SPARK_CLASSPATH="$SPARK_HOME/conf:$SPARK_CLASSPATH"
fi
SPARK_CLASSPATH="$SPARK_CLASSPATH:$PWD"
case "${1:-}" in
  driver)
    shift 1
    mounted=()
    if [ -n "${BDS_SERVICE_ACCOUNT_DIR:-}" ]; then
      mounted=(--conf "spark.kubernetes.authenticate.driver.mounted.oauthTokenFile=$BDS_SERVICE_ACCOUNT_DIR/token"
               --conf "spark.kubernetes.authenticate.driver.mounted.caCertFile=$BDS_SERVICE_ACCOUNT_DIR/ca.crt")
    fi
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      "${mounted[@]}" --deploy-mode client "$@"
    ;;
  executor)
    shift 1
    exec "$JAVA_HOME/bin/java" "${SPARK_EXECUTOR_JAVA_OPTS[@]}" \
      -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$SPARK_CLASSPATH:${SPARK_DIST_CLASSPATH:-}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  *)
    exec "$@"
    ;;
esac
"""


def java_home():
    """JAVA_HOME of the `java` the shims run (podsim.JAVA)."""
    java = shutil.which(JAVA) or JAVA
    return os.path.dirname(os.path.dirname(os.path.realpath(java)))


def spark_distribution(version):
    """The pyspark package beside the agent, as the image's /opt/spark of `version`."""
    try:
        import pyspark
    except ImportError:
        raise RuntimeError("no pyspark in %s, the node agent's Python: the apache/spark stand-in is its "
                           "distribution (pip install pyspark==%s)" % (sys.executable, version))
    if pyspark.__version__ != version:
        raise RuntimeError("image apache/spark:%s: the node agent's pyspark is %s (%s); the pods need the same "
                           "release: pip install pyspark==%s, or set spark_image_tag to %s"
                           % (version, pyspark.__version__, sys.executable, version, pyspark.__version__))
    return os.path.dirname(os.path.abspath(pyspark.__file__))


def write_spark_image(directory, version):
    """{path in the image: local path} of apache/spark:`version`: /opt/spark and the entrypoint."""
    home = spark_distribution(version)
    os.makedirs(directory, exist_ok=True)
    entrypoint = os.path.join(directory, "entrypoint.sh")
    with open(entrypoint + ".new", "w", encoding="utf-8") as handle:
        handle.write(SPARK_ENTRYPOINT % {"java_home": shlex.quote(java_home())})
    os.chmod(entrypoint + ".new", 0o755)
    os.replace(entrypoint + ".new", entrypoint)
    return {SPARK_IMAGE_HOME: home, SPARK_IMAGE_ENTRYPOINT: entrypoint}


# What the agent can stand in for: image repository -> how its files are made here.
# component: of tools/daemons/fetch.py (the jars); bin: the image's launcher directory, written
# once per image version by write_bin(directory, classpath), with the launchers `scripts` (which
# `kubectl exec` reaches through the dispatchers); pod_dirs: {directory of the image: writer}
# that every pod gets a copy of (the pod mounts files into it). An image whose files are not
# shims has instead write_image(directory, version) -> {path in the image: local path}, its ENV
# (`env`) and ENTRYPOINT (`entrypoint`).
IMAGES = {
    "apache/kafka": {"component": "kafka", "bin": KAFKA_IMAGE_BIN, "scripts": sorted(KAFKA_SCRIPTS),
                     "write_bin": write_kafka_bin, "pod_dirs": {}},
    # The hdfs role's namenode and datanode pods (bin/hdfs; etc/hadoop holds the image's
    # log4j.properties, the pods mount core-site.xml and hdfs-site.xml into it).
    "apache/hadoop": {"component": "hadoop", "bin": HADOOP_IMAGE_BIN, "scripts": ["hdfs"],
                      "write_bin": write_hdfs_shim, "pod_dirs": {HADOOP_IMAGE_CONF: write_hadoop_image_conf}},
    # Spark's driver and executor pods (spark_submit), the history server and the spark role's
    # Jobs: the image's files are a distribution (write_image), not shims over Maven jars.
    "apache/spark": {"component": None, "bin": SPARK_IMAGE_HOME + "/bin", "scripts": [], "pod_dirs": {},
                     "write_image": write_spark_image, "env": {"SPARK_HOME": SPARK_IMAGE_HOME},
                     "entrypoint": [SPARK_IMAGE_ENTRYPOINT]},
}


def image_tag(image):
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


class ImageMatcher:
    """Which images the agent runs: --image-pattern, the same regular expression kwok's stages
    exclude (roles/simcluster/vars/main.yml builds it once for both); group 2 is the repository."""

    def __init__(self, pattern):
        self.pattern = re.compile(pattern)

    def repository(self, image):
        match = self.pattern.match(image)
        return match.group(2) if match else None

    def owned(self, pod):
        """Whether every container (init containers too) runs an image the agent knows."""
        spec = pod["spec"]
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        return bool(containers) and all(self.repository(c["image"]) in IMAGES for c in containers)


def short_hash(text, length=8):
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def bridge_name(cluster):
    """The bridge of the agent of simulated cluster `cluster`."""
    return PREFIX + "br-" + short_hash(cluster, 6)


def run(cmd, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: rc=%d %s" % (" ".join(cmd), proc.returncode, proc.stderr.strip()))
    return proc


def exit_code(returncode):
    """A container's exit code as a kubelet reports it: 128 + the signal that ended it."""
    return None if returncode is None else (128 - returncode if returncode < 0 else returncode)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Api:
    """The few API calls a kubelet makes, through the kubernetes client (JSON in, dicts out)."""

    def __init__(self, kubeconfig):
        from kubernetes import client, config

        self.client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)
        self.exceptions = client.exceptions
        self.missing_kinds = set()

    @staticmethod
    def _json(response):
        return json.loads(response.data)

    def pods(self):
        return self._json(self.core.list_pod_for_all_namespaces(_preload_content=False))["items"]

    def services(self):
        return self._json(self.core.list_service_for_all_namespaces(_preload_content=False))["items"]

    def configmap(self, namespace, name):
        return self._json(self.core.read_namespaced_config_map(name, namespace, _preload_content=False))

    def secret(self, namespace, name):
        return self._json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))

    def token(self, namespace, service_account, audience, seconds, pod_name, pod_uid):
        """A token of `service_account` bound to the pod (the TokenRequest API, as the kubelet asks)."""
        from kubernetes import client

        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[audience] if audience else [], expiration_seconds=int(seconds),
            bound_object_ref=client.V1BoundObjectReference(api_version="v1", kind="Pod", name=pod_name, uid=pod_uid)))
        return self.core.create_namespaced_service_account_token(service_account, namespace, request).status.token

    def server(self):
        """(host, port) of the API server this agent talks to (its kubeconfig)."""
        url = urllib.parse.urlsplit(self.client.configuration.host)
        return url.hostname, url.port or 443

    def patch_status(self, pod, status):
        try:
            self.core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                                  {"status": status})
        except self.exceptions.ApiException as exc:
            if exc.status != 404:
                raise

    def delete_pod(self, pod):
        """The kubelet's last word on a pod whose containers stopped: delete it now."""
        from kubernetes import client

        try:
            self.core.delete_namespaced_pod(
                pod["metadata"]["name"], pod["metadata"]["namespace"],
                body=client.V1DeleteOptions(grace_period_seconds=0,
                                            preconditions=client.V1Preconditions(uid=pod["metadata"]["uid"])))
        except self.exceptions.ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # kwok serves a pod's `kubectl exec`, `logs` and `port-forward` from an object of its own
    # kinds named as the pod (kwokctl.yaml.j2 enables them): the agent writes one of each per pod.
    KWOK_KINDS = {"Exec": "execs", "Logs": "logs", "PortForward": "portforwards"}

    def put_kwok(self, kind, pod, spec):
        """kwok's `kind` object for `pod` (created, else replaced). False when this cluster does not
        serve the kind (created before the agent wrote it: `make sim-down sim-up` adds it)."""
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": kind,
                "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                             "labels": {"bigdata.stack/runtime": "process"}},
                "spec": spec}
        args = ("kwok.x-k8s.io", "v1alpha1", pod["metadata"]["namespace"], self.KWOK_KINDS[kind])
        try:
            self.custom.create_namespaced_custom_object(*args, body)
        except self.exceptions.ApiException as exc:
            if exc.status == 404:
                if kind not in self.missing_kinds:
                    self.missing_kinds.add(kind)
                    LOG.warning("this cluster serves no kwok %s objects (created before the agent wrote "
                                "them): recreate it to have them (make sim-down sim-up)", kind)
                return False
            if exc.status != 409:
                raise
            self.custom.patch_namespaced_custom_object(*args, pod["metadata"]["name"], body)
        return True

    def delete_kwok(self, pod):
        for plural in self.KWOK_KINDS.values():
            try:
                self.custom.delete_namespaced_custom_object(
                    "kwok.x-k8s.io", "v1alpha1", pod["metadata"]["namespace"], plural, pod["metadata"]["name"])
            except self.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise


class Network:
    """The bridge, the pods' namespaces and their IPs (what a CNI plugin would do)."""

    def __init__(self, cluster, cidr, state_dir):
        self.cluster = cluster
        self.net = ipaddress.ip_network(cidr)
        self.bridge = bridge_name(cluster)
        self.gateway = str(next(self.net.hosts()))
        self.leases_path = os.path.join(state_dir, "ips.json")
        self.lock = threading.Lock()
        try:
            with open(self.leases_path, encoding="utf-8") as handle:
                self.leases = json.load(handle)
        except FileNotFoundError:
            self.leases = {}

    def taken_by_others(self, route_lines, clusters=()):
        """The routes of `ip -o -4 route show` that overlap the pod range through another device
        than this agent's bridge, as (range, device, cluster or None): `clusters` are names whose
        agent's bridge the device may be (another simulated cluster, e.g. one a killed run left).
        With two bridges on one range the machine sends to the first, and pod IPs are unreachable."""
        found = []
        for line in route_lines:
            words = line.split()
            if not words or words[0] == "default" or "dev" not in words:
                continue
            try:
                dest = ipaddress.ip_network(words[0], strict=False)
            except ValueError:
                continue
            device = words[words.index("dev") + 1]
            if dest.prefixlen == 0 or device == self.bridge or not dest.overlaps(self.net):
                continue
            owner = next((c for c in clusters if bridge_name(c) == device), None)
            found.append((str(dest), device, owner))
        return found

    def conflict_message(self, taken):
        """Why the pods of this cluster would be unreachable, and the two ways out."""
        where = "; ".join(
            "%s through %s (%s)" % (dest, device, ("the node agent's bridge of simulated cluster %s, left running "
                                                   "or left behind by a run that was killed" % owner)
                                    if owner else "not a bridge of this cluster's agent")
            for dest, device, owner in taken)
        owners = sorted({owner for _dest, _device, owner in taken if owner})
        return ("bds-agent: the pods of simulated cluster %s would get IPs in %s (simcluster_runtime_cidr), but this "
                "machine already routes %s, so they would be unreachable. Nothing was started. Set "
                "simcluster_runtime_cidr to a range nothing routes (ip -4 route)%s.\n" % (
                    self.cluster, self.net, where,
                    "".join(", or remove %s (make sim-down SIM_NAME=%s)" % (o, o) for o in owners)))

    def setup_bridge(self):
        if run(["ip", "link", "show", self.bridge], check=False).returncode != 0:
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "replace", "%s/%d" % (self.gateway, self.net.prefixlen), "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])

    def netns(self, pod):
        meta = pod["metadata"]
        return "%s%s-%s-%s" % (PREFIX, short_hash(self.cluster, 6), meta["namespace"], meta["name"])

    def allocate(self, uid):
        with self.lock:
            if uid in self.leases:
                return self.leases[uid]
            used = set(self.leases.values()) | {self.gateway}
            for host in self.net.hosts():
                if str(host) not in used:
                    self.leases[uid] = str(host)
                    self._save()
                    return str(host)
        raise RuntimeError("no free pod IP left in %s" % self.net)

    def release(self, uid):
        with self.lock:
            if self.leases.pop(uid, None):
                self._save()

    def _save(self):
        with open(self.leases_path + ".new", "w", encoding="utf-8") as handle:
            json.dump(self.leases, handle)
        os.replace(self.leases_path + ".new", self.leases_path)

    def create(self, pod, ip):
        """The pod's namespace with `ip` on eth0, a veth to the bridge. Returns the netns name."""
        name = self.netns(pod)
        veth = PREFIX + short_hash(pod["metadata"]["uid"])
        self.delete(pod)  # a namespace left by a killed agent
        run(["ip", "netns", "add", name])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"])
        run(["ip", "link", "set", veth + "p", "netns", name])
        run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        run(["ip", "-n", name, "link", "set", veth + "p", "name", "eth0"])
        run(["ip", "-n", name, "addr", "add", "%s/%d" % (ip, self.net.prefixlen), "dev", "eth0"])
        run(["ip", "-n", name, "link", "set", "eth0", "up"])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        os.makedirs(os.path.join("/etc/netns", name), exist_ok=True)
        return name

    def delete(self, pod):
        name = self.netns(pod)
        run(["ip", "link", "del", PREFIX + short_hash(pod["metadata"]["uid"])], check=False)
        run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)


def dns_names(pods, services, runtime_ips):
    """{name: IP} cluster DNS would answer for the pods the agent runs (see the module doc)."""
    names = {}
    by_ns = {}
    for pod in pods:
        ip = runtime_ips.get(pod["metadata"]["uid"])
        if not ip:
            continue
        meta, spec = pod["metadata"], pod["spec"]
        by_ns.setdefault(meta["namespace"], []).append((pod, ip))
        if spec.get("hostname") and spec.get("subdomain"):
            base = "%s.%s.%s.svc" % (spec["hostname"], spec["subdomain"], meta["namespace"])
            names[base] = names[base + ".cluster.local"] = ip
    for svc in services:
        meta, spec = svc["metadata"], svc["spec"]
        selector = spec.get("selector") or {}
        if not selector:
            continue
        ready = [ip for pod, ip in by_ns.get(meta["namespace"], [])
                 if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
                 and is_ready(pod)]
        if ready:
            base = "%s.%s.svc" % (meta["name"], meta["namespace"])
            names[base] = names[base + ".cluster.local"] = ready[0]
            names.setdefault("%s@%s" % (meta["name"], meta["namespace"]), ready[0])
    return names


RUNTIME_CONDITION = "bigdata.stack/ProcessRuntime"


def http_probe(action, host, port, timeout):
    """An httpGet probe as the kubelet runs it: a status from 200 to 399 passes; HTTPS is not
    verified; the probe's httpHeaders are sent."""
    scheme = (action.get("scheme") or "HTTP").upper()
    if scheme == "HTTPS":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
    try:
        conn.request("GET", action.get("path") or "/", headers=headers)
        return 200 <= conn.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# A pod's processes see its host name (a UTS namespace of their own), as in a container: Java's
# InetAddress.getLocalHost() looks it up, and the NameNode's web server exits when that fails
# (this machine's own name is not in the pod's /etc/hosts).
SET_HOSTNAME = 'hostname "$0" && exec "$@"'


def in_pod(netns, hostname, command, quote=False):
    """argv running `command` in the pod: its network namespace (and /etc/hosts), its host name.
    quote: for a shell script whose netns and hostname are already shell words."""
    script = "'%s'" % SET_HOSTNAME if quote else SET_HOSTNAME
    return ["ip", "netns", "exec", netns, "unshare", "--uts", "--", "/bin/sh", "-c", script, hostname] + command


def is_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class ContainerOutput:
    """A container's stdout and stderr as a kubelet keeps them: each line into the CRI log file
    kwok serves to `kubectl logs` (`<RFC 3339 time> <stream> F <line>`, the format of
    k8s.io/cri-client's ReadLogs, which kwok's debugging_logs.go calls), and into a plain file
    appended across starts (for people, and the tests). Closed when the container's last writer
    closes its end of both pipes."""

    def __init__(self, proc, plain_path, cri_path):
        self.lock = threading.Lock()
        self.plain = open(plain_path, "ab")  # closed by the last pump
        self.cri = open(cri_path, "wb")
        self.streams = 2
        for stream, tag in ((proc.stdout, b"stdout"), (proc.stderr, b"stderr")):
            threading.Thread(target=self.pump, args=(stream, tag), daemon=True).start()

    def pump(self, stream, tag):
        try:
            for line in iter(stream.readline, b""):
                stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                with self.lock:
                    self.plain.write(line)
                    self.plain.flush()
                    self.cri.write(b"%s %s F %s\n" % (stamp.encode(), tag, line.rstrip(b"\n")))
                    self.cri.flush()
        finally:
            stream.close()
            with self.lock:
                self.streams -= 1
                if not self.streams:
                    self.plain.close()
                    self.cri.close()


class PodRunner(threading.Thread):
    """One pod, from its namespace to its final delete (a kubelet's pod worker)."""

    def __init__(self, agent, pod):
        super().__init__(name="pod-%s/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"]),
                         daemon=True)
        self.agent = agent
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.ip = None
        self.netns = None
        self.proc = None
        self.deleted = threading.Event()
        self.stopping = threading.Event()
        self.restarts = 0
        self.last_state = {}
        self.ready = False
        self.log_files = {}  # container: (its log file, the previous start's or None)
        self.root = os.path.join(agent.state_dir, "pods", pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ---------------------------------------------------------------- status
    def status(self, phase, state, ready=False, extra=None):
        container = self.pod["spec"]["containers"][0]
        conds_true = {"PodReadyToStartContainers": self.netns is not None,
                      "Initialized": phase in ("Running", "Succeeded", "Failed"),
                      "ContainersReady": ready, "Ready": ready}
        old = {c["type"]: c for c in (self.pod.get("status") or {}).get("conditions") or []}
        conditions = []
        for kind, value in conds_true.items():
            text = "True" if value else "False"
            prev = old.get(kind)
            conditions.append({"type": kind, "status": text, "lastTransitionTime":
                               prev["lastTransitionTime"] if prev and prev.get("status") == text else now()})
        # Which pods run for real: status.yml and the tests read this condition (a custom type, as
        # readiness gates use; kwok's simulated pods never have it).
        prev = old.get(RUNTIME_CONDITION)
        conditions.append({"type": RUNTIME_CONDITION, "status": "True", "reason": "NodeAgent",
                           "message": "runs as a local process of the simulated cluster's node agent",
                           "lastTransitionTime": prev["lastTransitionTime"] if prev else now()})
        statuses = [{"name": c["name"], "image": c["image"], "imageID": "", "containerID":
                     "bds://%s/%s" % (self.uid, c["name"]), "ready": ready, "started": "running" in state,
                     "restartCount": self.restarts, "state": state,
                     "lastState": self.last_state} for c in [container]]
        status = {"phase": phase, "conditions": conditions, "containerStatuses": statuses,
                  "hostIP": self.agent.network.gateway, "hostIPs": [{"ip": self.agent.network.gateway}]}
        if self.ip:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        if not (self.pod.get("status") or {}).get("startTime"):
            status["startTime"] = now()
        status.update(extra or {})
        self.agent.api.patch_status(self.pod, status)
        self.pod.setdefault("status", {}).update(status)

    # ---------------------------------------------------------------- sandbox
    def sandbox(self, container_name):
        spec = self.pod["spec"]
        ns = self.pod["metadata"]["namespace"]
        configmaps, secrets = {}, {}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                configmaps[name] = self.agent.api.configmap(ns, name).get("data") or {}
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                secrets[name] = self._secret(ns, name)
        container = next(c for c in spec.get("initContainers", []) + spec["containers"]
                         if c["name"] == container_name)
        info = IMAGES[self.agent.matcher.repository(container["image"])]
        image_paths = self.agent.image_files(container["image"])
        for path, write in info["pod_dirs"].items():
            # The image's own file system, per container (a new container: the image's files again).
            local = os.path.join(self.root, "image", container_name, path.strip("/"))
            shutil.rmtree(local, ignore_errors=True)
            image_paths[path] = write(local)
        # env valueFrom.secretKeyRef: read here, given to PodSandbox as plain values.
        resolved = dict(spec, initContainers=[], containers=[self._resolve_env(ns, container)])
        box = PodSandbox(self.root, resolved, self.pod["metadata"]["name"], ns, configmaps,
                         image_paths, container=0, secrets=secrets,
                         pod_ip=self.ip, node_name=spec.get("nodeName", "localhost"),
                         image_env=info.get("env"), entrypoint=info.get("entrypoint"),
                         volume_dirs=self.claim_dirs())
        for mount in container.get("volumeMounts", []):
            volume = next((v for v in spec.get("volumes", []) if v["name"] == mount["name"]), {})
            if "projected" in volume and not mount.get("subPath"):
                self.project(volume["projected"], box.volume(mount["mountPath"]))
        if SERVICE_ACCOUNT_DIR in box.mounts:
            box.env["BDS_SERVICE_ACCOUNT_DIR"] = box.mounts[SERVICE_ACCOUNT_DIR]
        return box

    def project(self, projected, directory):
        """A projected volume's files, as the kubelet writes them: a service account token from the
        TokenRequest API (bound to this pod; not refreshed here, where the kubelet renews it at 80%
        of its life, an hour by default: enough for the applications this cluster runs), ConfigMap
        and Secret keys, and downward API fields."""
        ns, meta = self.pod["metadata"]["namespace"], self.pod["metadata"]
        files = {}
        for source in projected.get("sources", []):
            if "serviceAccountToken" in source:
                token = source["serviceAccountToken"]
                files[token["path"]] = self.agent.api.token(
                    ns, self.pod["spec"].get("serviceAccountName") or "default", token.get("audience"),
                    token.get("expirationSeconds", 3600), meta["name"], meta["uid"])
            for kind, read in (("configMap", lambda name: self.agent.api.configmap(ns, name).get("data") or {}),
                               ("secret", lambda name: self._secret(ns, name))):
                if kind in source:
                    ref = source[kind]
                    try:
                        data = read(ref["name"])
                    except self.agent.api.exceptions.ApiException as exc:
                        if exc.status == 404 and ref.get("optional"):
                            continue
                        raise
                    for item in ref.get("items") or [{"key": key, "path": key} for key in data]:
                        files[item["path"]] = data[item["key"]]
            if "downwardAPI" in source:
                fields = {"metadata.name": meta["name"], "metadata.namespace": ns, "metadata.uid": meta["uid"],
                          "spec.nodeName": self.pod["spec"].get("nodeName", ""),
                          "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", "")}
                for item in source["downwardAPI"].get("items", []):
                    field = item.get("fieldRef", {}).get("fieldPath")
                    if field not in fields:
                        raise RuntimeError("projected downwardAPI %s: only %s here" % (field, sorted(fields)))
                    files[item["path"]] = fields[field]
        for path, text in files.items():
            target = os.path.join(directory, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)

    def claim_dirs(self):
        """{volume name: directory} of the pod's persistentVolumeClaim volumes: one directory per
        claim (<state>/claims/<namespace>/<claim>), whichever pod mounts it, kept when pods go (a
        StatefulSet's pod mounts its claims under their names, as the controller adds them)."""
        ns = self.pod["metadata"]["namespace"]
        return {v["name"]: os.path.join(self.agent.state_dir, "claims", ns, v["persistentVolumeClaim"]["claimName"])
                for v in self.pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v}

    def mounted_sandbox(self, container_name):
        """sandbox() once every ConfigMap and Secret the pod mounts exists (None: deleted first). A
        kubelet keeps a pod in ContainerCreating until then: spark-submit creates the driver pod
        before the ConfigMap of spark.properties it mounts, the driver its executors before theirs."""
        while True:
            try:
                return self.sandbox(container_name)
            except self.agent.api.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
                reason = (json.loads(exc.body or "{}").get("message") if exc.body else None) or str(exc.reason)
                self.status("Pending", {"waiting": {"reason": "ContainerCreating",
                                                    "message": "MountVolume.SetUp failed: %s" % reason}})
            if self.deleted.wait(2):
                return None

    def _secret(self, ns, name):
        data = self.agent.api.secret(ns, name).get("data") or {}
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

    def _resolve_env(self, ns, container):
        container = dict(container)
        env = []
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                value = self._secret(ns, ref["name"]).get(ref["key"])
                if value is None and not ref.get("optional"):
                    raise RuntimeError("env %s: Secret %s has no key %s" % (entry["name"], ref["name"], ref["key"]))
                entry = {"name": entry["name"], "value": value or ""}
            env.append(entry)
        container["env"] = env
        return container

    # ---------------------------------------------------------------- processes
    def hostname(self):
        """The pod's host name, as the kubelet sets it: spec.hostname, else the pod's name."""
        return self.pod["spec"].get("hostname") or self.pod["metadata"]["name"]

    def spawn(self, box, log_name, container, restarts=0):
        """Start `container`; its output goes to <root>/<log_name> (plain, every start appended)
        and to the log file `kubectl logs` reads (<root>/logs/<container>/<restarts>.log, a file
        per start as the kubelet keeps them, the previous start's kept for --previous)."""
        cri_dir = os.path.join(self.root, "logs", container)
        os.makedirs(cri_dir, exist_ok=True)
        proc = subprocess.Popen(in_pod(self.netns, self.hostname(), box.command), env=box.env,
                                cwd=box.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.agent.record_pid(self.uid, proc.pid)
        current = os.path.join(cri_dir, "%d.log" % restarts)
        ContainerOutput(proc, os.path.join(self.root, log_name), current)
        previous = os.path.join(cri_dir, "%d.log" % (restarts - 1)) if restarts else None
        self.log_files[container] = (current, previous)
        self.put_logs()
        return proc

    def put_logs(self):
        """kwok's Logs object: each container's log file, and the previous start's."""
        self.agent.api.put_kwok("Logs", self.pod, {"logs": [
            dict({"containers": [name], "logsFile": files[0]}, **({"previousLogsFile": files[1]} if files[1] else {}))
            for name, files in sorted(self.log_files.items())]})

    def stop_process(self, grace):
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                return proc.wait(timeout=max(wait, 0))
            except subprocess.TimeoutExpired:
                continue
        return proc.poll()

    def probe(self, probe, box):
        """True when the probe passes (tcpSocket or httpGet on the pod IP, or exec in the pod)."""
        container = self.pod["spec"]["containers"][0]
        timeout = probe.get("timeoutSeconds", 1)

        def port_of(action):
            port = action["port"]
            if isinstance(port, str):
                port = next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == port)
            return int(port)
        if "tcpSocket" in probe:
            try:
                with socket.create_connection((self.ip, port_of(probe["tcpSocket"])), timeout=timeout):
                    return True
            except OSError:
                return False
        if "httpGet" in probe:
            return http_probe(probe["httpGet"], probe["httpGet"].get("host") or self.ip,
                              port_of(probe["httpGet"]), timeout)
        if "exec" in probe:
            cmd = [box.rewrite(part) for part in probe["exec"]["command"]]
            try:
                return subprocess.run(in_pod(self.netns, self.hostname(), cmd), env=box.env, cwd=box.root,
                                      capture_output=True, timeout=timeout + 30, check=False,
                                      start_new_session=True).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        LOG.warning("%s: probe %s is not supported here: counted as passing", self.name, sorted(probe))
        return True

    def run(self):
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported on the pod, never silently
            LOG.exception("%s failed", self.name)
            try:
                self.status("Pending", {"waiting": {"reason": "RunContainerError", "message": str(exc)[:2000]}})
            except Exception:  # noqa: BLE001
                LOG.exception("%s: cannot report the failure", self.name)
            self.deleted.wait()
        finally:
            self.teardown()

    def _run(self):
        spec = self.pod["spec"]
        # A new pod gets empty emptyDirs; a claim's directory (claim_dirs) keeps its data.
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                shutil.rmtree(os.path.join(self.root, "volumes", volume["name"]), ignore_errors=True)
        self.ip = self.agent.network.allocate(self.uid)
        self.netns = self.agent.network.create(self.pod, self.ip)
        self.agent.refresh_dns(force=True)
        for init in spec.get("initContainers", []):
            box = self.mounted_sandbox(init["name"])
            if box is None:
                return
            self.status("Pending", {"waiting": {"reason": "PodInitializing"}})
            self.proc = self.spawn(box, "init-%s.log" % init["name"], init["name"])
            while self.proc.poll() is None and not self.deleted.is_set():
                time.sleep(0.5)
            if self.deleted.is_set():
                return
            if self.proc.returncode != 0:
                self.status("Failed" if spec.get("restartPolicy") == "Never" else "Pending",
                            {"waiting": {"reason": "Init:Error", "message": "init container %s exited %d"
                                         % (init["name"], exit_code(self.proc.returncode))}})
                self.deleted.wait()
                return
        name = spec["containers"][0]["name"]
        box = self.mounted_sandbox(name)
        if box is None:
            return
        self.agent.put_kwok_objects(self.pod, self, box)
        policy = spec.get("restartPolicy", "Always")
        backoff = 10
        while not self.deleted.is_set():
            started = now()
            self.proc = self.spawn(box, "container.log", name, self.restarts)
            self.ready = False
            self.status("Running", {"running": {"startedAt": started}})
            code = self._watch(box, started)
            if code is None:  # deleted while running
                return
            reason = "Completed" if code == 0 else "Error"
            terminated = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started,
                                         "finishedAt": now(), "containerID": "bds://%s/%s" % (self.uid, name)}}
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self.status("Succeeded" if code == 0 else "Failed", terminated)
                self.deleted.wait()
                return
            self.restarts += 1
            self.last_state = terminated
            # `kubectl logs --previous` answers from the moment the status says the start ended.
            self.log_files[name] = (self.log_files[name][0], self.log_files[name][0])
            self.put_logs()
            self.status("Running", {"waiting": {"reason": "CrashLoopBackOff", "message":
                                                "back-off %ds restarting failed container %s" % (backoff, name)}})
            if self.deleted.wait(backoff):
                return
            backoff = min(backoff * 2, 300)

    def _watch(self, box, started):
        """Probe until the process exits (its exit code) or the pod is deleted (None)."""
        container = self.pod["spec"]["containers"][0]
        startup = container.get("startupProbe")
        readiness = container.get("readinessProbe")
        liveness = container.get("livenessProbe")
        started_ok = startup is None
        fails = {"startup": 0, "readiness": 0, "liveness": 0}
        next_probe = time.monotonic() + (readiness or {}).get("initialDelaySeconds", 0)
        while True:
            if self.deleted.wait(1):
                return None
            code = exit_code(self.proc.poll())
            if code is not None:
                return code
            if time.monotonic() < next_probe:
                continue
            if not started_ok:
                if self.probe(startup, box):
                    started_ok = True
                else:
                    fails["startup"] += 1
                    if fails["startup"] >= startup.get("failureThreshold", 3):
                        LOG.info("%s: startup probe failed %d times: restarting", self.name, fails["startup"])
                        return exit_code(self.stop_process(self.grace()))
                    next_probe = time.monotonic() + startup.get("periodSeconds", 10)
                    continue
            ready = True
            if readiness:
                ok = self.probe(readiness, box)
                fails["readiness"] = 0 if ok else fails["readiness"] + 1
                ready = ok or (self.ready and fails["readiness"] < readiness.get("failureThreshold", 3))
            if liveness and not self.probe(liveness, box):
                fails["liveness"] += 1
                if fails["liveness"] >= liveness.get("failureThreshold", 3):
                    LOG.info("%s: liveness probe failed: restarting", self.name)
                    return exit_code(self.stop_process(self.grace()))
            else:
                fails["liveness"] = 0
            if ready != self.ready:
                self.ready = ready
                self.status("Running", {"running": {"startedAt": started}}, ready=ready)
                self.agent.refresh_dns(force=True)
            period = (readiness or {}).get("periodSeconds", 10)
            next_probe = time.monotonic() + (min(period, 2) if not ready else period)

    def grace(self):
        meta = self.pod["metadata"]
        value = meta.get("deletionGracePeriodSeconds")
        if value is None:
            value = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        return min(int(value), self.agent.stop_grace) if self.stopping.is_set() else int(value)

    def teardown(self):
        code = exit_code(self.stop_process(self.grace()))
        if self.deleted.is_set() and not self.stopping.is_set():
            name = self.pod["spec"]["containers"][0]["name"]
            if code is not None:
                try:
                    self.status("Failed" if code else "Succeeded", {"terminated": {
                        "exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": now(),
                        "containerID": "bds://%s/%s" % (self.uid, name)}})
                except Exception:  # noqa: BLE001
                    LOG.exception("%s: final status", self.name)
            self.agent.api.delete_kwok(self.pod)
            self.agent.api.delete_pod(self.pod)
        self.agent.network.delete(self.pod)
        if not self.stopping.is_set():
            self.agent.network.release(self.uid)
        self.agent.forget_pid(self.uid)
        LOG.info("%s: stopped (exit %s)", self.name, code)


# The names of the `kubernetes` Service in the default namespace, which pods reach the API server by
# (Spark's driver: spark.kubernetes.driver.master, https://kubernetes.default.svc). kwokctl's API
# server certificate names all three (kwok pkg/kwokctl/pki/pki.go).
API_SERVICE_NAMES = ("kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")


class ApiRelay(threading.Thread):
    """The `kubernetes` Service for the pods: in a cluster its ClusterIP port 443 reaches the API
    server; here the pods' hosts files give its names the bridge's address, where this relays port
    443 to the API server the agent uses (TCP: TLS stays end to end, checked against the cluster CA
    the pods' kube-root-ca.crt carries)."""

    def __init__(self, address, upstream, port=443):
        super().__init__(name="api-relay", daemon=True)
        self.upstream = upstream

        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):  # noqa: D102 - socketserver's hook
                relay.connect(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True  # an agent started again on the same bridge address
            daemon_threads = True

        self.server = Server((address, port), Handler)

    def connect(self, downstream):
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError as exc:
            LOG.warning("api relay: %s:%d: %s", self.upstream[0], self.upstream[1], exc)
            return
        upstream.settimeout(None)
        downstream.settimeout(None)
        back = threading.Thread(target=self.pipe, args=(upstream, downstream), daemon=True)
        back.start()
        self.pipe(downstream, upstream)
        back.join()
        upstream.close()

    @staticmethod
    def pipe(source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run(self):
        self.server.serve_forever()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MavenMirror(threading.Thread):
    """Maven Central for the pods, pulled through and cached, as an air-gapped cluster's Nexus or
    Artifactory proxy serves it: GET http://<address>:<port>/maven2/<path> answers the file of
    <upstream><path>, downloaded once into cache_dir (shared by every cluster); HEAD answers the same
    headers without the body (Spark's Ivy 2.5.3 asks with HEAD first: AbstractURLHandler's default
    request method). Only GET and HEAD, only Maven paths, only on the bridge's address (reached from
    the pods and this machine)."""

    def __init__(self, address, port, cache_dir, upstream=MAVEN_CENTRAL):
        super().__init__(name="maven-mirror", daemon=True)
        self.cache_dir = cache_dir
        self.upstream = upstream
        self.lock = threading.Lock()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                mirror.serve(self)

            def do_HEAD(self):  # noqa: N802 - the name http.server calls
                mirror.serve(self, body=False)

            def log_message(self, fmt, *args):  # noqa: A002 - http.server's signature
                LOG.info("mirror %s " + fmt, self.client_address[0], *args)

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        self.url = "http://%s:%d/maven2" % self.server.server_address[:2]

    def run(self):
        self.server.serve_forever()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def relative(url_path):
        """The repository path of a request, or None when it is not one (or climbs out of it)."""
        match = MIRROR_PATH.match(url_path)
        if not match or any(part in (".", "..") for part in match.group(1).split("/")):
            return None
        return match.group(1)

    def fetch(self, relative):
        local = os.path.join(self.cache_dir, relative)
        with self.lock:  # one download per file, however many pods ask at once
            if not os.path.isfile(local):
                os.makedirs(os.path.dirname(local), exist_ok=True)
                partial = "%s.%d.partial" % (local, os.getpid())
                with urllib.request.urlopen(self.upstream + relative, timeout=120) as response, \
                        open(partial, "wb") as out:
                    shutil.copyfileobj(response, out)
                os.replace(partial, local)
                LOG.info("mirror: fetched %s%s", self.upstream, relative)
        return local

    def serve(self, request, body=True):
        relative = self.relative(request.path)
        if relative is None:
            request.send_error(404, "not a Maven repository path: /maven2/<group>/<artifact>/<version>/<file>")
            return
        try:
            local = self.fetch(relative)
        except urllib.error.HTTPError as exc:
            request.send_error(exc.code, "%s%s: %s" % (self.upstream, relative, exc.reason))
            return
        except OSError as exc:
            request.send_error(502, "%s%s could not be fetched: %s" % (self.upstream, relative, exc))
            return
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(os.path.getsize(local)))
        request.end_headers()
        if body:
            with open(local, "rb") as handle:
                shutil.copyfileobj(handle, request.wfile)


class Agent:
    def __init__(self, args):
        self.cluster = args.cluster
        self.images = set(args.image)
        unknown = self.images - set(IMAGES)
        if unknown:
            raise SystemExit("bds-agent: no stand-in for %s (known: %s)" % (sorted(unknown), sorted(IMAGES)))
        self.matcher = ImageMatcher(args.image_pattern)
        self.state_dir = args.state_dir
        self.stop_grace = args.stop_grace
        self.fetch_dir = args.fetch_dir
        self.mirror_port = args.mirror_port
        self.mirror_dir = args.mirror_dir
        self.mirror = None
        self.api_relay = None
        os.makedirs(os.path.join(self.state_dir, "pids"), exist_ok=True)
        self.api = Api(args.kubeconfig)
        self.network = Network(self.cluster, args.cidr, self.state_dir)
        self.runners = {}
        self.dns_state = None
        self.dns_lock = threading.Lock()
        self.image_lock = threading.Lock()  # pods of one image start at once: one writes its shims
        self.last_pods = []
        self.last_services = []
        self.stop = threading.Event()

    # pid files: `simcluster_state=absent` kills exactly these if the agent itself was killed.
    def record_pid(self, uid, pid):
        with open(os.path.join(self.state_dir, "pids", uid), "w", encoding="utf-8") as handle:
            handle.write("%d\n" % pid)

    def forget_pid(self, uid):
        try:
            os.remove(os.path.join(self.state_dir, "pids", uid))
        except FileNotFoundError:
            pass

    def image_files(self, image):
        """{path in the image: local path} for the image's version: its launcher directory (the
        shims), or the files its write_image makes."""
        info = IMAGES[self.matcher.repository(image)]
        if "write_image" not in info:
            return {info["bin"]: self.image_bin(image)}
        version = image_tag(image)
        target = os.path.join(self.state_dir, "images", "%s-%s" % (self.matcher.repository(image).split("/")[-1], version))
        with self.image_lock:
            return info["write_image"](target, version)

    def image_bin(self, image):
        """The shims standing in for the image's launcher directory, for the image's version."""
        info = IMAGES[self.matcher.repository(image)]
        if "write_image" in info:
            return path_rewriter(self.image_files(image))(info["bin"])
        version = image_tag(image)
        release = re.match(r"^(\d+\.\d+\.\d+)", version)
        sys.path.insert(0, self.fetch_dir)
        import fetch  # tools/daemons/fetch.py: where the jars of a version live

        home = fetch.home_dir(info["component"], release.group(1) if release else version)
        if not (release and os.path.isfile(os.path.join(home, ".complete"))):
            raise RuntimeError(
                "no %s jars for image %s in %s: fetch them with `python3 %s/fetch.py %s` (the role's "
                "version) or `cd %s && python3 -c \"import fetch; fetch.ensure('%s', '%s')\"`"
                % (info["component"], image, home, self.fetch_dir, info["component"], self.fetch_dir,
                   info["component"], version))
        target = os.path.join(self.state_dir, "images", "%s-%s" % (info["component"], version), "bin")
        with self.image_lock:
            if not os.path.isdir(target):
                shutil.rmtree(target + ".new", ignore_errors=True)
                info["write_bin"](target + ".new", fetch.classpath(info["component"], release.group(1)))
                os.replace(target + ".new", target)
        return target

    def put_kwok_objects(self, pod, runner, box):
        """`kubectl exec` runs the command locally with the pod's env (the dispatchers enter the
        pod); `kubectl port-forward` reaches each container port on the pod IP (kwok dials it from
        this machine, through the bridge)."""
        env = dict(box.env)
        env.update({"BDS_NETNS": runner.netns, "BDS_HOSTNAME": runner.hostname(),
                    "BDS_IMAGE_BIN": self.image_bin(pod["spec"]["containers"][0]["image"])})
        self.api.put_kwok("Exec", pod, {"execs": [{"local": {"workDir": box.root, "envs": [
            {"name": k, "value": v} for k, v in sorted(env.items())]}}]})
        ports = sorted({p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])})
        self.api.put_kwok("PortForward", pod, {"forwards": [
            {"ports": [port], "target": {"address": runner.ip, "port": port}} for port in ports]})

    def refresh_dns(self, force=False):
        """Rewrite every pod's /etc/hosts (in place) when the names or addresses changed."""
        with self.dns_lock:
            if force:
                self.last_pods = self.api.pods()
                self.last_services = self.api.services()
            ips = {uid: r.ip for uid, r in self.runners.items() if r.ip}
            # A runner's own view is newer than the list for readiness.
            pods = []
            for pod in self.last_pods:
                runner = self.runners.get(pod["metadata"]["uid"])
                if runner is not None:
                    pod = dict(pod, status=dict(pod.get("status") or {}, conditions=(
                        [{"type": "Ready", "status": "True" if runner.ready else "False"}])))
                pods.append(pod)
            names = dns_names(pods, self.last_services, ips)
            state = json.dumps([names, sorted(ips.items())], sort_keys=True)
            if state == self.dns_state and not force:
                return
            self.dns_state = state
            for runner in list(self.runners.values()):
                if not runner.netns:
                    continue
                ns = runner.pod["metadata"]["namespace"]
                mine = {}
                for name, ip in names.items():
                    if "@" in name:
                        svc, svc_ns = name.split("@")
                        if svc_ns == ns:
                            mine[svc] = ip  # a Service by its bare name, from its own namespace
                    else:
                        mine[name] = ip
                # The API server, through ApiRelay on the bridge.
                for name in API_SERVICE_NAMES + (("kubernetes",) if ns == "default" else ()):
                    mine[name] = self.network.gateway
                spec = runner.pod["spec"]
                own = runner.hostname()
                # The kubelet's line for the pod itself: <pod IP> <fqdn> <hostname>, the FQDN
                # (with the cluster domain) only when the pod has a subdomain.
                fqdn = ("%s.%s.%s.svc.cluster.local" % (own, spec["subdomain"], ns)
                        if spec.get("subdomain") else None)
                path = os.path.join("/etc/netns", runner.netns, "hosts")
                if os.path.isdir(os.path.dirname(path)):
                    write_hosts_file(path, mine, own_name=own, own_address=runner.ip, own_fqdn=fqdn)

    def write_dispatchers(self):
        """<state>/exec-bin/<image dir>/<script>: what kwok's mount namespace shows as the image's
        launcher directory (/opt/kafka/bin -> exec-bin/kafka), for `kubectl exec`."""
        for info in IMAGES.values():
            target = os.path.join(self.state_dir, "exec-bin", info["bin"].strip("/").split("/")[1])
            os.makedirs(target, exist_ok=True)
            for script in info["scripts"]:
                path = os.path.join(target, script)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(
                        "#!/bin/sh\n# kubectl exec <pod> -- %s/%s: in the pod's network namespace, with the "
                        "pod's env (kwok's Exec object), the image's stand-in (bds-agent).\n"
                        "[ -n \"${BDS_NETNS:-}\" ] || { echo 'not a pod of the bds node agent' >&2; exit 126; }\n"
                        "exec %s \"$BDS_IMAGE_BIN/%s\" \"$@\"\n"
                        % (info["bin"], script, " ".join(in_pod('"$BDS_NETNS"', '"$BDS_HOSTNAME"', [], quote=True)),
                           script))
                os.chmod(path, 0o755)

    def loop(self, interval):
        self.write_dispatchers()
        self.network.setup_bridge()
        self.api_relay = ApiRelay(self.network.gateway, self.api.server())
        self.api_relay.start()
        if self.mirror_port:
            self.mirror = MavenMirror(self.network.gateway, self.mirror_port, self.mirror_dir)
            self.mirror.start()
            LOG.info("Maven Central mirror for the pods at %s (cache %s)", self.mirror.url, self.mirror_dir)
        LOG.info("bds-agent for %s: images %s, pods on %s (bridge %s)", self.cluster, sorted(self.images),
                 self.network.net, self.network.bridge)
        while not self.stop.is_set():
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - the API server restarting; try again
                LOG.exception("sync failed")
            self.stop.wait(interval)
        self.shutdown()

    def sync(self):
        pods = self.api.pods()
        seen = set()
        for pod in pods:
            meta = pod["metadata"]
            if not pod["spec"].get("nodeName") or not self.matcher.owned(pod):
                continue
            phase = (pod.get("status") or {}).get("phase")
            uid = meta["uid"]
            seen.add(uid)
            runner = self.runners.get(uid)
            if runner is None:
                if meta.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                    if meta.get("deletionTimestamp"):
                        self.api.delete_kwok(pod)
                        self.api.delete_pod(pod)  # never started here: nothing to stop
                    continue
                runner = PodRunner(self, pod)
                self.runners[uid] = runner
                LOG.info("%s: starting", runner.name)
                runner.start()
            else:
                runner.pod["metadata"] = meta
                if meta.get("deletionTimestamp"):
                    runner.deleted.set()
        for uid, runner in list(self.runners.items()):
            if uid not in seen:
                runner.deleted.set()
            if not runner.is_alive():
                del self.runners[uid]
        self.last_pods = pods
        self.last_services = self.api.services()
        self.refresh_dns()

    def shutdown(self):
        LOG.info("stopping %d pods", len(self.runners))
        for runner in self.runners.values():
            runner.stopping.set()
            runner.deleted.set()
        for runner in self.runners.values():
            runner.join(self.stop_grace + 15)
        if self.mirror:
            self.mirror.close()
        if self.api_relay:
            self.api_relay.close()
        run(["ip", "link", "del", self.network.bridge], check=False)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read_pid(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip() or 0) or None
    except (FileNotFoundError, ValueError):
        return None


def _ours(pid, state_dir):
    """Whether process `pid` is one this agent started: its command names the state directory
    (every container command runs in a sandbox under it) or is the agent itself."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return state_dir in cmdline or "ip netns exec " + PREFIX in cmdline


def check_range(network, state_dir):
    """1, saying why on stderr, when something on this machine already routes the pods' range (the
    agents of other clusters have state directories beside `state_dir`); else 0."""
    runtime_dir = os.path.dirname(state_dir)
    taken = network.taken_by_others(run(["ip", "-o", "-4", "route", "show"]).stdout.splitlines(),
                                    os.listdir(runtime_dir) if os.path.isdir(runtime_dir) else ())
    if taken:
        sys.stderr.write(network.conflict_message(taken))
    return 1 if taken else 0


def start(args, argv):
    """Start the agent in the background unless it runs; prints `started` or `running`."""
    pid_file = os.path.join(args.state_dir, "agent.pid")
    pid = _read_pid(pid_file)
    if pid and _alive(pid) and _ours(pid, args.state_dir):
        print("running %d" % pid)
        return 0
    network = Network(args.cluster, args.cidr, args.state_dir)
    if check_range(network, args.state_dir):
        return 1
    os.makedirs(args.state_dir, exist_ok=True)
    run_argv = [a for a in argv if a != "start"]
    with open(os.path.join(args.state_dir, "agent.log"), "ab") as log:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "run"] + run_argv,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=args.state_dir)
    with open(pid_file, "w", encoding="utf-8") as handle:
        handle.write("%d\n" % proc.pid)
    bridge = network.bridge
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.stderr.write("bds-agent exited %s at start; its log, %s/agent.log:\n" % (proc.returncode, args.state_dir))
            with open(os.path.join(args.state_dir, "agent.log"), encoding="utf-8", errors="replace") as handle:
                sys.stderr.write("".join(handle.readlines()[-30:]))
            return 1
        if run(["ip", "link", "show", bridge], check=False).returncode == 0:
            print("started %d" % proc.pid)
            return 0
        time.sleep(0.5)
    sys.stderr.write("bds-agent started (pid %d) but made no bridge %s in 30 s\n" % (proc.pid, bridge))
    return 1


def stop(args):
    """Stop the agent (it stops its pods), then remove whatever a killed agent left: the processes
    of its pid files, the namespaces, veths and bridge of this cluster. Prints what it removed."""
    removed = []
    pid_file = os.path.join(args.state_dir, "agent.pid")
    pid = _read_pid(pid_file)
    if pid and _alive(pid) and _ours(pid, args.state_dir):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.stop_grace + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        removed.append("agent %d" % pid)
    if os.path.exists(pid_file):
        os.remove(pid_file)
    pids_dir = os.path.join(args.state_dir, "pids")
    for name in sorted(os.listdir(pids_dir)) if os.path.isdir(pids_dir) else []:
        pid = _read_pid(os.path.join(pids_dir, name))
        if pid and _alive(pid) and _ours(pid, args.state_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            removed.append("process %d" % pid)
        os.remove(os.path.join(pids_dir, name))
    network = Network(args.cluster, args.cidr, args.state_dir)
    prefix = "%s%s-" % (PREFIX, short_hash(args.cluster, 6))
    for line in run(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            # Whatever still runs in one of this cluster's namespaces is a pod's process.
            for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    removed.append("process %s" % pid)
                except ProcessLookupError:
                    pass
            run(["ip", "netns", "del", name], check=False)
            shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)
            removed.append("netns " + name)
    if run(["ip", "link", "show", network.bridge], check=False).returncode == 0:
        ports = run(["ip", "-o", "link", "show", "master", network.bridge], check=False).stdout
        for line in ports.splitlines():
            veth = line.split(":")[1].strip().split("@")[0]
            run(["ip", "link", "del", veth], check=False)
            removed.append("veth " + veth)
        run(["ip", "link", "del", network.bridge], check=False)
        removed.append("bridge " + network.bridge)
    if os.path.exists(network.leases_path):
        os.remove(network.leases_path)
    print("removed: " + (", ".join(removed) if removed else "nothing"))
    return 0


def fetch_jars(args):
    """Fetch (or find) the jars of every --image at the version its role pins (tools/daemons/fetch.py,
    which says `fetching` on stderr when it downloads); prints their directories."""
    unknown = sorted(set(args.image) - set(IMAGES))
    if unknown:
        sys.stderr.write("bds-agent: no stand-in for %s (known: %s)\n" % (unknown, sorted(IMAGES)))
        return 2
    sys.path.insert(0, args.fetch_dir)
    import fetch

    for image in args.image:
        if IMAGES[image]["component"] is None:  # a distribution beside the agent (write_image)
            try:
                import pyspark
            except ImportError:
                sys.stderr.write("error: %s stands in with the pyspark package, and %s has none\n" % (image, sys.executable))
                return 1
            print("%s: %s (pyspark %s)" % (image, os.path.dirname(pyspark.__file__), pyspark.__version__))
            continue
        try:
            print("%s: %s" % (image, fetch.ensure(IMAGES[image]["component"])))
        except fetch.FetchError as exc:
            sys.stderr.write("error: the jars of %s: %s\n" % (image, exc))
            return 1
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "start", "stop", "fetch", "check"])
    parser.add_argument("--kubeconfig")
    parser.add_argument("--cluster")
    parser.add_argument("--state-dir")
    parser.add_argument("--cidr")
    parser.add_argument("--image", action="append", help="repository, e.g. apache/kafka")
    parser.add_argument("--image-pattern", help="regular expression, group 2 the repository")
    parser.add_argument("--fetch-dir", help="tools/daemons (fetch.py)")
    parser.add_argument("--stop-grace", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--mirror-port", type=int, default=0,
                        help="serve the pods a Maven Central mirror on the bridge's address (0: none)")
    parser.add_argument("--mirror-dir", help="the mirror's cache (Maven layout)")
    args = parser.parse_args(argv)
    needs = {"fetch": ["image", "fetch_dir"], "stop": ["cluster", "state_dir", "cidr"],
             "check": ["cluster", "state_dir", "cidr"]}.get(
        args.action, ["cluster", "state_dir", "cidr", "kubeconfig", "image", "image_pattern", "fetch_dir"])
    missing = ["--" + name.replace("_", "-") for name in needs if not getattr(args, name)]
    if missing:
        parser.error("%s needs %s" % (args.action, ", ".join(missing)))
    if args.mirror_port and not args.mirror_dir:
        parser.error("--mirror-port needs --mirror-dir")
    if args.action == "fetch":
        return fetch_jars(args)
    args.state_dir = os.path.abspath(args.state_dir)
    if args.action == "stop":
        return stop(args)
    if args.action == "check":
        return check_range(Network(args.cluster, args.cidr, args.state_dir), args.state_dir)
    if args.action == "start":
        return start(args, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    agent = Agent(args)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    agent.loop(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
