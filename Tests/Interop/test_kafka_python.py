"""kafka-python 3.0 (idempotent producer by default) against a real tern broker process."""
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from messages import assert_same_per_partition, make_messages

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap, name, partitions=3):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()


def produce(bootstrap, topic, messages, **conf):
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **conf)
    futures = [(producer.send(topic, key=k, value=v, headers=h), k, v, h) for k, v, h in messages]
    producer.flush(60)
    acked = []
    for fut, k, v, h in futures:
        md = fut.get(timeout=30)
        acked.append((md.partition, md.offset, k, v, h))
    producer.close()
    return acked


def consume_all(bootstrap, topic, partitions, count, timeout=60):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = []
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                got.append((m.partition, m.offset, m.key, m.value, [(k, v) for k, v in m.headers]))
    consumer.close()
    return got


def test_idempotent_produce_and_consume(broker):
    create_topic(broker.bootstrap, "kp", 3)
    acked = produce(broker.bootstrap, "kp", make_messages(400))  # idempotent, acks=all by default
    assert len({p for p, *_ in acked}) == 3
    assert_same_per_partition(acked, consume_all(broker.bootstrap, "kp", 3, 400))


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trips(broker, codec):
    topic = f"kp-{codec or 'none'}"
    create_topic(broker.bootstrap, topic, 3)
    acked = produce(broker.bootstrap, topic, make_messages(200, prefix=str(codec)), compression_type=codec)
    assert_same_per_partition(acked, consume_all(broker.bootstrap, topic, 3, 200))


def test_restart_and_offsets(broker):
    create_topic(broker.bootstrap, "kp-restart", 3)
    acked = produce(broker.bootstrap, "kp-restart", make_messages(150))
    broker.restart()
    assert_same_per_partition(acked, consume_all(broker.bootstrap, "kp-restart", 3, 150))
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tps = [TopicPartition("kp-restart", p) for p in range(3)]
    ends = consumer.end_offsets(tps)
    begins = consumer.beginning_offsets(tps)
    for tp in tps:
        assert begins[tp] == 0
        assert ends[tp] == sum(1 for p, *_ in acked if p == tp.partition)
    consumer.close()
