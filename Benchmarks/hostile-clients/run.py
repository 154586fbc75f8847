#!/usr/bin/env python3
"""Hostile-client benchmark (issue 22): what one client's abuse costs everyone else.

For one broker binary, each phase on a fresh broker and data directory:
  baseline   a light producer (confluent-kafka, acks=all, linger 0, 200 records/s) alone;
  bombs      the same while two connections each send one 40-partition produce request of gzip
             batches that each inflate to just under 64 MiB (about 2.4 MB on the wire);
  pipelined  the same while 200 connections pipeline Metadata requests and never read a reply.
Printed per phase: the light producer's p50/p99/max delivery latency, the slowest ApiVersions
answered to a fresh connection (probed every 100 ms), and the broker's peak RSS (sampled every
100 ms). Run it for two binaries in one session and read the figures as ratios:

    python3 Benchmarks/hostile-clients/run.py /tmp/tern-before before
    python3 Benchmarks/hostile-clients/run.py .build/release/tern after
"""
import gzip
import multiprocessing
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import crc32c
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BOMB_PARTITIONS = 40
HOGS = 200
PHASE_SECONDS = 12


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, correlation_id, body):
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string("hostile") + body
    return struct.pack(">i", len(payload)) + payload


def bomb_request(topic):
    """Produce v3, acks=1: per partition one gzip batch of 64 MiB - 1 zeros (refused once inflated)."""
    zeros = gzip.compress(b"\0" * ((64 << 20) - 1), compresslevel=9)
    ts = int(time.time() * 1000)
    after = struct.pack(">hiqqqhii", 1, 0, ts, ts, -1, -1, -1, 1) + zeros
    batch = struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after), -1, 2, crc32c.crc32c(after)) + after
    body = string(None) + struct.pack(">hi", 1, 120000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", BOMB_PARTITIONS)
    for p in range(BOMB_PARTITIONS):
        body += struct.pack(">ii", p, len(batch)) + batch
    return request(0, 3, 1, body)


def bombers(port, stop):
    frame = bomb_request("bomb")
    conns = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(frame)
        conns.append(s)
    stop.wait()


def hogs(port, stop):
    """200 connections pipelining Metadata v1 (all topics), never reading."""
    frame = request(3, 1, 1, struct.pack(">i", -1)) * 64
    conns = []
    for _ in range(HOGS):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        conns.append(s)
    while not stop.is_set():
        progressed = False
        for s in conns:
            try:
                s.send(frame)
                progressed = True
            except (BlockingIOError, OSError):
                pass
        if not progressed:
            time.sleep(0.05)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api_versions_ms(port):
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(request(18, 0, 1, b""))
            if len(s.recv(4)) != 4:
                return float("inf")
    except OSError:
        return float("inf")
    return (time.monotonic() - start) * 1000


def phase(binary, name, abuser):
    root = tempfile.mkdtemp(prefix="tern-hostile-")
    port = 19000 + os.getpid() % 500
    log = open(os.path.join(root, "broker.log"), "wb")
    broker = subprocess.Popen([binary, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{port}", "--log-dirs",
                               os.path.join(root, "data"), "--metrics-listener", "off"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        topics = [NewTopic("light", 1), NewTopic("bomb", BOMB_PARTITIONS)] + [NewTopic(f"meta-{i}", 8) for i in range(20)]
        for f in admin.create_topics(topics).values():
            f.result(30)
        p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "linger.ms": 0, "acks": "all"})
        p.produce("light", value=b"warm-up")
        p.flush(20)

        stop = multiprocessing.Event()
        worker = multiprocessing.Process(target=abuser, args=(port, stop), daemon=True) if abuser else None
        if worker:
            worker.start()
            time.sleep(1)
        peak, probes, sampling = [0], [], threading.Event()

        def sample():
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_kb(broker.pid))
                probes.append(api_versions_ms(port))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        latencies, sent = [], {}

        def report(err, msg):
            if err is None:
                latencies.append((time.monotonic() - sent[msg.value()]) * 1000)

        end = time.monotonic() + PHASE_SECONDS
        i = 0
        while time.monotonic() < end:
            value = b"%d" % i
            sent[value] = time.monotonic()
            p.produce("light", value=value, on_delivery=report)
            p.poll(0)
            i += 1
            time.sleep(0.005)
        p.flush(60)
        sampling.set()
        sampler.join()
        stop.set()
        if worker:
            worker.join(5)
            worker.kill()
        latencies.sort()
        lost = i - len(latencies)

        def pct(q):
            return latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else float("nan")

        alive = broker.poll() is None
        print(f"{name:10} light producer p50 {pct(0.5):7.1f} ms  p99 {pct(0.99):8.1f} ms  max {latencies[-1] if latencies else 0:8.1f} ms"
              f"  ({len(latencies)} acked, {lost} not)  slowest fresh ApiVersions {max(probes):8.1f} ms"
              f"  peak RSS {peak[0] >> 10} MiB{'' if alive else '  BROKER DIED'}", flush=True)
    finally:
        broker.kill()
        broker.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def main():
    binary, label = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "tern"
    print(f"== {label}: {binary}")
    phase(binary, "baseline", None)
    phase(binary, "bombs", bombers)
    phase(binary, "pipelined", hogs)


if __name__ == "__main__":
    main()
