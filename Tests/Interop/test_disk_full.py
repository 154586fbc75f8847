"""A full disk under a pipelining idempotent producer (issue 22). librdkafka keeps up to five
batches per partition in flight; when the first fails for lack of space the ones after it fail
too, and the broker must forget every sequence they recorded — before the fix, the retried first
batch was answered as a duplicate at an offset the next record then took: an acknowledged record
lost, its delivery report naming another record's offset."""
import os
import subprocess
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster, wait_for
from conftest import BrokerProcess

PAD = b"." * 1000


def mount_small_disk(path, size="64m"):
    os.makedirs(path, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tern-test", path], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")


def fill(path, leave_bytes):
    """A file taking all but `leave_bytes` of the disk at `path`."""
    st = os.statvfs(path)
    filler = os.path.join(path, ".filler")
    with open(filler, "wb") as f:
        remaining = max(0, st.f_bavail * st.f_frsize - leave_bytes)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            remaining -= f.write(chunk[:min(len(chunk), remaining)])
    return filler


def produce_through_a_full_disk(bootstrap, topic, partitions, disk, seconds_before=2, seconds_full=8, seconds_after=4, rate=600):
    """Produces numbered records round robin over `partitions` with an idempotent acks=all
    producer while `disk` fills and is then freed; → (acked {value: (partition, offset)}, sent
    [values in order per partition], fatal error or None)."""
    acked, fatal = {}, []
    sent = {p: [] for p in range(partitions)}

    def report(err, msg):
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())
        elif err.fatal():
            fatal.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
                  "batch.num.messages": 10, "message.timeout.ms": 90000, "error_cb": lambda e: e.fatal() and fatal.append(e)})
    filler = None
    start, i = time.time(), 0
    while time.time() - start < seconds_before + seconds_full + seconds_after:
        elapsed = time.time() - start
        if filler is None and elapsed >= seconds_before:
            filler = fill(disk, leave_bytes=2 << 20)
        if filler and elapsed >= seconds_before + seconds_full and os.path.exists(filler):
            os.unlink(filler)
        partition = i % partitions
        value = b"%d-%06d|" % (partition, i) + PAD
        try:
            p.produce(topic, value=value, partition=partition, on_delivery=report)
            sent[partition].append(value)
            i += 1
        except BufferError:
            pass
        p.poll(0)
        time.sleep(max(0.0, start + i / rate - time.time()))
    if filler and os.path.exists(filler):
        os.unlink(filler)
    assert p.flush(120) == 0, "every record reported"
    return acked, sent, (fatal[0] if fatal else None)


def read_partitions(bootstrap, topic, partitions):
    """Every record of each partition → {partition: [(offset, value)]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk-full-reader", "enable.partition.eof": True,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out, done = {p: [] for p in range(partitions)}, set()
    deadline = time.time() + 60
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                done.add(m.partition())
            continue
        out[m.partition()].append((m.offset(), m.value()))
    c.close()
    assert len(done) == partitions, "every partition read to its end"
    return out


def assert_exactly_what_was_acknowledged(acked, sent, log):
    for partition, records in log.items():
        values = [v for _, v in records]
        assert len(values) == len(set(values)), f"partition {partition} holds duplicates"
        order = {v: k for k, v in enumerate(sent[partition])}
        assert [order[v] for v in values] == sorted(order[v] for v in values), f"partition {partition} out of order"
    for value, (partition, offset) in acked.items():
        assert log[partition] and offset in dict(log[partition]), f"acknowledged {value[:9]!r} at {partition}/{offset}: no such offset"
        assert dict(log[partition])[offset] == value, \
            f"acknowledged {value[:9]!r} at {partition}/{offset}, which holds {dict(log[partition])[offset][:9]!r}"


def test_a_single_broker_with_a_full_disk_keeps_every_acknowledged_record_once(tmp_path):
    disk = str(tmp_path / "disk")
    mount_small_disk(disk, "48m")
    broker = BrokerProcess(os.path.join(disk, "data"))
    try:
        broker.start()
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        a.create_topics([NewTopic("full", 3)])["full"].result(20)
        acked, sent, fatal = produce_through_a_full_disk(broker.bootstrap, "full", 3, disk)
        assert fatal is None, f"the producer hit a fatal error: {fatal}"
        assert broker.alive()
        assert len(acked) > 1000
        assert_exactly_what_was_acknowledged(acked, sent, read_partitions(broker.bootstrap, "full", 3))
    finally:
        broker.stop()
        subprocess.run(["umount", "-l", disk], capture_output=True)


def test_a_full_disk_on_a_replicated_leader_loses_and_duplicates_nothing():
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    mounts = []

    def prepare(node_id, data_dir):
        if node_id == 1:
            mount_small_disk(data_dir)
            mounts.append(data_dir)

    c = Cluster(3, prepare=prepare)
    try:
        a = AdminClient({"bootstrap.servers": c.bootstrap})
        a.create_topics([NewTopic("full", 3, replication_factor=3, config={"min.insync.replicas": "2"})])["full"].result(30)
        leaders, _ = wait_for("every partition has a leader", lambda: (
            lambda ps: ps if all(p.leader >= 0 for p in ps.values()) else None)(a.list_topics("full", timeout=10).topics["full"].partitions))
        assert 1 in {p.leader for p in leaders.values()}, "the broker with the small disk leads a partition"
        acked, sent, fatal = produce_through_a_full_disk(c.bootstrap, "full", 3, mounts[0])
        assert fatal is None, f"the producer hit a fatal error: {fatal}"
        assert len(acked) > 1000
        assert_exactly_what_was_acknowledged(acked, sent, read_partitions(c.bootstrap, "full", 3))
    finally:
        c.stop()
        for m in mounts:
            subprocess.run(["umount", "-l", m], capture_output=True)
