# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""spark_submit: state logic, checks and output, with a fake API server and a fake spark-submit."""

from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import pytest
from ansible.module_utils import basic

from ansible_collections.bigdata.stack.plugins.modules import spark_submit

from conftest import make_pod

TOKEN = "tok-0123456789abcdef"


@pytest.fixture
def env(tmp_path, monkeypatch, fake_rest):
    """A Spark 4.0.1 client, Java 17 and a cluster; spark-submit "creates" the driver pod it is asked for."""
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    (home / "jars").mkdir()
    (home / "jars" / "spark-core_2.13-4.0.1.jar").write_text("")
    submit = home / "bin" / "spark-submit"
    submit.write_text("#!/bin/sh\nexit 99\n")
    submit.chmod(0o755)
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("#!/bin/sh\n")
    (java_home / "bin" / "java").chmod(0o755)
    (java_home / "release").write_text('JAVA_VERSION="17.0.15"\n')
    monkeypatch.setenv("JAVA_HOME", str(java_home))

    configuration = SimpleNamespace(host="https://10.0.0.1:6443", ssl_ca_cert="/tmp/ca.crt", cert_file=None,
                                    key_file=None, verify_ssl=True, api_key={"authorization": "Bearer " + TOKEN},
                                    username=None, password=None, tls_server_name=None, proxy=None)
    monkeypatch.setattr(spark_submit, "connect", lambda module: (fake_rest, configuration))

    state = SimpleNamespace(commands=[], token_files=[], rc=0, stderr="", home=home, rest=fake_rest,
                            driver_phase="Pending", java_home=java_home, pod_templates={})

    def run_command(self, args, environ_update=None, **kwargs):
        state.commands.append((list(args), dict(environ_update or {})))
        if not args[0].endswith("spark-submit") or "--version" in args:
            return 0, "", ""
        conf = dict(a.split("=", 1) for a in args if "=" in a and a.startswith("spark."))
        token_file = conf.get("spark.kubernetes.authenticate.submission.oauthTokenFile")
        if token_file:
            with open(token_file) as handle:
                state.token_files.append((token_file, handle.read(), stat.S_IMODE(os.stat(token_file).st_mode)))
        for key, value in conf.items():
            if key.endswith(".podTemplateFile"):
                with open(value) as handle:
                    state.pod_templates[key.split(".")[2]] = (value, handle.read(), stat.S_IMODE(os.stat(value).st_mode))
        if state.rc == 0:
            labels = {"spark-role": "driver", "spark-app-selector": "spark-feedc0de"}
            for key, value in conf.items():
                if key.startswith("spark.kubernetes.driver.label."):
                    labels[key[len("spark.kubernetes.driver.label."):]] = value
            name = args[args.index("--name") + 1]
            fake_rest.add_pod(make_pod(name + "-1a2b3c-driver", phase=state.driver_phase, labels=labels,
                                       created="2026-03-01T00:00:00Z"))
        return state.rc, "", state.stderr

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    fake_rest.add("bigdata", "serviceaccounts", {"metadata": {"name": "spark"}})
    return state


def args(env, **overrides):
    base = dict(name="wordcount", namespace="bigdata", image="apache/spark:4.0.1", service_account="spark",
                application="local:///opt/spark/examples/src/main/python/wordcount.py",
                application_args=["/opt/spark/README.md"], spark_home=str(env.home), executor_instances=2)
    base.update(overrides)
    return base


def submits(env):
    return [cmd for cmd, dummy in env.commands if cmd[0].endswith("spark-submit") and "--version" not in cmd]


def existing_driver(env, name="wordcount-old-driver", phase="Running", app="wordcount"):
    env.rest.add_pod(make_pod(name, phase=phase, labels={"spark-role": "driver", "bigdata.stack/app-name": app,
                                                         "spark-app-selector": "spark-0ld"}))


class TestPresent:
    def test_submits_with_token_in_a_private_file_never_on_the_command_line(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit", result
        assert result["changed"] and result["submitted"]
        assert result["driver_pod"] == "wordcount-1a2b3c-driver" and result["app_id"] == "spark-feedc0de"
        assert result["phase"] == "Pending"
        (command,) = submits(env)
        assert command[1:5] == ["--master", "k8s://https://10.0.0.1:6443", "--deploy-mode", "cluster"]
        assert "spark.kubernetes.authenticate.submission.caCertFile=/tmp/ca.crt" in command
        assert command[-2:] == ["local:///opt/spark/examples/src/main/python/wordcount.py", "/opt/spark/README.md"]
        assert TOKEN not in json.dumps(command) and TOKEN not in json.dumps(result)
        ((token_file, content, mode),) = env.token_files
        assert content == TOKEN and mode == 0o600
        assert not os.path.exists(token_file)  # removed after the run
        # in a directory of its own below the module's tmpdir, which Ansible cleans up even after a crash
        assert os.path.basename(os.path.dirname(os.path.dirname(token_file))).startswith("ansible-moduletmp-")
        dummy, environ = [c for c in env.commands if c[0] == command][0]
        assert environ["SPARK_HOME"] == str(env.home)
        assert "-Dkubernetes.auth.tryKubeConfig=false" in environ["SPARK_SUBMIT_OPTS"]

    def test_spark_user_is_the_submitters_spark_user_and_absent_by_default(self, env, run_module):
        # spark-submit puts its own SPARK_USER (else the OS user) into the driver pod, and the
        # executors write to HDFS as that user: without it, as whoever ran Ansible.
        outcome, result = run_module(spark_submit.main, args(env, spark_user="spark"))
        assert outcome == "exit", result
        (command,) = submits(env)
        assert [e for c, e in env.commands if c == command][0]["SPARK_USER"] == "spark"
        env.commands.clear()
        outcome, result = run_module(spark_submit.main, args(env, name="wordcount-again"))
        assert outcome == "exit", result
        (command,) = submits(env)
        assert "SPARK_USER" not in [e for c, e in env.commands if c == command][0]

    def test_rbac_checked_for_the_driver_account_before_submitting(self, env, run_module):
        run_module(spark_submit.main, args(env))
        reviews = [c[2] for c in env.rest.calls if c[0] == "post" and c[1].endswith("subjectaccessreviews")]
        assert {(r["spec"]["resourceAttributes"]["resource"], r["spec"]["resourceAttributes"]["verb"]) for r in reviews} == {
            ("pods", "create"), ("pods", "get"), ("pods", "list"), ("pods", "watch"), ("pods", "delete"),
            ("services", "create"), ("services", "delete"), ("configmaps", "create"), ("configmaps", "delete")}
        assert {r["spec"]["user"] for r in reviews} == {"system:serviceaccount:bigdata:spark"}

    def test_running_driver_means_no_new_submission(self, env, run_module):
        existing_driver(env)
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit" and not result["changed"] and not result["submitted"]
        assert result["driver_pod"] == "wordcount-old-driver" and result["app_id"] == "spark-0ld"
        assert submits(env) == []
        assert not any(c[0] == "delete" and "/pods/" in c[1] for c in env.rest.calls)

    def test_finished_driver_or_other_app_does_not_block(self, env, run_module):
        existing_driver(env, phase="Succeeded")
        existing_driver(env, name="other-driver", app="other")
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit" and result["submitted"] and len(submits(env)) == 1

    def test_check_mode_returns_the_command_and_submits_nothing(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env), check_mode=True)
        assert outcome == "exit" and result["changed"] and not result["submitted"]
        assert result["command"][0].endswith("spark-submit") and "--deploy-mode" in result["command"]
        assert submits(env) == []
        assert not [c for c in env.rest.calls if c[0] == "post"]

    def test_secret_conf_values_masked_in_command(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, conf={"spark.hadoop.fs.s3a.secret.key": "S3CR3T-KEY-VALUE"}))
        assert outcome == "exit"
        assert "spark.hadoop.fs.s3a.secret.key=********" in result["command"]
        assert "S3CR3T-KEY-VALUE" not in json.dumps(result)
        assert "spark.hadoop.fs.s3a.secret.key=S3CR3T-KEY-VALUE" in submits(env)[0]  # spark-submit gets the real one

    def test_secret_conf_values_masked_wherever_they_appear(self, env, run_module):
        env.rc = 1
        env.stderr = "Exception: cannot log in to s3a with key S3CR3T-KEY-VALUE"
        outcome, result = run_module(spark_submit.main, args(env, conf={"spark.hadoop.fs.s3a.secret.key": "S3CR3T-KEY-VALUE"}))
        assert outcome == "fail" and "cannot log in to s3a" in result["msg"]
        assert "S3CR3T-KEY-VALUE" not in json.dumps(result)

    def test_app_configmap_ships_a_local_file(self, env, run_module, tmp_path):
        app = tmp_path / "etl.py"
        app.write_text("print('etl')\n")
        outcome, result = run_module(spark_submit.main, args(env, application=str(app), app_configmap="etl-code"))
        assert outcome == "exit", result
        # One server-side apply, no read before it.
        # (The submission lock, wordcount-submit-lock, is a ConfigMap of its own: TestConcurrentSubmissions.)
        calls = [c for c in env.rest.calls if len(c) > 1 and "/configmaps" in c[1] and "-submit-lock" not in c[1]
                 and (c[0] != "post" or c[2]["metadata"]["name"] != "wordcount-submit-lock")]
        (created,) = [c[2] for c in calls]
        assert [c[:2] for c in calls] == [
            ("apply", "/api/v1/namespaces/bigdata/configmaps/etl-code")]
        assert created["metadata"]["name"] == "etl-code" and created["data"] == {"etl.py": "print('etl')\n"}
        command = submits(env)[0]
        assert command[-2] == "local:///opt/spark/app/etl.py"
        templates = [a.split("=", 1)[1] for a in command if ".podTemplateFile=" in a]
        assert len(templates) == 2 and all(not os.path.exists(t) for t in templates)

    @pytest.mark.parametrize("configmap", [None, "etl-code"])
    def test_a_pod_template_given_as_a_manifest_is_written_privately_and_removed(self, env, run_module, configmap):
        # No temporary file for the playbook to write and remove (the pipelines role gave paths).
        driver = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "data"}},
                  "spec": {"containers": [{"name": "spark-kubernetes-driver", "env": [{"name": "A", "value": "1"}]}]}}
        executor = {"apiVersion": "v1", "kind": "Pod", "spec": {"priorityClassName": "batch"}}
        outcome, result = run_module(spark_submit.main, args(env, app_configmap=configmap,
                                                             driver_pod_template=driver, executor_pod_template=executor))
        assert outcome == "exit", result
        assert sorted(env.pod_templates) == ["driver", "executor"]
        for role, given in (("driver", driver), ("executor", executor)):
            path, content, mode = env.pod_templates[role]
            written = json.loads(content)
            assert mode == 0o600 and not os.path.exists(path)
            if configmap:  # merged with the volume of the application's ConfigMap
                assert written.get("metadata", {}).get("labels") == given.get("metadata", {}).get("labels")
                assert any(v.get("configMap", {}).get("name") == "etl-code" for v in written["spec"]["volumes"])
            else:
                assert written == given

    def test_a_pod_template_neither_path_nor_manifest_is_refused_naming_the_option(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, executor_pod_template=["a"]))
        assert outcome == "fail"
        assert result["msg"] == "executor_pod_template must be a file's path or a Pod manifest (a dictionary), not list"
        assert submits(env) == []

    def test_local_file_without_a_way_to_ship_it(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, application="/home/me/etl.py"))
        assert outcome == "fail" and "app_configmap" in result["msg"] and "local://" in result["msg"]
        assert submits(env) == []


class TestRestartedAndAbsent:
    def test_restarted_deletes_the_running_driver_then_submits(self, env, run_module):
        existing_driver(env)
        outcome, result = run_module(spark_submit.main, args(env, state="restarted"))
        assert outcome == "exit" and result["changed"] and result["submitted"]
        assert result["killed"] == ["wordcount-old-driver"]
        deletes = [i for i, c in enumerate(env.rest.calls) if c[0] == "delete" and "-submit-lock" not in c[1]]
        assert len(deletes) == 1 and env.rest.calls[deletes[0]][1].endswith("/pods/wordcount-old-driver")
        assert result["driver_pod"] == "wordcount-1a2b3c-driver"

    def test_absent_kills_every_driver_of_the_app(self, env, run_module):
        existing_driver(env)
        existing_driver(env, name="wordcount-done-driver", phase="Succeeded")
        existing_driver(env, name="other-driver", app="other")
        outcome, result = run_module(spark_submit.main, dict(name="wordcount", namespace="bigdata", state="absent", wait=True))
        assert outcome == "exit" and result["changed"]
        assert sorted(result["killed"]) == ["wordcount-done-driver", "wordcount-old-driver"]
        assert [c[1].rsplit("/", 1)[1] for c in env.rest.calls if c[0] == "delete"] == result["killed"]
        assert env.commands == []  # no spark-submit, no java needed to kill

    def test_absent_without_drivers_is_ok(self, env, run_module):
        outcome, result = run_module(spark_submit.main, dict(name="wordcount", namespace="bigdata", state="absent"))
        assert outcome == "exit" and not result["changed"] and result["killed"] == []

    def test_absent_in_check_mode_deletes_nothing(self, env, run_module):
        existing_driver(env)
        outcome, result = run_module(spark_submit.main, dict(name="wordcount", namespace="bigdata", state="absent"),
                                     check_mode=True)
        assert outcome == "exit" and result["changed"] and not [c for c in env.rest.calls if c[0] == "delete"]


class TestWait:
    def test_success_returns_exit_code_and_log_tail(self, env, run_module):
        def finish(path, query, timeout):
            pod = env.rest.list_pods("bigdata", "spark-role=driver")[0]
            pod["status"] = {"phase": "Succeeded", "containerStatuses": [
                {"name": "spark-kubernetes-driver", "state": {"terminated": {"exitCode": 0}}}]}
            return iter([{"type": "MODIFIED", "object": pod}])

        env.rest.watch = finish
        env.rest.logs["wordcount-1a2b3c-driver"] = ["line %d" % i for i in range(100)] + ["Pi is roughly 3.14"]
        outcome, result = run_module(spark_submit.main, args(env, wait=True, log_tail_lines=3))
        assert outcome == "exit", result
        assert result["phase"] == "Succeeded" and result["exit_code"] == 0
        assert result["log_tail"] == ["line 98", "line 99", "Pi is roughly 3.14"]

    def test_failure_fails_the_task_with_the_tail_and_masks_secrets(self, env, run_module):
        env.driver_phase = "Failed"
        pod_logs = ["Traceback (most recent call last):", "token=" + TOKEN, "ValueError: bad input"]
        env.rest.logs["wordcount-1a2b3c-driver"] = pod_logs

        original = env.rest.add_pod

        def add_failed(pod):
            pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
            original(pod)

        env.rest.add_pod = add_failed
        outcome, result = run_module(spark_submit.main, args(env, wait=True))
        assert outcome == "fail"
        assert "Spark application wordcount failed" in result["msg"] and "exit code 1" in result["msg"]
        assert "ValueError: bad input" in result["msg"]
        assert result["exit_code"] == 1 and result["phase"] == "Failed"
        assert TOKEN not in json.dumps(result)


class TestChecks:
    def test_image_version_mismatch(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, image="apache/spark:4.3.0"))
        assert outcome == "fail"
        assert "Spark 4.0.1" in result["msg"] and "Spark 4.3.0" in result["msg"]
        assert submits(env) == [] and env.rest.calls == []  # nothing sent to the cluster

    def test_image_version_check_can_be_skipped(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, image="apache/spark:4.3.0", check_image_version=False))
        assert outcome == "exit", result

    def test_java_too_old(self, env, run_module):
        (env.java_home / "release").write_text('JAVA_VERSION="11.0.22"\n')
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail" and "Java 11" in result["msg"] and "Java 17 or later" in result["msg"]

    def test_java_version_from_java_dash_version_when_no_release_file(self, env, run_module, monkeypatch):
        (env.java_home / "release").unlink()
        calls = []

        def run_command(self, cmd, environ_update=None, **kwargs):
            calls.append(cmd)
            return 0, "", 'openjdk version "1.8.0_392"\n'

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail" and "Java 8" in result["msg"]
        assert calls == [[str(env.java_home / "bin" / "java"), "-version"]]

    def test_spark_submit_missing(self, env, run_module, tmp_path):
        outcome, result = run_module(spark_submit.main, args(env, spark_home=str(tmp_path / "nowhere")))
        assert outcome == "fail" and "has no executable bin/spark-submit" in result["msg"]

    def test_rbac_denial_names_what_is_missing(self, env, run_module):
        env.rest.sar_denied = {("services", "create"), ("pods", "delete")}
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail"
        assert "bigdata/spark" in result["msg"] and "delete pods" in result["msg"] and "create services" in result["msg"]
        assert submits(env) == []

    def test_rbac_check_skipped_with_warning_when_not_allowed_to_review(self, env, run_module):
        env.rest.sar_status = 403
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit" and result["submitted"]
        assert any("could not check the RBAC" in w for w in result.get("warnings", []))

    def test_missing_service_account(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, service_account="nobody"))
        assert outcome == "fail" and "service account bigdata/nobody does not exist" in result["msg"]

    def test_forbidden_from_spark_submit(self, env, run_module):
        env.rc = 1
        env.stderr = ('Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure '
                      'executing: POST at: https://10.0.0.1:6443/api/v1/namespaces/bigdata/pods. Message: pods is '
                      'forbidden: User "system:serviceaccount:ci:deployer" cannot create resource "pods" in API group '
                      '"" in the namespace "bigdata". Authorization: Bearer ' + TOKEN)
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail"
        assert result["msg"].startswith("spark-submit was denied by the API server: system:serviceaccount:ci:deployer "
                                        "may not create pods in namespace bigdata")
        assert TOKEN not in json.dumps(result)

    def test_other_spark_submit_failure_shows_masked_stderr(self, env, run_module):
        env.rc = 1
        env.stderr = "Error: Unrecognized option: --bogus\nusing " + TOKEN
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail" and "exit code 1" in result["msg"] and "Unrecognized option" in result["msg"]
        assert TOKEN not in result["msg"]

    def test_bad_name_and_exclusive_options(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env, name="Word_Count"))
        assert outcome == "fail" and "lower case" in result["msg"]
        outcome, result = run_module(spark_submit.main, args(env, dynamic_allocation=True))
        assert outcome == "fail" and "mutually exclusive" in result["msg"]


class TestSpark4RefusedRequests:
    """The refused request leads the message, not the last lines of a Java stack trace."""

    def test_pod_security_rejection_names_the_violations_and_the_fix(self, env, run_module):
        env.rc = 1
        env.stderr = (
            'Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: '
            'POST at: https://10.0.0.1:6443/api/v1/namespaces/bigdata/pods. Message: pods "wordcount-1-driver" is '
            'forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container '
            '"spark-kubernetes-driver" must set securityContext.runAsNonRoot=true). Received status: Status(code=403).\n'
            + "".join("\tat io.netty.Frame%d.run(Frame.java:%d)\n" % (i, i) for i in range(40))
        )
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail"
        assert result["msg"].startswith(
            "spark-submit failed with exit code 1: the API server refused POST "
            "https://10.0.0.1:6443/api/v1/namespaces/bigdata/pods: pods \"wordcount-1-driver\" is forbidden: "
            "violates PodSecurity \"restricted:latest\"")
        assert "driver_pod_template" in result["msg"]

    def test_forbidden_server_side_apply_of_a_named_object(self, env, run_module):
        env.rc = 1
        env.stderr = (
            'Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: '
            "PATCH at: https://10.0.0.1:6443/api/v1/namespaces/bigdata/configmaps/spark-drv-1-conf-map?fieldManager="
            'fabric8&force=true. Message: configmaps "spark-drv-1-conf-map" is forbidden: User '
            '"system:serviceaccount:ci:deployer" cannot patch resource "configmaps" in API group "" in the namespace '
            '"bigdata". Received status: Status(code=403).\n\tat io.netty.Frame.run(Frame.java:1)\n'
        )
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail"
        assert result["msg"].startswith("spark-submit was denied by the API server: system:serviceaccount:ci:deployer "
                                        "may not patch configmaps in namespace bigdata")


def submission_lock(env, holder="other-run", expires_in=300):
    import time as real_time
    env.rest.add("bigdata", "configmaps", {"metadata": {
        "name": "wordcount-submit-lock", "namespace": "bigdata",
        "annotations": {"bigdata.stack/submission-id": holder,
                        "bigdata.stack/lock-expires": str(int(real_time.time() + expires_in))}}})


class TestConcurrentSubmissions:
    LOCK = "/api/v1/namespaces/bigdata/configmaps/wordcount-submit-lock"

    def test_a_submission_under_way_is_waited_for_and_its_driver_reported(self, env, run_module):
        """Another run holds the submission lock: this one waits, then finds that run's driver and submits nothing."""
        submission_lock(env)
        looks = []

        def other_run_finishes(path):
            if path == self.LOCK:
                looks.append(path)
                if len(looks) == 2:  # the other run's spark-submit returned: its driver exists, its lock goes
                    existing_driver(env, name="wordcount-other-driver", phase="Pending")
                    env.rest.objects.pop(self.LOCK)
        env.rest.on_get = other_run_finishes
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit", result
        assert submits(env) == []
        assert not result["changed"] and not result["submitted"]
        assert result["driver_pod"] == "wordcount-other-driver"

    def test_the_lock_is_taken_for_the_submission_and_released(self, env, run_module):
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit" and result["submitted"], result
        [lock] = [c[2] for c in env.rest.calls if c[0] == "post" and c[1].endswith("/configmaps")]
        assert lock["metadata"]["name"] == "wordcount-submit-lock"
        assert lock["metadata"]["labels"]["bigdata.stack/app-name"] == "wordcount"
        assert ("delete", self.LOCK) in env.rest.calls and self.LOCK not in env.rest.objects

    def test_an_expired_lock_is_taken_over(self, env, run_module):
        submission_lock(env, expires_in=-1)
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "exit" and result["submitted"], result
        assert len(submits(env)) == 1

    def test_a_lock_held_past_the_timeout_fails_naming_it(self, env, run_module):
        submission_lock(env)
        outcome, result = run_module(spark_submit.main, args(env, wait_timeout=1))
        assert outcome == "fail" and submits(env) == []
        assert result["msg"].startswith(
            "another submission of wordcount (other-run) holds the lock ConfigMap bigdata/wordcount-submit-lock")

    def test_a_submitter_that_may_not_create_the_lock_gets_the_403_in_words(self, env, run_module):
        env.rest.denied.add("/api/v1/namespaces/bigdata/configmaps")
        outcome, result = run_module(spark_submit.main, args(env))
        assert outcome == "fail" and submits(env) == []
        assert result["msg"] == (
            "The submission lock (ConfigMap bigdata/wordcount-submit-lock) was denied by the API server: "
            "system:serviceaccount:ci:deployer may not create configmaps in namespace bigdata; grant it with a Role "
            "and RoleBinding")
