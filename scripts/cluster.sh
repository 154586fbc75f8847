#!/usr/bin/env bash
# `make cluster`: etcd + three Tern brokers on 127.0.0.1:9092/9093/9094 (node ids 1-3), data in
# ./cluster-data (etcd's too), so a second run starts the same cluster again. TERN_BROKER_ARGS adds
# flags to every broker (e.g. "--set replica.lag.time.max.ms=10000"). Ctrl-C stops the
# brokers with SIGTERM (controlled shutdown: leaderships move first), then etcd.
set -euo pipefail
TERN=${TERN:-.build/release/tern}
DATA=${CLUSTER_DATA:-./cluster-data}
ETCD_PORT=${ETCD_PORT:-2379}
mkdir -p "$DATA"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping brokers (controlled shutdown)…"
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  kill -TERM "${pids[0]}" 2>/dev/null || true
  wait "${pids[0]}" 2>/dev/null || true
  echo "stopped; start again with make cluster"
}
trap stop INT TERM EXIT

# Its own session: a Ctrl-C in the terminal reaches the brokers, which need etcd for their
# controlled shutdown; etcd is stopped after them.
setsid etcd --name tern --data-dir "$DATA/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls http://127.0.0.1:$((ETCD_PORT + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((ETCD_PORT + 1)) \
  --initial-cluster "tern=http://127.0.0.1:$((ETCD_PORT + 1))" >"$DATA/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$ETCD_PORT) 2>/dev/null && break; sleep 0.1; done

for id in 1 2 3; do
  port=$((9091 + id))
  "$TERN" broker --node-id "$id" --cluster "etcd://127.0.0.1:$ETCD_PORT" \
    --listeners "PLAINTEXT://127.0.0.1:$port" --log-dirs "$DATA/broker-$id" \
    --metrics-listener "127.0.0.1:$((9643 + id))" ${TERN_BROKER_ARGS:-} > >(sed -u "s/^/[broker $id] /") 2>&1 &
  pids+=($!)
done
echo "cluster up: bootstrap 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 (etcd 127.0.0.1:$ETCD_PORT); Ctrl-C stops it"
wait
