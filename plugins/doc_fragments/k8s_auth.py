# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How the bigdata.stack modules connect to the cluster.

    The options are kubernetes.core's (module_utils.args_common.AUTH_ARG_SPEC) and kubernetes.core
    resolves them, so a task connects exactly as a kubernetes.core.k8s task with the same settings.
    """

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Kubernetes config file to connect with, or the config itself as a dictionary.
      - Several files are joined with C(:) (C(;) on Windows), as in C(KUBECONFIG).
      - When no connection option is given, the in-cluster service account is tried, then C(~/.kube/config).
      - Also read from C(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - Context of I(kubeconfig) to use instead of its current one. Also read from C(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the API server, e.g. C(https://10.0.0.1:6443). Also read from C(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token to authenticate with. Also read from C(K8S_AUTH_API_KEY).
    type: str
  username:
    description:
      - User for basic authentication. Also read from C(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password of I(username). Also read from C(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's certificate. Also read from C(K8S_AUTH_VALIDATE_CERTS) or C(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA certificate file that signed the API server's certificate. Also read from C(K8S_AUTH_CA_CERT) or C(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate file to authenticate with. Also read from C(K8S_AUTH_CLIENT_CERT) or C(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Key file of I(client_cert). Also read from C(K8S_AUTH_CLIENT_KEY) or C(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - HTTP proxy URL to reach the API server through. Also read from C(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Hosts to reach without I(proxy), comma separated, e.g. C(localhost,.local,10.0.0.0/8).
        Also read from C(K8S_AUTH_NO_PROXY).
    type: str
  proxy_headers:
    description:
      - Headers sent to I(proxy).
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(user:password) for the proxy. Also read from C(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH).
        type: str
      basic_auth:
        description:
          - C(user:password) sent as basic authorization. Also read from C(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH).
        type: str
      user_agent:
        description:
          - User agent string. Also read from C(K8S_AUTH_PROXY_HEADERS_USER_AGENT).
        type: str
  persist_config:
    description:
      - Write refreshed credentials (for example renewed OIDC tokens) back to I(kubeconfig).
        Also read from C(K8S_AUTH_PERSIST_CONFIG).
    type: bool
  impersonate_user:
    description:
      - User to act as (C(Impersonate-User)). Also read from C(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to act as (C(Impersonate-Group)). Also read from C(K8S_AUTH_IMPERSONATE_GROUPS), comma separated.
    type: list
    elements: str
notes:
  - Connection settings are best given once, in C(module_defaults) for C(group/bigdata.stack.k8s).
  - A task that cannot reach the API server fails with C(cannot reach the Kubernetes API server at <host>),
    one without any usable configuration names the options and variables to set.
requirements:
  - python kubernetes >= 24.2.0
"""
