"""The Prometheus JMX exporter agent of the Kafka pods, as the kafka role's init container gets it.

Every Kafka pod has an init container, fetch-jmx-exporter, that downloads kafka_jmx_exporter_url
into an emptyDir and refuses the file unless its SHA-256 is kafka_jmx_exporter_sha256; the Kafka
container then loads it with -javaagent (KAFKA_SERVER_JAVA_AGENT). Here that init container's own
command runs in a PodSandbox, unchanged, the first time a jar is needed: its download from Maven
Central lands in the cache ($BIGDATA_CACHE_DIR/daemons/jmx-exporter/<sha256>/), and every Kafka pod
sandbox gets a copy in its emptyDir directory, as the init container would have left it.
"""

import hashlib
import os
import shutil

from daemon_support import fetch
from podsim import PodSandbox

INIT_CONTAINER = "fetch-jmx-exporter"
AGENT_ENV = "KAFKA_SERVER_JAVA_AGENT"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def init_container(statefulset):
    """The fetch-jmx-exporter init container of a rendered Kafka StatefulSet, or None."""
    spec = statefulset["spec"]["template"]["spec"]
    return next((c for c in spec.get("initContainers", []) if c["name"] == INIT_CONTAINER), None)


def init_env(statefulset):
    """{name: value} of the init container's env (JMX_EXPORTER_URL, JMX_EXPORTER_SHA256)."""
    return {e["name"]: e["value"] for e in init_container(statefulset).get("env", []) if "value" in e}


def agent_option(statefulset):
    """The -javaagent option the Kafka container passes its server (None without metrics)."""
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return next((e["value"] for e in container.get("env", []) if e["name"] == AGENT_ENV), None)


def jar_mount(statefulset):
    """The directory the init container writes the jar to (its only volume mount)."""
    mounts = init_container(statefulset)["volumeMounts"]
    assert len(mounts) == 1, mounts
    return mounts[0]["mountPath"]


def run_init_container(statefulset, namespace, root, extra_env=None, timeout=300):
    """Run the rendered init container's command in a PodSandbox; (CompletedProcess, sandbox)."""
    sandbox = PodSandbox(root, statefulset["spec"]["template"]["spec"], INIT_CONTAINER + "-x", namespace,
                         configmaps={}, image_paths={}, extra_env=extra_env, container=INIT_CONTAINER)
    return sandbox.run(timeout), sandbox


def agent_jar(statefulset, namespace, work_dir):
    """The agent's jar the rendered init container fetches: from the cache, or fetched into it now.

    The cache is keyed by the rendered SHA-256, and a cached file is checked against it again, so
    a changed kafka_jmx_exporter_sha256 (a new version) fetches anew.
    """
    env = init_env(statefulset)
    expected = env["JMX_EXPORTER_SHA256"]
    cached = os.path.join(fetch.cache_root(), "jmx-exporter", expected, "jmx_prometheus_javaagent.jar")
    if os.path.exists(cached) and sha256_of(cached) == expected:
        return cached
    result, sandbox = run_init_container(statefulset, namespace, work_dir)
    assert result.returncode == 0, "the init container %s could not fetch %s:\n%s\n%s" % (
        INIT_CONTAINER, env["JMX_EXPORTER_URL"], result.stdout[-3000:], result.stderr[-3000:])
    fetched = [os.path.join(sandbox.volume(jar_mount(statefulset)), name)
               for name in os.listdir(sandbox.volume(jar_mount(statefulset)))]
    assert len(fetched) == 1 and fetched[0].endswith(".jar"), fetched
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    partial = "%s.%d.partial" % (cached, os.getpid())  # pytest-xdist workers may fetch at once
    shutil.copyfile(fetched[0], partial)
    os.replace(partial, cached)
    return cached
