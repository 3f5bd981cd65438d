#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/k8s_info.py); this file
# holds its documentation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_info
short_description: Read Kubernetes objects like kubernetes.core.k8s_info, in the controller's process
version_added: 0.2.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - M(kubernetes.core.k8s_info) (its argument spec, client and code), run by an action plugin in the
    controller's process instead of a module process of its own. The roles of this collection read
    the cluster with it; a read costs a few API requests, not a Python interpreter and
    C(import kubernetes) per task.
  - Same options and return values as M(kubernetes.core.k8s_info); in the C(bigdata.stack.k8s)
    action group, so C(module_defaults) for C(group/bigdata.stack.k8s) give it its connection.
  - The task's C(environment) keyword does not reach it (no process is started); set connection
    options as arguments, module defaults or in the controller's environment (C(K8S_AUTH_*)).
options:
  kind:
    description:
      - Kind of the objects to read.
    type: str
    required: true
  label_selectors:
    description: Label selectors to filter the objects with.
    type: list
    elements: str
    default: []
  field_selectors:
    description: Field selectors to filter the objects with.
    type: list
    elements: str
    default: []
  hidden_fields:
    description:
      - Fields left out of the result, for example C(metadata.managedFields).
    type: list
    elements: str
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
  - kubernetes.core.k8s_name_options
  - kubernetes.core.k8s_wait_options
attributes:
  check_mode:
    description: Reads in check mode too.
    support: full
  diff_mode:
    description: Not applicable; nothing is written.
    support: none
  action:
    description: Runs kubernetes.core.k8s_info's code on the controller, as an action plugin.
    support: full
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Read the Secrets an earlier run generated
  bigdata.stack.k8s_info:
    kind: Secret
    namespace: bigdata
    label_selectors:
      - app.kubernetes.io/part-of=bigdata-stack
  register: found
"""

RETURN = r"""
api_found:
  description: Whether the API server serves the kind and API version.
  returned: always
  type: bool
resources:
  description: The objects found, as dictionaries.
  returned: success
  type: list
  elements: dict
"""
