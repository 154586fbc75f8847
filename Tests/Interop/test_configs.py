"""Topic and broker configs as Kafka answers them (issue 10): DescribeConfigs types, sources and
synonyms, every Kafka topic config accepted or refused with a message naming the key, AlterConfigs
and IncrementalAlterConfigs APPEND/SUBTRACT, compression.type recompression to every codec,
LogAppendTime, min.insync.replicas and explicit replica assignments — through confluent-kafka
(librdkafka) and kafka-python."""
import glob
import os
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewTopic)
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient
from kafka.admin import NewTopic as KNewTopic

import wire

# Every topic config a Kafka 3.9 broker accepts, with a valid non-default value.
ALL_TOPIC_CONFIGS = {
    "cleanup.policy": "compact,delete", "compression.type": "zstd", "compression.gzip.level": "5",
    "compression.lz4.level": "10", "compression.zstd.level": "7", "delete.retention.ms": "1000",
    "file.delete.delay.ms": "1000", "flush.messages": "1000", "flush.ms": "1000",
    "follower.replication.throttled.replicas": "", "index.interval.bytes": "8192",
    "leader.replication.throttled.replicas": "", "local.retention.bytes": "-2", "local.retention.ms": "-2",
    "max.compaction.lag.ms": "100000", "max.message.bytes": "2000000", "message.downconversion.enable": "false",
    "message.format.version": "3.0-IV1", "message.timestamp.after.max.ms": "100000",
    "message.timestamp.before.max.ms": "100000", "message.timestamp.difference.max.ms": "100000",
    "message.timestamp.type": "LogAppendTime", "min.cleanable.dirty.ratio": "0.3", "min.compaction.lag.ms": "10",
    "min.insync.replicas": "1", "preallocate": "true", "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false", "remote.storage.enable": "false", "retention.bytes": "100000000",
    "retention.ms": "100000000", "segment.bytes": "100000000", "segment.index.bytes": "1000000",
    "segment.jitter.ms": "10", "segment.ms": "100000000", "unclean.leader.election.enable": "true",
}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create(a, name, partitions=1, **kwargs):
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, **kwargs)])[name].result(timeout=30)


def test_every_kafka_topic_config_is_accepted_and_described_with_its_type(broker):
    a = admin(broker)
    create(a, "all-configs", config=ALL_TOPIC_CONFIGS)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    described = k.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "all-configs")], include_synonyms=True,
                                   config_filter="all")["topic"]["all-configs"]
    assert set(ALL_TOPIC_CONFIGS) <= set(described)
    for name, entry in described.items():
        assert entry["config_type"] != "UNKNOWN", name
        assert entry["documentation"] is None, "documentation is sent only when asked for"
        if name in ALL_TOPIC_CONFIGS:
            assert entry["value"] == ALL_TOPIC_CONFIGS[name], name
            assert entry["config_source"] == "DYNAMIC_TOPIC_CONFIG", name
            assert entry["synonyms"][0]["source"] == "DYNAMIC_TOPIC_CONFIG"
    types = {n: described[n]["config_type"] for n in ("cleanup.policy", "compression.type", "segment.bytes", "retention.ms",
                                                        "preallocate", "min.cleanable.dirty.ratio")}
    assert types == {"cleanup.policy": "LIST", "compression.type": "STRING", "segment.bytes": "INT", "retention.ms": "LONG",
                     "preallocate": "BOOLEAN", "min.cleanable.dirty.ratio": "DOUBLE"}
    k.close()

    # librdkafka (which asks for synonyms): the sources of a default value.
    create(a, "defaults-only")
    res = ConfigResource("topic", "defaults-only")
    entries = a.describe_configs([res])[res].result(10)
    retention = entries["retention.ms"]
    assert retention.value == "604800000" and retention.source == ConfigSource.DEFAULT_CONFIG.value
    assert list(retention.synonyms) == ["log.retention.hours"]
    assert entries["preallocate"].value == "false"


def test_invalid_configs_are_refused_naming_the_key(broker):
    a = admin(broker)
    for configs, fragment in [({"retention.ms": "-5"}, "retention.ms"), ({"no.such.config": "1"}, "no.such.config"),
                              ({"cleanup.policy": "shred"}, "cleanup.policy"), ({"remote.storage.enable": "true"}, "Tiered"),
                              ({"min.cleanable.dirty.ratio": "2"}, "min.cleanable.dirty.ratio")]:
        with pytest.raises(KafkaException) as refused:
            create(a, "bad-configs", config=configs)
        err = refused.value.args[0]
        assert err.code() == 40, configs  # INVALID_CONFIG
        assert fragment in err.str(), f"{configs}: {err.str()}"


def test_incremental_append_subtract_and_legacy_alter_configs(broker):
    a = admin(broker)
    create(a, "alter-me", config={"retention.ms": "3600000"})
    res = ConfigResource("topic", "alter-me", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
    a.incremental_alter_configs([res])[res].result(10)
    check = ConfigResource("topic", "alter-me")
    assert a.describe_configs([check])[check].result(10)["cleanup.policy"].value == "delete,compact"
    res = ConfigResource("topic", "alter-me", incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)])
    a.incremental_alter_configs([res])[res].result(10)
    now = a.describe_configs([check])[check].result(10)
    assert now["cleanup.policy"].value == "compact"
    assert now["retention.ms"].value == "3600000", "an incremental change keeps the other overrides"
    res = ConfigResource("topic", "alter-me", incremental_configs=[
        ConfigEntry("retention.ms", "x", incremental_operation=AlterConfigOpType.APPEND)])
    with pytest.raises(KafkaException) as refused:
        a.incremental_alter_configs([res])[res].result(10)
    assert refused.value.args[0].code() == 40 and "retention.ms" in refused.value.args[0].str()

    # AlterConfigs (API 33, v0 on the wire) replaces the whole set of overrides.
    body = struct.pack(">i", 1) + struct.pack(">b", 2) + wire.string("alter-me") + struct.pack(">i", 1)
    body += wire.string("segment.ms") + wire.string("7200000") + struct.pack(">b", 0)
    conn = wire.Conn(broker.port)
    conn.send(wire.request(33, 0, 5, body))
    resp = conn.recv_frame()
    conn.close()
    error, = struct.unpack_from(">h", resp, 4 + 4 + 4)
    assert error == 0
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    after = k.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "alter-me")])["topic"]["alter-me"]
    assert after["segment.ms"]["value"] == "7200000"
    assert "retention.ms" not in after and "cleanup.policy" not in after, "the overrides not given were reset"
    k.close()


def _stored_codecs(data_dir, topic):
    codecs = []
    for path in sorted(glob.glob(os.path.join(data_dir, f"{topic}-0", "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            length, = struct.unpack_from(">i", data, pos + 8)
            attributes, = struct.unpack_from(">h", data, pos + 21)
            codecs.append(attributes & 7)
            pos += 12 + length
    return codecs


@pytest.mark.parametrize("codec,codec_id", [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4), ("uncompressed", 0)])
def test_compression_type_recompresses_to_every_codec(broker, codec, codec_id):
    a = admin(broker)
    topic = f"store-{codec}"
    create(a, topic, config={"compression.type": codec})
    sent_with = "lz4" if codec != "lz4" else "gzip"
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": sent_with, "linger.ms": 5})
    values = [f"value-{i}-".encode() * 20 for i in range(50)]
    for v in values:
        p.produce(topic, value=v, partition=0)
    assert p.flush(30) == 0
    assert set(_stored_codecs(broker.data_dir, topic)) == {codec_id}
    from kafka import KafkaConsumer
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    assert [m.value for m in c] == values
    c.close()


def test_log_append_time_stamps_batches(broker):
    a = admin(broker)
    create(a, "stamped", config={"message.timestamp.type": "LogAppendTime"})
    p = Producer({"bootstrap.servers": broker.bootstrap})
    long_ago = 1_000_000_000_000  # 2001: far outside any window, ignored under LogAppendTime
    before = int(time.time() * 1000)
    p.produce("stamped", value=b"v", partition=0, timestamp=long_ago)
    assert p.flush(30) == 0
    after = int(time.time() * 1000)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stamp-reader", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("stamped", 0, 0)])
    m = None
    deadline = time.time() + 20
    while m is None and time.time() < deadline:
        got = c.poll(0.5)
        if got is not None and not got.error():
            m = got
    c.close()
    kind, ts = m.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert before - 1000 <= ts <= after + 1000
    from kafka import KafkaConsumer
    k = KafkaConsumer("stamped", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    got = [(r.timestamp_type, r.timestamp) for r in k]
    k.close()
    assert got == [(1, ts)], "kafka-python sees the same LogAppendTime stamp"


def test_min_insync_replicas_refuses_acks_all_on_one_broker(broker):
    a = admin(broker)
    create(a, "needs-two", config={"min.insync.replicas": "2"})
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 3000, "retries": 0})
    p.produce("needs-two", value=b"x", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None and errors[0].code() == 19, errors  # NOT_ENOUGH_REPLICAS
    ok = []
    p1 = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1})
    p1.produce("needs-two", value=b"y", partition=0, on_delivery=lambda err, msg: ok.append(err))
    p1.flush(20)
    assert ok == [None], "acks=1 does not need the ISR"
    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasError
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", retries=0)
    with pytest.raises(NotEnoughReplicasError):
        kp.send("needs-two", b"z", partition=0).get(timeout=20)
    kp.close()


def test_explicit_replica_assignment(broker):
    a = admin(broker)
    a.create_topics([NewTopic("placed", num_partitions=3, replica_assignment=[[0], [0], [0]])])["placed"].result(30)
    md = a.list_topics("placed", timeout=10)
    assert len(md.topics["placed"].partitions) == 3
    for bad, code in [([[1]], 39), ([[0, 0]], 39), ([[0], [0, 0]], 39)]:
        with pytest.raises(KafkaException) as refused:
            a.create_topics([NewTopic("misplaced", num_partitions=len(bad), replica_assignment=bad)])["misplaced"].result(30)
        assert refused.value.args[0].code() == code, bad
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    k.create_topics([KNewTopic("placed-kp", num_partitions=-1, replication_factor=-1, replica_assignments={0: [0], 1: [0]})])
    assert len(k.describe_topics(["placed-kp"])[0]["partitions"]) == 2
    k.close()


def test_broker_and_logger_configs_are_described(broker):
    a = admin(broker)
    res = ConfigResource("broker", "0")
    entries = a.describe_configs([res])[res].result(10)
    assert entries["log.dirs"].source == ConfigSource.STATIC_BROKER_CONFIG.value, "given on the command line"
    assert entries["num.partitions"].value == "3" and entries["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["log.dirs"].is_read_only and not entries["message.max.bytes"].is_read_only, "dynamic configs are not read-only"
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    levels = k.describe_configs([KConfigResource(ConfigResourceType.BROKER_LOGGER, "0")], config_filter="all")["broker_logger"]["0"]
    assert levels and all(e["value"] == "INFO" and e["config_source"] == "DYNAMIC_BROKER_LOGGER_CONFIG" for e in levels.values()), levels
    k.close()
    # Another broker's id is refused (INVALID_REQUEST) rather than answered with this one's configs.
    body = struct.pack(">i", 1) + struct.pack(">b", 4) + wire.string("7") + struct.pack(">i?", -1, False)
    conn = wire.Conn(broker.port)
    conn.send(wire.request(32, 1, 9, body))  # DescribeConfigs v1, the oldest Kafka 4 serves
    resp = conn.recv_frame()
    conn.close()
    error, = struct.unpack_from(">h", resp, 4 + 4 + 4)
    assert error == 42
