#!/usr/bin/env bash
# The real build stack buildctl's tests and default run use: Docker engine (containerd image
# store), buildx, QEMU binfmt handlers, a local Distribution registry and a multi-arch base image.
#
#   scripts/stack.sh up       install what is missing, start what is not running (idempotent)
#   scripts/stack.sh up --buildkit
#                             also build buildkitd + BuildKit's CLI (bk-buildctl) from Debian source
#                             (cached) and push a BuildKit image for buildx's docker-container driver
#   scripts/stack.sh nodes    start two remote BuildKit nodes (amd64 on the host, arm64 in its own
#                             network namespace); prints "ENDPOINT PLATFORM" per node on stdout
#   scripts/stack.sh down     stop what `up`/`nodes` started (by pid file), nothing else
#   scripts/stack.sh status   one line per component
#
# No systemd and no Docker Hub are assumed. See shared stack notes in the README ("The stack").
set -euo pipefail

STATE_DIR=${BUILDCTL_STACK_DIR:-/var/lib/buildctl-stack}
REGISTRY_ADDR=${BUILDCTL_STACK_REGISTRY:-127.0.0.1:5000}
BASE_REPO=${BUILDCTL_BASE_IMAGE:-$REGISTRY_ADDR/buildctl/base}
BASE_TAG=bookworm-1
# Packages the sample services need at run time; baked into the base image once.
BASE_PACKAGES=python3-minimal,python3-flask,python3-redis,python3-psycopg2,python3-gunicorn,ca-certificates
BOOKWORM_PACKAGES=(runc iptables tini qemu-user-static binfmt-support docker-registry mmdebstrap arch-test curl bash-completion)
TRIXIE_PACKAGES=(containerd docker.io docker-cli docker-buildx)
# What only the test suite needs: the sample apps' tests run a real Redis and PostgreSQL, the
# page-size tests cross-compile arm64 binaries (tests/helpers/elf.py). `stack.sh test-packages`,
# which scripts/test.sh runs.
TEST_PACKAGES=(redis-server postgresql gcc-aarch64-linux-gnu)
# Release tools (signing, the kustomize render check): Go static binaries whose only Depends is
# libc6 (>= 2.34), which bookworm's 2.36 satisfies; installed the same libc-safe way.
TRIXIE_TOOLS=(cosign kustomize)
PID_DIR=$STATE_DIR/pids
LOG_DIR=$STATE_DIR/logs

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# BuildKit binaries, image and nodes (only function definitions: plain `up` does no BuildKit work).
# shellcheck source=scripts/buildkit.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/buildkit.sh"

engine_up() { docker info >/dev/null 2>&1; }

native_arch() { dpkg --print-architecture; }

install_bookworm_packages() { # [package...]: the ones given (default: BOOKWORM_PACKAGES) that are missing
  local missing=() pkg
  (($#)) || set -- "${BOOKWORM_PACKAGES[@]}"
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing from Debian: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# containerd/dockerd/buildx new enough for the containerd image store come from trixie. They are
# downloaded with a private sources list and lists dir, then dpkg -i'd: letting apt resolve
# trixie would upgrade libc. trixie's runc needs a newer libc, so bookworm's runc stays.
install_trixie_packages() { # package... (default: TRIXIE_PACKAGES)
  local wanted=("$@")
  ((${#wanted[@]})) || wanted=("${TRIXIE_PACKAGES[@]}")
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  local apt_dir=$STATE_DIR/apt-trixie
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs"
  chmod 755 "$STATE_DIR" "$apt_dir" "$apt_dir/debs"  # apt downloads as _apt where it can
  local mirror
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "deb $mirror trixie main" >"$apt_dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o Debug::NoLocking=1)
  log "downloading from trixie: ${missing[*]}"
  apt-get "${opts[@]}" update -qq
  local debs=$apt_dir/debs/$(date +%s%N)  # only this call's downloads go to dpkg -i
  mkdir -p "$debs" && chmod 755 "$debs"
  (cd "$debs" && apt-get "${opts[@]}" download "${missing[@]}" >/dev/null)
  DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$debs"/*.deb >/dev/null ||
    die "dpkg -i of the trixie packages failed; see above"
  rm -rf "$debs"
}

setup_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  update-binfmts --enable >/dev/null 2>&1 || true
  local want=qemu-aarch64
  [ "$(native_arch)" = arm64 ] && want=qemu-x86_64
  [ -e /proc/sys/fs/binfmt_misc/$want ] || update-binfmts --enable "$want" ||
    die "binfmt handler $want not registered"
}

# Pid files outlive what they name: a killed stack, a restarted machine or container, leaves them
# behind with pids that are gone or now belong to someone else. So a pid file holds the pid and
# the process's start time, and a process is ours only while both still match.
proc_start() { # pid: its start time (field 22 of /proc/PID/stat, clock ticks since boot)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }   # after "PID (COMM) ": COMM may hold spaces and parentheses
  # shellcheck disable=SC2086  # split the fields on purpose
  set -- $stat
  echo "${20}"
}

start_bg() { # name, command...
  local name=$1; shift
  mkdir -p "$PID_DIR" "$LOG_DIR"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  record_pid "$name" $!
}

record_pid() { # name pid: the pid file `running` checks (pid and start time)
  echo "$2 $(proc_start "$2" || true)" >"$PID_DIR/$1.pid"
}

running() { # name: its pid file names a live process, the one start_bg started
  local f=$PID_DIR/$1.pid pid="" start=""
  [ -f "$f" ] || return 1
  read -r pid start <"$f" || true
  [ -n "$pid" ] && [ -n "$start" ] && [ "$(proc_start "$pid" 2>/dev/null)" = "$start" ]
}

expected_comm() { # name: the process name (/proc/PID/comm) of what start_bg runs under that name
  case $1 in
    registry) echo docker-registry ;;
    node-*) echo buildkitd ;;
    socat-*) echo socat ;;
    *) echo "$1" ;;
  esac
}

forget_stale_pids() { # remove the pid files whose process is gone; upgrade the old format (a pid alone)
  local f name pid start
  for f in "$PID_DIR"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    running "$name" && continue
    pid="" start=""
    read -r pid start <"$f" || true
    if [ -n "$pid" ] && [ -z "$start" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(expected_comm "$name")" ]; then
      record_pid "$name" "$pid"   # written by an older stack.sh, and still that process
      continue
    fi
    log "forgetting stale pid file $name.pid (process gone)"
    rm -f "$f"
  done
}

retried() { # command...: a registry write, again (3 tries) when it fails; the registry answers 500
  # now and then under concurrent pushes, and pushing the same content twice is harmless
  local i
  for i in 1 2 3; do
    "$@" && return 0
    [ "$i" = 3 ] || { log "retrying in $((2 * i)) s: $*"; sleep $((2 * i)); }
  done
  return 1
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up in ${secs}s (logs: $LOG_DIR)"
}

write_daemon_json() {
  mkdir -p /etc/docker
  python3 - <<'PY'
import json, pathlib
p = pathlib.Path("/etc/docker/daemon.json")
cfg = json.loads(p.read_text()) if p.exists() and p.read_text().strip() else {}
if cfg.get("features", {}).get("containerd-snapshotter") is not True:
    cfg.setdefault("features", {})["containerd-snapshotter"] = True
    p.write_text(json.dumps(cfg, indent=2) + "\n")
PY
}

start_engine() {
  if engine_up; then
    log "using the running Docker engine"
    return 0
  fi
  write_daemon_json
  if ! [ -S /run/containerd/containerd.sock ] || ! running containerd; then
    if ! ctr version >/dev/null 2>&1; then
      log "starting containerd"
      start_bg containerd containerd
      wait_for containerd 30 ctr version
    fi
  fi
  # dockerd will not start while /var/run/docker.pid names a live process, even one that is not
  # dockerd (a restart that kept /run, and the pid was reused): such a file is not dockerd's.
  local pid
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)   # dockerd writes it without a final newline
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
    rm -f /var/run/docker.pid
  fi
  log "starting dockerd"
  start_bg dockerd dockerd --containerd=/run/containerd/containerd.sock
  wait_for dockerd 60 docker info
}

start_registry() {
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE_DIR/registry"
  cat >"$STATE_DIR/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  log "starting registry on $REGISTRY_ADDR"
  start_bg registry docker-registry serve "$STATE_DIR/registry.yml"
  wait_for registry 30 curl -fsS "http://$REGISTRY_ADDR/v2/"
}

# The sample services' base: Debian bookworm minbase with Python packages, one rootfs per
# architecture (arm64 second stage runs under QEMU, ~95 s), imported and joined into one index.
build_base_image() {
  if docker buildx imagetools inspect "$BASE_REPO:$BASE_TAG" >/dev/null 2>&1; then return 0; fi
  local work=$STATE_DIR/base
  mkdir -p "$work"
  local refs=()
  for arch in amd64 arm64; do
    local tar=$work/rootfs-$arch.tar
    if [ ! -s "$tar" ]; then
      log "building base rootfs for $arch (mmdebstrap)"
      mmdebstrap --quiet --variant=minbase --architectures="$arch" --include="$BASE_PACKAGES" \
        bookworm "$work/partial-$arch.tar" >"$LOG_DIR/mmdebstrap-$arch.log" 2>&1 || die "mmdebstrap $arch failed (see $LOG_DIR/mmdebstrap-$arch.log)"
      mv "$work/partial-$arch.tar" "$tar"
    fi
    docker import --platform "linux/$arch" "$tar" "$BASE_REPO:$BASE_TAG-$arch" >/dev/null
    retried docker push -q "$BASE_REPO:$BASE_TAG-$arch" >/dev/null
    refs+=("$BASE_REPO:$BASE_TAG-$arch")
  done
  retried docker buildx imagetools create -t "$BASE_REPO:$BASE_TAG" "${refs[@]}" >/dev/null 2>&1
  log "base image $BASE_REPO:$BASE_TAG ready (linux/amd64, linux/arm64)"
}

up() {
  local with_buildkit=0
  for arg in "$@"; do
    case $arg in
      --buildkit) with_buildkit=1 ;;
      *) echo "usage: $0 up [--buildkit]" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "run as root (installs packages, mounts binfmt_misc, starts dockerd)"
  mkdir -p "$STATE_DIR" "$LOG_DIR" "$PID_DIR"
  forget_stale_pids
  install_bookworm_packages
  if ! engine_up; then install_trixie_packages; fi
  install_trixie_packages "${TRIXIE_TOOLS[@]}"  # dpkg-query only, once installed
  setup_binfmt
  start_engine
  start_registry
  build_base_image
  if ((with_buildkit)); then buildkit_up; fi
  status
}

stop_pid() { # name: stop what its pid file names (only if it is still ours), wait up to 20 s
  local f=$PID_DIR/$1.pid
  [ -f "$f" ] || return 0
  local pid; read -r pid _ <"$f" || true
  if running "$1"; then
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$f"
}

down() {
  nodes_down
  for name in registry dockerd containerd; do stop_pid "$name"; done
}

status() {
  local rc=0
  line() { printf '%-10s %-4s %s\n' "$1" "$2" "$3"; }
  if engine_up; then line engine ok "$(docker version -f 'server {{.Server.Version}}' 2>/dev/null)"; else line engine FAIL "not reachable"; rc=1; fi
  if docker buildx version >/dev/null 2>&1; then line buildx ok "$(docker buildx version | awk '{print $2}')"; else line buildx FAIL missing; rc=1; fi
  if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-x86_64 ]; then line binfmt ok "$(ls /proc/sys/fs/binfmt_misc | grep -c qemu) qemu handlers"; else line binfmt FAIL "no qemu handler"; rc=1; fi
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then line registry ok "$REGISTRY_ADDR"; else line registry FAIL "$REGISTRY_ADDR not answering"; rc=1; fi
  if docker buildx imagetools inspect "$BASE_REPO:$BASE_TAG" >/dev/null 2>&1; then line base ok "$BASE_REPO:$BASE_TAG"; else line base FAIL "$BASE_REPO:$BASE_TAG missing"; rc=1; fi
  buildkit_status || rc=1
  return $rc
}

case "${1:-}" in
  up) shift; up "$@" ;;
  nodes) nodes ;;
  test-packages) install_bookworm_packages "${TEST_PACKAGES[@]}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [--buildkit]|nodes|test-packages|down|status" >&2; exit 2 ;;
esac
