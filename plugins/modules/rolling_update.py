#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rolling_update
short_description: Restart the out-of-date pods of OnDelete StatefulSets one at a time, gated on application health
version_added: 0.3.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - For StatefulSets with C(updateStrategy. OnDelete), a new pod template (image tag, configuration checksum)
    restarts nothing by itself. This module finds the pods whose C(controller-revision-hash) label differs
    from the StatefulSet's C(status.updateRevision) and restarts them, one at a time, in the order the
    I(gate) gives. Before each pod the gate must say it is safe to go; after it, the new pod must be Ready and
    the gate must say it has settled, before the next one goes.
  - Nothing out of date, nothing restarted, C(changed=false). A roll interrupted half-way leaves pods on the
    old revision, which the next run restarts.
  - Before the first pod, the gate's precheck runs on all of them. If it gives reasons (a Kafka partition
    already under its min ISR, the HDFS NameNode in safe mode), the module fails naming them and restarts
    nothing, unless I(force) is set. A Kafka image older than the C(metadata.version) in use is refused even
    then, as the restarted pods could not run.
  - Gate C(none) waits for readiness only. Gate C(kafka) runs the Kafka tools in a Ready broker pod
    (C(kafka-topics.sh --under-min-isr-partitions), C(--at-min-isr-partitions), C(--under-replicated-partitions),
    C(kafka-metadata-quorum.sh describe --status/--replication), C(kafka-broker-api-versions.sh),
    C(kafka-features.sh describe)). Gate C(hdfs) reads the NameNode's JMX with curl in the namenode pod.
    Gate C(elasticsearch) follows Elastic's rolling restart (module_utils/es_roll.py, C(ElasticsearchGate)) -
    it refuses a red cluster, restricts shard allocation to primaries and flushes before each pod, waits for the
    node to rejoin and for the health it had before, and restarts nodes that are not master-eligible before the
    master-eligible ones, the elected master last. Its requests run as curl in a Ready Elasticsearch pod of
    I(statefulsets) to the client Service, with the credentials on stdin.
  - StatefulSets with another update strategy are rolled by the StatefulSet controller and left alone.
options:
  namespace:
    description: Namespace of the StatefulSets.
    type: str
    required: true
  statefulsets:
    description: Names of the StatefulSets of one component. The gate orders their out-of-date pods together.
    type: list
    elements: str
    required: true
  gate:
    description: The component whose health decides each step.
    type: str
    choices: [none, kafka, hdfs, elasticsearch]
    default: none
  kafka:
    description: Settings of the C(kafka) gate.
    type: dict
    default: {}
    suboptions:
      bootstrap_server:
        description: Bootstrap server of the Kafka tools, as seen from inside a broker pod.
        type: str
        default: localhost:9092
      command_config:
        description: Client properties file inside the pod (C(--command-config)), e.g. for TLS.
        type: str
      kafka_bin_dir:
        description: Directory of the Kafka scripts in the image.
        type: str
        default: /opt/kafka/bin
      container:
        description: Container to run the tools in; the pod's first by default.
        type: str
      broker_node_id_offset:
        description: Added to a broker pod's ordinal to give its C(node.id) (dedicated mode); controllers use their ordinal.
        type: int
        default: 0
      image_tag:
        description:
          - The Kafka release being rolled out. When it is older than the C(metadata.version) the cluster already
            uses (C(kafka-features.sh describe)), the roll is refused before any pod restarts, even with I(force),
            as the restarted brokers could not read the cluster's metadata.
        type: str
      image_tag_variable:
        description: The name the refusal gives I(image_tag), for the playbook's user (the kafka role's C(kafka_image_tag)).
        type: str
        default: image_tag
  hdfs:
    description: Settings of the C(hdfs) gate.
    type: dict
    default: {}
    suboptions:
      namenode_pod:
        description: The namenode pod whose JMX is read (with curl inside it).
        type: str
        default: hdfs-namenode-0
      port:
        description: The NameNode's HTTP port.
        type: int
        default: 9870
      scheme:
        description: Scheme of the NameNode's HTTP port.
        type: str
        choices: [http, https]
        default: http
      container:
        description: Container of the namenode pod to run curl in; the pod's first by default.
        type: str
  elasticsearch:
    description: Settings of the C(elasticsearch) gate.
    type: dict
    default: {}
    suboptions:
      service:
        description: The Elasticsearch client Service the requests go to (from inside a pod, in I(namespace)).
        type: str
        default: elasticsearch
      port:
        description: The HTTP port of I(elasticsearch.service).
        type: int
        default: 9200
      scheme:
        description: Scheme of the HTTP port (the URL is I(scheme)://I(service):I(port)).
        type: str
        choices: [http, https]
        default: http
      credentials_secret:
        description:
          - Secret in I(namespace) with the keys C(username) and C(password) of a user with the C(monitor) and
            C(manage) cluster privileges and the C(maintenance) index privilege (the allocation setting and the
            flush). Read by the module as C(wait_ready) reads I(health.credentials_secret); the password is
            masked in the output and reaches curl on stdin only. Without it the requests carry no credentials.
        type: str
      container:
        description: Container of the Elasticsearch pods to run curl in.
        type: str
        default: elasticsearch
      flush:
        description: Flush (C(POST _flush)) before each pod restarts, best effort; it only speeds up recovery.
        type: bool
        default: true
  force:
    description:
      - Roll although the precheck found reasons not to, and without waiting for each next pod to be safe to go.
        Readiness of each pod is still waited for. A Kafka downgrade across the C(metadata.version) in use stays refused.
    type: bool
    default: false
  force_variable:
    description: The inventory variable that sets I(force), named in the refusal message.
    type: str
    default: force
  wait_timeout:
    description: Seconds to wait for each step (safe to go, Ready, settled).
    type: int
    default: 600
  wait_sleep:
    description: Seconds between two checks.
    type: int
    default: 5
notes:
  - Permissions needed, in I(namespace) - get on the StatefulSets, list and delete on pods, create on pods/exec.
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.ACTIONGROUPS
attributes:
  check_mode:
    support: full
    details: Lists the pods that would be restarted; restarts nothing and runs no gate.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action_group:
    membership:
      - bigdata.stack.k8s
"""

EXAMPLES = r"""
- name: Roll the Kafka controllers and brokers, gated on ISR and quorum state
  bigdata.stack.rolling_update:
    namespace: bigdata
    statefulsets: [kafka-controller, kafka-broker]
    gate: kafka
    kafka:
      bootstrap_server: kafka.bigdata.svc:9092
      broker_node_id_offset: 100
      image_tag: "{{ kafka_image_tag }}"
      image_tag_variable: kafka_image_tag
    force: "{{ kafka_roll_force }}"
    force_variable: kafka_roll_force

- name: Roll the HDFS datanodes
  bigdata.stack.rolling_update:
    namespace: bigdata
    statefulsets: [hdfs-datanode]
    gate: hdfs

- name: Roll the Elasticsearch node pools, data nodes first, the elected master last
  bigdata.stack.rolling_update:
    namespace: bigdata
    statefulsets: [elasticsearch-data, elasticsearch-master]
    gate: elasticsearch
    elasticsearch:
      scheme: https
      credentials_secret: elasticsearch-credentials
    force: "{{ elasticsearch_roll_force }}"
    force_variable: elasticsearch_roll_force
"""

RETURN = r"""
rolled:
  description: The pods restarted, in order, with the seconds each wait took.
  returned: always
  type: list
  elements: dict
  contains:
    pod:
      description: Pod name.
      type: str
      returned: always
      sample: kafka-broker-2
    order:
      description: Position in the roll, from 1.
      type: int
      returned: always
      sample: 1
    waited_safe:
      description: Seconds waited for the gate to let this pod go.
      type: float
      returned: always
      sample: 0.0
    waited_ready:
      description: Seconds from the delete until the new pod was Ready.
      type: float
      returned: always
      sample: 41.5
    waited_settled:
      description: Seconds from Ready until the gate said it settled.
      type: float
      returned: always
      sample: 6.1
    seconds:
      description: The three waits together.
      type: float
      returned: always
      sample: 47.6
pending:
  description: Out-of-date pods found (in check mode, those that would be restarted; on failure, those left).
  returned: always
  type: list
  elements: str
  sample: [kafka-broker-2, kafka-broker-1, kafka-broker-0]
reasons:
  description: Why the precheck refused the roll (or, with I(force), what was overridden).
  returned: always
  type: list
  elements: str
  sample: ["1 partition(s) already below min.insync.replicas: events-0 (replicas 100,101,102, in sync 100)"]
"""

import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.bigdata.stack.plugins.module_utils import es_roll
from ansible_collections.bigdata.stack.plugins.module_utils import health as hc
from ansible_collections.bigdata.stack.plugins.module_utils import rolling
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError, ConnectError, connect
from ansible_collections.bigdata.stack.plugins.module_utils.waiter import (
    RestartTracker,
    label_selector,
    owned_by,
    pod_fatal,
    pod_ready,
    wait_until,
)
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

GATES = ["none", "kafka", "hdfs", "elasticsearch"]


def argument_spec():
    spec = dict(
        namespace=dict(type="str", required=True),
        statefulsets=dict(type="list", elements="str", required=True),
        gate=dict(type="str", default="none", choices=GATES),
        kafka=dict(type="dict", default={}, options=dict(
            bootstrap_server=dict(type="str", default="localhost:9092"),
            command_config=dict(type="str"),
            kafka_bin_dir=dict(type="str", default="/opt/kafka/bin"),
            container=dict(type="str"),
            broker_node_id_offset=dict(type="int", default=0),
            image_tag=dict(type="str"),
            image_tag_variable=dict(type="str", default="image_tag"),
        )),
        hdfs=dict(type="dict", default={}, options=dict(
            namenode_pod=dict(type="str", default="hdfs-namenode-0"),
            port=dict(type="int", default=9870),
            scheme=dict(type="str", default="http", choices=["http", "https"]),
            container=dict(type="str"),
        )),
        elasticsearch=dict(type="dict", default={}, options=dict(
            service=dict(type="str", default="elasticsearch"),
            port=dict(type="int", default=9200),
            scheme=dict(type="str", default="http", choices=["http", "https"]),
            credentials_secret=dict(type="str", no_log=False),
            container=dict(type="str", default="elasticsearch"),
            flush=dict(type="bool", default=True),
        )),
        force=dict(type="bool", default=False),
        force_variable=dict(type="str", default="force"),
        wait_timeout=dict(type="int", default=600),
        wait_sleep=dict(type="int", default=5),
    )
    spec.update(AUTH_ARG_SPEC)
    return spec


class ClusterIO(object):
    """The roll's calls to the cluster, for one namespace."""

    def __init__(self, rest, namespace, statefulsets, sleep_seconds, clock=time.monotonic, sleep=time.sleep):
        self.rest = rest
        self.namespace = namespace
        self.statefulsets = statefulsets
        self.sleep_seconds = sleep_seconds
        self.clock = clock
        self.sleep = sleep
        self.tracker = RestartTracker()

    def statefulset(self, name):
        sts = self.rest.get("StatefulSet", self.namespace, name, api_version="apps/v1")
        if sts is None:
            raise rolling.RollRefused(["StatefulSet %s/%s does not exist" % (self.namespace, name)])
        return sts

    def pods_of(self, sts):
        selector = label_selector((sts.get("spec") or {}).get("selector"))
        uid = (sts.get("metadata") or {}).get("uid")
        return [p for p in self.rest.list_pods(self.namespace, selector) if owned_by(p, uid)] if selector else []

    def all_pods(self):
        pods = []
        for name in self.statefulsets:
            sts = self.rest.get("StatefulSet", self.namespace, name, api_version="apps/v1")
            if sts is not None:
                pods.extend(self.pods_of(sts))
        return pods

    def stale(self, timeout):
        """The out-of-date pods of the OnDelete StatefulSets, once each controller observed its generation."""
        found = []
        for name in self.statefulsets:
            def probe(name=name):
                sts = self.statefulset(name)
                strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type")
                if strategy != "OnDelete":
                    return True, []
                stale = rolling.stale_pods(sts, self.pods_of(sts))
                return stale is not None, stale or []
            done, stale, dummy = wait_until(probe, timeout, self.sleep_seconds, clock=self.clock, sleep=self.sleep)
            if not done:
                raise rolling.RollFailed("the StatefulSet controller has not observed %s/%s's latest generation after %ss"
                                         % (self.namespace, name, timeout), [])
            found.extend(stale)
        return found

    def delete_pod(self, pod):
        # That pod and no other: its replacement, once created, has the same name.
        self.rest.delete("Pod", self.namespace, rolling.pod_name(pod), uid=(pod.get("metadata") or {}).get("uid"))

    def wait_ready(self, pod, timeout):
        """Seconds until the pod of that name is a new one (another uid) and Ready; None on timeout."""
        name = rolling.pod_name(pod)
        old_uid = (pod.get("metadata") or {}).get("uid")

        def probe():
            current = self.rest.get("Pod", self.namespace, name)
            if current is None or (current.get("metadata") or {}).get("uid") == old_uid:
                return False, None
            problem = pod_fatal(current, self.tracker)
            if problem:
                raise rolling.RollFailed(problem, [])
            return pod_ready(current), None
        done, dummy, elapsed = wait_until(probe, timeout, self.sleep_seconds, clock=self.clock, sleep=self.sleep)
        return elapsed if done else None

    def exec_in_pod(self, pod, container, argv):
        return self.rest.exec_in_pod(self.namespace, pod, argv, container, timeout=120)

    def namenode_get(self, options):
        """http_get(path, query) of the HdfsGate: curl in the namenode pod (as roles/hdfs/tasks/wait.yml checks)."""
        def http_get(path, query):
            pod = self.rest.get("Pod", self.namespace, options["namenode_pod"])
            ip = ((pod or {}).get("status") or {}).get("podIP")
            if not ip:
                return 0, "namenode pod %s has no IP" % options["namenode_pod"]
            url = hc.pod_url(options["scheme"], ip, options["port"], path, query)
            rc, out, err = self.rest.exec_in_pod(self.namespace, options["namenode_pod"], hc.curl_command(url),
                                                 options.get("container"), stdin="\n")
            if rc != 0:
                return 0, "curl in pod %s failed (exit %s): %s" % (options["namenode_pod"], rc, (err or out or "").strip()[-300:])
            return hc.parse_curl_output(out)
        return http_get

    def elasticsearch_http(self, options, credentials):
        """http(method, path, body) of the ElasticsearchGate: curl in a Ready pod of the StatefulSets, to the Service."""
        base_url = "%s://%s:%d" % (options["scheme"], options["service"], options["port"])
        return es_roll.exec_http(self.rest, self.namespace, self.all_pods, base_url, credentials=credentials,
                                 container=options["container"])


def elasticsearch_credentials(module, rest):
    """(username, password) of elasticsearch.credentials_secret, the password masked; None without it."""
    name = module.params["elasticsearch"].get("credentials_secret")
    if module.params["gate"] != "elasticsearch" or not name:
        return None
    username, password = hc.secret_credentials(rest, module.params["namespace"], name)
    # AnsibleK8SModule wraps the AnsibleModule (or inprocess.py's stand-in) whose output is masked.
    getattr(module, "_module", module).no_log_values.add(password)
    return username, password


def make_gate(params, io, credentials=None):
    """The gate object the module's options name, on the cluster calls of ``io``."""
    gate = params["gate"]
    if gate == "kafka":
        kafka = params["kafka"]
        return rolling.KafkaGate(io.exec_in_pod, io.all_pods, bootstrap_server=kafka["bootstrap_server"],
                                 command_config=kafka.get("command_config"), bin_dir=kafka["kafka_bin_dir"],
                                 container=kafka.get("container"), broker_node_id_offset=kafka["broker_node_id_offset"],
                                 image_tag=kafka.get("image_tag"), image_tag_variable=kafka["image_tag_variable"])
    if gate == "hdfs":
        return rolling.HdfsGate(io.namenode_get(params["hdfs"]))
    if gate == "elasticsearch":
        options = params["elasticsearch"]
        return es_roll.ElasticsearchGate(io.elasticsearch_http(options, credentials), force=params["force"],
                                         flush=options["flush"], force_variable=params["force_variable"])
    return rolling.Gate()


def main(module_class=None, progress=None):
    """The module's run; the action plugin calls it in the controller's process (see wait_ready)."""
    settings = {"module_class": module_class} if module_class else {}
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **settings)
    params = module.params
    result = dict(changed=False, rolled=[], pending=[], reasons=[])
    roller = None
    if params["wait_sleep"] < 1 or params["wait_timeout"] < 1:
        module.fail_json(msg="wait_sleep and wait_timeout must be at least 1", **result)
    try:
        rest, dummy = connect(module)
        io = ClusterIO(rest, params["namespace"], params["statefulsets"], params["wait_sleep"])
        stale = io.stale(params["wait_timeout"])
        result["pending"] = [rolling.pod_name(p) for p in stale]
        if not stale:
            module.exit_json(**result)
        if module.check_mode:
            result["changed"] = True
            module.exit_json(**result)
        try:
            credentials = elasticsearch_credentials(module, rest)
        except ValueError as e:
            module.fail_json(msg="gate elasticsearch: %s. Nothing was restarted. Create it or set "
                             "elasticsearch.credentials_secret to the Secret that exists" % to_native(e), **result)
        gate = make_gate(params, io, credentials)
        roller = rolling.Roller(gate, io.delete_pod, io.wait_ready, timeout=params["wait_timeout"],
                                interval=params["wait_sleep"], force=params["force"],
                                force_variable=params["force_variable"], progress=progress)
        try:
            steps = roller.run(stale)
        finally:
            for warning in roller.warnings + list(getattr(gate, "notes", [])):
                module.warn(warning)
        result.update(changed=True, rolled=[s.as_dict() for s in steps], pending=[], reasons=[])
    except rolling.RollRefused as e:
        result["reasons"] = e.reasons
        way_out = (", or set %s=true to roll anyway" % params["force_variable"]) if e.forceable else (
            " (%s does not override this)" % params["force_variable"])
        module.fail_json(msg="not rolling %s in %s: %s. Nothing was restarted. Fix that and run again%s" % (
            ", ".join(params["statefulsets"]), params["namespace"], to_native(e), way_out), **result)
    except (rolling.RollFailed, es_roll.GateError) as e:
        done = [s.as_dict() for s in getattr(e, "steps", [])]
        deleted = roller.deleted if roller else []
        left = [p for p in result["pending"] if p not in deleted]
        result.update(changed=bool(deleted), rolled=done, pending=left)
        module.fail_json(msg="rolling %s in %s stopped: %s. Pods still on the old revision are restarted by the next run"
                         % (", ".join(params["statefulsets"]), params["namespace"], to_native(e)), **result)
    except ConnectError as e:
        module.fail_json(msg=to_native(e), **result)
    except ApiError as e:
        module.fail_json(msg="Kubernetes API request %s failed: %s" % (e.path, e.message()), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
