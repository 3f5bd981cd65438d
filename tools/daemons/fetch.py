#!/usr/bin/env python3
"""Fetch the jars that boot real Kafka and HDFS daemons on this machine, from Maven Central.

The version of each component is the image tag its role deploys (roles/kafka/defaults/main.yml
`kafka_image_tag`, roles/hdfs/defaults/main.yml `hdfs_image_tag`): the official apache/kafka and
apache/hadoop images are tagged with the release they contain, so the daemons the tests boot run
the same code as the pods. Nothing else names a version.

The jars land in ${BIGDATA_CACHE_DIR:-~/.cache/bigdata-stack}/daemons/<component>-<version>/lib,
resolved by `mvn dependency:copy-dependencies` from tools/daemons/<component>/pom.xml with a Maven
repository inside the cache (the user's ~/.m2 is left alone). Resources the distributions ship
beside the jars (Hadoop's webapps/) are taken out of *-tests.jar artifacts into classes/, which
goes on the class path first; the test classes themselves are dropped. A directory is complete
once its `.complete` marker names the pom it came from, so the second run does nothing, and
editing a pom fetches again.

    tools/daemons/fetch.py kafka hadoop     # fetch (or find) both; prints their directories
    tools/daemons/fetch.py --version kafka  # print the version the role pins
"""

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Pinned, so a fetch resolves the same way on every machine (a bare `dependency:` prefix takes
# whatever version the local Maven's defaults name).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# Entries of *-tests.jar artifacts kept (under classes/): the web applications of the daemons.
RESOURCE_PREFIXES = ("webapps/",)

# component -> (role whose defaults pin the version, variable holding the image tag)
COMPONENTS = {
    "kafka": ("kafka", "kafka_image_tag"),
    "hadoop": ("hdfs", "hdfs_image_tag"),
}


class FetchError(RuntimeError):
    pass


def cache_root():
    base = os.environ.get("BIGDATA_CACHE_DIR") or os.path.expanduser("~/.cache/bigdata-stack")
    return os.path.join(base, "daemons")


def role_version(component):
    """The Maven version of `component`: the image tag pinned in its role's defaults."""
    import yaml

    role, key = COMPONENTS[component]
    path = os.path.join(REPO, "roles", role, "defaults", "main.yml")
    try:
        with open(path, encoding="utf-8") as handle:
            defaults = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise FetchError("%s does not exist: the %s role pins the %s version" % (path, role, component))
    tag = str(defaults.get(key, ""))
    # An image tag may carry a suffix (4.1.0-rc1, 3.4.1-java17): the release is its x.y.z head.
    match = re.match(r"^(\d+\.\d+\.\d+)", tag)
    if not match:
        raise FetchError("%s: %s=%r is not an x.y.z release tag, so no Maven artifact matches it; "
                         "pin an exact release" % (path, key, tag))
    return match.group(1)


def _pom(component):
    return os.path.join(HERE, component, "pom.xml")


def _pom_digest(component, version):
    """What a fetched directory came from: the pom, the version and how it was resolved."""
    digest = hashlib.sha256()
    with open(_pom(component), "rb") as handle:
        digest.update(handle.read())
    digest.update(("%s %s %s" % (version, DEPENDENCY_PLUGIN, RESOURCE_PREFIXES)).encode())
    return digest.hexdigest()


def home_dir(component, version=None):
    version = version or role_version(component)
    return os.path.join(cache_root(), "%s-%s" % (component, version))


def _extract_resources(staging):
    """Move RESOURCE_PREFIXES entries of lib/*-tests.jar into classes/, drop those jars."""
    lib = os.path.join(staging, "lib")
    classes = os.path.join(staging, "classes")
    for name in sorted(os.listdir(lib)):
        if not name.endswith("-tests.jar"):
            continue
        with zipfile.ZipFile(os.path.join(lib, name)) as jar:
            members = [m for m in jar.namelist() if m.startswith(RESOURCE_PREFIXES)]
            jar.extractall(classes, members)
        os.remove(os.path.join(lib, name))


def ensure(component, version=None, log=sys.stderr):
    """Return the home of `component` (lib/, maybe classes/), fetching it unless complete."""
    if component not in COMPONENTS:
        raise FetchError("unknown component %r (known: %s)" % (component, ", ".join(COMPONENTS)))
    version = version or role_version(component)
    home = home_dir(component, version)
    marker = os.path.join(home, ".complete")
    digest = _pom_digest(component, version)
    os.makedirs(cache_root(), exist_ok=True)
    # Concurrent test runs share the cache: one fetches, the others wait and reuse.
    with open(os.path.join(cache_root(), ".%s-%s.lock" % (component, version)), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(marker) and open(marker, encoding="utf-8").read().strip() == digest:
            return home
        mvn = shutil.which("mvn")
        if not mvn:
            raise FetchError("mvn is not on PATH: install Maven (apt-get install maven) to fetch the "
                             "%s %s jars from Maven Central" % (component, version))
        staging = home + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-B", "-q", "-f", _pom(component),
               "-Dmaven.repo.local=" + os.path.join(cache_root(), "m2"),
               "-D%s.version=%s" % (component, version),
               DEPENDENCY_PLUGIN + ":copy-dependencies", "-DincludeScope=runtime",
               "-DoutputDirectory=" + os.path.join(staging, "lib")]
        started = time.monotonic()
        log.write("fetching %s %s jars from Maven Central into %s\n" % (component, version, home))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise FetchError("%s failed (rc=%s):\n%s\n%s" % (
                " ".join(cmd), proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
        _extract_resources(staging)
        with open(os.path.join(staging, ".complete"), "w", encoding="utf-8") as handle:
            handle.write(digest + "\n")
        shutil.rmtree(home, ignore_errors=True)
        os.rename(staging, home)
        log.write("fetched %s %s: %d jars in %.1f s\n" % (
            component, version, len(os.listdir(os.path.join(home, "lib"))),
            time.monotonic() - started))
    return home


def classpath(component, version=None):
    """Class path of `component`: classes/ (if any), then every jar (fetched first when needed)."""
    home = ensure(component, version)
    lib = os.path.join(home, "lib")
    entries = [os.path.join(home, "classes")] if os.path.isdir(os.path.join(home, "classes")) else []
    entries += sorted(os.path.join(lib, name) for name in os.listdir(lib) if name.endswith(".jar"))
    return os.pathsep.join(entries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("components", nargs="+", choices=sorted(COMPONENTS))
    parser.add_argument("--version", action="store_true",
                        help="print the version each role pins instead of fetching")
    parser.add_argument("--classpath", action="store_true",
                        help="print the class path instead of the directory")
    args = parser.parse_args(argv)
    try:
        for component in args.components:
            if args.version:
                print(role_version(component))
            elif args.classpath:
                print(classpath(component))
            else:
                print(ensure(component))
    except FetchError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
