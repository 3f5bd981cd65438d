"""make test's units of work under pytest-xdist (tests/conftest.py): the shared simulated cluster's
tests are one unit, run one at a time, and so are the real daemons; every other module is a unit
of its own."""

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location(
    "tests_root_conftest", pathlib.Path(__file__).resolve().parents[1] / "conftest.py")
root_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(root_conftest)


def test_every_test_of_the_shared_cluster_is_one_unit():
    ids = ["tests/integration/test_faults_on_cluster.py::test_api_server_restart",
           "tests/integration/test_simcluster_lifecycle.py::test_bad_topology_fails_before_anything_starts[gpus]",
           "tests/validation/test_invalid_inventories.py::test_case[dev-bad.yml]"]
    assert {root_conftest.xdist_scope(nodeid) for nodeid in ids} == {"shared-simulated-cluster"}


def test_the_real_daemons_are_one_unit():
    # dev's Kafka binds its nodePort 30092 on this machine in more than one module.
    assert {root_conftest.xdist_scope("tests/daemons/test_kafka_daemons.py::test_stage[a::b]"),
            root_conftest.xdist_scope("tests/daemons/test_pipelines_on_daemons.py::test_stream")} == {"real-daemons"}


def test_other_modules_are_units_of_their_own():
    assert root_conftest.xdist_scope("tests/unit/plugins/modules/test_wait_ready.py::test_x") == \
        "unit/plugins/modules/test_wait_ready.py"
    # It starts simulated clusters of its own, beside the shared one.
    assert root_conftest.xdist_scope("tests/integration/test_process_runtime_on_cluster.py::test_sim_down") == \
        "integration/test_process_runtime_on_cluster.py"
    assert root_conftest.xdist_scope("tests/integration/test_spark_on_process_runtime.py::test_spark_pi") == \
        "integration/test_spark_on_process_runtime.py"
    # Molecule reshapes the nodes of a cluster of its own, so it runs beside the shared cluster's unit.
    assert root_conftest.xdist_scope("tests/molecule/test_molecule.py::test_molecule_scenario[prod]") == \
        "molecule/test_molecule.py"


def test_long_units_are_handed_out_first_and_modules_stay_whole():
    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    class WorkerConfig:
        workerinput = {}

    ids = ["tests/daemons/test_kafka_daemons.py::test_a", "tests/integration/test_apply_diff.py::test_b",
           "tests/molecule/test_molecule.py::test_molecule_scenario[default]",
           "tests/molecule/test_molecule.py::test_molecule_scenario[prod]",
           "tests/render/test_schema.py::test_c", "tests/render/test_schema.py::test_d",
           "tests/unit/test_xdist_scope.py::test_e", "tests/validation/test_invalid_inventories.py::test_f"]
    items = [Item(nodeid) for nodeid in ids]
    root_conftest.pytest_collection_modifyitems(WorkerConfig(), items)
    assert [item.nodeid for item in items] == [ids[1], ids[7], ids[0], ids[2], ids[3], ids[4], ids[5], ids[6]]
    # Without xdist (no workerinput), the order is pytest's own.
    items = [Item(nodeid) for nodeid in ids]
    root_conftest.pytest_collection_modifyitems(object(), items)
    assert [item.nodeid for item in items] == ids
