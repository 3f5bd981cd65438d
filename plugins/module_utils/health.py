# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""Application health of the stack's components, as pure functions.

Each *_health function takes what the component answered (HTTP status and body, or the text a
CLI printed) and returns a dictionary with `ok` (bool), `reason` (why not, in words) and the
figures that matter. The requests themselves (service proxy, pod exec) are made by the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import re

HEALTH_TYPES = ("elasticsearch", "kibana", "hdfs", "kafka")

# Service and port each component is reached on unless the task says otherwise.
DEFAULT_ENDPOINTS = {
    "elasticsearch": ("elasticsearch", 9200),
    "kibana": ("kibana", 5601),
    "hdfs": ("hdfs-namenode", 9870),
}

ES_STATUS_RANK = {"red": 0, "yellow": 1, "green": 2}

HDFS_INFO_QUERY = "Hadoop:service=NameNode,name=NameNodeInfo"
HDFS_STATE_QUERY = "Hadoop:service=NameNode,name=FSNamesystemState"


def _result(ok, reason=None, **figures):
    result = {"ok": bool(ok), "reason": reason}
    result.update(figures)
    return result


def _load_json(body):
    if isinstance(body, (dict, list)):
        return body
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def http_error_reason(status, body, what):
    """Why an HTTP health request failed, in words a user can act on."""
    text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    if status == 503 and "no endpoints available" in text:
        return "%s: the service has no ready endpoints yet" % what
    if status in (401, 403):
        return (
            "%s answered %s: it needs credentials (health.username/password or "
            "health.credentials_secret) or the user lacks the monitor privilege" % (what, status)
        )
    doc = _load_json(body)
    if isinstance(doc, dict):
        error = doc.get("error")
        if isinstance(error, dict):
            return "%s answered %s: %s %s" % (what, status, error.get("type") or "", error.get("reason") or "")
        if doc.get("message"):
            return "%s answered %s: %s" % (what, status, doc["message"])
    snippet = " ".join((text or "").split())[:200]
    return "%s answered %s%s" % (what, status, (": " + snippet) if snippet else "")


# --------------------------------------------------------------------------- Elasticsearch


def elasticsearch_health(status, body, wait_for_status="green", min_nodes=None):
    """Interpret GET /_cluster/health."""
    doc = _load_json(body)
    if status != 200 or not isinstance(doc, dict) or "status" not in doc:
        return _result(False, http_error_reason(status, body, "Elasticsearch _cluster/health"))
    cluster = doc.get("status")
    figures = dict(
        status=cluster,
        cluster_name=doc.get("cluster_name"),
        number_of_nodes=doc.get("number_of_nodes"),
        number_of_data_nodes=doc.get("number_of_data_nodes"),
        active_shards_percent=doc.get("active_shards_percent_as_number"),
        unassigned_shards=doc.get("unassigned_shards"),
    )
    if ES_STATUS_RANK.get(cluster, -1) < ES_STATUS_RANK[wait_for_status]:
        reason = "cluster %s is %s, waiting for %s (%s nodes, %s unassigned shards, %s%% shards active)" % (
            doc.get("cluster_name"), cluster, wait_for_status, doc.get("number_of_nodes"),
            doc.get("unassigned_shards"), doc.get("active_shards_percent_as_number"),
        )
        return _result(False, reason, **figures)
    if min_nodes and (doc.get("number_of_nodes") or 0) < min_nodes:
        return _result(False, "cluster %s has %s of %s nodes" % (doc.get("cluster_name"), doc.get("number_of_nodes"), min_nodes), **figures)
    return _result(True, **figures)


# --------------------------------------------------------------------------- Kibana


def kibana_health(status, body):
    """Interpret GET /api/status of Kibana 8.x/9.x (status.overall.level), or 7.x (overall.state).

    Kibana answers 503 with the same document while it is not available, and a redacted document
    holding only status.overall.level to requests without credentials.
    """
    doc = _load_json(body)
    overall = ((doc or {}).get("status") or {}).get("overall") if isinstance(doc, dict) else None
    if not isinstance(overall, dict):
        return _result(False, http_error_reason(status, body, "Kibana /api/status"))
    version = ((doc.get("version") or {}).get("number")) if isinstance(doc.get("version"), dict) else None
    level = overall.get("level")
    if level is None and overall.get("state"):  # 7.x legacy format
        level = {"green": "available", "yellow": "degraded", "red": "unavailable"}.get(overall["state"], overall["state"])
    figures = dict(level=level, version=version, summary=overall.get("summary") or overall.get("title"))
    if level != "available":
        degraded = []
        core = (doc.get("status") or {}).get("core") or {}
        for name, service in sorted(core.items()):
            if isinstance(service, dict) and service.get("level") not in (None, "available"):
                degraded.append("%s: %s" % (name, service.get("summary") or service.get("level")))
        reason = "Kibana status is %s%s" % (level, (": " + overall["summary"]) if overall.get("summary") else "")
        if degraded:
            reason += " (%s)" % "; ".join(degraded)
        return _result(False, reason, **figures)
    return _result(True, **figures)


# --------------------------------------------------------------------------- HDFS


def _jmx_bean(doc, name):
    for bean in (doc or {}).get("beans") or []:
        if bean.get("name") == name:
            return bean
    return None


def hdfs_health(info, state, min_datanodes=1):
    """Interpret the NameNode JMX beans NameNodeInfo and FSNamesystemState (/jmx?qry=...)."""
    info_bean = _jmx_bean(_load_json(info), HDFS_INFO_QUERY)
    state_bean = _jmx_bean(_load_json(state), HDFS_STATE_QUERY)
    if info_bean is None and state_bean is None:
        return _result(False, "the NameNode JMX answer has neither NameNodeInfo nor FSNamesystemState")
    info_bean = info_bean or {}
    state_bean = state_bean or {}
    safemode = (info_bean.get("Safemode") or "").strip()
    fs_state = state_bean.get("FSState")
    live = state_bean.get("NumLiveDataNodes")
    if live is None:
        live_nodes = _load_json(info_bean.get("LiveNodes") or "{}") or {}
        live = len(live_nodes)
    figures = dict(
        safemode=bool(safemode) or fs_state == "safeMode",
        live_datanodes=live,
        dead_datanodes=state_bean.get("NumDeadDataNodes"),
        version=info_bean.get("Version"),
        cluster_id=info_bean.get("ClusterId"),
    )
    if safemode or fs_state == "safeMode":
        return _result(False, "NameNode is in safe mode: %s" % (" ".join(safemode.split()) or fs_state), **figures)
    if live < min_datanodes:
        return _result(False, "%s of %s DataNodes live" % (live, min_datanodes), **figures)
    return _result(True, **figures)


# --------------------------------------------------------------------------- Kafka


def _node_ids(value):
    """Node ids of a CurrentVoters/CurrentObservers value: JSON objects (3.9+) or a list of ints."""
    ids = [int(i) for i in re.findall(r'"id":\s*(-?\d+)', value)]
    if ids:
        return ids
    return [int(i) for i in re.findall(r"-?\d+", value)]


def parse_quorum_status(text):
    """`kafka-metadata-quorum.sh ... describe --status` output as a dictionary."""
    fields = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*([A-Za-z]+):\s*(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    parsed = {}
    for key in ("LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag"):
        if key in fields and re.match(r"^-?\d+$", fields[key]):
            parsed[key] = int(fields[key])
    parsed["ClusterId"] = fields.get("ClusterId")
    parsed["CurrentVoters"] = _node_ids(fields.get("CurrentVoters", ""))
    parsed["CurrentObservers"] = _node_ids(fields.get("CurrentObservers", ""))
    return parsed


_BROKER_LINE_RE = re.compile(r"^\S+ \(id: (-?\d+) rack: [^)]*?(?: isFenced: (true|false))?\) -> \(", re.M)


def parse_broker_ids(text):
    """Ids of the unfenced brokers `kafka-broker-api-versions.sh` lists."""
    ids = set()
    for match in _BROKER_LINE_RE.finditer(text or ""):
        if match.group(2) != "true":
            ids.add(int(match.group(1)))
    return sorted(ids)


def kafka_health(quorum_text, brokers_text, min_brokers=1):
    quorum = parse_quorum_status(quorum_text)
    brokers = parse_broker_ids(brokers_text)
    figures = dict(
        cluster_id=quorum.get("ClusterId"),
        leader_id=quorum.get("LeaderId"),
        voters=quorum.get("CurrentVoters"),
        brokers=brokers,
    )
    if quorum.get("LeaderId") is None:
        return _result(False, "kafka-metadata-quorum printed no LeaderId: %s" % " ".join((quorum_text or "").split())[:300], **figures)
    if quorum["LeaderId"] < 0:
        return _result(False, "the KRaft quorum has no leader (LeaderId %s)" % quorum["LeaderId"], **figures)
    if len(brokers) < min_brokers:
        return _result(False, "%s of %s brokers registered (ids %s)" % (len(brokers), min_brokers, brokers), **figures)
    return _result(True, **figures)


def kafka_commands(bin_dir, bootstrap_server, bootstrap_controller=None, command_config=None):
    """The two CLI calls run in a Kafka pod: quorum status, then the live broker list."""
    bin_dir = bin_dir.rstrip("/")
    quorum = [bin_dir + "/kafka-metadata-quorum.sh"]
    if bootstrap_controller:
        quorum += ["--bootstrap-controller", bootstrap_controller]
    else:
        quorum += ["--bootstrap-server", bootstrap_server]
    brokers = [bin_dir + "/kafka-broker-api-versions.sh", "--bootstrap-server", bootstrap_server]
    if command_config:
        quorum += ["--command-config", command_config]
        brokers += ["--command-config", command_config]
    quorum += ["describe", "--status"]
    return quorum, brokers


# --------------------------------------------------------------------------- HTTP requests


def http_checks(health_type):
    """(name, path, query) of the HTTP requests a health type makes."""
    if health_type == "elasticsearch":
        return [("cluster_health", "_cluster/health", [])]
    if health_type == "kibana":
        return [("status", "api/status", [])]
    if health_type == "hdfs":
        return [("info", "jmx", [("qry", HDFS_INFO_QUERY)]), ("state", "jmx", [("qry", HDFS_STATE_QUERY)])]
    raise ValueError("no HTTP check for %s" % health_type)


def interpret(health_type, answers, options):
    """Apply the matching *_health function to the answers {name: (status, body)} of http_checks."""
    if health_type == "elasticsearch":
        status, body = answers["cluster_health"]
        return elasticsearch_health(status, body, options.get("wait_for_status") or "green", options.get("min_nodes"))
    if health_type == "kibana":
        return kibana_health(*answers["status"])
    if health_type == "hdfs":
        for name in ("info", "state"):
            status, body = answers[name]
            if status != 200:
                return _result(False, http_error_reason(status, body, "NameNode /jmx"))
        return hdfs_health(answers["info"][1], answers["state"][1], options.get("min_datanodes") or 1)
    raise ValueError("no HTTP check for %s" % health_type)


CURL_METHODS = ("GET", "PUT", "POST", "DELETE")


def curl_command(url, timeout=10, method="GET", data=None):
    """Run curl in a pod with its config (credentials) read from one line of stdin.

    The API server keeps the Authorization header of a service proxy request for itself, so
    checks with credentials run curl inside a pod instead. Credentials go through stdin: exec
    arguments end up in API server audit logs and in the container's process list. One `read`
    line is used because websocket exec clients cannot always close stdin.

    method and data (a JSON text, e.g. a cluster setting) are for the few writes the roll gates
    make; data is an argument, so it must never hold a secret.
    """
    if method not in CURL_METHODS:
        raise ValueError("curl_command: method %r is not one of %s" % (method, ", ".join(CURL_METHODS)))
    request = ""
    if method != "GET":
        request += "--request %s " % method
    if data is not None:
        request += '--header "Content-Type: application/json" --data-binary "$2" '
    script = (
        'IFS= read -r cfg; printf "%%s\\n" "$cfg" | curl --silent --show-error --insecure '
        '--max-time %d %s--config - --write-out "\\n%%{http_code}" "$1"' % (int(timeout), request)
    )
    return ["sh", "-c", script, "health-check", url] + ([data] if data is not None else [])


def curl_config(username, password):
    """A curl config line holding the credentials, quoted as curl's config syntax needs."""
    def quote(value):
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return 'user = "%s:%s"\n' % (quote(username), quote(password))


def secret_credentials(rest, namespace, name):
    """(username, password) from the keys username and password of Secret namespace/name.

    Raises ValueError naming the Secret (and its keys, never their values) when it is missing or
    incomplete. The caller masks the password (module.no_log_values) before anything is returned.
    """
    secret = rest.get("Secret", namespace, name)
    if secret is None:
        raise ValueError("credentials_secret %s/%s does not exist" % (namespace, name))
    data = secret.get("data") or {}
    missing = [key for key in ("username", "password") if key not in data]
    if missing:
        raise ValueError("secret %s/%s has no key %s (it has: %s)" % (
            namespace, name, " and ".join(missing), ", ".join(sorted(data)) or "none"))
    return tuple(base64.b64decode(data[key]).decode("utf-8") for key in ("username", "password"))


def parse_curl_output(stdout):
    """(HTTP status, body) from curl's stdout ending in the --write-out status line."""
    body, _sep, code = (stdout or "").rstrip("\n").rpartition("\n")
    try:
        return int(code.strip()), body
    except ValueError:
        return 0, stdout


def pod_url(scheme, pod_ip, port, path, query):
    host = "[%s]" % pod_ip if ":" in pod_ip else pod_ip
    url = "%s://%s:%s/%s" % (scheme, host, port, path.lstrip("/"))
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url
