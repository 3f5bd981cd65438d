"""Fixtures of the pipeline logic tests: the apps' module on the path, one local SparkSession.

The apps live in roles/pipelines/files/apps (shipped to the cluster as a ConfigMap), the
Elasticsearch stand-in in tests/daemons/pipeline_support.py; both directories go on sys.path.
"""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(REPO, "roles", "pipelines", "files", "apps")
for path in (APPS, os.path.join(REPO, "tests", "daemons")):
    if path not in sys.path:
        sys.path.insert(0, path)

# The apps directory is shipped file by file: imported here without leaving __pycache__ in it.
_write_bytecode = sys.dont_write_bytecode
sys.dont_write_bytecode = True
import bigdata_pipelines  # noqa: E402,F401
import events_batch  # noqa: E402,F401
import events_generator  # noqa: E402,F401
import events_stream  # noqa: E402,F401
import hdfs_loader  # noqa: E402,F401
sys.dont_write_bytecode = _write_bytecode


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local SparkSession (one core, one shuffle partition) built like the apps build theirs;
    stopped after the module, so it holds no memory while the rest of `pytest tests` runs."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    import bigdata_pipelines as bp

    session = (SparkSession.builder.master("local[1]").appName("pipeline-logic-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
               .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
               .getOrCreate())
    session.sparkContext.setLogLevel("WARN")
    # What bp.spark_session() sets; the apps' own sessions are built in the daemon tests.
    session.conf.set("spark.sql.session.timeZone", "UTC")
    assert bp.spark_session("pipeline-logic-tests") is session
    yield session
    session.stop()


@pytest.fixture
def es():
    """The Elasticsearch stand-in (tests/daemons/pipeline_support.py), plain HTTP, no auth."""
    from pipeline_support import EsStandIn

    server = EsStandIn()
    yield server
    server.close()
