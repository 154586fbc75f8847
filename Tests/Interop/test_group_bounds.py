"""Kafka's bounds on the group state clients create (issue 22): `group.max.size` and
`group.consumer.max.size` turn newcomers away from a full group with GROUP_MAX_SIZE_REACHED, and the
expiry cycle (`offsets.retention.minutes`, `offsets.retention.check.interval.ms`) deletes old
offsets and the groups they leave behind, durably — with librdkafka, kafka-python and the wire."""
import os
import time

import pytest

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.structs import OffsetAndMetadata

from test_clock import SHIM, set_offset, shimmed_broker  # noqa: F401 (a fixture)


def create(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def consumer(bootstrap, group, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **extra})


def poll_for_error(c, seconds):
    """Polls `c` for `seconds`; returns the first consumer error's code (None if none came)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error():
            return m.error().code()
    return None


def group_ids(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}


def test_a_full_classic_group_turns_a_newcomer_away_and_keeps_serving_its_members(broker):
    broker.stop()
    broker.extra_args = ["--set", "group.max.size=2"]
    broker.start()
    create(broker.bootstrap, "capped", 4)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(40):
        p.produce("capped", value=b"%d" % i, partition=i % 4)
    assert p.flush(30) == 0

    members = [consumer(broker.bootstrap, "capped-group") for _ in range(2)]
    for c in members:
        c.subscribe(["capped"])
    got = 0

    def poll_members():
        nonlocal got
        for c in members:
            m = c.poll(0.1)
            if m is not None and not m.error():
                got += 1

    deadline = time.time() + 30
    while time.time() < deadline and not all(c.assignment() for c in members):
        poll_members()
    assert all(c.assignment() for c in members), "both members are in the group"

    newcomer = consumer(broker.bootstrap, "capped-group")
    newcomer.subscribe(["capped"])
    assert poll_for_error(newcomer, 20) == KafkaError.GROUP_MAX_SIZE_REACHED
    newcomer.close()
    # The two members kept their partitions and read everything.
    assert sorted(tp.partition for c in members for tp in c.assignment()) == [0, 1, 2, 3]
    deadline = time.time() + 30
    while got < 40 and time.time() < deadline:
        poll_members()
    assert got == 40
    for c in members:
        c.close()


def test_a_full_consumer_protocol_group_refuses_a_newcomer_fatally(broker):
    broker.stop()
    broker.extra_args = ["--set", "group.consumer.max.size=1"]
    broker.start()
    create(broker.bootstrap, "capped848", 2)
    # KIP-848 consumers take no session or heartbeat settings: the broker decides them.
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": "capped848-group", "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    inside = Consumer(conf)
    inside.subscribe(["capped848"])
    deadline = time.time() + 30
    while time.time() < deadline and not inside.assignment():
        inside.poll(0.1)
    assert sorted(tp.partition for tp in inside.assignment()) == [0, 1]

    newcomer = Consumer(conf)
    newcomer.subscribe(["capped848"])
    # librdkafka treats GROUP_MAX_SIZE_REACHED on ConsumerGroupHeartbeat as fatal.
    assert poll_for_error(newcomer, 20) in (KafkaError.GROUP_MAX_SIZE_REACHED, KafkaError._FATAL)
    newcomer.close()
    inside.poll(1.0)
    assert sorted(tp.partition for tp in inside.assignment()) == [0, 1], "the member inside is untouched"
    inside.close()


@pytest.mark.skipif(not os.path.exists(SHIM), reason=f"{SHIM} not built (swift build --product TernClockShim)")
def test_offsets_past_retention_and_their_groups_are_deleted_durably(shimmed_broker):
    broker = shimmed_broker
    broker.stop()
    broker.extra_args = ["--set", "offsets.retention.minutes=60", "--set", "offsets.retention.check.interval.ms=500"]
    broker.start()
    create(broker.bootstrap, "kept", 1)
    # 500 groups commit with the broker's wall clock two hours back (an hour past retention) —
    # what a week-old commit looks like to a broker with the default retention — then one
    # consumer commits at the right time.
    set_offset(broker.offset_file, -2 * 3600)
    time.sleep(0.3)  # the shim re-reads its file at most every 100 ms
    for i in range(500):
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=f"stale-{i}", enable_auto_commit=False)
        c.commit({KTopicPartition("kept", 0): OffsetAndMetadata(i, "", -1)})
        c.close()
    assert sum(g.startswith("stale-") for g in group_ids(broker.bootstrap)) == 500, "nothing expires while their clock says 'now'"
    set_offset(broker.offset_file, 0)
    time.sleep(0.3)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="fresh", enable_auto_commit=False)
    c.commit({KTopicPartition("kept", 0): OffsetAndMetadata(11, "", -1)})

    deadline = time.time() + 30
    while time.time() < deadline and any(g.startswith("stale-") for g in group_ids(broker.bootstrap)):
        time.sleep(0.5)
    assert group_ids(broker.bootstrap) == {"fresh"}
    assert c.committed(KTopicPartition("kept", 0)) == 11
    c.close()

    # The deletions are tombstones in __consumer_offsets: a restart does not bring them back.
    broker.restart()
    assert group_ids(broker.bootstrap) == {"fresh"}
    stale = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="stale-7", enable_auto_commit=False)
    assert stale.committed(KTopicPartition("kept", 0)) is None
    stale.close()
    assert "expired committed offsets and empty groups" in broker.logs()
