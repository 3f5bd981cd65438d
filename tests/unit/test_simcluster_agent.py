# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""The simulated cluster's node agent (roles/simcluster/files/runtime/agent.py), without a cluster:
which pods it owns, its httpGet probe, its image stand-ins and its `fetch` action."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = os.path.join(ROOT, "roles", "simcluster", "files", "runtime")
sys.path.insert(0, RUNTIME)
import agent  # noqa: E402
import podsim  # noqa: E402


def role_pattern(images):
    """simcluster_runtime_pattern as roles/simcluster/tasks/main.yml builds it (regex_escape, join)."""
    return r"^(.+/)?(%s)(:[^/@]*)?(@.*)?$" % "|".join(re.escape(i) for i in images)


def role_default_images():
    with open(os.path.join(ROOT, "roles", "simcluster", "defaults", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["simcluster_runtime_images"]


def pod(*images, init=()):
    return {"spec": {"containers": [{"name": "c%d" % i, "image": image} for i, image in enumerate(images)],
                     "initContainers": [{"name": "i%d" % i, "image": image} for i, image in enumerate(init)]}}


def test_every_default_image_has_a_stand_in_and_the_argument_spec_allows_exactly_those():
    with open(os.path.join(ROOT, "roles", "simcluster", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]["simcluster_runtime_images"]
    assert set(role_default_images()) <= set(agent.IMAGES) == set(spec["choices"])
    assert spec["default"] == role_default_images()


def test_the_hdfs_roles_pods_are_the_agents_and_a_foreign_container_leaves_the_pod_to_kwok():
    matcher = agent.ImageMatcher(role_pattern(role_default_images()))
    # The hdfs role renders apache/hadoop:<hdfs_image_tag>, with bigdata_image_registry as a prefix.
    for image in ("apache/hadoop:3.4.3", "mirror:5000/apache/hadoop:3.4.3", "apache/hadoop@sha256:ab"):
        assert matcher.repository(image) == "apache/hadoop", image
        assert matcher.owned(pod(image))
    assert matcher.owned(pod("apache/kafka:4.4.0", "apache/hadoop:3.4.3"))
    assert not matcher.owned(pod("apache/hadoop:3.4.3", "busybox:1"))
    assert not matcher.owned(pod("apache/hadoop:3.4.3", init=["busybox:1"]))
    assert not matcher.owned(pod("apache/hadoop-runner:latest"))
    # A cluster created with the Kafka image only leaves HDFS to kwok.
    assert not agent.ImageMatcher(role_pattern(["apache/kafka"])).owned(pod("apache/hadoop:3.4.3"))


def test_the_hadoop_stand_in_serves_the_subcommands_of_the_rendered_scripts(tmp_path):
    info = agent.IMAGES["apache/hadoop"]
    assert info["bin"] == "/opt/hadoop/bin" and info["scripts"] == ["hdfs"]
    shim = os.path.join(info["write_bin"](str(tmp_path / "bin"), "/nonexistent.jar"), "hdfs")
    text = open(shim, encoding="utf-8").read()
    for sub, (main_class, opts_env) in podsim.HDFS_SUBCOMMANDS.items():
        assert "%s) main=%s; opts=\"${%s:-}\"" % (sub, main_class, opts_env) in text
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in text
    env = dict(os.environ, HADOOP_CONF_DIR=str(tmp_path))
    unknown = subprocess.run([shim, "balancer"], capture_output=True, text=True, env=env, check=False)
    assert unknown.returncode == 2 and "no subcommand balancer" in unknown.stderr
    no_conf = subprocess.run([shim, "namenode"], capture_output=True, text=True, check=False,
                             env={k: v for k, v in os.environ.items() if k != "HADOOP_CONF_DIR"})
    assert no_conf.returncode != 0 and "HADOOP_CONF_DIR" in no_conf.stderr
    # The image's configuration directory, per pod: the image's log4j.properties.
    conf = info["pod_dirs"][podsim.HADOOP_IMAGE_CONF](str(tmp_path / "conf"))
    assert open(os.path.join(conf, "log4j.properties"), encoding="utf-8").read() == podsim.HADOOP_IMAGE_LOG4J


def test_the_kafka_stand_ins_are_unchanged_by_the_table(tmp_path):
    info = agent.IMAGES["apache/kafka"]
    directory = info["write_bin"](str(tmp_path / "bin"), "/nonexistent.jar")
    assert sorted(os.listdir(directory)) == sorted(podsim.KAFKA_SCRIPTS) == info["scripts"]
    text = open(os.path.join(directory, "kafka-server-start.sh"), encoding="utf-8").read()
    assert "${KAFKA_HEAP_OPTS:--Xmx256m}" in text and "-Dkafka.logs.dir=$LOG_DIR" in text and "kafka.Kafka" in text


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        codes = {"/ok": 200, "/moved": 302, "/broken": 500}
        if self.path == "/header" and self.headers.get("X-Probe") == "yes":
            code = 200
        else:
            code = codes.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_get_probe_passes_from_200_to_399_like_the_kubelet(http_port):
    def probe(path, **extra):
        return agent.http_probe(dict({"path": path}, **extra), "127.0.0.1", http_port, 2)
    assert probe("/ok") and probe("/moved")
    assert not probe("/broken") and not probe("/missing")
    assert not probe("/header") and probe("/header", httpHeaders=[{"name": "X-Probe", "value": "yes"}])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert not agent.http_probe({"path": "/"}, "127.0.0.1", closed, 2)


def test_fetch_names_an_image_without_a_stand_in(capsys):
    assert agent.main(["fetch", "--fetch-dir=" + os.path.join(ROOT, "tools", "daemons"),
                       "--image=apache/hadoop", "--image=apache/zookeeper"]) == 2
    assert "apache/zookeeper" in capsys.readouterr().err


@pytest.mark.parametrize("argv, missing", [
    (["fetch", "--image=apache/hadoop"], "--fetch-dir"),
    (["stop", "--cluster=x", "--cidr=10.0.0.0/24"], "--state-dir"),
    (["start", "--cluster=x", "--state-dir=/tmp/x", "--cidr=10.0.0.0/24"], "--kubeconfig"),
])
def test_each_action_names_the_flags_it_lacks(argv, missing, capsys):
    with pytest.raises(SystemExit):
        agent.main(argv)
    assert missing in capsys.readouterr().err


# `ip -o -4 route show` of this machine after a killed test run left the agent of cluster
# rts-9bafab (its bridge bds-br-cc42bf) on 10.211.0.0/24: the next cluster on that range got a
# bridge of its own on it, the machine sent to the first, and every probe of its pods was refused.
ROUTES = """default via 172.17.0.1 dev eth0
10.211.0.0/24 dev bds-br-cc42bf proto kernel scope link src 10.211.0.1
10.213.0.0/24 dev bds-br-%s proto kernel scope link src 10.213.0.1
10.216.0.0/16 dev eth1 proto kernel scope link src 10.216.3.4
172.17.0.0/16 dev eth0 proto kernel scope link src 172.17.0.2
""" % agent.short_hash("bigdata-sim", 6)


@pytest.mark.parametrize("cidr, taken", [
    ("10.211.0.0/24", [("10.211.0.0/24", "bds-br-cc42bf", "rts-9bafab")]),
    ("10.211.0.128/25", [("10.211.0.0/24", "bds-br-cc42bf", "rts-9bafab")]),
    ("10.216.7.0/24", [("10.216.0.0/16", "eth1", None)]),
    ("10.213.0.0/24", []),  # the cluster's own bridge, as when make up runs again
    ("10.214.0.0/24", []),  # the default route overlaps everything and counts for nothing
])
def test_a_pod_range_another_device_routes_is_taken(cidr, taken, tmp_path):
    network = agent.Network("bigdata-sim", cidr, str(tmp_path))
    assert network.taken_by_others(ROUTES.splitlines(), ["bigdata-sim", "rts-9bafab", "rts-0"]) == taken


def test_check_names_the_cluster_whose_bridge_holds_the_range_and_the_way_out(tmp_path, monkeypatch, capsys):
    (tmp_path / "rts-9bafab").mkdir()  # the agents' state directories: <cache>/runtime/<cluster>
    monkeypatch.setattr(agent, "run", lambda cmd, check=True: subprocess.CompletedProcess(cmd, 0, ROUTES, ""))
    argv = ["--cluster=rts-03e244", "--state-dir=%s" % (tmp_path / "rts-03e244"), "--cidr=10.211.0.0/24"]
    assert agent.main(["check"] + argv) == 1
    message = capsys.readouterr().err
    for part in ("10.211.0.0/24 through bds-br-cc42bf", "simulated cluster rts-9bafab", "simcluster_runtime_cidr",
                 "make sim-down SIM_NAME=rts-9bafab"):
        assert part in message, message
    # start says the same and starts nothing: no state directory, no agent.
    assert agent.main(["start", "--kubeconfig=/nowhere", "--image=apache/spark", "--image-pattern=x",
                       "--fetch-dir=/nowhere"] + argv) == 1
    assert "simulated cluster rts-9bafab" in capsys.readouterr().err
    assert not (tmp_path / "rts-03e244").exists()
    assert agent.main(["check"] + argv[:2] + ["--cidr=10.214.0.0/24"]) == 0


def test_the_pods_hosts_file_is_shaped_as_the_kubelet_writes_it(tmp_path):
    names = {"hdfs-namenode-0.hdfs-namenode-headless.ns.svc": "10.0.0.2",
             "hdfs-namenode-0.hdfs-namenode-headless.ns.svc.cluster.local": "10.0.0.2",
             "kafka": "10.0.0.3"}
    fqdn = "hdfs-namenode-0.hdfs-namenode-headless.ns.svc.cluster.local"
    path = podsim.write_hosts_file(str(tmp_path / "hosts"), names, own_name="hdfs-namenode-0",
                                   own_address="10.0.0.2", own_fqdn=fqdn)
    lines = open(path, encoding="utf-8").read().splitlines()
    # The pod's own name on its IP, the FQDN first (what the IP's reverse lookup answers); no
    # name of the pod's on the loopback line.
    assert lines[:2] == ["127.0.0.1 localhost", "10.0.0.2 %s hdfs-namenode-0" % fqdn]
    assert lines[2:] == ["10.0.0.2 hdfs-namenode-0.hdfs-namenode-headless.ns.svc", "10.0.0.3 kafka"]
    # tests/daemons: every daemon on loopback, the machine's name with them.
    lines = open(podsim.write_hosts_file(str(tmp_path / "h2"), ["a"], own_name="me"),
                 encoding="utf-8").read().splitlines()
    assert lines == ["127.0.0.1 localhost me", "127.0.0.1 a"]


@pytest.mark.skipif(os.geteuid() != 0, reason="a UTS namespace needs root (so does the node agent)")
def test_a_pods_processes_see_the_pods_host_name():
    argv = agent.in_pod("bds-x", "hdfs-namenode-0", ["hostname"])
    assert argv[:4] == ["ip", "netns", "exec", "bds-x"]
    # The rest runs as is without the network namespace: the pod's name, not this machine's.
    out = subprocess.run(argv[4:], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "hdfs-namenode-0" != socket.gethostname()


def test_kubectl_exec_dispatchers_enter_the_pod_for_every_image(tmp_path):
    fake = type("Agent", (), {"state_dir": str(tmp_path)})()
    agent.Agent.write_dispatchers(fake)
    for info in agent.IMAGES.values():
        directory = tmp_path / "exec-bin" / info["bin"].split("/")[2]
        assert sorted(os.listdir(directory)) == sorted(info["scripts"])
        for script in info["scripts"]:
            text = (directory / script).read_text(encoding="utf-8")
            assert ('exec ip netns exec "$BDS_NETNS" unshare --uts -- /bin/sh -c \'%s\' "$BDS_HOSTNAME" '
                    '"$BDS_IMAGE_BIN/%s" "$@"' % (agent.SET_HOSTNAME, script)) in text, text
    assert os.access(tmp_path / "exec-bin" / "hadoop" / "hdfs", os.X_OK)


# The pods' mirror of Maven Central (agent.MavenMirror): an upstream of the test's own stands in
# for Maven Central, so what is fetched, cached and refused is seen without the network.

@pytest.fixture
def upstream(tmp_path):
    """A Maven repository over HTTP with one artifact; its request log."""
    root = tmp_path / "upstream"
    jar = root / "io" / "prometheus" / "jmx" / "agent" / "1.0.1" / "agent-1.0.1.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK\x03\x04 the agent")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, fmt, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % server.server_address[1], requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def mirror(upstream, tmp_path):
    served = agent.MavenMirror("127.0.0.1", 0, str(tmp_path / "cache"), upstream=upstream[0])
    served.start()
    yield served
    served.close()


def get(url):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_mirror_fetches_an_artifact_once_and_serves_it_from_its_cache(mirror, upstream, tmp_path):
    path = "/io/prometheus/jmx/agent/1.0.1/agent-1.0.1.jar"
    assert get(mirror.url + path) == (200, b"PK\x03\x04 the agent")
    assert get(mirror.url + path) == (200, b"PK\x03\x04 the agent")
    assert upstream[1] == [path], "fetched from upstream once, then from the cache"
    assert (tmp_path / "cache" / path.lstrip("/")).read_bytes() == b"PK\x03\x04 the agent"


def test_the_mirror_answers_head_as_ivy_asks_it(mirror, upstream):
    """Spark's Ivy 2.5.3 checks an artifact with HEAD before it downloads it (AbstractURLHandler's
    default request method): the same status and length as GET, no body."""
    import urllib.request
    path = "/io/prometheus/jmx/agent/1.0.1/agent-1.0.1.jar"
    with urllib.request.urlopen(urllib.request.Request(mirror.url + path, method="HEAD"), timeout=10) as response:
        assert (response.status, response.headers["Content-Length"], response.read()) == (200, "14", b"")
    request = urllib.request.Request(mirror.url + "/io/prometheus/jmx/agent/9.9.9/agent-9.9.9.jar", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=10)
    assert missing.value.code == 404
    # HEAD pulled the file through: GET answers it from the cache.
    assert get(mirror.url + path) == (200, b"PK\x03\x04 the agent") and upstream[1].count(path) == 1


@pytest.mark.parametrize("path,status", [
    ("/maven2/io/prometheus/jmx/agent/9.9.9/agent-9.9.9.jar", 404),  # upstream has no such file
    ("/maven2/io/../../../etc/passwd/x", 404),                       # climbs out of the repository
    ("/etc/passwd", 404),                                            # not a repository path
    ("/maven2/agent.jar", 404),                                      # no group/artifact/version
], ids=["missing", "climbing", "not-maven", "too-short"])
def test_the_mirror_serves_only_what_upstream_has_under_maven_paths(mirror, path, status, tmp_path):
    base = mirror.url[:-len("/maven2")]
    assert get(base + path)[0] == status
    cached = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / "cache") for f in files]
    assert cached == [], cached


def test_a_container_without_a_command_runs_the_image_entrypoint_with_its_args(tmp_path):
    """Spark's driver and executor pods set only args (driver ..., executor): the image's
    ENTRYPOINT runs them, with the image's ENV under the container's env."""
    spec = {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.2.0",
                            "args": ["driver", "--properties-file", "/opt/spark/conf/spark.properties",
                                     "local:///opt/spark/examples/src/main/python/pi.py", "8"],
                            "env": [{"name": "SPARK_CONF_DIR", "value": "/opt/spark/conf"},
                                    {"name": "SPARK_DRIVER_BIND_ADDRESS",
                                     "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                            "volumeMounts": [{"name": "spark-conf-volume-driver", "mountPath": "/opt/spark/conf"}]}],
            "volumes": [{"name": "spark-conf-volume-driver", "configMap": {"name": "conf"}}]}
    home, entrypoint = str(tmp_path / "spark"), str(tmp_path / "entrypoint.sh")
    box = podsim.PodSandbox(str(tmp_path / "pod"), spec, "pi-driver", "ns", {"conf": {"spark.properties": "a=b\n"}},
                            {"/opt/spark": home, "/opt/entrypoint.sh": entrypoint}, pod_ip="10.0.0.9",
                            image_env={"SPARK_HOME": "/opt/spark"}, entrypoint=["/opt/entrypoint.sh"])
    conf = box.volume("/opt/spark/conf")
    assert box.command == [entrypoint, "driver", "--properties-file", conf + "/spark.properties",
                           "local://" + home + "/examples/src/main/python/pi.py", "8"]
    assert box.env["SPARK_HOME"] == home and box.env["SPARK_CONF_DIR"] == conf
    assert box.env["SPARK_DRIVER_BIND_ADDRESS"] == "10.0.0.9"
    # A command given in the pod replaces the entrypoint, as in Kubernetes.
    spec["containers"][0]["command"] = ["/opt/spark/bin/spark-class"]
    box = podsim.PodSandbox(str(tmp_path / "pod2"), spec, "p", "ns", {"conf": {}},
                            {"/opt/spark": home, "/opt/entrypoint.sh": entrypoint}, entrypoint=["/opt/entrypoint.sh"])
    assert box.command[0] == home + "/bin/spark-class" and box.command[1] == "driver"


def test_a_claim_is_one_directory_whichever_pod_mounts_it(tmp_path):
    spec = {"containers": [{"name": "c", "image": "apache/spark:4.2.0", "command": ["/opt/spark/bin/x"],
                            "volumeMounts": [{"name": "events", "mountPath": "/opt/spark/events"}]}],
            "volumes": [{"name": "events", "persistentVolumeClaim": {"claimName": "spark-events"}}]}
    claim = str(tmp_path / "claims" / "ns" / "spark-events")
    boxes = [podsim.PodSandbox(str(tmp_path / name), spec, name, "ns", {}, {"/opt/spark": str(tmp_path / "home")},
                               volume_dirs={"events": claim}) for name in ("driver", "history")]
    assert [b.volume("/opt/spark/events") for b in boxes] == [claim, claim] and os.path.isdir(claim)


class _FakeApi:
    def __init__(self):
        from kubernetes.client import exceptions
        self.exceptions = exceptions
        self.tokens = []

    def token(self, namespace, account, audience, seconds, pod_name, pod_uid):
        self.tokens.append((namespace, account, audience, seconds, pod_name, pod_uid))
        return "token-of-" + account

    def configmap(self, namespace, name):
        if name != "kube-root-ca.crt":
            raise self.exceptions.ApiException(status=404)
        return {"data": {"ca.crt": "CA"}}


def test_the_service_account_volume_is_projected_as_the_kubelet_writes_it(tmp_path):
    """The ServiceAccount admission plugin's kube-api-access volume: a token bound to the pod (the
    TokenRequest API), the cluster CA and the namespace."""
    api = _FakeApi()
    runner = agent.PodRunner.__new__(agent.PodRunner)
    runner.agent = type("Agent", (), {"api": api})()
    runner.pod = {"metadata": {"name": "pi-driver", "namespace": "ns", "uid": "u1"},
                  "spec": {"serviceAccountName": "spark-driver", "nodeName": "n1"}}
    projected = {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"configMap": {"name": "absent", "optional": True}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    runner.project(projected, str(tmp_path))
    assert {name: (tmp_path / name).read_text() for name in os.listdir(tmp_path)} == {
        "token": "token-of-spark-driver", "ca.crt": "CA", "namespace": "ns"}
    assert api.tokens == [("ns", "spark-driver", None, 3607, "pi-driver", "u1")]
    # A ConfigMap that is not optional and not there yet: the kubelet waits (mounted_sandbox).
    with pytest.raises(api.exceptions.ApiException):
        runner.project({"sources": [{"configMap": {"name": "absent"}}]}, str(tmp_path / "x"))


def test_the_spark_entrypoint_stand_in_gives_the_driver_its_service_account(tmp_path):
    """driver: spark-submit in client mode as the image's entrypoint.sh runs it, with the token and CA
    where the pod mounts them here; executor: KubernetesExecutorBackend with the pod's env."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    echo = home / "bin" / "spark-submit"
    echo.write_text("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n")
    echo.chmod(0o755)
    script = tmp_path / "entrypoint.sh"
    script.write_text(agent.SPARK_ENTRYPOINT % {"java_home": "/usr"})
    script.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "SPARK_DRIVER_BIND_ADDRESS": "10.0.0.9",
           "BDS_SERVICE_ACCOUNT_DIR": "/pods/p/volumes/kube-api-access-x"}
    out = subprocess.run([str(script), "driver", "--properties-file", "/c/spark.properties", "app.py"],
                         capture_output=True, text=True, env=env, check=True).stdout.splitlines()
    assert out == ["--conf", "spark.driver.bindAddress=10.0.0.9", "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.0.0.9",
                   "--conf", "spark.kubernetes.authenticate.driver.mounted.oauthTokenFile=/pods/p/volumes/kube-api-access-x/token",
                   "--conf", "spark.kubernetes.authenticate.driver.mounted.caCertFile=/pods/p/volumes/kube-api-access-x/ca.crt",
                   "--deploy-mode", "client", "--properties-file", "/c/spark.properties", "app.py"]
    passed = subprocess.run([str(script), "echo", "through"], capture_output=True, text=True, env=env, check=True)
    assert passed.stdout == "through\n"



def test_the_api_relay_carries_both_ways_and_passes_the_end_on():
    """kubernetes.default.svc:443 for the pods: bytes both ways, and a half-close reaches the other
    side (TLS close_notify aside, an HTTP/1.0 answer ends that way)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def upper():
        conn, _ = server.accept()
        with conn:
            while True:
                data = conn.recv(100)
                if not data:
                    break
                conn.sendall(data.upper())
    threading.Thread(target=upper, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = agent.ApiRelay("127.0.0.1", server.getsockname(), port=port)
    relay.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"get /api")
            client.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                data = client.recv(100)
                if not data:
                    break
                answer += data
        assert answer == b"GET /API"
    finally:
        relay.close()
        server.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("local:///opt/spark/app/x.py", "local:///sb/spark/app/x.py"),
    # Spark writes the driver's spark.properties with java.util.Properties.store
    # (KubernetesClientUtils.buildStringFromPropertiesMap), which escapes ':' in values.
    ("spark.submit.pyFiles=local\\:///opt/spark/app/x.py,local\\:///opt/spark/app/y.py",
     "spark.submit.pyFiles=local\\:///sb/spark/app/x.py,local\\:///sb/spark/app/y.py"),
    ("dfs.datanode.data.dir=file\\:///opt/spark/data", "dfs.datanode.data.dir=file\\:///sb/spark/data"),
    ("file:///opt/spark", "file:///sb/spark"),
    ("/opt/spark/bin/spark-class", "/sb/spark/bin/spark-class"),
    # Not a path of the image: the prefix inside another path, or a longer name.
    ("/x/opt/spark/a /opt/sparkling", "/x/opt/spark/a /opt/sparkling"),
    ("hdfs:///opt/spark/a", "hdfs:///opt/spark/a"),
])
def test_the_path_rewriter_maps_image_paths_in_plain_and_properties_escaped_uris(text, expected):
    assert podsim.path_rewriter({"/opt/spark": "/sb/spark"})(text) == expected
