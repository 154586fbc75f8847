#!/usr/bin/env bash
# Noisy-neighbour benchmark (issue 9): runs one broker binary on a fresh data directory and measures
#   1. produce 3 M × 100 B, acks=1 (throughput, the cost of validation),
#   2. a light producer (1 000 records/s × 100 B, acks=all) alone,
#   3. the same light producer beside a librdkafka producer writing 10 KB records flat out,
# and the broker's peak RSS during 3. Run it for two binaries to compare them in one session:
#   Benchmarks/noisy-neighbour/run.sh /path/to/old/tern old; Benchmarks/noisy-neighbour/run.sh .build/release/tern new
# The client side always uses TERN_CLIENT (default: .build/release/tern).
set -euo pipefail
BIN=$1
LABEL=${2:-tern}
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=${TERN_CLIENT:-$HERE/../../.build/release/tern}
PORT=${PORT:-19094}
DATA=$(mktemp -d)
"$BIN" broker --listeners PLAINTEXT://127.0.0.1:$PORT --log-dirs "$DATA" --metrics-listener off > "$DATA.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true; wait $BROKER 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
sleep 2
echo "== $LABEL: produce 3M x 100B acks=1"
"$CLIENT" bench produce -b 127.0.0.1:$PORT -n 3000000 --record-size 100 --acks 1 | grep -E "throughput|latency"
echo "== $LABEL: light producer alone"
"$CLIENT" bench produce -b 127.0.0.1:$PORT -t light --partitions 1 --rate 1000 --linger-ms 0 -s 100 --duration 8 --acks=-1 | grep latency
echo "== $LABEL: light producer beside a librdkafka producer of 10 KB records (acks=all)"
python3 "$HERE/heavy_librdkafka.py" 127.0.0.1:$PORT 14 > "$DATA.heavy" 2>&1 &
HEAVY=$!
(for _ in $(seq 1 16); do awk '/VmRSS/ {print $2}' /proc/$BROKER/status; sleep 1; done) > "$DATA.rss" &
sleep 2
"$CLIENT" bench produce -b 127.0.0.1:$PORT -t light --partitions 1 --rate 1000 --linger-ms 0 -s 100 --duration 10 --acks=-1 | grep latency
wait $HEAVY
cat "$DATA.heavy"
echo "broker peak RSS: $(sort -n "$DATA.rss" | tail -1) kB"
rm -f "$DATA.heavy" "$DATA.rss"
