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
}


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    for name, f in REGRESSIONS.items():
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(step(f))
    print(f"wrote {len(REGRESSIONS)} inputs to {OUT}")
