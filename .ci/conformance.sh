#!/usr/bin/env bash
# The official MCP conformance suite against the mediator (server scenarios), with a checked-in
# baseline of the scenarios that cannot apply (.ci/conformance-baseline.yml). Any other failure,
# or a baseline entry that starts passing, fails. Needs Node >= 22: npm's node-linux-<arch>
# package (what the `node` package would fetch) is installed into a temp folder; the system's
# node is not touched. tests/conformance/harness.py serves the mediator behind a loopback proxy
# that adds the Authorization header (the suite cannot send one).
set -euo pipefail
cd "$(dirname "$0")/.."
STABLE=0.1.16        # the released suite: 2025-06-18 and 2025-11-25 scenarios
NEXT=0.2.0-alpha.12  # pinned pre-release: the 2026-07-28 scenarios
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
npm install --prefix "$work" --no-audit --no-fund --loglevel=error "node-linux-$arch@$NODE_MAJOR" \
  "conformance-stable@npm:@modelcontextprotocol/conformance@$STABLE" \
  "conformance-next@npm:@modelcontextprotocol/conformance@$NEXT"
node="$work/node_modules/node-linux-$arch/bin/node"
echo "conformance $STABLE and $NEXT on node $("$node" --version)"

.venv/bin/python -m tests.conformance.harness > "$work/url" 2> "$work/harness.log" &
harness=$!
for _ in $(seq 1 180); do
  [ -s "$work/url" ] && break
  if ! kill -0 "$harness" 2>/dev/null; then cat "$work/harness.log" >&2; exit 1; fi
  sleep 1
done
url="$(head -n 1 "$work/url")"
status=0
echo "== conformance $STABLE (active suite)"
"$node" "$work/node_modules/conformance-stable/dist/index.js" server --url "$url" \
  --expected-failures .ci/conformance-baseline.yml --output-dir "$work/stable" || status=1
echo "== conformance $NEXT (every 2026-07-28 scenario)"
"$node" "$work/node_modules/conformance-next/dist/index.js" server --url "$url" \
  --suite all --spec-version 2026-07-28 \
  --expected-failures .ci/conformance-baseline-2026-07-28.yml --output-dir "$work/next" || status=1
exit "$status"
