"""Storage engine behaviour seen through real clients: segment rolls, retention, DeleteRecords,
compaction and broker-side compression."""
import glob
import os
import struct
import time

import pytest
from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import kcat


def create(bootstrap, name, partitions=1, **configs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config={k: str(v) for k, v in configs.items()})
    admin.create_topics([topic])[name].result(timeout=30)


def produce(bootstrap, topic, items, **conf):
    """items: [(key, value, timestamp or None)] → acked [(offset, key, value)]"""
    acked = []
    # Small batches, so that small segment sizes really roll.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 5, **conf})
    for key, value, ts in items:
        kwargs = {"timestamp": ts} if ts else {}
        p.produce(topic, key=key, value=value, partition=0,
                  on_delivery=lambda err, m: acked.append((m.offset(), m.key(), m.value())) if err is None else None, **kwargs)
        p.poll(0)
    assert p.flush(30) == 0
    return sorted(acked)


def consume(bootstrap, topic, count=None, timeout=20):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "enable.partition.eof": True, "check.crcs": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191 and (count is None or len(out) >= count):
                break
            continue
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


def watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    wm = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    return wm


def segment_files(broker, topic):
    return sorted(glob.glob(os.path.join(broker.data_dir, f"{topic}-0", "*.log")))


def test_fetch_across_segment_rolls(broker):
    create(broker.bootstrap, "rolls", **{"segment.bytes": 2048})
    acked = produce(broker.bootstrap, "rolls", [(f"k{i}".encode(), os.urandom(100), None) for i in range(300)])
    assert len(segment_files(broker, "rolls")) > 5
    assert consume(broker.bootstrap, "rolls", 300) == acked
    broker.restart()
    assert consume(broker.bootstrap, "rolls", 300) == acked


def test_retention_bytes_deletes_segments_and_earliest_moves(broker):
    broker.stop()
    broker.extra_args = ["--set", "log.retention.check.interval.ms=200"]
    broker.start()
    create(broker.bootstrap, "ret", **{"segment.bytes": 2048, "retention.bytes": 6000})
    acked = produce(broker.bootstrap, "ret", [(None, os.urandom(100), None) for _ in range(300)])
    deadline = time.time() + 10
    while watermarks(broker.bootstrap, "ret")[0] == 0 and time.time() < deadline:
        time.sleep(0.2)
    low, high = watermarks(broker.bootstrap, "ret")
    assert 0 < low < high == 300
    assert len(segment_files(broker, "ret")) <= 5
    got = consume(broker.bootstrap, "ret", high - low)
    assert got[0][0] >= low - 30  # the fetch may start at the batch holding the log start offset
    assert [g for g in got if g[0] >= low] == [a for a in acked if a[0] >= low]


def test_retention_ms_deletes_old_records(broker):
    broker.stop()
    broker.extra_args = ["--set", "log.retention.check.interval.ms=200"]
    broker.start()
    create(broker.bootstrap, "old", **{"segment.bytes": 1024, "retention.ms": 60000})
    day_ago = int(time.time() * 1000) - 86_400_000
    produce(broker.bootstrap, "old", [(None, b"x" * 100, day_ago) for _ in range(40)])
    fresh = produce(broker.bootstrap, "old", [(None, b"fresh", None) for _ in range(5)])
    deadline = time.time() + 10
    while watermarks(broker.bootstrap, "old")[0] == 0 and time.time() < deadline:
        time.sleep(0.2)
    low, _ = watermarks(broker.bootstrap, "old")
    assert low > 0
    got = consume(broker.bootstrap, "old")
    assert [g for g in got if g[2] == b"fresh"] == fresh


def test_delete_records(broker):
    create(broker.bootstrap, "dr", **{"segment.bytes": 1024})
    produce(broker.bootstrap, "dr", [(None, f"v{i}".encode(), None) for i in range(100)])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fut = admin.delete_records([TopicPartition("dr", 0, 60)])
    res = list(fut.values())[0].result(timeout=30)
    assert res.low_watermark == 60
    assert watermarks(broker.bootstrap, "dr") == (60, 100)
    got = consume(broker.bootstrap, "dr")
    assert [o for o, *_ in got if o >= 60] == list(range(60, 100))
    assert all(o >= 60 - 10 for o, *_ in got)


def test_compaction_keeps_last_value_per_key(broker):
    broker.stop()
    broker.extra_args = ["--set", "log.retention.check.interval.ms=200"]
    broker.start()
    create(broker.bootstrap, "compacted", **{"cleanup.policy": "compact", "segment.bytes": 1024,
                                             "delete.retention.ms": 1000})
    items = []
    for round_ in range(15):
        for k in range(8):
            items.append((f"key{k}".encode(), f"r{round_}-k{k}".encode(), None))
    old = int(time.time() * 1000) - 60_000
    items.append((b"key5", None, old))  # tombstone, already past delete.retention.ms
    items += [(f"tail{i}".encode(), b"t" * 50, None) for i in range(30)]  # push the rest out of the active segment
    acked = produce(broker.bootstrap, "compacted", items)
    last = {}
    for offset, key, value in acked:
        last[key] = (offset, value)
    deadline = time.time() + 15
    got = []
    while time.time() < deadline:
        got = consume(broker.bootstrap, "compacted")
        if len(got) == len(last) - 1:
            break
        time.sleep(0.5)
    keys = [k for _, k, _ in got]
    assert len(keys) == len(set(keys)), "each key at most once after compaction"
    assert b"key5" not in keys, "the tombstone and the values it deletes are gone"
    for offset, key, value in got:
        assert last[key] == (offset, value), f"{key} kept an old value or moved"
    assert {k for k in last if k != b"key5"} == set(keys)


def test_topic_compression_lz4_recompresses(broker):
    create(broker.bootstrap, "squeezed", **{"compression.type": "lz4"})
    lines = [f"k{i}\t{'abc' * 40}-{i}" for i in range(50)]
    kcat("-b", broker.bootstrap, "-t", "squeezed", "-P", "-K", "\t", "-z", "none", "-p", "0",
         input_bytes=("\n".join(lines) + "\n").encode())
    out = kcat("-b", broker.bootstrap, "-t", "squeezed", "-C", "-e", "-o", "beginning", "-f", "%k\t%s\n").decode()
    assert out.splitlines() == lines
    with open(segment_files(broker, "squeezed")[0], "rb") as f:
        data = f.read()
    attributes, = struct.unpack_from(">h", data, 21)
    assert attributes & 0x7 == 3, "stored batch should be lz4"
    assert len(data) < sum(len(l) for l in lines), "lz4 made it smaller than the raw values"


def _stored_codecs(data_dir, topic):
    codecs = set()
    for path in glob.glob(os.path.join(data_dir, f"{topic}-0", "*.log")):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            length, = struct.unpack_from(">i", data, pos + 8)
            attributes, = struct.unpack_from(">h", data, pos + 21)
            if not attributes & 0x20:  # control batches are never compressed
                codecs.add(attributes & 7)
            pos += 12 + length
    return codecs


@pytest.mark.parametrize("codec,codec_id", [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)])
def test_compaction_cleans_batches_of_every_codec_and_keeps_their_codec(broker, codec, codec_id):
    broker.stop()
    broker.extra_args = ["--set", "log.retention.check.interval.ms=200"]
    broker.start()
    topic = f"compact-{codec}"
    create(broker.bootstrap, topic, **{"cleanup.policy": "compact", "segment.bytes": 2048})
    items = [(f"key{k}".encode(), f"{codec}-r{r}-k{k}".encode() * 4, None) for r in range(10) for k in range(6)]
    items += [(f"tail{i}".encode(), b"t" * 60, None) for i in range(40)]
    acked = produce(broker.bootstrap, topic, items, **{"compression.type": codec, "batch.num.messages": 6})
    last = {key: (offset, value) for offset, key, value in acked}
    deadline = time.time() + 20
    got = []
    while time.time() < deadline:
        got = consume(broker.bootstrap, topic)
        if len(got) == len(last):
            break
        time.sleep(0.5)
    assert len(got) == len(last), f"compaction of {codec} batches did not converge: {len(got)} records"
    assert {key: (offset, value) for offset, key, value in got} == last
    assert _stored_codecs(broker.data_dir, topic) == {codec_id}, "cleaned batches keep their codec"
