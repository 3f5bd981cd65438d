"""Run a rendered pod's container command on this machine, as close to the pod as one host allows.

What a pod gets from Kubernetes, and what stands in for it here:

* volumes -> one directory per volumeMount under the sandbox; a configMap volume gets the
  ConfigMap's keys (or its `items`) as files, like the kubelet writes them;
* the image's files the command calls (/opt/kafka/bin/*.sh, /opt/hadoop/bin/hdfs) -> small
  shell shims that start the same main class from the Maven Central jars (write_shims() and
  write_hdfs_shim() here); the image's files the pod reads but does not mount (Hadoop's
  etc/hadoop/log4j.properties) -> a directory per pod (write_hadoop_image_conf());
* the mount paths and image paths inside the command, the env and the mounted files -> rewritten
  to those directories, in one pass, longest path first (a bind mount, in effect);
* env `valueFrom.fieldRef` -> the pod's name, namespace and IP (127.0.0.1 in tests/daemons, the
  IP of the pod's own network namespace under the node agent, runtime/agent.py);
* cluster DNS (pod FQDNs through the headless service, service names) -> a hosts file (given to
  every JVM with -Djdk.net.hosts.file in tests/daemons; the pod's /etc/hosts under the agent);
  names stay as rendered.

Two users: tests/daemons (one test boots the rendered pods on 127.0.0.1) and the simulated
cluster's node agent (roles/simcluster/files/runtime/agent.py, pods of the API server, each in a
network namespace of its own). This file lives once, here, for both.

Nothing else is changed here. What must differ when every pod shares 127.0.0.1 (ports, bind
address) is done by kafka_sim.py and hdfs_sim.py, in the open, with the reason next to each
change; the node agent needs none of it (each pod has an IP of its own and listens on the
rendered ports). A command that
still names an absolute path outside the sandbox after the rewrite is refused before it runs, so a
script can never write to this machine's /var/lib or /data.
"""

import os
import re
import shlex
import socket
import stat
import subprocess

LOOPBACK = "127.0.0.1"
JAVA = os.environ.get("JAVA", "java")

# The launcher scripts of the apache/kafka image the kafka role's scripts call, and their main
# classes (apache/kafka docker/jvm/Dockerfile installs the release under /opt/kafka).
KAFKA_SCRIPTS = {
    "kafka-storage.sh": "kafka.tools.StorageTool",
    "kafka-server-start.sh": "kafka.Kafka",
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-metadata-quorum.sh": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    # The roll's Kafka gate reads the finalized metadata.version with it (plugins/module_utils/rolling.py).
    "kafka-features.sh": "org.apache.kafka.tools.FeatureCommand",
    # Kafka's own system tests drive rolling upgrades with it (tests/kafkatest/services/verifiable_producer.py).
    "kafka-verifiable-producer.sh": "org.apache.kafka.tools.VerifiableProducer",
    # The roll test's replication throttle and its bulk traffic (tests/daemons/test_roll_daemons.py).
    "kafka-configs.sh": "org.apache.kafka.tools.ConfigCommand",
    "kafka-producer-perf-test.sh": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-get-offsets.sh": "org.apache.kafka.tools.GetOffsetShell",
}
KAFKA_IMAGE_BIN = "/opt/kafka/bin"
# Fast JVM start on 2 shared cores instead of the image's G1 settings (not rendered by the role).
FAST_JVM_OPTS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true"]

# The apache/hadoop image: apache/hadoop branch docker-hadoop-3, Dockerfile, unpacks the release
# into /opt/hadoop (WORKDIR /opt; mv hadoop* hadoop), adds its log4j.properties to
# /opt/hadoop/etc/hadoop and sets ENV HADOOP_CONF_DIR /opt/hadoop/etc/hadoop; its base image
# (branch docker-hadoop-runner, Dockerfile) runs `useradd --uid 1000 hadoop --home /opt/hadoop`,
# `USER hadoop` and puts /opt/hadoop/bin on PATH. The hdfs role mounts its rendered
# core-site.xml and hdfs-site.xml into that directory (subPath) and calls bin/hdfs.
HADOOP_IMAGE_BIN = "/opt/hadoop/bin"
HADOOP_IMAGE_CONF = "/opt/hadoop/etc/hadoop"
# The image user (uid 1000, "hadoop"): the user that starts the namenode is the HDFS superuser.
HADOOP_IMAGE_USER = "hadoop"
# FAST_JVM_OPTS, and this machine runs Java 17: WebHDFS's JSON goes through JAXB, which defines
# classes with ClassLoader.defineClass by reflection; Java 17 refuses that without this
# --add-opens (Java 8/11 allow or only warn).
HADOOP_JVM_OPTS = FAST_JVM_OPTS + ["--add-opens=java.base/java.lang=ALL-UNNAMED"]
# The image's etc/hadoop/log4j.properties, as far as a console-logging daemon uses it.
HADOOP_IMAGE_LOG4J = """\
hadoop.root.logger=INFO,console
log4j.rootLogger=${hadoop.root.logger}
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
"""
# Subcommands of the image's `hdfs` script the rendered scripts use, and (main class, env var
# with the daemon's JVM options), as in hadoop-hdfs/src/main/bin/hdfs.
HDFS_SUBCOMMANDS = {
    "namenode": ("org.apache.hadoop.hdfs.server.namenode.NameNode", "HDFS_NAMENODE_OPTS"),
    "datanode": ("org.apache.hadoop.hdfs.server.datanode.DataNode", "HDFS_DATANODE_OPTS"),
    "dfs": ("org.apache.hadoop.fs.FsShell", "HADOOP_CLIENT_OPTS"),
    "dfsadmin": ("org.apache.hadoop.hdfs.tools.DFSAdmin", "HADOOP_CLIENT_OPTS"),
}


def path_rewriter(path_map):
    """A function replacing every mapped absolute path prefix in a text, in one pass.

    One pass matters: a mapped target may itself contain a mapped source (/tmp/... for /tmp).
    A prefix matches only as a whole path component, and not in the middle of a longer path.
    """
    if not path_map:
        return lambda text: text
    sources = sorted(path_map, key=len, reverse=True)
    # file:///data/x is a path too (Hadoop's dfs.*.dir settings are file: URIs), and so is
    # local:///opt/spark/x (Spark's URI of a file inside the image), also as java.util.Properties
    # writes it, with ':' escaped: Spark stores the driver's spark.properties that way
    # (KubernetesClientUtils.buildStringFromPropertiesMap), spark.submit.pyFiles included.
    pattern = re.compile(r"(?:(?<=file://)|(?<=local://)|(?<=file\\://)|(?<=local\\://)|(?<![\w./-]))"
                         r"(%s)(?=$|[^\w.-])"
                         % "|".join(re.escape(s) for s in sources))
    return lambda text: pattern.sub(lambda m: path_map[m.group(1)], text)


def write_hosts_file(path, names, own_name=None, own_address=None, own_fqdn=None):
    """A hosts file mapping `names` to addresses: a list maps each to 127.0.0.1 (tests/daemons,
    where every daemon binds loopback); a dict {name: address} maps each to its own address.

    It also maps the pod's own name (this machine's host name when `own_name` is None), which the
    JVMs look up (InetAddress.getLocalHost) in the /etc/hosts the kubelet writes. With
    `own_address` (the pod IP) the file is shaped as the kubelet writes it (kubelet_pods.go,
    managedHostsFileContent): `127.0.0.1 localhost`, then `<pod IP> <fqdn> <hostname>`, the FQDN
    first when the pod has a subdomain, so the pod's own name resolves to its IP and that IP's
    reverse lookup gives the FQDN; without it the own name sits on the loopback line (the daemons
    of tests/daemons all bind 127.0.0.1). The file is rewritten in place (same inode), so a
    bind-mounted copy sees every update.
    """
    if not isinstance(names, dict):
        names = {name: LOOPBACK for name in names}
    own_name = own_name or socket.gethostname()
    if own_address:
        own_names = [name for name in (own_fqdn, own_name) if name]
        lines = ["127.0.0.1 localhost", "%s %s" % (own_address, " ".join(own_names))]
    else:
        own_names = [own_name]
        lines = ["127.0.0.1 localhost %s" % own_name]
    lines += ["%s %s" % (names[name], name) for name in sorted(names) if name not in own_names]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def cluster_dns_names(statefulsets, services, namespace):
    """Names cluster DNS gives: every pod through its headless service, every Service.

    A Service is also reached by its bare name from pods of its own namespace (the search path
    the kubelet writes into resolv.conf), as spark_hdfs_uri hdfs://hdfs-namenode:8020 is.
    """
    names = []
    for sts in statefulsets:
        for ordinal in range(sts["spec"]["replicas"]):
            base = "%s-%d.%s.%s.svc" % (sts["metadata"]["name"], ordinal, sts["spec"]["serviceName"],
                                        namespace)
            names += [base, base + ".cluster.local"]
    for svc in services:
        base = "%s.%s.svc" % (svc["metadata"]["name"], namespace)
        names += [svc["metadata"]["name"], base, base + ".cluster.local"]
    return names


def _make_executable(path):
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def write_shims(directory, classpath, commands, jvm_opts, heap_env, opts_env, log_opts_env,
                log_dir_property=None):
    """Executable stand-ins for the image's launcher scripts.

    `commands` maps a script name (kafka-storage.sh) to its main class. Each shim does what the
    image's launcher does with the environment the pod sets (heap, log4j and extra options, and
    LOG_DIR, which the launcher creates), then starts the class from the Maven Central jars.
    `jvm_opts` replaces the image's GC flags with ones that start fast on a 2-core machine; they
    are not part of what the roles render.
    """
    os.makedirs(directory, exist_ok=True)
    log_dir = ""
    if log_dir_property:
        log_dir = ('log_dir_opt=\nif [ -n "${LOG_DIR:-}" ]; then mkdir -p "$LOG_DIR" && '
                   'log_dir_opt="-D%s=$LOG_DIR"; fi\n' % log_dir_property)
    for name, main_class in commands.items():
        body = (
            "#!/bin/sh\n"
            "# Stand-in for the image's %(name)s (roles/simcluster/files/runtime/podsim.py).\n"
            "set -e\n"
            "%(log_dir)s"
            "exec %(java)s %(jvm)s ${%(heap)s:--Xmx256m} ${%(logopts)s:-} ${%(opts)s:-} %(ldo)s"
            "-cp %(cp)s %(main)s \"$@\"\n"
        ) % dict(name=name, log_dir=log_dir, java=shlex.quote(JAVA), jvm=" ".join(jvm_opts),
                 heap=heap_env, logopts=log_opts_env, opts=opts_env,
                 ldo="${log_dir_opt:-} " if log_dir else "", cp=shlex.quote(classpath),
                 main=main_class)
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(body)
        _make_executable(path)
    return directory


def write_hdfs_shim(directory, classpath):
    """A stand-in for the image's /opt/hadoop/bin/hdfs: same subcommands, same environment.

    Like the real script it puts HADOOP_CONF_DIR first on the class path, takes the daemon's JVM
    options from HDFS_<DAEMON>_OPTS and HADOOP_OPTS, creates HADOOP_LOG_DIR and writes a pid file
    into HADOOP_PID_DIR even in the foreground (both must be writable in the pod). The image runs
    it as its user; here the process runs as this machine's user (root under the node agent), so
    simple authentication gets the image user from HADOOP_USER_NAME unless the pod sets it.
    """
    os.makedirs(directory, exist_ok=True)
    cases = "".join('  %s) main=%s; opts="${%s:-}" ;;\n' % (sub, main, env)
                    for sub, (main, env) in HDFS_SUBCOMMANDS.items())
    body = """#!/bin/sh
# Stand-in for the image's hdfs script (roles/simcluster/files/runtime/podsim.py).
set -e
sub="$1"; shift
case "$sub" in
%(cases)s  *) echo "hdfs stand-in: no subcommand $sub" >&2; exit 2 ;;
esac
conf="${HADOOP_CONF_DIR:?the pods set HADOOP_CONF_DIR}"
log_dir="${HADOOP_LOG_DIR:-/tmp/hadoop-logs}"
mkdir -p "$log_dir"
export HADOOP_USER_NAME="${HADOOP_USER_NAME:-%(user)s}"
case "$sub" in namenode|datanode)
  echo $$ > "${HADOOP_PID_DIR:-/tmp}/hadoop-%(user)s-$sub.pid" ;;
esac
exec %(java)s %(jvm)s $opts ${HADOOP_OPTS:-} -Dproc_$sub -Dhadoop.log.dir="$log_dir" \\
  -Dhadoop.log.file=hadoop-$sub.log -Dhadoop.id.str=%(user)s -Dhadoop.root.logger=INFO,console \\
  -cp "$conf":%(cp)s $main "$@"
""" % dict(cases=cases, user=HADOOP_IMAGE_USER, java=shlex.quote(JAVA),
           jvm=" ".join(HADOOP_JVM_OPTS), cp=shlex.quote(classpath))
    path = os.path.join(directory, "hdfs")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(body)
    _make_executable(path)
    return directory


def write_hadoop_image_conf(directory):
    """The image's configuration directory of one pod (every pod has its own image file system):
    the image's log4j.properties; the pod mounts the rendered *-site.xml files into it (subPath)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "log4j.properties"), "w", encoding="utf-8") as handle:
        handle.write(HADOOP_IMAGE_LOG4J)
    return directory


class PodSandbox:
    """One pod of a rendered workload, ready to run its (first) container's command."""

    def __init__(self, root, pod_spec, pod_name, namespace, configmaps, image_paths,
                 edit_config=None, extra_env=None, container=0, secrets=None,
                 pod_ip=LOOPBACK, node_name="localhost", image_env=None, entrypoint=None,
                 volume_dirs=None):
        """
        pod_spec     the pod template's spec (StatefulSet/Job spec.template.spec)
        configmaps   {name: data} of the rendered ConfigMaps
        secrets      {name: {key: text}} of the Secrets the pod mounts (made by the test)
        image_paths  {path in the image: local directory} (e.g. /opt/kafka/bin -> shims)
        edit_config  f(configmap key, text) -> text: the test's machine-specific overrides,
                     applied to ConfigMap files before the container sees them
        extra_env    environment the pod does not set but this machine needs (JVM DNS file)
        container    index into `containers`, or the name of a container or init container
        pod_ip       status.podIP as env fieldRef sees it
        node_name    spec.nodeName as env fieldRef sees it
        image_env    the image's ENV ({name: value}, paths in the image): the container's env
                     overrides it, as in a container runtime
        entrypoint   the image's ENTRYPOINT (argv): the command of a container that sets none
                     (its args follow), as a container runtime runs it
        volume_dirs  {volume name: local directory} for volumes that live outside the pod's root
                     (a claim's, shared by every pod that mounts it); others are <root>/volumes/<name>
        """
        self.root = root
        self.pod_name = pod_name
        self.namespace = namespace
        if isinstance(container, str):
            every = pod_spec.get("initContainers", []) + pod_spec["containers"]
            matches = [c for c in every if c["name"] == container]
            assert matches, "pod %s has no container %s (has %s)" % (
                pod_name, container, [c["name"] for c in every])
            self.container = matches[0]
        else:
            self.container = pod_spec["containers"][container]
        volume_dirs = volume_dirs or {}
        self.allowed = [root] + list(image_paths.values()) + list(volume_dirs.values())

        def volume_dir(name):
            """Where a volume's files live: its own directory (a claim), else one in the pod's root."""
            return volume_dirs.get(name) or os.path.join(root, "volumes", name)

        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        self.mounts = {}
        path_map = dict(image_paths)
        mounts = self.container.get("volumeMounts", [])
        for mount in mounts:
            if mount.get("subPath"):
                continue  # placed below, once every directory mapping is known
            local = volume_dir(mount["name"])
            os.makedirs(local, exist_ok=True)
            self.mounts[mount["mountPath"]] = local
            path_map[mount["mountPath"]] = local
        # A subPath mount puts one file of a volume at mountPath, often inside a directory of the
        # image (core-site.xml into /opt/hadoop/etc/hadoop): the file goes where that path maps.
        for mount in mounts:
            if mount.get("subPath"):
                target = path_rewriter(path_map)(mount["mountPath"])
                if target == mount["mountPath"]:
                    target = os.path.join(volume_dir(mount["name"]), mount["subPath"])
                self.mounts[mount["mountPath"]] = target
                path_map[mount["mountPath"]] = target
        self.rewrite = path_rewriter(path_map)
        for mount in mounts:
            volume = volumes.get(mount["name"])
            if volume is None:
                continue  # a volumeClaimTemplate: an empty directory, like a new PVC
            if "configMap" in volume or "secret" in volume:
                source = volume.get("configMap") or volume["secret"]
                if "configMap" in volume:
                    data = configmaps[source["name"]]
                else:
                    data = (secrets or {}).get(source["secretName"])
                    if data is None:
                        raise AssertionError("the pod mounts Secret %s: give it to PodSandbox"
                                             % source["secretName"])
                items = source.get("items") or [{"key": key, "path": key} for key in data]
                for item in items:
                    if mount.get("subPath") and item["path"] != mount["subPath"]:
                        continue
                    target = self.mounts[mount["mountPath"]]
                    if not mount.get("subPath"):
                        target = os.path.join(target, item["path"])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    text = data[item["key"]]
                    if "configMap" in volume:
                        text = self.rewrite(edit_config(item["key"], text) if edit_config else text)
                    with open(target, "w", encoding="utf-8") as handle:
                        handle.write(text)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": root,
                    "LANG": "C.UTF-8"}
        self.env.update((name, self.rewrite(str(value))) for name, value in (image_env or {}).items())
        for entry in self.container.get("env", []):
            if "value" in entry:
                self.env[entry["name"]] = self.rewrite(str(entry["value"]))
                continue
            field = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            values = {"metadata.name": pod_name, "metadata.namespace": namespace,
                      "status.podIP": pod_ip, "spec.nodeName": node_name}
            if field not in values:
                raise NotImplementedError("env %s from %s" % (entry["name"], entry.get("valueFrom")))
            self.env[entry["name"]] = values[field]
        self.env.update(extra_env or {})
        command = self.container.get("command") or list(entrypoint or [])
        self.command = [self.rewrite(part) for part in command + self.container.get("args", [])]
        outside = self.paths_outside()
        assert not outside, "pod %s: the command names %s, outside every mount and image path" % (
            pod_name, outside)

    # Absolute paths a command may name without a mount: the shell and the null device.
    HOST_PATHS = ("/bin/sh", "/dev/null")

    def paths_outside(self):
        """Absolute paths in the (rewritten) command that do not lie in the sandbox."""
        found = re.findall(r"(?<![\w.:/@$-])/[\w.-]+(?:/[\w.-]+)*", " ".join(self.command))
        return sorted({p for p in found if p not in self.HOST_PATHS and not any(
            p == base or p.startswith(base.rstrip(os.sep) + os.sep) for base in self.allowed)})

    def volume(self, mount_path):
        """The local directory standing in for `mount_path`."""
        return self.mounts[mount_path]

    def run(self, timeout):
        """Run the container command to completion (a Job's pod); returns the CompletedProcess."""
        try:
            return subprocess.run(self.command, capture_output=True, text=True, timeout=timeout,
                                  check=False, env=self.env, cwd=self.root,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            out = [(o.decode("utf-8", "replace") if isinstance(o, bytes) else o or "")[-3000:]
                   for o in (exc.stdout, exc.stderr)]
            raise AssertionError("pod %s did not finish within %ss:\n%s\n%s" % (
                self.pod_name, timeout, out[0], out[1]))

    def start(self, name=None, log_name="container.log"):
        """Run the container command as a daemon of tests/daemons (its own process group, log in
        the sandbox). The node agent starts containers its own way (in the pod's namespace)."""
        from daemon_support import Daemon  # tests/daemons only: its registry stops leftovers

        return Daemon(name or self.pod_name, self.command, os.path.join(self.root, log_name),
                      env=self.env, cwd=self.root)
