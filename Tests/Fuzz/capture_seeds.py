"""Captures the fuzzers' seed corpus from real clients (run once; the corpus is committed).

A broker is started with its advertised listener pointing at a recording proxy, so every request
of kcat (librdkafka 2.0.2), confluent-kafka (librdkafka 2.16) and kafka-python goes through it.
Saved: each request frame (request/), each record batch found in Produce requests (batch/), the
first 64 KiB of each partition's first segment after the run (segment/), and each response frame
the broker sent, after its request's API key and version as two int16s (response/).

    TERN_BIN=.build/debug/tern python3 Tests/Fuzz/capture_seeds.py [request batch segment response]

Only the kinds named (all when none) are replaced.
"""
import hashlib
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Interop"))
from conftest import BrokerProcess, free_port  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
KINDS = ("request", "batch", "segment", "response")
frames = []
responses = []


def save(kind, data):
    os.makedirs(os.path.join(CORPUS, kind), exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(CORPUS, kind, name), "wb") as f:
        f.write(data)


def pump(src, dst, requests, sent):
    """Copies one direction of a connection, splitting it into frames: requests (noting each
    one's API key and version by correlation id in `sent`) or responses (matched through `sent`)."""
    buf = b""
    while True:
        try:
            chunk = src.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        dst.sendall(chunk)
        buf += chunk
        while len(buf) >= 4:
            size, = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + size:
                break
            frame, buf = buf[:4 + size], buf[4 + size:]
            if requests:
                frames.append(frame)
                key, version, correlation = struct.unpack(">hhi", frame[4:12])
                sent[correlation] = (key, version)
            elif size >= 4:
                correlation, = struct.unpack(">i", frame[4:8])
                if correlation in sent:
                    responses.append(struct.pack(">hh", *sent.pop(correlation)) + frame[4:])
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def proxy(listen_port, target_port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        sent = {}
        threading.Thread(target=pump, args=(client, upstream, True, sent), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False, sent), daemon=True).start()


def batches_in(frame):
    """Record batches inside a Produce request, found by their header and checked by CRC."""
    out = []
    for at in range(len(frame) - 61):
        if frame[at:at + 8] != b"\0" * 8 or frame[at + 16] != 2:
            continue
        length, = struct.unpack(">i", frame[at + 8:at + 12])
        end = at + 12 + length
        if length < 49 or end > len(frame):
            continue
        crc, = struct.unpack(">I", frame[at + 17:at + 21])
        if crc32c.crc32c(frame[at + 21:end]) == crc:
            out.append(frame[at:end])
    return out


def main():
    root = tempfile.mkdtemp(prefix="tern-capture-")
    proxy_port = free_port()
    broker = BrokerProcess(os.path.join(root, "data"), extra_args=[
        "--set", f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}"])
    broker.start()
    threading.Thread(target=proxy, args=(proxy_port, broker.port), daemon=True).start()
    bootstrap = f"127.0.0.1:{proxy_port}"
    time.sleep(0.3)
    try:
        lines = b"".join(b"key%d:value number %d\n" % (i, i) for i in range(50))
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
            subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", f"seed-{codec}", "-z", codec, "-K:", "-H", "h=1"],
                           input=lines, check=True, timeout=60)
            subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", f"seed-{codec}", "-e", "-q"], check=True, timeout=60,
                           capture_output=True)
        subprocess.run(["kcat", "-b", bootstrap, "-L"], check=True, timeout=60, capture_output=True)
        from confluent_kafka import Consumer, Producer
        from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("seed-admin", 2, 1, config={"cleanup.policy": "compact"})])["seed-admin"].result(30)
        admin.describe_configs([ConfigResource("topic", "seed-admin")])
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "zstd"})
        for i in range(20):
            p.produce("seed-admin", key=b"k%d" % i, value=b"v" * i)
        p.flush(30)
        t = Producer({"bootstrap.servers": bootstrap, "transactional.id": "seed-txn"})
        t.init_transactions(30)
        t.begin_transaction()
        t.produce("seed-none", value=b"in a transaction")
        t.commit_transaction(30)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-group", "auto.offset.reset": "earliest"})
        c.subscribe(["seed-none"])
        deadline = time.time() + 15
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                c.commit(m, asynchronous=False)
                break
        c.close()
        from kafka import KafkaConsumer, KafkaProducer
        kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
        kp.send("seed-kp", b"from kafka-python", key=b"k")
        kp.flush()
        kp.close()
        kc = KafkaConsumer("seed-kp", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000,
                           group_id="seed-kp-group")
        list(kc)
        kc.close()
        time.sleep(0.5)
    finally:
        broker.stop()
    kinds = [k for k in sys.argv[1:] if k in KINDS] or list(KINDS)
    for kind in kinds:
        shutil.rmtree(os.path.join(CORPUS, kind), ignore_errors=True)
    for f in frames:
        if len(f) <= 65536 and "request" in kinds:
            save("request", f)
        for b in batches_in(f) if "batch" in kinds else []:
            save("batch", b)
    for r in responses:
        if len(r) <= 65536 and "response" in kinds:
            save("response", r)
    for dirpath, _, files in os.walk(os.path.join(root, "data")) if "segment" in kinds else []:
        for name in files:
            if name.endswith(".log") and os.path.getsize(os.path.join(dirpath, name)) > 0:
                with open(os.path.join(dirpath, name), "rb") as f:
                    save("segment", f.read(65536))
    shutil.rmtree(root, ignore_errors=True)
    for kind in kinds:
        print(kind, len(os.listdir(os.path.join(CORPUS, kind))))


if __name__ == "__main__":
    main()
