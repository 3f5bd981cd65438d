#!/usr/bin/env bash
# Build the real promtool and prometheus from the Go module proxy, once per version, and the
# helper of tests/monitoring (tests/monitoring/promcheck: Prometheus's PromQL parser and the
# Grafana Foundation SDK's strict dashboard decoder) beside them.
#
#   tools/build_prometheus.sh [VERSION]     VERSION: the Go module version, default v0.316.0
#
# Prometheus 3.x is published as Go module versions v0.3MM.P (v0.316.0 is Prometheus 3.16.0, the
# prom/prometheus tag of roles/monitoring). The stack's configuration discovers targets through
# Kubernetes only, so the build keeps only that service discovery (plus file, http and static), with
# the build tags Prometheus's README documents ("Service discovery plugins": remove_all_sd,
# enable_kubernetes_sd): the cloud providers' SDKs are most of a full build's 30 minutes on 2 cores.
# A configuration using another discovery fails `promtool check config` loudly. Binaries go to
# ${BIGDATA_CACHE_DIR:-~/.cache/bigdata-stack}/prometheus/VERSION/bin, like the simulated
# cluster's: promtool and prometheus are built when either is missing or does not report the
# version; promcheck when its sources changed (their hash is kept in promcheck.sha256). The last
# line printed is the bin directory.
set -euo pipefail

version=${1:-v0.316.0}
[[ $version =~ ^v0\.[0-9]+\.[0-9]+$ ]] ||
  { echo "build_prometheus.sh: '$version' is not a Prometheus Go module version (v0.316.0)" >&2; exit 2; }
command -v go >/dev/null || { echo "build_prometheus.sh: Go is required (https://go.dev/dl); none on PATH" >&2; exit 1; }

# v0.316.0 -> 3.16.0: stamped into the binaries (as Prometheus's own release build does with promu),
# so `promtool --version` tells which Prometheus it is and a cache of another build is replaced.
IFS=. read -r _ module_minor patch <<<"${version#v}"
release=$((module_minor / 100)).$((module_minor % 100)).$patch
pkg=github.com/prometheus/common/version
ldflags="-X $pkg.Version=$release -X $pkg.Revision=module-proxy-$version -X $pkg.Branch=HEAD"

repo=$(cd "$(dirname "$0")/.." && pwd)
helper=$repo/tests/monitoring/promcheck
cache=${BIGDATA_CACHE_DIR:-$HOME/.cache/bigdata-stack}/prometheus/$version
dest=$cache/bin

# The helper must parse PromQL exactly as the promtool beside it does.
grep -qE "^\s*github.com/prometheus/prometheus $version\$" "$helper/go.mod" ||
  { echo "build_prometheus.sh: $helper/go.mod does not require github.com/prometheus/prometheus $version;" \
      "set the same version there" >&2; exit 2; }
mkdir -p "$dest"

# Two test sessions (or a developer and a test) may build at once: one builds, the other waits.
exec 9>"$cache/.build.lock"
flock 9

reports_release() {  # BINARY: true when it runs and says it is $release
  local said
  said=$("$1" --version 2>&1) || return 1
  [[ $said == *"version $release "* ]]
}

export CGO_ENABLED=0
start=$SECONDS
if reports_release "$dest/promtool" && reports_release "$dest/prometheus"; then
  echo "promtool and prometheus $version: cached in $dest"
else
  echo "==> promtool and prometheus $version (go install from the module proxy; minutes on 2 cores the first time)"
  GOBIN=$dest GOFLAGS="-mod=mod -trimpath" go install -tags remove_all_sd,enable_kubernetes_sd -ldflags "$ldflags" \
    "github.com/prometheus/prometheus/cmd/promtool@$version" \
    "github.com/prometheus/prometheus/cmd/prometheus@$version"
  for binary in promtool prometheus; do
    reports_release "$dest/$binary" ||
      { echo "build_prometheus.sh: $dest/$binary does not report version $release" >&2; exit 1; }
  done
fi

sources_hash=$(cat "$helper/go.mod" "$helper/go.sum" "$helper"/*.go | sha256sum | cut -d' ' -f1)
if [ -x "$dest/promcheck" ] && [ "$(cat "$dest/promcheck.sha256" 2>/dev/null)" = "$sources_hash" ]; then
  echo "promcheck: cached in $dest"
else
  echo "==> promcheck (tests/monitoring/promcheck)"
  (cd "$helper" && GOFLAGS="-mod=readonly -trimpath" go build -o "$dest/promcheck" .)
  echo "$sources_hash" >"$dest/promcheck.sha256"
fi
echo "prometheus tools ready in $((SECONDS - start)) s:"
echo "$dest"
