#!/usr/bin/env python3
"""Topic administration under load (issue 23): a light producer's latency while another client
creates and deletes 1 000-partition topics in a loop, next to the same producer alone.

A single broker on a fresh data directory; the light producer is confluent-kafka, acks=all,
linger 0, 1 000 records/s of 100 B for PHASE_SECONDS. CreateTopics and DeleteTopics open, create
and unlink files: where that work blocks an event loop, or holds a lock produce requests take,
the producer's tail shows it.

    python3 Benchmarks/admin-under-load/run.py .build/release/tern
"""
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

PHASE_SECONDS = 20
RATE = 1000


def churn(bootstrap, stop, done):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    n = 0
    while not stop.is_set():
        name = f"churn-{n}"
        admin.create_topics([NewTopic(name, 1000, 1)])[name].result(60)
        admin.delete_topics([name])[name].result(60)
        n += 1
    done.put(n)


def light(bootstrap, seconds):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    p.produce("light", value=b"warm-up")
    p.flush(20)
    latencies, sent = [], {}

    def report(err, msg):
        if err is None:
            latencies.append((time.monotonic() - sent[msg.value()]) * 1000)

    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        due = start + i / RATE
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        value = b"%08d" % i + b"x" * 92
        sent[value] = time.monotonic()
        p.produce("light", value=value, on_delivery=report)
        p.poll(0)
        i += 1
    p.flush(60)
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))]

    return pct(0.5), pct(0.99), latencies[-1], len(latencies), i


def main():
    binary = sys.argv[1]
    root = tempfile.mkdtemp(prefix="tern-admin-load-")
    port = 19400 + os.getpid() % 400
    log = open(os.path.join(root, "broker.log"), "wb")
    broker = subprocess.Popen([binary, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{port}", "--log-dirs",
                               os.path.join(root, "data"), "--metrics-listener", "off"], stdout=log, stderr=subprocess.STDOUT)
    bootstrap = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("light", 1, 1)])["light"].result(30)
        p50, p99, worst, acked, sent = light(bootstrap, PHASE_SECONDS)
        print(f"alone        p50 {p50:7.1f} ms  p99 {p99:8.1f} ms  max {worst:8.1f} ms  ({acked}/{sent} acked)", flush=True)
        stop, done = multiprocessing.Event(), multiprocessing.Queue()
        worker = multiprocessing.Process(target=churn, args=(bootstrap, stop, done))
        worker.start()
        time.sleep(2)
        p50, p99, worst, acked, sent = light(bootstrap, PHASE_SECONDS)
        stop.set()
        worker.join(120)
        cycles = done.get(timeout=5) if not done.empty() else "?"
        print(f"beside churn p50 {p50:7.1f} ms  p99 {p99:8.1f} ms  max {worst:8.1f} ms  ({acked}/{sent} acked; "
              f"{cycles} create+delete cycles of 1 000 partitions)", flush=True)
    finally:
        broker.kill()
        broker.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
