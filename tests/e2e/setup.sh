#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs, from the package registries only (apt, npm):
# Debian's chromium, libkrb5-dev + ripgrep (code-server's native build and its ripgrep stand-in),
# code-server (npm, cached under $E2E_CACHE keyed by version) and playwright-core (tests/e2e/node_modules).
# Idempotent: a second run with everything cached takes a second or two.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CODE_SERVER_VERSION=4.100.3   # = VS Code 1.100.3, the last code-server whose engines.node is 20
RIPGREP_PKG_VERSION=1.15.11   # @vscode/ripgrep pinned by code-server 4.100.3 (its cache dir name)
CACHE=${E2E_CACHE:-$HOME/.cache/memlens-e2e}
CS_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
ms() { date +%s%3N; }
T0=$(ms)

# 1. Debian packages (root + the Debian registry; skipped when present).
bash "$REPO/scripts/ensure-chromium.sh"
missing=()
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing ${missing[*]}: install them with apt-get (needs root)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
T1=$(ms)

# 2. code-server from npm, once per version. The stamp is written only after a complete install,
#    so an interrupted install is redone instead of half-used.
if [ ! -f "$CS_DIR/.installed" ]; then
  rm -rf "$CS_DIR" && mkdir -p "$CS_DIR"
  export TMPDIR=$CS_DIR/tmp && mkdir -p "$TMPDIR"
  # @vscode/ripgrep's postinstall downloads rg from GitHub unless it finds this cached asset.
  rg_cache=$TMPDIR/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION
  mkdir -p "$rg_cache" "$TMPDIR/rg" && cp "$(command -v rg)" "$TMPDIR/rg/rg"
  tar czf "$rg_cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$TMPDIR/rg" rg
  echo '{"name":"memlens-e2e-code-server","private":true}' > "$CS_DIR/package.json"
  echo "installing code-server $CODE_SERVER_VERSION into $CS_DIR (about a minute)"
  # unsafe_perm: its postinstall refuses root without it; yes: node-pty's postinstall runs npx;
  # nodedir: build native modules against the installed node headers, never download them.
  (cd "$CS_DIR" && npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
     npm install --no-fund --no-audit --foreground-scripts "code-server@$CODE_SERVER_VERSION" \
     > "$CS_DIR/install.log" 2>&1) || { tail -40 "$CS_DIR/install.log"; exit 1; }
  rm -rf "$TMPDIR"
  touch "$CS_DIR/.installed"
fi
T2=$(ms)

# 3. playwright-core for the driver (pinned by tests/e2e/package-lock.json; it downloads no browser).
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  (cd "$HERE" && npm ci --no-fund --no-audit >/dev/null)
fi
T3=$(ms)
echo "e2e setup: apt $(( (T1-T0)/1000 ))s, code-server $(( (T2-T1)/1000 ))s, playwright-core $(( (T3-T2)/1000 ))s"
