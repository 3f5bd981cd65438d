#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spark_submit
short_description: Submit, kill or wait for a Spark application on Kubernetes with spark-submit
version_added: 0.1.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - Runs Spark's own C(spark-submit --master k8s://... --deploy-mode cluster), built from structured
    options, against the Kubernetes cluster the task is connected to.
  - The API server URL and the credentials passed to C(spark-submit) come from the same connection
    options as every C(kubernetes.core) module (kubeconfig, context, host, api_key, client certificate,
    in-cluster service account). A token goes to C(spark-submit) through a private temporary file,
    never on its command line.
  - Driver pods get the label C(bigdata.stack/app-name=<name>). With I(state=present) an application
    whose driver is already C(Pending) or C(Running) is not submitted again.
  - Two runs for the same I(name) at the same time submit one driver. The look for active drivers and the
    submission happen while the run holds a lock, the ConfigMap C(<name>-submit-lock) (created, then
    deleted, by the submitter, who may manage ConfigMaps anyway). A second run waits for it (at most
    I(wait_timeout)), then finds the first run's driver. A lock left by a run that died expires after
    5 minutes.
  - Before submitting, the module checks that C(spark-submit) and Java 17 or later are installed, that
    the image's Spark version matches the client's, and that the driver's service account may manage
    pods, services and config maps.
  - With I(wait=true) the module follows the driver pod to its end and fails when the application fails,
    returning the driver's exit code and the tail of its log.
options:
  name:
    description:
      - Application name (C(--name)). Spark names the driver and executor pods after it, so it must be
        a DNS label of lower case letters, digits, C(-) and C(.), at most 63 characters.
      - Identifies the application for I(state=present) idempotence, I(state=restarted) and I(state=absent).
    type: str
    required: true
  state:
    description:
      - C(present) submits the application unless a driver of I(name) is C(Pending) or C(Running).
      - C(restarted) deletes running drivers of I(name), waits until they are gone, and submits anew.
      - C(absent) deletes every driver pod of I(name); executors are owned by their driver and go with it.
    type: str
    choices: [present, restarted, absent]
    default: present
  namespace:
    description:
      - Namespace of the driver and executor pods (C(spark.kubernetes.namespace)).
    type: str
    required: true
  application:
    description:
      - The application, a Python file or a JAR.
      - C(local:///path) is a file inside the image.
      - A path on the machine running the task (or C(file://) URL) needs I(app_configmap), which ships
        the file in a ConfigMap, or C(spark.kubernetes.file.upload.path) in I(conf).
      - Required unless I(state=absent).
    type: str
  main_class:
    description:
      - Main class of a JAR application (C(--class)).
    type: str
  application_args:
    description:
      - Arguments passed to the application.
    type: list
    elements: str
    default: []
  image:
    description:
      - Container image of the driver and executors (C(spark.kubernetes.container.image)), e.g. C(apache/spark:4.0.1).
      - Required unless I(state=absent) or C(spark.kubernetes.container.image) is given in I(conf).
    type: str
  image_pull_policy:
    description:
      - C(spark.kubernetes.container.image.pullPolicy).
    type: str
    choices: [Always, IfNotPresent, Never]
  service_account:
    description:
      - Service account of the driver pod (C(spark.kubernetes.authenticate.driver.serviceAccountName)).
        The namespace's C(default) account when omitted.
    type: str
  driver_cores:
    description: C(spark.driver.cores).
    type: int
  driver_memory:
    description: C(spark.driver.memory), e.g. C(1g).
    type: str
  executor_cores:
    description: C(spark.executor.cores).
    type: int
  executor_memory:
    description: C(spark.executor.memory), e.g. C(2g).
    type: str
  executor_instances:
    description:
      - Fixed number of executors (C(spark.executor.instances)). Mutually exclusive with I(dynamic_allocation).
    type: int
  dynamic_allocation:
    description:
      - Scale executors with the load (C(spark.dynamicAllocation.enabled)) with shuffle tracking
        (C(spark.dynamicAllocation.shuffleTracking.enabled)), as Kubernetes has no external shuffle service.
      - Bounds go in I(conf), e.g. C(spark.dynamicAllocation.maxExecutors).
    type: bool
    default: false
  driver_pod_template:
    description:
      - Pod template for the driver (C(spark.kubernetes.driver.podTemplateFile)). Either the path of a YAML file,
        or the Pod manifest itself as a dictionary, which the module writes to a private file of its own
        for spark-submit and removes afterwards (no temporary file for the playbook to manage).
    type: raw
  executor_pod_template:
    description:
      - Pod template for the executors (C(spark.kubernetes.executor.podTemplateFile)). A file's path or
        the Pod manifest as a dictionary, as for I(driver_pod_template).
    type: raw
  conf:
    description:
      - Further Spark properties, applied after the ones the options above set (so they may refine them).
      - Unless one of them asks for an on-demand claim (C(spark.kubernetes.*.volumes.persistentVolumeClaim.*.options.claimName=OnDemand)),
        the module sets C(spark.kubernetes.driver.ownPersistentVolumeClaim) and C(spark.kubernetes.driver.reusePersistentVolumeClaim)
        to C(false) (Spark's defaults are C(true)), so that the driver does not list and delete the namespace's claims, which the
        bigdata.stack.spark role allows only with I(spark_driver_pvc_enabled). C(conf) may set them.
      - Values of keys that look secret (password, secret, token, credential, access key) are masked in
        everything the task returns, like the values of C(no_log) options.
    type: dict
    default: {}
  labels:
    description:
      - Labels added to the driver and executor pods (C(spark.kubernetes.{driver,executor}.label.*)) and to
        the ConfigMap the module creates for I(app_configmap).
    type: dict
    default: {}
  secrets:
    description:
      - Secrets to mount in the driver and executor containers, secret name to mount path
        (C(spark.kubernetes.{driver,executor}.secrets.*)).
    type: dict
    default: {}
  env_secrets:
    description:
      - Environment variables of the driver and executors taken from secret keys, variable name to
        C(<secret name>:<key>) (C(spark.kubernetes.{driver,executor}.secretKeyRef.*)).
    type: dict
    default: {}
  event_log_dir:
    description:
      - Enable Spark event logging to this directory (C(spark.eventLog.enabled), C(spark.eventLog.dir)),
        e.g. C(hdfs://hdfs-namenode:8020/spark-logs) for the history server.
    type: str
  spark_user:
    description:
      - The user name the driver and executors act as (Spark's C(SPARK_USER)). With Hadoop's simple
        authentication it is the HDFS user that owns what the application writes, for example the
        C(spark_hdfs_user) of the bigdata.stack.spark role, owner of C(/user/spark).
      - C(spark-submit) puts the user who runs it into the driver pod's C(SPARK_USER)
        (C(Utils.getCurrentUserName) in C(BasicDriverFeatureStep)), and the executors run their
        tasks as that user (C(SparkHadoopUtil.runAsSparkUser)), whatever C(HADOOP_USER_NAME) the
        pods set. The module runs C(spark-submit) with C(SPARK_USER) set to this value.
      - When omitted, the application acts as the user who runs the task, as with C(spark-submit).
    type: str
  app_configmap:
    description:
      - Ship the application in this ConfigMap and mount it at I(app_mount_path) in the driver and executors.
      - When I(application) is a local file the module writes the ConfigMap from it (1 MiB at most) with a
        server-side apply (field manager C(bigdata-stack), as the roles use) and runs it from the mount; with a C(local://)
        I(application) the ConfigMap must exist.
      - Spark cannot mount a ConfigMap from properties, so the module mounts it with generated pod templates,
        merged into I(driver_pod_template) and I(executor_pod_template) when given.
    type: str
  app_mount_path:
    description:
      - Where I(app_configmap) is mounted in the containers.
    type: str
    default: /opt/spark/app
  spark_home:
    description:
      - Spark distribution whose C(bin/spark-submit) to run.
      - When omitted, the C(spark-submit) of the C(pyspark) package of the Python running the task is used,
        else the one on C(PATH).
    type: path
  check_image_version:
    description:
      - Fail when the Spark version of the image tag (like C(4.0.1) in C(apache/spark:4.0.1)) and of the
        C(spark-submit) client differ in major or minor version. Tags that are not versions are not checked.
    type: bool
    default: true
  check_rbac:
    description:
      - Before submitting, ask the API server (SubjectAccessReview) whether the driver's service account may
        create, get, list, watch and delete pods and create and delete services and config maps, and fail
        naming what is missing. Skipped with a warning when the task's user may not create SubjectAccessReviews.
    type: bool
    default: true
  wait:
    description:
      - Wait for the application to finish; fail when the driver pod ends C(Failed) or its container
        exits non-zero, with the tail of the driver log.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for the application to finish, and for old drivers to go with
        I(state=restarted) or I(state=absent).
    type: int
    default: 600
  log_tail_lines:
    description:
      - Number of driver log lines returned in I(log_tail) when waiting.
    type: int
    default: 50
requirements:
  - PyYAML
  - Java 17 or later (Spark 4), found through C(JAVA_HOME) or C(PATH)
  - C(spark-submit) (the C(pyspark) package or a Spark distribution)
notes:
  - The module never passes C(spark.kubernetes.submission.waitAppCompletion=true); it waits itself by
    watching the driver pod, so I(wait_timeout) bounds the wait.
  - Spark auto-configuration from C(~/.kube/config) is turned off for the submission client, so the
    cluster and identity used are exactly those of the task's connection options.
seealso:
  - name: Running Spark on Kubernetes
    description: Spark properties for Kubernetes.
    link: https://spark.apache.org/docs/latest/running-on-kubernetes.html
  - module: bigdata.stack.wait_ready
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: Returns the command that would run; nothing is submitted, created or deleted.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action_group:
    membership:
      - bigdata.stack.k8s
"""

EXAMPLES = r"""
- name: Run the word count job from the image and wait for its result
  bigdata.stack.spark_submit:
    name: wordcount
    namespace: bigdata
    image: apache/spark:4.0.1
    service_account: spark
    application: local:///opt/spark/examples/src/main/python/wordcount.py
    application_args: [/opt/spark/README.md]
    executor_instances: 2
    executor_memory: 1g
    wait: true
    wait_timeout: 900
  register: wordcount

- name: Show how it ended
  ansible.builtin.debug:
    msg: "{{ wordcount.app_id }} {{ wordcount.phase }} exit {{ wordcount.exit_code }}"

- name: Ship a local PySpark script in a ConfigMap, with event logs for the history server
  bigdata.stack.spark_submit:
    name: clickstream-etl
    namespace: bigdata
    image: apache/spark:4.0.1-python3
    service_account: spark
    application: files/clickstream_etl.py
    app_configmap: clickstream-etl-code
    dynamic_allocation: true
    conf:
      spark.dynamicAllocation.maxExecutors: "6"
      spark.hadoop.fs.s3a.secret.key: "{{ vault_s3_secret }}"
    secrets:
      kafka-client-tls: /etc/kafka-tls
    env_secrets:
      ES_PASSWORD: elasticsearch-writer:password
    event_log_dir: hdfs://hdfs-namenode:8020/spark-logs

- name: Run the SparkPi JAR with a driver pod template
  bigdata.stack.spark_submit:
    name: spark-pi
    namespace: bigdata
    image: apache/spark:4.0.1
    application: local:///opt/spark/examples/jars/spark-examples_2.13-4.0.1.jar
    main_class: org.apache.spark.examples.SparkPi
    application_args: ["1000"]
    driver_pod_template: templates/driver-pod.yaml
    driver_cores: 1
    driver_memory: 1g

- name: Restart a streaming application after a code change
  bigdata.stack.spark_submit:
    name: clickstream-stream
    namespace: bigdata
    state: restarted
    image: apache/spark:4.0.1-python3
    application: local:///opt/app/stream.py

- name: Kill it
  bigdata.stack.spark_submit:
    name: clickstream-stream
    namespace: bigdata
    state: absent
    wait: true
"""

RETURN = r"""
submitted:
  description: Whether this run submitted the application (false in check mode and when it was already running).
  returned: always
  type: bool
  sample: true
driver_pod:
  description: Name of the driver pod (submitted, found running, or killed).
  returned: always
  type: str
  sample: wordcount-4f1a2b3c4d5e6f70-driver
app_id:
  description: Spark application id, the C(spark-app-selector) label of the driver pod.
  returned: always
  type: str
  sample: spark-9c1f7f2e0a6b4d0e9c1e2f3a4b5c6d7e
phase:
  description: Phase of the driver pod when the module returned (C(Pending), C(Running), C(Succeeded), C(Failed)).
  returned: always
  type: str
  sample: Succeeded
exit_code:
  description: Exit code of the driver container once it terminated, else null.
  returned: always
  type: int
  sample: 0
log_tail:
  description: Last I(log_tail_lines) lines of the driver log, when the module waited for the application.
  returned: always
  type: list
  elements: str
  sample: ["Pi is roughly 3.1418", "INFO SparkContext: Successfully stopped SparkContext"]
command:
  description: The spark-submit command line, with secret values masked. Empty with I(state=absent).
  returned: always
  type: list
  elements: str
  sample: ["/opt/venv/lib/python3.11/site-packages/pyspark/bin/spark-submit", "--master", "k8s://https://10.0.0.1:6443",
           "--deploy-mode", "cluster", "--name", "wordcount", "--conf", "spark.kubernetes.namespace=bigdata"]
spark:
  description: The local Spark client used.
  returned: unless I(state=absent)
  type: complex
  contains:
    spark_submit:
      description: Path of the spark-submit run.
      type: str
      returned: always
      sample: /opt/venv/lib/python3.11/site-packages/pyspark/bin/spark-submit
    version:
      description: Spark version of the client.
      type: str
      returned: always
      sample: 4.0.1
    image_version:
      description: Spark version named by the image tag, null when the tag is not a version.
      type: str
      returned: always
      sample: 4.0.1
killed:
  description: Driver pods deleted by I(state=absent) or I(state=restarted).
  returned: always
  type: list
  elements: str
  sample: [clickstream-stream-0b1c2d3e4f5a6b7c-driver]
"""

import json
import os
import shutil
import tempfile
import time
import uuid

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.common.validation import check_type_path
from ansible_collections.bigdata.stack.plugins.module_utils import spark as sp
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import (
    ApiError,
    ConnectError,
    Unreachable,
    connect,
    wait_pod_gone,
    watch_pod_until,
)
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

try:
    import yaml
except ImportError:  # AnsibleK8SModule reports the missing requirement
    yaml = None

CONFIGMAP_MAX_BYTES = 1048576


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "restarted", "absent"]),
        namespace=dict(type="str", required=True),
        application=dict(type="str"),
        main_class=dict(type="str"),
        application_args=dict(type="list", elements="str", default=[]),
        image=dict(type="str"),
        image_pull_policy=dict(type="str", choices=["Always", "IfNotPresent", "Never"]),
        service_account=dict(type="str"),
        driver_cores=dict(type="int"),
        driver_memory=dict(type="str"),
        executor_cores=dict(type="int"),
        executor_memory=dict(type="str"),
        executor_instances=dict(type="int"),
        dynamic_allocation=dict(type="bool", default=False),
        driver_pod_template=dict(type="raw"),
        executor_pod_template=dict(type="raw"),
        conf=dict(type="dict", default={}),
        labels=dict(type="dict", default={}),
        # Names of Secret objects and mount paths or keys, not secret values.
        secrets=dict(type="dict", default={}, no_log=False),
        env_secrets=dict(type="dict", default={}, no_log=False),
        event_log_dir=dict(type="str"),
        spark_user=dict(type="str"),
        app_configmap=dict(type="str"),
        app_mount_path=dict(type="str", default="/opt/spark/app"),
        spark_home=dict(type="path"),
        check_image_version=dict(type="bool", default=True),
        check_rbac=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=600),
        log_tail_lines=dict(type="int", default=50),
    )
    spec.update(AUTH_ARG_SPEC)
    return spec


def _pyspark_dir():
    """Directory of the pyspark package, found without importing it (pyspark imports py4j and more)."""
    try:
        import importlib.util

        found = importlib.util.find_spec("pyspark")
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    return os.path.dirname(found.origin)


# The lock of a submission (SparkSubmit.lock) says until when it holds: a run that died leaves it behind.
LOCK_EXPIRES = "bigdata.stack/lock-expires"
LOCK_SECONDS = 300


class SparkSubmit(object):
    """One run of the module: decide from the driver pods found, then submit, wait or kill."""

    def __init__(self, module, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        # AnsibleK8SModule proxies only part of AnsibleModule; run_command and friends live here.
        self.ansible = getattr(module, "_module", module)
        self.params = module.params
        self.spark = None
        self.clock = clock
        self.sleep = sleep
        self.rest = None
        self.configuration = None
        self.lock_id = None
        self.result = dict(
            changed=False, submitted=False, driver_pod=None, app_id=None, phase=None, exit_code=None,
            log_tail=[], command=[], killed=[],
        )

    # -- entry point

    def run(self):
        params = self.params
        sp.validate_app_name(params["name"])
        if params["dynamic_allocation"] and params["executor_instances"] is not None:
            raise sp.SparkError("executor_instances and dynamic_allocation are mutually exclusive: choose one")
        for role in ("driver", "executor"):
            option = "%s_pod_template" % role
            value = params[option]
            if isinstance(value, str) and value:
                params[option] = check_type_path(value)  # as type="path" would: ~ and $VARS expanded
            elif value is not None and not isinstance(value, dict):
                raise sp.SparkError("%s must be a file's path or a Pod manifest (a dictionary), not %s"
                                    % (option, type(value).__name__))
        if params["state"] != "absent":
            self.check_local_tools()
        self.rest, self.configuration = connect(self.module)
        if params["state"] == "absent":
            return self.kill(self.drivers())
        if self.module.check_mode:
            driver = self.present_or_restarted()
        else:
            # Two runs of the same application at once would each find no driver and each submit one:
            # the decision and the submission happen under a lock, and the second run finds the
            # first one's driver.
            self.lock()
            try:
                driver = self.present_or_restarted()
            finally:
                self.unlock()
        if driver and params["wait"]:
            self.wait_for(driver)
        return self.result

    def drivers(self):
        return sp.newest_first(self.rest.list_pods(self.params["namespace"], sp.driver_selector(self.params["name"])))

    def present_or_restarted(self):
        """Submit unless an active driver makes it unneeded; the name of the driver to wait for (None in check mode)."""
        active = [pod for pod in self.drivers() if sp.is_active(pod)]
        if active and self.params["state"] == "present":
            self.result.update(sp.driver_summary(active[0]))
            return active[0]["metadata"]["name"]
        if active:
            self.delete_drivers(active)
        return self.submit()

    # -- one submission at a time per application

    def lock_name(self):
        return "%s-submit-lock" % self.params["name"]

    def lock(self):
        """Create the lock ConfigMap <name>-submit-lock; while another run holds it, wait (up to wait_timeout).

        A lock whose holder died (its expiry passed) is taken over. The submitter already may create
        and delete ConfigMaps: spark-submit itself creates the driver's.
        """
        namespace, name = self.params["namespace"], self.lock_name()
        self.lock_id = uuid.uuid4().hex[:16]
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": dict(self.params["labels"] or {}, **{sp.APP_LABEL: self.params["name"]}),
                             "annotations": {sp.SUBMISSION_LABEL: self.lock_id,
                                             LOCK_EXPIRES: str(int(time.time() + LOCK_SECONDS))}}}
        deadline = self.clock() + self.params["wait_timeout"]
        while True:
            try:
                self.rest.create("ConfigMap", body)
                return
            except ApiError as e:
                forbidden = sp.parse_forbidden(str(e.details().get("message") or "")) if e.status == 403 else None
                if forbidden:
                    raise sp.SparkError(sp.forbidden_message(
                        forbidden, "The submission lock (ConfigMap %s/%s)" % (namespace, name)))
                if e.status != 409:
                    raise
            held = self.rest.get("ConfigMap", namespace, name)
            annotations = ((held or {}).get("metadata") or {}).get("annotations") or {}
            if held is not None and int(annotations.get(LOCK_EXPIRES) or 0) < time.time():
                self.rest.delete("ConfigMap", namespace, name)
                continue
            if held is not None and self.clock() >= deadline:
                raise sp.SparkError(
                    "another submission of %s (%s) holds the lock ConfigMap %s/%s for more than wait_timeout=%ss; "
                    "when no other run submits %s, delete that ConfigMap and run again" % (
                        self.params["name"], annotations.get(sp.SUBMISSION_LABEL), namespace, name,
                        self.params["wait_timeout"], self.params["name"]))
            if held is not None:
                self.sleep(1)

    def unlock(self):
        namespace, name = self.params["namespace"], self.lock_name()
        held = self.rest.get("ConfigMap", namespace, name)
        if held and ((held.get("metadata") or {}).get("annotations") or {}).get(sp.SUBMISSION_LABEL) == self.lock_id:
            self.rest.delete("ConfigMap", namespace, name)

    # -- checks that need no cluster

    def check_local_tools(self):
        params = self.params
        which = self.ansible.get_bin_path
        submit, home = sp.find_spark(params["spark_home"], None if params["spark_home"] else _pyspark_dir(), which)
        version = sp.spark_home_version(home)
        image = params["image"] or (params["conf"] or {}).get("spark.kubernetes.container.image")
        if not image:
            raise sp.SparkError("image is required to submit: the container image of the driver and executors")
        if not params["application"]:
            raise sp.SparkError("application is required to submit (state=%s)" % params["state"])
        image_version = sp.image_spark_version(image)
        if version is None and params["check_image_version"] and image_version:
            dummy, out, err = self.ansible.run_command([submit, "--version"], environ_update={"SPARK_HOME": home})
            version = sp.spark_version_from_submit_output(out + err)
        self.spark = dict(spark_submit=submit, home=home, version=version, image_version=image_version)
        self.result["spark"] = dict(spark_submit=submit, version=version, image_version=image_version)

        java = sp.find_java(os.environ, which)
        major = sp.java_release_major(java)
        if major is None:
            dummy, out, err = self.ansible.run_command([java, "-version"])
            major = sp.parse_java_major(err + out)
        needed = sp.required_java(version)
        if major is None:
            self.module.warn("could not tell the version of %s; Spark needs Java %s or later" % (java, needed))
        elif major < needed:
            raise sp.SparkError(sp.java_too_old_message(java, major, needed, version))

        if params["check_image_version"] and not sp.versions_match(version, image_version):
            raise sp.SparkError(sp.version_mismatch_message(version, submit, image, image_version))

    # -- kill

    def kill(self, drivers):
        if not drivers:
            return self.result
        self.result.update(sp.driver_summary(drivers[0]))
        self.delete_drivers(drivers, wait=self.params["wait"])
        return self.result

    def delete_drivers(self, pods, wait=True):
        """Delete driver pods (graceful, default grace period); wait until they are gone."""
        namespace = self.params["namespace"]
        self.result["changed"] = True
        names = [pod["metadata"]["name"] for pod in pods]
        self.result["killed"] = names
        if self.module.check_mode:
            return
        for name in names:
            self.rest.delete("Pod", namespace, name)
        if wait:
            deadline = self.clock() + self.params["wait_timeout"]
            for name in names:
                left = max(0, deadline - self.clock())
                if not wait_pod_gone(self.rest, namespace, name, left, clock=self.clock, sleep=self.sleep):
                    raise sp.SparkError(
                        "driver pod %s/%s is still terminating after %ss; raise wait_timeout or look at "
                        "the pod's finalizers" % (namespace, name, self.params["wait_timeout"])
                    )

    # -- submit

    def submit(self):
        params = self.params
        submission_id = uuid.uuid4().hex[:16]
        # The module's tmpdir goes when the module ends; the token in it must not outlive spark-submit,
        # while the wait for the application may last wait_timeout, so this directory goes right after.
        tmpdir = tempfile.mkdtemp(prefix="spark-submit-", dir=self.ansible.tmpdir)
        try:
            application, templates, configmap = self.prepare_application(tmpdir)
            master, auth_conf, token, warnings = sp.submission_auth(self.configuration)
            for warning in warnings:
                self.module.warn(warning)
            ca_data = getattr(self.configuration, "ca_cert_data", None)
            if ca_data and "spark.kubernetes.authenticate.submission.caCertFile" not in auth_conf:
                auth_conf["spark.kubernetes.authenticate.submission.caCertFile"] = self.write_private(tmpdir, "ca.crt", ca_data)
            if token:
                self.add_secret(token)
                # A file keeps the token off the command line and out of the driver's spark.properties
                # ConfigMap, where spark.kubernetes.authenticate.submission.oauthToken would end up.
                auth_conf["spark.kubernetes.authenticate.submission.oauthTokenFile"] = self.write_private(tmpdir, "token", token)
            conf = sp.build_conf(params, submission_id, auth_conf, templates)
            for key, value in (params["conf"] or {}).items():
                if sp.is_sensitive_conf(key):
                    self.add_secret(str(value))
            command = sp.build_command(self.spark["spark_submit"], master, params, conf, application)
            self.result["command"] = sp.mask_command(command)
            self.result["changed"] = True
            if self.module.check_mode:
                return None
            if params["check_rbac"]:
                self.check_rbac()
            if configmap is not None:
                self.rest.apply(configmap)
            self.run_spark_submit(command)
            pod = self.find_submitted_driver(submission_id)
            self.result["submitted"] = True
            self.result.update(sp.driver_summary(pod))
            return pod["metadata"]["name"]
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def add_secret(self, value):
        """Ansible masks the value wherever it appears in the result, the error message and the logs."""
        if value:
            self.ansible.no_log_values.add(value)

    @staticmethod
    def write_private(tmpdir, name, content):
        path = os.path.join(tmpdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8") if not isinstance(content, bytes) else content)
        return path

    def prepare_application(self, tmpdir):
        """(application URI, pod template files, ConfigMap manifest to apply or None)."""
        params = self.params
        application = params["application"]
        templates = dict(driver=params["driver_pod_template"], executor=params["executor_pod_template"])
        configmap_name = params["app_configmap"]
        if not configmap_name:
            for role in ("driver", "executor"):
                if isinstance(templates[role], dict):
                    templates[role] = self.write_private(
                        tmpdir, "%s-pod-template.yaml" % role, json.dumps(templates[role], indent=2, sort_keys=True))
            upload = "spark.kubernetes.file.upload.path" in (params["conf"] or {})
            if sp.is_client_file(application) and not upload:
                raise sp.SparkError(
                    "application %s is a file on this machine, which the driver pod cannot read: set "
                    "app_configmap to ship it in a ConfigMap, use local:// for a file inside the image, or set "
                    "conf spark.kubernetes.file.upload.path" % application
                )
            return application, templates, None

        manifest = None
        if sp.is_client_file(application):
            path = sp.client_path(application)
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
            except (IOError, OSError) as e:
                raise sp.SparkError("cannot read application %s: %s" % (path, to_native(e)))
            if len(content) > CONFIGMAP_MAX_BYTES:
                raise sp.SparkError(
                    "application %s is %s bytes, more than a ConfigMap holds (1 MiB): put it in the image or "
                    "use spark.kubernetes.file.upload.path" % (path, len(content))
                )
            manifest = sp.app_configmap_manifest(
                configmap_name, params["namespace"], os.path.basename(path), content, params["name"], params["labels"]
            )
        mount_path = params["app_mount_path"]
        for role in ("driver", "executor"):
            base = templates[role] if isinstance(templates[role], dict) else self.load_template(templates[role])
            container = (params["conf"] or {}).get("spark.kubernetes.%s.podTemplateContainerName" % role)
            pod = sp.pod_template_with_app_volume(base, role, configmap_name, mount_path, container)
            # JSON is YAML, which is what Spark reads pod templates as.
            templates[role] = self.write_private(
                tmpdir, "%s-pod-template.yaml" % role, json.dumps(pod, indent=2, sort_keys=True)
            )
        return sp.app_configmap_application(application, mount_path), templates, manifest

    @staticmethod
    def load_template(path):
        if not path:
            return None
        if yaml is None:
            raise sp.SparkError("PyYAML is needed to read pod templates")
        try:
            with open(path) as handle:
                doc = yaml.safe_load(handle)
        except (IOError, OSError, yaml.YAMLError) as e:
            raise sp.SparkError("cannot read pod template %s: %s" % (path, to_native(e)))
        if doc is not None and not isinstance(doc, dict):
            raise sp.SparkError("pod template %s is not a Pod manifest" % path)
        return doc

    def check_rbac(self):
        namespace = self.params["namespace"]
        account = self.params["service_account"] or "default"
        try:
            found = self.rest.get("ServiceAccount", namespace, account)
        except ApiError:
            found = True  # may not read service accounts: let the API server judge the pod
        if found is None:
            raise sp.SparkError(
                "service account %s/%s does not exist: create it (the bigdata.stack.spark role does) or set "
                "service_account" % (namespace, account)
            )
        reviews = []
        for resource, verb in sp.DRIVER_PERMISSIONS:
            try:
                response = self.rest.create("SubjectAccessReview", sp.subject_access_review(namespace, account, resource, verb),
                                            api_version="authorization.k8s.io/v1")
            except ApiError as e:
                self.module.warn(
                    "could not check the RBAC of service account %s/%s (%s); set check_rbac=false to skip"
                    % (namespace, account, e.message())
                )
                return
            reviews.append(((resource, verb), response))
        denied = sp.rbac_denials(reviews)
        if denied:
            raise sp.SparkError(sp.rbac_denied_message(namespace, account, denied))

    def run_spark_submit(self, command):
        # Spark's Kubernetes client (fabric8) would also read ~/.kube/config or the in-cluster
        # account and mix them with the explicit settings; the task's connection is the only source.
        opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
        opts = (opts + " -Dkubernetes.auth.tryKubeConfig=false -Dkubernetes.auth.tryServiceAccount=false").strip()
        env = {"SPARK_HOME": self.spark["home"], "SPARK_SUBMIT_OPTS": opts}
        if self.params["spark_user"]:
            # Utils.getCurrentUserName reads SPARK_USER first; the driver pod and its executors get it.
            env["SPARK_USER"] = self.params["spark_user"]
        rc, out, err = self.ansible.run_command(command, environ_update=env)
        if rc == 0:
            return
        output = sp.mask_text((err or "") + "\n" + (out or ""))
        forbidden = sp.parse_forbidden(output)
        if forbidden:
            raise sp.SparkError(sp.forbidden_message(forbidden, "spark-submit"))
        tail = "\n".join(line for line in output.strip().splitlines()[-25:])
        failure = sp.parse_api_failure(output)
        if failure:
            # The tail is mostly the stack trace; the refused request is the cause.
            raise sp.SparkError(sp.api_failure_message(rc, failure) + "\nLast lines of its output:\n" + tail)
        raise sp.SparkError("spark-submit failed with exit code %s:\n%s" % (rc, tail))

    def find_submitted_driver(self, submission_id):
        """The driver pod spark-submit created (it returns once the pod exists)."""
        selector = "%s=%s" % (sp.SUBMISSION_LABEL, submission_id)
        deadline = self.clock() + 30
        while True:
            pods = self.rest.list_pods(self.params["namespace"], selector)
            if pods:
                return pods[0]
            if self.clock() >= deadline:
                raise sp.SparkError(
                    "spark-submit succeeded but no driver pod with label %s appeared in namespace %s"
                    % (selector, self.params["namespace"])
                )
            self.sleep(0.5)

    # -- wait

    def wait_for(self, pod_name):
        params = self.params
        namespace = params["namespace"]
        pod, outcome = watch_pod_until(
            self.rest, namespace, pod_name, sp.driver_finished, params["wait_timeout"], clock=self.clock, sleep=self.sleep
        )
        if pod:
            self.result.update(sp.driver_summary(pod))
        self.result["log_tail"] = self.log_tail(pod_name, pod) if outcome != "deleted" else []
        tail = "\n".join(self.result["log_tail"])
        if outcome == "deleted":
            raise sp.SparkError("driver pod %s/%s was deleted before the application finished" % (namespace, pod_name))
        if outcome == "timeout":
            raise sp.SparkError(
                "application %s did not finish within %ss: driver pod %s is %s. Last driver log lines:\n%s"
                % (params["name"], params["wait_timeout"], pod_name, self.result["phase"], tail)
            )
        if sp.driver_failed(pod):
            message = "Spark application %s failed: driver pod %s/%s is %s, exit code %s." % (
                params["name"], namespace, pod_name, self.result["phase"], self.result["exit_code"],
            )
            forbidden = sp.parse_forbidden(tail)
            if forbidden:
                message += " " + sp.forbidden_message(forbidden, "The driver") + "."
            raise sp.SparkError(message + " Last driver log lines:\n" + tail)

    def log_tail(self, pod_name, pod):
        containers = [c.get("name") for c in ((pod or {}).get("spec") or {}).get("containers") or []]
        container = sp.DRIVER_CONTAINER if sp.DRIVER_CONTAINER in containers else None
        try:
            text = self.rest.pod_log(self.params["namespace"], pod_name, self.params["log_tail_lines"], container)
        except (ApiError, Unreachable) as e:
            return ["(driver log unavailable: %s)" % e]
        return sp.mask_text(text).splitlines()


def main(module_class=None):
    """The module's run. The action plugin of the same name calls it in the controller's process
    with plugin_utils/inprocess.py's stand-in for AnsibleModule as ``module_class``."""
    settings = {"module_class": module_class} if module_class else {}
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **settings)
    runner = SparkSubmit(module)
    try:
        result = runner.run()
    except sp.SparkError as e:
        module.fail_json(msg=to_native(e), **runner.result)
    except ConnectError as e:
        module.fail_json(msg=to_native(e), **runner.result)
    except ApiError as e:
        module.fail_json(msg="Kubernetes API request %s failed: %s" % (e.path, e.message()), **runner.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
