"""Writes the regression inputs of the in-process `broker` fuzz target, one per crash or hang the
fuzzers found, each built here field by field so what it sends is readable. The broker they meet
is the target's seeded one: topics `fuzz` (3 partitions) and `fuzz-compact` (2), the groups
`fuzz-group` (classic, one member) and `fuzz-consumer-group`, an open transaction of `fuzz-txn`.

    python3 Tests/Fuzz/regressions/make_broker_regressions.py     # rewrites regressions/broker/

`make unit-test` replays them (`tern-fuzz broker Tests/Fuzz/regressions/broker`): each crashed or
wedged the broker before its fix.
"""
import os
import struct
import time

import crc32c

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "broker")


def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def string(b):
    b = b.encode() if isinstance(b, str) else b
    return i16(len(b)) + b


def compact_string(b):
    b = b.encode() if isinstance(b, str) else b
    return uvarint(len(b) + 1) + b


def array(items):
    return i32(len(items)) + b"".join(items)


def compact_array(items):
    return uvarint(len(items) + 1) + b"".join(items)


TAGS = b"\x00"


def frame(api_key, version, body, flexible=False):
    """A request frame without its size prefix: header v1 (v2 when flexible), then the body."""
    return i16(api_key) + i16(version) + i32(1) + string("regression") + (TAGS if flexible else b"") + body


def varint(n):
    return uvarint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def batch(base_timestamp, deltas, max_timestamp=None):
    """An uncompressed record batch v2 of one record per timestamp delta (key null, value "v")."""
    records = b""
    for i, delta in enumerate(deltas):
        body = b"\x00" + varint(delta) + varint(i) + varint(-1) + varint(1) + b"v" + varint(0)
        records += varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(deltas) - 1, base_timestamp,
                            base_timestamp if max_timestamp is None else max_timestamp, -1, -1, -1, len(deltas)) + records
    return struct.pack(">qiibI", 0, 9 + len(after_crc), -1, 2, crc32c.crc32c(after_crc)) + after_crc


def produce_v3(topic, partition, records):
    return frame(0, 3, i16(-1) + i16(-1) + i32(10000) + array([string(topic) + array([i32(partition) + i32(len(records)) + records])]))


def create_topic_v5(name, partitions, configs):
    return frame(19, 5, compact_array([
        compact_string(name) + i32(partitions) + i16(1) + compact_array([])
        + compact_array([compact_string(k) + compact_string(v) + TAGS for k, v in configs]) + TAGS]) + i32(10000) + i8(0) + TAGS,
        flexible=True)


NOW = int(time.time() * 1000)
INT64_MAX = 2**63 - 1


def step(f):
    """One raw step of the broker target's input."""
    return b"\xff" + struct.pack(">H", len(f)) + f


REGRESSIONS = {
    # ElectLeaders v1 naming a topic of 32767 bytes of invalid UTF-8: each byte decodes into a
    # 3-byte U+FFFD, and the name echoed in the response no longer fit its int16 length.
    "echoed-invalid-utf8-name-outgrows-int16": frame(
        43, 1, i8(0) + array([string(b"\xff" * 32767) + array([i32(0)])]) + i32(1000)),
    # DescribeTopicPartitions with a cursor at partition Int32.max: first + budget overflowed.
    "describe-topic-partitions-cursor-at-int32-max": frame(
        75, 0, compact_array([compact_string("fuzz") + TAGS]) + i32(2000)
        + b"\x01" + compact_string("fuzz") + i32(2**31 - 1) + TAGS + TAGS, flexible=True),
    # CreatePartitions to Int32.min partitions with an assignment: count - current overflowed.
    "create-partitions-count-int32-min": frame(
        37, 1, array([string("fuzz") + i32(-2**31) + array([array([i32(0)])])]) + i32(1000) + i8(0)),
    # A record at Int64.min into a segment whose first batch has a real timestamp: the segment.ms
    # check's difference of the two overflowed on the appender's thread.
    "produce-timestamp-int64-min-after-a-real-one": produce_v3("fuzz", 0, batch(-2**63, [0])),
    # A topic that recompresses (compression.type=gzip) and a batch whose record timestamp wraps
    # (base 1, delta Int64.max): re-encoding the record subtracted without wrapping.
    "recompressed-record-timestamp-wraps": [
        create_topic_v5("fuzz-gzip", 1, [("compression.type", "gzip")]),
        produce_v3("fuzz-gzip", 0, batch(1, [INT64_MAX], max_timestamp=NOW)),
    ],
}


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    for name, frames in REGRESSIONS.items():
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(b"".join(step(f) for f in (frames if isinstance(frames, list) else [frames])))
    print(f"wrote {len(REGRESSIONS)} inputs to {OUT}")
