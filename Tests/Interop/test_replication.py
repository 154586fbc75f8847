"""Replication: followers copy their leaders over the Fetch protocol; acks=all waits for the ISR;
no acknowledged record is lost when a leader dies. etcd + real brokers on loopback, driven by
confluent-kafka; every replica's log files are compared byte for byte."""
import glob
import os
import signal
import struct
import time
import urllib.request

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from cluster import BackgroundProducer, Cluster, wait_for


@pytest.fixture
def cluster():
    c = Cluster(3)
    try:
        yield c
    finally:
        c.stop()


def create(cluster, name, partitions, rf=3, **configs):
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(name, partitions, rf, config={k.replace("_", "."): str(v) for k, v in configs.items()})
    for f in a.create_topics([topic], operation_timeout=15).values():
        f.result(timeout=30)
    wait_for(f"{name} has a leader for every partition", lambda: len(partitions_of(cluster, name)) == partitions
             and all(p.leader >= 0 for p in partitions_of(cluster, name).values()))


def partitions_of(cluster, topic):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    return {} if t is None or t.error is not None else dict(t.partitions)


def log_bytes(broker, topic, partition):
    """A replica's whole log: its segment files in offset order."""
    files = sorted(glob.glob(os.path.join(broker.data_dir, f"{topic}-{partition}", "*.log")))
    return b"".join(open(f, "rb").read() for f in files)


def replicas_identical(cluster, topic, partition, replicas):
    logs = {r: log_bytes(cluster.brokers[r], topic, partition) for r in replicas}
    first = next(iter(logs.values()))
    return len(first) > 0 and all(v == first for v in logs.values())


def consume_everything(bootstrap, topic, partitions, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "replication-check", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen, at_end = [], set()
    deadline = time.time() + timeout
    try:
        while len(at_end) < partitions and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                at_end.add(m.partition())
                continue
            at_end.discard(m.partition())
            seen.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()
    return seen


def metric(broker, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=5).read().decode()
    # `name` may carry labels: then only that series counts.
    values = [float(line.split()[-1]) for line in body.splitlines()
              if line.startswith(name + " ") or (not name.endswith("}") and line.startswith(name + "{"))]
    return sum(values) if values else None


def offset_for_leader_epoch(broker, topic, partition, leader_epoch, current_leader_epoch=-1):
    """OffsetForLeaderEpoch v3 as a consumer sends it: (error, epoch, end offset)."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + wire.string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iii", partition, current_leader_epoch, leader_epoch)
    conn = wire.Conn(broker.port)
    conn.send(wire.request(23, 3, 7, body))
    resp = conn.recv_frame()
    conn.close()
    pos = 4 + 4 + 4  # correlation id, throttle, topics count
    name_len, = struct.unpack_from(">h", resp, pos)
    pos += 2 + name_len + 4
    error, _partition, epoch, end = struct.unpack_from(">hiiq", resp, pos)
    return error, epoch, end


def test_followers_hold_byte_identical_copies_and_acks_all_waits_for_them(cluster):
    create(cluster, "copied", 3, min_insync_replicas=2)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    acked = []
    for i in range(3000):
        p.produce("copied", key=str(i).encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: acked.append(msg.offset()) if err is None else None)
        p.poll(0)
    assert p.flush(60) == 0
    assert len(acked) == 3000
    # Every partition's three replicas: the same batches, offsets and leader epochs, byte for byte.
    for partition, state in partitions_of(cluster, "copied").items():
        assert sorted(state.replicas) == [1, 2, 3]
        wait_for(f"copied-{partition} identical on every replica",
                 lambda: replicas_identical(cluster, "copied", partition, state.replicas))
        assert sorted(state.isrs) == [1, 2, 3]
    seen = consume_everything(cluster.bootstrap, "copied", 3)
    assert sorted(v for _, _, v in seen) == sorted(f"v{i}".encode() for i in range(3000))


def test_kill_9_of_leaders_loses_no_acknowledged_record(cluster):
    create(cluster, "durable", 3, min_insync_replicas=2)
    killed = []
    with BackgroundProducer(cluster.bootstrap, "durable", **{"enable.idempotence": True}) as producer:
        for round in range(2):
            wait_for("records acknowledged", lambda: len(producer.acked) > 500 * (round + 1), timeout=30)
            leader = partitions_of(cluster, "durable")[round].leader
            cluster.brokers[leader].stop(signal.SIGKILL)
            killed.append(leader)
            wait_for("a new leader", lambda: partitions_of(cluster, "durable")[round].leader not in (-1, leader), timeout=30)
            acked_before = len(producer.acked)
            wait_for("producing goes on", lambda: len(producer.acked) > acked_before + 200, timeout=30)
            cluster.brokers[leader].start()
            wait_for(f"broker {leader} back in every ISR", lambda: all(
                leader in p.isrs for p in partitions_of(cluster, "durable").values()), timeout=60)
    assert producer.errors == []
    acked = set(producer.acked)
    seen = consume_everything(cluster.bootstrap, "durable", 3)
    values = [v for _, _, v in seen]
    assert acked <= set(values), f"{len(acked - set(values))} acknowledged records lost"
    assert len(values) == len(set(values)), "an idempotent producer's record appears twice"
    for partition, state in partitions_of(cluster, "durable").items():
        wait_for(f"durable-{partition} identical on every replica",
                 lambda: replicas_identical(cluster, "durable", partition, state.replicas))


def test_a_paused_follower_leaves_the_isr_and_rejoins_after_catching_up():
    cluster = Cluster(3, extra_args=["--set", "replica.lag.time.max.ms=2000"])
    try:
        create(cluster, "lagging", 1, min_insync_replicas=2)
        state = partitions_of(cluster, "lagging")[0]
        follower = next(r for r in state.replicas if r != state.leader)
        others = [r for r in state.replicas if r not in (state.leader, follower)]
        cluster.brokers[follower].proc.send_signal(signal.SIGSTOP)
        paused_at = time.time()
        try:
            # Acknowledged records while it is away: acks=all goes on with the two others.
            p = Producer({"bootstrap.servers": cluster.brokers[state.leader].bootstrap, "acks": "all", "linger.ms": 5})
            for i in range(100):
                p.produce("lagging", value=f"a{i}".encode())
            assert p.flush(30) == 0
            wait_for("the paused follower leaves the ISR", lambda: follower not in partitions_of(cluster, "lagging")[0].isrs, timeout=20)
            print(f"ISR shrank {time.time() - paused_at:.1f} s after the follower paused (replica.lag.time.max.ms = 2 s)")
            leader = cluster.brokers[state.leader]
            wait_for("the leader reports an under-replicated partition",
                     lambda: (metric(leader, "tern_replication_under_replicated_partitions") or 0) >= 1, timeout=15)
            assert metric(leader, "tern_replication_isr_shrinks_total") >= 1
            lag_of = lambda r: metric(leader, f'tern_replication_follower_lag{{topic="lagging",partition="0",replica="{r}"}}')
            wait_for("the paused follower's lag is reported", lambda: (lag_of(follower) or 0) >= 100, timeout=15)
            # With a second follower paused too the ISR would be 1 < min.insync.replicas.
            cluster.brokers[others[0]].proc.send_signal(signal.SIGSTOP)
            try:
                wait_for("the second follower leaves the ISR", lambda: partitions_of(cluster, "lagging")[0].isrs == [state.leader], timeout=20)
                errors = []
                strict = Producer({"bootstrap.servers": cluster.brokers[state.leader].bootstrap, "acks": "all", "message.timeout.ms": 3000})
                strict.produce("lagging", value=b"refused", on_delivery=lambda err, _: errors.append(err))
                strict.flush(10)
                assert errors and errors[0] is not None and errors[0].code() in (
                    KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT), errors
                relaxed = Producer({"bootstrap.servers": cluster.brokers[state.leader].bootstrap, "acks": 1})
                relaxed.produce("lagging", value=b"acks=1")
                assert relaxed.flush(10) == 0
            finally:
                cluster.brokers[others[0]].proc.send_signal(signal.SIGCONT)
        finally:
            cluster.brokers[follower].proc.send_signal(signal.SIGCONT)
        wait_for("both rejoin the ISR", lambda: sorted(partitions_of(cluster, "lagging")[0].isrs) == sorted(state.replicas), timeout=30)
        assert metric(cluster.brokers[state.leader], "tern_replication_isr_expands_total") >= 1
        wait_for("no follower lags any more", lambda: lag_of(follower) == 0 and lag_of(others[0]) == 0, timeout=15)
        wait_for("identical replicas", lambda: replicas_identical(cluster, "lagging", 0, state.replicas))
    finally:
        cluster.stop()


def test_a_returning_leader_truncates_the_tail_nobody_else_has(cluster):
    create(cluster, "diverged", 1, min_insync_replicas=1)
    state = partitions_of(cluster, "diverged")[0]
    old = state.leader
    followers = [r for r in state.replicas if r != old]
    p = Producer({"bootstrap.servers": cluster.brokers[old].bootstrap, "acks": "all"})
    for i in range(50):
        p.produce("diverged", value=f"common{i}".encode())
    assert p.flush(30) == 0
    wait_for("followers have the common records", lambda: replicas_identical(cluster, "diverged", 0, state.replicas))
    # The followers stop fetching (still in the ISR: far below replica.lag.time.max.ms); the
    # leader takes acks=1 records only it will ever have, and dies.
    for f in followers:
        cluster.brokers[f].proc.send_signal(signal.SIGSTOP)
    # Fetches they sent before stopping are answered (empty) after replica.fetch.wait.max.ms and
    # sit unread in their sockets: nothing can carry the next records to them.
    time.sleep(1.5)
    lone = Producer({"bootstrap.servers": cluster.brokers[old].bootstrap, "acks": 1, "linger.ms": 0})
    for i in range(20):
        lone.produce("diverged", value=f"unreplicated{i}".encode())
    assert lone.flush(10) == 0
    cluster.brokers[old].stop(signal.SIGKILL)
    for f in followers:
        cluster.brokers[f].proc.send_signal(signal.SIGCONT)
    wait_for("a follower leads", lambda: partitions_of(cluster, "diverged")[0].leader in followers, timeout=30)
    after = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(30):
        after.produce("diverged", value=f"after{i}".encode())
    assert after.flush(30) == 0
    cluster.brokers[old].start()
    wait_for("the old leader's log matches the new leader's", lambda: replicas_identical(cluster, "diverged", 0, state.replicas), timeout=30)
    values = [v for _, _, v in consume_everything(cluster.bootstrap, "diverged", 1)]
    assert not [v for v in values if v.startswith(b"unreplicated")]
    assert values == [f"common{i}".encode() for i in range(50)] + [f"after{i}".encode() for i in range(30)]
    assert "truncated a divergent log tail" in cluster.brokers[old].logs()
    # OffsetForLeaderEpoch, as a consumer checks its position after a leader change: the first
    # epoch ended where the new leader's began; the current one ends at the log end.
    now = partitions_of(cluster, "diverged")[0]
    leader = cluster.brokers[now.leader]
    assert offset_for_leader_epoch(leader, "diverged", 0, 0) == (0, 0, 50)
    epoch = 1  # one leader change since creation
    assert offset_for_leader_epoch(leader, "diverged", 0, epoch) == (0, epoch, 80)
    assert offset_for_leader_epoch(leader, "diverged", 0, 99) == (0, -1, -1), "an epoch past every known one"
    assert offset_for_leader_epoch(leader, "diverged", 0, epoch, current_leader_epoch=epoch - 1)[0] == 74  # FENCED_LEADER_EPOCH
    assert offset_for_leader_epoch(leader, "diverged", 0, epoch, current_leader_epoch=epoch + 1)[0] == 75  # UNKNOWN_LEADER_EPOCH
    assert offset_for_leader_epoch(cluster.brokers[old], "diverged", 0, 0)[0] == 6  # NOT_LEADER_OR_FOLLOWER


def test_committed_offsets_survive_a_kill_9_of_the_groups_coordinator(cluster):
    """The group's committed offsets are on every replica of its __consumer_offsets partition
    before the commit is answered: after kill -9 of its coordinator the group resumes exactly where
    it committed, at the new coordinator."""
    create(cluster, "resumed", 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(300):
        p.produce("resumed", value=f"r{i}".encode())
    assert p.flush(30) == 0
    first = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "resumer", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
    first.subscribe(["resumed"])
    before = []
    deadline = time.time() + 60
    while len(before) < 150 and time.time() < deadline:
        m = first.poll(0.5)
        if m is not None and m.error() is None:
            before.append(m.value())
    first.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})  # kept: a collected client drops its requests
    coordinator = admin.describe_consumer_groups(["resumer"])["resumer"].result(timeout=30).coordinator.id
    first.close()
    cluster.brokers[coordinator].stop(signal.SIGKILL)

    second = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "resumer", "auto.offset.reset": "earliest",
                       "enable.auto.commit": False})
    second.subscribe(["resumed"])
    after = []
    deadline = time.time() + 60
    try:
        while len(set(before) | set(after)) < 300 and time.time() < deadline:
            m = second.poll(0.5)
            if m is not None and m.error() is None:
                after.append(m.value())
        m = second.poll(2)
        assert m is None or m.error() is not None, f"delivered again: {m.value()}"
    finally:
        second.close()
    assert not set(before) & set(after), "records before the committed offsets were delivered again"
    assert sorted(before + after) == sorted(f"r{i}".encode() for i in range(300))


def test_twenty_leader_kills_lose_no_acknowledged_record_and_show_consumers_nothing_that_vanished(cluster):
    """The issue's proof: an idempotent acks=all producer writes numbered records to 6 partitions
    (RF=3, min.insync.replicas=2) while a partition's leader is kill -9'ed and restarted 20 times,
    a different partition each time. Afterwards every acknowledged record is there exactly once,
    in order per partition, on every replica byte for byte, and everything a consumer read during
    the run is still at the offset it read it from."""
    import threading
    create(cluster, "hammered", 6, min_insync_replicas=2)
    seen, stop = [], threading.Event()

    def consume():
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "hammer-watch", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe(["hammered"])
        while not stop.is_set():
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                seen.append((m.partition(), m.offset(), m.value()))
        c.close()

    watcher = threading.Thread(target=consume, daemon=True)
    watcher.start()
    kills = []
    with BackgroundProducer(cluster.bootstrap, "hammered", flush_seconds=90, **{"enable.idempotence": True}) as producer:
        for round in range(20):
            partition = round % 6
            before = len(producer.acked)
            wait_for("records acknowledged", lambda: len(producer.acked) > before + 100, timeout=30)
            victim = partitions_of(cluster, "hammered")[partition].leader
            started = time.time()
            cluster.brokers[victim].stop(signal.SIGKILL)
            wait_for("a new leader", lambda: partitions_of(cluster, "hammered")[partition].leader not in (-1, victim), timeout=30)
            kills.append((partition, victim, time.time() - started))
            cluster.brokers[victim].start()
            wait_for(f"broker {victim} back in every ISR", lambda: all(
                victim in p.isrs for p in partitions_of(cluster, "hammered").values()), timeout=60)
    stop.set()
    watcher.join(30)
    print(f"\n20 leader kills: leader moved in {min(k[2] for k in kills):.1f}-{max(k[2] for k in kills):.1f} s; "
          f"{len(producer.acked)} records acknowledged, {len(producer.errors)} errors")
    assert producer.errors == []
    final = consume_everything(cluster.bootstrap, "hammered", 6)
    values = [v for _, _, v in final]
    assert len(values) == len(set(values)), "a record appears twice"
    assert set(producer.acked) <= set(values), f"{len(set(producer.acked) - set(values))} acknowledged records lost"
    by_partition = {}
    for p, _, v in sorted(final):
        by_partition.setdefault(p, []).append(int(v[1:]))
    for p, numbers in by_partition.items():
        assert numbers == sorted(numbers), f"partition {p} out of order"
    at = {(p, o): v for p, o, v in final}
    vanished = [(p, o, v) for p, o, v in seen if at.get((p, o)) != v]
    assert not vanished, f"consumers read records that are gone: {vanished[:5]}"
    for partition, state in partitions_of(cluster, "hammered").items():
        wait_for(f"hammered-{partition} identical on every replica",
                 lambda: replicas_identical(cluster, "hammered", partition, state.replicas))


def test_delete_records_reaches_the_followers_and_stays_deleted_after_a_failover(cluster):
    """The leader's log start moves with DeleteRecords; followers take it from their fetches, so a
    failover does not bring the deleted records back."""
    from confluent_kafka import TopicPartition as TP
    create(cluster, "trimmed", 1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        p.produce("trimmed", value=f"d{i}".encode(), partition=0)
    assert p.flush(30) == 0
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for f in a.delete_records([TP("trimmed", 0, 60)]).values():
        f.result(timeout=30)
    state = partitions_of(cluster, "trimmed")[0]

    def start_offset(broker):
        try:
            return int(open(os.path.join(broker.data_dir, "trimmed-0", "log-start-offset")).read())
        except OSError:
            return 0

    wait_for("every replica's log starts at 60", lambda: all(start_offset(cluster.brokers[r]) == 60 for r in state.replicas))
    cluster.brokers[state.leader].stop(signal.SIGKILL)
    wait_for("a new leader", lambda: partitions_of(cluster, "trimmed")[0].leader not in (-1, state.leader), timeout=30)
    values = [v for _, _, v in consume_everything(cluster.bootstrap, "trimmed", 1)]
    assert values == [f"d{i}".encode() for i in range(60, 100)]
