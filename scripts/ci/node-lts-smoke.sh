#!/usr/bin/env bash
# Smoke test on the current Node LTS (major KIRIS_CI_NODE_MAJOR, default 24): installs the npm
# registry's Node binary package (node-<os>-<arch>), installs the project with it into a cached
# copy (native modules compiled for that Node from the headers the package ships), builds dist/,
# and runs scripts/ci/smoke.ts on it (hub, worker, tasks, a chat turn with the fake model).
# Idempotent: the binary and the copy's node_modules are kept in KIRIS_CI_CACHE (default
# ~/.cache/kiris-ci) and reinstalled only when package-lock.json changes. Needs no stdin.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
major="${KIRIS_CI_NODE_MAJOR:-24}"
cache="${KIRIS_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiris-ci}/node-$major"

os="$(node -p 'process.platform === "win32" ? "win" : process.platform')"
arch="$(node -p 'process.arch')"
package="node-$os-$arch"

# the Node binary, from the registry (a newer release of the same major replaces it)
mkdir -p "$cache/node"
npm install --prefix "$cache/node" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$package@$major" </dev/null >/dev/null
node_home="$cache/node/node_modules/$package"
[[ -x "$node_home/bin/node" ]] || { echo "no node binary in $node_home" >&2; exit 1; }
export PATH="$node_home/bin:$PATH"
# node-gyp builds native modules against the headers shipped in the package (no download)
export npm_config_nodedir="$node_home"
# prebuilt native binaries come from outside the registry: compile them instead
export npm_config_build_from_source=true

# a copy of the project, installed with that Node
app="$cache/app"
mkdir -p "$app/test"
rm -rf "$app/src" "$app/bin" "$app/scripts" "$app/test/support"
cp "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$app/"
cp -R "$root/src" "$root/bin" "$root/scripts" "$app/"
cp -R "$root/test/support" "$app/test/"

cd "$app"
lock_hash="$(node -e 'process.stdout.write(require("node:crypto").createHash("sha256").update(require("node:fs").readFileSync("package-lock.json")).digest("hex") + " " + process.version)')"
if [[ ! -d node_modules || "$(cat .installed 2>/dev/null || true)" != "$lock_hash" ]]; then
  rm -f .installed
  npm ci --no-audit --no-fund --loglevel=error </dev/null
  printf '%s' "$lock_hash" >.installed
fi
node scripts/build.mjs --quiet
node node_modules/tsx/dist/cli.mjs scripts/ci/smoke.ts </dev/null
