"""Transactions with confluent-kafka: consume-transform-produce, read_committed vs
read_uncommitted, fencing by transactional.id, and recovery after a broker restart."""
import os
import shutil
import struct
import tempfile
import time

import pytest
import wire
from conftest import BrokerProcess
from confluent_kafka import Consumer, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def read(bootstrap, topic, isolation, partitions=1):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "isolation.level": isolation,
                  "enable.partition.eof": True, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out, eofs = [], set()
    deadline = time.time() + 30
    while len(eofs) < partitions and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                eofs.add(m.partition())
            continue
        out.append(m.value().decode())
    c.close()
    return out


def test_consume_transform_produce_commits_visible_aborts_not(broker):
    create(broker.bootstrap, "tx-in", 2)
    create(broker.bootstrap, "tx-out", 2)
    src = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(60):
        src.produce("tx-in", value=f"{i}".encode(), partition=i % 2)
    src.flush(30)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "transformers", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.subscribe(["tx-in"])
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "transformer-1"})
    producer.init_transactions(30)
    done, rounds, aborted = 0, 0, 0
    deadline = time.time() + 60
    while done < 60 and time.time() < deadline:
        msgs = [m for m in consumer.consume(10, 1.0) if not m.error()]
        if not msgs:
            continue
        producer.begin_transaction()
        for m in msgs:
            producer.produce("tx-out", value=f"t{m.value().decode()}".encode(), partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata())
        rounds += 1
        if rounds % 3 == 0:
            producer.flush(30)  # the aborted records really reach the log
            producer.abort_transaction(30)
            aborted += len(msgs)
            # Rewind to the last committed position: the aborted input is processed again.
            for tp in consumer.committed(consumer.assignment(), timeout=10):
                consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        else:
            producer.commit_transaction(30)
            done += len(msgs)
    consumer.close()
    assert done == 60 and aborted > 0

    committed = read(broker.bootstrap, "tx-out", "read_committed", 2)
    assert sorted(committed) == sorted(f"t{i}" for i in range(60)), "each input exactly once, no aborted output"
    uncommitted = read(broker.bootstrap, "tx-out", "read_uncommitted", 2)
    assert len(uncommitted) == 60 + aborted, "read_uncommitted also sees the aborted records"
    # The committed offsets are the transactions' records in __consumer_offsets with their
    # commit markers: a restarted coordinator replays them (and not the aborted ones).
    broker.restart()
    check = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "transformers"})
    offsets = check.committed([TopicPartition("tx-in", 0), TopicPartition("tx-in", 1)], timeout=10)
    check.close()
    assert [tp.offset for tp in offsets] == [30, 30]
    # The group's offsets were committed with the transactions.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "transformers"})
    offsets = c.committed([TopicPartition("tx-in", 0), TopicPartition("tx-in", 1)], timeout=10)
    assert sum(tp.offset for tp in offsets) == 60
    c.close()


def test_second_producer_with_same_transactional_id_fences_the_first(broker):
    create(broker.bootstrap, "fence", 1)
    first = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "shared-id"})
    first.init_transactions(30)
    first.begin_transaction()
    first.produce("fence", value=b"zombie", partition=0)
    first.flush(30)
    second = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "shared-id"})
    second.init_transactions(30)  # aborts the first's open transaction and bumps the epoch
    second.begin_transaction()
    second.produce("fence", value=b"winner", partition=0)
    second.commit_transaction(30)
    with pytest.raises(KafkaException) as exc:
        first.produce("fence", value=b"late", partition=0)
        first.commit_transaction(30)
    assert exc.value.args[0].fatal() or "fenced" in str(exc.value).lower()
    assert read(broker.bootstrap, "fence", "read_committed") == ["winner"]


def test_open_transaction_is_aborted_after_restart(broker):
    create(broker.bootstrap, "tx-restart", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "crashy", "transaction.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("tx-restart", value=b"never-committed", partition=0)
    p.flush(30)
    # The restarted coordinator keeps the transaction open, as Kafka does (its producer may go on);
    # its timeout, counted from its start, aborts it.
    broker.restart()
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("tx-restart", value=b"after", partition=0)
    plain.flush(30)
    deadline = time.time() + 30
    while read(broker.bootstrap, "tx-restart", "read_committed") != ["after"] and time.time() < deadline:
        time.sleep(0.5)
    assert read(broker.bootstrap, "tx-restart", "read_committed") == ["after"]
    assert "aborting timed-out transaction" in broker.logs()


def listed_transactional_ids(port):
    """ListTransactions v0 (flexible) with no filters → {transactional id: state}."""
    conn = wire.Conn(port)
    conn.send(wire.flexible_request(66, 0, 7, b"\x01\x01\x00"))
    resp = conn.recv_frame()
    conn.close()
    pos = 4 + 1  # correlation id, header tags
    _throttle, error = struct.unpack_from(">ih", resp, pos)
    assert error == 0
    pos += 6
    n, pos = wire.read_uvarint(resp, pos)  # unknown state filters
    assert n == 1
    n, pos = wire.read_uvarint(resp, pos)
    out = {}
    for _ in range(n - 1):
        length, pos = wire.read_uvarint(resp, pos)
        tid = resp[pos:pos + length - 1].decode()
        pos += length - 1 + 8  # producer id
        length, pos = wire.read_uvarint(resp, pos)
        out[tid] = resp[pos:pos + length - 1].decode()
        pos += length - 1
        _tags, pos = wire.read_uvarint(resp, pos)
    return out


def test_idle_transactional_ids_expire_and_stay_gone_after_restart():
    root = tempfile.mkdtemp(prefix="tern-interop-")
    broker = BrokerProcess(os.path.join(root, "data"), extra_args=[
        "--set", "transactional.id.expiration.ms=3000",
        "--set", "transaction.remove.expired.transaction.cleanup.interval.ms=200"]).start()
    try:
        create(broker.bootstrap, "tx-expiry", 1)
        done = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "short-lived"})
        done.init_transactions(30)
        done.begin_transaction()
        done.produce("tx-expiry", value=b"committed", partition=0)
        done.commit_transaction(30)
        open_txn = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "still-open",
                             "transaction.timeout.ms": 60000})
        open_txn.init_transactions(30)
        open_txn.begin_transaction()
        open_txn.produce("tx-expiry", value=b"pending", partition=0)
        open_txn.flush(30)
        listed = listed_transactional_ids(broker.port)
        assert listed.get("short-lived") == "CompleteCommit" and listed.get("still-open") == "Ongoing", listed

        deadline = time.time() + 20
        while "short-lived" in listed and time.time() < deadline:
            time.sleep(0.2)
            listed = listed_transactional_ids(broker.port)
        assert "short-lived" not in listed, "an idle transactional id outlived transactional.id.expiration.ms"
        assert listed.get("still-open") == "Ongoing", "a transaction in progress must never expire"
        # Ended here: a restart keeps an open transaction open (Kafka's rule), which would hold
        # the last stable offset back until its 60 s timeout.
        open_txn.abort_transaction(30)

        broker.restart()
        assert "short-lived" not in listed_transactional_ids(broker.port), "the expiry was not persisted"
        # The id is free again: a new producer with it starts afresh and works.
        again = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "short-lived"})
        again.init_transactions(30)
        again.begin_transaction()
        again.produce("tx-expiry", value=b"again", partition=0)
        again.commit_transaction(30)
        assert read(broker.bootstrap, "tx-expiry", "read_committed") == ["committed", "again"]
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def txn_offset_commit(conn, transactional_id, group, pid, epoch, topic, offset, correlation_id):
    """TxnOffsetCommit v2 for partition 0 of `topic`: its error code."""
    body = wire.string(transactional_id) + wire.string(group) + struct.pack(">qh", pid, epoch)
    body += struct.pack(">i", 1) + wire.string(topic) + struct.pack(">i", 1) + struct.pack(">iqih", 0, offset, -1, -1)
    conn.send(wire.request(28, 2, correlation_id, body))
    resp = conn.recv_frame()
    pos = 4 + 4 + 4  # correlation id, throttle, topics count
    name_len, = struct.unpack_from(">h", resp, pos)
    pos += 2 + name_len + 4
    _partition, error = struct.unpack_from(">ih", resp, pos)
    return error


def test_txn_offset_commit_needs_the_groups_partition_in_the_producers_transaction(broker):
    """TxnOffsetCommit is verified as Kafka's group coordinator verifies it (KIP-890): offsets for a
    producer id nobody was given, at a stale epoch, or before AddOffsetsToTxn added the group's
    offsets partition to the transaction are refused — none of them would ever see a marker. After
    AddOffsetsToTxn they are written, and EndTxn's commit makes them the group's."""
    create(broker.bootstrap, "txn-offsets-in")
    conn = wire.Conn(broker.port)
    try:
        assert txn_offset_commit(conn, "nobody", "g-raw", 987654, 0, "txn-offsets-in", 5, 1) == 49  # INVALID_PRODUCER_ID_MAPPING
        conn.send(wire.request(22, 1, 2, wire.string("raw-offsets") + struct.pack(">i", 60000)))
        _corr, _throttle, error, pid, epoch = struct.unpack_from(">iihqh", conn.recv_frame(), 0)
        assert error == 0
        assert txn_offset_commit(conn, "raw-offsets", "g-raw", pid, epoch, "txn-offsets-in", 5, 3) == 48  # INVALID_TXN_STATE
        assert txn_offset_commit(conn, "raw-offsets", "g-raw", pid + 1, epoch, "txn-offsets-in", 5, 4) == 49
        conn.send(wire.request(25, 1, 5, wire.string("raw-offsets") + struct.pack(">qh", pid, epoch) + wire.string("g-raw")))
        _corr, _throttle, error = struct.unpack_from(">iih", conn.recv_frame(), 0)
        assert error == 0
        assert txn_offset_commit(conn, "raw-offsets", "g-raw", pid, epoch - 1, "txn-offsets-in", 5, 6) == 47  # INVALID_PRODUCER_EPOCH
        assert txn_offset_commit(conn, "raw-offsets", "g-raw", pid, epoch, "txn-offsets-in", 5, 7) == 0
        conn.send(wire.request(26, 1, 8, wire.string("raw-offsets") + struct.pack(">qhb", pid, epoch, 1)))
        _corr, _throttle, error = struct.unpack_from(">iih", conn.recv_frame(), 0)
        assert error == 0
    finally:
        conn.close()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-raw", "enable.auto.commit": False})
    try:
        assert [tp.offset for tp in c.committed([TopicPartition("txn-offsets-in", 0)], timeout=10)] == [5]
    finally:
        c.close()
