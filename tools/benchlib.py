"""What the benchmarks on the simulated cluster share: their command line and the cluster guard."""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))


def simulated_cluster(doc, rounds):
    """(parsed --rounds arguments, kubeconfig path) of BIGDATA_TEST_KUBECONFIG, once it is proven to be
    the simulated cluster (the tests' guard: a benchmark creates and deletes namespaces)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    kubeconfig = os.environ.get("BIGDATA_TEST_KUBECONFIG")
    if not kubeconfig or not os.path.isfile(kubeconfig):
        raise SystemExit("BIGDATA_TEST_KUBECONFIG=%r is not a kubeconfig: start the simulated cluster (make sim-up)"
                         % kubeconfig)
    guard(kubeconfig)
    return args, kubeconfig


def guard(kubeconfig):
    """Exit unless ``kubeconfig`` is a simulated cluster (the tests' guard)."""
    from kubernetes import config

    from conftest import _simulated_cluster_problem

    problem = _simulated_cluster_problem(config.new_client_from_config(config_file=kubeconfig))
    if problem:
        raise SystemExit("Refusing to benchmark against %s: %s." % (kubeconfig, problem))
