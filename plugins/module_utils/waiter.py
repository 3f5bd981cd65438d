# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
#
# This module_utils is PRIVATE to the bigdata.stack collection. It may change without notice
# between releases; other collections and roles must not import it.
"""Rollout predicates and the wait loop of wait_ready.

Shaped like kubernetes.core's module_utils/k8s/waiter.py: one small predicate per kind
(StatefulSet, Deployment, Job) behind one loop. The difference is what a predicate returns: not only
"ready or not" but a status summary and, when not ready, a sentence naming what is missing, so a
timeout says "kafka-2: Pending, Unschedulable: 0/3 nodes are available" instead of "timed out".
All functions take API dictionaries and are free of I/O; the clock is injected.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

# Waiting reasons that do not heal by waiting longer: fail at once with the pod's last state.
FATAL_WAITING_REASONS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)
# A container restarting this often during one wait is crash-looping even before the kubelet
# reports CrashLoopBackOff (which it only does while it backs off).
CRASH_RESTARTS = 3

# Workload kinds wait_ready follows, with their API version.
KINDS = {
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
}


class FatalWait(Exception):
    """Waiting longer cannot help (crash loop, image pull failure, rollout deadline exceeded)."""


# --------------------------------------------------------------------------- selectors and pods


def label_selector(selector):
    """A LabelSelector dictionary as the labelSelector query string."""
    parts = ["%s=%s" % (k, v) for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if operator == "In":
            parts.append("%s in (%s)" % (key, ",".join(values)))
        elif operator == "NotIn":
            parts.append("%s notin (%s)" % (key, ",".join(values)))
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append("!" + key)
    return ",".join(parts)


def _condition(obj, kind):
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def pod_ready(pod):
    condition = _condition(pod, "Ready")
    return bool(condition and condition.get("status") == "True") and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def _container_statuses(pod):
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _state_text(state):
    """One container state ({"terminated": {...}}) as a short phrase."""
    if not state:
        return "unknown"
    for kind in ("waiting", "terminated", "running"):
        detail = state.get(kind)
        if detail is None:
            continue
        words = [kind]
        if detail.get("reason"):
            words.append(detail["reason"])
        if kind == "terminated" and detail.get("exitCode") is not None:
            words.append("exit code %s" % detail["exitCode"])
        if detail.get("finishedAt"):
            words.append("at %s" % detail["finishedAt"])
        text = " ".join(words)
        if detail.get("message"):
            text += ": " + detail["message"].strip().splitlines()[0][:300]
        return text
    return "unknown"


def describe_pod(pod):
    """Why a pod is not ready, in a few words: "Pending, Unschedulable: 0/3 nodes are available: ..."."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    phase = status.get("phase") or "Unknown"
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return "%s, %s: %s" % (phase, scheduled.get("reason") or "not scheduled", (scheduled.get("message") or "").strip())
    for container in _container_statuses(pod):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            text = "%s, %s %s" % (phase, container.get("name"), waiting.get("reason") or "waiting")
            if waiting.get("message"):
                text += ": " + waiting["message"].strip()[:300]
            return text
    not_ready = [c.get("name") for c in status.get("containerStatuses") or [] if not c.get("ready")]
    if not_ready:
        return "%s, not ready (%s)" % (phase, ", ".join(not_ready))
    if status.get("reason"):
        return "%s, %s" % (phase, status["reason"])
    return phase


class RestartTracker(object):
    """Remembers restart counts at the first sight of each container to spot growing ones."""

    def __init__(self):
        self.baseline = {}

    def restarts_since_start(self, pod, container):
        key = ((pod.get("metadata") or {}).get("uid") or (pod.get("metadata") or {}).get("name"), container.get("name"))
        count = container.get("restartCount") or 0
        first = self.baseline.setdefault(key, count)
        return count - first


def pod_fatal(pod, tracker=None):
    """A sentence when a pod cannot become ready by waiting (crash loop, image pull failure), else None."""
    name = (pod.get("metadata") or {}).get("name")
    for container in _container_statuses(pod):
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        last = _state_text(container.get("lastState"))
        restarts = container.get("restartCount") or 0
        # The kubelet backs off before every restart, the first one too, so one crash (a broker
        # killed once, a datanode up before its namenode) shows CrashLoopBackOff for about 10 s and
        # heals: it is fatal from CRASH_RESTARTS restarts on (growth during the wait: below).
        healing = waiting.get("reason") == "CrashLoopBackOff" and int(restarts) < CRASH_RESTARTS
        if waiting.get("reason") in FATAL_WAITING_REASONS and not healing:
            text = "pod %s container %s is in %s (restarts %s)" % (name, container.get("name"), waiting["reason"], restarts)
            if waiting.get("message"):
                text += ": " + waiting["message"].strip()[:300]
            if container.get("lastState"):
                text += "; last state: " + last
            return text
        if tracker is not None and not container.get("ready"):
            grown = tracker.restarts_since_start(pod, container)
            if grown >= CRASH_RESTARTS:
                return "pod %s container %s restarted %s times during the wait (crash-looping); last state: %s" % (
                    name, container.get("name"), grown, last,
                )
    return None


# --------------------------------------------------------------------------- stuck pods

# A kubelet's FailedMount event for a volume whose Secret or ConfigMap does not exist says:
#   MountVolume.SetUp failed for volume "tls" : secret "kafka-tls" not found
MISSING_MOUNT = re.compile(r'(secret|configmap) "([^"]+)" not found', re.IGNORECASE)
MOUNT_KINDS = {"secret": "Secret", "configmap": "ConfigMap"}


def unschedulable_message(pod):
    """The scheduler's message when a pod is Pending and Unschedulable, else None."""
    if (pod.get("metadata") or {}).get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Pending":
        return None
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return (scheduled.get("message") or "no message").strip()
    return None


def _involves(event, pod):
    meta = pod.get("metadata") or {}
    involved = event.get("involvedObject") or event.get("regarding") or {}
    if involved.get("kind") != "Pod":
        return False
    if involved.get("uid") and meta.get("uid"):
        return involved["uid"] == meta["uid"]
    return involved.get("name") == meta.get("name")


def pod_events(pod, events, reason):
    """The events of one pod with the given reason, oldest first."""
    return [e for e in events if e.get("reason") == reason and _involves(e, pod)]


def missing_mounts(pod, events):
    """[(kind, name)] of the Secrets and ConfigMaps the kubelet reported missing when mounting a pod's volumes."""
    found = []
    for event in pod_events(pod, events, "FailedMount"):
        for kind, name in MISSING_MOUNT.findall(event.get("message") or event.get("note") or ""):
            item = (MOUNT_KINDS[kind.lower()], name)
            if item not in found:
                found.append(item)
    return found


class StuckJudge(object):
    """Decides when waiting longer cannot help a pod that never started, from what the API server says.

    - Unschedulable: every Pending pod has been Unschedulable for ``patience`` seconds of this wait,
      the number of nodes did not change meanwhile and no cluster-autoscaler ``TriggeredScaleUp``
      event names one of them: no node is coming, so the scheduler's message is the answer.
    - Missing mount: a pod the kubelet could not start because a Secret or ConfigMap volume names an
      object that does not exist, still absent ``patience`` seconds after this wait first saw it.

    Times are this wait's own observations (clock injected), keyed by pod uid: a pod deleted and
    created again starts afresh.
    """

    def __init__(self, patience):
        self.patience = patience
        self.unschedulable_since = {}
        self.mount_since = {}
        self.nodes = None

    @staticmethod
    def _key(pod):
        meta = pod.get("metadata") or {}
        return meta.get("uid") or meta.get("name")

    def nodes_seen(self, count, now):
        """Record the node count; a change means the cluster grew or shrank: every clock starts again."""
        if count is None:
            return
        if self.nodes is not None and count != self.nodes:
            self.unschedulable_since.clear()
        self.nodes = count

    def unschedulable(self, pods, events, now):
        """A sentence when every Pending pod has been Unschedulable for long enough, else None."""
        pending = [p for p in pods if (p.get("status") or {}).get("phase") == "Pending"
                   and not (p.get("metadata") or {}).get("deletionTimestamp")]
        stuck = []
        for pod in pending:
            message = unschedulable_message(pod)
            key = self._key(pod)
            if message is None or pod_events(pod, events, "TriggeredScaleUp"):
                self.unschedulable_since.pop(key, None)
                continue
            since = self.unschedulable_since.setdefault(key, now)
            stuck.append((pod, message, now - since))
        if not pending or len(stuck) != len(pending) or any(age < self.patience for dummy, dummy2, age in stuck):
            return None
        names = ", ".join("%s/%s" % ((p.get("metadata") or {}).get("namespace"), (p.get("metadata") or {}).get("name"))
                          for p, dummy, dummy2 in stuck)
        messages = []
        for dummy, message, dummy2 in stuck:
            if message not in messages:
                messages.append(message)
        return ("%s cannot be scheduled and no node is being added (node count unchanged, no TriggeredScaleUp "
                "event) after %ss: %s. Free or add capacity, or lower the requests" % (
                    names, int(min(age for dummy, dummy2, age in stuck)), " / ".join(messages)))

    def missing_mount(self, pod, missing, now):
        """A sentence when a pod has waited ``patience`` seconds for Secrets/ConfigMaps that still do not exist."""
        key = self._key(pod)
        if not missing:
            self.mount_since.pop(key, None)
            return None
        since = self.mount_since.setdefault(key, now)
        if now - since < self.patience:
            return None
        meta = pod.get("metadata") or {}
        return ("pod %s/%s cannot start: its volumes need %s, which %s not exist (FailedMount for %ss). "
                "Create it, or fix the volume's name" % (
                    meta.get("namespace"), meta.get("name"), " and ".join("%s %s" % item for item in missing),
                    "does" if len(missing) == 1 else "do", int(now - since)))


def progress_line(elapsed, timeout, what):
    """One progress line of a wait: "[120s of 900s] still waiting for StatefulSet ns/x: ..."."""
    return "[%ds of %ss] still waiting for %s" % (elapsed, timeout, what)


# --------------------------------------------------------------------------- predicates


def _summary(kind, obj, desired, **counts):
    meta = obj.get("metadata") or {}
    result = {"kind": kind, "name": meta.get("name"), "namespace": meta.get("namespace"), "replicas": desired}
    result.update(counts)
    return result


def _missing_text(ready, desired, problems):
    text = "%s of %s replicas ready" % (ready, desired)
    if problems:
        text += " (missing %s)" % "; ".join(problems)
    return text


def statefulset_status(sts, pods):
    """Summary of a StatefulSet rollout: ready when observed, updated, ready and on one revision."""
    spec = sts.get("spec") or {}
    status = sts.get("status") or {}
    meta = sts.get("metadata") or {}
    desired = spec.get("replicas", 1)
    ready = status.get("readyReplicas") or 0
    updated = status.get("updatedReplicas") or 0
    current = status.get("replicas") or 0
    strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
    summary = _summary(
        "StatefulSet", sts, desired, ready_replicas=ready, updated_replicas=updated,
        current_revision=status.get("currentRevision"), update_revision=status.get("updateRevision"),
    )
    problems = []
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        problems.append("controller has not yet observed generation %s" % meta.get("generation"))
    by_name = dict(((p.get("metadata") or {}).get("name"), p) for p in pods)
    start = (spec.get("ordinals") or {}).get("start") or 0
    missing = []
    for ordinal in range(start, start + desired):
        pod_name = "%s-%s" % (meta.get("name"), ordinal)
        pod = by_name.get(pod_name)
        if pod is None:
            missing.append("%s: not created" % pod_name)
        elif not pod_ready(pod):
            missing.append("%s: %s" % (pod_name, describe_pod(pod)))
    rolled = True
    if strategy == "RollingUpdate":
        if partition:
            rolled = updated >= desired - partition
        else:
            rolled = updated == desired and status.get("currentRevision") == status.get("updateRevision")
    done = not problems and ready == desired and current == desired and rolled and not missing
    if done:
        summary.update(ready=True, message="%s of %s replicas ready" % (ready, desired))
        return summary
    text = _missing_text(ready, desired, missing)
    if not missing and not rolled:
        text += ", %s of %s updated to revision %s" % (updated, desired, status.get("updateRevision"))
    elif not missing and current != desired:
        text += ", %s pods exist" % current
    if problems:
        text += ", " + "; ".join(problems)
    summary.update(ready=False, message=text)
    return summary


def deployment_status(deployment, pods):
    """Summary of a Deployment rollout, as `kubectl rollout status` judges it."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    desired = spec.get("replicas", 1)
    ready = status.get("readyReplicas") or 0
    updated = status.get("updatedReplicas") or 0
    available = status.get("availableReplicas") or 0
    current = status.get("replicas") or 0
    summary = _summary(
        "Deployment", deployment, desired, ready_replicas=ready, updated_replicas=updated, available_replicas=available,
    )
    progressing = _condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        raise FatalWait(
            "Deployment %s/%s: rollout exceeded its progress deadline: %s"
            % (meta.get("namespace"), meta.get("name"), progressing.get("message"))
        )
    observed = (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
    done = observed and updated == desired and ready == desired and available == desired and current == desired
    if done:
        summary.update(ready=True, message="%s of %s replicas ready" % (ready, desired))
        return summary
    missing = [
        "%s: %s" % ((p.get("metadata") or {}).get("name"), describe_pod(p))
        for p in pods
        if not pod_ready(p) and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    text = _missing_text(ready, desired, missing)
    if not observed:
        text += ", controller has not yet observed generation %s" % meta.get("generation")
    elif updated != desired or current != desired:
        text += ", %s of %s updated, %s old replicas pending termination" % (updated, desired, max(current - updated, 0))
    elif available != desired:
        text += ", %s of %s available" % (available, desired)
    summary.update(ready=False, message=text)
    return summary


def job_status(job, pods):
    """Summary of a Job: ready once it completed; FatalWait once it failed (backoff limit, deadline).

    For a Job, replicas are its completions and ready_replicas and updated_replicas its succeeded pods.
    """
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    meta = job.get("metadata") or {}
    completions = spec.get("completions") or 1
    succeeded = status.get("succeeded") or 0
    failed_pods = status.get("failed") or 0
    summary = _summary("Job", job, completions, ready_replicas=succeeded, updated_replicas=succeeded,
                       active=status.get("active") or 0, failed=failed_pods)
    failed = _condition(job, "Failed")
    if failed and failed.get("status") == "True":
        raise FatalWait(
            "Job %s/%s failed: %s%s. Its pods' log says why (kubectl -n %s logs job/%s); fix the cause and run again"
            % (meta.get("namespace"), meta.get("name"), failed.get("reason") or "Failed",
               (" (%s)" % failed["message"]) if failed.get("message") else "", meta.get("namespace"), meta.get("name"))
        )
    complete = _condition(job, "Complete")
    if complete and complete.get("status") == "True":
        summary.update(ready=True, message="complete, %s of %s completions succeeded" % (succeeded, completions))
        return summary
    text = "%s of %s completions succeeded" % (succeeded, completions)
    if failed_pods:
        text += ", %s failed attempts" % failed_pods
    running = [
        "%s: %s" % ((p.get("metadata") or {}).get("name"), describe_pod(p))
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    if running:
        text += " (running %s)" % "; ".join(running)
    summary.update(ready=False, message=text)
    return summary


RESOURCE_PREDICATES = {
    "StatefulSet": statefulset_status,
    "Deployment": deployment_status,
    "Job": job_status,
}


def resource_status(kind, obj, pods, tracker=None):
    """The summary for one workload; raises FatalWait when one of its pods cannot recover."""
    meta = obj.get("metadata") or {}
    for pod in pods:
        problem = pod_fatal(pod, tracker)
        if problem:
            raise FatalWait("%s %s/%s: %s" % (kind, meta.get("namespace"), meta.get("name"), problem))
    return RESOURCE_PREDICATES[kind](obj, pods)


def owned_by(pod, owner_uid):
    """Pods a selector finds but another controller owns are not part of the workload."""
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return not owner_uid or not refs or any(ref.get("uid") == owner_uid for ref in refs)


# --------------------------------------------------------------------------- loop


def wait_until(probe, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """Call probe() until it returns (True, info) or timeout seconds pass.

    Returns (done, last info, elapsed seconds). probe may raise FatalWait to stop at once.
    """
    start = clock()
    while True:
        done, info = probe()
        elapsed = clock() - start
        if done:
            return True, info, elapsed
        remaining = timeout - elapsed
        if remaining <= 0:
            return False, info, elapsed
        sleep(min(interval, remaining))
