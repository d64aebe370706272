#!/usr/bin/env bash
# Installs what building and testing Runnel needs on Debian 12, and does
# nothing (no network, no root) on a machine that already has it all.
#
#   scripts/deps.sh            build + test tools (clients, pytest, node)
#   scripts/deps.sh --runtime  only what building and running the broker needs
#
# Packages are checked with dpkg-query first; `apt-get update` runs only
# when something is missing.  The kafkajs tests' node_modules are
# installed with `npm ci` when absent or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
"") ;;
--runtime) mode=runtime ;;
*)
    echo "usage: scripts/deps.sh [--runtime]" >&2
    exit 2
    ;;
esac

# The compiler and the libraries the Makefile links (-lrdkafka
# -lzookeeper_mt -lz -lsnappy -llz4 -lzstd, and through pkg-config
# libmicrohttpd, jansson and libcurl: the admin HTTP server and its client
# in the CLI; the ZooKeeper C client for cluster mode).
runtime_pkgs=(gcc make pkg-config libc6-dev librdkafka-dev libsnappy-dev liblz4-dev
    libzstd-dev zlib1g-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
    libzookeeper-mt-dev)
# Real clients the integration tests drive.  python3-snappy, -lz4 and
# -zstandard give kafka-python its compression codecs.  zookeeper (the
# server, with Java) and python3-kazoo (to read znodes) for the cluster
# tests.
test_pkgs=(kcat python3 python3-pytest python3-confluent-kafka python3-kafka
    python3-snappy python3-lz4 python3-zstandard zookeeper python3-kazoo)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

want=("${runtime_pkgs[@]}")
if [ "$mode" = full ]; then
    want+=("${test_pkgs[@]}")
    # Node may come from Debian or from elsewhere (its own npm bundled,
    # which conflicts with Debian's npm package): ask for the commands.
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        fi
    fi
    echo "deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$mode" = full ]; then
    js=tests/js
    # npm ci writes node_modules/.package-lock.json; when it is missing or
    # older than the lock file, node_modules does not match the lock.
    if [ ! -f "$js/node_modules/.package-lock.json" ] ||
        [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
        echo "deps.sh: npm ci in $js" >&2
        (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
