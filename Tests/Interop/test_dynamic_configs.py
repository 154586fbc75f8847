"""Dynamic broker configs (issue 21): AlterConfigs and IncrementalAlterConfigs on BROKER resources,
per broker and as the cluster-wide default, persisted and applied without a restart, described
with Kafka's sources and synonyms — through confluent-kafka (librdkafka 2.16) and kafka-python."""
import struct

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

import wire
from cluster import Cluster, wait_for

SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
DYNAMIC_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG.value
DYNAMIC_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
INVALID_CONFIG, INVALID_REQUEST = 40, 42


BROKER = 4


class Reader:
    def __init__(self, buf, pos=0):
        self.buf, self.pos = buf, pos

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        self.pos += n
        return self.buf[self.pos - n:self.pos].decode()


def exchange(port, api_key, version, body):
    conn = wire.Conn(port)
    conn.send(wire.request(api_key, version, 1, body))
    resp = conn.recv_frame()
    conn.close()
    return Reader(resp, 4 + 4)  # correlation id, throttle time


def alter_default(port, *entries):
    """IncrementalAlterConfigs v0 on the BROKER resource "" (the cluster-wide defaults), which
    librdkafka and kafka-python cannot name; → (error code, message)."""
    body = struct.pack(">ib", 1, BROKER) + wire.string("") + struct.pack(">i", len(entries))
    for key, value, op in entries:
        body += wire.string(key) + struct.pack(">b", op.value) + wire.string(value)
    r = exchange(port, 44, 0, body + struct.pack(">?", False))
    assert r.take(">i") == 1
    return r.take(">h"), r.string()


def describe_default(port):
    """DescribeConfigs v1 of the BROKER resource "" → {name: (value, source)}."""
    r = exchange(port, 32, 1, struct.pack(">ib", 1, BROKER) + wire.string("") + struct.pack(">i?", -1, True))
    assert r.take(">i") == 1
    assert r.take(">h") == 0, r.string()
    r.string(), r.take(">b"), r.string()
    entries = {}
    for _ in range(r.take(">i")):
        name, value, (_, source, _) = r.string(), r.string(), r.take(">?b?")
        for _ in range(r.take(">i")):
            r.string(), r.string(), r.take(">b")
        entries[name] = (value, source)
    return entries


def alter(a, name, *entries, validate_only=False):
    res = ConfigResource("broker", name, incremental_configs=[ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    a.incremental_alter_configs([res], validate_only=validate_only)[res].result(20)


def refused(a, name, *entries):
    with pytest.raises(KafkaException) as e:
        alter(a, name, *entries)
    return e.value.args[0].code(), e.value.args[0].str()


def describe(a, kind, name):
    res = ConfigResource(kind, name)
    return a.describe_configs([res], request_timeout=20)[res].result(20)


def produce(bootstrap, topic, value, partition=0, **conf):
    """One record; returns its delivery error code (None when acknowledged)."""
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 8000, "retries": 0, **conf})
    p.produce(topic, value=value, partition=partition, on_delivery=lambda err, msg: reports.append(err))
    p.flush(20)
    assert len(reports) == 1
    return reports[0] and reports[0].code()


def test_cluster_default_and_per_broker_configs_apply_at_once_and_survive_restart(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("plain", 1)])["plain"].result(20)
    assert produce(broker.bootstrap, "plain", b"x", acks="all") is None

    # The cluster-wide min.insync.replicas: acks=all is refused at once, and the topic reports
    # where its value comes from (as Kafka 4.1+ reports its cluster-level setting).
    assert alter_default(broker.port, ("min.insync.replicas", "2", SET)) == (0, None)
    assert produce(broker.bootstrap, "plain", b"x", acks="all") == 19  # NOT_ENOUGH_REPLICAS
    mir = describe(a, "topic", "plain")["min.insync.replicas"]
    assert (mir.value, mir.source) == ("2", DYNAMIC_DEFAULT)
    assert describe_default(broker.port) == {"min.insync.replicas": ("2", DYNAMIC_DEFAULT)}

    # This broker's own setting: a batch above it is refused from now on.
    alter(a, "0", ("message.max.bytes", "2000", SET))
    assert produce(broker.bootstrap, "plain", b"y" * 5000, acks=1) == 10  # MESSAGE_TOO_LARGE
    own = describe(a, "broker", "0")
    assert (own["message.max.bytes"].value, own["message.max.bytes"].source, own["message.max.bytes"].is_read_only) == ("2000", DYNAMIC_BROKER, False)
    assert (own["min.insync.replicas"].value, own["min.insync.replicas"].source) == ("2", DYNAMIC_DEFAULT)
    assert own["log.dirs"].is_read_only and not own["log.retention.ms"].is_read_only

    broker.restart()
    assert produce(broker.bootstrap, "plain", b"y" * 5000, acks=1) == 10, "kept in the data directory"
    assert produce(broker.bootstrap, "plain", b"x", acks="all") == 19

    alter(a, "0", ("message.max.bytes", None, DELETE))
    assert alter_default(broker.port, ("min.insync.replicas", None, DELETE)) == (0, None)
    assert produce(broker.bootstrap, "plain", b"y" * 5000, acks="all") is None
    assert describe_default(broker.port) == {}
    assert describe(a, "topic", "plain")["min.insync.replicas"].source == ConfigSource.DEFAULT_CONFIG.value


def test_legacy_alter_configs_replaces_a_brokers_dynamic_configs(broker):
    """AlterConfigs replaces the broker's whole set, as Kafka does — librdkafka's admin test sends
    it with a Kerberos setting; kafka-python's alter_configs sends IncrementalAlterConfigs."""
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    k.alter_configs([KConfigResource(ConfigResourceType.BROKER, "0", configs={"log.retention.ms": "3600000", "compression.type": "zstd"})])
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("kept", 1)])["kept"].result(20)
    topic = describe(a, "topic", "kept")
    assert (topic["retention.ms"].value, topic["retention.ms"].source) == ("3600000", DYNAMIC_BROKER)
    assert topic["compression.type"].value == "zstd"
    res = ConfigResource("broker", "0", set_config={"sasl.kerberos.min.time.before.relogin": "58000"})
    a.alter_configs([res])[res].result(20)
    own = describe(a, "broker", "0")
    assert (own["sasl.kerberos.min.time.before.relogin"].value, own["sasl.kerberos.min.time.before.relogin"].source) == ("58000", DYNAMIC_BROKER)
    assert own["log.retention.ms"].source != DYNAMIC_BROKER, "the settings not given were removed"
    assert "not apply" in describe_documentation(broker.port, "sasl.kerberos.min.time.before.relogin")
    k.close()


def describe_documentation(port, name):
    """DescribeConfigs v3 of broker 0, one key, with documentation → its documentation."""
    body = struct.pack(">ib", 1, BROKER) + wire.string("0") + struct.pack(">i", 1) + wire.string(name) + struct.pack(">??", False, True)
    r = exchange(port, 32, 3, body)
    assert r.take(">i") == 1
    assert r.take(">h") == 0
    r.string(), r.take(">b"), r.string()
    assert r.take(">i") == 1
    r.string(), r.string(), r.take(">?b?")
    assert r.take(">i") == 0
    r.take(">b")
    return r.string()


def test_refusals_name_the_reason_and_change_nothing(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    code, message = refused(a, "0", ("log.dirs", "/elsewhere", SET))
    assert code == INVALID_REQUEST and "Cannot update these configs dynamically" in message and "log.dirs" in message
    assert refused(a, "0", ("no.such.setting", "1", SET))[0] == INVALID_CONFIG
    assert refused(a, "0", ("min.insync.replicas", "0", SET))[0] == INVALID_REQUEST
    assert refused(a, "0", ("log.retention.ms", "soon", SET))[0] == INVALID_REQUEST
    duplicated = alter_default(broker.port, ("log.cleanup.policy", "delete", SET), ("log.cleanup.policy", "compact", SET))
    assert duplicated == (INVALID_REQUEST, "Error due to duplicate config keys")
    assert alter_default(broker.port, ("sasl.kerberos.min.time.before.relogin", "1000", SET))[0] == INVALID_REQUEST, "per broker only"
    assert refused(a, "0", ("message.max.bytes", "1", AlterConfigOpType.APPEND))[0] == INVALID_CONFIG
    alter(a, "0", ("message.max.bytes", "2000", SET), validate_only=True)
    assert describe(a, "broker", "0")["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value, "validate_only stores nothing"
    alter(a, "0", ("log.cleanup.policy", "compact", AlterConfigOpType.APPEND))
    assert describe(a, "broker", "0")["log.cleanup.policy"].value == "delete,compact"


def test_a_cluster_applies_them_on_every_broker_from_etcd():
    c = Cluster(3)
    try:
        a = AdminClient({"bootstrap.servers": c.bootstrap})
        a.create_topics([NewTopic("everywhere", 3, replication_factor=3)])["everywhere"].result(30)
        assert alter_default(c.brokers[1].port, ("log.retention.ms", "4242", SET)) == (0, None)
        alter(a, "2", ("message.max.bytes", "2000", SET))

        def seen_by_all():
            for i, b in c.brokers.items():
                each = AdminClient({"bootstrap.servers": b.bootstrap})
                own = describe(each, "broker", str(i))
                if own["log.retention.ms"].value != "4242" or own["log.retention.ms"].source != DYNAMIC_DEFAULT:
                    return False
                if (own["message.max.bytes"].value == "2000") != (i == 2):
                    return False
            return True

        wait_for("every broker sees the dynamic configs", seen_by_all)
        leaders = {p.id: p.leader for p in a.list_topics("everywhere", timeout=10).topics["everywhere"].partitions.values()}
        for partition, leader in leaders.items():
            code = produce(c.bootstrap, "everywhere", b"z" * 5000, partition=partition, acks=1)
            assert code == (10 if leader == 2 else None), (partition, leader, code)

        c.brokers[3].restart()
        own = describe(AdminClient({"bootstrap.servers": c.brokers[3].bootstrap}), "broker", "3")
        assert own["log.retention.ms"].value == "4242", "a restarted broker reads them from etcd"
    finally:
        c.stop()
