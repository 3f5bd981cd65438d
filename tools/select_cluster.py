#!/usr/bin/env python3
"""Choose the Kubernetes cluster `make up` deploys to, and say loudly which one it is.

Order: BIGDATA_KUBECONFIG (and BIGDATA_KUBE_CONTEXT) if set; else the current context of
$KUBECONFIG / ~/.kube/config when its API server answers; else kind when a Docker engine and the
kind binary exist; else the simulated cluster (real control plane, kwok nodes, no containers).

The simulated cluster runs no container, but its node agent (started when make runs as root,
SIM_RUNTIME) runs the pods of some images as real processes: Kafka's and HDFS's. make up then
checks application health for exactly those components (<role>_wait_application_health=true) and
leaves it off for the simulated rest (bigdata_wait_application_health=false), reading what runs
from the cluster's own marker (kube-system/bigdata-simcluster), not from a guess.

A kind cluster it creates gets what the inventory needs from the cluster's nodes: every NodePort
the stack asks for (the kafka role's kafka_preflight.node_ports, the declaration the preflight of
site.yml checks) is mapped to the same port on the host (kind's extraPortMappings), so
bigdata_external_host:30092 answers. kind cannot add a mapping to a running cluster: when the
inventory now needs other ports than the kind cluster was created with, it says how to recreate it.

Prints bash assignments for `eval`: BIGDATA_KUBECONFIG and the array BIGDATA_EXTRA_ARGS. Everything meant
for people goes to stderr.

--simulated-vars chooses no cluster: it reads a simulated cluster's marker data (JSON) on stdin and
prints, as one JSON object, the variables make up would pass for that cluster (Molecule's converge
and verify set them as facts, so both derive them here, once).
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")
SIM_NAME = os.environ.get("SIM_NAME", "bigdata-sim")
SIM_KUBECONFIG = os.path.join(CACHE, "kwok", "clusters", SIM_NAME, "kubeconfig.yaml")
KIND_NAME = "bigdata"
# The components whose application health a process of the node agent can answer, by the image
# their pods run (roles/<component>/defaults: <component>_image_repository).
HEALTH_BY_IMAGE = {"apache/kafka": "kafka", "apache/hadoop": "hdfs"}
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2/"


def banner(*lines):
    width = max(len(line) for line in lines) + 4
    sys.stderr.write("\n" + "#" * width + "\n")
    for line in lines:
        sys.stderr.write("# " + line.ljust(width - 4) + " #\n")
    sys.stderr.write("#" * width + "\n\n")


def api_answers(kubeconfig, context=None, timeout=5):
    """True when the kubeconfig's (current or given) context reaches an API server."""
    try:
        from kubernetes import client, config
    except ImportError:
        return False
    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        client.VersionApi(api_client).get_code(_request_timeout=timeout)
        return True
    except Exception:  # any failure means "not usable"; the reason is not ours to fix here
        return False


def default_kubeconfig():
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    return path if os.path.isfile(path) else None


def docker_engine_runs():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0


# The roles whose declarations of what they need from the cluster (vars/main.yml, <role>_preflight)
# name NodePorts, with the roles whose defaults those declarations read.
NODE_PORT_ROLES = ("kafka",)
DEFAULT_ROLES = ("common", "kafka")


def _trusted(value):
    """Values read from the repository's own YAML, marked as templates Ansible may render (ansible-core 2.19+)."""
    try:
        from ansible.template import trust_as_template
    except ImportError:  # before 2.19 every string is a template
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def inventory_templar(env, repo=REPO):
    """(variables, Templar) of inventories/<env> as a play sees them: role defaults (common, kafka),
    then the inventory's variables, then the kafka role's vars."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[os.path.join(repo, "inventories", env)])
    variables = {}
    for role in DEFAULT_ROLES:
        variables.update(loader.load_from_file(os.path.join(repo, "roles", role, "defaults", "main.yml")) or {})
    variables.update(VariableManager(loader=loader, inventory=inventory).get_vars(host=inventory.get_host("localhost")))
    for role in NODE_PORT_ROLES:
        variables.update(loader.load_from_file(os.path.join(repo, "roles", role, "vars", "main.yml")) or {})
    variables = _trusted(variables)
    return variables, Templar(loader=loader, variables=variables)


def inventory_node_ports(env, repo=REPO):
    """(NodePorts the stack of inventories/<env> asks for, bigdata_external_host), by Ansible's own templating."""
    variables, templar = inventory_templar(env, repo)
    ports = []
    for role in NODE_PORT_ROLES:
        ports += [int(p["port"]) for p in templar.template(variables[role + "_preflight"]).get("node_ports") or []]
    return sorted(set(ports)), str(templar.template(variables.get("bigdata_external_host", "localhost")))


def kind_config(node_ports, external_host="localhost"):
    """The kind cluster configuration (kind.x-k8s.io/v1alpha4) that maps every NodePort to the host.

    Only on the loopback interface when the stack advertises localhost, so a laptop's Kafka is not
    offered to its network.
    """
    local = external_host in ("localhost", "127.0.0.1", "::1")
    mappings = [dict({"containerPort": port, "hostPort": port, "protocol": "TCP"},
                     **({"listenAddress": "127.0.0.1"} if local else {})) for port in node_ports]
    node = {"role": "control-plane"}
    if mappings:
        node["extraPortMappings"] = mappings
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [node]}


def kind_cluster(existing_only, env="dev"):
    kubeconfig = os.path.join(CACHE, "kind", KIND_NAME + ".kubeconfig")
    config_path = os.path.join(CACHE, "kind", KIND_NAME + ".kind.json")
    config = kind_config(*inventory_node_ports(env))
    os.makedirs(os.path.dirname(kubeconfig), exist_ok=True)
    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
    if KIND_NAME not in clusters.stdout.split():
        if existing_only:
            return None
        # JSON is YAML: kind reads it as its configuration file.
        with open(config_path, "w") as out:
            json.dump(config, out, indent=2)
        subprocess.run(["kind", "create", "cluster", "--name", KIND_NAME, "--kubeconfig", kubeconfig,
                        "--config", config_path], check=True, stdout=sys.stderr)
    elif not existing_only:
        created_with = None
        if os.path.isfile(config_path):
            with open(config_path) as f:
                created_with = json.load(f)
        if created_with != config:
            banner("The kind cluster '%s' was not created with the NodePort mappings inventories/%s needs" % (KIND_NAME, env),
                   "(%s). kind cannot add them to a running cluster: kind delete cluster --name %s, then make up."
                   % (", ".join(str(m["hostPort"]) for m in config["nodes"][0].get("extraPortMappings", [])) or "none",
                      KIND_NAME))
    os.makedirs(os.path.dirname(kubeconfig), exist_ok=True)
    with open(kubeconfig, "w") as out:
        subprocess.run(["kind", "get", "kubeconfig", "--name", KIND_NAME], check=True, stdout=out)
    return kubeconfig


def start_simcluster(env):
    subprocess.run(["make", "--no-print-directory", "-C", REPO, "sim-up", "ENV=" + env],
                   check=True, stdout=sys.stderr)


def choose(env, existing_only):
    if os.environ.get("BIGDATA_KUBECONFIG"):
        kubeconfig = os.environ["BIGDATA_KUBECONFIG"]
        context = os.environ.get("BIGDATA_KUBE_CONTEXT")
        extra = ["-e", "bigdata_kube_context=" + context] if context else []
        banner("Cluster: BIGDATA_KUBECONFIG=%s%s" % (kubeconfig, " context " + context if context else ""))
        return kubeconfig, extra

    kubeconfig = default_kubeconfig()
    if kubeconfig and kubeconfig != SIM_KUBECONFIG and api_answers(kubeconfig):
        banner("Cluster: the current context of %s (it answers)." % kubeconfig,
               "Set BIGDATA_KUBECONFIG / BIGDATA_KUBE_CONTEXT to choose another.")
        return kubeconfig, []

    if docker_engine_runs() and shutil.which("kind"):
        kubeconfig = kind_cluster(existing_only, env)
        if kubeconfig:
            banner("Cluster: kind cluster '%s' (Docker). Containers really run." % KIND_NAME)
            return kubeconfig, []

    if existing_only and not os.path.isfile(SIM_KUBECONFIG):
        sys.stderr.write("No reachable cluster and no simulated cluster: nothing to act on.\n")
        sys.exit(1)
    if not existing_only:
        start_simcluster(env)
    marker = simcluster_marker(SIM_KUBECONFIG)
    real = real_components(marker)
    mirror = mirror_arguments(marker, env)
    banner(
        "Cluster: the SIMULATED cluster '%s' (no reachable kubeconfig context, no Docker+kind)." % SIM_NAME,
        "Real etcd, kube-apiserver (Pod Security admission), controller-manager and scheduler;",
        "kwok fakes the nodes: pods are admitted, scheduled and marked Ready but run NO containers,",
        *(["except %s: the node agent runs their pods as real processes." % " and ".join(real),
           "Application health is checked for %s only (bigdata_wait_application_health=false" % ", ".join(real),
           "for the rest, %s)." % ", ".join("%s_wait_application_health=true" % c for c in real)]
          + (["Kafka's JMX exporter comes from the node agent's mirror of Maven Central, %s" % marker["mavenMirror"],
              "(the pods reach nothing beyond the cluster, as on an air-gapped one)."] if mirror else [])
          if real else
          ["and no node agent runs any: it needs root (SIM_RUNTIME=auto starts it as root), and a cluster",
           "created without it keeps none (make sim-down && make up gives a new one, losing what is on it).",
           "Application health checks are therefore off (bigdata_wait_application_health=false)."]),
        "kubeconfig: " + SIM_KUBECONFIG,
    )
    return SIM_KUBECONFIG, health_arguments(real) + mirror


def simcluster_marker(kubeconfig):
    """The data of the simulated cluster's marker ConfigMap (roles/simcluster/templates/marker.yaml.j2)."""
    from kubernetes import client, config
    api_client = config.new_client_from_config(config_file=kubeconfig)
    return client.CoreV1Api(api_client).read_namespaced_config_map("bigdata-simcluster", "kube-system").data or {}


def runtime_images(marker):
    """The images whose pods the cluster's node agent runs as processes ([] without an agent)."""
    if marker.get("runtime") != "true":
        return []
    return [i for i in marker.get("runtimeImages", "").split(",") if i]


def real_components(marker):
    """The components whose pods the cluster's node agent runs as processes, in deployment order."""
    images = runtime_images(marker)
    return [component for image, component in HEALTH_BY_IMAGE.items() if image in images]


def mirror_variables(marker, env, repo=REPO):
    """Variables that point what the agent's pods download from Maven Central at the node agent's
    mirror of it, when the cluster has one (the pods have no other way out: an air-gapped cluster,
    as roles/kafka/defaults says); {} otherwise.

    - The Kafka pods' JMX exporter, when the inventory downloads it from Maven Central.
    - The sample pipelines' Spark applications (their Ivy resolution of Spark's Kafka connector),
      when the cluster runs apache/spark for real and the inventory names no repository of its own.
    """
    mirror = marker.get("mavenMirror") if marker.get("runtime") == "true" else None
    if not mirror:
        return {}
    variables, templar = inventory_templar(env, repo)
    location = urllib.parse.urlsplit(mirror)
    found = {}
    url = str(templar.template(variables["kafka_jmx_exporter_url"]))
    if url.startswith(MAVEN_CENTRAL):
        found.update({"kafka_jmx_exporter_url": mirror.rstrip("/") + "/" + url[len(MAVEN_CENTRAL):],
                      "kafka_jmx_exporter_egress_cidrs": [location.hostname + "/32"]})
    if "apache/spark" in runtime_images(marker) and not str(templar.template(variables.get("pipelines_maven_repository", ""))):
        found.update({"pipelines_maven_repository": mirror.rstrip("/") + "/",
                      "pipelines_maven_egress_cidrs": [location.hostname + "/32"],
                      "pipelines_maven_egress_ports": [location.port or 80]})
    return found


def mirror_arguments(marker, env, repo=REPO):
    """mirror_variables() as ansible-playbook arguments (one JSON -e, or none)."""
    variables = mirror_variables(marker, env, repo)
    return ["-e", json.dumps(variables)] if variables else []


def health_variables(real):
    """Health off but for the components that run for real."""
    return dict({"bigdata_wait_application_health": False},
                **{"%s_wait_application_health" % component: True for component in real})


def health_arguments(real):
    """health_variables() as ansible-playbook arguments."""
    return [arg for name, value in health_variables(real).items()
            for arg in ("-e", "%s=%s" % (name, str(value).lower()))]


def simulated_variables(marker, env, repo=REPO):
    """Everything make up gives ansible-playbook on the simulated cluster of this marker, as one
    dict of variables (Molecule's converge and verify set them as facts: --simulated-vars)."""
    return dict(health_variables(real_components(marker)), **mirror_variables(marker, env, repo))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", help="inventory whose node shapes a simulated cluster gets")
    parser.add_argument("--existing", action="store_true", help="never create a cluster (teardown, status)")
    parser.add_argument("--simulated-vars", action="store_true",
                        help="read a simulated cluster's marker data (JSON) on stdin and print, as JSON, the "
                             "variables make up would give ansible-playbook for it; choose no cluster")
    args = parser.parse_args()
    if args.simulated_vars:
        print(json.dumps(simulated_variables(json.load(sys.stdin), args.env)))
        return
    kubeconfig, extra = choose(args.env, args.existing)
    print("BIGDATA_KUBECONFIG=%s" % shlex.quote(kubeconfig))
    # A bash array: an argument with spaces (a JSON -e) stays one argument.
    print("BIGDATA_EXTRA_ARGS=(%s)" % " ".join(shlex.quote(a) for a in extra))


if __name__ == "__main__":
    main()
