# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""No generated password, key or token appears in what ansible-playbook -vvv prints.

One namespace on the simulated cluster, the dev inventory with TLS on (so private keys are
generated too), no application health wait (no container runs here):

1. site.yml -vvv --diff --skip-tags wait (the first run: every password, encryption key and
   certificate is generated and applied; no rollout wait, no pipeline start);
2. playbooks/deploy_app.yml -vvv (reads the stack's Secrets and configuration to submit an app);
3. site.yml -vvv --check --diff --skip-tags wait (a re-run in check mode: every role reads the
   Secrets it generated earlier and shows what it would change);
4. site.yml -vvv --tags elasticsearch with the application health wait and a short timeout: a run
   that fails after the Secrets are read. The role reads its Secrets in apply, and the wait reads
   the elastic password to ask the cluster's health with curl in a pod, which cannot succeed here
   (no container runs), so the wait fails with its message (the failure path);
5. teardown.yml -vvv.

Between 2 and 3 the Secrets are read back from the cluster: every Secret of the namespace with
the stack's label app.kubernetes.io/part-of=bigdata-stack. Each value of a key that holds a secret
(a password, a private key, an encryption key, a token), decoded, its base64 form as stored, and
every line of a PEM private key's body, is then searched in the complete stdout and stderr of the
five runs and in ansible-runner's event data (what AWX would keep). Usernames and certificates
are public and not searched.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import uuid

import pytest
from kubernetes import client

from helpers import REPO, run_playbook

# Keys whose values are secret; others (username, tls.crt, ca.crt) are public.
SECRET_KEY = re.compile(r"pass|key|token|secret|security|savedobjects|reporting", re.IGNORECASE)
PUBLIC_KEY = re.compile(r"(^|\.)(crt|pem)$|^username$|^user$", re.IGNORECASE)
PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)\n-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
LOG_DIR = pathlib.Path(REPO) / "tests" / "output" / "secrets-in-output"
# Shorter strings could match by chance (and no generated secret is this short).
MIN_NEEDLE = 12


def secret_needles(secrets):
    """{needle: 'secret/key (form)'} for every secret value of the given V1Secrets."""
    needles = {}
    for secret in secrets:
        for key, encoded in (secret.data or {}).items():
            if PUBLIC_KEY.search(key) or not SECRET_KEY.search(key):
                continue
            where = "%s/%s" % (secret.metadata.name, key)
            raw = base64.b64decode(encoded)
            needles[encoded] = where + " (base64)"
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                continue
            needles[text.strip()] = where + " (decoded)"
            for body in PEM_PRIVATE.findall(text):
                for number, line in enumerate(body.splitlines(), 1):
                    needles[line.strip()] = "%s (PEM body line %d)" % (where, number)
    short = sorted(where for needle, where in needles.items() if len(needle) < MIN_NEEDLE)
    assert not short, "secret values too short to search for (or to be secret): %s" % short
    return needles


def log_name(name):
    """'site.yml -vvv --check --diff' -> 'site.yml_-vvv_--check_--diff': one file per run."""
    return re.sub(r"[^\w.-]+", "_", name)


def passed(name, run):
    """Fail naming the failed task and its message; keep every run's full output for a look."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / (log_name(name) + ".log")).write_text("$ %s\n%s\n%s" % (" ".join(run.command), run.stdout, run.stderr))
    failed = ["%s: %s" % (r["task"], r["result"].get("msg", r["result"])) for r in run.task_results()
              if r["status"] == "failed" and not r["ignore_errors"]]
    assert run.returncode == 0, "%s failed (full output in %s): %s\n%s" % (name, LOG_DIR, failed, run.report())


def failed_after_reading_secrets(name, run, secret_read_task, failing_task):
    """The run failed, in failing_task, after secret_read_task had read the Secrets."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / (log_name(name) + ".log")).write_text("$ %s\n%s\n%s" % (" ".join(run.command), run.stdout, run.stderr))
    results = run.task_results()
    tasks = [(r["task"], r["status"]) for r in results]
    failed = [i for i, r in enumerate(results) if r["status"] == "failed" and not r["ignore_errors"]]
    read = [i for i, r in enumerate(results) if r["task"].endswith(secret_read_task) and r["status"] == "ok"]
    assert run.returncode != 0 and failed, "%s should have failed (in %r); tasks: %s" % (name, failing_task, tasks)
    assert results[failed[0]]["task"].endswith(failing_task), (
        "%s failed in %r, not in %r: %s" % (name, results[failed[0]]["task"], failing_task,
                                            results[failed[0]]["result"].get("msg")))
    assert read and read[0] < failed[0], "%s failed before %r read the Secrets: %s" % (name, secret_read_task, tasks)


def leaks(needles, runs):
    """['<secret> in <run>', ...] for every needle found in a run's output or events."""
    found = []
    for name, run in runs.items():
        haystacks = {"stdout": run.stdout, "stderr": run.stderr,
                     "events": json.dumps(run.events, default=str)}
        for needle, where in sorted(needles.items(), key=lambda item: item[1]):
            for stream, text in haystacks.items():
                if needle in text:
                    line = next((line for line in text.splitlines() if needle in line), "")
                    found.append("%s in the %s of %s: ...%s..." % (where, stream, name, line.strip()[:160]))
    return found


@pytest.fixture
def namespace(api_client):
    name = "leak-" + uuid.uuid4().hex[:8]
    yield name
    core = client.CoreV1Api(api_client)
    if any(ns.metadata.name == name for ns in core.list_namespace().items):
        core.delete_namespace(name)


def test_no_secret_in_verbose_output(sim_kubeconfig, api_client, namespace):
    # Kafka's certificate is never generated (kafka_tls_secret names one the user provides) and
    # site.yml's preflight wants it to exist: a placeholder (no stack labels, so not searched for)
    # is enough here, where no container runs to mount it.
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="kafka-tls"), type="Opaque",
        string_data={"tls.crt": "placeholder", "tls.key": "placeholder", "ca.crt": "placeholder"}))
    extra = ["-i", "inventories/dev", "-vvv",
             "-e", json.dumps({"bigdata_namespace": namespace, "bigdata_instance": namespace,
                               "bigdata_tls_enabled": True, "kafka_tls_secret": "kafka-tls",
                               "bigdata_wait_application_health": False})]
    runs = {}
    # Without the wait phase (rollouts, the pipelines' start): under load spark-submit's 10 s
    # connection timeout to the simulated API server made the run fail at random; deploy_app.yml
    # below submits through the same spark_submit module.
    runs["site.yml -vvv --diff"] = run_playbook("site.yml", "--diff", "--skip-tags", "wait", *extra,
                                                kubeconfig=sim_kubeconfig)
    passed("site.yml -vvv --diff", runs["site.yml -vvv --diff"])
    runs["deploy_app.yml -vvv"] = run_playbook(
        "playbooks/deploy_app.yml", *extra, "-e", "bigdata_app_name=leak-check",
        "-e", "bigdata_app_file=roles/pipelines/files/apps/events_batch.py", kubeconfig=sim_kubeconfig)
    passed("deploy_app.yml -vvv", runs["deploy_app.yml -vvv"])

    secrets = client.CoreV1Api(api_client).list_namespaced_secret(
        namespace, label_selector="app.kubernetes.io/part-of=bigdata-stack").items
    needles = secret_needles(secrets)
    # The dev stack with TLS generates at least: the elastic and kibana_system passwords, Kibana's
    # encryption keys, Grafana's admin password, the pipelines' credentials and private keys.
    kinds = {where.split(" (")[0] for where in needles.values()}
    assert any("tls.key" in k for k in kinds) and any("password" in k for k in kinds), (
        "expected generated passwords and TLS keys among the Secrets, found %s" % sorted(kinds))

    # A re-run in check mode with diff: every role reads its kept Secrets and diffs its manifests.
    runs["site.yml -vvv --check --diff"] = run_playbook("site.yml", "--check", "--diff", "--skip-tags", "wait",
                                                        *extra, kubeconfig=sim_kubeconfig)
    passed("site.yml -vvv --check --diff", runs["site.yml -vvv --check --diff"])
    # The failure path: the elasticsearch role reads its Secrets, applies, and its wait (which reads
    # the elastic password for its health check) fails: no container runs on the simulated nodes.
    runs["site.yml -vvv failing"] = run_playbook(
        "site.yml", "--tags", "elasticsearch", *extra,
        "-e", "bigdata_wait_application_health=true", "-e", "bigdata_wait_timeout=30", kubeconfig=sim_kubeconfig)
    failed_after_reading_secrets("site.yml -vvv failing", runs["site.yml -vvv failing"],
                                 "Read the Secrets an earlier run generated",
                                 "Wait for every node pool to roll out, then for the cluster health")

    runs["teardown.yml -vvv"] = run_playbook("teardown.yml", *extra, kubeconfig=sim_kubeconfig)
    passed("teardown.yml -vvv", runs["teardown.yml -vvv"])

    found = leaks(needles, runs)
    assert not found, "secrets in the playbooks' output (%d needles from %d Secrets searched):\n  %s" % (
        len(needles), len(secrets), "\n  ".join(found))
