# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""What the spark_submit module decides, as pure functions.

Everything here works on plain values (module parameters, pod dictionaries as returned by the
Kubernetes API, text printed by tools) so unit tests can pin it down without a cluster, a JVM
or a Spark distribution. Property names are those of Spark's "Running on Kubernetes" page
(docs/running-on-kubernetes.md in apache/spark).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import re

MASK = "********"

# Labels the module puts on the pods it submits. The app-name label finds every driver of an
# application (idempotence, kill); the submission-id label finds exactly the driver of this run.
APP_LABEL = "bigdata.stack/app-name"
SUBMISSION_LABEL = "bigdata.stack/submission-id"
# Set by Spark itself on driver and executor pods.
ROLE_LABEL = "spark-role"
APP_ID_LABEL = "spark-app-selector"
# Spark names the driver container of the pod it builds like this (Constants.scala).
DRIVER_CONTAINER = "spark-kubernetes-driver"
EXECUTOR_CONTAINER = "spark-kubernetes-executor"
APP_VOLUME = "bigdata-app-code"

ACTIVE_PHASES = ("Pending", "Running")
TERMINAL_PHASES = ("Succeeded", "Failed")

# The driver's service account creates executor pods, the driver service and the executor
# config map, and watches and deletes them (Spark docs, "RBAC").
DRIVER_PERMISSIONS = (
    ("pods", "create"),
    ("pods", "get"),
    ("pods", "list"),
    ("pods", "watch"),
    ("pods", "delete"),
    ("services", "create"),
    ("services", "delete"),
    ("configmaps", "create"),
    ("configmaps", "delete"),
)

# Options the module owns: a user `conf` entry may not change them, or the module would lose
# track of the application it submitted.
RESERVED_CONF = (
    "spark.kubernetes.submission.waitAppCompletion",
    "spark.kubernetes.driver.label." + APP_LABEL,
    "spark.kubernetes.driver.label." + SUBMISSION_LABEL,
    "spark.kubernetes.executor.label." + APP_LABEL,
)

_APP_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# Conf keys whose value is a secret. Mount and env references name a Secret object, they do
# not hold one, and *File keys hold a path.
_SENSITIVE_KEY_RE = re.compile(
    r"(password|passwd|passphrase|secret|token|credential|access\.?key|private\.?key)", re.I
)
_REFERENCE_PREFIXES = (
    "spark.kubernetes.driver.secrets.",
    "spark.kubernetes.executor.secrets.",
    "spark.kubernetes.driver.secretKeyRef.",
    "spark.kubernetes.executor.secretKeyRef.",
)


class SparkError(Exception):
    """A problem the user can fix; the message says how."""


# --------------------------------------------------------------------------- names and conf


def validate_app_name(name):
    """Spark names driver and executor pods after the app: a DNS label, and a label value."""
    if not name or len(name) > 63 or not _APP_NAME_RE.match(name):
        raise SparkError(
            "name %r is not usable as a Kubernetes name: use at most 63 lower case letters, digits, "
            "'-' or '.', starting and ending with a letter or digit" % (name,)
        )


def is_sensitive_conf(key):
    if key.startswith(_REFERENCE_PREFIXES) or key.endswith("File"):
        return False
    return bool(_SENSITIVE_KEY_RE.search(key))


def _conf_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_on_demand_claim(key, value):
    """Whether a conf entry asks for an on-demand claim (Spark "Using Kubernetes Volumes")."""
    return (key.startswith(("spark.kubernetes.driver.volumes.persistentVolumeClaim.",
                            "spark.kubernetes.executor.volumes.persistentVolumeClaim."))
            and key.endswith(".options.claimName") and str(value) == "OnDemand")


def build_conf(params, submission_id, auth_conf=None, pod_templates=None):
    """The ordered list of (key, value) Spark properties of a submission.

    `params` are the module parameters; `auth_conf` the submission credentials
    (see submission_auth); `pod_templates` maps "driver"/"executor" to template file paths.
    The user's `conf` comes last so it can refine anything except RESERVED_CONF.
    """
    conf = []

    def put(key, value):
        if value is not None:
            conf.append((key, _conf_value(value)))

    name = params["name"]
    put("spark.kubernetes.namespace", params["namespace"])
    put("spark.kubernetes.container.image", params.get("image"))
    put("spark.kubernetes.container.image.pullPolicy", params.get("image_pull_policy"))
    put("spark.kubernetes.authenticate.driver.serviceAccountName", params.get("service_account"))
    # The module waits by reading the driver pod, so it owns the timeout and the log tail.
    put("spark.kubernetes.submission.waitAppCompletion", "false")
    put("spark.kubernetes.driver.label." + APP_LABEL, name)
    put("spark.kubernetes.driver.label." + SUBMISSION_LABEL, submission_id)
    put("spark.kubernetes.executor.label." + APP_LABEL, name)
    for key, value in sorted((params.get("labels") or {}).items()):
        put("spark.kubernetes.driver.label." + key, value)
        put("spark.kubernetes.executor.label." + key, value)

    put("spark.driver.cores", params.get("driver_cores"))
    put("spark.driver.memory", params.get("driver_memory"))
    put("spark.executor.cores", params.get("executor_cores"))
    put("spark.executor.memory", params.get("executor_memory"))
    if params.get("dynamic_allocation"):
        put("spark.dynamicAllocation.enabled", "true")
        # Kubernetes has no external shuffle service: executors may only go once the shuffle
        # files they hold are no longer needed (Spark "Dynamic Resource Allocation").
        put("spark.dynamicAllocation.shuffleTracking.enabled", "true")
    else:
        put("spark.executor.instances", params.get("executor_instances"))

    # spark.kubernetes.{driver,executor}.secrets.[SecretName]=<mount path>
    for secret, path in sorted((params.get("secrets") or {}).items()):
        put("spark.kubernetes.driver.secrets." + secret, path)
        put("spark.kubernetes.executor.secrets." + secret, path)
    # spark.kubernetes.{driver,executor}.secretKeyRef.[EnvName]=<secret name>:<key>
    for env, ref in sorted((params.get("env_secrets") or {}).items()):
        put("spark.kubernetes.driver.secretKeyRef." + env, ref)
        put("spark.kubernetes.executor.secretKeyRef." + env, ref)

    if params.get("event_log_dir"):
        put("spark.eventLog.enabled", "true")
        put("spark.eventLog.dir", params["event_log_dir"])

    # A driver owns and reuses only on-demand claims (spark.kubernetes.{driver,executor}.volumes.
    # persistentVolumeClaim.<volume>.options.claimName=OnDemand). Without one, Spark 4's defaults
    # (ownPersistentVolumeClaim and reusePersistentVolumeClaim true) still make the driver list the
    # namespace's claims when it asks for executors and delete them by label when it stops (Spark's
    # ExecutorPodsAllocator and KubernetesClusterSchedulerBackend.stop), which needs RBAC on
    # persistentvolumeclaims: the bigdata.stack.spark role grants it only with
    # spark_driver_pvc_enabled, and without it every driver logged the 403 of that delete as an ERROR
    # with its stack trace (seen once drivers ran for real on the simulated cluster's node agent).
    user = params.get("conf") or {}
    if not any(is_on_demand_claim(key, value) for key, value in user.items()):
        put("spark.kubernetes.driver.ownPersistentVolumeClaim", "false")
        put("spark.kubernetes.driver.reusePersistentVolumeClaim", "false")

    for role in ("driver", "executor"):
        if pod_templates and pod_templates.get(role):
            put("spark.kubernetes.%s.podTemplateFile" % role, pod_templates[role])

    for key, value in (auth_conf or {}).items():
        put(key, value)

    reserved = [key for key in (params.get("conf") or {}) if key in RESERVED_CONF]
    if reserved:
        raise SparkError(
            "conf may not set %s: spark_submit sets them to track the application it submits"
            % ", ".join(sorted(reserved))
        )
    if user:
        conf = [(key, value) for key, value in conf if key not in user]
        for key in sorted(user):
            put(key, user[key])
    return conf


def build_command(spark_submit, master, params, conf, application=None):
    """The spark-submit argument list (cluster deploy mode)."""
    command = [
        spark_submit,
        "--master", master,
        "--deploy-mode", "cluster",
        "--name", params["name"],
    ]
    if params.get("main_class"):
        command += ["--class", params["main_class"]]
    for key, value in conf:
        command += ["--conf", "%s=%s" % (key, value)]
    command.append(application or params["application"])
    command += [str(arg) for arg in (params.get("application_args") or [])]
    return command


def mask_command(command, secrets=()):
    """A copy of the command that is safe to show: sensitive conf values and known secrets hidden."""
    masked = []
    after_conf = False
    for arg in command:
        if after_conf and "=" in arg:
            key, value = arg.split("=", 1)
            if is_sensitive_conf(key) and value:
                arg = "%s=%s" % (key, MASK)
        masked.append(mask_text(arg, secrets))
        after_conf = arg == "--conf"
    return masked


_TEXT_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+"),
    re.compile(r"(?i)((?:oauthToken|password|passwd|secret\.key|access\.key)\s*[=:]\s*)[^\s,;\"']+"),
)


def mask_text(text, secrets=()):
    """Hide known secret values and obvious credentials (bearer tokens, password=...) in text."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _TEXT_SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


# --------------------------------------------------------------------------- application code


def has_local_scheme(application):
    return application.startswith("local://")


def is_client_file(application):
    """A path on the submitting machine (no scheme, or file://)."""
    return "://" not in application or application.startswith("file://")


def client_path(application):
    return application[len("file://"):] if application.startswith("file://") else application


def app_configmap_application(application, mount_path):
    """Where the application file is seen in the pods once mounted from the ConfigMap."""
    if has_local_scheme(application):
        return application
    return "local://%s/%s" % (mount_path.rstrip("/"), os.path.basename(client_path(application)))


def app_configmap_manifest(name, namespace, filename, content, app_name, labels=None):
    """A ConfigMap holding the application file; binary files (JARs) go to binaryData.

    It carries the labels the pods get, so whatever finds the application's pods by label
    (teardown, status) finds its code too.
    """
    import base64

    meta_labels = dict((str(k), str(v)) for k, v in (labels or {}).items())
    meta_labels[APP_LABEL] = app_name
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
    }
    try:
        manifest["data"] = {filename: content.decode("utf-8")}
    except UnicodeDecodeError:
        manifest["binaryData"] = {filename: base64.b64encode(content).decode("ascii")}
    return manifest


def pod_template_with_app_volume(template, role, configmap, mount_path, container_name=None):
    """Mount the application ConfigMap into the Spark container of a pod template.

    Spark can mount hostPath, emptyDir, nfs and persistentVolumeClaim volumes from properties
    (spark.kubernetes.{driver,executor}.volumes.*) but not a ConfigMap, so the ConfigMap goes
    through the pod template instead (spark.kubernetes.{driver,executor}.podTemplateFile).
    Spark uses the container named by spark.kubernetes.{driver,executor}.podTemplateContainerName,
    else the first one, as the basis of its own container; a template without containers gets
    one with Spark's default container name.
    """
    pod = copy.deepcopy(template) if template else {}
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    spec = pod.setdefault("spec", {}) or {}
    pod["spec"] = spec
    volumes = [v for v in (spec.get("volumes") or []) if v.get("name") != APP_VOLUME]
    volumes.append({"name": APP_VOLUME, "configMap": {"name": configmap}})
    spec["volumes"] = volumes
    containers = spec.get("containers") or []
    if not containers:
        containers = [{"name": DRIVER_CONTAINER if role == "driver" else EXECUTOR_CONTAINER}]
    index = 0
    if container_name:
        for i, container in enumerate(containers):
            if container.get("name") == container_name:
                index = i
                break
    container = containers[index]
    mounts = [m for m in (container.get("volumeMounts") or []) if m.get("name") != APP_VOLUME]
    mounts.append({"name": APP_VOLUME, "mountPath": mount_path, "readOnly": True})
    container["volumeMounts"] = mounts
    spec["containers"] = containers
    return pod


# --------------------------------------------------------------------------- connection


def _with_port(url):
    """Spark needs an explicit port in the master URL, even 443."""
    match = re.match(r"^(https?)://([^/]+)(.*)$", url)
    if not match:
        return url
    scheme, authority, rest = match.groups()
    host_part = authority.rsplit("@", 1)[-1]
    has_port = re.search(r":\d+$", host_part) and not host_part.endswith("]")
    if not has_port:
        authority += ":443" if scheme == "https" else ":80"
    return "%s://%s%s" % (scheme, authority, rest)


def bearer_token(configuration):
    """The bearer token of a kubernetes client Configuration, None when it uses none."""
    getter = getattr(configuration, "get_api_key_with_prefix", None)
    value = None
    if getter is not None:
        # Runs the refresh hook of exec/OIDC kubeconfig users, then returns "Bearer <token>".
        value = getter("BearerToken", alias="authorization")
    if not value:
        api_key = getattr(configuration, "api_key", None) or {}
        value = api_key.get("authorization") or api_key.get("BearerToken")
    if not value:
        return None
    value = str(value)
    if value.lower().startswith("bearer "):
        value = value[7:]
    return value.strip() or None


def submission_auth(configuration):
    """How spark-submit reaches the API server the module is connected to.

    Returns (master URL, conf dict, token, warnings). The token is returned apart: the caller
    writes it to a private file for spark.kubernetes.authenticate.submission.oauthTokenFile,
    because ...submission.oauthToken would put it on the command line.
    """
    host = getattr(configuration, "host", None)
    if not host:
        raise SparkError("the Kubernetes configuration has no API server URL (host)")
    master = "k8s://" + _with_port(host.rstrip("/"))
    conf = {}
    warnings = []
    ca_cert = getattr(configuration, "ssl_ca_cert", None)
    if ca_cert:
        conf["spark.kubernetes.authenticate.submission.caCertFile"] = ca_cert
    cert_file = getattr(configuration, "cert_file", None)
    key_file = getattr(configuration, "key_file", None)
    if cert_file and key_file:
        conf["spark.kubernetes.authenticate.submission.clientCertFile"] = cert_file
        conf["spark.kubernetes.authenticate.submission.clientKeyFile"] = key_file
    if getattr(configuration, "verify_ssl", True) is False:
        # Added in Spark 3.2 (SPARK-33720): skip server certificate checks like validate_certs=false.
        conf["spark.kubernetes.trust.certificates"] = "true"
    token = bearer_token(configuration)
    if not token and not (cert_file and key_file):
        if getattr(configuration, "username", None) and getattr(configuration, "password", None):
            raise SparkError(
                "spark-submit cannot authenticate with a username and password: give the module a "
                "token (api_key) or a client certificate (client_cert/client_key) or a kubeconfig"
            )
        warnings.append("no token or client certificate found: spark-submit connects anonymously")
    if getattr(configuration, "tls_server_name", None):
        warnings.append("tls-server-name of the kubeconfig is not supported by spark-submit")
    if getattr(configuration, "proxy", None):
        warnings.append("the proxy setting is not passed to spark-submit")
    return master, conf, token, warnings


# --------------------------------------------------------------------------- versions


_SPARK_CORE_JAR_RE = re.compile(r"^spark-core_\d+\.\d+-(\d+\.\d+\.\d+[^/]*?)\.jar$")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?=$|[-_+.])")


def spark_version_from_jars(filenames):
    """Spark's version from the names in $SPARK_HOME/jars (spark-core_2.13-4.0.1.jar)."""
    for filename in filenames:
        match = _SPARK_CORE_JAR_RE.match(filename)
        if match:
            return match.group(1)
    return None


def spark_version_from_release(text):
    """Spark's version from $SPARK_HOME/RELEASE ("Spark 4.0.1 built for Hadoop 3.4.1")."""
    match = re.search(r"Spark (\d+\.\d+\.\d+\S*)", text or "")
    return match.group(1) if match else None


def spark_version_from_submit_output(text):
    """Spark's version from `spark-submit --version` (the banner says "version 4.0.1")."""
    match = re.search(r"version (\d+\.\d+\.\d+\S*)", text or "")
    return match.group(1) if match else None


def image_spark_version(image):
    """The Spark version an image tag names (apache/spark:4.0.1-scala2.13-java17), else None."""
    if not image:
        return None
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.split(":", 1)[1]
    match = _VERSION_RE.match(tag)
    if not match:
        return None
    return ".".join(part for part in match.groups() if part is not None)


def _major_minor(version):
    match = _VERSION_RE.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def versions_match(client_version, image_version):
    """Spark on Kubernetes needs the submitting client and the image on the same major.minor."""
    client, image = _major_minor(client_version), _major_minor(image_version)
    if client is None or image is None:
        return True
    return client == image


def version_mismatch_message(client_version, spark_submit, image, image_version):
    return (
        "Spark version mismatch: spark-submit %s is Spark %s but image %s runs Spark %s. Use a "
        "matching client (pip install pyspark==%s, or spark_home of a Spark %s distribution) or an "
        "image of Spark %s; set check_image_version=false to skip this check"
        % (spark_submit, client_version, image, image_version, image_version, image_version, client_version)
    )


def parse_java_major(text):
    """Major Java version from `java -version` output or a release file's JAVA_VERSION."""
    match = re.search(r'version "([^"]+)"', text or "") or re.search(
        r'JAVA_VERSION="([^"]+)"', text or ""
    )
    if not match:
        return None
    version = match.group(1)
    parts = re.findall(r"\d+", version)
    if not parts:
        return None
    if parts[0] == "1" and len(parts) > 1:  # 1.8.0_392 is Java 8
        return int(parts[1])
    return int(parts[0])


def required_java(spark_version):
    """Spark 4 runs on Java 17 or later; Spark 3 on Java 8 or later."""
    major_minor = _major_minor(spark_version)
    if major_minor and major_minor[0] < 4:
        return 8
    return 17


def java_too_old_message(java, found, needed, spark_version):
    return (
        "%s is Java %s but Spark %s needs Java %s or later: install a newer JDK/JRE and put it first "
        "on PATH or point JAVA_HOME at it (check with `java -version`)"
        % (java, found, spark_version or "", needed)
    )


# --------------------------------------------------------------------------- RBAC


def subject_access_review(namespace, service_account, resource, verb):
    """A SubjectAccessReview asking whether the driver's service account may do verb on resource."""
    user = "system:serviceaccount:%s:%s" % (namespace, service_account)
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "", "resource": resource},
        },
    }


def rbac_denials(reviews):
    """[(resource, verb, reason)] for the reviews not allowed; `reviews` pairs (resource, verb) with a response."""
    denied = []
    for (resource, verb), response in reviews:
        status = (response or {}).get("status") or {}
        if not status.get("allowed"):
            denied.append((resource, verb, status.get("reason") or status.get("evaluationError") or ""))
    return denied


def rbac_denied_message(namespace, service_account, denied):
    missing = {}
    for resource, verb, _reason in denied:
        missing.setdefault(resource, []).append(verb)
    parts = ["%s %s" % ("/".join(verbs), resource) for resource, verbs in sorted(missing.items())]
    return (
        "service account %s/%s, which the Spark driver runs as, may not %s. Bind it to a Role granting "
        "these verbs in namespace %s (the bigdata.stack.spark role creates one), or set service_account "
        "to an account that has them; check_rbac=false skips this check"
        % (namespace, service_account, "; ".join(parts), namespace)
    )


# `pods is forbidden: User ...` (create: the name is in the body) and `configmaps "spark-drv-1-conf-map" is
# forbidden: User ...` (a named object: get, patch, delete, and the server-side apply Spark 4 uses).
_FORBIDDEN_RE = re.compile(
    r'(?P<resource>[\w.\-/]+)(?: "[^"]*")? is forbidden: User "(?P<user>[^"]+)" cannot (?P<verb>\w+) resource '
    r'"(?P<resource2>[^"]+)"(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)


def parse_forbidden(text):
    """The first Kubernetes 403 in tool output, as a dict (user, verb, resource, namespace) or None."""
    match = _FORBIDDEN_RE.search(text or "")
    if not match:
        return None
    group = match.group("group")
    return {
        "user": match.group("user"),
        "verb": match.group("verb"),
        "resource": match.group("resource2") + ("." + group if group else ""),
        "namespace": match.group("namespace"),
    }


# fabric8 (spark-submit's Kubernetes client) reports a refused request as
# `Failure executing: POST at: <url>. Message: <the API server's message>. Received status: Status(...)`.
_API_FAILURE_RE = re.compile(
    r"Failure executing: (?P<verb>[A-Z]+) at: (?P<url>\S+?)\.? Message: (?P<message>.+?)\.? Received status:", re.S
)


def parse_api_failure(text):
    """The first request the API server refused in spark-submit output: (verb, url, message) or None."""
    match = _API_FAILURE_RE.search(text or "")
    if not match:
        return None
    return match.group("verb"), match.group("url"), " ".join(match.group("message").split())


def api_failure_message(rc, failure):
    verb, url, message = failure
    text = "spark-submit failed with exit code %s: the API server refused %s %s: %s" % (rc, verb, url, message)
    if "violates PodSecurity" in message:
        text += (
            ". The namespace enforces Pod Security: give the driver and executors a compliant securityContext "
            "through driver_pod_template and executor_pod_template (the bigdata.stack.spark role renders "
            "restricted ones in the ConfigMap spark-pod-templates)"
        )
    return text


def forbidden_message(forbidden, who):
    where = " in namespace %s" % forbidden["namespace"] if forbidden.get("namespace") else ""
    return "%s was denied by the API server: %s may not %s %s%s; grant it with a Role and RoleBinding" % (
        who, forbidden["user"], forbidden["verb"], forbidden["resource"], where,
    )


# --------------------------------------------------------------------------- driver pods


def driver_selector(app_name):
    return "%s=driver,%s=%s" % (ROLE_LABEL, APP_LABEL, app_name)


def is_active(pod):
    meta = pod.get("metadata") or {}
    return (pod.get("status") or {}).get("phase") in ACTIVE_PHASES and not meta.get("deletionTimestamp")


def driver_container_status(pod):
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == DRIVER_CONTAINER:
            return status
    return statuses[0] if statuses else None


def driver_exit_code(pod):
    status = driver_container_status(pod) or {}
    terminated = (status.get("state") or {}).get("terminated")
    if terminated is None:
        return None
    return terminated.get("exitCode")


def driver_finished(pod):
    """Done: the pod reached a terminal phase, or the driver container ended (sidecars may linger)."""
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return True
    return driver_exit_code(pod) is not None


def driver_summary(pod):
    meta = pod.get("metadata") or {}
    return {
        "driver_pod": meta.get("name"),
        "app_id": (meta.get("labels") or {}).get(APP_ID_LABEL),
        "phase": (pod.get("status") or {}).get("phase"),
        "exit_code": driver_exit_code(pod),
    }


def driver_failed(pod):
    summary = driver_summary(pod)
    if summary["phase"] == "Failed":
        return True
    return summary["exit_code"] not in (None, 0)


def newest_first(pods):
    return sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


# --------------------------------------------------------------------------- local tools

SPARK_NOT_FOUND = (
    "spark-submit not found: install the pyspark package matching the image's Spark version "
    "(pip install pyspark==<version>) for the Python that runs this task, put a Spark distribution's "
    "bin/ on PATH, or set spark_home to an unpacked Spark distribution"
)


def _executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def find_spark(spark_home=None, pyspark_dir=None, which=None):
    """(spark-submit path, SPARK_HOME): option spark_home, else the pyspark package, else PATH."""
    if spark_home:
        submit = os.path.join(spark_home, "bin", "spark-submit")
        if not _executable(submit):
            raise SparkError(
                "spark_home %s has no executable bin/spark-submit: point it at an unpacked Spark "
                "distribution (the directory holding bin/ and jars/)" % spark_home
            )
        return submit, spark_home
    if pyspark_dir:
        submit = os.path.join(pyspark_dir, "bin", "spark-submit")
        if _executable(submit):
            return submit, pyspark_dir
    found = which("spark-submit") if which else None
    if found:
        real = os.path.realpath(found)
        return found, os.path.dirname(os.path.dirname(real))
    raise SparkError(SPARK_NOT_FOUND)


def spark_home_version(spark_home):
    """Spark version of a distribution or pyspark package without starting a JVM, else None."""
    try:
        version = spark_version_from_jars(sorted(os.listdir(os.path.join(spark_home, "jars"))))
    except OSError:
        version = None
    if version:
        return version
    try:
        with open(os.path.join(spark_home, "RELEASE")) as release:
            return spark_version_from_release(release.read())
    except (IOError, OSError):
        return None


def find_java(environ, which):
    """The java spark-submit will run: $JAVA_HOME/bin/java when JAVA_HOME is set, else PATH."""
    java_home = environ.get("JAVA_HOME")
    if java_home:
        java = os.path.join(java_home, "bin", "java")
        if not _executable(java):
            raise SparkError(
                "JAVA_HOME is %s but it has no bin/java: point JAVA_HOME at a JDK/JRE 17 or later, or unset it" % java_home
            )
        return java
    java = which("java")
    if not java:
        raise SparkError(
            "Java not found: spark-submit needs Java 17 or later. Install a JDK/JRE (e.g. the "
            "openjdk-17-jre-headless package) so `java -version` works, or set JAVA_HOME"
        )
    return java


def java_release_major(java):
    """Java major version from the release file of the JDK a java binary belongs to, else None."""
    release = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(java))), "release")
    try:
        with open(release) as handle:
            return parse_java_major(handle.read())
    except (IOError, OSError):
        return None
