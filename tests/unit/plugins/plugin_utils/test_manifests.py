"""The pure functions behind bigdata.stack.k8s_apply: documents, render text, diffs, masking."""

from __future__ import annotations

import base64

import yaml

from ansible_collections.bigdata.stack.plugins.plugin_utils import manifests as m


def test_documents_fill_namespace_flatten_lists_and_drop_empty_documents():
    text = (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- {kind: Service, metadata: {name: s, namespace: other}}\n"
    )
    docs = m.documents(text, "ns")
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        ("ConfigMap", "ns"), ("Namespace", None), ("Service", "other")]
    assert docs[2]["apiVersion"] == "v1"


def test_dump_keeps_the_template_key_order():
    text = m.dump(m.documents("kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n"))
    assert text == "---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\n"
    assert list(yaml.safe_load_all(text))[0]["kind"] == "ConfigMap"


def test_ref_names_namespaced_and_cluster_scoped_objects():
    assert m.ref({"kind": "Secret", "metadata": {"name": "s", "namespace": "n"}}) == "Secret/n/s"
    assert m.ref({"kind": "Namespace", "metadata": {"name": "n"}}) == "Namespace/n"


def test_object_diff_drops_server_bookkeeping_and_shows_files_line_by_line():
    obj = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    diff = {
        "before": {"metadata": {"resourceVersion": "1", "managedFields": [{"time": "t1"}]},
                   "data": {"a.xml": "<x>\n  <v>1</v>\n</x>\n"}},
        "after": {"metadata": {"resourceVersion": "2", "managedFields": [{"time": "t2"}]},
                  "data": {"a.xml": "<x>\n  <v>2</v>\n</x>\n"}},
    }
    shown = m.object_diff(obj, diff)
    assert shown["before_header"] == shown["after_header"] == "ConfigMap/n/c"
    assert "metadata" not in shown["before"] and "metadata" not in shown["after"]
    assert "    <v>1</v>\n" in shown["before"] and "    <v>2</v>\n" in shown["after"]


def test_object_diff_is_none_when_only_bookkeeping_differs():
    diff = {"before": {"metadata": {"generation": 1}, "status": {"x": 1}},
            "after": {"metadata": {"generation": 2}, "status": {"x": 2}}}
    assert m.object_diff({"kind": "StatefulSet", "metadata": {"name": "s"}}, diff) is None
    assert m.object_diff({"kind": "StatefulSet", "metadata": {"name": "s"}}, {}) is None


def test_object_diff_masks_secret_values_and_says_which_changed():
    obj = {"kind": "Secret", "metadata": {"name": "s", "namespace": "n"}}
    diff = {"before": {"data": {"password": "b2xk", "gone": "eA=="}},
            "after": {"data": {"password": "bmV3", "added": "eQ=="}}}
    shown = m.object_diff(obj, diff)
    text = shown["before"] + shown["after"]
    for value in ("b2xk", "bmV3", "eA==", "eQ=="):
        assert value not in text
    assert "password: '***** (before)'" in shown["before"] and "password: '***** (after)'" in shown["after"]
    assert "gone: '*****'" in shown["before"] and "added: '*****'" in shown["after"]


def test_secret_values_include_decoded_data_and_censor_hides_them():
    password = "s3cret-value"
    objs = [{"kind": "Secret", "data": {"p": base64.b64encode(password.encode()).decode()},
             "stringData": {"t": "token-123"}},
            {"kind": "ConfigMap", "data": {"k": "visible"}}]
    values = m.secret_values(objs)
    assert values == {base64.b64encode(password.encode()).decode(), password, "token-123"}
    message = m.censor("failed: %s and token-123, visible" % password, values)
    assert password not in message and "token-123" not in message and "visible" in message


def test_namespace_of_is_none_for_cluster_scoped_objects():
    assert m.namespace_of({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}) == "ns"
    assert m.namespace_of({"kind": "Namespace", "metadata": {"name": "ns"}}) is None
    assert m.namespace_of({"kind": "ClusterRole", "metadata": {"name": "r", "namespace": "ns"}}) is None
    assert m.namespace_of({"kind": "ConfigMap", "metadata": {"name": "a"}}) is None


def test_object_diff_ignores_a_status_that_changed_meanwhile():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    heartbeat = {"before": {"metadata": {"resourceVersion": "1"}, "status": {"conditions": [{"type": "Ready", "lastHeartbeatTime": "a"}]}},
                 "after": {"metadata": {"resourceVersion": "2"}, "status": {"conditions": [{"type": "Ready", "lastHeartbeatTime": "b"}]}}}
    assert m.object_diff(node, heartbeat) is None
    labelled = {"before": {"metadata": {"labels": {"a": "1"}}}, "after": {"metadata": {"labels": {"a": "2"}}}}
    assert m.object_diff(node, labelled) is not None
