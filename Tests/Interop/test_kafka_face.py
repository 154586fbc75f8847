"""One Kafka face: the broker shows Kafka 4.0.1's ApiVersions and serves every version in it.

kafka-python pinned to a release (`api_version=(3, 9)` or `(4, 0)`) skips the ApiVersions exchange
and uses that release's table: every version it then picks must be served (FindCoordinator v6
closed the connection once, so every group and transaction operation of a pinned client failed).
KIP-890's second part (Produce v12, TxnOffsetCommit v5, EndTxn v5) is driven on the wire.
"""
import os
import struct
import time

import pytest
from confluent_kafka import Consumer, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from cluster import Cluster


def create(bootstrap, name, partitions, rf=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, rf)]).values():
        f.result(30)


def read_committed(bootstrap, topic, partitions, expected, timeout=30):
    """Every value a read_committed consumer gets from `topic`, until `expected` of them came."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time()}", "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([CkTopicPartition(topic, p, 0) for p in range(partitions)])
    values, deadline = [], time.time() + timeout
    while len(values) < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            values.append(m.value())
    # Anything beyond what was expected (an aborted record shown by mistake) shows up here.
    end = time.time() + 2
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value())
    c.close()
    return values


@pytest.mark.parametrize("release", [(3, 9), (4, 0)])
def test_kafka_python_pinned_to_a_release_runs_a_transaction_and_a_group(broker, release):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"pinned-{release[0]}-{release[1]}"
    create(broker.bootstrap, topic, 3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=release, transactional_id=f"tx-{topic}")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(30):
        producer.send(topic, value=b"committed-%d" % i, partition=i % 3)
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send(topic, value=b"aborted", partition=0)
    producer.abort_transaction()
    producer.close()

    group = f"group-{topic}"
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, api_version=release, group_id=group,
                             isolation_level="read_committed", auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=8000)
    values = sorted(m.value for m in consumer)
    assert values == sorted(b"committed-%d" % i for i in range(30)), values
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    consumer.close()
    assert all(committed[p] is not None and committed[p] >= 10 for p in range(3)), committed

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=release)
    offsets = admin.list_group_offsets(group)[group]
    total = sum(o.offset for o in offsets.values())
    assert total >= 30, offsets
    described = admin.describe_groups([group])
    assert group in repr(described), described
    admin.close()


def test_aiokafka_sends_offsets_to_a_transaction_while_the_group_has_live_members(broker):
    """aiokafka's send_offsets_to_transaction sends TxnOffsetCommit v0-2, without member id or
    generation; Kafka accepts it while the group has members (it answered UNKNOWN_MEMBER_ID here)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    create(broker.bootstrap, "aio-eos-in", 1)
    create(broker.bootstrap, "aio-eos-out", 1)

    async def run():
        seed = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await seed.start()
        for i in range(5):
            await seed.send_and_wait("aio-eos-in", b"in-%d" % i, partition=0)
        await seed.stop()
        consumer = AIOKafkaConsumer("aio-eos-in", bootstrap_servers=broker.bootstrap, group_id="aio-eos",
                                    enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed")
        await consumer.start()
        try:
            records = []
            deadline = time.time() + 30
            while len(records) < 5 and time.time() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for msgs in batch.values():
                    records.extend(msgs)
            assert len(records) == 5
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="aio-eos-tx")
            await producer.start()
            try:
                async with producer.transaction():
                    for r in records:
                        await producer.send("aio-eos-out", b"out-" + r.value, partition=0)
                    await producer.send_offsets_to_transaction({TopicPartition("aio-eos-in", 0): records[-1].offset + 1}, "aio-eos")
            finally:
                await producer.stop()
            # The consumer is still a live member of the group; the offsets came with the commit.
            return await consumer.committed(TopicPartition("aio-eos-in", 0))
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == 5
    assert sorted(read_committed(broker.bootstrap, "aio-eos-out", 1, 5)) == [b"out-in-%d" % i for i in range(5)]


# --- KIP-890 part 2 on the wire -------------------------------------------------------------------

def _compact_nullable_string(s):
    return b"\x00" if s is None else wire.compact_string(s)


def _call(port, api_key, version, body, correlation_id=7):
    """One flexible request; → the response body after its header (correlation id, tagged fields)."""
    conn = wire.Conn(port)
    try:
        conn.send(wire.flexible_request(api_key, version, correlation_id, body))
        resp = conn.recv_frame()
    finally:
        conn.close()
    assert resp is not None, f"api {api_key} v{version}: the broker closed the connection"
    corr, = struct.unpack_from(">i", resp, 0)
    assert corr == correlation_id
    assert resp[4] == 0, "no tagged fields in the response header"
    return resp[5:]


# Retriable while a coordinator loads or its internal topic is being created, as clients retry.
RETRIABLE = {14, 15, 16}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


def init_producer_id_v5(port, transactional_id):
    body = _compact_nullable_string(transactional_id) + struct.pack(">iqh", 60000, -1, -1) + b"\x00"
    deadline = time.time() + 30
    while True:
        _throttle, error, pid, epoch = struct.unpack_from(">ihqh", _call(port, 22, 5, body), 0)
        if error not in RETRIABLE or time.time() > deadline:
            break
        time.sleep(0.2)
    assert error == 0, error
    return pid, epoch


def produce_v12(port, transactional_id, topic, partition, batch):
    body = _compact_nullable_string(transactional_id) + struct.pack(">hi", -1, 10000)
    body += wire.uvarint(2) + wire.compact_string(topic) + wire.uvarint(2) + struct.pack(">i", partition)
    body += wire.uvarint(len(batch) + 1) + batch + b"\x00" + b"\x00" + b"\x00"
    resp = _call(port, 0, 12, body)
    _n, pos = wire.read_uvarint(resp, 0)
    name_len, pos = wire.read_uvarint(resp, pos)
    pos += name_len - 1
    _n, pos = wire.read_uvarint(resp, pos)
    _index, error = struct.unpack_from(">ih", resp, pos)
    return error


def txn_offset_commit_v5(port, transactional_id, group, pid, epoch, topic, partition, offset):
    body = wire.compact_string(transactional_id) + wire.compact_string(group) + struct.pack(">qhi", pid, epoch, -1)
    body += wire.compact_string("") + b"\x00"  # member id, group instance id (null)
    body += wire.uvarint(2) + wire.compact_string(topic) + wire.uvarint(2)
    body += struct.pack(">iqi", partition, offset, -1) + b"\x00" + b"\x00" + b"\x00" + b"\x00"
    resp = _call(port, 28, 5, body)
    pos = 4
    _n, pos = wire.read_uvarint(resp, pos)
    name_len, pos = wire.read_uvarint(resp, pos)
    pos += name_len - 1
    _n, pos = wire.read_uvarint(resp, pos)
    _index, error = struct.unpack_from(">ih", resp, pos)
    return error


def end_txn_v5(port, transactional_id, pid, epoch, commit):
    body = wire.compact_string(transactional_id) + struct.pack(">qh?", pid, epoch, commit) + b"\x00"
    _throttle, error, new_pid, new_epoch = struct.unpack_from(">ihqh", _call(port, 26, 5, body), 0)
    return error, new_pid, new_epoch


def txn_batch(values, pid, epoch, seq):
    records = b"".join(wire.record(v, offset_delta=i) for i, v in enumerate(values))
    return wire.batch(records, len(values), attributes=0x10, pid=pid, epoch=epoch, seq=seq)


def test_transactions_v2_add_partitions_by_producing_and_bump_the_epoch_at_every_end(broker):
    """Produce v12 and TxnOffsetCommit v5 add their partitions to the transaction themselves (no
    AddPartitionsToTxn / AddOffsetsToTxn); EndTxn v5 ends it with the epoch raised and says so, and
    the old epoch is fenced; a retried EndTxn gets the same answer."""
    from kafka import KafkaConsumer, TopicPartition

    create(broker.bootstrap, "tv2", 2)
    tid = "tv2-producer"
    pid, epoch = init_producer_id_v5(broker.port, tid)

    assert produce_v12(broker.port, tid, "tv2", 0, txn_batch([b"a", b"b"], pid, epoch, 0)) == 0
    assert produce_v12(broker.port, tid, "tv2", 1, txn_batch([b"c"], pid, epoch, 0)) == 0
    assert txn_offset_commit_v5(broker.port, tid, "tv2-group", pid, epoch, "tv2", 0, 2) == 0
    error, new_pid, new_epoch = end_txn_v5(broker.port, tid, pid, epoch, True)
    assert (error, new_pid, new_epoch) == (0, pid, epoch + 1)
    # The client retries after a lost answer: the same answer, not a fencing error.
    assert end_txn_v5(broker.port, tid, pid, epoch, True) == (0, pid, epoch + 1)

    # The old epoch is fenced (INVALID_PRODUCER_EPOCH 47 or PRODUCER_FENCED 90); the new one adds
    # the partition again in a new transaction, which is aborted.
    assert produce_v12(broker.port, tid, "tv2", 0, txn_batch([b"stale"], pid, epoch, 1)) in (47, 90)
    assert produce_v12(broker.port, tid, "tv2", 0, txn_batch([b"aborted"], pid, new_epoch, 0)) == 0
    error, _, aborted_epoch = end_txn_v5(broker.port, tid, pid, new_epoch, False)
    assert (error, aborted_epoch) == (0, new_epoch + 1)

    assert sorted(read_committed(broker.bootstrap, "tv2", 2, 3)) == [b"a", b"b", b"c"]
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="tv2-group", enable_auto_commit=False)
    assert consumer.committed(TopicPartition("tv2", 0)) == 2
    consumer.close()


def find_coordinator_v1(port, key, key_type):
    """→ the coordinator's node id."""
    deadline = time.time() + 30
    while True:
        conn = wire.Conn(port)
        try:
            conn.send(wire.request(10, 1, 9, wire.string(key) + struct.pack(">b", key_type)))
            resp = conn.recv_frame()
        finally:
            conn.close()
        _corr, _throttle, error, message_len = struct.unpack_from(">iihh", resp, 0)
        if error not in RETRIABLE or time.time() > deadline:
            break
        time.sleep(0.2)
    assert error == 0, error
    node, = struct.unpack_from(">i", resp, 12 + max(message_len, 0))
    return node


def test_transactions_v2_across_a_cluster_add_partitions_through_the_coordinator():
    """In a cluster the partitions' leaders and the group's coordinator are other brokers than the
    transaction coordinator: Produce v12 and TxnOffsetCommit v5 add their partitions through it
    (AddPartitionsToTxn v4 without verify_only), and the commit's markers reach them all."""
    from kafka import KafkaConsumer, TopicPartition

    c = Cluster(3)
    try:
        create(c.bootstrap, "tv2c", 6, rf=3)
        md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics("tv2c", timeout=10)
        leaders = {p.id: p.leader for p in md.topics["tv2c"].partitions.values()}
        port = {i: b.port for i, b in c.brokers.items()}
        tid = "tv2c-tx"
        coordinator = find_coordinator_v1(port[1], tid, 1)
        group_coordinator = find_coordinator_v1(port[1], "tv2c-group", 0)
        assert set(leaders.values()) - {coordinator}, "some partition is led by another broker"
        pid, epoch = init_producer_id_v5(port[coordinator], tid)
        for p, leader in sorted(leaders.items()):
            assert produce_v12(port[leader], tid, "tv2c", p, txn_batch([b"v-%d" % p], pid, epoch, 0)) == 0, p
        assert txn_offset_commit_v5(port[group_coordinator], tid, "tv2c-group", pid, epoch, "tv2c", 0, 1) == 0
        assert end_txn_v5(port[coordinator], tid, pid, epoch, True) == (0, pid, epoch + 1)
        assert sorted(read_committed(c.bootstrap, "tv2c", 6, 6)) == sorted(b"v-%d" % p for p in range(6))
        consumer = KafkaConsumer(bootstrap_servers=c.bootstrap, group_id="tv2c-group", enable_auto_commit=False)
        assert consumer.committed(TopicPartition("tv2c", 0)) == 1
        consumer.close()
    finally:
        c.stop()


def test_transactions_v2_stay_fenced_for_a_producer_the_coordinator_does_not_know(broker):
    """Adding by producing still checks the producer: a made-up producer id is refused and
    nothing is written (a stray transactional batch would hold the last stable offset back)."""
    create(broker.bootstrap, "tv2-stray", 1)
    init_producer_id_v5(broker.port, "tv2-known")
    error = produce_v12(broker.port, "tv2-known", "tv2-stray", 0, txn_batch([b"stray"], 987654, 0, 0))
    assert error != 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stray-check", "isolation.level": "read_uncommitted"})
    low, high = c.get_watermark_offsets(CkTopicPartition("tv2-stray", 0), timeout=10)
    c.close()
    assert (low, high) == (0, 0)


def test_alter_replica_log_dirs_for_a_partition_hosted_elsewhere_is_replica_not_available():
    """Kafka answers REPLICA_NOT_AVAILABLE for a partition of the cluster with no replica on the
    broker asked, and UNKNOWN_TOPIC_OR_PARTITION only for one the cluster does not have."""
    from kafka import KafkaAdminClient

    c = Cluster(3)
    try:
        create(c.bootstrap, "placed", 3, rf=1)
        md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics("placed", timeout=10)
        leaders = {p.id: p.leader for p in md.topics["placed"].partitions.values()}
        node, b = next((i, b) for i, b in c.brokers.items() if list(leaders.values()).count(i) < 3)
        elsewhere = next(p for p, leader in leaders.items() if leader != node)
        k = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        moved = k.alter_replica_log_dirs({("placed", elsewhere, node): os.path.abspath(b.data_dir),
                                          ("placed", 7, node): os.path.abspath(b.data_dir)})
        k.close()
        outcome = {tpr.partition: err.__name__ for tpr, err in moved.items()}
        assert outcome == {elsewhere: "ReplicaNotAvailableError", 7: "UnknownTopicOrPartitionError"}, outcome
    finally:
        c.stop()


def test_describe_quorum_is_refused_as_a_broker_without_kraft_refuses_it(broker):
    """Tern keeps its metadata in etcd (or alone), not in a KRaft quorum: DescribeQuorum is not
    advertised, and a request for it closes the connection, as Kafka closes it for an API its
    listener does not enable. The broker goes on serving."""
    conn = wire.Conn(broker.port)
    conn.send(wire.flexible_request(55, 0, 3, wire.uvarint(1) + b"\x00"))
    assert conn.recv_frame() is None
    conn.close()
    conn = wire.Conn(broker.port)
    conn.send(wire.request(18, 0, 4, b""))
    resp = conn.recv_frame()
    conn.close()
    count, = struct.unpack_from(">i", resp, 6)
    keys = {struct.unpack_from(">h", resp, 10 + 6 * i)[0] for i in range(count)}
    assert 18 in keys and 55 not in keys
