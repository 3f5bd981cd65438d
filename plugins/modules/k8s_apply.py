#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/k8s_apply.py); this file
# holds its documentation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_apply
short_description: Apply a role's manifest templates with server-side apply, or render them to files
version_added: 0.2.0
author:
  - bigdata.stack maintainers (!UNKNOWN)
description:
  - The one path by which the roles of this collection write to a cluster.
  - Renders every template of I(templates) and I(secret_templates) on the controller, as the
    M(ansible.builtin.template) lookup does (the role's C(templates) directory, the task's
    variables), and applies the objects with M(kubernetes.core.k8s) server-side apply
    (I(field_manager), conflicts forced, because this collection owns the fields it sets), in one
    call (cluster-scoped objects first, then the objects of I(secret_templates), then the rest).
  - kubernetes.core.k8s runs in the controller's process, not as a module process of its own (the
    same code, argument spec and client, without a Python interpreter and C(import kubernetes)
    per task).
  - The values of the objects of I(secret_templates) never appear in this task's output, its
    errors or its diff; the other objects stay fully visible.
  - With C(--diff), shows the field-level difference of every object that changes (or would change,
    in check mode, where the API server dry-runs the apply), as C(kubectl diff) does. Server
    bookkeeping (C(managedFields), C(resourceVersion), C(generation), C(status)) is left out; Secret
    values are masked, with C((before))/C((after)) where a value changes.
  - With I(render_dir), writes the same objects to files, one per template, and touches no
    cluster. C(playbooks/render.yml) sets it for every role through C(module_defaults).
attributes:
  check_mode:
    description: >-
      The API server dry-runs every apply; nothing is written. Objects in a namespace that does not
      exist yet cannot be dry-run and are reported as created.
    support: full
  diff_mode:
    description: The field-level difference of every object that changes, Secret values masked.
    support: full
  action:
    description: Runs on the controller as an action plugin (it renders the templates there).
    support: full
options:
  templates:
    description:
      - Templates of manifests (one or more YAML documents each; C(*List) kinds are flattened).
        Relative paths are searched like M(ansible.builtin.template)'s source.
    type: list
    elements: str
    default: []
  secret_templates:
    description:
      - Templates whose objects carry secret values (Secrets). Applied before the objects of
        I(templates) (after cluster-scoped ones), and masked in the output, errors and diff.
    type: list
    elements: str
    default: []
  namespace:
    description:
      - Namespace of every namespaced object that does not name one.
    type: str
    required: true
  field_manager:
    description:
      - Server-side apply field manager.
    type: str
    default: bigdata-stack
  render_dir:
    description:
      - Write C(<render_dir>/<component>/<template name without .j2>) instead of applying.
    type: path
  component:
    description:
      - Sub-directory of I(render_dir). Defaults to the short name of the role the task is in.
    type: str
extends_documentation_fragment:
  - bigdata.stack.k8s_auth
notes:
  - Objects are applied with O(kubernetes.core.k8s#module:apply=true) and
    O(kubernetes.core.k8s#module:server_side_apply); deleting is the job of the roles' C(absent)
    entry points.
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Apply the Kafka manifests
  bigdata.stack.k8s_apply:
    namespace: "{{ bigdata_namespace }}"
    field_manager: "{{ bigdata_field_manager }}"
    templates:
      - config.yaml.j2
      - statefulsets.yaml.j2

- name: Apply the generated credentials (masked), then the workload
  bigdata.stack.k8s_apply:
    namespace: bigdata
    secret_templates: [secrets.yaml.j2]
    templates: [deployment.yaml.j2]

- name: Write the manifests to files instead
  bigdata.stack.k8s_apply:
    namespace: bigdata
    templates: [config.yaml.j2]
    render_dir: /tmp/rendered
"""

RETURN = r"""
objects:
  description: Every object applied, as C(Kind/namespace/name), and whether it changed.
  returned: when applied
  type: list
  elements: dict
  sample: [{"ref": "StatefulSet/bigdata/kafka", "changed": true}]
rendered:
  description: The files written.
  returned: with render_dir
  type: list
  elements: str
  sample: [/tmp/rendered/kafka/config.yaml]
"""
