"""Render every role for every inventory once per session (playbooks/render.yml, no cluster).

Variants: each inventory as it is, plus prod with a mirror registry (bigdata_image_registry).
Output goes to tests/output/render/<variant>/<role>/<template>.yaml. A variant whose render fails
is rendered again role by role, so one broken role does not hide the state of the others; every
failure becomes a failing test that shows the playbook's output.

BIGDATA_RENDER_REUSE=1 reuses the previous output (fast iteration on the checks only).
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import importlib.util
import json
import os
import pathlib
import shutil

import playbook
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output" / "render"
MIRROR = "mirror.example.internal:5000/bigdata"

_spec = importlib.util.spec_from_file_location("bigdata_stack_filter", REPO / "plugins/filter/stack.py")
stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stack)

VARIANTS = {
    "dev": ("dev", []),
    "stage": ("stage", []),
    "prod": ("prod", []),
    # prod from a mirror registry, with prod's own numbers and switches given again the way people
    # type them on the command line: `-e key=value` makes every value a string, which each role
    # must convert (| int, | bool) rather than compare or loop over as it is. The Spark history
    # server is exposed here too (its Ingress; prod leaves it off).
    "prod-mirror": ("prod", ["-e", "bigdata_image_registry=" + MIRROR] + [
        arg for pair in ("kibana_replicas=2", "hdfs_datanode_replicas=3", "kafka_controller_replicas=3",
                         "kafka_broker_replicas=3", "spark_driver_cores=1", "spark_executor_instances=3",
                         "spark_executor_cores=2", "bigdata_tls_enabled=true", "bigdata_wait_timeout=1800",
                         "spark_history_ingress_enabled=true")
        for arg in ("-e", pair)]),
    # dev on OpenShift: pods without fixed uid/fsGroup (the restricted-v2 SCC assigns them), and
    # the UIs exposed, so that Routes instead of Ingresses are rendered (Kibana's, Grafana's,
    # the Spark history server's).
    "dev-openshift": ("dev", ["-e", "bigdata_platform=openshift", "-e", "kibana_ingress_enabled=true",
                              "-e", "spark_history_ingress_enabled=true"]),
}


def inventory_vars(inventory):
    """group_vars/all of an inventory, merged (file order, as Ansible loads them)."""
    merged = {}
    for path in sorted((REPO / "inventories" / inventory / "group_vars" / "all").glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def enabled_components(inventory):
    """What the inventory enables (the same filter site.yml uses)."""
    values = inventory_vars(inventory)
    event_log_hdfs = (values.get("spark_event_log_storage") == "hdfs"
                      or str(values.get("spark_event_log_dir", "")).startswith("hdfs://"))
    return stack.enabled_components(
        values.get("bigdata_profile", "full"),
        values.get("bigdata_components") or [],
        spark_event_log_hdfs=event_log_hdfs,
    )


def role_problem(role):
    """Why a role cannot be rendered yet (missing entry points), or None."""
    tasks = REPO / "roles" / role / "tasks"
    missing = [name for name in ("validate.yml", "apply.yml") if not (tasks / name).is_file()]
    if missing:
        return "roles/%s has no tasks/%s" % (role, " nor tasks/".join(missing))
    return None


def _run_render(inventory, extra, out_dir, components=None):
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    args = ["playbooks/render.yml", "-i", "inventories/%s" % inventory, "-e", "bigdata_render_dir=%s" % out_dir, *extra]
    if components is not None:
        args += ["-e", json.dumps({"bigdata_components": components})]
    # No cluster for a render, not even one named in the caller's environment.
    run = playbook.run(*args, env={"K8S_AUTH_KUBECONFIG": None})
    (out_dir / "render.log").write_text(_log(run))
    return run


def _log(run):
    return "$ %s\n%s\n%s" % (" ".join(run.command), run.stdout, run.stderr)


def _failure_excerpt(log):
    """The failed task and its message, from ansible-playbook's output."""
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("fatal:", "failed:", "[ERROR]")):
            start = max(0, index - 3)
            return "\n".join(lines[start:index + 25])
    return "\n".join(lines[-40:])


def _failed_role(run):
    """The role (short name) of the first task that failed, or None (a failure outside any role)."""
    for result in run.task_results():
        if result["status"] == "failed" and not result["ignore_errors"]:
            return result["role"] or None
    return None


def _render_variant(variant, shared=False):
    """{role: {'error': str|None, 'dir': Path}} for one variant (`shared`: another pytest-xdist
    worker of this run rendered it already; its output is reused when it succeeded)."""
    inventory, extra = VARIANTS[variant]
    enabled = enabled_components(inventory)
    base = OUTPUT / variant
    status = {}
    ready = []
    for role in enabled:
        problem = role_problem(role)
        if problem:
            status[role] = {"error": problem, "dir": base / role}
        else:
            ready.append(role)
    if not ready:
        return status
    reuse = (shared or os.environ.get("BIGDATA_RENDER_REUSE") == "1") and (base / "render.ok").exists()
    if not reuse:
        for stale in OUTPUT.glob(variant + "--*"):
            shutil.rmtree(stale)
        rc = _run_render(inventory, extra, base, None if len(ready) == len(enabled) else ready).returncode
        if rc == 0:
            (base / "render.ok").write_text("ok\n")
    if reuse or rc == 0:
        for role in ready:
            status[role] = {"error": None, "dir": base / role}
        return status
    # One role broke the run: render each role with its dependencies alone to see which.
    for role in ready:
        out = OUTPUT / (variant + "--" + role)
        run = _run_render(inventory, extra, out, [role])
        error = None
        if run.returncode != 0:
            failed_role = _failed_role(run)
            if failed_role in enabled and failed_role != role:
                error = "render of %s stopped in its dependency %s" % (role, failed_role)
            else:
                error = "render of %s failed:\n%s" % (role, _failure_excerpt(_log(run)))
        status[role] = {"error": error, "dir": out / role}
    return status


_RENDERED = None


def rendered():
    """{variant: {role: {'error', 'dir'}}}, rendered once per session (two variants at a time).

    Under pytest-xdist every worker collects these tests at once: the first renders (holding a lock
    on the output directory), the others wait and read what it wrote in this run (PYTEST_XDIST_TESTRUNUID).
    """
    global _RENDERED
    if _RENDERED is None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        marker = OUTPUT / "rendered-by-run"
        with open(OUTPUT / ".lock", "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            shared = bool(run_id) and marker.is_file() and marker.read_text() == run_id
            if not shared:
                marker.unlink(missing_ok=True)
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                results = dict(zip(VARIANTS, pool.map(lambda variant: _render_variant(variant, shared), VARIANTS)))
            if run_id and not shared:
                marker.write_text(run_id)
        _RENDERED = results
    return _RENDERED


def documents():
    """Every rendered document: (variant, role, file name, document)."""
    docs = []
    for variant, roles in rendered().items():
        for role, info in roles.items():
            if info["error"] or not info["dir"].is_dir():
                continue
            for path in sorted(info["dir"].glob("*.yaml")):
                for doc in yaml.safe_load_all(path.read_text()):
                    if doc:
                        docs.append((variant, role, path.name, doc))
    return docs


def doc_id(variant, role, doc, suffix=""):
    meta = doc.get("metadata") or {}
    return "%s/%s/%s/%s%s" % (variant, role, doc.get("kind", "?"), meta.get("name", "?"), suffix)
