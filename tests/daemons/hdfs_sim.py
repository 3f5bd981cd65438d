"""Boot the HDFS pods the hdfs role renders, as processes on this machine.

The namenode and datanode pods run their rendered start scripts (format-when-empty, then
`hdfs namenode`; `hdfs datanode -D dfs.datanode.hostname=...`) in PodSandboxes (podsim.py) with
the rendered hdfs-config files at the paths the image reads them from. What has to differ because
every pod shares 127.0.0.1 here (ports, bind address) is changed in those files by
`machine_overrides`, and nowhere else; the simulated cluster's node agent, which runs the same
pods with podsim.py, needs none of it (each pod has an IP of its own).
"""

import http.client
import os
import re
import subprocess
from urllib.parse import urlsplit

from daemon_support import LOOPBACK, find, free_ports
from podsim import (HADOOP_IMAGE_BIN, HADOOP_IMAGE_CONF, HADOOP_IMAGE_USER, PodSandbox,
                    cluster_dns_names, write_hadoop_image_conf, write_hdfs_shim, write_hosts_file)

# The image's paths and user, the `hdfs` stand-in and the image's log4j.properties are the node
# agent's as well: they live in podsim.py.
IMAGE_BIN = HADOOP_IMAGE_BIN
IMAGE_CONF = HADOOP_IMAGE_CONF
IMAGE_USER = HADOOP_IMAGE_USER

_PROPERTY = re.compile(r"(<name>(?P<name>[^<]+)</name>\s*<value>)(?P<value>[^<]*)(</value>)")


def xml_properties(text):
    """{name: value} of a Hadoop *-site.xml as the role renders it."""
    return {m.group("name"): m.group("value") for m in _PROPERTY.finditer(text)}


def set_xml_properties(text, changes):
    """`text` with the values of the properties in `changes` replaced, all else byte for byte."""
    seen = set()

    def replace(match):
        name = match.group("name")
        if name not in changes:
            return match.group(0)
        seen.add(name)
        return match.group(1) + str(changes[name]) + match.group(4)
    text = _PROPERTY.sub(replace, text)
    missing = set(changes) - seen
    assert not missing, "the rendered XML has no %s to override" % sorted(missing)
    return text


class HdfsCluster:
    """The pods of the rendered hdfs StatefulSets, ready to boot on 127.0.0.1."""

    def __init__(self, docs, namespace, classpath, root, heap=None):
        """heap: JVM heap options for every daemon instead of the rendered -Xms/-Xmx (None: as rendered)."""
        self.namespace = namespace
        self.root = root
        self.heap = heap
        self.config = find(docs, "ConfigMap", "hdfs-config")["data"]
        self.namenode_sts = find(docs, "StatefulSet", "hdfs-namenode")
        self.datanode_sts = find(docs, "StatefulSet", "hdfs-datanode")
        self.services = [d for d in docs if d["kind"] == "Service"]
        self.bin = write_hdfs_shim(os.path.join(root, "image-bin"), classpath)
        self.hosts = cluster_dns_names([self.namenode_sts, self.datanode_sts], self.services,
                                       namespace)
        self.hosts_file = write_hosts_file(os.path.join(root, "hosts"), self.hosts)
        # A pod owns its IP, so each daemon listens on the rendered ports; here all pods share
        # 127.0.0.1, so each gets ports of its own.
        rpc, http_port = free_ports(2)
        self.namenode_ports = {"rpc": rpc, "http": http_port}
        self.datanode_ports = [dict(zip(("data", "http", "ipc"), free_ports(3)))
                               for _ in range(self.datanode_sts["spec"]["replicas"])]
        self.sandboxes = {}

    @property
    def namenode_host(self):
        return "hdfs-namenode-0.%s.%s.svc" % (self.namenode_sts["spec"]["serviceName"], self.namespace)

    def machine_overrides(self, datanode_ordinal=0):
        """edit_config for PodSandbox: the only changes to the rendered files, with the reasons."""
        dn_ports = self.datanode_ports[datanode_ordinal] if self.datanode_ports else {}
        nn = self.namenode_ports

        def with_port(address, port):
            return "%s:%d" % (address.rsplit(":", 1)[0], port)

        def edit(key, text):
            props = xml_properties(text)
            changes = {}
            if key == "core-site.xml":
                # Same namenode host name (resolved to 127.0.0.1), this machine's RPC port.
                url = urlsplit(props["fs.defaultFS"])
                changes["fs.defaultFS"] = "hdfs://%s:%d" % (url.hostname, nn["rpc"])
            elif key == "hdfs-site.xml":
                # The addresses the namenode is reached at keep their host name; ports are the
                # ones the namenode pod got here.
                for prop, port in (("dfs.namenode.rpc-address", nn["rpc"]),
                                   ("dfs.namenode.http-address", nn["http"])):
                    changes[prop] = with_port(props[prop], port)
                # Bind to loopback instead of 0.0.0.0: nothing listens beyond 127.0.0.1 here.
                for bind_host in ("dfs.namenode.rpc-bind-host", "dfs.namenode.servicerpc-bind-host",
                                  "dfs.namenode.http-bind-host"):
                    if bind_host in props:
                        changes[bind_host] = LOOPBACK
                # The datanode's listeners: loopback, and this datanode pod's ports.
                for prop, name in (("dfs.datanode.address", "data"),
                                   ("dfs.datanode.http.address", "http"),
                                   ("dfs.datanode.ipc.address", "ipc")):
                    if prop in props and dn_ports:
                        changes[prop] = "%s:%d" % (LOOPBACK, dn_ports[name])
            return set_xml_properties(text, changes) if changes else text
        return edit

    def service_addresses(self):
        """{"<service>:<port>" as clients in the namespace write it: the address it has here}.

        A ClusterIP Service of the namenode forwards its ports to the namenode pod's rpc/http
        ports (kube-proxy); here the name resolves to 127.0.0.1, so the port becomes the one the
        namenode got on this machine. Both the bare and the namespaced name are mapped.
        """
        labels = self.namenode_sts["spec"]["template"]["metadata"]["labels"]
        container = self.namenode_sts["spec"]["template"]["spec"]["containers"][0]
        by_name = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        local = {by_name[name]: port for name, port in self.namenode_ports.items()}
        rewrites = {}
        for svc in self.services:
            spec = svc["spec"]
            selector = spec.get("selector", {})
            if spec.get("clusterIP") == "None" or not selector or \
                    any(labels.get(k) != v for k, v in selector.items()):
                continue
            for port in spec["ports"]:
                target = port.get("targetPort", port["port"])
                target = by_name.get(target, target)
                if target in local:
                    for host in (svc["metadata"]["name"],
                                 "%s.%s.svc" % (svc["metadata"]["name"], self.namespace)):
                        rewrites["%s:%d" % (host, port["port"])] = "%s:%d" % (host, local[target])
        return rewrites

    def _sandbox(self, sts, ordinal):
        name = "%s-%d" % (sts["metadata"]["name"], ordinal)
        if name not in self.sandboxes:
            root = os.path.join(self.root, name)
            # The image's configuration directory, per pod (every pod has its own image file
            # system); the pod mounts the rendered files into it (subPath).
            conf = write_hadoop_image_conf(os.path.join(root, "image-etc-hadoop"))
            # The JVMs resolve cluster DNS names through this file (the agent's pods: /etc/hosts).
            extra = {"HADOOP_OPTS": "-Djdk.net.hosts.file=" + self.hosts_file}
            if self.heap:
                extra["HDFS_NAMENODE_OPTS" if sts is self.namenode_sts else "HDFS_DATANODE_OPTS"] = self.heap
            edit = self.machine_overrides(ordinal if sts is self.datanode_sts else 0)
            sandbox = PodSandbox(root, sts["spec"]["template"]["spec"], name, self.namespace,
                                 {"hdfs-config": self.config}, {IMAGE_BIN: self.bin, IMAGE_CONF: conf},
                                 edit_config=edit, extra_env=extra)
            self._assert_confined(sandbox, conf, "dfs.namenode.name.dir" if sts is self.namenode_sts
                                  else "dfs.datanode.data.dir")
            self.sandboxes[name] = sandbox
        return self.sandboxes[name]

    @staticmethod
    def _assert_confined(sandbox, conf, data_dir_property):
        """The directories the daemon writes lie inside its sandbox (never /data on this host)."""
        assert sandbox.env.get("HADOOP_CONF_DIR") == conf, sandbox.env.get("HADOOP_CONF_DIR")
        for key in ("core-site.xml", "hdfs-site.xml"):
            with open(os.path.join(conf, key), encoding="utf-8") as handle:
                props = xml_properties(handle.read())
            for prop in (data_dir_property, "hadoop.tmp.dir"):
                for value in filter(None, props.get(prop, "").split(",")):
                    path = value[len("file://"):] if value.startswith("file://") else value
                    assert path.startswith(sandbox.root + os.sep), \
                        "%s %s=%s is outside the sandbox %s" % (key, prop, value, sandbox.root)

    def namenode(self):
        return self._sandbox(self.namenode_sts, 0)

    def datanode(self, ordinal=0):
        return self._sandbox(self.datanode_sts, ordinal)

    # ---------------------------------------------------------------- HTTP with cluster DNS

    def _resolve(self, host):
        return LOOPBACK if host in self.hosts or host in ("localhost", LOOPBACK) else host

    def request(self, method, url, body=None, timeout=30):
        """One HTTP request; cluster host names resolve like in the pods. (status, headers, body)"""
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(self._resolve(parts.hostname), parts.port, timeout=timeout)
        try:
            path = parts.path + ("?" + parts.query if parts.query else "")
            conn.request(method, path, body=body, headers={"Host": parts.netloc})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def namenode_url(self, path):
        return "http://%s:%d%s" % (self.namenode_host, self.namenode_ports["http"], path)

    def jmx(self, query):
        return self.request("GET", self.namenode_url("/jmx?qry=" + query))

    def webhdfs(self, method, path, op, body=None, **params):
        """A WebHDFS call through the namenode, following its redirect to a datanode like a
        client does (two steps: the namenode never takes file data)."""
        query = "&".join(["op=" + op, "user.name=" + IMAGE_USER] +
                         ["%s=%s" % item for item in sorted(params.items())])
        status, headers, payload = self.request(method, self.namenode_url("/webhdfs/v1" + path + "?" + query))
        if status == 307:
            location = headers.get("Location") or headers.get("location")
            return location, self.request(method, location, body=body)
        return None, (status, headers, payload)

    def client(self, *args, timeout=120):
        """`hdfs <args>` as a client in the namenode pod would run it."""
        sandbox = self.namenode()
        env = dict(sandbox.env)
        env.pop("HDFS_NAMENODE_OPTS", None)
        env["HADOOP_CLIENT_OPTS"] = "-Xmx256m"
        return subprocess.run([os.path.join(self.bin, "hdfs"), *args], capture_output=True,
                              text=True, timeout=timeout, check=False, env=env,
                              stdin=subprocess.DEVNULL, start_new_session=True)
