"""Boot the Kafka pods the kafka role renders, as processes on this machine.

Each pod of each rendered StatefulSet runs its own container command (the role's start script:
placeholder substitution, kafka-storage.sh format --ignore-formatted, kafka-server-start.sh) in a
PodSandbox (podsim.py). What has to differ on one machine is changed in the ConfigMap files the
pods mount, by `machine_overrides`, and nowhere else; the JMX exporter agent's port, which the
pod passes in its env, by `_install_agent`.
"""

import importlib.util
import os
import re
import shutil
import subprocess

import jmx_agent
from daemon_support import LOOPBACK, find, free_ports, port_is_free, wait_until
from daemon_tls import tls_secret
from podsim import (FAST_JVM_OPTS as JVM_OPTS, KAFKA_IMAGE_BIN, KAFKA_SCRIPTS, PodSandbox,
                    cluster_dns_names, write_hosts_file, write_shims)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The apache/kafka image's launcher scripts and the JVM options of their shims: podsim.py.
IMAGE_BIN = KAFKA_IMAGE_BIN

_LISTENER = re.compile(r"^(?P<name>[A-Za-z0-9_]+)://(?P<host>[^:,]*):(?P<port>[^,]+)$")
_VOTER = re.compile(r"^(?P<id>\d+)@(?P<host>[^:,]+):(?P<port>\d+)$")
# -javaagent:<jar>=[host:]<port>:<config>, the JMX exporter agent's argument format.
_AGENT = re.compile(r"^-javaagent:(?P<jar>[^=]+)=(?:[^:]+:)?(?P<port>\d+):(?P<config>\S+)$")


def load_health():
    """plugins/module_utils/health.py: the parsers bigdata.stack.wait_ready uses on the tools' output."""
    spec = importlib.util.spec_from_file_location(
        "bigdata_health", os.path.join(REPO, "plugins", "module_utils", "health.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(output):
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def parse_properties(text):
    """{key: value} of a java .properties text as the role renders it (key=value lines)."""
    props = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value
    return props


def set_properties(text, changes):
    """`text` with the values of the keys in `changes` replaced; every other line kept as is."""
    seen = set()
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else None
        if key in changes:
            seen.add(key)
            line = "%s=%s" % (key, changes[key])
        lines.append(line)
    missing = set(changes) - seen
    assert not missing, "the rendered properties have no %s to override" % sorted(missing)
    return "\n".join(lines) + "\n"


class Pod:
    def __init__(self, statefulset, ordinal):
        self.statefulset = statefulset
        self.ordinal = ordinal
        self.name = "%s-%d" % (statefulset["metadata"]["name"], ordinal)
        self.ports = {}      # listener name -> port on 127.0.0.1
        self.metrics_port = None  # the JMX exporter agent's port on 127.0.0.1, when rendered
        self.sandbox = None
        self.daemon = None


class KafkaCluster:
    """The pods of the rendered kafka StatefulSets, ready to boot on 127.0.0.1."""

    def __init__(self, docs, namespace, classpath, root, heap=None, secrets=None, added_properties=None):
        """
        docs       the kafka role's rendered objects for one inventory
        namespace  bigdata_namespace of that inventory (names in the rendered config use it)
        heap       JVM heap options for every node instead of the rendered ones (None: as rendered)
        secrets    {name: {key: text}} of the Secrets the pods mount (the TLS Secret)
        added_properties  {key: value} appended to every server configuration: settings the role
                   does not render, which one test needs (the caller says why); never one it renders
        """
        self.secrets = secrets or {}
        self.added_properties = dict(added_properties or {})
        self.docs = docs
        self.namespace = namespace
        self.root = root
        self.heap = heap
        self.config = find(docs, "ConfigMap", "kafka-config")["data"]
        self.statefulsets = [d for d in docs if d["kind"] == "StatefulSet"]
        self.services = [d for d in docs if d["kind"] == "Service"]
        self.pods = [Pod(sts, i) for sts in self.statefulsets for i in range(sts["spec"]["replicas"])]
        # With kafka_metrics_enabled every pod's init container fetches the JMX exporter agent;
        # it runs for real once (jmx_agent.py), its result is cached and copied into each pod.
        self.agent_jar = None
        if any(jmx_agent.agent_option(sts) for sts in self.statefulsets):
            self.agent_jar = jmx_agent.agent_jar(self.statefulsets[0], namespace,
                                                 os.path.join(root, jmx_agent.INIT_CONTAINER))
        self.bin = write_shims(os.path.join(root, "image-bin"), classpath, KAFKA_SCRIPTS, JVM_OPTS,
                               heap_env="KAFKA_HEAP_OPTS", opts_env="KAFKA_OPTS",
                               log_opts_env="KAFKA_LOG4J_OPTS", log_dir_property="kafka.logs.dir")
        # Cluster DNS: every pod's FQDN through its headless service and every Service name
        # resolve to 127.0.0.1 for the JVMs; the rendered names are used unchanged.
        self.hosts_file = write_hosts_file(
            os.path.join(root, "hosts"),
            cluster_dns_names(self.statefulsets, self.services, namespace))
        self.jvm_env = {"KAFKA_OPTS": "-Djdk.net.hosts.file=" + self.hosts_file}
        # A client outside the cluster knows none of those names: only localhost resolves.
        self.outside_env = {"KAFKA_OPTS": "-Djdk.net.hosts.file=" + write_hosts_file(
            os.path.join(root, "hosts-outside"), [])}
        # A pod owns its IP, so every pod listens on the same rendered ports; here all pods share
        # 127.0.0.1, so each listener of each pod gets a port of its own.
        for pod in self.pods:
            props = parse_properties(self.config[self._config_key(pod)])
            names = [m.group("name") for m in map(_LISTENER.match, props["listeners"].split(","))]
            ports = iter(free_ports(len(names)))
            pod.ports = {name: next(ports) for name in names}
            # A NodePort Service publishes the EXTERNAL listener on the node at its nodePort, the
            # port the start script advertises: here the listener itself binds that port.
            node_port = self.node_port(pod)
            if node_port and "EXTERNAL" in pod.ports:
                assert port_is_free(node_port), (
                    "port %d (the nodePort %s advertises) is in use on this machine: another "
                    "Kafka from these tests running at the same time?" % (node_port, pod.name))
                pod.ports["EXTERNAL"] = node_port
            if jmx_agent.agent_option(pod.statefulset):
                pod.metrics_port = free_ports(1)[0]

    @staticmethod
    def _config_key(pod):
        # The start script reads /etc/kafka/config-template/<component>.properties.
        component = pod.statefulset["metadata"]["name"].replace("kafka-", "", 1)
        return component + ".properties"

    def node_port(self, pod):
        """nodePort of the NodePort Service selecting exactly this pod, if any."""
        for svc in self.services:
            spec = svc["spec"]
            if spec.get("type") == "NodePort" and \
                    spec.get("selector", {}).get("statefulset.kubernetes.io/pod-name") == pod.name:
                return spec["ports"][0]["nodePort"]
        return None

    def service_addresses(self):
        """{rendered "<service>.<ns>.svc:<port>": the same name with the port it has here}.

        A ClusterIP Service forwards its port to the targetPort of a ready pod; here the name
        resolves to 127.0.0.1, so the port has to become that of the first selected pod.
        """
        rewrites = {}
        for svc in self.services:
            if svc["spec"].get("clusterIP") == "None":
                continue
            selector = svc["spec"].get("selector", {})
            pods = [p for p in self.pods if all(
                p.statefulset["spec"]["template"]["metadata"]["labels"].get(k) == v
                for k, v in selector.items() if k != "statefulset.kubernetes.io/pod-name")]
            if not pods:
                continue
            container = pods[0].statefulset["spec"]["template"]["spec"]["containers"][0]
            by_name = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            props = parse_properties(self.config[self._config_key(pods[0])])
            bound = {int(m.group("port")): m.group("name")
                     for m in map(_LISTENER.match, props["listeners"].split(","))}
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                container_port = by_name.get(target, target)
                listener = bound.get(int(container_port))
                if listener:
                    rewrites["%s.%s.svc:%d" % (svc["metadata"]["name"], self.namespace, port["port"])] = \
                        "%s.%s.svc:%d" % (svc["metadata"]["name"], self.namespace, pods[0].ports[listener])
        return rewrites

    def job_sandbox(self, job, root):
        """A PodSandbox for a rendered Job's pod (the topics Job), Service ports mapped."""
        sandbox = PodSandbox(root, job["spec"]["template"]["spec"], job["metadata"]["name"] + "-x",
                             self.namespace, {"kafka-config": self.config}, {IMAGE_BIN: self.bin},
                             extra_env=dict(self.jvm_env), secrets=self.secrets)
        rewrites = self.service_addresses()
        if rewrites:
            pattern = re.compile("|".join(re.escape(k) for k in sorted(rewrites, key=len, reverse=True)))
            sandbox.command = [pattern.sub(lambda m: rewrites[m.group(0)], part)
                               for part in sandbox.command]
        return sandbox

    def pod(self, name):
        return next(p for p in self.pods if p.name == name)

    def _pod_by_host(self, host):
        for pod in self.pods:
            if host.split(".")[0] == pod.name:
                return pod
        raise AssertionError("%s names no rendered pod (%s)" % (host, [p.name for p in self.pods]))

    def machine_overrides(self, pod):
        """edit_config for PodSandbox: the only changes to the rendered files, each with its reason."""
        def edit(key, text):
            if key != self._config_key(pod):
                return text  # log4j2 settings, or the other role's server configuration
            props = parse_properties(text)
            changes = {}
            # Bind to 127.0.0.1 instead of 0.0.0.0 (this machine is shared; nothing listens
            # beyond loopback), on this pod's own ports (see __init__).
            changes["listeners"] = ",".join(
                "%s://%s:%d" % (m.group("name"), LOOPBACK, pod.ports[m.group("name")])
                for m in map(_LISTENER.match, props["listeners"].split(",")))
            # Advertise the same rendered host (still a placeholder the script substitutes) with
            # this pod's port; a placeholder port (@EXTERNAL_PORT@) is left to the start script.
            if "advertised.listeners" in props:
                advertised = []
                for m in map(_LISTENER.match, props["advertised.listeners"].split(",")):
                    port = m.group("port")
                    if not port.startswith("@"):
                        port = str(pod.ports[m.group("name")])
                    advertised.append("%s://%s:%s" % (m.group("name"), m.group("host"), port))
                changes["advertised.listeners"] = ",".join(advertised)
            # Voters keep their rendered ids and host names; the port is the controller port
            # the voter's pod got here.
            for key_name in ("controller.quorum.voters", "controller.quorum.bootstrap.servers"):
                if key_name in props:
                    entries = []
                    for entry in props[key_name].split(","):
                        m = _VOTER.match(entry)
                        host = m.group("host") if m else entry.rsplit(":", 1)[0]
                        port = self._pod_by_host(host).ports["CONTROLLER"]
                        entries.append(("%s@%s:%d" % (m.group("id"), host, port)) if m
                                       else "%s:%d" % (host, port))
                    changes[key_name] = ",".join(entries)
            rendered = sorted(set(self.added_properties) & set(props))
            assert not rendered, "the role renders %s: override it in the inventory, not here" % rendered
            added = "".join("%s=%s\n" % item for item in sorted(self.added_properties.items()))
            return set_properties(text, changes) + added
        return edit

    def sandbox(self, pod):
        """The PodSandbox of `pod` (created once; its data volume survives restarts)."""
        if pod.sandbox is None:
            extra = dict(self.jvm_env)
            if self.heap:
                # Whichever variable the pod passes the server heap in (-Xmx in its value).
                container = pod.statefulset["spec"]["template"]["spec"]["containers"][0]
                heap_vars = [e["name"] for e in container.get("env", []) if "-Xmx" in str(e.get("value"))]
                assert heap_vars, "the kafka container sets no heap (-Xmx) in its env"
                extra.update((name, self.heap) for name in heap_vars)
            pod.sandbox = PodSandbox(
                os.path.join(self.root, pod.name), pod.statefulset["spec"]["template"]["spec"],
                pod.name, self.namespace, {"kafka-config": self.config}, {IMAGE_BIN: self.bin},
                edit_config=self.machine_overrides(pod), extra_env=extra, secrets=self.secrets)
            self._assert_confined(pod)
            self._install_agent(pod)
        return pod.sandbox

    def _install_agent(self, pod):
        """What the init container leaves in the pod, and the agent's port on this machine.

        The jar goes into the pod's emptyDir (the init container's result); the agent binds
        127.0.0.1 on a port of this pod's instead of every address on 9404 (one IP per pod there,
        one shared 127.0.0.1 here). The jar, the rules file and the rest of the option stay as
        rendered.
        """
        option = pod.sandbox.env.get(jmx_agent.AGENT_ENV)
        if option is None:
            return
        match = _AGENT.match(option)
        assert match, "%s=%r is not -javaagent:<jar>=<port>:<config>" % (jmx_agent.AGENT_ENV, option)
        container = pod.statefulset["spec"]["template"]["spec"]["containers"][0]
        metrics = [p["containerPort"] for p in container.get("ports", []) if p["name"] == "metrics"]
        assert metrics == [int(match.group("port"))], (
            "the agent listens on %s, the container port named metrics is %s" % (match.group("port"), metrics))
        assert os.path.isfile(match.group("config")), "the agent's rules %s are not mounted" % match.group("config")
        shutil.copyfile(self.agent_jar, match.group("jar"))
        pod.sandbox.env[jmx_agent.AGENT_ENV] = "-javaagent:%s=%s:%d:%s" % (
            match.group("jar"), LOOPBACK, pod.metrics_port, match.group("config"))

    def metrics_url(self, pod):
        """The JMX exporter agent's /metrics of `pod` on this machine (None without the agent)."""
        return None if pod.metrics_port is None else "http://%s:%d/metrics" % (LOOPBACK, pod.metrics_port)

    def _assert_confined(self, pod):
        """Every directory the node writes lies inside its sandbox (never /var/lib on this host)."""
        sandbox = pod.sandbox
        config = os.path.join(sandbox.volume("/etc/kafka/config-template"), self._config_key(pod))
        with open(config, encoding="utf-8") as handle:
            props = parse_properties(handle.read())
        for key in ("log.dirs", "log.dir", "metadata.log.dir"):
            for path in filter(None, props.get(key, "").split(",")):
                assert path.startswith(sandbox.root + os.sep), \
                    "%s %s=%s is outside the sandbox %s" % (pod.name, key, path, sandbox.root)
        assert sandbox.root in " ".join(sandbox.command), "the start script writes outside the sandbox"

    def start(self, group):
        """Start every pod; the pods of one StatefulSet form one wave of `group`."""
        previous = None
        for pod in self.pods:
            pod.daemon = group.add(self.sandbox(pod).start(),
                                   new_wave=pod.statefulset is not previous)
            previous = pod.statefulset
        return self

    def daemons(self):
        return [p.daemon for p in self.pods if p.daemon]

    def bootstrap(self, listener="INTERNAL"):
        """host:port of every broker on `listener`, with the rendered pod host names."""
        out = []
        for pod in self.pods:
            if listener in pod.ports and "broker" in self.roles(pod):
                host = "%s.%s.%s.svc" % (pod.name, pod.statefulset["spec"]["serviceName"],
                                         self.namespace)
                out.append("%s:%d" % (host, pod.ports[listener]))
        return ",".join(out)

    def roles(self, pod):
        return parse_properties(self.config[self._config_key(pod)])["process.roles"].split(",")

    def tool_env(self, extra=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "KAFKA_LOG4J_OPTS": "-Dlog4j2.configurationFile=" + self.log4j_file()}
        env.update(self.jvm_env)
        env.update(extra or {})
        return env

    def log4j_file(self):
        """The role's logging settings for command-line tools (warnings to the console)."""
        path = os.path.join(self.root, "tools-log4j2.properties")
        if not os.path.exists(path):
            text = self.config.get("tools-log4j2.properties") or self.config["log4j2.properties"]
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return path

    def tool(self, script, *args, input_text=None, timeout=120, env=None):
        """Run one of the image's Kafka scripts (a shim) with the cluster's DNS."""
        try:
            return subprocess.run([os.path.join(self.bin, script), *args], capture_output=True,
                                  text=True, timeout=timeout, check=False, input=input_text,
                                  env=self.tool_env(env), start_new_session=True,
                                  stdin=None if input_text is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError("%s %s did not finish within %ss:\n%s\n%s" % (
                script, " ".join(args), timeout, _text(exc.stdout)[-3000:], _text(exc.stderr)[-3000:]))

    def in_pod(self, pod, address):
        """What host:port `address` reaches from inside `pod`, as host:port on this machine."""
        host, port = address.rsplit(":", 1)
        rewritten = self.service_addresses().get(address)
        if rewritten:
            return rewritten
        target = pod if host in ("localhost", "127.0.0.1") else self._pod_by_host(host)
        props = parse_properties(self.config[self._config_key(target)])
        for m in map(_LISTENER.match, props["listeners"].split(",")):
            if m.group("port") == port:
                return "%s:%d" % (host, target.ports[m.group("name")])
        return "%s:%d" % (host, free_ports(1)[0])  # nothing listens there in the pod either

    def wait_healthy(self, health, bootstrap, min_brokers, timeout=180, command_config=None,
                     pod=None):
        """Poll the way bigdata.stack.wait_ready does (same commands, same parser) until healthy.

        With `pod`, the tools run with that pod's environment, as `kubectl exec` runs them.
        """
        quorum_cmd, brokers_cmd = health.kafka_commands(self.bin, bootstrap,
                                                        command_config=command_config)
        env = pod.sandbox.env if pod else None
        state = {}

        def healthy():
            quorum = self._run(quorum_cmd, env)
            brokers = self._run(brokers_cmd, env)
            state["result"] = health.kafka_health(quorum.stdout, brokers.stdout, min_brokers)
            state["output"] = (quorum.stdout + quorum.stderr + brokers.stderr)[-1500:]
            return state["result"]["ok"] and state
        try:
            return wait_until(healthy, "a KRaft leader and %d brokers" % min_brokers, timeout,
                              daemons=self.daemons(), interval=2)
        except AssertionError as exc:
            raise AssertionError("%s\nlast health: %s\n%s"
                                 % (exc, state.get("result"), state.get("output")))

    def _run(self, cmd, env=None):
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False,
                              env=env or self.tool_env(), stdin=subprocess.DEVNULL,
                              start_new_session=True)


def stage_tls_cluster(docs, namespace, tls_secret_name, classpath, root, added_properties=None):
    """stage's Kafka (rendered `docs`) with the TLS Secret its inventory names made here for every
    name the pods and Services have, and a client.properties that trusts its CA; not started.
    Heaps are 64m/256m instead of the rendered 512m/1g: six JVMs on a shared 2-core machine.
    added_properties: KafkaCluster's."""
    names = cluster_dns_names([d for d in docs if d["kind"] == "StatefulSet"],
                              [d for d in docs if d["kind"] == "Service"], namespace)
    secret = tls_secret(names)
    cluster = KafkaCluster(docs, namespace, classpath, root, heap="-Xms64m -Xmx256m",
                           secrets={tls_secret_name: secret}, added_properties=added_properties)
    ca_file = os.path.join(root, "ca.crt")
    with open(ca_file, "w", encoding="utf-8") as handle:
        handle.write(secret["ca.crt"])
    client_config = os.path.join(root, "client.properties")
    with open(client_config, "w", encoding="utf-8") as handle:
        handle.write("security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n" % ca_file)
    return cluster, client_config
