"""tools/select_cluster.py: the kind cluster `make up` creates maps the inventory's NodePorts to the host."""

import json
import os
import pathlib
import stat
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import select_cluster  # noqa: E402  pylint: disable=wrong-import-position


def inventory(tmp_path, env, kafka_vars, main_vars=None):
    """A repository whose roles are this one's and whose inventories/<env> has the given variables."""
    (tmp_path / "roles").symlink_to(REPO / "roles")
    group_vars = tmp_path / "inventories" / env / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (tmp_path / "inventories" / env / "hosts.yml").write_text(
        (REPO / "inventories" / "dev" / "hosts.yml").read_text())
    (group_vars / "main.yml").write_text(yaml.safe_dump(dict({"bigdata_environment": env}, **(main_vars or {}))))
    (group_vars / "kafka.yml").write_text(yaml.safe_dump(kafka_vars))
    return tmp_path


def test_the_dev_inventory_maps_its_kafka_nodeport_to_localhost():
    dev = yaml.safe_load((REPO / "inventories/dev/group_vars/all/kafka.yml").read_text())
    ports, host = select_cluster.inventory_node_ports("dev")
    assert dev["kafka_external_enabled"] is True
    assert ports == [dev["kafka_external_base_nodeport"]]
    config = select_cluster.kind_config(ports, host)
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert config["nodes"] == [{"role": "control-plane", "extraPortMappings": [
        {"containerPort": ports[0], "hostPort": ports[0], "protocol": "TCP", "listenAddress": "127.0.0.1"}]}]


def test_one_mapping_per_broker_from_the_inventorys_base_port(tmp_path):
    repo = inventory(tmp_path, "lab", {"kafka_external_enabled": True, "kafka_external_base_nodeport": 31000,
                                       "kafka_broker_replicas": 3}, {"bigdata_external_host": "kafka.lab.example"})
    ports, host = select_cluster.inventory_node_ports("lab", repo=str(repo))
    assert ports == [31000, 31001, 31002] and host == "kafka.lab.example"
    mappings = select_cluster.kind_config(ports, host)["nodes"][0]["extraPortMappings"]
    assert [m["hostPort"] for m in mappings] == ports
    assert all("listenAddress" not in m for m in mappings), "a non-local host is reached from the network"


def test_the_role_default_decides_when_the_inventory_is_silent(tmp_path):
    # kafka_external_enabled defaults to bigdata_environment == 'dev' (roles/kafka/defaults).
    assert select_cluster.inventory_node_ports("dev", repo=str(inventory(tmp_path, "dev", {})))[0] == [30092]


def test_no_external_listener_no_mapping(tmp_path):
    repo = inventory(tmp_path, "stage", {"kafka_external_enabled": False})
    ports, host = select_cluster.inventory_node_ports("stage", repo=str(repo))
    assert ports == []
    assert select_cluster.kind_config(ports, host) == {
        "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{"role": "control-plane"}]}


@pytest.fixture
def fake_kind(tmp_path, monkeypatch):
    """A `kind` on PATH that records its arguments and the configuration file it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "kind.log"
    script = bin_dir / "kind"
    script.write_text(
        "#!%s\nimport json, sys\nargs = sys.argv[1:]\nlog = open(%r, 'a')\n"
        "config = open(args[args.index('--config') + 1]).read() if '--config' in args else None\n"
        "log.write(json.dumps({'args': args, 'config': config}) + '\\n')\n"
        "if args[:2] == ['get', 'kubeconfig']:\n    print('apiVersion: v1')\n" % (sys.executable, str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", "%s%s%s" % (bin_dir, os.pathsep, os.environ["PATH"]))
    monkeypatch.setattr(select_cluster, "CACHE", str(tmp_path / "cache"))
    return log


def test_make_up_creates_the_kind_cluster_with_the_mappings(fake_kind):
    select_cluster.kind_cluster(existing_only=False, env="dev")
    calls = [json.loads(line) for line in fake_kind.read_text().splitlines()]
    create = [c for c in calls if c["args"][:2] == ["create", "cluster"]]
    assert len(create) == 1 and "--config" in create[0]["args"]
    assert yaml.safe_load(create[0]["config"]) == select_cluster.kind_config(*select_cluster.inventory_node_ports("dev"))


def test_an_existing_cluster_is_never_created_in_existing_mode(fake_kind):
    assert select_cluster.kind_cluster(existing_only=True, env="dev") is None
    assert not any(json.loads(line)["args"][:2] == ["create", "cluster"] for line in fake_kind.read_text().splitlines())


# make up on the simulated cluster: application health where a process answers, nowhere else.

def role_defaults(role):
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


def test_health_is_checked_for_the_components_the_node_agent_runs():
    marker = {"runtime": "true", "runtimeImages": ",".join(role_defaults("simcluster")["simcluster_runtime_images"])}
    real = select_cluster.real_components(marker)
    assert real == ["kafka", "hdfs"]
    assert select_cluster.health_arguments(real) == [
        "-e", "bigdata_wait_application_health=false",
        "-e", "kafka_wait_application_health=true", "-e", "hdfs_wait_application_health=true"]


@pytest.mark.parametrize("marker", [
    {"runtime": "false", "runtimeImages": ""},
    {"name": "bigdata-sim", "kubeVersion": "v1.36.3"},  # a cluster created before the marker said it
    {"runtime": "true", "runtimeImages": "prom/prometheus"},
], ids=["no-agent", "old-marker", "other-images"])
def test_no_process_no_health_check(marker):
    assert select_cluster.real_components(marker) == []
    assert select_cluster.health_arguments([]) == ["-e", "bigdata_wait_application_health=false"]


@pytest.mark.parametrize("image,component", sorted(select_cluster.HEALTH_BY_IMAGE.items()))
def test_each_component_named_runs_that_image_and_has_its_own_switch(image, component):
    """The mapping names the image the role's pods run, and the role reads the switch make up sets."""
    defaults = role_defaults(component)
    assert defaults["%s_image_repository" % component] == image
    assert defaults["%s_wait_application_health" % component] == "{{ bigdata_wait_application_health }}"
    spec = yaml.safe_load((REPO / "roles" / component / "meta" / "argument_specs.yml").read_text())
    assert "%s_wait_application_health" % component in spec["argument_specs"]["validate"]["options"]
    wait = (REPO / "roles" / component / "tasks" / "wait.yml").read_text()
    assert "%s_wait_application_health | bool" % component in wait
    assert "bigdata_wait_application_health" not in wait


def test_the_printed_arguments_stay_whole_in_bash(monkeypatch, capsys):
    """make up evals the output and passes "${BIGDATA_EXTRA_ARGS[@]}": a JSON -e with spaces is one argument."""
    import subprocess
    extra = ["-e", "bigdata_wait_application_health=false", "-e", '{"a": ["b c"], "d": "it\'s"}']
    monkeypatch.setattr(select_cluster, "choose", lambda env, existing: ("/tmp/k config.yaml", extra))
    monkeypatch.setattr(sys, "argv", ["select_cluster.py"])
    select_cluster.main()
    printed = capsys.readouterr().out
    script = printed + '\nprintf "%s\\n" "$BIGDATA_KUBECONFIG" "${BIGDATA_EXTRA_ARGS[@]}"\n'
    seen = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert seen == ["/tmp/k config.yaml"] + extra


RUNTIME_MARKER = {"runtime": "true", "runtimeImages": "apache/kafka,apache/hadoop",
                  "mavenMirror": "http://10.212.0.1:8081/maven2"}


def test_simulated_vars_are_make_ups_arguments_as_one_json_object():
    """Molecule's converge sets as facts exactly what make up passes as -e (the same functions)."""
    import subprocess
    printed = subprocess.run([sys.executable, str(REPO / "tools" / "select_cluster.py"), "--simulated-vars",
                              "--env", "dev"], input=json.dumps(RUNTIME_MARKER), capture_output=True, text=True,
                             check=True).stdout
    variables = json.loads(printed)
    jar = role_defaults("kafka")["kafka_jmx_exporter_url"][len(select_cluster.MAVEN_CENTRAL):]
    assert variables == {"bigdata_wait_application_health": False, "kafka_wait_application_health": True,
                         "hdfs_wait_application_health": True,
                         "kafka_jmx_exporter_url": "http://10.212.0.1:8081/maven2/" + jar,
                         "kafka_jmx_exporter_egress_cidrs": ["10.212.0.1/32"]}
    real = select_cluster.real_components(RUNTIME_MARKER)
    assert select_cluster.health_arguments(real) + select_cluster.mirror_arguments(RUNTIME_MARKER, "dev") == [
        "-e", "bigdata_wait_application_health=false", "-e", "kafka_wait_application_health=true",
        "-e", "hdfs_wait_application_health=true", "-e", json.dumps(
            {k: variables[k] for k in ("kafka_jmx_exporter_url", "kafka_jmx_exporter_egress_cidrs")})]


def test_a_cluster_that_runs_spark_gives_the_pipelines_the_mirror_too():
    """The pipelines' Spark applications resolve Spark's Kafka connector with Ivy at start; on a
    cluster whose agent runs apache/spark, their pods reach only the mirror (Kafka and HDFS clusters,
    make up's default, leave the pipelines as they are: their pods are simulated)."""
    marker = dict(RUNTIME_MARKER, runtimeImages="apache/kafka,apache/hadoop,apache/spark")
    variables = select_cluster.mirror_variables(marker, "dev")
    assert variables["pipelines_maven_repository"] == "http://10.212.0.1:8081/maven2/"
    assert variables["pipelines_maven_egress_cidrs"] == ["10.212.0.1/32"]
    assert variables["pipelines_maven_egress_ports"] == [8081]
    assert variables["kafka_jmx_exporter_egress_cidrs"] == ["10.212.0.1/32"]
    assert not any(k.startswith("pipelines_") for k in select_cluster.mirror_variables(RUNTIME_MARKER, "dev"))


def test_simulated_vars_of_a_cluster_without_the_agent_turn_every_health_check_off():
    marker = {"runtime": "false", "runtimeImages": "", "mavenMirror": ""}
    assert select_cluster.simulated_variables(marker, "prod") == {"bigdata_wait_application_health": False}
