"""`--check --diff` through the one apply path (bigdata.stack.k8s_apply) on the simulated cluster.

The API server dry-runs each server-side apply; the diff shows the fields that would change, per
object, with Secret values masked, and the check run writes nothing.
"""

import base64
import re
import uuid

import pytest
from kubernetes import client

from helpers import run_playbook

APPLY = "tests/integration/playbooks/k8s_apply.yml"


def diff_headers(output):
    """The objects a --diff output shows, in order."""
    return re.findall(r"^\+\+\+ after: (\S+)$", output, flags=re.MULTILINE)


def diff_block(output, ref):
    """The diff of one object in a --diff output."""
    return output.split("+++ after: " + ref, 1)[1].split("\n\n", 1)[0]


@pytest.fixture
def hdfs_stack(api_client, sim_kubeconfig):
    """platform + hdfs of the dev inventory in a namespace of their own (platform creates it)."""
    namespace = "applydiff-" + uuid.uuid4().hex[:6]
    proc = run_playbook("playbooks/site.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                        "-e", "bigdata_components=hdfs", "-e", "bigdata_wait_application_health=false",
                        "-e", "bigdata_wait_timeout=240", kubeconfig=sim_kubeconfig)
    try:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        yield namespace
    finally:
        client.CoreV1Api(api_client).delete_namespace(namespace)


def test_check_diff_shows_the_field_that_would_change_and_changes_nothing(api_client, sim_kubeconfig, hdfs_stack):
    apps = client.AppsV1Api(api_client)
    assert apps.read_namespaced_stateful_set("hdfs-datanode", hdfs_stack).spec.replicas == 1

    proc = run_playbook("playbooks/site.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + hdfs_stack,
                        "-e", "bigdata_components=hdfs", "-e", "hdfs_datanode_replicas=2", "--check", "--diff",
                        kubeconfig=sim_kubeconfig)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # The datanode StatefulSet gets a second replica; dfs.replication follows the datanode count, so
    # the HDFS configuration changes too, and with it the checksum that rolls both StatefulSets.
    assert diff_headers(proc.stdout) == ["ConfigMap/%s/hdfs-config" % hdfs_stack,
                                         "StatefulSet/%s/hdfs-namenode" % hdfs_stack,
                                         "StatefulSet/%s/hdfs-datanode" % hdfs_stack], proc.stdout[-6000:]
    datanode = diff_block(proc.stdout, "StatefulSet/%s/hdfs-datanode" % hdfs_stack)
    assert re.search(r"^-\s+replicas: 1$", datanode, flags=re.MULTILINE), datanode
    assert re.search(r"^\+\s+replicas: 2$", datanode, flags=re.MULTILINE), datanode
    assert "managedFields" not in proc.stdout and "resourceVersion" not in proc.stdout, proc.stdout[-6000:]
    # A ConfigMap's file is shown line by line, as kubectl diff does.
    config = diff_block(proc.stdout, "ConfigMap/%s/hdfs-config" % hdfs_stack)
    changed = [line[0] + line[1:].strip() for line in config.splitlines()
               if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))]
    assert changed == ["-<value>1</value>", "+<value>2</value>"], config
    assert proc.recap()["changed"] == 1, proc.stdout[-3000:]
    # A dry run: the cluster keeps one datanode.
    assert apps.read_namespaced_stateful_set("hdfs-datanode", hdfs_stack).spec.replicas == 1


def test_check_on_a_cluster_without_the_namespace_shows_what_would_be_created(api_client, sim_kubeconfig):
    """A first `--check --diff`, before any deploy: the namespace does not exist, so the server
    cannot dry-run the objects inside it; the run shows them as created and writes nothing."""
    namespace = "checkfresh-" + uuid.uuid4().hex[:6]
    proc = run_playbook("playbooks/site.yml", "-i", "inventories/dev", "-e", "bigdata_namespace=" + namespace,
                        "-e", "bigdata_components=hdfs", "--check", "--diff", kubeconfig=sim_kubeconfig)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    shown = diff_headers(proc.stdout)
    assert "Namespace/" + namespace in shown, shown
    assert {"StatefulSet/%s/hdfs-namenode" % namespace, "StatefulSet/%s/hdfs-datanode" % namespace,
            "NetworkPolicy/%s/platform-default-deny" % namespace} <= set(shown), shown
    created = diff_block(proc.stdout, "StatefulSet/%s/hdfs-datanode" % namespace)
    assert re.search(r"^\+\s+replicas: 1$", created, flags=re.MULTILINE), created
    # platform and hdfs each report their apply as changed; nothing reached the cluster.
    assert proc.recap()["changed"] == 2, proc.stdout[-3000:]
    names = [ns.metadata.name for ns in client.CoreV1Api(api_client).list_namespace().items]
    assert namespace not in names


def test_secret_values_never_show_in_diff_or_output(api_client, sim_kubeconfig, restricted_namespace):
    first, second = "first-" + uuid.uuid4().hex, "second-" + uuid.uuid4().hex

    def apply(password, greeting, *extra):
        proc = run_playbook(APPLY, "-e", "test_namespace=" + restricted_namespace, "-e", "test_name=creds",
                            "-e", "test_password=" + password, "-e", "test_greeting=" + greeting, "--diff", *extra,
                            kubeconfig=sim_kubeconfig)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        shown = proc.stdout + proc.stderr
        for secret in (first, second):
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                assert form not in shown, "a Secret value is in the output:\n" + shown[-4000:]
        return proc

    apply(first, "hello")
    core = client.CoreV1Api(api_client)
    stored = core.read_namespaced_secret("creds", restricted_namespace).data
    assert base64.b64decode(stored["password"]).decode() == first

    again = apply(first, "hello")
    assert again.recap()["changed"] == 0 and diff_headers(again.stdout) == [], again.stdout[-3000:]

    check = apply(second, "hi", "--check")
    secret_ref, configmap_ref = "Secret/%s/creds" % restricted_namespace, "ConfigMap/%s/creds" % restricted_namespace
    assert diff_headers(check.stdout) == [secret_ref, configmap_ref], check.stdout[-4000:]
    # Masked, but the diff still says which keys would change; the ConfigMap shows its values.
    assert "password: '***** (before)'" in check.stdout and "password: '***** (after)'" in check.stdout
    assert re.search(r"^-\s+greeting: hello$", check.stdout, flags=re.MULTILINE), check.stdout[-3000:]
    assert re.search(r"^\+\s+greeting: hi$", check.stdout, flags=re.MULTILINE), check.stdout[-3000:]
    assert base64.b64decode(core.read_namespaced_secret("creds", restricted_namespace).data["password"]).decode() == first


def test_render_dir_writes_the_documents_and_touches_no_cluster(tmp_path):
    # No kubeconfig at all: rendering must not need a cluster.
    proc = run_playbook(APPLY, "-e", "test_namespace=ns1", "-e", "test_name=x", "-e", "test_password=pw-123456",
                        "-e", "test_greeting=hello", "-e", "test_render_dir=%s" % tmp_path,
                        kubeconfig="/nonexistent/kubeconfig")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = tmp_path / "apply-test"
    assert sorted(p.name for p in out.iterdir()) == ["apply-configmap.yaml", "apply-secret.yaml"]
    assert "namespace: ns1" in (out / "apply-configmap.yaml").read_text()
    assert "greeting: hello" in (out / "apply-configmap.yaml").read_text()
    again = run_playbook(APPLY, "-e", "test_namespace=ns1", "-e", "test_name=x", "-e", "test_password=pw-123456",
                         "-e", "test_greeting=hello", "-e", "test_render_dir=%s" % tmp_path,
                         kubeconfig="/nonexistent/kubeconfig")
    assert again.recap()["changed"] == 0, again.stdout[-3000:]
