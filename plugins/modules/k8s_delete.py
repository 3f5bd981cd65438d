#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
# Run as a task, the action plugin of the same name (plugins/action/k8s_delete.py) calls main() in
# the controller's process.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_delete
short_description: Delete every object of several kinds that matches label selectors, then wait once until all are gone
version_added: 0.2.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - The teardown of this collection. Lists every kind of I(kinds) in I(namespace) by
    I(label_selectors), deletes every object found (with I(propagation_policy)), and then waits
    B(once) until every one of them is gone, instead of one kind after another with a wait each.
  - With C(Foreground) propagation (the default) a workload is gone only after its pods are, so
    when the task returns, nothing of what it found is left, pods included, and a second run
    finds nothing and reports no change.
  - A kind the API server does not serve (for example C(Route) off OpenShift) is skipped.
  - Objects already being deleted are waited for, not deleted again.
options:
  namespace:
    description: Namespace of the objects.
    type: str
    required: true
  kinds:
    description: The kinds to delete, in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      api_version:
        description: API version of the kind, for example C(apps/v1).
        type: str
        default: v1
      kind:
        description: The kind, for example C(StatefulSet).
        type: str
        required: true
      label_selectors:
        description:
          - Further label selectors for this kind only, added to I(label_selectors).
        type: list
        elements: str
        default: []
      field_selectors:
        description:
          - Field selectors for this kind, for example C(metadata.name=elasticsearch-bootstrap) to delete
            one object by name.
        type: list
        elements: str
        default: []
  label_selectors:
    description:
      - Label selectors every object must match, for example C(app.kubernetes.io/instance=bigdata)
        or C(bigdata.stack/lifecycle!=data). Empty selects every object of the kinds.
    type: list
    elements: str
    default: []
  propagation_policy:
    description: How the objects' dependents (a StatefulSet's pods) are deleted.
    type: str
    default: Foreground
    choices: [Foreground, Background, Orphan]
  wait:
    description: Wait until every object found is gone.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with what is left.
    type: int
    default: 300
  wait_sleep:
    description: Seconds between two looks.
    type: int
    default: 1
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
attributes:
  check_mode:
    description: Lists what would be deleted; deletes nothing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
  action:
    description: Runs in the controller's process, as an action plugin.
    support: full
requirements:
  - kubernetes >= 24.2.0
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Remove one ConfigMap of the stack by name, and the monitoring Services of another mode
  bigdata.stack.k8s_delete:
    namespace: bigdata
    kinds:
      - {kind: ConfigMap, field_selectors: [metadata.name=elasticsearch-bootstrap]}
      - {kind: Service, label_selectors: ["app.kubernetes.io/component in (scrape,rules)"]}
    label_selectors:
      - app.kubernetes.io/part-of=bigdata-stack

- name: Remove the stack's objects, keeping what lives as long as the data
  bigdata.stack.k8s_delete:
    namespace: bigdata
    kinds:
      - {api_version: batch/v1, kind: Job}
      - {api_version: apps/v1, kind: StatefulSet}
      - {kind: Service}
      - {kind: ConfigMap}
    label_selectors:
      - app.kubernetes.io/part-of=bigdata-stack
      - bigdata.stack/lifecycle!=data
"""

RETURN = r"""
deleted:
  description: Every object found, as C(Kind/namespace/name) (deleted, or to be deleted in check mode).
  returned: always
  type: list
  elements: str
  sample: ["StatefulSet/bigdata/kafka-broker", "Service/bigdata/kafka"]
skipped_kinds:
  description: Kinds the API server does not serve.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds from the first request to the end of the wait.
  returned: always
  type: float
"""

import copy
import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.bigdata.stack.plugins.module_utils.k8s_client import ApiError, ConnectError, connect
from ansible_collections.bigdata.stack.plugins.module_utils.waiter import wait_until
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        namespace=dict(type="str", required=True),
        kinds=dict(type="list", elements="dict", required=True, options=dict(
            api_version=dict(type="str", default="v1"),
            kind=dict(type="str", required=True),
            label_selectors=dict(type="list", elements="str", default=[]),
            field_selectors=dict(type="list", elements="str", default=[]),
        )),
        label_selectors=dict(type="list", elements="str", default=[]),
        propagation_policy=dict(type="str", default="Foreground", choices=["Foreground", "Background", "Orphan"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        wait_sleep=dict(type="int", default=1),
    )
    return spec


def _ref(kind, obj):
    meta = obj.get("metadata") or {}
    return "%s/%s/%s" % (kind["kind"], meta.get("namespace"), meta.get("name"))


def _list(cluster, params, kind):
    """The objects of one of the kinds that match its selectors and the ones of every kind."""
    labels = list(params["label_selectors"]) + list(kind.get("label_selectors") or [])
    return cluster.list(kind["kind"], params["namespace"], ",".join(labels), api_version=kind["api_version"],
                        field_selector=",".join(kind.get("field_selectors") or []))


def find(cluster, params):
    """([(kind, object)], [kinds not served]) of everything that matches, kind by kind."""
    found, skipped = [], []
    for kind in params["kinds"]:
        try:
            objects = _list(cluster, params, kind)
        except ApiError as e:
            if e.status != 404:
                raise
            skipped.append("%s/%s" % (kind["api_version"], kind["kind"]))
            continue
        found += [(kind, obj) for obj in objects]
    return found, skipped


def remaining(cluster, params, found):
    """The refs of `found` still there: one list per kind that had objects."""
    uids = {obj["metadata"].get("uid") for _kind, obj in found}
    left = []
    for kind in [k for k in params["kinds"] if any(f[0] is k for f in found)]:
        left += [_ref(kind, obj) for obj in _list(cluster, params, kind) if obj["metadata"].get("uid") in uids]
    return left


def delete_all(cluster, params, check_mode, clock=time.monotonic, sleep=time.sleep):
    """Find, delete, then wait once. A result dict; raises TimeoutError with what is left."""
    start = clock()
    found, skipped = find(cluster, params)
    result = dict(changed=bool(found), deleted=[_ref(kind, obj) for kind, obj in found], skipped_kinds=skipped)
    if check_mode or not found:
        return dict(result, elapsed=round(clock() - start, 1))
    for kind, obj in found:
        if not obj["metadata"].get("deletionTimestamp"):
            cluster.delete(kind["kind"], params["namespace"], obj["metadata"]["name"],
                           api_version=kind["api_version"], propagation_policy=params["propagation_policy"])
    if params["wait"]:
        def gone():
            left = remaining(cluster, params, found)
            return not left, left

        done, left, dummy = wait_until(gone, params["wait_timeout"], params["wait_sleep"], clock=clock, sleep=sleep)
        if not done:
            raise TimeoutError("after %ss still there: %s" % (params["wait_timeout"], ", ".join(left)))
    return dict(result, elapsed=round(clock() - start, 1))


def main(module_class=None):
    """The module's run; the action plugin passes its stand-in for AnsibleModule as ``module_class``."""
    settings = {"module_class": module_class} if module_class else {}
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **settings)
    try:
        cluster, dummy = connect(module)
        result = delete_all(cluster, module.params, module.check_mode)
    except ConnectError as e:
        module.fail_json(msg=to_native(e))
    except ApiError as e:
        module.fail_json(msg="Kubernetes API request %s failed: %s" % (e.path, e.message()))
    except TimeoutError as e:
        module.fail_json(msg="timed out deleting in namespace %s: %s" % (module.params["namespace"], to_native(e)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
