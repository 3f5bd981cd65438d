#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection's plugins with only a package index reachable.
#
# What stands in the way, and what this script does about it:
#   * ansible-test runs each sanity test in its own virtualenv (~/.ansible/test/venv) and seeds pip
#     there with a get-pip bootstrap script from ci-files.testing.ansible.com, which is unreachable.
#     The script downloads the same pip wheel from the package index (PyPI, or PIP_INDEX_URL) and
#     saves, where ansible-test looks for its cached bootstrap script, a stand-in that installs pip
#     by running pip from that wheel. Everything else ansible-test installs (the pinned pylint,
#     pycodestyle, yamllint, voluptuous, antsibull-docs-parser, ...) comes from the index as usual.
#   * ansible-test derives the collection from the working directory, which resolves symlinks, and
#     puts one collection root on the path. The script builds a private root holding bigdata.stack
#     (a symlink to this checkout) and kubernetes.core (a symlink to the copy in .venv) and points
#     ANSIBLE_TEST_CONTENT_ROOT at it.
# Re-running is cheap: the wheel, the stand-in and ansible-test's virtualenvs are reused.
#
# Usage: tools/sanity.sh [ansible-test sanity options and targets]   (default target: plugins/)
#   e.g. tools/sanity.sh --test validate-modules plugins/modules/wait_ready.py
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${ROOT}/.venv/bin/python"
CACHE="${BIGDATA_SANITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bigdata-stack/sanity}"
TREE="${CACHE}/collections"

[ -x "${PY}" ] || { echo "sanity.sh: ${PY} not found; create the project virtualenv first" >&2; exit 1; }

python_version="$("${PY}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
pip_version="$("${PY}" - "${python_version}" <<'EOF'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
EOF
)"
kubernetes_core="$("${PY}" -c 'import ansible_collections.kubernetes.core as k; print(list(k.__path__)[0])')"

# 1. pip for ansible-test's virtualenvs, from the package index.
wheel_dir="${CACHE}/wheels"
wheel="$(ls "${wheel_dir}"/pip-"${pip_version}"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "${wheel}" ]; then
    "${PY}" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest "${wheel_dir}" "pip==${pip_version}"
    wheel="$(ls "${wheel_dir}"/pip-"${pip_version}"-*.whl | head -n1)"
fi

bootstrap="${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"
marker="# bigdata.stack tools/sanity.sh stand-in for get-pip.py"
if [ ! -f "${bootstrap}" ] || grep -q "^${marker}" "${bootstrap}"; then
    mkdir -p "$(dirname "${bootstrap}")"
    cat > "${bootstrap}" <<EOF
${marker}
# ansible-test runs this as get-pip.py: "python get_pip.py pip==X [pip options] [--no-setuptools] [--no-wheel]".
# It installs the requested packages with pip run straight from its wheel (downloaded from the package index).
import sys

sys.path.insert(0, "${wheel}")
from pip._internal.cli.main import main  # noqa: E402

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade"] + args))
EOF
fi

# 2. A collection root with bigdata.stack and its dependency kubernetes.core.
mkdir -p "${TREE}/ansible_collections/bigdata" "${TREE}/ansible_collections/kubernetes"
ln -sfn "${ROOT}" "${TREE}/ansible_collections/bigdata/stack"
ln -sfn "${kubernetes_core}" "${TREE}/ansible_collections/kubernetes/core"

# 3. The tests.
if [ "$#" -eq 0 ]; then
    set -- plugins/
fi
export ANSIBLE_TEST_CONTENT_ROOT="${TREE}/ansible_collections/bigdata/stack"
cd "${ANSIBLE_TEST_CONTENT_ROOT}"
exec "${ROOT}/.venv/bin/ansible-test" sanity --python "${python_version}" --color no "$@"
