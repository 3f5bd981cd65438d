"""Fixtures of the real-daemon tests: jars from Maven Central, manifests rendered by the roles.

These tests need no cluster. They need `java` (17+) and, on the first run only, `mvn` with access
to Maven Central (tools/daemons/fetch.py caches the jars under $BIGDATA_CACHE_DIR/daemons).
"""

import json
import os
import sys
import time

import playbook
import pytest
import yaml

from daemon_support import DaemonGroup, fetch, running_mark, stop_leftovers

RENDER_PLAYBOOK = os.path.join(playbook.REPO, "playbooks", "render.yml")


def _jars(component):
    started = time.monotonic()
    try:
        classpath = fetch.classpath(component)
    except fetch.FetchError as exc:
        pytest.fail("cannot get the %s jars: %s" % (component, exc))
    sys.stderr.write("%s %s jars ready in %.1f s\n"
                     % (component, fetch.role_version(component), time.monotonic() - started))
    return classpath


@pytest.fixture(scope="session")
def kafka_classpath():
    """Class path of Kafka at the version of kafka_image_tag (roles/kafka/defaults/main.yml)."""
    return _jars("kafka")


@pytest.fixture(scope="session")
def hadoop_classpath():
    """Class path of Hadoop at the version of hdfs_image_tag (roles/hdfs/defaults/main.yml)."""
    return _jars("hadoop")


@pytest.fixture(scope="session")
def inventory_vars():
    """inventory_vars(env): the variables the inventory gives localhost (not templated)."""
    cache = {}

    def get(env):
        if env not in cache:
            run = playbook.run("-i", "inventories/" + env, "--host", "localhost", program="ansible-inventory",
                               timeout=120)
            assert run.returncode == 0, run.report()
            cache[env] = json.loads(run.stdout)
        return cache[env]
    return get


# The components these tests boot or check; one render per inventory serves them all. monitoring,
# as in the inventories' full profile: it turns the components' metrics on (the JMX exporter agent,
# Hadoop's /prom, Spark's PrometheusServlet, the Elasticsearch exporter) and renders the scrape
# jobs tests/daemons scrape them with.
DAEMON_COMPONENTS = ("kafka", "hdfs", "spark", "elasticsearch", "monitoring")


def _render(out, env, components):
    extra = dict(bigdata_render_dir=out, bigdata_components=list(components))
    extra_file = os.path.join(out, "extra-vars.json")
    with open(extra_file, "w", encoding="utf-8") as handle:
        json.dump(extra, handle)
    return playbook.run(RENDER_PLAYBOOK, "-i", "inventories/" + env, "-e", "@" + extra_file, timeout=600)


def _load(component_dir):
    docs = []
    for name in sorted(os.listdir(component_dir)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(component_dir, name), encoding="utf-8") as handle:
                docs.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return docs


@pytest.fixture(scope="session")
def render(tmp_path_factory):
    """render(env, component) -> the component's objects as the role renders them for `env`.

    Uses the shared playbooks/render.yml (what site.yml would apply, written to files) with
    bigdata_components set to the components booted here, once per inventory; if that fails,
    the one component asked for is rendered alone, so a broken role fails only its own tests.
    """
    outputs = {}

    def do_render(env, component):
        if env not in outputs:
            out = str(tmp_path_factory.mktemp("render-%s" % env))
            outputs[env] = (out, _render(out, env, DAEMON_COMPONENTS))
        out, run = outputs[env]
        if run.returncode != 0:
            key = (env, component)
            if key not in outputs:
                alone = str(tmp_path_factory.mktemp("render-%s-%s" % (env, component)))
                outputs[key] = (alone, _render(alone, env, (component,)))
            out, run = outputs[key]
        assert run.returncode == 0, "rendering %s for %s failed:\n%s" % (component, env, run.report())
        docs = _load(os.path.join(out, component))
        assert docs, "rendering %s for %s produced nothing in %s" % (component, env, out)
        return docs
    return do_render


@pytest.fixture
def daemons():
    """Start daemons through this list's `add`; all are stopped, newest first, at teardown."""
    group = DaemonGroup()
    yield group
    group.stop_all()


@pytest.fixture(scope="module", autouse=True)
def no_daemon_outlives_its_module():
    """A daemon still running when its module ends was started outside every fixture's group (a
    restart the test did by hand): stop it and fail the module, naming it. (Three such brokers once
    spun for the rest of a CI run and pushed it past its time limit.)"""
    mark = running_mark()
    yield
    leaked = stop_leftovers(mark)
    assert not leaked, "daemons still running after their module (stopped now): %s" % leaked
