# -*- coding: utf-8 -*-
# Copyright: bigdata.stack contributors
# Apache License 2.0 (see LICENSE)
"""What a user of the collection receives: the built archive, its licence, its filter docs, and
what an execution environment (AWX, Automation Platform) installs for it.

The archive is built once with `ansible-galaxy collection build` and read back. The execution
environment is checked with ansible-builder as far as this machine allows: there is no container
engine here, so no image is built. Instead the two steps of a build that decide its content run
for real: `ansible-builder introspect` (the script the builder stage of the image runs over every
installed collection) and `ansible-builder create` (the build context and its Containerfile).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import textwrap

import pytest
import yaml
from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
# The collections the `ansible` package bundles: the versions this repository is tested with.
BUNDLED = pathlib.Path(importlib.import_module("ansible_collections.kubernetes.core").__path__[0]).parents[1]
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())


def _run(*args, cwd=REPO, env=None):
    """Run a command of the virtualenv with the repository's ansible.cfg (env overrides); fail on error."""
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    environment.update(env or {})
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False,
                          env=environment)
    assert proc.returncode == 0, "%s failed (rc=%s):\n%s\n%s" % (
        " ".join(str(a) for a in args), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The collection as `ansible-galaxy collection build` makes it."""
    out = tmp_path_factory.mktemp("build")
    _run(VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO)
    return out / ("%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"]))


@pytest.fixture(scope="module")
def members(archive):
    with tarfile.open(archive) as tar:
        return {m.name: m for m in tar.getmembers()}


def _top(name):
    return name.split("/", 1)[0]


def test_the_license_file_is_the_one_galaxy_yml_and_the_source_headers_name():
    assert GALAXY["license"] == ["Apache-2.0"]
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    headers = [p for p in REPO.glob("plugins/**/*.py") if "see LICENSE" in p.read_text()]
    assert headers, "the plugins' headers point to LICENSE"


def test_the_archive_leaves_out_tests_ci_and_local_tooling(members):
    tops = {_top(name) for name in members}
    left_out = {"tests", ".ci", "tools", "molecule", "Makefile", "requirements.txt", "pyproject.toml",
                ".venv", ".ansible", ".cache", ".pytest_cache", ".simcluster", "rendered", "logs",
                "collections", "ansible.cfg", "inventories", ".gitignore", ".ansible-lint", ".yamllint"}
    assert not tops & left_out
    assert not [name for name in members if "__pycache__" in name or name.endswith((".pyc", ".tar.gz"))]
    # collections/ansible_collections/bigdata/stack links back to the repository root: installed, it
    # would be a loop. No link of any kind belongs in the archive.
    assert not [name for name, m in members.items() if m.issym() or m.islnk()]


def test_the_archive_keeps_what_users_run(members):
    assert {"LICENSE", "README.md", "MANIFEST.json", "FILES.json", "meta/runtime.yml",
            "meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt"} <= set(members)
    # Every role and playbook, the simulated cluster's included: rehearsing prod's topology is a feature.
    for role in sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir()):
        assert "roles/%s/tasks/main.yml" % role in members, role
    assert {"roles/simcluster/tasks/main.yml", "roles/simcluster/files/build.sh",
            "playbooks/simcluster.yml", "playbooks/site.yml", "playbooks/render.yml"} <= set(members)
    for path in REPO.glob("plugins/**/*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert str(path.relative_to(REPO)) in members, path


def test_galaxy_tags_say_what_the_collection_deploys():
    from ansible_collections.bigdata.stack.plugins.filter.stack import CATALOG

    tags = GALAXY["tags"]
    # Galaxy's rule for a tag: lower-case letters and digits (underscores), at most 64 characters.
    assert all(re.fullmatch(r"[a-z0-9_]{1,64}", tag) for tag in tags), tags
    # Every component the collection deploys (platform and the sample pipelines are not products
    # anyone searches for), where it deploys them, and the one Automation Hub category ansible-lint
    # requires (galaxy[tags]); nothing else.
    deployed = set(CATALOG) - {"platform", "pipelines"}
    assert deployed <= set(tags), "components without a tag: %s" % (deployed - set(tags))
    assert set(tags) - deployed == {"kubernetes", "infrastructure"}


def test_galaxy_dependencies_cover_every_collection_the_content_calls():
    used = set()
    for path in list(REPO.glob("roles/*/tasks/*.yml")) + list(REPO.glob("playbooks/*.yml")):
        used |= set(re.findall(r"^\s*-?\s*(kubernetes\.core|community\.[a-z_]+)\.[a-z_0-9]+:", path.read_text(), re.M))
    for path in REPO.glob("plugins/**/*.py"):
        used |= set(re.findall(r"ansible_collections\.(kubernetes\.core|community\.[a-z_]+)\.", path.read_text()))
    assert used, "roles and plugins call kubernetes.core and community.crypto"
    assert used <= set(GALAXY["dependencies"]), "not in galaxy.yml dependencies: %s" % (used - set(GALAXY["dependencies"]))


# ---- filter documentation -------------------------------------------------------------------

def _exported_filters():
    names = {}
    for path in sorted((REPO / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module("ansible_collections.bigdata.stack.plugins.filter." + path.stem)
        for name in module.FilterModule().filters():
            names[name] = path.name
    return names


def test_every_filter_is_documented_by_ansible_doc():
    """All bigdata.stack filters, whoever wrote them: ansible-doc lists none as UNDOCUMENTED."""
    exported = _exported_filters()
    listing = json.loads(_run(VENV_BIN / "ansible-doc", "-t", "filter", "-l", "bigdata.stack", "-j").stdout)
    assert sorted(listing) == sorted("bigdata.stack." + name for name in exported)
    undocumented = sorted("%s (%s)" % (name, exported[name.split(".")[-1]])
                          for name, short in listing.items() if short == "UNDOCUMENTED")
    assert not undocumented, "filters without a plugins/filter/<name>.yml: %s" % ", ".join(undocumented)
    # The listing reads only short_description: the full documentation of each must parse too.
    docs = json.loads(_run(VENV_BIN / "ansible-doc", "-t", "filter", "-j", *sorted(listing)).stdout)
    for name in sorted(listing):
        assert docs[name]["doc"]["name"] == name.split(".")[-1], name
        assert docs[name]["examples"].strip(), "%s has no EXAMPLES" % name
        assert "_value" in (docs[name]["return"] or {}), "%s has no RETURN _value" % name


def test_no_filter_documentation_without_its_filter():
    sidecars = {p.stem for p in (REPO / "plugins" / "filter").glob("*.yml")}
    assert sidecars <= set(_exported_filters()), "docs of filters that do not exist: %s" % (
        sidecars - set(_exported_filters()))


# ---- execution environment -------------------------------------------------------------------

def _ee_meta():
    return yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())


def _requirements(path):
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def _bindep(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_the_ee_metadata_is_an_ansible_builder_v3_file_naming_files_from_the_collection_root():
    from ansible_builder.ee_schema import validate_schema

    meta = _ee_meta()
    validate_schema(meta)
    assert meta["version"] == 3
    # ansible-builder resolves a collection's files from the collection root (introspect.py).
    assert meta["dependencies"] == {"python": "meta/ee-requirements.txt", "system": "meta/ee-bindep.txt"}


def _third_party_imports():
    """Top-level modules the plugins import that are neither the standard library nor Ansible's."""
    found = set()
    for path in REPO.glob("plugins/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("ansible", "ansible_collections")}


def _closure(names):
    """Distribution names (normalised) of `names` and of everything they require, transitively."""
    seen, pending = set(), [n for n in names]
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending.extend(Requirement(r).name for r in requires if "extra ==" not in r)
    return seen


def test_the_ee_python_requirements_are_what_the_plugins_import_and_run():
    listed = _requirements(REPO / "meta" / "ee-requirements.txt")
    names = {re.sub(r"[-_.]+", "-", r.name).lower() for r in listed}
    # Every module the plugins import comes from a listed package, from one it requires, or
    # from ansible-core, which every execution environment has.
    provided = _closure(names | {"ansible-core"})
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports()):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        if not dists & provided:
            missing[module] = sorted(dists)
    assert not missing, "imported by plugins/ but not in meta/ee-requirements.txt: %s" % missing
    # The development tools requirements.txt pins stay out.
    assert not names & {"pytest", "molecule", "ansible-lint", "kubernetes-validate", "ansible-builder",
                        "ansible-runner", "ansible", "ansible-core"}


def test_the_ee_spark_client_matches_the_spark_image_the_role_deploys():
    # spark_submit refuses a spark-submit whose major.minor differs from the image's.
    tag = yaml.safe_load((REPO / "roles" / "spark" / "defaults" / "main.yml").read_text())["spark_image_tag"]
    pyspark = [r for r in _requirements(REPO / "meta" / "ee-requirements.txt") if r.name == "pyspark"]
    assert pyspark and pyspark[0].specifier.contains(tag), (pyspark, tag)
    major, minor = tag.split(".")[:2]
    assert not pyspark[0].specifier.contains("%s.%d.0" % (major, int(minor) + 1))


def test_the_ee_system_packages_bring_java_17_for_spark_submit():
    assert sorted(_bindep(REPO / "meta" / "ee-bindep.txt")) == [
        "java-17-openjdk-headless [platform:rpm]", "openjdk-17-jre-headless [platform:dpkg]"]


@pytest.fixture(scope="module")
def installed(archive, tmp_path_factory):
    """A collections directory as the image's galaxy stage leaves it: bigdata.stack from its archive,
    its dependencies as the `ansible` package bundles them."""
    root = tmp_path_factory.mktemp("ee-collections")
    # --force: the checkout's ansible.cfg finds bigdata.stack installed already (collections/).
    _run(VENV_BIN / "ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", root, archive)
    for dependency in GALAXY["dependencies"]:
        namespace, name = dependency.split(".")
        (root / "ansible_collections" / namespace).mkdir(exist_ok=True)
        (root / "ansible_collections" / namespace / name).symlink_to(BUNDLED / namespace / name)
    return root


def test_ansible_builder_introspect_finds_the_collections_requirements(installed, tmp_path):
    _run(VENV_BIN / "ansible-builder", "introspect", installed,
         "--write-pip", tmp_path / "pip.txt", "--write-bindep", tmp_path / "bindep.txt")
    pip_lines = (tmp_path / "pip.txt").read_text().splitlines()
    bindep_lines = (tmp_path / "bindep.txt").read_text().splitlines()
    ours = [str(r) for r in _requirements(REPO / "meta" / "ee-requirements.txt")]
    for requirement in ours:
        assert "%s  # from collection bigdata.stack" % requirement in pip_lines, pip_lines
    for package in _bindep(REPO / "meta" / "ee-bindep.txt"):
        assert "%s  # from collection bigdata.stack" % package in bindep_lines, bindep_lines
    # What the dependencies bring with them: the Kubernetes client, and cryptography for the
    # certificates of roles/common/tasks/tls.yml.
    assert any(line.startswith("kubernetes") and "kubernetes.core" in line for line in pip_lines), pip_lines
    assert any("cryptography" in line and "community.crypto" in line for line in bindep_lines + pip_lines)


def test_ansible_builder_create_makes_a_context_that_installs_the_collection(archive, tmp_path):
    """An EE definition that adds bigdata.stack, as a user writes it; the image is not built here."""
    (tmp_path / archive.name).write_bytes(archive.read_bytes())
    definition = tmp_path / "execution-environment.yml"
    definition.write_text(textwrap.dedent("""\
        version: 3
        images:
          base_image:
            name: quay.io/centos/centos:stream9
        dependencies:
          python_interpreter:
            package_system: python3.11
            python_path: /usr/bin/python3.11
          ansible_core:
            package_pip: ansible-core>=2.17
          ansible_runner:
            package_pip: ansible-runner
          galaxy:
            collections:
              - name: /build/collections/%(archive)s
                type: file
        additional_build_files:
          - src: %(archive)s
            dest: collections
        additional_build_steps:
          prepend_galaxy:
            - COPY _build/collections/ /build/collections/
        """) % {"archive": archive.name})
    context = tmp_path / "context"
    _run(VENV_BIN / "ansible-builder", "create", "-f", definition, "-c", context,
         "--output-filename", "Containerfile", cwd=tmp_path)
    containerfile = (context / "Containerfile").read_text()
    assert (context / "_build" / "collections" / archive.name).read_bytes() == archive.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy == {"collections": [{"name": "/build/collections/" + archive.name, "type": "file"}]}
    # The image installs the collection (and, from Galaxy, its dependencies), then the builder
    # stage runs introspect.py over them: the step the introspect test above runs here.
    install = containerfile.index("ansible-galaxy collection install")
    introspect = containerfile.index("/output/scripts/introspect.py introspect")
    assert install < introspect < containerfile.index("/output/scripts/assemble")
    assert (context / "_build" / "scripts" / "introspect.py").is_file()
