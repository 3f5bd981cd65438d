"""Wrong inputs fail in validation, with a message naming the variable, before any write.

Each file in cases/ is a bad vars file for one inventory; its header says which inventory
(``# inventory: prod``) and which names the failure message must contain (``# expect: a, b``).
A case with ``# phase: preflight`` is wrong only for the cluster it meets (a Secret, StorageClass
or NodePort the cluster does not have): it must fail in site.yml's preflight task
(bigdata.stack.preflight, its one read of the cluster), still before any write, so it needs
BIGDATA_TEST_KUBECONFIG and is skipped without it. Every file is one distinct bad input rejected
before any write; ``ls tests/validation/cases | wc -l`` counts them.
The test runs ``ansible-playbook site.yml -i inventories/<inventory> -e @<case>`` and reads the
run back (every task's result, tests/playbook.py): it must fail, the failing task must be a
validation task (argument spec, assert or fail), no Kubernetes or bigdata.stack module may have run
before it, nothing may have changed, and the message must name the variable.

With BIGDATA_TEST_KUBECONFIG the playbook points at that (simulated) cluster, in a namespace and
instance of its own, and the test then asks the cluster that no object of that instance exists and
that the namespace was not created. Without it, the playbook points at a kubeconfig whose server
nothing listens on (https://127.0.0.1:1), so a failure at connection time would show up as a
module failure, not a validation failure.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import pathlib
import re

import playbook
import pytest

CASES_DIR = pathlib.Path(__file__).resolve().parent / "cases"
VALIDATION_ACTIONS = {
    "assert", "ansible.builtin.assert", "ansible.legacy.assert",
    "fail", "ansible.builtin.fail", "ansible.legacy.fail",
    "validate_argument_spec", "ansible.builtin.validate_argument_spec",
    "ansible.legacy.validate_argument_spec",
}
# The preflight reads the cluster once, after validation and before the first write.
PREFLIGHT_ACTIONS = {"bigdata.stack.preflight"}
CLUSTER_ACTION_PREFIXES = ("kubernetes.core.", "k8s", "bigdata.stack.")
UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: unreachable
    cluster:
      server: https://127.0.0.1:1
contexts:
  - name: unreachable
    context:
      cluster: unreachable
      user: unreachable
current-context: unreachable
users:
  - name: unreachable
    user:
      token: unreachable
"""


def load_cases():
    cases = []
    for path in sorted(CASES_DIR.glob("*.yml")):
        header = path.read_text()
        inventory = re.search(r"^# inventory: *(\S+)", header, re.M)
        expect = re.search(r"^# expect: *(.+)$", header, re.M)
        if not inventory or not expect:
            raise ValueError("%s needs '# inventory:' and '# expect:' header lines" % path)
        names = [n.strip() for n in expect.group(1).split(",") if n.strip()]
        phase = re.search(r"^# phase: *(\S+)", header, re.M)
        phase = phase.group(1) if phase else "validate"
        if phase not in ("validate", "preflight"):
            raise ValueError("%s: '# phase:' is validate or preflight, not %s" % (path, phase))
        cases.append(pytest.param(path, inventory.group(1), names, phase,
                                  id="%s/%s" % (inventory.group(1), path.stem)))
    return cases


CASES = load_cases()


def isolation(path):
    """A namespace and instance only this case uses (for the check against a real cluster)."""
    digest = hashlib.sha1(path.stem.encode()).hexdigest()[:8]
    return "bdval-" + digest


def run_case(path, inventory, kubeconfig):
    """(the PlaybookRun, the case's namespace)."""
    name = isolation(path)
    # Only the kubeconfig the test chose reaches the modules, none of the caller's K8S_AUTH_*.
    env = {k: None for k in os.environ if k.startswith("K8S_AUTH_")}
    env["K8S_AUTH_KUBECONFIG"] = str(kubeconfig)
    run = playbook.run("site.yml", "-i", "inventories/%s" % inventory, "-e", "bigdata_kubeconfig=%s" % kubeconfig,
                       # The case file comes last, so a case about the namespace keeps its own value.
                       "-e", json.dumps({"bigdata_namespace": name, "bigdata_instance": name}),
                       "-e", "@%s" % path, env=env)
    return run, name


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory):
    path = os.environ.get("BIGDATA_TEST_KUBECONFIG")
    if path:
        if not os.path.isfile(path):
            pytest.fail("BIGDATA_TEST_KUBECONFIG=%s is not a file" % path)
        return pathlib.Path(path)
    unreachable = tmp_path_factory.mktemp("kube") / "unreachable.kubeconfig"
    unreachable.write_text(UNREACHABLE_KUBECONFIG)
    return unreachable


@pytest.fixture(scope="session")
def results(request, kubeconfig):
    """Run every selected case once, two at a time (each is a full ansible-playbook start)."""
    if os.environ.get("BIGDATA_TEST_KUBECONFIG"):
        # The same proof of a simulated cluster the integration tests ask for.
        request.getfixturevalue("sim_kubeconfig")
    # Only this module's cases: other test modules parametrize a "case" of their own.
    selected = [item.callspec.params["case"] for item in request.session.items
                if hasattr(item, "callspec") and "case" in item.callspec.params
                and pathlib.Path(str(item.path)) == pathlib.Path(__file__)
                and (item.callspec.params.get("phase") != "preflight" or os.environ.get("BIGDATA_TEST_KUBECONFIG"))]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c: pool.submit(run_case, c, _inventory_of(c), kubeconfig) for c in selected}
    return {c: f.result() for c, f in futures.items()}


def _inventory_of(path):
    return re.search(r"^# inventory: *(\S+)", path.read_text(), re.M).group(1)


def _messages(result):
    """Every msg of a (possibly looped) task result."""
    found = []
    if isinstance(result, dict):
        for key in ("msg", "message", "stderr"):
            if isinstance(result.get(key), str):
                found.append(result[key])
        for item in result.get("results") or []:
            found += _messages(item)
    return found


def test_cases_exist():
    assert len(CASES) >= 15, "expected at least 15 invalid inventories in %s" % CASES_DIR


@pytest.mark.parametrize(("case", "inventory", "expected", "phase"), CASES)
def test_invalid_inventory_fails_in_validation(case, inventory, expected, phase, results, kubeconfig):
    if phase == "preflight" and not os.environ.get("BIGDATA_TEST_KUBECONFIG"):
        # As every test that needs the cluster (tests/conftest.py): missing, it fails, never skips.
        pytest.fail("a preflight case needs a cluster to be wrong for: set BIGDATA_TEST_KUBECONFIG "
                    "(make test starts the simulated cluster and sets it)")
    run, namespace = results[case]
    report = run.report(4000, 3000)
    assert run.returncode != 0, "the playbook succeeded with %s:\n%s" % (case.name, report)
    ran = run.task_results()
    assert ran, "no task ran (did the playbook fail to parse?):\n" + report
    failed = [r for r in ran if r["status"] == "failed" and not r["ignore_errors"]]
    assert failed, "no task failed:\n" + report
    first = failed[0]
    before = ran[:ran.index(first)]

    touched = [r["task"] for r in before if str(r["action"]).startswith(CLUSTER_ACTION_PREFIXES)
               and r["status"] != "skipped"]
    assert not touched, "tasks talked to the cluster before validation failed: %s" % touched
    changed = [r["task"] for r in before if r["changed"]]
    assert not changed, "tasks changed something before validation failed: %s" % changed
    assert first["action"] in (PREFLIGHT_ACTIONS if phase == "preflight" else VALIDATION_ACTIONS), (
        "the run failed in %r (%s), not in %s:\n%s" % (first["task"], first["action"], phase,
                                                     "\n".join(_messages(first["result"]))[:3000]))
    message = "\n".join(_messages(first["result"]))
    missing = [name for name in expected if name not in message]
    assert not missing, "the failure message does not name %s:\n%s" % (missing, message[:3000])

    if os.environ.get("BIGDATA_TEST_KUBECONFIG"):
        _assert_nothing_created(kubeconfig, namespace)


def _assert_nothing_created(kubeconfig, name):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = config.new_client_from_config(config_file=str(kubeconfig))
    selector = "app.kubernetes.io/part-of=bigdata-stack,app.kubernetes.io/instance=%s" % name
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    policy, net, rbac = client.PolicyV1Api(api), client.NetworkingV1Api(api), client.RbacAuthorizationV1Api(api)
    listings = {
        "Namespace": lambda: core.list_namespace(label_selector=selector),
        "Pod": lambda: core.list_pod_for_all_namespaces(label_selector=selector),
        "Service": lambda: core.list_service_for_all_namespaces(label_selector=selector),
        "ConfigMap": lambda: core.list_config_map_for_all_namespaces(label_selector=selector),
        "Secret": lambda: core.list_secret_for_all_namespaces(label_selector=selector),
        "ServiceAccount": lambda: core.list_service_account_for_all_namespaces(label_selector=selector),
        "PersistentVolumeClaim": lambda: core.list_persistent_volume_claim_for_all_namespaces(label_selector=selector),
        "StatefulSet": lambda: apps.list_stateful_set_for_all_namespaces(label_selector=selector),
        "Deployment": lambda: apps.list_deployment_for_all_namespaces(label_selector=selector),
        "Job": lambda: batch.list_job_for_all_namespaces(label_selector=selector),
        "PodDisruptionBudget": lambda: policy.list_pod_disruption_budget_for_all_namespaces(label_selector=selector),
        "NetworkPolicy": lambda: net.list_network_policy_for_all_namespaces(label_selector=selector),
        "Ingress": lambda: net.list_ingress_for_all_namespaces(label_selector=selector),
        "Role": lambda: rbac.list_role_for_all_namespaces(label_selector=selector),
        "RoleBinding": lambda: rbac.list_role_binding_for_all_namespaces(label_selector=selector),
    }
    created = ["%s/%s" % (kind, item.metadata.name) for kind, listing in listings.items()
               for item in listing().items]
    assert not created, "validation failed, yet these objects exist: %s" % created
    try:
        core.read_namespace(name)
    except ApiException as err:
        assert err.status == 404, err
    else:
        pytest.fail("validation failed, yet namespace %s was created" % name)
