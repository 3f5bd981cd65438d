"""Static analysis of the prod render with kube-score (github.com/zegl/kube-score), pinned.

kube-score grades every check of every object: CRITICAL (grade 1, "high" here), WARNING (grade 5),
OK (10); checks it cannot apply are "skipped". Every CRITICAL or WARNING finding on the prod render
must either be fixed in the templates or be accepted in tests/render/scanner-accepted.yml with its
check id, the object (Kind/name; a Job's content-hash suffix reads -<hash>), its severity and the
reason. The file must stay true: an acceptance that matches no finding (fixed since, or the severity
changed) fails as well.

The binary comes from tools/build_kube_score.sh (built from the Go module proxy once per version
into ~/.cache/bigdata-stack/kube-score/<version>/, nothing in the virtualenv).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from render_support import REPO, rendered

KUBE_SCORE_VERSION = "v1.20.0"
# The oldest Kubernetes minor the render tests validate against (test_render.KUBERNETES_VERSIONS).
KUBERNETES_VERSION = "v1.33"
ACCEPTED_FILE = REPO / "tests" / "render" / "scanner-accepted.yml"
SEVERITIES = {1: "CRITICAL", 5: "WARNING", 7: "ALMOST_OK"}
# Jobs are named <name>-<first 10 hex of the pod template's sha256> so a changed template makes a
# new Job; the suffix changes with every template edit, so acceptances name the Job without it.
JOB_HASH = re.compile(r"-[0-9a-f]{10}$")


@pytest.fixture(scope="module")
def kube_score():
    build = subprocess.run(["bash", str(REPO / "tools" / "build_kube_score.sh"), KUBE_SCORE_VERSION],
                           capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail("tools/build_kube_score.sh failed (exit %d):\n%s\n%s"
                    % (build.returncode, build.stdout, build.stderr))
    return build.stdout.strip().splitlines()[-1]


def object_key(kind, name):
    return "%s/%s" % (kind, JOB_HASH.sub("-<hash>", name) if kind == "Job" else name)


@pytest.fixture(scope="module")
def findings(kube_score):
    """{(check id, Kind/name): {'severity', 'comments'}} of the prod render."""
    roles = rendered()["prod"]
    broken = {role: info["error"] for role, info in roles.items() if info["error"]}
    if broken:
        pytest.fail("the prod render failed, nothing to scan: %s" % broken)
    files = sorted(str(path) for info in roles.values() for path in info["dir"].glob("*.yaml"))
    assert files, "the prod render wrote no manifests"
    scan = subprocess.run([kube_score, "score", "--output-format", "json", "--kubernetes-version",
                           KUBERNETES_VERSION, *files], capture_output=True, text=True, check=False)
    # Exit 1 means "findings"; anything else (or no JSON) is the scanner failing.
    if scan.returncode not in (0, 1) or not scan.stdout.startswith("["):
        pytest.fail("kube-score failed (exit %d):\n%s" % (scan.returncode, scan.stderr[-3000:]))
    found = {}
    for obj in json.loads(scan.stdout):
        key = object_key(obj["type_meta"]["kind"], obj["object_meta"]["name"])
        for check in obj["checks"]:
            if check["skipped"] or check["grade"] >= 10:
                continue
            comments = ["%s%s: %s" % ("(%s) " % c["path"] if c.get("path") else "", c.get("summary", ""),
                                      c.get("description", "")) for c in (check.get("comments") or [])]
            found[(check["check"]["id"], key)] = {
                "severity": SEVERITIES.get(check["grade"], "grade %s" % check["grade"]),
                "comments": comments}
    return found


def accepted():
    """{(check id, Kind/name): {'severity', 'reason'}} from tests/render/scanner-accepted.yml."""
    entries = yaml.safe_load(ACCEPTED_FILE.read_text()) or []
    result = {}
    for index, entry in enumerate(entries):
        missing = [k for k in ("check", "severity", "objects", "reason") if not entry.get(k)]
        assert not missing, "%s entry %d (%s) lacks %s" % (ACCEPTED_FILE.name, index, entry.get("check"), missing)
        for obj in entry["objects"]:
            key = (entry["check"], obj)
            assert key not in result, "%s accepts %s on %s twice" % (ACCEPTED_FILE.name, *key)
            result[key] = {"severity": entry["severity"], "reason": entry["reason"]}
    return result


def test_every_scanner_finding_is_fixed_or_accepted(findings):
    accepted_findings = accepted()
    open_findings = ["%s %s on %s:\n      %s" % (f["severity"], check, obj, "\n      ".join(f["comments"]))
                     for (check, obj), f in sorted(findings.items()) if (check, obj) not in accepted_findings]
    assert not open_findings, (
        "kube-score %s finds on the prod render what is neither fixed nor accepted in %s:\n  %s"
        % (KUBE_SCORE_VERSION, ACCEPTED_FILE.relative_to(REPO), "\n  ".join(open_findings)))


def test_every_acceptance_matches_a_finding(findings):
    stale = ["%s on %s (accepted as %s, found: %s)"
             % (check, obj, entry["severity"], findings[(check, obj)]["severity"]
                if (check, obj) in findings else "nothing")
             for (check, obj), entry in sorted(accepted().items())
             if findings.get((check, obj), {}).get("severity") != entry["severity"]]
    assert not stale, ("%s accepts what kube-score %s no longer finds on the prod render; remove or "
                       "correct these entries:\n  %s" % (ACCEPTED_FILE.relative_to(REPO), KUBE_SCORE_VERSION,
                                                         "\n  ".join(stale)))
