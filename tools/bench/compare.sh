#!/usr/bin/env bash
# compare.sh BIN_A BIN_B [ROUNDS]: runs the load tool against two gateway binaries in turn
# (A B A B …) on this machine and prints, per round, health throughput and gateway CPU per
# 1000 requests over 8 connections, paced latency (p50/p99 at 1000 req/s), and the RSS
# with 10,000 idle connections. Needs: go build -o /tmp/loadtool ./tools/load.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3}
LOAD=${LOAD:-/tmp/loadtool}
ulimit -n "$(ulimit -Hn)"
port=28789
run() { # bin label
  local bin=$1 label=$2 dir; dir=$(mktemp -d)
  # 10,000 connections need a connection cap above the default 1024 (gateway.maxConnections).
  printf '{ "gateway": { "maxConnections": 12000 } }\n' >"$dir/clawdis.json"
  HOME=$dir CLAWDIS_CONFIG_PATH=$dir/clawdis.json "$bin" gateway --state-dir "$dir/state" --port $port --no-providers --no-webchat --log-format json >"$dir/log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q listening "$dir/log" 2>/dev/null && break; sleep 0.1; done
  local url=ws://127.0.0.1:$port
  echo "== $label"
  "$LOAD" -url $url -conns 8 -max -hold 10s -pid $pid 2>&1 | grep -Ei "req/s|per 1000|p50|p99" | sed 's/^/  max: /'
  "$LOAD" -url $url -conns 8 -rate 1000 -hold 10s -pid $pid 2>&1 | grep -Ei "p50|p99" | sed 's/^/  paced: /'
  "$LOAD" -url $url -conns 10000 -parallel 64 -hold 5s -pid $pid 2>&1 | grep -Ei "rss|failed" | sed 's/^/  10k: /'
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
}
for r in $(seq 1 "$ROUNDS"); do
  run "$A" "A round $r"
  run "$B" "B round $r"
done
