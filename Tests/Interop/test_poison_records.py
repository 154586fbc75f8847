"""Record layouts that clients read differently are refused (issue 22): a key, value or header
value length below -1 (Kafka reads it as null, librdkafka stops at that offset for ever) and gzip
data of several members (Java reads every member, librdkafka only the first). After each refused
batch, confluent-kafka, kafka-python and kcat all read exactly the good records around it."""
import gzip
import struct
import time

import crc32c
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

import wire
from conftest import kcat

INVALID_RECORD = 87


def record(key_length, key, value_length, value, headers=b"\x00"):
    """One record body (attributes, timestamp and offset deltas 0) with the given, possibly lying,
    varint lengths; `headers` as encoded."""
    return b"\x00" + wire.varint(0) + wire.varint(0) + wire.varint(key_length) + key + wire.varint(value_length) + value + headers


def numbered(records):
    """The records of a batch body: each one's offset delta set to its index, length-prefixed."""
    out = b""
    for i, r in enumerate(records):
        body = b"\x00" + wire.varint(0) + wire.varint(i) + r[3:]
        out += wire.varint(len(body)) + body
    return out


def batch(records_body, count, attributes=0):
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", attributes, count - 1, ts, ts, -1, -1, -1, count) + records_body
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), -1, 2, crc32c.crc32c(after_crc)) + after_crc


def plain(value):
    """A good record body: no key, `value`, no headers."""
    return record(-1, b"", len(value), value)


def produce(port, topic, batch_bytes):
    conn = wire.Conn(port)
    conn.send(wire.request(0, 3, 1, wire.produce_v3(topic, 0, batch_bytes, acks=1)))
    _, parts = wire.parse_produce_v3_response(conn.recv_frame())
    conn.close()
    return parts[0][2]


def read_with_every_client(broker, topic, expected):
    """confluent-kafka, kafka-python and kcat each read partition 0 to its end: `expected` values."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"poison-{topic}", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.time() + 20
    while time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            break
        got.append(m.value())
    c.close()
    assert got == expected, "confluent-kafka"
    k = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    k.assign([KTopicPartition(topic, 0)])
    k.seek_to_beginning()
    assert [m.value for m in k] == expected, "kafka-python"
    k.close()
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\n")
    assert out.split(b"\n")[:-1] == expected, "kcat"


@pytest.mark.parametrize("name,poison", [
    ("key", record(-2, b"", 1, b"x")),
    ("value", record(-1, b"", -7, b"")),
    ("header", record(-1, b"", 1, b"x", headers=wire.varint(1) + wire.varint(1) + b"h" + wire.varint(-9))),
])
def test_negative_lengths_below_minus_one_are_refused(broker, name, poison):
    topic = f"poison-{name}"
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic(topic, 1)])[topic].result(20)
    assert produce(broker.port, topic, batch(numbered([plain(b"before")]), 1)) == 0
    assert produce(broker.port, topic, batch(numbered([plain(b"good"), poison]), 2)) == INVALID_RECORD
    assert produce(broker.port, topic, batch(numbered([plain(b"after")]), 1)) == 0
    read_with_every_client(broker, topic, [b"before", b"after"])


def test_gzip_of_several_members_is_refused_and_one_member_is_read_by_all(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("gz", 1)])["gz"].result(20)
    records = [plain(b"g%d" % i) for i in range(4)]
    body = numbered(records)
    # Two records in each member, split at a record boundary.
    first = numbered(records[:2])
    second = body[len(first):]
    assert gzip.decompress(gzip.compress(first) + gzip.compress(second)) == body, "Java's reading: every member"
    assert produce(broker.port, "gz", batch(gzip.compress(first) + gzip.compress(second), 4, attributes=1)) == INVALID_RECORD
    assert produce(broker.port, "gz", batch(gzip.compress(body), 4, attributes=1)) == 0
    read_with_every_client(broker, "gz", [b"g0", b"g1", b"g2", b"g3"])
