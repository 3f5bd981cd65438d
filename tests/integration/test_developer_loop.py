"""The developer loop on the simulated cluster: deploy_app.yml, status.yml, logs.yml, teardown.yml.

A restricted namespace gets what the bigdata.stack.spark role gives it (spark-defaults, pod
templates, driver ServiceAccount and Roles), then an application is deployed from a local file,
changed and redeployed, looked at, and removed with the component teardown. kwok plays the nodes:
the driver pod goes Running, then Succeeded after a few seconds; no container runs, so there is no
driver log (logs.yml must still write one file per container, saying so).
"""

import json

import pytest
from kubernetes import client

from helpers import run_playbook, wait_for

SETUP = "tests/integration/playbooks/spark_setup.yml"
APP = "etl-loop"
STACK_SELECTOR = "app.kubernetes.io/part-of=bigdata-stack,app.kubernetes.io/instance=bigdata"


@pytest.fixture
def loop_ns(restricted_namespace, sim_kubeconfig, tmp_path):
    run_playbook(SETUP, "-e", "test_namespace=" + restricted_namespace, "-e", "test_dir=%s" % tmp_path,
                 kubeconfig=sim_kubeconfig, check=True)
    return restricted_namespace


def playbook(name, namespace, kubeconfig, *extra):
    return run_playbook("playbooks/%s.yml" % name, "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                        *extra, kubeconfig=kubeconfig)


def deploy(namespace, kubeconfig, app_file):
    proc = playbook("deploy_app", namespace, kubeconfig, "-e", "bigdata_app_name=" + APP,
                    "-e", "bigdata_app_file=%s" % app_file,
                    "-e", json.dumps({"bigdata_app_wait": True, "bigdata_app_wait_timeout": 120}))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc


def drivers(core, namespace):
    return core.list_namespaced_pod(namespace, label_selector="spark-role=driver,bigdata.stack/app-name=" + APP).items


def test_deploy_change_redeploy_look_and_remove(api_client, sim_kubeconfig, loop_ns, tmp_path):
    core = client.CoreV1Api(api_client)
    app_file = tmp_path / "etl.py"
    app_file.write_text("print('version 1')\n")

    deploy(loop_ns, sim_kubeconfig, app_file)
    code = core.read_namespaced_config_map(APP + "-app", loop_ns)
    assert code.data == {"etl.py": "print('version 1')\n"}
    # The code carries the stack's labels, so status, logs and teardown find it like the pods.
    for key, value in {"app.kubernetes.io/part-of": "bigdata-stack", "app.kubernetes.io/instance": "bigdata",
                       "app.kubernetes.io/name": "spark", "bigdata.stack/app-name": APP}.items():
        assert code.metadata.labels.get(key) == value, (key, code.metadata.labels)
    [first] = drivers(core, loop_ns)
    assert first.status.phase == "Succeeded"
    assert first.metadata.labels["app.kubernetes.io/component"] == "driver"  # the pod template's, kept

    # A code change is a redeploy, not an image rebuild: same ConfigMap, new content, new driver.
    app_file.write_text("print('version 2')\n")
    deploy(loop_ns, sim_kubeconfig, app_file)
    assert core.read_namespaced_config_map(APP + "-app", loop_ns).data == {"etl.py": "print('version 2')\n"}
    # The finished first driver stays (as Spark leaves it, for its log); the redeploy is a second one.
    runs = {p.metadata.name: p for p in drivers(core, loop_ns)}
    assert len(runs) == 2 and first.metadata.name in runs, sorted(runs)
    [driver] = set(runs) - {first.metadata.name}
    assert runs[driver].status.phase == "Succeeded"

    status = playbook("status", loop_ns, sim_kubeconfig)
    assert status.returncode == 0, status.stdout[-4000:]
    assert driver in status.stdout and "Succeeded" in status.stdout, status.stdout[-4000:]
    # No node agent here: every pod of the stack is kwok's, and status says so.
    pod_lines = [line for line in status.stdout.splitlines() if " node=" in line]
    assert pod_lines and all(line.rstrip().rstrip('",').endswith("runs=simulated") for line in pod_lines), pod_lines

    logs_dir = tmp_path / "logs"
    logs = playbook("logs", loop_ns, sim_kubeconfig, "-e", "bigdata_logs_dir=%s" % logs_dir)
    assert logs.returncode == 0, logs.stdout[-4000:]
    [driver_log] = logs_dir.glob(driver + "_*.log")
    assert driver_log.read_text().startswith("(no log:"), driver_log.read_text()[:500]  # kwok runs no container
    stack_pods = core.list_namespaced_pod(loop_ns, label_selector=STACK_SELECTOR).items
    # Init containers too (the history server's waits for the event log directory).
    containers = sum(len(p.status.init_container_statuses or []) + len(p.status.container_statuses or [])
                     for p in stack_pods)
    assert any(p.status.init_container_statuses for p in stack_pods)
    assert len(list(logs_dir.iterdir())) == containers

    # Component teardown finds the application by the same labels: driver and code go, data stays.
    teardown = playbook("teardown", loop_ns, sim_kubeconfig, "-e", "bigdata_teardown_component=spark")
    assert teardown.returncode == 0, teardown.stdout[-6000:]
    assert teardown.recap()["failed"] == 0
    assert core.list_namespaced_config_map(loop_ns, label_selector="bigdata.stack/app-name=" + APP).items == []
    wait_for(lambda: drivers(core, loop_ns) == [], what="driver pods of %s deleted" % APP)
    assert core.read_namespace(loop_ns).status.phase == "Active"
