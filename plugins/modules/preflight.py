#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
# Run as a task, the action plugin of the same name (plugins/action/preflight.py) calls main() in
# the controller's process.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: preflight
short_description: Check that the cluster has what the stack needs, before anything is written
version_added: 0.2.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - The preflight phase of C(site.yml), between validation (no cluster access) and the first write.
    It reads the cluster once and fails, with one message listing every problem, when the stack
    could only be half applied there. It writes nothing.
  - I(needs) comes from the roles, each declaring what it needs in one place,
    C(<role>_preflight) in its C(vars/main.yml); C(site.yml) passes the declarations of the
    enabled components, so this module knows no role.
  - "B(Namespace.) When I(namespace) is being deleted (Terminating, e.g. right after a teardown),
    waits up to I(namespace_timeout) seconds for it to be gone, else fails naming what holds it
    (the namespace's conditions)."
  - B(Secrets.) Every Secret a role refers to but does not create must exist in I(namespace).
    The message names the variable, the Secret, the namespace and how to create it.
  - B(Storage.) A named StorageClass must exist; an empty one means the cluster's default
    StorageClass, so one must be marked default
    (C(storageclass.kubernetes.io/is-default-class=true)). The message names the classes that exist.
  - B(NodePorts.) Every NodePort the stack's Services ask for must be free, or held by the very
    Service of this namespace that asks for it (a re-run). The message names the Service that holds
    it, its namespace and C(app.kubernetes.io/instance), the variable to change and a free value.
  - A check whose read the credentials may not do (a 403 listing StorageClasses or Services in all
    namespaces) is skipped with a warning, not failed.
options:
  namespace:
    description: The stack's namespace, C(bigdata_namespace).
    type: str
    required: true
  needs:
    description:
      - One entry per enabled component, as the roles declare them (C(<role>_preflight)).
    type: list
    elements: dict
    default: []
    suboptions:
      component:
        description: The component, for the messages.
        type: str
        required: true
      secrets:
        description: Secrets the component refers to but does not create. Entries with an empty I(name) are ignored.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: The Secret's name.
            type: str
            required: true
          variable:
            description: The variable that names it, for the message.
            type: str
            required: true
          create:
            description: How to create it (or to not need it), appended to the message.
            type: str
            default: ''
      storage:
        description: The StorageClass of volumes the component claims (one entry per variable).
        type: list
        elements: dict
        default: []
        suboptions:
          storage_class:
            description: The class; empty means the cluster's default StorageClass.
            type: str
            default: ''
          variable:
            description: The variable that sets it, for the message.
            type: str
            required: true
      node_ports:
        description: NodePorts the component's Services ask for.
        type: list
        elements: dict
        default: []
        suboptions:
          port:
            description: The NodePort.
            type: int
            required: true
          service:
            description: The Service (in I(namespace)) that asks for it.
            type: str
            required: true
          variable:
            description: The variable that sets it, for the message.
            type: str
            required: true
  namespace_timeout:
    description: Seconds to wait for a Terminating I(namespace) to be gone (C(bigdata_preflight_namespace_timeout)).
    type: int
    default: 120
  namespace_sleep:
    description: Seconds between two looks at a Terminating namespace.
    type: int
    default: 2
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
attributes:
  check_mode:
    description: Reads and checks in check mode too; it never writes.
    support: full
  diff_mode:
    description: Not applicable; nothing is written.
    support: none
  action:
    description: Runs in the controller's process, as an action plugin.
    support: full
requirements:
  - kubernetes >= 24.2.0
notes:
  - Fails with C(changed=false) and writes nothing, so a failed preflight leaves the cluster as it was.
seealso:
  - module: bigdata.stack.k8s_apply
"""

EXAMPLES = r"""
- name: Check the cluster before anything is written
  bigdata.stack.preflight:
    namespace: bigdata
    needs:
      - component: kafka
        secrets:
          - name: kafka-tls
            variable: kafka_tls_secret
            create: "Create it: kubectl -n bigdata create secret generic kafka-tls --from-file=tls.crt --from-file=tls.key --from-file=ca.crt"
        storage:
          - {variable: bigdata_storage_class, storage_class: ""}
        node_ports:
          - {port: 30092, service: kafka-broker-0-external, variable: kafka_external_base_nodeport}
  register: bigdata_preflight
"""

RETURN = r"""
namespace_exists:
  description: Whether I(namespace) exists (after waiting for a Terminating one to go).
  returned: success
  type: bool
namespace_waited:
  description: Seconds spent waiting for a Terminating I(namespace) to be gone.
  returned: success
  type: float
storage_classes:
  description: The cluster's StorageClasses, C((default)) after the default one; empty when none were needed.
  returned: success
  type: list
  elements: str
skipped:
  description: Checks skipped because the credentials may not do their read.
  returned: always
  type: list
  elements: str
"""

import copy
import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.bigdata.stack.plugins.module_utils import preflight
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError, ConnectError, connect
from ansible_collections.bigdata.stack.plugins.module_utils.waiter import wait_until
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

NAMESPACE_TIMEOUT_VARIABLE = "bigdata_preflight_namespace_timeout"


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        namespace=dict(type="str", required=True),
        needs=dict(type="list", elements="dict", default=[], options=dict(
            component=dict(type="str", required=True),
            # Names of Secrets, never their content.
            secrets=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
                name=dict(type="str", required=True),
                variable=dict(type="str", required=True),
                create=dict(type="str", default=""),
            )),
            storage=dict(type="list", elements="dict", default=[], options=dict(
                storage_class=dict(type="str", default=""),
                variable=dict(type="str", required=True),
            )),
            node_ports=dict(type="list", elements="dict", default=[], options=dict(
                port=dict(type="int", required=True),
                service=dict(type="str", required=True),
                variable=dict(type="str", required=True),
            )),
        )),
        namespace_timeout=dict(type="int", default=120),
        namespace_sleep=dict(type="int", default=2),
    )
    return spec


def wait_namespace(cluster, name, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """(namespace object or None, seconds waited); raises TimeoutError while it is still Terminating."""
    def gone_or_live():
        obj = cluster.get("Namespace", None, name)
        return not preflight.is_terminating(obj), obj

    done, obj, elapsed = wait_until(gone_or_live, timeout, interval, clock=clock, sleep=sleep)
    if not done:
        raise TimeoutError(preflight.terminating_message(obj, timeout, NAMESPACE_TIMEOUT_VARIABLE))
    return obj, round(elapsed, 1)


def _cluster_wide(cluster, kind, api_version, skipped, what):
    """Every object of kind in all namespaces, or None (noted in skipped) when the credentials may not list them."""
    try:
        return cluster.list(kind, None, api_version=api_version)
    except ApiError as e:
        if e.status in (401, 403):
            skipped.append("%s: %s" % (what, e.message()))
            return None
        raise


def check(cluster, params, clock=time.monotonic, sleep=time.sleep):
    """(result dict, [problems]): one read of each kind the needs concern, then the comparisons."""
    namespace = params["namespace"]
    needs = preflight.merged(params["needs"])
    obj, waited = wait_namespace(cluster, namespace, params["namespace_timeout"], params["namespace_sleep"],
                                 clock=clock, sleep=sleep)
    result = dict(changed=False, namespace_exists=obj is not None, namespace_waited=waited, storage_classes=[],
                  skipped=[])
    problems = []
    if any(s.get("name") for s in needs["secrets"]):
        existing = {preflight._name(s) for s in cluster.list("Secret", namespace)} if obj is not None else set()
        problems += preflight.secret_problems(needs["secrets"], existing, namespace, namespace_exists=obj is not None)
    if needs["storage"]:
        classes = _cluster_wide(cluster, "StorageClass", "storage.k8s.io/v1", result["skipped"],
                                "the StorageClass check (list storageclasses)")
        if classes is not None:
            result["storage_classes"] = preflight.describe_classes(classes).split(", ") if classes else []
            problems += preflight.storage_problems(needs["storage"], classes)
    if needs["node_ports"]:
        services = _cluster_wide(cluster, "Service", "v1", result["skipped"],
                                 "the NodePort check (list services in all namespaces)")
        if services is not None:
            problems += preflight.node_port_problems(needs["node_ports"], services, namespace)
    return result, problems


def main(module_class=None):
    """The module's run; the action plugin passes its stand-in for AnsibleModule as ``module_class``."""
    settings = {"module_class": module_class} if module_class else {}
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **settings)
    try:
        cluster, dummy = connect(module)
        result, problems = check(cluster, module.params)
    except ConnectError as e:
        module.fail_json(msg=to_native(e))
    except ApiError as e:
        module.fail_json(msg="preflight: Kubernetes API request %s failed: %s. Nothing was written to the cluster."
                         % (e.path, e.message()))
    except TimeoutError as e:
        module.fail_json(msg="preflight: %s" % to_native(e))
    for skipped in result["skipped"]:
        module.warn("preflight: %s skipped, the credentials may not do its read: %s" % tuple(skipped.split(": ", 1)))
    if problems:
        module.fail_json(msg=preflight.report(problems), problems=problems, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
