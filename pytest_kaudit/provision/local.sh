#!/usr/bin/env bash
# Provision etcd and kube-apiserver for pytest-kaudit's `local` backend.
#
# Prints, as its last line, a directory holding `etcd` and `kube-apiserver`
# (usable as KUBEBUILDER_ASSETS). Idempotent: binaries are cached by version
# outside the checkout, so a fresh clone skips the build.
#
# With --source-tree it instead prepares (or reuses) the unpacked Debian
# kubernetes source tree in GOPATH layout and prints its path: the kind node
# image build compiles the rest of the control plane from that same tree.
#
# Routes, in order:
#   1. reuse: KUBEBUILDER_ASSETS, TEST_ASSET_* or PATH already has both binaries;
#   2. cache: a binary built or downloaded earlier;
#   3. --upstream VERSION: download release binaries (needs internet);
#   4. Debian: etcd from `etcd-server`, kube-apiserver built from Debian's
#      `kubernetes` source package (upstream 1.20.2) with Debian's Go.
set -euo pipefail

usage() {
  cat <<USAGE
usage: kaudit provision [--upstream VERSION] [--etcd-version VERSION] [--force] [--cache-dir DIR] [--source-tree]

  --upstream VERSION   download kube-apiserver VERSION (e.g. v1.31.0) and etcd
                       from the upstream release sites instead of building
  --etcd-version V     etcd release for --upstream (default v3.5.15)
  --force              ignore binaries already on PATH / in KUBEBUILDER_ASSETS
  --cache-dir DIR      cache root (default \$KAUDIT_CACHE_DIR or
                       \${XDG_CACHE_HOME:-~/.cache}/pytest-kaudit)
  --source-tree        prepare the Debian kubernetes source tree (GOPATH layout)
                       and print its path instead of the binaries directory
USAGE
}

upstream=""
etcd_version="v3.5.15"
force=0
source_only=0
cache="${KAUDIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-kaudit}"
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) upstream="${2:?--upstream needs a version}"; shift 2 ;;
    --etcd-version) etcd_version="${2:?--etcd-version needs a version}"; shift 2 ;;
    --force) force=1; shift ;;
    --source-tree) source_only=1; shift ;;
    --cache-dir) cache="${2:?--cache-dir needs a directory}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "provision: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "provision: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
executable() { [ -n "$1" ] && [ -x "$1" ] && [ ! -d "$1" ]; }

mkdir -p "$cache"
chmod 0700 "$cache"
exec 9>"$cache/.provision.lock"
flock 9

# Link both binaries into one directory and print it (the contract's last line).
publish() {
  local apiserver="$1" etcd="$2" version
  version="$("$apiserver" --version 2>/dev/null | awk '{print $2}')"
  local dir="$cache/assets/${version:-unknown}"
  mkdir -p "$dir"
  ln -sfn "$(readlink -f "$apiserver")" "$dir/kube-apiserver"
  ln -sfn "$(readlink -f "$etcd")" "$dir/etcd"
  log "kube-apiserver $version: $(readlink -f "$apiserver")"
  log "etcd: $(readlink -f "$etcd") ($("$etcd" --version 2>/dev/null | head -n1))"
  echo "$dir"
  exit 0
}

# 1. Reuse what the user already has.
if [ "$force" = 0 ] && [ -z "$upstream" ] && [ "$source_only" = 0 ]; then
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && executable "$KUBEBUILDER_ASSETS/kube-apiserver" \
      && executable "$KUBEBUILDER_ASSETS/etcd"; then
    log "reusing KUBEBUILDER_ASSETS"
    publish "$KUBEBUILDER_ASSETS/kube-apiserver" "$KUBEBUILDER_ASSETS/etcd"
  fi
  if executable "${TEST_ASSET_KUBE_APISERVER:-}" && executable "${TEST_ASSET_ETCD:-}"; then
    log "reusing TEST_ASSET_KUBE_APISERVER / TEST_ASSET_ETCD"
    publish "$TEST_ASSET_KUBE_APISERVER" "$TEST_ASSET_ETCD"
  fi
  if command -v kube-apiserver >/dev/null && command -v etcd >/dev/null; then
    log "reusing binaries on PATH"
    publish "$(command -v kube-apiserver)" "$(command -v etcd)"
  fi
fi

# 3. Upstream release binaries, for users with internet.
if [ -n "$upstream" ]; then
  arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
  case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
  dir="$cache/upstream/$upstream"
  if ! executable "$dir/kube-apiserver"; then
    mkdir -p "$dir"
    log "downloading kube-apiserver $upstream ($arch)"
    curl -fsSL -o "$dir/kube-apiserver.part" "https://dl.k8s.io/release/$upstream/bin/linux/$arch/kube-apiserver"
    chmod 0755 "$dir/kube-apiserver.part" && mv "$dir/kube-apiserver.part" "$dir/kube-apiserver"
  fi
  if ! executable "$dir/etcd"; then
    log "downloading etcd $etcd_version ($arch)"
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    curl -fsSL -o "$tmp/etcd.tgz" \
      "https://github.com/etcd-io/etcd/releases/download/$etcd_version/etcd-$etcd_version-linux-$arch.tar.gz"
    tar -xzf "$tmp/etcd.tgz" -C "$tmp" --strip-components=1
    install -m 0755 "$tmp/etcd" "$dir/etcd"
  fi
  publish "$dir/kube-apiserver" "$dir/etcd"
fi

# 4. Debian route.
if ! command -v apt-get >/dev/null; then
  log "no kube-apiserver found and this is not a Debian-like system."
  log "get binaries with setup-envtest, or run: $0 --upstream v1.31.0"
  exit 1
fi

apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { as_root apt-get update -qq >&2; apt_updated=1; }; }
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} = 0 ] && return 0
  apt_update
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

apt_install etcd-server
etcd_bin=/usr/bin/etcd

# The source package version keys the cache (e.g. 1.20.5+really1.20.2-1.1).
src_version() { apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}'; }
ensure_deb_src() {
  if [ -z "$(src_version)" ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ] \
        && ! grep -q '^Types:.*deb-src' /etc/apt/sources.list.d/debian.sources; then
      log "adding deb-src entries (/etc/apt/sources.list.d/kaudit-deb-src.sources)"
      sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        | as_root tee /etc/apt/sources.list.d/kaudit-deb-src.sources >/dev/null
    fi
    apt_updated=0
    apt_update
  fi
  [ -n "$(src_version)" ] || { log "apt knows no source package 'kubernetes'; add a deb-src entry"; exit 1; }
}

# Cached build from an earlier run (any source version; newest first).
cached="$(ls -d "$cache"/debian/*/kube-apiserver 2>/dev/null | sort -V | tail -n1 || true)"
if [ "$source_only" = 0 ] && executable "$cached" && [ "$force" = 0 ]; then
  log "using cached build"
  publish "$cached" "$etcd_bin"
fi

ensure_deb_src
version="$(src_version)"

# The unpacked source tree, kept under the cache so that later builds (the kind
# node image's kubelet, kubeadm, controller-manager, scheduler) share it and the
# Go build cache. It is prepared in a scratch directory and renamed into place
# only when complete, so an interrupted run never leaves a half tree behind.
src_root="$cache/src/$version"
tree="$(find "$src_root" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' 2>/dev/null | head -n1 || true)"
if [ -z "$tree" ] || [ ! -f "$tree/.kaudit-prepared" ]; then
  apt_install golang-go rsync jq make golang-github-modern-go-reflect2-dev dpkg-dev
  scratch="$cache/src/.scratch-$$"
  rm -rf "$scratch" "$src_root"; mkdir -p "$scratch"
  trap 'rm -rf "$scratch"' EXIT
  log "fetching Debian source package kubernetes $version"
  (cd "$scratch" && apt-get source --download-only kubernetes >&2)
  orig="$(ls "$scratch"/kubernetes_*.orig.tar.gz | head -n1)"
  tar -xzf "$orig" -C "$scratch"
  rm -f "$scratch"/kubernetes_*
  tree="$(find "$scratch" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
  # Vendored reflect2 v1.0.1 segfaults under Go >= 1.18; Debian ships the fixed v1.0.2.
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
  mkdir -p "$tree/.go/src/k8s.io"
  ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
  touch "$tree/.kaudit-prepared"
  mv "$scratch" "$src_root"
  trap - EXIT
  tree="$src_root/$(basename "$tree")"
fi
if [ "$source_only" = 1 ]; then
  echo "$tree"
  exit 0
fi

out="$cache/debian/$version"
if ! executable "$out/kube-apiserver"; then
  apt_install golang-go rsync jq make golang-github-modern-go-reflect2-dev dpkg-dev
  mkdir -p "$cache/home"
  log "building kube-apiserver (about 5 minutes on 2 cores)"
  (cd "$tree" && GOPATH="$tree/.go" GOFLAGS= GO111MODULE=off CGO_ENABLED=0 HOME="$cache/home" \
     GOCACHE="$cache/go-build" make WHAT=cmd/kube-apiserver >&2)
  mkdir -p "$out"
  install -m 0755 "$tree/_output/bin/kube-apiserver" "$out/kube-apiserver.part"
  mv "$out/kube-apiserver.part" "$out/kube-apiserver"
fi
publish "$out/kube-apiserver" "$etcd_bin"
