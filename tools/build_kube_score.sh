#!/usr/bin/env bash
# Build kube-score (static analysis of Kubernetes manifests, github.com/zegl/kube-score) from the
# Go module proxy, once per version, for tests/render/test_scanner.py.
#
#   tools/build_kube_score.sh [VERSION]     VERSION: the Go module version, default v1.20.0
#
# One static binary (CGO off), nothing in the virtualenv. It goes to
# ${BIGDATA_CACHE_DIR:-~/.cache/bigdata-stack}/kube-score/VERSION/bin/kube-score and is rebuilt only
# when missing or when it does not report the version. The first build with empty Go caches takes
# about 2.5 CPU-minutes (148 MB of modules, 251 MB of build cache, a 22 MB binary), then seconds.
# The last line printed is the binary's path.
set -euo pipefail

version=${1:-v1.20.0}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  { echo "build_kube_score.sh: '$version' is not a kube-score Go module version (v1.20.0)" >&2; exit 2; }
command -v go >/dev/null || { echo "build_kube_score.sh: Go is required (https://go.dev/dl); none on PATH" >&2; exit 1; }

cache=${BIGDATA_CACHE_DIR:-$HOME/.cache/bigdata-stack}/kube-score/$version
dest=$cache/bin
mkdir -p "$dest"

# Two test sessions may build at once: one builds, the other waits.
exec 9>"$cache/.build.lock"
flock 9

# kube-score stamps its version only through its release build's ldflags (main.version).
ldflags="-X main.version=${version#v} -X main.commit=module-proxy-$version"
reports_version() {
  local said
  said=$("$dest/kube-score" version 2>&1) || return 1
  [[ $said == *"version: ${version#v},"* ]]
}

start=$SECONDS
if reports_version; then
  echo "kube-score $version: cached in $dest" >&2
else
  echo "==> kube-score $version (go install from the module proxy; minutes on 2 cores the first time)" >&2
  GOBIN=$dest CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath" \
    go install -ldflags "$ldflags" "github.com/zegl/kube-score/cmd/kube-score@$version" >&2
  reports_version || { echo "build_kube_score.sh: $dest/kube-score does not report version ${version#v}" >&2; exit 1; }
  echo "kube-score $version built in $((SECONDS - start)) s" >&2
fi
echo "$dest/kube-score"
