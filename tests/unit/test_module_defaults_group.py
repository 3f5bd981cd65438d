"""One module_defaults group for every Kubernetes module: group/bigdata.stack.k8s extends
kubernetes.core.k8s (meta/runtime.yml, extend_group), so the playbooks give the connection once and
kubernetes.core's modules get it too. A kubeconfig path that does not exist shows where it went:
kubernetes.core's action plugin refuses it by name before connecting.
"""

from __future__ import annotations

import playbook

PLAY = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/bigdata.stack.k8s:
      kubeconfig: {kubeconfig}
  tasks:
    - name: A kubernetes.core module, given only the collection's group
      kubernetes.core.k8s_info:
        kind: Namespace
"""


def test_the_collections_group_reaches_kubernetes_core_modules(tmp_path):
    kubeconfig = tmp_path / "no-such-kubeconfig"
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(kubeconfig=kubeconfig))
    run = playbook.run(str(play), env={"K8S_AUTH_KUBECONFIG": None})
    [result] = [r for r in run.task_results() if r["task"].endswith("given only the collection's group")]
    assert result["status"] == "failed"
    assert str(kubeconfig) in result["result"].get("msg", ""), result["result"]
