"""bigdata.stack.spark_submit on the simulated cluster, with the real spark-submit (pyspark 4.2.0).

Every submission goes through `ansible-playbook` (playbooks/spark_submit.yml), as users call the
module, and every test reads the outcome back from the API server.

The namespace enforces Pod Security `restricted` and gets what the bigdata.stack.spark role gives
it (its own `apply` entry point: driver ServiceAccount and Role, pod templates, history server).
spark-submit's own driver pod does NOT pass `restricted` (no runAsNonRoot, seccompProfile or
capabilities drop): the driver is admitted only with a pod template carrying a restricted
securityContext, here the role's (test_driver_without_pod_template_is_rejected_by_pod_security).

kwok plays the nodes: a pod labelled spark-role=driver goes Running, then Succeeded about 5 s
later, or Failed with the exit code of its label sim.bigdata.stack/exit-code. No container runs,
so there is no driver log. To hold a driver active for as long as a test needs (a streaming
application), its pod template carries a scheduling gate: the pod stays Pending, which the module
treats like Running (both are active drivers).
"""


from kubernetes import client
from kubernetes.client.rest import ApiException

from helpers import spark_submit, wait_for

SETUP = "tests/integration/playbooks/spark_setup.yml"
IMAGE = "apache/spark:4.2.0"  # the pinned spark_image_tag of the role, same Spark as pyspark 4.2.0
APPLICATION = "local:///opt/spark/examples/src/main/python/pi.py"
DRIVER_SA = "spark-driver"  # the role's spark_service_account
SUBMITTER_SA = "spark-submitter-sa"  # bound to the role's Role spark-submitter (spark_submitter_subjects)
GATE = "bigdata.stack/test-hold"


def app_options(ns, name, **overrides):
    """What a user gives the module: image, account, sizes and the role's pod templates."""
    options = dict(
        name=name, namespace=ns["name"], image=IMAGE, image_pull_policy="IfNotPresent",
        service_account=DRIVER_SA, application=APPLICATION, application_args=["10"],
        driver_cores=1, driver_memory="512m", executor_instances=1, executor_memory="512m",
        driver_pod_template=str(ns["dir"] / "driver.yaml"),
        executor_pod_template=str(ns["dir"] / "executor.yaml"),
        # Small requests: the simulated cluster is shared (spark.driver.cores stays the JVM's view).
        conf={"spark.kubernetes.driver.request.cores": "250m", "spark.kubernetes.driver.limit.cores": "1"},
    )
    options.update(overrides)
    return options


def drivers(api_client, ns, app):
    core = client.CoreV1Api(api_client)
    return core.list_namespaced_pod(ns["name"], label_selector="spark-role=driver,bigdata.stack/app-name=" + app).items


def pod_gone(api_client, namespace, name):
    try:
        client.CoreV1Api(api_client).read_namespaced_pod(name, namespace)
    except ApiException as exc:
        return exc.status == 404
    return False


def names(items):
    return sorted(item.metadata.name for item in items)


def test_submission_builds_the_requested_driver_which_succeeds_then_absent_removes_it(
        api_client, sim_kubeconfig, spark_ns, tmp_path):
    core = client.CoreV1Api(api_client)
    ns = spark_ns["name"]
    assert core.read_namespace(ns).metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    options = app_options(spark_ns, "pi-ok", labels={"team": "data"}, wait=True, wait_timeout=180)

    [result], proc = spark_submit(tmp_path, sim_kubeconfig, options)

    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and result["submitted"]
    assert (result["phase"], result["exit_code"]) == ("Succeeded", 0)
    assert result["spark"]["version"] == "4.2.0" and result["spark"]["image_version"] == "4.2.0"
    # kwok serves no logs: the module says so instead of failing.
    assert len(result["log_tail"]) == 1 and result["log_tail"][0].startswith("(driver log unavailable:")
    assert "--deploy-mode" in result["command"] and "spark.kubernetes.submission.waitAppCompletion=false" in result["command"]
    assert proc.recap()["failed"] == 0

    [pod] = drivers(api_client, spark_ns, "pi-ok")
    assert pod.metadata.name == result["driver_pod"]
    labels = pod.metadata.labels
    assert labels["spark-app-selector"] == result["app_id"] and labels["team"] == "data"
    # Labels and security context come from the role's pod template, the rest from the options.
    assert labels["app.kubernetes.io/part-of"] == "bigdata-stack" and labels["app.kubernetes.io/component"] == "driver"
    assert pod.spec.service_account_name == DRIVER_SA
    assert pod.spec.security_context.run_as_user == 185 and pod.spec.security_context.run_as_non_root
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    [container] = pod.spec.containers
    assert container.name == "spark-kubernetes-driver" and container.image == IMAGE
    assert container.image_pull_policy == "IfNotPresent"
    assert container.security_context.capabilities.drop == ["ALL"]
    assert container.security_context.allow_privilege_escalation is False
    # 512m heap + 384Mi minimum overhead; cpu request/limit from the conf. ephemeral-storage from
    # the role's driver pod template (spark_driver_ephemeral_storage_*): the real spark-submit 4.2.0
    # adds cpu and memory to the template container's resources and keeps the rest.
    assert container.resources.requests == {"cpu": "250m", "memory": "896Mi", "ephemeral-storage": "512Mi"}
    assert container.resources.limits == {"cpu": "1", "memory": "896Mi", "ephemeral-storage": "2Gi"}
    assert container.args[:1] == ["driver"] and APPLICATION in container.args and container.args[-1] == "10"
    # The executor template travels to the driver in a ConfigMap it mounts.
    [template_volume] = [v for v in pod.spec.volumes if v.name == "pod-template-volume"]
    executor_template = core.read_namespaced_config_map(template_volume.config_map.name, ns).data
    assert "spark-kubernetes-executor" in list(executor_template.values())[0]
    # The kwok stage finished it; the module reported exactly that.
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0

    [absent], dummy = spark_submit(tmp_path, sim_kubeconfig, dict(name="pi-ok", namespace=ns, state="absent", wait=True))
    assert not absent.get("failed"), absent.get("msg")
    assert absent["changed"] and absent["killed"] == [pod.metadata.name]
    assert pod_gone(api_client, ns, pod.metadata.name)
    # What the driver owned (its service, ConfigMaps, NetworkPolicy) goes with it (garbage collector).
    wait_for(lambda: not [s for s in core.list_namespaced_service(ns).items
                          if s.metadata.name.startswith(pod.metadata.name)],
             what="the driver's service to be garbage collected")

    [again], dummy = spark_submit(tmp_path, sim_kubeconfig, dict(name="pi-ok", namespace=ns, state="absent"))
    assert not again.get("failed") and not again["changed"] and again["killed"] == []


def test_failing_driver_fails_the_task_with_its_exit_code(api_client, sim_kubeconfig, spark_ns, tmp_path):
    conf = dict(app_options(spark_ns, "x")["conf"])
    conf["spark.kubernetes.driver.label.sim.bigdata.stack/exit-code"] = "3"
    options = app_options(spark_ns, "pi-fails", conf=conf, wait=True, wait_timeout=180)

    [result], proc = spark_submit(tmp_path, sim_kubeconfig, options)

    assert result["failed"] and result["submitted"]
    assert (result["phase"], result["exit_code"]) == ("Failed", 3)
    assert "Spark application pi-fails failed: driver pod %s/%s is Failed, exit code 3." % (
        spark_ns["name"], result["driver_pod"]) in result["msg"]
    # No log under kwok: the message says the log is unavailable, and why, instead of crashing.
    assert "(driver log unavailable: 400 Bad Request: no logs found" in result["msg"]
    assert result["log_tail"][0].startswith("(driver log unavailable:")
    assert proc.recap()["ignored"] == 1
    [pod] = drivers(api_client, spark_ns, "pi-fails")
    assert pod.metadata.name == result["driver_pod"] and pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3


def test_present_twice_submits_a_streaming_app_once_and_restarted_replaces_it(
        api_client, sim_kubeconfig, spark_ns, tmp_path):
    ns = spark_ns["name"]
    # The held template keeps the driver active (Pending behind a scheduling gate) while we look.
    options = app_options(spark_ns, "stream", driver_pod_template=str(spark_ns["dir"] / "driver-held.yaml"))

    first, second = spark_submit(tmp_path, sim_kubeconfig, options, runs=2)[0]

    assert not first.get("failed") and not second.get("failed"), (first.get("msg"), second.get("msg"))
    assert first["changed"] and first["submitted"]
    assert not second["changed"] and not second["submitted"], second
    assert second["driver_pod"] == first["driver_pod"] and second["app_id"] == first["app_id"]
    assert second["phase"] == "Pending"
    [pod] = drivers(api_client, spark_ns, "stream")
    assert pod.metadata.name == first["driver_pod"]
    assert pod.spec.scheduling_gates[0].name == GATE

    # Check mode of absent and restarted: reported, nothing deleted or submitted.
    [dry_absent], dummy = spark_submit(tmp_path, sim_kubeconfig, dict(name="stream", namespace=ns, state="absent"),
                                       check=True)
    [dry_restart], dummy = spark_submit(tmp_path, sim_kubeconfig, dict(options, state="restarted"), check=True)
    assert dry_absent["changed"] and dry_absent["killed"] == [pod.metadata.name]
    assert dry_restart["changed"] and not dry_restart["submitted"] and dry_restart["killed"] == [pod.metadata.name]
    assert names(drivers(api_client, spark_ns, "stream")) == [pod.metadata.name]

    [restarted], dummy = spark_submit(tmp_path, sim_kubeconfig, dict(options, state="restarted"))

    assert not restarted.get("failed"), restarted.get("msg")
    assert restarted["changed"] and restarted["submitted"] and restarted["killed"] == [pod.metadata.name]
    assert restarted["driver_pod"] != pod.metadata.name and restarted["app_id"] != first["app_id"]
    assert pod_gone(api_client, ns, pod.metadata.name)
    [new] = drivers(api_client, spark_ns, "stream")
    assert new.metadata.name == restarted["driver_pod"]
    assert new.metadata.labels["spark-app-selector"] == restarted["app_id"]
    assert new.metadata.labels["bigdata.stack/submission-id"] != pod.metadata.labels["bigdata.stack/submission-id"]


def test_check_mode_submits_nothing(api_client, sim_kubeconfig, spark_ns, tmp_path):
    core = client.CoreV1Api(api_client)
    ns = spark_ns["name"]
    before = (names(core.list_namespaced_config_map(ns).items), names(core.list_namespaced_service(ns).items))

    [result], proc = spark_submit(tmp_path, sim_kubeconfig, app_options(spark_ns, "dry-run"), check=True)

    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and not result["submitted"] and result["driver_pod"] is None
    assert result["command"][0].endswith("/pyspark/bin/spark-submit")
    assert "spark.kubernetes.container.image=" + IMAGE in result["command"]
    assert drivers(api_client, spark_ns, "dry-run") == []
    assert core.list_namespaced_pod(ns, label_selector="spark-app-name=dry-run").items == []
    assert (names(core.list_namespaced_config_map(ns).items), names(core.list_namespaced_service(ns).items)) == before


def test_driver_account_without_rbac_fails_before_submitting(api_client, sim_kubeconfig, spark_ns, tmp_path):
    ns = spark_ns["name"]
    client.CoreV1Api(api_client).create_namespaced_service_account(ns, {"metadata": {"name": "no-rbac"}})

    [result], dummy = spark_submit(tmp_path, sim_kubeconfig, app_options(spark_ns, "no-rbac-app", service_account="no-rbac"))

    assert result["failed"] and not result["submitted"]
    assert result["msg"].startswith(
        "service account %s/no-rbac, which the Spark driver runs as, may not create/delete configmaps; "
        "create/get/list/watch/delete pods; create/delete services." % ns), result["msg"]
    assert "the bigdata.stack.spark role creates one" in result["msg"]
    assert drivers(api_client, spark_ns, "no-rbac-app") == []


def _token(api_client, namespace, account):
    core = client.CoreV1Api(api_client)
    request = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"audiences": [], "expirationSeconds": 600}})
    return request.status.token


def _token_options(api_client, spark_ns, name, account):
    token = _token(api_client, spark_ns["name"], account)
    configuration = api_client.configuration
    return token, app_options(spark_ns, name, host=configuration.host, api_key=token, ca_cert=configuration.ssl_ca_cert)


def test_submitter_without_rbac_gets_the_403_in_words_and_the_token_stays_secret(
        api_client, sim_kubeconfig, spark_ns, tmp_path):
    ns = spark_ns["name"]
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    # May look at pods (the module's own reads) and hold the submission lock (a ConfigMap), but not
    # create pods. (Without the ConfigMap rights the lock is refused first: a unit test has that message.)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "read-only"}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "pods-read"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "delete"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "read-only"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods-read"},
        "subjects": [{"kind": "ServiceAccount", "name": "read-only", "namespace": ns}]})
    token, options = _token_options(api_client, spark_ns, "denied", "read-only")

    [result], proc = spark_submit(tmp_path, None, options, verbose=True)

    assert result["failed"] and not result["submitted"]
    assert result["msg"] == (
        "spark-submit was denied by the API server: system:serviceaccount:%s:read-only may not create pods in "
        "namespace %s; grant it with a Role and RoleBinding" % (ns, ns))
    # The submitter may not create SubjectAccessReviews: the driver account check is skipped, said aloud.
    assert "could not check the RBAC of service account %s/%s" % (ns, DRIVER_SA) in proc.stdout + proc.stderr
    # Given as api_key, passed to spark-submit in a file: never printed, not even with -vvv.
    assert token not in proc.stdout and token not in proc.stderr
    assert any(arg.startswith("spark.kubernetes.authenticate.submission.oauthTokenFile=") for arg in result["command"])
    assert drivers(api_client, spark_ns, "denied") == []


def test_role_spark_submitter_is_enough_to_submit_with_a_token(api_client, sim_kubeconfig, spark_ns, tmp_path):
    token, options = _token_options(api_client, spark_ns, "as-submitter", SUBMITTER_SA)

    [result], proc = spark_submit(tmp_path, None, options)

    assert token not in proc.stdout and token not in proc.stderr
    assert not result.get("failed"), result.get("msg")
    assert result["submitted"]
    assert names(drivers(api_client, spark_ns, "as-submitter")) == [result["driver_pod"]]


def test_driver_without_pod_template_is_rejected_by_pod_security(api_client, sim_kubeconfig, spark_ns, tmp_path):
    """Product fact: spark-submit's own driver pod cannot run in a `restricted` namespace."""
    core = client.CoreV1Api(api_client)
    ns = spark_ns["name"]
    options = app_options(spark_ns, "no-template")
    del options["driver_pod_template"], options["executor_pod_template"]
    before = names(core.list_namespaced_config_map(ns).items)

    [result], dummy = spark_submit(tmp_path, sim_kubeconfig, options)

    assert result["failed"] and not result["submitted"]
    message = result["msg"]
    assert message.startswith("spark-submit failed with exit code 1: the API server refused POST "), message
    assert 'is forbidden: violates PodSecurity "restricted:latest"' in message
    for violation in ("capabilities.drop=[\"ALL\"]", "runAsNonRoot=true", "seccompProfile.type"):
        assert violation in message
    assert "driver_pod_template" in message
    assert drivers(api_client, spark_ns, "no-template") == []
    assert names(core.list_namespaced_config_map(ns).items) == before  # spark-submit cleaned up after itself

