#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: wait_ready
short_description: Wait until a component's workloads rolled out and the application reports healthy
version_added: 0.1.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - Waits in two stages for a component of the stack to be really ready.
  - Rollout. Each StatefulSet or Deployment in I(resources) has observed its latest generation, and all its
    replicas are updated and ready (and available, for a Deployment); a StatefulSet with a
    C(RollingUpdate) strategy has one revision left. A pod that cannot recover (C(CrashLoopBackOff) after 3
    restarts, C(ImagePullBackOff), C(ErrImagePull), a container restarting again and again) fails the
    task at once with the pod's last state instead of waiting for the timeout; one crash is waited for.
  - A Job in I(resources) is ready once it has completed; a Job that failed (backoff limit or deadline
    reached) fails the task at once with its reason.
  - Application health, once the rollout is complete and unless I(health) is omitted or I(application=false).
    Elasticsearch C(_cluster/health) reaches I(health.wait_for_status); Kibana C(/api/status) reports
    C(available); the HDFS NameNode is out of safe mode with I(health.min_datanodes) live DataNodes (JMX);
    the Kafka KRaft quorum has a leader and I(health.min_brokers) brokers are registered.
  - HTTP checks go through the API server's service proxy, so they work from wherever the API server is
    reachable, without port forwards. Checks with credentials run C(curl) in a pod of the workload instead
    (pods/exec), because the API server keeps the C(Authorization) header of proxied requests for itself.
    Kafka checks run the Kafka command line tools in a pod of the workload.
  - The module only reads; it never reports a change.
options:
  namespace:
    description:
      - Namespace of the workloads and services.
    type: str
    required: true
  resources:
    description:
      - Workloads whose rollout to wait for.
    type: list
    elements: dict
    default: []
    suboptions:
      kind:
        description: Kind of the workload.
        type: str
        required: true
        choices: [Deployment, Job, StatefulSet]
      name:
        description: Name of the workload.
        type: str
        required: true
  health:
    description:
      - Application health check run after the rollout. Omit it to check the rollout only.
    type: dict
    suboptions:
      type:
        description: Which component to ask.
        type: str
        required: true
        choices: [elasticsearch, kibana, hdfs, kafka]
      service:
        description:
          - Service of the HTTP endpoint. Defaults to C(elasticsearch), C(kibana) and C(hdfs-namenode).
        type: str
      port:
        description:
          - Port of the HTTP endpoint. Defaults to 9200 (Elasticsearch), 5601 (Kibana) and 9870 (HDFS NameNode).
        type: int
      scheme:
        description:
          - Scheme of the HTTP endpoint. Server certificates are not verified (the check asks for health, it
            sends no data).
        type: str
        choices: [http, https]
        default: http
      transport:
        description:
          - How HTTP checks reach the component. C(proxy) goes through the API server's service proxy;
            C(exec) runs C(curl) in a ready pod of the first workload in I(resources) (or I(health.pod));
            C(auto) uses C(exec) when credentials are given, else C(proxy).
        type: str
        choices: [auto, proxy, exec]
        default: auto
      wait_for_status:
        description: Lowest acceptable Elasticsearch cluster status.
        type: str
        choices: [green, yellow]
        default: green
      min_nodes:
        description: Elasticsearch nodes that must have joined the cluster.
        type: int
      min_datanodes:
        description: Live HDFS DataNodes needed.
        type: int
        default: 1
      min_brokers:
        description: Registered, unfenced Kafka brokers needed.
        type: int
        default: 1
      username:
        description: User for Elasticsearch or Kibana. Needs I(health.password).
        type: str
      password:
        description: Password of I(health.username).
        type: str
      credentials_secret:
        description:
          - Secret in I(namespace) holding the keys C(username) and C(password) to use instead of
            I(health.username) and I(health.password).
        type: str
      pod:
        description:
          - Pod to run exec checks in. Defaults to a ready pod of the first workload in I(resources).
        type: str
      container:
        description: Container of I(health.pod) to run exec checks in; the pod's first by default.
        type: str
      bootstrap_server:
        description: Kafka bootstrap server, as seen from inside the pod.
        type: str
        default: localhost:9092
      bootstrap_controller:
        description:
          - Kafka controller endpoint for C(kafka-metadata-quorum.sh --bootstrap-controller); the quorum is asked
            through I(health.bootstrap_server) when omitted.
        type: str
      command_config:
        description: Client properties file inside the pod for the Kafka tools (C(--command-config)), e.g. for SASL/TLS.
        type: str
      kafka_bin_dir:
        description: Directory of the Kafka scripts inside the pod (official apache/kafka images use C(/opt/kafka/bin)).
        type: str
        default: /opt/kafka/bin
  application:
    description:
      - Run the I(health) check. C(false) waits for the rollout only.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for both stages together.
      - The name matches kubernetes.core; the former name C(timeout) still works.
    type: int
    default: 600
    aliases: [timeout]
  wait_sleep:
    description:
      - Seconds between two checks.
      - The name matches kubernetes.core; the former name C(poll_interval) still works.
    type: int
    default: 5
    aliases: [poll_interval]
  stuck_timeout:
    description:
      - Seconds after which a pod that cannot start fails the task before I(wait_timeout), with the reason
        the API server gives.
      - Unschedulable. Every C(Pending) pod has been C(Unschedulable) for this long during the wait, the number
        of nodes did not change and no cluster-autoscaler C(TriggeredScaleUp) event names one of them (no node is
        being added). The message is the scheduler's.
      - Missing mount. A pod's C(FailedMount) events name a Secret or ConfigMap that does not exist, and it still
        does not exist this long after the wait first saw the event. The message names it.
      - C(0) never fails early.
    type: int
    default: 60
    version_added: 0.2.0
  progress_interval:
    description:
      - Seconds between two progress lines on the controller's console while the wait goes on (which pods are
        not ready, and why). The first line comes after this many seconds, so a short wait prints none.
      - C(0) prints none. Only the action plugin, which runs the module in the controller's process, prints.
    type: int
    default: 30
    version_added: 0.2.0
notes:
  - Permissions needed, in I(namespace), by the task's user - get on the workloads, list on pods, get on
    services/proxy for HTTP checks, create on pods/exec for exec and Kafka checks, get on the credentials secret.
    While a pod is C(Pending), also list on events, get on secrets and configmaps, and list on nodes (cluster-wide;
    without it the node count is not compared and only C(TriggeredScaleUp) events tell that nodes are coming).
seealso:
  - module: kubernetes.core.k8s
    description: C(wait) of kubernetes.core.k8s checks the rollout only.
  - module: bigdata.stack.spark_submit
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: Nothing is waited for; the module returns the checks it would make.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action_group:
    membership:
      - bigdata.stack.k8s
"""

EXAMPLES = r"""
- name: Wait for the Kafka brokers and a KRaft quorum with three brokers
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - kind: StatefulSet
        name: kafka
    health:
      type: kafka
      min_brokers: 3
    wait_timeout: 900

- name: Wait for Elasticsearch to be green, with the monitoring user from a secret
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - {kind: StatefulSet, name: elasticsearch}
    health:
      type: elasticsearch
      scheme: https
      wait_for_status: green
      credentials_secret: elasticsearch-monitor

- name: Wait for HDFS to leave safe mode with all DataNodes
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - {kind: StatefulSet, name: hdfs-namenode}
      - {kind: StatefulSet, name: hdfs-datanode}
    health:
      type: hdfs
      min_datanodes: "{{ hdfs_datanode_replicas }}"

- name: Wait for Kibana
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - {kind: Deployment, name: kibana}
    health:
      type: kibana

- name: Only wait for the Spark history server rollout
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - {kind: Deployment, name: spark-history}

- name: Wait for a setup Job to complete
  bigdata.stack.wait_ready:
    namespace: bigdata
    resources:
      - {kind: Job, name: elasticsearch-setup-1a2b3c4d}
    wait_timeout: 900
"""

RETURN = r"""
ready:
  description: Whether the rollout completed and the application reported healthy. Null in check mode.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 42.7
resources:
  description: Last status of each workload in I(resources).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the workload.
      type: str
      returned: always
      sample: StatefulSet
    name:
      description: Name of the workload.
      type: str
      returned: always
      sample: kafka
    ready:
      description: Whether the rollout of the workload is complete.
      type: bool
      returned: always
      sample: true
    replicas:
      description: Desired replicas; the completions of a Job.
      type: int
      returned: always
      sample: 3
    ready_replicas:
      description: Ready replicas; the succeeded pods of a Job.
      type: int
      returned: always
      sample: 3
    updated_replicas:
      description: Replicas on the latest revision or template; the succeeded pods of a Job.
      type: int
      returned: always
      sample: 3
    message:
      description: The status in words, naming missing pods and why they are not ready.
      type: str
      returned: always
      sample: "1 of 3 replicas ready (missing kafka-1: Pending, Unschedulable: 0/3 nodes are available)"
health:
  description: Result of the last application health check; empty when none ran.
  returned: always
  type: dict
  contains:
    type:
      description: The component asked.
      type: str
      returned: when a check ran
      sample: elasticsearch
    ok:
      description: Whether the component reported healthy.
      type: bool
      returned: when a check ran
      sample: true
    reason:
      description: Why it is not healthy, null when it is.
      type: str
      returned: when a check ran
      sample: cluster bigdata is yellow, waiting for green (3 nodes, 5 unassigned shards, 83.3% shards active)
    status:
      description: Elasticsearch cluster status.
      type: str
      returned: for elasticsearch
      sample: green
    level:
      description: Kibana overall status level.
      type: str
      returned: for kibana
      sample: available
    live_datanodes:
      description: Live HDFS DataNodes.
      type: int
      returned: for hdfs
      sample: 3
    safemode:
      description: Whether the NameNode is in safe mode.
      type: bool
      returned: for hdfs
      sample: false
    leader_id:
      description: Node id of the KRaft quorum leader.
      type: int
      returned: for kafka
      sample: 1
    brokers:
      description: Ids of the registered, unfenced Kafka brokers.
      type: list
      elements: int
      returned: for kafka
      sample: [0, 1, 2]
checks:
  description: What the module checks (or, in check mode, would check), in words.
  returned: always
  type: list
  elements: str
  sample: ["rollout of StatefulSet bigdata/kafka", "kafka health in a pod of StatefulSet kafka (min_brokers 3)"]
"""

import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.bigdata.stack.plugins.module_utils import health as hc
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError, ConnectError, Unreachable, connect
from ansible_collections.bigdata.stack.plugins.module_utils.waiter import (
    KINDS,
    FatalWait,
    RestartTracker,
    StuckJudge,
    label_selector,
    missing_mounts,
    owned_by,
    pod_ready,
    progress_line,
    resource_status,
    unschedulable_message,
    wait_until,
)
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

HEALTH_OPTIONS = dict(
    type=dict(type="str", required=True, choices=list(hc.HEALTH_TYPES)),
    service=dict(type="str"),
    port=dict(type="int"),
    scheme=dict(type="str", default="http", choices=["http", "https"]),
    transport=dict(type="str", default="auto", choices=["auto", "proxy", "exec"]),
    wait_for_status=dict(type="str", default="green", choices=["green", "yellow"]),
    min_nodes=dict(type="int"),
    min_datanodes=dict(type="int", default=1),
    min_brokers=dict(type="int", default=1),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    credentials_secret=dict(type="str", no_log=False),
    pod=dict(type="str"),
    container=dict(type="str"),
    bootstrap_server=dict(type="str", default="localhost:9092"),
    bootstrap_controller=dict(type="str"),
    command_config=dict(type="str"),
    kafka_bin_dir=dict(type="str", default="/opt/kafka/bin"),
)


def argument_spec():
    spec = dict(
        namespace=dict(type="str", required=True),
        resources=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                kind=dict(type="str", required=True, choices=sorted(KINDS)),
                name=dict(type="str", required=True),
            ),
        ),
        health=dict(
            type="dict",
            options=HEALTH_OPTIONS,
            required_together=[("username", "password")],
            mutually_exclusive=[("username", "credentials_secret"), ("password", "credentials_secret")],
        ),
        application=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600, aliases=["timeout"]),
        wait_sleep=dict(type="int", default=5, aliases=["poll_interval"]),
        stuck_timeout=dict(type="int", default=60),
        progress_interval=dict(type="int", default=30),
    )
    spec.update(AUTH_ARG_SPEC)
    return spec


def describe_checks(params):
    """The checks a run makes, in words (also the check mode answer)."""
    namespace = params["namespace"]
    checks = ["%s of %s %s/%s" % ("completion" if r["kind"] == "Job" else "rollout", r["kind"], namespace, r["name"])
              for r in params["resources"]]
    health = params.get("health")
    if health and params["application"]:
        kind = health["type"]
        if kind == "kafka":
            where = "pod %s" % health["pod"] if health.get("pod") else "a pod of %s" % _first_resource_text(params)
            checks.append("kafka health in %s (KRaft leader, min_brokers %s)" % (where, health["min_brokers"]))
        else:
            service, port = _endpoint(health)
            transport = _transport(health)
            checks.append("%s health via %s of %s://%s:%s" % (kind, "service proxy" if transport == "proxy" else "curl in a pod",
                                                              health["scheme"], service, port))
    return checks


def _first_resource_text(params):
    if params["resources"]:
        return "%s %s" % (params["resources"][0]["kind"], params["resources"][0]["name"])
    return "(no resources: set health.pod)"


def _endpoint(health):
    service, port = hc.DEFAULT_ENDPOINTS.get(health["type"], (None, None))
    return health.get("service") or service, health.get("port") or port


def _transport(health):
    if health["transport"] != "auto":
        return health["transport"]
    has_credentials = health.get("username") or health.get("credentials_secret")
    return "exec" if has_credentials else "proxy"


class ReadyWaiter(object):
    """One wait: rollout predicates, then the health check, behind one loop (waiter.wait_until)."""

    def __init__(self, module, rest, clock=time.monotonic, sleep=time.sleep, progress=None):
        self.module = module
        self.progress = progress
        self.judge = StuckJudge(module.params["stuck_timeout"])
        self.started = None
        self.last_progress = None
        self.params = module.params
        self.rest = rest
        self.clock = clock
        self.sleep = sleep
        self.tracker = RestartTracker()
        self.statuses = []
        self.pods = {}
        self.health = {}
        self.credentials = None
        self.health_error = None

    # -- stage 1

    def rollout(self):
        """(all rolled out, summaries) of the workloads; FatalWait when a pod cannot recover."""
        namespace = self.params["namespace"]
        statuses = []
        for resource in self.params["resources"]:
            kind, name = resource["kind"], resource["name"]
            obj = self.rest.get(kind, namespace, name, api_version=KINDS[kind])
            if obj is None:
                statuses.append(dict(kind=kind, name=name, namespace=namespace, ready=False, replicas=None,
                                     ready_replicas=0, updated_replicas=0, message="not found"))
                self.pods[(kind, name)] = []
                continue
            selector = label_selector((obj.get("spec") or {}).get("selector"))
            pods = self.rest.list_pods(namespace, selector) if selector else []
            if kind == "StatefulSet":
                uid = (obj.get("metadata") or {}).get("uid")
                pods = [pod for pod in pods if owned_by(pod, uid)]
            self.pods[(kind, name)] = pods
            statuses.append(resource_status(kind, obj, pods, self.tracker))
        self.statuses = statuses
        return all(status["ready"] for status in statuses), statuses

    # -- stage 2

    def resolve_credentials(self):
        health = self.params["health"]
        if health.get("username"):
            self.credentials = (health["username"], health["password"])
        elif health.get("credentials_secret"):
            try:
                username, password = hc.secret_credentials(self.rest, self.params["namespace"], health["credentials_secret"])
            except ValueError as e:
                raise FatalWait(to_native(e))
            self.module.no_log_values.add(password)
            self.credentials = (username, password)

    def exec_pod(self):
        """(pod name, pod IP) to run exec checks in: health.pod, else a ready pod of the first workload."""
        health = self.params["health"]
        namespace = self.params["namespace"]
        if health.get("pod"):
            pod = self.rest.get("Pod", namespace, health["pod"])
            if pod is None:
                raise FatalWait("health.pod %s/%s does not exist" % (namespace, health["pod"]))
            return health["pod"], (pod.get("status") or {}).get("podIP")
        if not self.params["resources"]:
            raise FatalWait("health.type=%s needs a pod to run in: list the workload in resources or set health.pod"
                            % health["type"])
        first = self.params["resources"][0]
        for pod in self.pods.get((first["kind"], first["name"])) or []:
            if pod_ready(pod):
                return pod["metadata"]["name"], (pod.get("status") or {}).get("podIP")
        return None, None

    def check_health(self):
        health = self.params["health"]
        kind = health["type"]
        try:
            if kind == "kafka":
                result = self.kafka_health()
            else:
                answers = {}
                for name, path, query in hc.http_checks(kind):
                    answers[name] = self.http_get(path, query)
                result = hc.interpret(kind, answers, health)
        except (ApiError, Unreachable) as e:
            result = dict(ok=False, reason=to_native(e))
        result["type"] = kind
        self.health = result
        return result["ok"]

    def http_get(self, path, query):
        health = self.params["health"]
        service, port = _endpoint(health)
        if _transport(health) == "proxy":
            return self.rest.service_proxy_get(self.params["namespace"], service, port, path, health["scheme"], query)
        pod, ip = self.exec_pod()
        if not pod or not ip:
            return 0, "no ready pod with an IP to run curl in yet"
        url = hc.pod_url(health["scheme"], ip, port, path, query)
        stdin = hc.curl_config(*self.credentials) if self.credentials else "\n"
        rc, out, err = self.rest.exec_in_pod(self.params["namespace"], pod, hc.curl_command(url), health.get("container"), stdin=stdin)
        if rc != 0:
            return 0, "curl in pod %s failed (exit %s): %s" % (pod, rc, (err or out or "").strip()[-300:])
        return hc.parse_curl_output(out)

    def kafka_health(self):
        health = self.params["health"]
        pod, dummy = self.exec_pod()
        if not pod:
            return dict(ok=False, reason="no ready Kafka pod to run the Kafka tools in yet")
        quorum_cmd, brokers_cmd = hc.kafka_commands(
            health["kafka_bin_dir"], health["bootstrap_server"], health.get("bootstrap_controller"), health.get("command_config")
        )
        namespace = self.params["namespace"]
        rc, quorum, err = self.rest.exec_in_pod(namespace, pod, quorum_cmd, health.get("container"))
        if rc != 0:
            return dict(ok=False, reason="%s failed in pod %s (exit %s): %s" % (
                quorum_cmd[0].rsplit("/", 1)[-1], pod, rc, " ".join((err or quorum or "").split())[-400:]))
        rc, brokers, err = self.rest.exec_in_pod(namespace, pod, brokers_cmd, health.get("container"))
        if rc != 0:
            return dict(ok=False, reason="%s failed in pod %s (exit %s): %s" % (
                brokers_cmd[0].rsplit("/", 1)[-1], pod, rc, " ".join((err or brokers or "").split())[-400:]))
        return hc.kafka_health(quorum, brokers, health["min_brokers"])

    # -- loop

    def health_enabled(self):
        return bool(self.params.get("health")) and self.params["application"]

    def stuck(self):
        """FatalWait when the pods not ready yet cannot start (StuckJudge), from the namespace's events and nodes."""
        if not self.params["stuck_timeout"]:
            return
        namespace = self.params["namespace"]
        waiting = [pod for pods in self.pods.values() for pod in pods
                   if not pod_ready(pod) and (pod.get("status") or {}).get("phase") == "Pending"]
        if not waiting:
            return
        now = self.clock()
        events = self.readable(self.rest.list, "Event", namespace)
        if any(unschedulable_message(pod) for pod in waiting):
            nodes = self.readable(self.rest.list, "Node", None)
            self.judge.nodes_seen(None if nodes is None else len(nodes), now)
            # Neither events nor nodes readable: nothing tells whether a node is coming, so only the timeout ends the wait.
            if events is not None or nodes is not None:
                problem = self.judge.unschedulable(waiting, events or [], now)
                if problem:
                    raise FatalWait(problem)
        for pod in waiting:
            missing = [(kind, name) for kind, name in missing_mounts(pod, events or [])
                       if self.rest.get(kind, namespace, name) is None]
            problem = self.judge.missing_mount(pod, missing, now)
            if problem:
                raise FatalWait(problem)

    @staticmethod
    def readable(call, *args):
        """call(*args), or None when the task's user may not read that (401/403)."""
        try:
            return call(*args)
        except ApiError as e:
            if e.status in (401, 403):
                return None
            raise

    def report(self):
        """A progress line every progress_interval seconds while the wait goes on."""
        interval = self.params["progress_interval"]
        if not self.progress or not interval:
            return
        now = self.clock()
        if now - (self.last_progress if self.last_progress is not None else self.started) < interval:
            return
        self.last_progress = now
        self.progress(progress_line(now - self.started, self.params["wait_timeout"], self.missing()))

    def probe(self):
        try:
            rolled_out, dummy = self.rollout()
            if not rolled_out:
                self.stuck()
        except Unreachable as e:
            self.health_error = to_native(e)
            self.report()
            return False, None
        if not rolled_out:
            self.report()
            return False, None
        if not self.health_enabled():
            return True, None
        healthy = self.check_health()
        if not healthy:
            self.report()
        return healthy, None

    def missing(self):
        """What is not ready yet, in words."""
        parts = []
        for status in self.statuses:
            if not status["ready"]:
                namespace = status["namespace"] or self.params["namespace"]
                parts.append("%s %s/%s: %s" % (status["kind"], namespace, status["name"], status["message"]))
        if not parts and self.health_enabled() and self.health and not self.health.get("ok"):
            parts.append("%s health: %s" % (self.params["health"]["type"], self.health.get("reason")))
        if not parts and self.health_error:
            parts.append(self.health_error)
        return "; ".join(parts) or "nothing reported yet"

    def run(self):
        self.started = self.clock()
        if self.health_enabled():
            self.resolve_credentials()
        done, dummy, elapsed = wait_until(
            self.probe, self.params["wait_timeout"], self.params["wait_sleep"], clock=self.clock, sleep=self.sleep
        )
        return done, elapsed


def main(module_class=None, progress=None):
    """The module's run. The action plugin of the same name calls it in the controller's process
    with plugin_utils/inprocess.py's stand-in for AnsibleModule as ``module_class``, and the
    controller's display as ``progress`` (a function of one line of text)."""
    settings = {"module_class": module_class} if module_class else {}
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **settings)
    params = module.params
    checks = describe_checks(params)
    result = dict(changed=False, ready=None, resources=[], health={}, elapsed=0.0, checks=checks)
    if module.check_mode:
        module.exit_json(**result)
    if params["wait_sleep"] < 1 or params["wait_timeout"] < 0:
        module.fail_json(msg="wait_sleep must be at least 1 and wait_timeout not negative", **result)
    if params["stuck_timeout"] < 0 or params["progress_interval"] < 0:
        module.fail_json(msg="stuck_timeout and progress_interval must not be negative (0 switches them off)", **result)
    start = time.monotonic()
    waiter = None
    try:
        rest, dummy = connect(module)
        waiter = ReadyWaiter(getattr(module, "_module", module), rest, clock=time.monotonic, sleep=time.sleep,
                             progress=progress)
        ready, elapsed = waiter.run()
    except FatalWait as e:
        result.update(_collect(waiter, start))
        module.fail_json(msg=to_native(e), **result)
    except ConnectError as e:
        result.update(_collect(waiter, start))
        module.fail_json(msg=to_native(e), **result)
    except ApiError as e:
        result.update(_collect(waiter, start))
        hint = " (the task's user may lack permission to read it)" if e.status == 403 else ""
        module.fail_json(msg="Kubernetes API request %s failed: %s%s" % (e.path, e.message(), hint), **result)
    result.update(_collect(waiter, start))
    result["ready"] = ready
    if not ready:
        module.fail_json(
            msg="timed out after %ss waiting in namespace %s: %s" % (params["wait_timeout"], params["namespace"], waiter.missing()),
            **result
        )
    module.exit_json(**result)


def _collect(waiter, start):
    if waiter is None:
        return dict(elapsed=round(time.monotonic() - start, 1))
    return dict(resources=waiter.statuses, health=waiter.health, elapsed=round(time.monotonic() - start, 1))


if __name__ == "__main__":
    main()
