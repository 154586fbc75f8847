"""Answers Kafka gives and Tern must give too (issue 10, "wrong answers"): offset commits from
outside a group, ListOffsets by isolation level and by max timestamp, static-membership fencing and
a static leader's restart — each through librdkafka (confluent-kafka) and kafka-python or the wire."""
import struct
import time

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

import wire


def create(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def produce(bootstrap, topic, values, timestamps=None):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=0, **({"timestamp": timestamps[i]} if timestamps else {}))
        p.flush(30)  # one batch per record, so a batch's max timestamp is its record's


def offset_commit_v2(group, generation, member_id, topic, partition, offset):
    body = wire.string(group) + struct.pack(">i", generation) + wire.string(member_id) + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + wire.string(topic) + struct.pack(">i", 1)
    body += struct.pack(">iq", partition, offset) + wire.string("")
    return body


def offset_commit_error(port, body):
    conn = wire.Conn(port)
    conn.send(wire.request(8, 2, 41, body))
    resp = conn.recv_frame()
    conn.close()
    pos = 4 + 4  # correlation id, topics count
    name_len, = struct.unpack_from(">h", resp, pos)
    pos += 2 + name_len + 4
    _partition, error = struct.unpack_from(">ih", resp, pos)
    return error


def test_offset_commit_rules_for_committers_outside_the_group(broker):
    create(broker.bootstrap, "commits", 1)
    produce(broker.bootstrap, "commits", [b"a", b"b", b"c"])
    # An empty group takes a commit with generation -1 whatever member id it names (Kafka ignores
    # it): a KIP-848 consumer using assign() always sends its own.
    assert offset_commit_error(broker.port, offset_commit_v2("lonely", -1, "some-member-id", "commits", 0, 2)) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "manual-848", "group.protocol": "consumer",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("commits", 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 3 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) == 3
    c.commit(message=got[-1], asynchronous=False)
    assert c.committed([TopicPartition("commits", 0)], timeout=10)[0].offset == 3
    c.close()

    # A group with a live member: a commit with neither generation nor member id is refused with
    # UNKNOWN_MEMBER_ID (25), not ILLEGAL_GENERATION.
    member = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "busy", "session.timeout.ms": 6000,
                       "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
    assigned = []
    member.subscribe(["commits"], on_assign=lambda _, ps: assigned.extend(ps))
    deadline = time.time() + 20
    while not assigned and time.time() < deadline:
        member.poll(0.2)
    assert assigned
    assert offset_commit_error(broker.port, offset_commit_v2("busy", -1, "", "commits", 0, 1)) == 25
    # kafka-python's standalone consumer commits the same way and must see the refusal too.
    k = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="busy", enable_auto_commit=False)
    k.assign([KTopicPartition("commits", 0)])
    with pytest.raises(Exception) as refused:
        k.commit({KTopicPartition("commits", 0): __import__("kafka").OffsetAndMetadata(1, "", -1)})
    assert "UnknownMember" in type(refused.value).__name__ or "UnknownMember" in str(refused.value) \
        or "CommitFailed" in type(refused.value).__name__
    k.close()
    member.close()


def test_list_offsets_by_isolation_level_and_max_timestamp(broker):
    create(broker.bootstrap, "lso", 1)
    tx = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "lso-tx"})
    tx.init_transactions(30)
    tx.begin_transaction()
    for v in (b"c1", b"c2", b"c3"):
        tx.produce("lso", value=v, partition=0)
    tx.commit_transaction(30)  # offsets 0-2, marker at 3
    tx.begin_transaction()
    tx.produce("lso", value=b"open1", partition=0)
    tx.produce("lso", value=b"open2", partition=0)
    tx.flush(30)  # an open transaction from offset 4: the last stable offset stays at 4
    tp = TopicPartition("lso", 0)

    committed = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wm", "isolation.level": "read_committed"})
    uncommitted = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wm", "isolation.level": "read_uncommitted"})
    assert committed.get_watermark_offsets(tp, timeout=10, cached=False) == (0, 4)
    assert uncommitted.get_watermark_offsets(tp, timeout=10, cached=False) == (0, 6)
    committed.close()
    uncommitted.close()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    latest_rc = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_COMMITTED)[tp].result(10)
    latest_ru = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_UNCOMMITTED)[tp].result(10)
    assert (latest_rc.offset, latest_ru.offset) == (4, 6)

    k = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed")
    assert k.end_offsets([KTopicPartition("lso", 0)])[KTopicPartition("lso", 0)] == 4
    k.close()
    tx.abort_transaction(30)

    # KIP-734: the record with the largest timestamp, wherever it is in the log.
    create(broker.bootstrap, "maxts", 1)
    now = int(time.time() * 1000)
    produce(broker.bootstrap, "maxts", [b"a", b"b", b"newest", b"c"], [now - 3000, now - 2000, now + 5000, now - 1000])
    mp = TopicPartition("maxts", 0)
    found = admin.list_offsets({mp: OffsetSpec.max_timestamp()})[mp].result(10)
    assert (found.offset, found.timestamp) == (2, now + 5000)
    by_time = admin.list_offsets({mp: OffsetSpec.for_timestamp(now - 1500)})[mp].result(10)
    assert by_time.offset == 2, "the first record at or after the time is the max-timestamp one"
    earliest = admin.list_offsets({mp: OffsetSpec.earliest()})[mp].result(10)
    assert earliest.offset == 0


def static_consumer(bootstrap, group, instance, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 10000,
                     "heartbeat.interval.ms": 500, **extra})


def test_a_replaced_static_member_is_fenced_and_does_not_fence_back(broker):
    create(broker.bootstrap, "fenced", 2)
    old = static_consumer(broker.bootstrap, "fencing", "worker-1")
    old_assigned = []
    old.subscribe(["fenced"], on_assign=lambda _, ps: old_assigned.extend(ps))
    deadline = time.time() + 20
    while not old_assigned and time.time() < deadline:
        old.poll(0.2)
    assert old_assigned
    new = static_consumer(broker.bootstrap, "fencing", "worker-1")
    new_assigned = []
    new.subscribe(["fenced"], on_assign=lambda _, ps: new_assigned.extend(ps))
    fatal = []
    old_errors = []
    deadline = time.time() + 20
    while not fatal and time.time() < deadline:
        new.poll(0.1)
        try:
            m = old.poll(0.1)
            if m is not None and m.error():
                old_errors.append(m.error())
                if m.error().fatal() or m.error().code() in (-144, -150):
                    fatal.append(m.error())
        except KafkaException as e:
            fatal.append(e.args[0])
    assert fatal and "fenced" in str(fatal[0]).lower(), f"the old instance should be fenced, got {fatal or old_errors}"
    # The newer instance stays in the group and keeps consuming.
    produce(broker.bootstrap, "fenced", [b"after-fence"])
    got = None
    deadline = time.time() + 20
    while got is None and time.time() < deadline:
        m = new.poll(0.2)
        if m is not None and not m.error() and m.value() == b"after-fence":
            got = m
    assert got is not None and new_assigned
    new.close()


def test_a_static_leader_restart_causes_no_rebalance(broker):
    create(broker.bootstrap, "static-lead", 4)
    events = {"leader": [], "follower": [], "leader2": []}
    revokes = {"follower": 0}
    leader = static_consumer(broker.bootstrap, "lead-group", "lead")
    leader.subscribe(["static-lead"], on_assign=lambda _, ps: events["leader"].append(sorted(p.partition for p in ps)))
    deadline = time.time() + 20
    while not events["leader"] and time.time() < deadline:
        leader.poll(0.1)  # joins first: it leads the group
    follower = static_consumer(broker.bootstrap, "lead-group", "follow")
    follower.subscribe(["static-lead"], on_assign=lambda _, ps: events["follower"].append(sorted(p.partition for p in ps)),
                       on_revoke=lambda _, ps: revokes.__setitem__("follower", revokes["follower"] + 1))
    deadline = time.time() + 30
    while time.time() < deadline and not (events["follower"] and events["leader"]
                                          and len(events["leader"][-1]) + len(events["follower"][-1]) == 4
                                          and len(events["follower"][-1]) == 2):
        leader.poll(0.1)
        follower.poll(0.1)
    leader_parts = events["leader"][-1]
    assert len(leader_parts) == 2
    revokes_before = revokes["follower"]
    leader.close()  # a static member does not leave on close
    leader = static_consumer(broker.bootstrap, "lead-group", "lead")
    leader.subscribe(["static-lead"], on_assign=lambda _, ps: events["leader2"].append(sorted(p.partition for p in ps)))
    deadline = time.time() + 20
    while not events["leader2"] and time.time() < deadline:
        leader.poll(0.1)
        follower.poll(0.1)
    for _ in range(20):
        follower.poll(0.1)
    assert events["leader2"] and events["leader2"][-1] == leader_parts, "the restarted leader got its partitions back"
    assert revokes["follower"] == revokes_before, "the follower saw a rebalance when the static leader restarted"
    leader.close()
    follower.close()


def test_authorized_operations_are_all_operations_without_an_authorizer(broker):
    """Metadata v8-10, DescribeCluster and DescribeGroups v3+ answer the operations a client may
    perform when asked — with no authorizer, every operation the resource supports."""
    create(broker.bootstrap, "ops", 1)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    cluster = a.describe_cluster(include_authorized_operations=True).result(10)
    assert cluster.controller is not None and cluster.controller.id == 0 and [n.id for n in cluster.nodes] == [0]
    assert {op.name for op in cluster.authorized_operations} == {
        "CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALTER", "DESCRIBE"}
    topic = a.describe_topics(TopicCollection(["ops"]), include_authorized_operations=True)["ops"].result(10)
    assert {op.name for op in topic.authorized_operations} == {
        "READ", "WRITE", "CREATE", "DESCRIBE", "DELETE", "ALTER", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    member = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ops-group", "session.timeout.ms": 6000})
    assigned = []
    member.subscribe(["ops"], on_assign=lambda _, ps: assigned.extend(ps))
    deadline = time.time() + 20
    while not assigned and time.time() < deadline:
        member.poll(0.2)
    group = a.describe_consumer_groups(["ops-group"], include_authorized_operations=True)["ops-group"].result(10)
    assert {op.name for op in group.authorized_operations} == {"READ", "DESCRIBE", "DELETE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    member.close()
    # Not asked for: the schema default, which clients show as "unknown" (None).
    plain = a.describe_cluster().result(10)
    assert plain.authorized_operations is None
    from kafka.admin import KafkaAdminClient
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    described = k.describe_cluster()
    assert described["controller_id"] == 0 and [b["broker_id"] for b in described["brokers"]] == [0], described
    assert "IDEMPOTENT_WRITE" in described["authorized_operations"]
    k.close()


def test_old_produce_and_fetch_versions_get_unsupported_version_not_a_closed_connection(broker):
    """Produce v0-2 stay advertised, as Kafka 4.0 keeps them (librdkafka < 2.11.1 disables
    compression otherwise, client-compat.md), but carry message formats v0/v1: each partition is
    answered UNSUPPORTED_VERSION (35) and the connection stays usable. Fetch v0-3, which Kafka 4.0
    no longer advertises, close the connection as Kafka's do; the broker serves the next one."""
    create(broker.bootstrap, "old-versions", 1)
    conn = wire.Conn(broker.port)
    records = wire.record_batch([b"v"])
    body = struct.pack(">hi", 1, 10000) + struct.pack(">i", 1) + wire.string("old-versions")
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
    conn.send(wire.request(0, 2, 11, body))
    resp = conn.recv_frame()
    assert resp is not None, "the broker closed the connection"
    pos = 4 + 4
    name_len, = struct.unpack_from(">h", resp, pos)
    pos += 2 + name_len + 4
    _index, error = struct.unpack_from(">ih", resp, pos)
    assert error == 35
    fetch = struct.pack(">iiii", -1, 100, 1, 1 << 20) + struct.pack(">i", 1) + wire.string("old-versions")
    fetch += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
    conn.send(wire.request(1, 3, 12, fetch))
    assert conn.recv_frame() is None, "Fetch v3 is not served: the connection is closed"
    conn.close()
    conn = wire.Conn(broker.port)
    conn.send(wire.request(18, 0, 13, b""))
    assert conn.recv_frame() is not None, "a new connection is served"
    conn.close()


def add_partitions_v4(port, transactional_id, pid, epoch, topic, partitions, verify_only):
    """AddPartitionsToTxn v4 (flexible, batched, KIP-890) → {partition: error code}."""
    body = wire.uvarint(2) + wire.compact_string(transactional_id) + struct.pack(">qh?", pid, epoch, verify_only)
    body += wire.uvarint(2) + wire.compact_string(topic) + wire.uvarint(len(partitions) + 1)
    body += b"".join(struct.pack(">i", p) for p in partitions) + b"\x00" + b"\x00" + b"\x00"
    conn = wire.Conn(port)
    conn.send(wire.flexible_request(24, 4, 31, body))
    resp = conn.recv_frame()
    conn.close()
    pos = 4 + 1 + 4  # correlation id, header tags, throttle
    error, = struct.unpack_from(">h", resp, pos)
    assert error == 0
    pos += 2
    _n, pos = wire.read_uvarint(resp, pos)  # one transaction
    length, pos = wire.read_uvarint(resp, pos)
    pos += length - 1
    _n, pos = wire.read_uvarint(resp, pos)  # one topic
    length, pos = wire.read_uvarint(resp, pos)
    pos += length - 1
    count, pos = wire.read_uvarint(resp, pos)
    out = {}
    for _ in range(count - 1):
        partition, code = struct.unpack_from(">ih", resp, pos)
        out[partition] = code
        pos += 6 + 1
    return out


def test_add_partitions_to_txn_v4_verifies_and_adds_in_batches(broker):
    create(broker.bootstrap, "verify-txn", 2)
    tx = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "verified"})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce("verify-txn", value=b"in", partition=0)
    tx.flush(20)
    from kafka.admin import KafkaAdminClient
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    state = k.describe_transactions(["verified"])
    k.close()
    text = repr(state)
    pid = int(__import__("re").search(r"producer_id=(\d+)", text).group(1))
    epoch = int(__import__("re").search(r"producer_epoch=(\d+)", text).group(1))
    assert add_partitions_v4(broker.port, "verified", pid, epoch, "verify-txn", [0, 1], True) == {0: 0, 1: 48}
    assert add_partitions_v4(broker.port, "verified", pid, epoch + 1, "verify-txn", [0], True) == {0: 47}
    assert add_partitions_v4(broker.port, "verified", pid, epoch, "verify-txn", [1], False) == {1: 0}
    assert add_partitions_v4(broker.port, "verified", pid, epoch, "verify-txn", [0, 1], True) == {0: 0, 1: 0}
    tx.commit_transaction(30)
