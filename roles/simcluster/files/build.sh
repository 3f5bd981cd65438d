#!/usr/bin/env bash
# Build the simulated cluster's binaries from the Go module proxy, once per version set.
#
#   build.sh KUBE_VERSION ETCD_VERSION KWOK_VERSION DEST_DIR
#
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl come from
# k8s.io/kubernetes (whose go.mod points its k8s.io/* staging modules at ./staging, which a
# module consumer cannot see: a throw-away module replaces each of them with the published
# k8s.io/<name> v0.<minor>.<patch>). etcd, kwok and kwokctl are plain `go install`s.
# The real version is stamped into the binaries so `kube-apiserver --version` and /version tell
# the truth. A finished build leaves DEST_DIR/.complete; with it present this script does nothing.
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 KUBE_VERSION ETCD_VERSION KWOK_VERSION DEST_DIR" >&2
  exit 2
fi
kube_version=$1 etcd_version=$2 kwok_version=$3 dest=$4

for v in "$kube_version" "$etcd_version" "$kwok_version"; do
  [[ $v =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build.sh: '$v' is not a vX.Y.Z version" >&2; exit 2; }
done
command -v go >/dev/null || { echo "build.sh: Go is required (https://go.dev/dl); none on PATH" >&2; exit 1; }

if [ -f "$dest/.complete" ]; then
  echo "simcluster binaries for kubernetes $kube_version, etcd $etcd_version, kwok $kwok_version: cached in $dest"
  exit 0
fi

mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS="-trimpath -mod=mod" CGO_ENABLED=0 GOBIN="$dest"
start=$SECONDS

echo "==> kwok $kwok_version, kwokctl $kwok_version"
go install "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" "sigs.k8s.io/kwok/cmd/kwokctl@$kwok_version"
# kwokctl loads its default stages only when a config brings none; ours adds a Spark driver stage,
# so keep kwok's own defaults (node initialize + lease heartbeat, pod ready/complete/delete) beside
# the binaries, exactly as this kwok version ships them.
kwok_src=$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
mkdir -p "$dest/stages"
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  cp "$kwok_src/kustomize/stage/$stage.yaml" "$dest/stages/${stage##*/}.yaml"
done
chmod -R u+w "$dest/stages"

# A module whose go.mod replaces its siblings with local paths (../api, ./staging/src/…) cannot be
# `go install`ed; build it from a throw-away module that replaces each sibling with its published
# version instead. $3 maps a sibling's module path to that version.
build_from_module() {  # MODULE VERSION SIBLING_VERSION PACKAGE... (PACKAGE=out-name:import-path)
  local module=$1 version=$2 sibling_version=$3; shift 3
  local dir gomod
  dir=$(mktemp -d -p "$work")
  (
    cd "$dir"
    go mod init bigdata-stack.invalid/simcluster-build >/dev/null 2>&1
    gomod=$(go mod download -json "$module@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
    grep -oE '^\s*(replace )?\S+ => \.\.?/\S+' "$gomod" | sed 's/^\s*replace //' | grep -v FORBIDDEN | awk '{print $1}' |
      while read -r sibling; do go mod edit -replace "$sibling=$sibling@$sibling_version"; done
    go mod edit -require "$module@$version"
    for pkg in "$@"; do
      echo "    building ${pkg%%:*}"
      go build -ldflags "${ldflags:--s -w}" -o "$dest/${pkg%%:*}" "${pkg#*:}"
    done
  )
}

echo "==> etcd $etcd_version"
ldflags="" build_from_module go.etcd.io/etcd/server/v3 "$etcd_version" "$etcd_version" \
  etcd:go.etcd.io/etcd/server/v3

echo "==> kubernetes $kube_version (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)"
IFS=. read -r major minor _ <<<"${kube_version#v}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags+=" -X $pkg.gitCommit=module-proxy-$kube_version"
build_from_module k8s.io/kubernetes "$kube_version" "v0.${kube_version#v1.}" \
  kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler \
  kubectl:k8s.io/kubernetes/cmd/kubectl

"$dest/kube-apiserver" --version | grep -qx "Kubernetes $kube_version" ||
  { echo "build.sh: kube-apiserver does not report $kube_version" >&2; exit 1; }
printf 'kubernetes=%s\netcd=%s\nkwok=%s\nseconds=%s\n' \
  "$kube_version" "$etcd_version" "$kwok_version" "$((SECONDS - start))" >"$dest/.complete"
echo "simcluster binaries built in $((SECONDS - start)) s into $dest ($(du -sh "$dest" | cut -f1))"
