# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""spark.py: conf and command building, masking, versions, Java, RBAC, driver pods."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from ansible_collections.bigdata.stack.plugins.module_utils import spark as sp


def params(**overrides):
    base = dict(
        name="wordcount", namespace="bigdata", application="local:///opt/spark/app.py", main_class=None,
        application_args=[], image="apache/spark:4.0.1", image_pull_policy=None, service_account=None,
        driver_cores=None, driver_memory=None, executor_cores=None, executor_memory=None,
        executor_instances=None, dynamic_allocation=False, driver_pod_template=None, executor_pod_template=None,
        conf={}, labels={}, secrets={}, env_secrets={}, event_log_dir=None,
    )
    base.update(overrides)
    return base


def conf_of(**overrides):
    return dict(sp.build_conf(params(**overrides), "sub123"))


class TestBuildConf:
    def test_defaults_pin_namespace_image_labels_and_no_waiting_in_spark_submit(self):
        conf = conf_of()
        assert conf["spark.kubernetes.namespace"] == "bigdata"
        assert conf["spark.kubernetes.container.image"] == "apache/spark:4.0.1"
        assert conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
        assert conf["spark.kubernetes.driver.label.bigdata.stack/app-name"] == "wordcount"
        assert conf["spark.kubernetes.driver.label.bigdata.stack/submission-id"] == "sub123"
        assert conf["spark.kubernetes.executor.label.bigdata.stack/app-name"] == "wordcount"
        assert "spark.kubernetes.authenticate.driver.serviceAccountName" not in conf
        assert "spark.executor.instances" not in conf

    def test_resources_service_account_and_pull_policy(self):
        conf = conf_of(driver_cores=1, driver_memory="1g", executor_cores=2, executor_memory="4g",
                       executor_instances=3, service_account="spark", image_pull_policy="Never")
        assert conf["spark.driver.cores"] == "1"
        assert conf["spark.driver.memory"] == "1g"
        assert conf["spark.executor.cores"] == "2"
        assert conf["spark.executor.memory"] == "4g"
        assert conf["spark.executor.instances"] == "3"
        assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
        assert conf["spark.kubernetes.container.image.pullPolicy"] == "Never"

    def test_dynamic_allocation_turns_on_shuffle_tracking_and_drops_instances(self):
        conf = conf_of(dynamic_allocation=True, executor_instances=None)
        assert conf["spark.dynamicAllocation.enabled"] == "true"
        assert conf["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
        assert "spark.executor.instances" not in conf

    def test_secrets_mount_and_env_refs_go_to_driver_and_executors(self):
        conf = conf_of(secrets={"kafka-tls": "/etc/kafka-tls"}, env_secrets={"ES_PASSWORD": "es-writer:password"})
        assert conf["spark.kubernetes.driver.secrets.kafka-tls"] == "/etc/kafka-tls"
        assert conf["spark.kubernetes.executor.secrets.kafka-tls"] == "/etc/kafka-tls"
        assert conf["spark.kubernetes.driver.secretKeyRef.ES_PASSWORD"] == "es-writer:password"
        assert conf["spark.kubernetes.executor.secretKeyRef.ES_PASSWORD"] == "es-writer:password"

    def test_event_log_and_labels_and_pod_templates(self):
        conf = dict(sp.build_conf(
            params(event_log_dir="hdfs://nn:8020/spark-logs", labels={"app.kubernetes.io/part-of": "bigdata-stack"}),
            "sub123", pod_templates={"driver": "/tmp/d.yaml", "executor": "/tmp/e.yaml"},
        ))
        assert conf["spark.eventLog.enabled"] == "true"
        assert conf["spark.eventLog.dir"] == "hdfs://nn:8020/spark-logs"
        assert conf["spark.kubernetes.driver.label.app.kubernetes.io/part-of"] == "bigdata-stack"
        assert conf["spark.kubernetes.executor.label.app.kubernetes.io/part-of"] == "bigdata-stack"
        assert conf["spark.kubernetes.driver.podTemplateFile"] == "/tmp/d.yaml"
        assert conf["spark.kubernetes.executor.podTemplateFile"] == "/tmp/e.yaml"

    def test_user_conf_comes_last_and_overrides_options(self):
        pairs = sp.build_conf(params(executor_memory="1g", conf={"spark.executor.memory": "8g", "spark.ui.enabled": False}), "s")
        keys = [k for k, v in pairs]
        assert keys.count("spark.executor.memory") == 1
        assert dict(pairs)["spark.executor.memory"] == "8g"
        assert dict(pairs)["spark.ui.enabled"] == "false"
        assert keys[-2:] == ["spark.executor.memory", "spark.ui.enabled"]

    def test_without_on_demand_claims_the_driver_neither_owns_nor_reuses_claims(self):
        """Spark's defaults would make every driver list and delete the namespace's claims, which the
        spark role's Role allows only with spark_driver_pvc_enabled (a 403 logged at each stop)."""
        conf = conf_of()
        assert conf["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "false"
        assert conf["spark.kubernetes.driver.reusePersistentVolumeClaim"] == "false"

    def test_an_on_demand_claim_keeps_sparks_claim_ownership(self):
        key = "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.claimName"
        conf = conf_of(conf={key: "OnDemand"})
        assert conf[key] == "OnDemand"
        assert "spark.kubernetes.driver.ownPersistentVolumeClaim" not in conf
        assert "spark.kubernetes.driver.reusePersistentVolumeClaim" not in conf
        # A claim of the user's own (not on demand) is not the driver's to delete.
        assert conf_of(conf={key: "my-claim"})["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "false"

    def test_user_conf_decides_claim_ownership(self):
        conf = conf_of(conf={"spark.kubernetes.driver.ownPersistentVolumeClaim": "true"})
        assert conf["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "true"

    def test_user_conf_may_not_take_over_tracking(self):
        with pytest.raises(sp.SparkError, match="waitAppCompletion"):
            conf_of(conf={"spark.kubernetes.submission.waitAppCompletion": "true"})

    def test_auth_conf_is_included(self):
        conf = dict(sp.build_conf(params(), "s", auth_conf={"spark.kubernetes.authenticate.submission.caCertFile": "/ca"}))
        assert conf["spark.kubernetes.authenticate.submission.caCertFile"] == "/ca"


class TestBuildCommand:
    def test_python_app_in_cluster_mode(self):
        command = sp.build_command("/opt/spark/bin/spark-submit", "k8s://https://10.0.0.1:6443",
                                   params(application_args=["in.txt", 3]), [("a", "1")])
        assert command == [
            "/opt/spark/bin/spark-submit", "--master", "k8s://https://10.0.0.1:6443", "--deploy-mode", "cluster",
            "--name", "wordcount", "--conf", "a=1", "local:///opt/spark/app.py", "in.txt", "3",
        ]

    def test_jar_app_gets_main_class_before_the_jar(self):
        command = sp.build_command("spark-submit", "k8s://https://h:443", params(
            application="local:///opt/spark/examples/jars/spark-examples.jar", main_class="org.apache.spark.examples.SparkPi"),
            [], application=None)
        assert command[command.index("--class") + 1] == "org.apache.spark.examples.SparkPi"
        assert command.index("--class") < command.index("local:///opt/spark/examples/jars/spark-examples.jar")

    def test_application_override_for_configmap_mount(self):
        command = sp.build_command("spark-submit", "k8s://x", params(application="files/etl.py"), [],
                                   application="local:///opt/spark/app/etl.py")
        assert command[-1] == "local:///opt/spark/app/etl.py"


class TestMasking:
    def test_sensitive_conf_values_are_masked_references_are_not(self):
        command = ["spark-submit", "--conf", "spark.hadoop.fs.s3a.secret.key=AKIAsecretvalue",
                   "--conf", "spark.hadoop.fs.s3a.access.key=AKIAID",
                   "--conf", "spark.ssl.keyStorePassword=hunter22",
                   "--conf", "spark.authenticate.secret=sharedsecret1",
                   "--conf", "spark.hadoop.fs.s3a.session.token=FQoGZXIvYXdzE",
                   "--conf", "spark.kubernetes.driver.secrets.kafka-tls=/etc/tls",
                   "--conf", "spark.kubernetes.driver.secretKeyRef.PW=es:password",
                   "--conf", "spark.kubernetes.authenticate.submission.oauthTokenFile=/tmp/x/token",
                   "--conf", "spark.executor.memory=1g", "app.py", "--password=visible-only-if-not-known"]
        masked = sp.mask_command(command, secrets=["visible-only-if-not-known"])
        assert "spark.hadoop.fs.s3a.secret.key=********" in masked
        assert "spark.hadoop.fs.s3a.access.key=********" in masked
        assert "spark.ssl.keyStorePassword=********" in masked
        assert "spark.authenticate.secret=********" in masked
        assert "spark.hadoop.fs.s3a.session.token=********" in masked
        assert "spark.kubernetes.driver.secrets.kafka-tls=/etc/tls" in masked
        assert "spark.kubernetes.driver.secretKeyRef.PW=es:password" in masked
        assert "spark.kubernetes.authenticate.submission.oauthTokenFile=/tmp/x/token" in masked
        assert "spark.executor.memory=1g" in masked
        assert "AKIAsecretvalue" not in " ".join(masked)
        assert "visible-only-if-not-known" not in " ".join(masked)
        assert command[2].endswith("AKIAsecretvalue")  # the original is left alone

    def test_mask_text_hides_known_secrets_and_bearer_headers(self):
        text = "Authorization: Bearer eyJhbGciOi.abc\noauthToken=tok123456 password=pw-987 token s3cr3t-token"
        masked = sp.mask_text(text, ["s3cr3t-token"])
        for secret in ("eyJhbGciOi.abc", "tok123456", "pw-987", "s3cr3t-token"):
            assert secret not in masked
        assert masked.count(sp.MASK) == 4


class TestVersions:
    @pytest.mark.parametrize("image, version", [
        ("apache/spark:4.0.1", "4.0.1"),
        ("apache/spark:4.0.1-scala2.13-java17-python3-ubuntu", "4.0.1"),
        ("spark:3.5.3-python3", "3.5.3"),
        ("registry.local:5000/team/spark:v4.1.0", "4.1.0"),
        ("registry.local:5000/team/spark", None),
        ("apache/spark:latest", None),
        ("apache/spark:python3", None),
        ("apache/spark@sha256:0123abcd", None),
        ("ghcr.io/x/spark:4.0", "4.0"),
    ])
    def test_image_tag_version(self, image, version):
        assert sp.image_spark_version(image) == version

    def test_client_and_image_must_share_major_minor(self):
        assert sp.versions_match("4.0.1", "4.0.0")
        assert not sp.versions_match("4.3.0", "4.0.1")
        assert not sp.versions_match("3.5.3", "4.0.1")
        assert sp.versions_match("4.3.0", None)  # tag is not a version: nothing to compare

    def test_mismatch_message_names_both_versions_and_the_fixes(self):
        msg = sp.version_mismatch_message("4.3.0", "/venv/pyspark/bin/spark-submit", "apache/spark:4.0.1", "4.0.1")
        assert "4.3.0" in msg and "4.0.1" in msg and "apache/spark:4.0.1" in msg
        assert "pip install pyspark==4.0.1" in msg and "check_image_version" in msg

    def test_client_version_sources(self):
        assert sp.spark_version_from_jars(["scala-library-2.13.16.jar", "spark-core_2.13-4.3.0.jar"]) == "4.3.0"
        assert sp.spark_version_from_jars(["spark-sql_2.13-4.3.0.jar"]) is None
        assert sp.spark_version_from_release("Spark 4.0.1 built for Hadoop 3.4.1\nBuild flags: -B") == "4.0.1"
        banner = "Welcome to\n   /___/ .__/\\_,_/_/ /_/\\_\\   version 4.3.0\n      /_/\nUsing Scala version 2.13.18"
        assert sp.spark_version_from_submit_output(banner) == "4.3.0"

    def test_spark_home_version_reads_jars_then_release(self, tmp_path):
        (tmp_path / "jars").mkdir()
        (tmp_path / "jars" / "spark-core_2.13-4.0.1.jar").write_text("")
        assert sp.spark_home_version(str(tmp_path)) == "4.0.1"
        other = tmp_path / "other"
        other.mkdir()
        (other / "RELEASE").write_text("Spark 3.5.3 built for Hadoop 3.3.4\n")
        assert sp.spark_home_version(str(other)) == "3.5.3"


class TestJava:
    @pytest.mark.parametrize("text, major", [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.22" 2024-01-16', 11),
        ('IMPLEMENTOR="Debian"\nJAVA_VERSION="17.0.15"', 17),
        ("bash: java: command not found", None),
    ])
    def test_parse_java_major(self, text, major):
        assert sp.parse_java_major(text) == major

    def test_spark4_needs_java17_spark3_java8(self):
        assert sp.required_java("4.0.1") == 17
        assert sp.required_java("3.5.3") == 8
        assert sp.required_java(None) == 17

    def test_find_java_prefers_java_home(self, tmp_path):
        java = tmp_path / "bin" / "java"
        java.parent.mkdir()
        java.write_text("#!/bin/sh\n")
        java.chmod(0o755)
        (tmp_path / "release").write_text('JAVA_VERSION="11.0.2"\n')
        found = sp.find_java({"JAVA_HOME": str(tmp_path)}, which=lambda name: "/usr/bin/java")
        assert found == str(java)
        assert sp.java_release_major(found) == 11

    def test_find_java_broken_java_home_and_missing_java(self, tmp_path):
        with pytest.raises(sp.SparkError, match="JAVA_HOME is .* has no bin/java"):
            sp.find_java({"JAVA_HOME": str(tmp_path)}, which=lambda name: "/usr/bin/java")
        with pytest.raises(sp.SparkError, match="Java not found.*JAVA_HOME"):
            sp.find_java({}, which=lambda name: None)

    def test_too_old_message(self):
        msg = sp.java_too_old_message("/usr/bin/java", 11, 17, "4.0.1")
        assert "Java 11" in msg and "Java 17" in msg and "java -version" in msg and "JAVA_HOME" in msg


class TestFindSpark:
    def _home(self, tmp_path, name):
        home = tmp_path / name
        (home / "bin").mkdir(parents=True)
        submit = home / "bin" / "spark-submit"
        submit.write_text("#!/bin/sh\n")
        submit.chmod(0o755)
        return home

    def test_order_spark_home_then_pyspark_then_path(self, tmp_path):
        home = self._home(tmp_path, "dist")
        pyspark = self._home(tmp_path, "pyspark")
        assert sp.find_spark(str(home), str(pyspark), lambda n: None) == (str(home / "bin" / "spark-submit"), str(home))
        assert sp.find_spark(None, str(pyspark), lambda n: None) == (str(pyspark / "bin" / "spark-submit"), str(pyspark))
        on_path = str(home / "bin" / "spark-submit")
        assert sp.find_spark(None, None, lambda n: on_path) == (on_path, str(home))

    def test_not_found_says_how_to_fix(self, tmp_path):
        with pytest.raises(sp.SparkError, match="pip install pyspark.*spark_home"):
            sp.find_spark(None, str(tmp_path), lambda n: None)
        with pytest.raises(sp.SparkError, match="has no executable bin/spark-submit"):
            sp.find_spark(str(tmp_path), None, lambda n: None)


class TestSubmissionAuth:
    def cfg(self, **overrides):
        base = dict(host="https://10.0.0.1:6443", ssl_ca_cert="/tmp/ca.crt", cert_file=None, key_file=None,
                    verify_ssl=True, api_key={}, username=None, password=None, tls_server_name=None, proxy=None)
        base.update(overrides)
        return SimpleNamespace(**base)

    def test_token_is_returned_apart_from_conf(self):
        master, conf, token, warnings = sp.submission_auth(self.cfg(api_key={"authorization": "Bearer abc.def"}))
        assert master == "k8s://https://10.0.0.1:6443"
        assert conf == {"spark.kubernetes.authenticate.submission.caCertFile": "/tmp/ca.crt"}
        assert token == "abc.def"
        assert not any("abc.def" in v for v in conf.values())
        assert warnings == []

    def test_kubeconfig_bearer_token_key_and_refresh_hook(self):
        cfg = self.cfg()
        cfg.get_api_key_with_prefix = lambda identifier, alias=None: "Bearer refreshed-token"
        assert sp.submission_auth(cfg)[2] == "refreshed-token"
        assert sp.bearer_token(self.cfg(api_key={"BearerToken": "Bearer kc-token"})) == "kc-token"

    def test_client_certificate_and_insecure(self):
        master, conf, token, warnings = sp.submission_auth(
            self.cfg(host="https://api.example.com", cert_file="/c.crt", key_file="/c.key", verify_ssl=False))
        assert master == "k8s://https://api.example.com:443"
        assert conf["spark.kubernetes.authenticate.submission.clientCertFile"] == "/c.crt"
        assert conf["spark.kubernetes.authenticate.submission.clientKeyFile"] == "/c.key"
        assert conf["spark.kubernetes.trust.certificates"] == "true"
        assert token is None

    def test_basic_auth_is_refused_with_advice(self):
        with pytest.raises(sp.SparkError, match="api_key.*client_cert"):
            sp.submission_auth(self.cfg(username="admin", password="pw"))

    def test_plain_http_gets_port_80(self):
        assert sp.submission_auth(self.cfg(host="http://127.0.0.1", ssl_ca_cert=None))[0] == "k8s://http://127.0.0.1:80"


class TestRbac:
    def test_review_asks_as_the_service_account(self):
        review = sp.subject_access_review("bigdata", "spark", "pods", "create")
        assert review["spec"]["user"] == "system:serviceaccount:bigdata:spark"
        assert "system:serviceaccounts:bigdata" in review["spec"]["groups"]
        assert review["spec"]["resourceAttributes"] == {
            "namespace": "bigdata", "verb": "create", "group": "", "resource": "pods"}

    def test_denial_message_from_real_review_responses(self):
        allowed = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                   "status": {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "spark/bigdata" of Role "spark"'}}
        denied = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "status": {"allowed": False}}
        reviews = [(("pods", "create"), allowed), (("pods", "delete"), denied), (("services", "create"), denied),
                   (("services", "delete"), denied), (("configmaps", "create"), allowed)]
        found = sp.rbac_denials(reviews)
        assert [(r, v) for r, v, dummy in found] == [("pods", "delete"), ("services", "create"), ("services", "delete")]
        msg = sp.rbac_denied_message("bigdata", "spark", found)
        assert "bigdata/spark" in msg
        assert "delete pods" in msg and "create/delete services" in msg
        assert "configmaps" not in msg

    def test_forbidden_from_spark_submit_stderr(self):
        stderr = (
            "Exception in thread \"main\" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: "
            "POST at: https://10.0.0.1:6443/api/v1/namespaces/bigdata/pods. Message: Forbidden!Configured service "
            "account doesn't have access. Service account may have been revoked. pods is forbidden: User "
            "\"system:serviceaccount:ci:deployer\" cannot create resource \"pods\" in API group \"\" in the namespace "
            "\"bigdata\"."
        )
        forbidden = sp.parse_forbidden(stderr)
        assert forbidden == {"user": "system:serviceaccount:ci:deployer", "verb": "create", "resource": "pods",
                             "namespace": "bigdata"}
        msg = sp.forbidden_message(forbidden, "spark-submit")
        assert "system:serviceaccount:ci:deployer may not create pods in namespace bigdata" in msg
        assert sp.parse_forbidden("Exception: connection refused") is None


class TestPodTemplates:
    def test_new_templates_mount_the_configmap_in_spark_containers(self):
        driver = sp.pod_template_with_app_volume(None, "driver", "etl-code", "/opt/spark/app")
        executor = sp.pod_template_with_app_volume(None, "executor", "etl-code", "/opt/spark/app")
        assert driver["spec"]["volumes"] == [{"name": "bigdata-app-code", "configMap": {"name": "etl-code"}}]
        assert driver["spec"]["containers"][0]["name"] == "spark-kubernetes-driver"
        assert executor["spec"]["containers"][0]["name"] == "spark-kubernetes-executor"
        assert driver["spec"]["containers"][0]["volumeMounts"] == [
            {"name": "bigdata-app-code", "mountPath": "/opt/spark/app", "readOnly": True}]

    def test_user_template_is_merged_not_replaced(self):
        user = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "data"}},
                "spec": {"securityContext": {"fsGroup": 185},
                         "volumes": [{"name": "scratch", "emptyDir": {}}],
                         "containers": [{"name": "sidecar"}, {"name": "main", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}]}}
        merged = sp.pod_template_with_app_volume(user, "driver", "code", "/app", container_name="main")
        assert merged["metadata"]["labels"] == {"team": "data"}
        assert merged["spec"]["securityContext"] == {"fsGroup": 185}
        assert [v["name"] for v in merged["spec"]["volumes"]] == ["scratch", "bigdata-app-code"]
        assert "volumeMounts" not in merged["spec"]["containers"][0]
        assert [m["name"] for m in merged["spec"]["containers"][1]["volumeMounts"]] == ["scratch", "bigdata-app-code"]
        assert "bigdata-app-code" not in str(user)  # input untouched

    def test_configmap_manifest_text_and_binary(self):
        text = sp.app_configmap_manifest("c", "ns", "etl.py", b"print('hi')\n", "etl")
        assert text["data"] == {"etl.py": "print('hi')\n"}
        assert text["metadata"]["labels"] == {"bigdata.stack/app-name": "etl"}
        binary = sp.app_configmap_manifest("c", "ns", "app.jar", b"PK\x03\x04\xff\xfe", "etl",
                                           {"app.kubernetes.io/instance": "bigdata", "team": 7})
        assert binary["metadata"]["labels"] == {"app.kubernetes.io/instance": "bigdata", "team": "7",
                                                "bigdata.stack/app-name": "etl"}
        assert binary["binaryData"] == {"app.jar": "UEsDBP/+"}
        assert "data" not in binary

    def test_application_paths(self):
        assert sp.app_configmap_application("files/etl.py", "/opt/spark/app/") == "local:///opt/spark/app/etl.py"
        assert sp.app_configmap_application("file:///home/me/etl.py", "/app") == "local:///app/etl.py"
        assert sp.app_configmap_application("local:///opt/x.py", "/app") == "local:///opt/x.py"
        assert sp.is_client_file("etl.py") and sp.is_client_file("file:///x.py")
        assert not sp.is_client_file("local:///x.py") and not sp.is_client_file("s3a://b/x.py")


class TestDriverPods:
    def pod(self, phase, exit_code=None, deleting=False, created="2026-01-01T00:00:00Z"):
        state = {"running": {}} if exit_code is None else {"terminated": {"exitCode": exit_code}}
        meta = {"name": "app-%s-driver" % phase.lower(), "labels": {"spark-app-selector": "spark-123"},
                "creationTimestamp": created}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
        return {"metadata": meta, "status": {"phase": phase, "containerStatuses": [
            {"name": "spark-kubernetes-driver", "state": state}]}}

    def test_active_and_finished(self):
        assert sp.is_active(self.pod("Running")) and sp.is_active(self.pod("Pending"))
        assert not sp.is_active(self.pod("Running", deleting=True))
        assert not sp.is_active(self.pod("Succeeded", 0))
        assert sp.driver_finished(self.pod("Failed", 1))
        assert sp.driver_finished(self.pod("Running", 0))  # driver ended, a sidecar still runs
        assert not sp.driver_finished(self.pod("Running"))

    def test_summary_and_failure(self):
        assert sp.driver_summary(self.pod("Succeeded", 0)) == {
            "driver_pod": "app-succeeded-driver", "app_id": "spark-123", "phase": "Succeeded", "exit_code": 0}
        assert not sp.driver_failed(self.pod("Succeeded", 0))
        assert sp.driver_failed(self.pod("Failed", 1))
        assert sp.driver_failed(self.pod("Running", 137))

    def test_newest_first_and_selector(self):
        old, new = self.pod("Running", created="2026-01-01T00:00:00Z"), self.pod("Pending", created="2026-02-01T00:00:00Z")
        assert sp.newest_first([old, new]) == [new, old]
        assert sp.driver_selector("etl") == "spark-role=driver,bigdata.stack/app-name=etl"

    @pytest.mark.parametrize("name", ["etl", "etl-2.daily", "a" * 63])
    def test_valid_names(self, name):
        sp.validate_app_name(name)

    @pytest.mark.parametrize("name", ["ETL", "etl_job", "-etl", "etl-", "a" * 64, ""])
    def test_invalid_names(self, name):
        with pytest.raises(sp.SparkError, match="lower case"):
            sp.validate_app_name(name)


def test_private_header_on_module_utils():
    utils = os.path.join(os.path.dirname(sp.__file__))
    for name in ("spark.py", "health.py", "waiter.py", "k8s_client.py"):
        with open(os.path.join(utils, name)) as handle:
            assert "PRIVATE to the bigdata.stack collection" in handle.read(1200), name


# Real spark-submit (pyspark 4.3.0) output against the simulated cluster (kube-apiserver 1.36.3).
SPARK_43_SSA_FORBIDDEN = (
    'Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: PATCH at: '
    "https://127.0.0.1:32764/apis/networking.k8s.io/v1/namespaces/ci/networkpolicies/etl-f0874da22095f9b2-policy"
    "?fieldManager=fabric8&force=true. Message: networkpolicies.networking.k8s.io \"etl-f0874da22095f9b2-policy\" "
    'is forbidden: User "system:serviceaccount:ci:submitter" cannot patch resource "networkpolicies" in API group '
    '"networking.k8s.io" in the namespace "ci". Received status: Status(apiVersion=v1, code=403, details=StatusDetails('
    "causes=[], group=networking.k8s.io, kind=networkpolicies, name=etl-f0874da22095f9b2-policy), kind=Status, "
    "message=networkpolicies.networking.k8s.io ..., reason=Forbidden, status=Failure).\n"
    "\tat io.fabric8.kubernetes.client.KubernetesClientException.copyAsCause(KubernetesClientException.java:205)\n"
)
SPARK_43_POD_SECURITY = (
    'Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: '
    "https://127.0.0.1:32764/api/v1/namespaces/ci/pods. Message: pods \"etl-f83a59a22093f1db-driver\" is forbidden: "
    'violates PodSecurity "restricted:latest": unrestricted capabilities (container "spark-kubernetes-driver" must '
    'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
    '"spark-kubernetes-driver" must set securityContext.runAsNonRoot=true). Received status: Status(apiVersion=v1, '
    "code=403, reason=Forbidden, status=Failure).\n"
    "\tat io.netty.util.concurrent.FastThreadLocalRunnable.run(FastThreadLocalRunnable.java:30)\n"
)


class TestSpark4SubmitFailures:
    def test_forbidden_on_a_named_object_server_side_apply(self):
        # Spark 4 server-side applies its ConfigMaps and NetworkPolicy: the 403 names the object.
        forbidden = sp.parse_forbidden(SPARK_43_SSA_FORBIDDEN)
        assert forbidden == {"user": "system:serviceaccount:ci:submitter", "verb": "patch",
                             "resource": "networkpolicies.networking.k8s.io", "namespace": "ci"}
        assert "may not patch networkpolicies.networking.k8s.io in namespace ci" in sp.forbidden_message(
            forbidden, "spark-submit")
        named_core = 'configmaps "spark-drv-1-conf-map" is forbidden: User "u" cannot patch resource "configmaps" in API group "" in the namespace "ci"'
        assert sp.parse_forbidden(named_core) == {"user": "u", "verb": "patch", "resource": "configmaps", "namespace": "ci"}

    def test_pod_security_rejection_is_not_an_rbac_denial_but_is_surfaced(self):
        assert sp.parse_forbidden(SPARK_43_POD_SECURITY) is None
        verb, url, message = sp.parse_api_failure(SPARK_43_POD_SECURITY)
        assert (verb, url) == ("POST", "https://127.0.0.1:32764/api/v1/namespaces/ci/pods")
        assert message.startswith('pods "etl-f83a59a22093f1db-driver" is forbidden: violates PodSecurity "restricted:latest"')
        assert message.endswith("securityContext.runAsNonRoot=true)")
        text = sp.api_failure_message(1, (verb, url, message))
        assert "exit code 1" in text and "driver_pod_template" in text and "spark-pod-templates" in text
        assert sp.parse_api_failure("Error: Unrecognized option: --bogus") is None
