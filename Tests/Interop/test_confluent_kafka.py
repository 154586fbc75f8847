"""confluent-kafka (librdkafka 2.16) against a real tern broker process."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from messages import assert_same_per_partition, make_messages

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap, name, partitions=3):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=30)


def produce(bootstrap, topic, messages, **conf):
    acked = []
    errors = []

    def on_delivery(headers):
        # Delivery reports do not carry headers back; remember the ones sent.
        def report(err, msg):
            if err:
                errors.append(err)
            else:
                acked.append((msg.partition(), msg.offset(), msg.key(), msg.value(), headers))
        return report

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    for key, value, headers in messages:
        p.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery(headers))
        p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors
    return acked


def consume_all(bootstrap, topic, partitions, count, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused", "enable.auto.commit": False,
                  "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = []
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append((msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers() or []))
    c.close()
    return got


def test_produce_consume_keys_headers_three_partitions(broker):
    create_topic(broker.bootstrap, "orders", 3)
    msgs = make_messages(500)
    acked = produce(broker.bootstrap, "orders", msgs, acks="all")
    assert len(acked) == 500
    assert len({p for p, *_ in acked}) == 3, "keys should spread over all three partitions"
    consumed = consume_all(broker.bootstrap, "orders", 3, 500)
    assert_same_per_partition(acked, consumed)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trips(broker, codec):
    topic = f"codec-{codec}"
    create_topic(broker.bootstrap, topic, 3)
    msgs = make_messages(300, prefix=codec)
    acked = produce(broker.bootstrap, topic, msgs, **{"compression.type": codec, "acks": "1"})
    consumed = consume_all(broker.bootstrap, topic, 3, 300)
    assert_same_per_partition(acked, consumed)


def test_data_survives_restart_and_list_offsets(broker):
    create_topic(broker.bootstrap, "durable", 3)
    acked = produce(broker.bootstrap, "durable", make_messages(200), acks="all")
    per_partition = {p: sum(1 for q, *_ in acked if q == p) for p in range(3)}
    broker.restart()
    consumed = consume_all(broker.bootstrap, "durable", 3, 200)
    assert_same_per_partition(acked, consumed)

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "interop-unused"})
    for p in range(3):
        low, high = c.get_watermark_offsets(TopicPartition("durable", p), timeout=10, cached=False)
        assert (low, high) == (0, per_partition[p])
    # Produce more after the restart: offsets continue where they were.
    more = produce(broker.bootstrap, "durable", make_messages(30, prefix="after"), acks="all")
    for p, o, *_ in more:
        assert o >= per_partition[p]
    c.close()


def test_list_offsets_by_timestamp(broker):
    create_topic(broker.bootstrap, "times", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce("times", value=f"v{i}".encode(), partition=0, timestamp=base + i * 1000)
        p.flush(10)  # one batch per record, so each has its own timestamp range
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "interop-unused"})
    found = c.offsets_for_times([TopicPartition("times", 0, base + 3500)], timeout=10)
    assert found[0].offset == 4
    found = c.offsets_for_times([TopicPartition("times", 0, base + 99_000)], timeout=10)
    assert found[0].offset in (-1, 10)  # no such record: end of log
    c.close()


def test_admin_create_delete_and_errors(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic("adm", num_partitions=2, replication_factor=1)])
    fs["adm"].result(timeout=30)
    md = admin.list_topics(timeout=10)
    assert len(md.topics["adm"].partitions) == 2
    # Creating it again fails with TOPIC_ALREADY_EXISTS.
    with pytest.raises(Exception) as exc:
        admin.create_topics([NewTopic("adm", num_partitions=2, replication_factor=1)])["adm"].result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    # Replication factor 3 cannot be satisfied by one broker.
    with pytest.raises(Exception) as exc:
        admin.create_topics([NewTopic("rf3", num_partitions=1, replication_factor=3)])["rf3"].result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    admin.delete_topics(["adm"])["adm"].result(timeout=30)
    assert "adm" not in admin.list_topics(timeout=10).topics
