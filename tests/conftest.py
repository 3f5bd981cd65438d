"""Fixtures shared by the tests that talk to a cluster.

Every such test runs against the simulated cluster that `make sim-up` started, named by
BIGDATA_TEST_KUBECONFIG. Before any test touches it, the fixture proves it is that cluster (the
marker ConfigMap the simcluster role writes, kwok-managed nodes only, a loopback API server), so a
test can never act on some other context by accident. Missing or foreign cluster: the tests fail,
they are not skipped.
"""

import collections
import os
import pathlib
import uuid
from urllib.parse import urlparse

import pytest

# Directories whose tests use the shared simulated cluster (BIGDATA_TEST_KUBECONFIG). (tests/molecule
# starts a cluster of its own: its scenarios reshape the nodes.)
SHARED_CLUSTER_DIRS = ("integration", "validation")
# Modules there that start simulated clusters of their own and never touch the shared one.
OWN_CLUSTER_MODULES = ("test_process_runtime_on_cluster.py", "test_spark_on_process_runtime.py")


def xdist_scope(nodeid):
    """The unit of work of a test under `make test`'s pytest-xdist workers (`-n 2`).

    The tests of the shared simulated cluster run one at a time, in one unit, as they would
    without xdist: they deploy stacks into it, reshape its nodes, restart its API server. The real
    daemons are one unit too: dev's Kafka binds its nodePort (30092) on this machine, in more than
    one module. Every other module is a unit of its own, so its module fixtures start once on one
    worker; units run side by side.
    """
    relative = pathlib.PurePosixPath(nodeid.split("::", 1)[0]).relative_to("tests")
    if relative.parts[0] in SHARED_CLUSTER_DIRS and relative.name not in OWN_CLUSTER_MODULES:
        return "shared-simulated-cluster"
    if relative.parts[0] == "daemons":
        return "real-daemons"
    return relative.as_posix()


# The units that take longest, longest first (the "time per unit of work" summary of a `make test`
# run): they start first, so that no long unit starts last and runs on while the other worker idles.
# Every other unit follows in collection order.
LONG_UNITS = ("shared-simulated-cluster", "real-daemons", "molecule/test_molecule.py",
              "integration/test_process_runtime_on_cluster.py", "integration/test_spark_on_process_runtime.py")


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None):
        # xdist's load-scope scheduling hands out units in collection order with this off, instead of
        # by their number of tests (Molecule's two tests would come last).
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """On xdist's workers: the tests of LONG_UNITS first (a stable sort: modules stay whole)."""
    if hasattr(config, "workerinput"):
        rank = {unit: index for index, unit in enumerate(LONG_UNITS)}
        items.sort(key=lambda item: rank.get(xdist_scope(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: without it (-p no:xdist), not called
def pytest_xdist_make_scheduler(config, log):
    """xdist's load-scope scheduling with the units of xdist_scope(). (Its `loadgroup` mode renames
    test ids, which pytest 9 no longer allows: the groups were silently ignored.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SharedClusterScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_scope(nodeid)
    return SharedClusterScheduling(config, log)


# Seconds per unit of work and the worker that ran it, for the summary below.
_UNIT_SECONDS = collections.Counter()
_UNIT_WORKER = {}


def pytest_runtest_logreport(report):
    unit = xdist_scope(report.nodeid)
    _UNIT_SECONDS[unit] += report.duration
    node = getattr(report, "node", None)  # set by pytest-xdist on the reports workers send back
    if node is not None:
        _UNIT_WORKER[unit] = node.gateway.id


def pytest_terminal_summary(terminalreporter):
    """Under xdist: how long each unit of xdist_scope() took and on which worker, so that the long
    pole of `make test` (what to split next) is read from the run, not guessed."""
    if not _UNIT_WORKER:
        return
    terminalreporter.section("time per unit of work (tests/conftest.py xdist_scope)")
    per_worker = collections.Counter()
    for unit, seconds in _UNIT_SECONDS.items():
        per_worker[_UNIT_WORKER.get(unit, "?")] += seconds
    for worker, seconds in sorted(per_worker.items()):
        terminalreporter.write_line("%s: %.0f s of tests" % (worker, seconds))
    for unit, seconds in _UNIT_SECONDS.most_common(12):
        terminalreporter.write_line("%7.0f s  %-4s %s" % (seconds, _UNIT_WORKER.get(unit, "?"), unit))


def _simulated_cluster_problem(api_client):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    host = urlparse(api_client.configuration.host).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        return "its API server %s is not on this machine" % api_client.configuration.host
    core = client.CoreV1Api(api_client)
    try:
        core.read_namespaced_config_map("bigdata-simcluster", "kube-system")
    except ApiException as exc:
        return "it has no kube-system/bigdata-simcluster marker (HTTP %s)" % exc.status
    nodes = core.list_node().items
    real = [n.metadata.name for n in nodes
            if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") != "fake"]
    if not nodes or real:
        return "its nodes are not all kwok nodes (non-kwok: %s)" % real
    return None


@pytest.fixture(scope="session")
def sim_kubeconfig():
    """Path of the simulated cluster's kubeconfig, after proving it is the simulated cluster."""
    path = os.environ.get("BIGDATA_TEST_KUBECONFIG")
    if not path or not os.path.isfile(path):
        pytest.fail("BIGDATA_TEST_KUBECONFIG=%r is not a kubeconfig file: start the simulated "
                    "cluster with `make sim-up` (make test does it)" % path)
    from kubernetes import config
    api_client = config.new_client_from_config(config_file=path)
    problem = _simulated_cluster_problem(api_client)
    if problem:
        pytest.fail("Refusing to test against %s: %s." % (path, problem))
    return path


@pytest.fixture(scope="session")
def api_client(sim_kubeconfig):
    from kubernetes import config
    return config.new_client_from_config(config_file=sim_kubeconfig)


@pytest.fixture
def restricted_namespace(api_client):
    """A fresh namespace that enforces Pod Security `restricted`; deleted afterwards."""
    from kubernetes import client
    name = "test-" + uuid.uuid4().hex[:8]
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"pod-security.kubernetes.io/enforce": "restricted",
                           "pod-security.kubernetes.io/enforce-version": "latest"})))
    yield name
    core.delete_namespace(name)
