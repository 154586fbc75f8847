#!/usr/bin/env bash
# `make bench-replication`: produce throughput and latency with replication, measured in one run
# on one machine — RF=1 acks=1 (the baseline), RF=3 acks=all, RF=3 acks=all with
# tern.replication.fsync and RF=3 acks=1
# (min.insync.replicas=2) — against a fresh etcd + 3-broker cluster (scripts/cluster.sh) that is
# stopped afterwards. Release build; RECORDS (default 3 000 000) records of 100 bytes each.
set -euo pipefail
TERN=${TERN:-.build/release/tern}
RECORDS=${RECORDS:-3000000}
export CLUSTER_DATA=$(mktemp -d /tmp/tern-bench-cluster.XXXXXX)
export ETCD_PORT=${ETCD_PORT:-23790}
BOOT=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094

setsid bash scripts/cluster.sh >"$CLUSTER_DATA/cluster.log" 2>&1 &
cluster=$!
cleanup() { grep -E "warning|error|refused" "$CLUSTER_DATA/cluster.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -8 >&2 || true; kill -TERM -- -"$cluster" 2>/dev/null || kill -TERM "$cluster" 2>/dev/null || true; wait "$cluster" 2>/dev/null || true; rm -rf "$CLUSTER_DATA"; }
trap cleanup EXIT
for _ in $(seq 100); do "$TERN" cluster info -b "$BOOT" 2>/dev/null | grep -q "broker 3" && break; sleep 0.3; done

"$TERN" topic create bench-rf1 -p 6 -r 1 -b "$BOOT"
"$TERN" topic create bench-rf3 -p 6 -r 3 -c min.insync.replicas=2 -b "$BOOT"
"$TERN" topic create bench-rf3-fsync -p 6 -r 3 -c min.insync.replicas=2 -c tern.replication.fsync=true -b "$BOOT"
sleep 2
# Each run starts once the previous one's followers have had time to copy their backlog (an
# acks=1 run leaves one, and syncing copies keep the disk busy), so no run waits for another's.
for run in "bench-rf1 1" "bench-rf3 -1" "bench-rf3-fsync -1" "bench-rf3 1"; do
  set -- $run
  sleep "${SETTLE_SECONDS:-10}"
  echo "== topic $1, acks=$2"
  "$TERN" bench produce -t "$1" -n "$RECORDS" --record-size 100 --acks="$2" -b "$BOOT"
done
