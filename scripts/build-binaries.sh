#!/usr/bin/env bash
# Builds the sandbox's Go binaries from the Go module proxy into a per-version cache
# outside the repository. Every step is skipped when the cached binary already reports
# the wanted version, so a warm run costs a few `--version` calls.
set -euo pipefail

: "${K8S_VERSION:=v1.36.3}"
: "${ETCD_VERSION:=v3.6.16}"
: "${KWOK_VERSION:=v0.8.0}"
: "${K6_VERSION:=v1.8.1}"
: "${COSIGN_VERSION:=v2.6.4}"
: "${KUBE_SCORE_VERSION:=v1.20.0}"
# cosign v3 (Sigstore bundles stored as OCI 1.1 referrers by default) beside v2, as `cosign3`.
: "${COSIGN3_VERSION:=v3.1.3}"
# versitygw: the S3-compatible object store (posix backend) that DR drills read backups from.
: "${VERSITYGW_VERSION:=v1.8.0}"
: "${RETAILOPS_SANDBOX_CACHE:=$HOME/.cache/retailops-sandbox}"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
BIN_ROOT="$RETAILOPS_SANDBOX_CACHE/bin"
WORK_ROOT="$RETAILOPS_SANDBOX_CACHE/work"
mkdir -p "$BIN_ROOT" "$WORK_ROOT"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

have_version() { # have_version BINARY PATTERN
  # Most tools answer --version; kubectl and cosign only have a `version` subcommand.
  # The output is captured first: `... | grep -q` under pipefail fails at random when grep
  # exits before a multi-line version text is written (SIGPIPE), forcing a needless rebuild.
  [ -x "$1" ] || return 1
  local out
  out="$("$1" --version 2>/dev/null || "$1" version --client 2>/dev/null || "$1" version 2>/dev/null || true)"
  grep -q -- "$2" <<<"$out"
}

build_kubernetes() {
  local v="$K8S_VERSION" out="$BIN_ROOT/kubernetes-$K8S_VERSION"
  if have_version "$out/kube-apiserver" "Kubernetes $v" && have_version "$out/kubectl" "$v" \
     && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kube-scheduler" ]; then
    log "kubernetes $v cached"; return
  fi
  log "kubernetes $v: building (cold builds take 15-40 minutes on 2 cores)"
  local staging="v0.${v#v1.}" minor major=1 dir="$WORK_ROOT/k8s-$v"
  minor="$(echo "$v" | cut -d. -f2)"
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init local.invalid/k8sbuild >/dev/null 2>&1
  local gomod; gomod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  local json; json="$(go mod edit -json "$gomod")"
  local gover godebug
  gover="$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Go"])')"
  godebug="$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(next((g["Value"] for g in d.get("Godebug") or [] if g["Key"]=="default"),""))')"
  go mod edit -go="$gover"
  [ -n "$godebug" ] && go mod edit -godebug="default=$godebug"
  printf '%s' "$json" | python3 -c '
import json,sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"): print(r["Old"]["Path"])' | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
  local pkgs="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
  local p; for p in $pkgs; do go get "$p@$v"; done
  local ldf="-s -w" vp
  for vp in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $vp.gitVersion=$v -X $vp.gitMajor=$major -X $vp.gitMinor=$minor -X $vp.gitTreeState=clean"
    ldf="$ldf -X $vp.gitCommit=0000000000000000000000000000000000000000 -X $vp.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$out.tmp"
  # shellcheck disable=SC2086
  go build -trimpath -buildvcs=false -ldflags "$ldf" -o "$out.tmp/" $pkgs
  rm -rf "$out"; mv "$out.tmp" "$out"
  "$out/kube-apiserver" --version >&2
}

build_etcd() {
  local v="$ETCD_VERSION" out="$BIN_ROOT/etcd-$ETCD_VERSION"
  if have_version "$out/etcd" "${v#v}"; then log "etcd $v cached"; return; fi
  log "etcd $v: building"
  local dir="$WORK_ROOT/etcd-$v"; rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init local.invalid/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$v" "go.etcd.io/etcd/etcdctl/v3@$v"
  mkdir -p "$out.tmp"
  go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
  rm -rf "$out"; mv "$out.tmp" "$out"
}

go_install() { # go_install NAME VERSION CHECK_PATTERN PACKAGE...
  local name="$1" v="$2" pattern="$3"; shift 3
  local out="$BIN_ROOT/$name-$v"
  if have_version "$out/$name" "$pattern"; then log "$name $v cached"; return; fi
  log "$name $v: building"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "$@"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_kwok() { go_install kwokctl "$KWOK_VERSION" "${KWOK_VERSION#v}" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"; }
build_k6() { go_install k6 "$K6_VERSION" "${K6_VERSION#v}" "go.k6.io/k6@$K6_VERSION"; }
build_cosign() {
  local major="${COSIGN_VERSION%%.*}"; local mod="github.com/sigstore/cosign"
  [ "$major" = v1 ] || mod="$mod/$major"
  CGO_ENABLED=0 go_install cosign "$COSIGN_VERSION" "${COSIGN_VERSION#v}" "$mod/cmd/cosign@$COSIGN_VERSION"
}

# kube-score (the manifest linter the render test runs): its version is set by goreleaser's
# ldflags, so a `go install` build gets the same -X flags or it reports "development".
build_kube_score() {
  local v="$KUBE_SCORE_VERSION" out="$BIN_ROOT/kube-score-$KUBE_SCORE_VERSION"
  if have_version "$out/kube-score" "version: ${v#v}"; then log "kube-score $v cached"; return; fi
  log "kube-score $v: building"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X main.version=${v#v} -X main.commit=$v -X main.date=1970-01-01" "github.com/zegl/kube-score/cmd/kube-score@$v"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# cosign v3 beside v2, renamed cosign3: v3 writes Sigstore bundles as OCI 1.1 referrers by default.
build_cosign3() {
  local v="$COSIGN3_VERSION" out="$BIN_ROOT/cosign3-$COSIGN3_VERSION"
  if have_version "$out/cosign3" "${v#v}"; then log "cosign3 $v cached"; return; fi
  log "cosign3 $v: building"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$v" "github.com/sigstore/cosign/v3/cmd/cosign@$v"
  mv "$out.tmp/cosign" "$out.tmp/cosign3"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# versitygw: its version comes from the Makefile's -X flags, so a `go install` build gets the
# same ones or `--version` says "git".
build_versitygw() {
  local v="$VERSITYGW_VERSION" out="$BIN_ROOT/versitygw-$VERSITYGW_VERSION"
  if have_version "$out/versitygw" "Version  : $v"; then log "versitygw $v cached"; return; fi
  log "versitygw $v: building"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X main.Version=$v -X main.Build=$v -X main.BuildTime=1970-01-01T00:00:00Z" "github.com/versity/versitygw/cmd/versitygw@$v"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# Gateway API CRDs come from the module zip, not from a download of the release asset.
fetch_gateway_crds() {
  : "${GATEWAY_API_VERSION:=v1.3.0}"
  local out="$RETAILOPS_SANDBOX_CACHE/gateway-api-$GATEWAY_API_VERSION"
  if [ -s "$out/standard.yaml" ]; then log "gateway-api $GATEWAY_API_VERSION cached"; return; fi
  local dir; dir="$(cd "$WORK_ROOT" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  mkdir -p "$out.tmp"
  local f; for f in "$dir"/config/crd/standard/*.yaml; do cat "$f"; printf '\n---\n'; done > "$out.tmp/standard.yaml"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# KEDA's CRDs (ScaledObject and the rest of keda.sh) from the KEDA Go module zip at a pinned
# release, so the apiserver validates the ScaledObjects retailops renders against KEDA's real
# schema. Only the CRDs: the sandbox runs no KEDA operator (nothing scales on them there).
# v2.20.2: v2.21 needs Go 1.27, this machine has 1.26 (go mod download refuses it).
fetch_keda_crds() {
  : "${KEDA_VERSION:=v2.20.2}"
  local out="$RETAILOPS_SANDBOX_CACHE/keda-$KEDA_VERSION"
  if [ -s "$out/crds.yaml" ]; then log "keda CRDs $KEDA_VERSION cached"; return; fi
  log "keda CRDs $KEDA_VERSION: from the module zip"
  local dir; dir="$(cd "$WORK_ROOT" && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -n "$dir" ] && [ -d "$dir/config/crd/bases" ] || { log "keda $KEDA_VERSION: no config/crd/bases in the module"; return 1; }
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  local f; for f in "$dir"/config/crd/bases/*.yaml; do cat "$f"; printf '\n---\n'; done > "$out.tmp/crds.yaml"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# Prints where each cached binary lives, as shell assignments, for scripts/sandbox.sh.
print_paths() {
  : "${GATEWAY_API_VERSION:=v1.3.0}"
  : "${KEDA_VERSION:=v2.20.2}"
  cat <<EOF
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
K6_VERSION=$K6_VERSION
COSIGN_VERSION=$COSIGN_VERSION
KUBE_SCORE_VERSION=$KUBE_SCORE_VERSION
COSIGN3_VERSION=$COSIGN3_VERSION
VERSITYGW_VERSION=$VERSITYGW_VERSION
GATEWAY_API_VERSION=$GATEWAY_API_VERSION
KEDA_VERSION=$KEDA_VERSION
K8S_BIN=$BIN_ROOT/kubernetes-$K8S_VERSION
ETCD_BIN=$BIN_ROOT/etcd-$ETCD_VERSION
KWOK_BIN=$BIN_ROOT/kwokctl-$KWOK_VERSION
K6_BIN=$BIN_ROOT/k6-$K6_VERSION
COSIGN_BIN=$BIN_ROOT/cosign-$COSIGN_VERSION
KUBE_SCORE_BIN=$BIN_ROOT/kube-score-$KUBE_SCORE_VERSION
COSIGN3_BIN=$BIN_ROOT/cosign3-$COSIGN3_VERSION
VERSITYGW_BIN=$BIN_ROOT/versitygw-$VERSITYGW_VERSION
GATEWAY_API_CRDS=$RETAILOPS_SANDBOX_CACHE/gateway-api-$GATEWAY_API_VERSION/standard.yaml
KEDA_CRDS=$RETAILOPS_SANDBOX_CACHE/keda-$KEDA_VERSION/crds.yaml
EOF
}

main() {
  local what="${1:-all}"
  case "$what" in
    paths) print_paths ;;
    all) build_kubernetes; build_etcd; build_kwok; fetch_gateway_crds; fetch_keda_crds; build_k6; build_cosign; build_kube_score; build_cosign3; build_versitygw ;;
    kubernetes|etcd|kwok|k6|cosign|cosign3) "build_$what" ;;
    kube-score) build_kube_score ;;
    versitygw) build_versitygw ;;
    gateway) fetch_gateway_crds ;;
    keda) fetch_keda_crds ;;
    *) echo "usage: $0 [all|kubernetes|etcd|kwok|gateway|keda|k6|cosign|cosign3|kube-score|versitygw|paths]" >&2; exit 2 ;;
  esac
}
main "$@"
