#!/usr/bin/env bash
# One end-to-end run of the memlens extension in a real VS Code: a fresh code-server profile with
# the .vsix installed, a copy of tests/e2e/workspace, memlens.python = the given interpreter, and
# e2e.mjs driving headless chromium. Run tests/e2e/setup.sh first (make test-e2e does).
# Usage: run.sh <memlens.vsix> <python with memlens>     Env: KEEP_RUN=1 keeps the run folder.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VSIX=$(realpath "${1:?usage: run.sh <memlens.vsix> <python>}")
PYTHON=$(realpath -s "${2:?usage: run.sh <memlens.vsix> <python>}")
CODE_SERVER_VERSION=4.100.3
CACHE=${E2E_CACHE:-$HOME/.cache/memlens-e2e}
CODE_SERVER_BIN=$CACHE/code-server-$CODE_SERVER_VERSION/node_modules/.bin/code-server
ARTIFACTS=$HERE/artifacts
[ -x "$CODE_SERVER_BIN" ] || { echo "code-server missing: run tests/e2e/setup.sh" >&2; exit 1; }
"$PYTHON" -c "import memlens._native" 2>/dev/null || { echo "$PYTHON cannot import memlens._native: make build" >&2; exit 1; }

RUN=$(mktemp -d "${TMPDIR:-/tmp}/memlens-e2e.XXXXXX")
mkdir -p "$RUN"/{user-data/User,extensions,xdg-config,xdg-data,xdg-cache,tmp} "$ARTIFACTS"
cp -r "$HERE/workspace" "$RUN/ws"
# User settings = the fixed first-run UI + our interpreter (the driver overrides it in the
# workspace settings to test a wrong interpreter).
node -e '
  const fs = require("fs");
  const settings = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  settings["memlens.python"] = process.argv[2];
  fs.writeFileSync(process.argv[3], JSON.stringify(settings, null, 2));
' "$HERE/settings.json" "$PYTHON" "$RUN/user-data/User/settings.json"
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
printf 'bind-addr: 127.0.0.1:%s\nauth: none\ncert: false\n' "$PORT" > "$RUN/config.yaml"
# Keep code-server, the VS Code server (ipc sockets go to $TMPDIR) and chromium inside $RUN.
export XDG_CONFIG_HOME=$RUN/xdg-config XDG_DATA_HOME=$RUN/xdg-data XDG_CACHE_HOME=$RUN/xdg-cache TMPDIR=$RUN/tmp
CODE_SERVER=("$CODE_SERVER_BIN" --config "$RUN/config.yaml" --user-data-dir "$RUN/user-data" --extensions-dir "$RUN/extensions")
ms() { date +%s%3N; }

t0=$(ms)
"${CODE_SERVER[@]}" --install-extension "$VSIX" --force > "$RUN/install.log" 2>&1 || { cat "$RUN/install.log"; exit 1; }
t1=$(ms)
# setsid: its own process group, so the extension host, the file watcher and the memlens server
# (and any profiled script) are stopped together.
setsid "${CODE_SERVER[@]}" --bind-addr "127.0.0.1:$PORT" --auth none \
  --disable-telemetry --disable-update-check --disable-workspace-trust \
  --disable-getting-started-override --disable-proxy --ignore-last-opened \
  > "$RUN/code-server.log" 2>&1 &
CS_PID=$!
stop_code_server() {
  kill -TERM -- "-$CS_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$CS_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$CS_PID" 2>/dev/null || true
}
trap stop_code_server EXIT
for _ in $(seq 1 300); do   # at most 30 s
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$CS_PID" 2>/dev/null || { echo "code-server died:"; cat "$RUN/code-server.log"; exit 1; }
  sleep 0.1
done
t2=$(ms)

rc=0
rm -f "$ARTIFACTS"/*.png "$ARTIFACTS"/results.json
E2E_PYTHON=$PYTHON timeout 240 node "$HERE/e2e.mjs" "http://127.0.0.1:$PORT" "$RUN/ws" "$ARTIFACTS" || rc=$?
t3=$(ms)
stop_code_server; trap - EXIT
echo "timings: install-ext $(( t1-t0 ))ms, code-server up $(( t2-t1 ))ms, browser E2E $(( t3-t2 ))ms, total $(( t3-t0 ))ms"
if [ $rc -ne 0 ]; then
  echo "--- memlens extension log(s):"
  tail -n 60 "$RUN"/user-data/logs/*/exthost*/memlens.memlens/*.log 2>/dev/null || true
  echo "--- run folder kept: $RUN"
elif [ "${KEEP_RUN:-0}" = 1 ]; then
  echo "run folder kept: $RUN"
else
  rm -rf "$RUN"
fi
exit $rc
