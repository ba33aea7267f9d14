#!/usr/bin/env bash
# The official MCP conformance suite against the mediator (server scenarios), with a checked-in
# baseline of the scenarios that cannot apply (.ci/conformance-baseline.yml). Any other failure,
# or a baseline entry that starts passing, fails. Needs Node >= 22: npm's node-linux-<arch>
# package (what the `node` package would fetch) is installed into a temp folder; the system's
# node is not touched. tests/conformance/harness.py serves the mediator behind a loopback proxy
# that adds the Authorization header (the suite cannot send one).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFORMANCE_VERSION="${CONFORMANCE_VERSION:-0.1.16}"
NODE_MAJOR=22

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "conformance: npm is missing (apt-get install npm)" >&2
    exit 1
  fi
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "conformance: no node build for $(uname -m)" >&2; exit 1 ;;
esac

work="$(mktemp -d /tmp/tenantgate-conformance-XXXXXX)"
harness=""
cleanup() {
  if [ -n "$harness" ]; then kill -TERM "$harness" 2>/dev/null || true; wait "$harness" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "{\"private\": true}" > "$work/package.json"
npm install --prefix "$work" --no-audit --no-fund --loglevel=error \
  "node-linux-$arch@$NODE_MAJOR" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
node="$work/node_modules/node-linux-$arch/bin/node"
echo "conformance $CONFORMANCE_VERSION on node $("$node" --version)"

.venv/bin/python -m tests.conformance.harness > "$work/url" 2> "$work/harness.log" &
harness=$!
for _ in $(seq 1 180); do
  [ -s "$work/url" ] && break
  if ! kill -0 "$harness" 2>/dev/null; then cat "$work/harness.log" >&2; exit 1; fi
  sleep 1
done
url="$(head -n 1 "$work/url")"
"$node" "$work/node_modules/@modelcontextprotocol/conformance/dist/index.js" server \
  --url "$url" --expected-failures .ci/conformance-baseline.yml --output-dir "$work/results"
