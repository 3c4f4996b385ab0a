#!/usr/bin/env bash
# BuildKit for the stack: buildkitd and BuildKit's CLI built from Debian source, a BuildKit image
# for buildx's docker-container driver, and two remote BuildKit nodes standing for two hosts.
#
# Sourced by scripts/stack.sh (`up --buildkit`, `nodes`, `down`, `status`). Executed directly,
#   bash scripts/buildkit.sh build
# only compiles the binaries into $STATE_DIR/buildkit/bin (what `up --buildkit` runs, with its
# output in $LOG_DIR/buildkit-build.log).
#
# Debian ships no buildkitd, but trixie's docker.io *source* package carries BuildKit (v0.13.2) as
# a component tarball and every Go library it needs is a golang-*-dev package. Go 1.24 and those
# libraries are `dpkg -x`'d into a private prefix; nothing is installed system-wide and the
# system's apt state is untouched (private sources list, lists dir and cache).

: "${STATE_DIR:=${BUILDCTL_STACK_DIR:-/var/lib/buildctl-stack}}"
: "${REGISTRY_ADDR:=${BUILDCTL_STACK_REGISTRY:-127.0.0.1:5000}}"
: "${LOG_DIR:=$STATE_DIR/logs}"
: "${PID_DIR:=$STATE_DIR/pids}"
BK_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The source package version is the cache key: binaries are rebuilt only when it changes.
DOCKER_DEB_VER=${DOCKER_DEB_VER:-26.1.5+dfsg1-9+deb13u1}
BK_UPSTREAM=${BUILDKIT_UPSTREAM_VERSION:-v0.13.2}   # BuildKit release in that package's buildkit tarball
BK_VERSION=$BK_UPSTREAM+debian-docker.io-$DOCKER_DEB_VER
BK_GO_PACKAGES=(golang-1.24-go golang-1.24-src)
BK_GO_DEPS_FILE=$BK_SCRIPT_DIR/buildkit-go-deps.txt   # the golang-*-dev packages the two commands need
BK_DIR=$STATE_DIR/buildkit
BK_BIN=$BK_DIR/bin
BK_STAMP=$BK_BIN/source-version
BK_IMAGE_REPO=$REGISTRY_ADDR/moby/buildkit
BK_IMAGE_TAG=$(printf '%s-debian-%s' "$BK_UPSTREAM" "$DOCKER_DEB_VER" | tr '+~:' '---')
BK_IMAGE_STABLE_TAG=buildx-stable-1   # the tag buildx's docker-container driver uses by default
BK_RUNC=/usr/sbin/runc                # bookworm's runc (trixie's needs a newer libc)

# Nodes: two BuildKit daemons standing for two build hosts, one per platform.
NODES_RUN_DIR=/run/buildctl-nodes
NODE_AMD64_ADDR=${BUILDCTL_NODE_AMD64_ADDR:-127.0.0.1}
NODE_AMD64_PORT=${BUILDCTL_NODE_AMD64_PORT:-12341}
NODE_ARM64_PORT=${BUILDCTL_NODE_ARM64_PORT:-12342}
NODE_ARM64_NETNS=buildctl-node-arm64
NODE_ARM64_VETH_HOST=bcn-arm64-h
NODE_ARM64_VETH_NS=bcn-arm64-n
NODE_ARM64_HOST_IP=${BUILDCTL_NODE_ARM64_HOST_IP:-10.213.0.1}
NODE_ARM64_NS_IP=${BUILDCTL_NODE_ARM64_NS_IP:-10.213.0.2}
NODE_PACKAGES=(socat)
NODE_PIDS=(node-arm64 node-amd64 socat-arm64-ns socat-arm64-host)   # stop order for `down`

type log >/dev/null 2>&1 || log() { printf 'buildkit: %s\n' "$*" >&2; }
type die >/dev/null 2>&1 || die() { printf 'buildkit: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Binaries

buildkit_built() { # binaries present and built from $DOCKER_DEB_VER
  [ -x "$BK_BIN/buildkitd" ] && [ -x "$BK_BIN/bk-buildctl" ] && [ -f "$BK_STAMP" ] &&
    [ "$(cat "$BK_STAMP")" = "$DOCKER_DEB_VER" ]
}

bk_apt() { # apt-get with the private trixie config
  apt-get -q -o "Dir::Etc::SourceList=$BK_DIR/cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$BK_DIR/cache/apt/lists" -o "Dir::Cache=$BK_DIR/cache/apt/cache" \
    -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

bk_apt_update_once() {
  [ -n "${BK_APT_UPDATED:-}" ] && return 0
  mkdir -p "$BK_DIR/cache/apt/lists/partial" "$BK_DIR/cache/apt/cache/archives/partial"
  local mirror
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  local key=/usr/share/keyrings/debian-archive-keyring.gpg
  cat >"$BK_DIR/cache/apt/sources.list" <<EOF
deb [signed-by=$key] $mirror trixie main
deb-src [signed-by=$key] $mirror trixie main
EOF
  bk_apt update
  BK_APT_UPDATED=1
}

bk_fetch_sources() { # docker.io source tarballs (main, buildkit and cli components, debian) -> cache/src
  local src=$BK_DIR/cache/src up=${DOCKER_DEB_VER%-*}
  BK_TARBALLS=("$src/docker.io_$up.orig.tar.xz" "$src/docker.io_$up.orig-buildkit.tar.xz"
    "$src/docker.io_$up.orig-cli.tar.xz" "$src/docker.io_$DOCKER_DEB_VER.debian.tar.xz")
  local f missing=0
  for f in "${BK_TARBALLS[@]}"; do [ -s "$f" ] || missing=1; done
  ((missing)) || { echo "source tarballs cached in $src"; return 0; }
  mkdir -p "$src"
  bk_apt_update_once
  # On some mirrors the .dsc answers 404 while the tarballs (hash-checked against Sources) arrive.
  (cd "$src" && bk_apt source --download-only "docker.io=$DOCKER_DEB_VER") || true
  for f in "${BK_TARBALLS[@]}"; do [ -s "$f" ] || { echo "missing after download: $f" >&2; return 1; }; done
}

bk_fetch_debs() { # dir, packages...: apt-get download only what is not cached yet
  local dir=$1; shift
  mkdir -p "$dir"
  local pkg missing=()
  for pkg in "$@"; do compgen -G "$dir/${pkg}_*.deb" >/dev/null || missing+=("$pkg"); done
  ((${#missing[@]})) || { echo "$# packages cached in $dir"; return 0; }
  bk_apt_update_once
  (cd "$dir" && bk_apt download "${missing[@]}")
}

buildkit_compile() { # the whole build; output goes to the caller's log
  set -euo pipefail
  mkdir -p "$BK_DIR"
  exec 9>"$BK_DIR/build.lock"
  flock 9
  if buildkit_built; then echo "already built from docker.io $DOCKER_DEB_VER"; return 0; fi
  local t0 t1 t2 work=$BK_DIR/work
  t0=$(date +%s)
  echo "building BuildKit $BK_VERSION from Debian trixie docker.io $DOCKER_DEB_VER"

  bk_fetch_sources
  local devs
  mapfile -t devs < <(grep -v '^#' "$BK_GO_DEPS_FILE" | grep .)
  # golang-protobuf 1-3 and 1-5 ship the same files (DecodeVarint redeclared): the list has only 1-5.
  bk_fetch_debs "$BK_DIR/cache/debs/go" "${BK_GO_PACKAGES[@]}"
  bk_fetch_debs "$BK_DIR/cache/debs/dev" "${devs[@]}"

  # Private prefix: Go 1.24 (static, GOROOT below) and the Go library sources (/usr/share/gocode).
  rm -rf "$work/root" "$work/tree" "$work/gopath" "$work/out"
  mkdir -p "$work/root" "$work/tree/x" "$work/gopath/src/github.com/moby" "$work/gopath/src/github.com/docker" "$work/out"
  local pkg deb
  for pkg in "${BK_GO_PACKAGES[@]}"; do for deb in "$BK_DIR/cache/debs/go/${pkg}"_*.deb; do dpkg -x "$deb" "$work/root"; done; done
  for pkg in "${devs[@]}"; do for deb in "$BK_DIR/cache/debs/dev/${pkg}"_*.deb; do dpkg -x "$deb" "$work/root"; done; done

  # Source tree with Debian's whole patch series (includes BuildKit CVE fixes).
  local f
  for f in "${BK_TARBALLS[@]}"; do tar -C "$work/tree/x" -xf "$f"; done
  mv "$work"/tree/x/*/engine "$work/tree/engine"
  mv "$work/tree/x/buildkit" "$work/tree/x/cli" "$work/tree/x/debian" "$work/tree/"
  rm -rf "$work/tree/x"
  local p
  (cd "$work/tree" && grep -v '^#' debian/patches/series | grep . | while read -r p _; do
    echo "patch $p"; patch -p1 -s --no-backup-if-mismatch <"debian/patches/$p" || exit 1; done)

  # GOPATH mode, as Debian builds it: buildkit and the engine from the tree, the rest from gocode.
  mv "$work/tree/buildkit" "$work/gopath/src/github.com/moby/buildkit"
  mv "$work/tree/engine" "$work/gopath/src/github.com/docker/docker"
  export GOROOT="$work/root/usr/lib/go-1.24"
  export PATH="$GOROOT/bin:$PATH"
  export GOPATH="$work/gopath:$work/root/usr/share/gocode" GOCACHE="$BK_DIR/cache/gocache"
  export GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS='' GOENV=off
  go version
  t1=$(date +%s)
  local ld="-s -w -X github.com/moby/buildkit/version.Version=$BK_VERSION -X github.com/moby/buildkit/version.Revision=debian-$DOCKER_DEB_VER"
  (cd "$work/gopath/src/github.com/moby/buildkit" &&
    go build -trimpath -ldflags "$ld" -o "$work/out/buildkitd" ./cmd/buildkitd &&
    go build -trimpath -ldflags "$ld" -o "$work/out/bk-buildctl" ./cmd/buildctl)
  t2=$(date +%s)
  "$work/out/buildkitd" --version
  "$work/out/bk-buildctl" --version

  mkdir -p "$BK_BIN"
  rm -f "$BK_STAMP"
  mv -f "$work/out/buildkitd" "$work/out/bk-buildctl" "$BK_BIN/"
  echo "$DOCKER_DEB_VER" >"$BK_STAMP"
  rm -rf "$work"   # the tree and prefix are cheap to recreate from the cached tarballs and debs
  ls -l "$BK_BIN"
  echo "prep: $((t1 - t0))s  compile: $((t2 - t1))s  total: $((t2 - t0))s"
}

buildkit_build() { # compile unless cached; log to $LOG_DIR/buildkit-build.log
  if buildkit_built; then return 0; fi
  mkdir -p "$LOG_DIR"
  local blog=$LOG_DIR/buildkit-build.log t0=$SECONDS
  log "building buildkitd and bk-buildctl from Debian docker.io $DOCKER_DEB_VER source (a few minutes; log: $blog)"
  BUILDCTL_STACK_DIR=$STATE_DIR LOG_DIR=$LOG_DIR DOCKER_DEB_VER=$DOCKER_DEB_VER \
    bash "$BK_SCRIPT_DIR/buildkit.sh" build >"$blog" 2>&1 ||
    die "building BuildKit failed; see $blog"
  buildkit_built || die "building BuildKit left no binaries; see $blog"
  log "built BuildKit $BK_VERSION in $((SECONDS - t0))s"
}

buildkit_install() { # on PATH; BuildKit's CLI as bk-buildctl so it never shadows our buildctl
  local name
  for name in buildkitd bk-buildctl; do
    cmp -s "$BK_BIN/$name" "/usr/local/bin/$name" && continue
    install -m 0755 "$BK_BIN/$name" "/usr/local/bin/$name.new"
    mv -f "/usr/local/bin/$name.new" "/usr/local/bin/$name"
    log "installed /usr/local/bin/$name"
  done
}

# ---------------------------------------------------------------------------------------------
# Image for buildx's docker-container driver (no Docker Hub: moby/buildkit cannot be pulled)

registry_has() { # repo-path tag
  curl -fsS -o /dev/null -I \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY_ADDR/v2/$1/manifests/$2" 2>/dev/null
}

bk_image_inputs() { # what the image is made of; a change means rebuild
  sha256sum "$BK_BIN/buildkitd" "$BK_BIN/bk-buildctl" "$BK_RUNC"
  echo "tag $BK_IMAGE_TAG"
}

buildkit_image() {
  local ref=$BK_IMAGE_REPO:$BK_IMAGE_TAG stable=$BK_IMAGE_REPO:$BK_IMAGE_STABLE_TAG
  local repo_path=${BK_IMAGE_REPO#"$REGISTRY_ADDR"/} sums=$BK_DIR/image.inputs
  if [ -f "$sums" ] && [ "$(cat "$sums")" = "$(bk_image_inputs)" ] &&
    registry_has "$repo_path" "$BK_IMAGE_TAG" && registry_has "$repo_path" "$BK_IMAGE_STABLE_TAG"; then
    echo "$ref" >"$BK_DIR/image"
    return 0
  fi
  log "building BuildKit image $ref"
  local ctx=$BK_DIR/image-context
  rm -rf "$ctx"
  mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/var/lib/buildkit"
  chmod 1777 "$ctx/rootfs/tmp"
  cp "$BK_BIN/buildkitd" "$ctx/rootfs/usr/bin/buildkitd"
  cp "$BK_BIN/bk-buildctl" "$ctx/rootfs/usr/bin/buildctl"
  cp "$BK_RUNC" "$ctx/rootfs/usr/bin/runc"
  ln -s runc "$ctx/rootfs/usr/bin/buildkit-runc"
  local lib
  # runc is dynamically linked (libseccomp, libc, the loader): copy them at the paths ldd names.
  for lib in $(ldd "$BK_RUNC" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | sort -u); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
VOLUME /var/lib/buildkit
ENTRYPOINT ["buildkitd"]
EOF
  retried docker buildx build --builder default --platform "linux/$(dpkg --print-architecture)" --provenance=false \
    --sbom=false --label "org.opencontainers.image.version=$BK_VERSION" -t "$ref" -t "$stable" --push \
    "$ctx" >"$LOG_DIR/buildkit-image.log" 2>&1 ||
    die "building/pushing the BuildKit image failed; see $LOG_DIR/buildkit-image.log"
  bk_image_inputs >"$sums"
  echo "$ref" >"$BK_DIR/image"
  log "BuildKit image $ref (also :$BK_IMAGE_STABLE_TAG) pushed"
}

buildkit_up() { # `up --buildkit`, after the engine and registry are up
  buildkit_build
  buildkit_install
  buildkit_image
  install_bookworm_packages "${NODE_PACKAGES[@]}"
}

# ---------------------------------------------------------------------------------------------
# Nodes

node_endpoint() { # amd64|arm64
  case $1 in
    amd64) echo "tcp://$NODE_AMD64_ADDR:$NODE_AMD64_PORT" ;;
    arm64) echo "tcp://$NODE_ARM64_NS_IP:$NODE_ARM64_PORT" ;;
  esac
}

node_answers() { # amd64|arm64
  timeout 10 bk-buildctl --addr "$(node_endpoint "$1")" debug workers >/dev/null 2>&1
}

node_config() { # name tcp-address
  local dir=$STATE_DIR/nodes/$1
  mkdir -p "$dir/root" "$NODES_RUN_DIR/$1"
  cat >"$dir/buildkitd.toml" <<EOF
root = "$dir/root"
[grpc]
  address = ["$2", "unix://$NODES_RUN_DIR/$1/buildkitd.sock"]
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  binary = "$BK_RUNC"
[worker.containerd]
  enabled = false
[registry."$REGISTRY_ADDR"]
  http = true
  insecure = true
EOF
  echo "$dir/buildkitd.toml"
}

setup_node_netns() { # the arm64 "host": own network namespace joined to ours by a veth pair
  local ns=$NODE_ARM64_NETNS
  if [ -e "/run/netns/$ns" ] && ! ip netns exec "$ns" true 2>/dev/null; then
    ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"   # a name left without its namespace
  fi
  [ -e "/run/netns/$ns" ] || { log "creating network namespace $ns"; ip netns add "$ns"; }
  if ip link show "$NODE_ARM64_VETH_HOST" >/dev/null 2>&1 &&
    ! ip -n "$ns" link show "$NODE_ARM64_VETH_NS" >/dev/null 2>&1; then
    ip link del "$NODE_ARM64_VETH_HOST"   # half a pair from an earlier run
  fi
  if ! ip link show "$NODE_ARM64_VETH_HOST" >/dev/null 2>&1; then
    ip link add "$NODE_ARM64_VETH_HOST" type veth peer name "$NODE_ARM64_VETH_NS" netns "$ns"
  fi
  ip addr replace "$NODE_ARM64_HOST_IP/30" dev "$NODE_ARM64_VETH_HOST"
  ip link set "$NODE_ARM64_VETH_HOST" up
  ip -n "$ns" addr replace "$NODE_ARM64_NS_IP/30" dev "$NODE_ARM64_VETH_NS"
  ip -n "$ns" link set "$NODE_ARM64_VETH_NS" up
  ip -n "$ns" link set lo up
}

start_node_forwarders() { # the registry as $REGISTRY_ADDR inside the namespace, via the host side of the veth
  local port=${REGISTRY_ADDR##*:} rhost=${REGISTRY_ADDR%:*}
  if ! running socat-arm64-host; then
    start_bg socat-arm64-host socat "TCP-LISTEN:$port,bind=$NODE_ARM64_HOST_IP,reuseaddr,fork" "TCP:$rhost:$port"
  fi
  if ! running socat-arm64-ns; then
    start_bg socat-arm64-ns nsenter "--net=/run/netns/$NODE_ARM64_NETNS" \
      socat "TCP-LISTEN:$port,bind=$rhost,reuseaddr,fork" "TCP:$NODE_ARM64_HOST_IP:$port"
  fi
}

node_listener() { # amd64|arm64: pid of the process listening on that node's port, if any
  local port in_ns=()
  case $1 in
    amd64) port=$NODE_AMD64_PORT ;;
    arm64) port=$NODE_ARM64_PORT in_ns=(ip netns exec "$NODE_ARM64_NETNS") ;;
  esac
  "${in_ns[@]}" ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

adopt_node() { # amd64|arm64: a buildkitd answering on the endpoint with no valid pid file (its file was
  # lost, or written by an older stack.sh) is taken back, so `down` and the tests can find it
  local pid; pid=$(node_listener "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(expected_comm "node-$1")" ] ||
    die "$(node_endpoint "$1") answers, but not as a buildkitd this script can manage (listener pid: ${pid:-none})"
  log "adopting BuildKit node $1 (pid $pid), already answering on $(node_endpoint "$1")"
  record_pid "node-$1" "$pid"
}

wait_node() { # arch seconds
  local name=node-$1 i
  for ((i = 0; i < $2 * 5; i++)); do
    node_answers "$1" && return 0
    running "$name" || die "$name exited (log: $LOG_DIR/$name.log)"
    sleep 0.2
  done
  die "$name did not answer on $(node_endpoint "$1") in ${2}s (log: $LOG_DIR/$name.log)"
}

nodes() {
  [ "$(id -u)" = 0 ] || die "run as root (starts daemons, creates a network namespace)"
  if ! [ -x /usr/local/bin/buildkitd ] || ! [ -x /usr/local/bin/bk-buildctl ] || ! buildkit_built; then
    die "BuildKit binaries missing: run 'scripts/stack.sh up --buildkit' first"
  fi
  mkdir -p "$STATE_DIR" "$LOG_DIR" "$PID_DIR"
  forget_stale_pids
  local started=() arch
  for arch in amd64 arm64; do
    if ! running "node-$arch" && node_answers "$arch"; then adopt_node "$arch"; fi
  done
  if ! node_answers amd64; then
    if ! running node-amd64; then
      local cfg
      cfg=$(node_config amd64 "$(node_endpoint amd64)")
      log "starting BuildKit node amd64 on $(node_endpoint amd64)"
      start_bg node-amd64 buildkitd --config "$cfg"
    fi
    started+=(amd64)
  fi
  if ! node_answers arm64 || ! running socat-arm64-host || ! running socat-arm64-ns; then
    {
      have socat || install_bookworm_packages "${NODE_PACKAGES[@]}"
      setup_node_netns
      start_node_forwarders
    } >&2   # stdout carries only the endpoint lines
    if ! node_answers arm64 && ! running node-arm64; then
      local cfg
      cfg=$(node_config arm64 "$(node_endpoint arm64)")
      log "starting BuildKit node arm64 on $(node_endpoint arm64) (network namespace $NODE_ARM64_NETNS)"
      start_bg node-arm64 nsenter "--net=/run/netns/$NODE_ARM64_NETNS" buildkitd --config "$cfg"
    fi
    started+=(arm64)
  fi
  for arch in "${started[@]}"; do wait_node "$arch" 30; done
  echo "$(node_endpoint amd64) linux/amd64"
  echo "$(node_endpoint arm64) linux/arm64"
}

nodes_down() { # stop the nodes and forwarders (by pid file), remove the namespace and veth we made
  local name pid
  for name in "${NODE_PIDS[@]}"; do
    pid=""
    if running "$name"; then read -r pid _ <"$PID_DIR/$name.pid"; fi
    stop_pid "$name"
    # socat forks a child per connection in the process group start_bg made (setsid): end those too
    if [[ $name == socat-* && -n $pid ]] && kill -0 -- "-$pid" 2>/dev/null; then kill -- "-$pid" 2>/dev/null || true; fi
  done
  rm -f "$NODES_RUN_DIR"/*/buildkitd.sock
  if ip link show "$NODE_ARM64_VETH_HOST" >/dev/null 2>&1; then ip link del "$NODE_ARM64_VETH_HOST"; fi
  if [ -e "/run/netns/$NODE_ARM64_NETNS" ]; then
    log "deleting network namespace $NODE_ARM64_NETNS"
    ip netns del "$NODE_ARM64_NETNS"
  fi
}

buildkit_status() { # extra status lines, only for what exists; returns 1 if something present is broken
  local rc=0
  if [ -e "$BK_BIN/buildkitd" ]; then   # only once `up --buildkit` was run for this state dir
    if buildkit_built && [ -x /usr/local/bin/buildkitd ] && [ -x /usr/local/bin/bk-buildctl ]; then
      line buildkit ok "$(/usr/local/bin/buildkitd --version 2>/dev/null | awk '{print $3}')"
    else
      line buildkit FAIL "binaries missing or stale (run scripts/stack.sh up --buildkit)"; rc=1
    fi
  fi
  if [ -f "$BK_DIR/image" ]; then
    local ref; ref=$(cat "$BK_DIR/image")
    local path=${ref#"$REGISTRY_ADDR"/}
    if registry_has "${path%:*}" "${path##*:}"; then line bk-image ok "$ref"; else line bk-image FAIL "$ref missing"; rc=1; fi
  fi
  local arch
  for arch in amd64 arm64; do
    [ -f "$PID_DIR/node-$arch.pid" ] || continue   # never started here: nothing to report
    if ! running "node-$arch"; then   # stopped (killed, machine restarted): `nodes` starts it again
      line "node-$arch" off "$(node_endpoint "$arch") stopped (scripts/stack.sh nodes starts it)"
    elif node_answers "$arch"; then
      line "node-$arch" ok "$(node_endpoint "$arch") linux/$arch"
    else
      line "node-$arch" FAIL "$(node_endpoint "$arch") not answering (log: $LOG_DIR/node-$arch.log)"; rc=1
    fi
  done
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    build) buildkit_compile ;;
    *) echo "usage: $0 build   (normally run through scripts/stack.sh up --buildkit)" >&2; exit 2 ;;
  esac
fi
