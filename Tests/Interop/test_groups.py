"""Consumer groups with real clients against a real tern broker process."""
import struct
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

import wire
from conftest import kcat


def create(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def produce(bootstrap, topic, n, prefix="m"):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=f"{prefix}{i}".encode(), value=f"{prefix}-{i}".encode())
    assert p.flush(30) == 0


def group_consumer(bootstrap, group, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                     **extra})


def test_three_consumers_share_six_partitions_and_take_over_exactly_once(broker):
    # Kafka's default initial delay, so all three join the first generation even on a busy machine.
    broker.stop()
    broker.extra_args = ["--set", "group.initial.rebalance.delay.ms=3000"]
    broker.start()
    create(broker.bootstrap, "shared", 6)
    produce(broker.bootstrap, "shared", 600)
    lock = threading.Lock()
    consumed = []  # (consumer, partition, offset)
    assignments = {}
    stop = {0: threading.Event(), 1: threading.Event(), 2: threading.Event()}
    counts = {0: 0, 1: 0, 2: 0}

    def run(n):
        c = group_consumer(broker.bootstrap, "shared-group")
        # Assignments made while the consumers shut down (one's LeaveGroup rebalancing the other,
        # still closing) are not part of the scenario: only record those before the stop.
        c.subscribe(["shared"], on_assign=lambda _, ps: None if stop[n].is_set()
                    else assignments.setdefault(n, []).append(sorted(p.partition for p in ps)))
        while not stop[n].is_set():
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            try:
                c.commit(message=m, asynchronous=False)  # synchronous: a consumer that leaves loses nothing
            except KafkaException:
                continue  # the commit lost a race with a rebalance: the record will be redelivered
            with lock:
                consumed.append((n, m.partition(), m.offset()))
                counts[n] += 1
            if n == 2 and counts[2] >= 40:
                stop[2].set()  # the third consumer leaves partway through
            time.sleep(0.005)
        c.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if len(consumed) >= 600:
                break
        time.sleep(0.2)
    for e in stop.values():
        e.set()
    for t in threads:
        t.join()

    # First generation: each of the three got two partitions.
    firsts = [assignments[n][0] for n in range(3)]
    assert sorted(sum(firsts, [])) == list(range(6)) and all(len(a) == 2 for a in firsts), assignments
    # After the third left, the other two took over all six between them.
    lasts = assignments[0][-1] + assignments[1][-1]
    assert sorted(lasts) == list(range(6)), assignments
    # Every message consumed exactly once across the group.
    keys = [(p, o) for _, p, o in consumed]
    assert len(keys) == len(set(keys)) == 600


def test_kafka_python_group(broker):
    create(broker.bootstrap, "kpg", 4)
    produce(broker.bootstrap, "kpg", 200)
    got = {}

    def run(n):
        c = KafkaConsumer("kpg", bootstrap_servers=broker.bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                          enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
        deadline = time.time() + 30
        mine = []
        while time.time() < deadline and sum(len(v) for v in got.values()) + len(mine) < 200:
            for _, msgs in c.poll(timeout_ms=300).items():
                mine += [(m.partition, m.offset) for m in msgs]
            if mine:
                c.commit()
        got[n] = mine
        got[f"assigned{n}"] = sorted(tp.partition for tp in c.assignment())
        c.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = got[0] + got[1]
    assert len(everything) == len(set(everything)) == 200
    assert len(got["assigned0"]) == len(got["assigned1"]) == 2


def test_kcat_balanced_consumer_commits_and_resumes(broker):
    create(broker.bootstrap, "kcg", 3)
    produce(broker.bootstrap, "kcg", 90, prefix="first")

    def kcat_group():
        # -G: balanced consumer group; exits after reaching the end of every partition.
        # (-o beginning would override the commits; auto.offset.reset only applies without one.)
        proc = subprocess.run(["kcat", "-b", broker.bootstrap, "-G", "kc-group", "-X", "auto.offset.reset=earliest", "-e", "-q",
                               "-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=100", "-f", "%s\\n", "kcg"],
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode().split()

    first = kcat_group()
    assert sorted(first) == sorted(f"first-{i}" for i in range(90))
    produce(broker.bootstrap, "kcg", 30, prefix="second")
    second = kcat_group()
    assert sorted(second) == sorted(f"second-{i}" for i in range(30)), "the group resumes at its commits"


def test_committed_offsets_survive_restart(broker):
    create(broker.bootstrap, "resume", 2)
    produce(broker.bootstrap, "resume", 100)
    c = group_consumer(broker.bootstrap, "resumers")
    c.subscribe(["resume"])
    seen = 0
    while seen < 60:
        m = c.poll(1)
        if m is not None and not m.error():
            seen += 1
    positions = {tp.partition: tp.offset for tp in c.position(c.assignment())}
    c.commit(asynchronous=False)
    c.close()
    broker.restart()
    c = group_consumer(broker.bootstrap, "resumers")
    committed = c.committed([TopicPartition("resume", 0), TopicPartition("resume", 1)], timeout=10)
    assert {tp.partition: tp.offset for tp in committed} == positions
    c.subscribe(["resume"])
    rest = []
    deadline = time.time() + 30
    while len(rest) < 100 - sum(positions.values()) and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            rest.append((m.partition(), m.offset()))
    c.close()
    assert all(o >= positions[p] for p, o in rest), "restarted consumer went back before its commit"
    assert len(rest) == 100 - sum(positions.values())


def test_static_member_restart_keeps_partitions_without_rebalance(broker):
    create(broker.bootstrap, "static", 4)
    revoked = {"b": 0}
    assigned = {}

    def make(name):
        return group_consumer(broker.bootstrap, "statics", **{"group.instance.id": name, "session.timeout.ms": 10000})

    b = make("b")
    b.subscribe(["static"], on_assign=lambda _, ps: assigned.setdefault("b", []).append(sorted(p.partition for p in ps)),
                on_revoke=lambda _, ps: revoked.__setitem__("b", revoked["b"] + 1))
    deadline = time.time() + 20
    while time.time() < deadline and not assigned.get("b"):
        b.poll(0.1)  # b joins first, so it leads the group
    a = make("a")
    a.subscribe(["static"], on_assign=lambda _, ps: assigned.setdefault("a", []).append(sorted(p.partition for p in ps)))
    deadline = time.time() + 30
    while time.time() < deadline and (len(assigned.get("a", [])) < 1 or len(assigned.get("b", [])) < 1
                                      or len(assigned["a"][-1]) + len(assigned["b"][-1]) < 4):
        a.poll(0.1)
        b.poll(0.1)
    a_parts = assigned["a"][-1]
    assert len(a_parts) == 2 and len(assigned["b"][-1]) == 2
    revoked_before = revoked["b"]
    a.close()  # a static member does not leave the group on close
    a = make("a")
    a.subscribe(["static"], on_assign=lambda _, ps: assigned.setdefault("a2", []).append(sorted(p.partition for p in ps)))
    deadline = time.time() + 20
    while time.time() < deadline and not assigned.get("a2"):
        a.poll(0.1)
        b.poll(0.1)
    for _ in range(20):  # keep b polling a while: a rebalance would show up as a revoke
        b.poll(0.1)
    assert assigned["a2"][-1] == a_parts, "the restarted static member got its partitions back"
    assert revoked["b"] == revoked_before, "the other member saw no rebalance"
    a.close()
    b.close()


def join_v0(group, member_id, protocol_type, session_ms=6000):
    body = wire.string(group) + struct.pack(">i", session_ms) + wire.string(member_id) + wire.string(protocol_type)
    body += struct.pack(">i", 1) + wire.string("range") + struct.pack(">i", 0)
    return body


def test_bad_group_requests_get_kafka_error_codes(broker):
    create(broker.bootstrap, "bad-g", 2)
    produce(broker.bootstrap, "bad-g", 20)
    c = group_consumer(broker.bootstrap, "real-group")
    c.subscribe(["bad-g"])
    first = []
    while len(first) < 10:
        m = c.poll(1)
        if m is not None and not m.error():
            first.append(m)
    conn = wire.Conn(broker.port)

    def call(api, version, body, corr):
        conn.send(wire.request(api, version, corr, body))
        payload = conn.recv_frame()
        assert struct.unpack_from(">i", payload)[0] == corr
        return payload

    # Heartbeat v0 from a member the group does not know: UNKNOWN_MEMBER_ID.
    hb = call(12, 0, wire.string("real-group") + struct.pack(">i", 1) + wire.string("nobody"), 1)
    assert struct.unpack_from(">h", hb, 4)[0] == 25
    # JoinGroup with another protocol type than the group's members: INCONSISTENT_GROUP_PROTOCOL.
    jg = call(11, 0, join_v0("real-group", "", "connect"), 2)
    assert struct.unpack_from(">h", jg, 4)[0] == 23
    # JoinGroup with a session timeout below group.min.session.timeout.ms: INVALID_SESSION_TIMEOUT.
    jg = call(11, 0, join_v0("other-group", "", "consumer", session_ms=100), 3)
    assert struct.unpack_from(">h", jg, 4)[0] == 26
    # A fresh member of its own group, then a heartbeat with a stale generation: ILLEGAL_GENERATION.
    jg = call(11, 0, join_v0("solo-group", "", "consumer"), 4)
    err, generation = struct.unpack_from(">hi", jg, 4)
    pos = 10
    pos += 2 + struct.unpack_from(">h", jg, pos)[0]  # protocol name
    pos += 2 + struct.unpack_from(">h", jg, pos)[0]  # leader
    mlen = struct.unpack_from(">h", jg, pos)[0]
    member = jg[pos + 2:pos + 2 + mlen].decode()
    assert err == 0 and generation >= 1
    hb = call(12, 0, wire.string("solo-group") + struct.pack(">i", generation + 5) + wire.string(member), 5)
    assert struct.unpack_from(">h", hb, 4)[0] == 22
    # SyncGroup v0 from an unknown member: UNKNOWN_MEMBER_ID.
    sg = call(14, 0, wire.string("solo-group") + struct.pack(">i", generation) + wire.string("ghost") + struct.pack(">i", 0), 6)
    assert struct.unpack_from(">h", sg, 4)[0] == 25
    conn.close()
    # The real group kept working through all of that.
    rest = []
    deadline = time.time() + 20
    while len(first) + len(rest) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            rest.append(m)
    assert len(first) + len(rest) == 20
    c.close()


def test_admin_list_describe_delete_groups(broker):
    create(broker.bootstrap, "adm-g", 1)
    produce(broker.bootstrap, "adm-g", 5)
    c = group_consumer(broker.bootstrap, "adm-group")
    c.subscribe(["adm-g"])
    n = 0
    while n < 5:
        m = c.poll(1)
        if m is not None and not m.error():
            n += 1
    c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups().result(timeout=10)
    assert "adm-group" in [g.group_id for g in listed.valid]
    desc = admin.describe_consumer_groups(["adm-group"])["adm-group"].result(timeout=10)
    assert str(desc.state).endswith("STABLE") and len(desc.members) == 1
    # A group with a member cannot be deleted; once empty it can.
    from confluent_kafka.error import KafkaException
    try:
        admin.delete_consumer_groups(["adm-group"])["adm-group"].result(timeout=10)
        raise AssertionError("deleting a non-empty group should fail")
    except KafkaException as e:
        assert e.args[0].code() == 68  # NON_EMPTY_GROUP
    c.close()
    time.sleep(0.5)
    admin.delete_consumer_groups(["adm-group"])["adm-group"].result(timeout=10)
    assert "adm-group" not in [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid]


def test_kip848_consumer_protocol(broker):
    """librdkafka's group.protocol=consumer: the broker assigns partitions (ConsumerGroupHeartbeat)."""
    broker.stop()
    broker.extra_args = ["--set", "group.consumer.heartbeat.interval.ms=300"]
    broker.start()
    create(broker.bootstrap, "k848", 4)
    produce(broker.bootstrap, "k848", 100, prefix="a")
    owned = {0: set(), 1: set()}
    consumed = []
    lock = threading.Lock()
    stop = threading.Event()
    started = {0: threading.Event(), 1: threading.Event()}

    def run(n):
        started[n].wait()  # librdkafka heartbeats from its own thread: join only when told to
        if stop.is_set():
            return
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g848", "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})

        def assign(_, ps):
            with lock:
                owned[n] |= {p.partition for p in ps}

        def revoke(_, ps):
            with lock:
                owned[n] -= {p.partition for p in ps}
        c.subscribe(["k848"], on_assign=assign, on_revoke=revoke)
        while not stop.is_set():
            m = c.poll(0.2)
            if m is not None and not m.error():
                with lock:
                    consumed.append((m.partition(), m.offset()))
                c.commit(message=m, asynchronous=False)
        c.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(2)]
    for t in threads:
        t.start()
    try:
        check_kip848(consumed, owned, lock, started, broker)
    finally:
        stop.set()
        for e in started.values():
            e.set()
        for t in threads:
            t.join(timeout=30)
    assert len(consumed) == len(set(consumed)) == 200


def check_kip848(consumed, owned, lock, started, broker):
    started[0].set()
    deadline = time.time() + 30
    while time.time() < deadline and len(consumed) < 100:
        time.sleep(0.2)
    assert len(consumed) == 100 and owned[0] == {0, 1, 2, 3}, (len(consumed), owned)
    started[1].set()  # the second member joins: the broker moves half the partitions to it
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if owned[0] and owned[1] and not (owned[0] & owned[1]) and owned[0] | owned[1] == {0, 1, 2, 3}:
                break
        time.sleep(0.2)
    with lock:
        assert len(owned[0]) == 2 and len(owned[1]) == 2 and not owned[0] & owned[1], owned
    produce(broker.bootstrap, "k848", 100, prefix="b")
    deadline = time.time() + 30
    while time.time() < deadline and len(consumed) < 200:
        time.sleep(0.2)


def test_kip848_online_upgrade_and_downgrade_of_a_live_group(broker):
    """group.consumer.migration.policy=bidirectional (the default): a consumer-protocol member joins
    a live classic group, which becomes a consumer-protocol group with its classic members kept;
    when it leaves, the group turns classic again. Partitions never have two owners once settled,
    and every partition stays owned."""
    broker.stop()
    broker.extra_args = ["--set", "group.consumer.heartbeat.interval.ms=300", "--set", "group.initial.rebalance.delay.ms=300"]
    broker.start()
    create(broker.bootstrap, "migrating", 4)
    owned = {}

    def track(name):
        owned[name] = set()

        def on_assign(consumer, partitions):
            owned[name] |= {p.partition for p in partitions}

        def on_revoke(consumer, partitions):
            owned[name] -= {p.partition for p in partitions}
        return on_assign, on_revoke

    def settle(consumers, check, timeout=40):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in consumers.values():
                c.poll(0.05)
            if check():
                return True
        return False

    classic = {}
    for name in ("classic-a", "classic-b"):
        classic[name] = group_consumer(broker.bootstrap, "migrating-group")
        assign, revoke = track(name)
        classic[name].subscribe(["migrating"], on_assign=assign, on_revoke=revoke)

    def exclusive_cover(names):
        sets = [owned[n] for n in names]
        return sum(len(s) for s in sets) == 4 and set().union(*sets) == {0, 1, 2, 3}

    assert settle(classic, lambda: exclusive_cover(list(classic))), f"classic group did not settle: {owned}"

    modern = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "migrating-group", "group.protocol": "consumer",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    assign, revoke = track("modern")
    modern.subscribe(["migrating"], on_assign=assign, on_revoke=revoke)
    everyone = {**classic, "modern": modern}
    assert settle(everyone, lambda: owned["modern"] and all(owned[n] for n in classic) and exclusive_cover(list(everyone))), \
        f"mixed group did not settle: {owned}"
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = a.describe_consumer_groups(["migrating-group"])["migrating-group"].result(10)
    assert len(described.members) == 3
    assert "classic group upgraded to the consumer protocol" in broker.logs()

    modern.close()
    del owned["modern"]
    assert settle(classic, lambda: exclusive_cover(list(classic))), f"downgraded group did not settle: {owned}"
    assert "consumer-protocol group downgraded to classic" in broker.logs()
    for c in classic.values():
        c.close()


def test_kip848_online_upgrade_with_kafka_python_classic_members(broker):
    """The same migration with kafka-python's classic consumers beside a librdkafka consumer-protocol
    member: they keep consuming through the upgrade and take everything back after the downgrade."""
    from kafka import ConsumerRebalanceListener
    broker.stop()
    broker.extra_args = ["--set", "group.consumer.heartbeat.interval.ms=300", "--set", "group.initial.rebalance.delay.ms=300"]
    broker.start()
    create(broker.bootstrap, "kp-migrating", 4)
    owned = {"kp-a": set(), "kp-b": set(), "modern": set()}
    lock = threading.Lock()

    class Track(ConsumerRebalanceListener):
        def __init__(self, name):
            self.name = name

        def on_partitions_assigned(self, assigned):
            with lock:
                owned[self.name] |= {tp.partition for tp in assigned}

        def on_partitions_revoked(self, revoked):
            with lock:
                owned[self.name] -= {tp.partition for tp in revoked}

    # Each kafka-python consumer polls without pause in its own thread: kafka-python 3.0 drops a
    # JoinGroup/SyncGroup answer that arrives while poll() is not waiting (join_group_async replaces
    # a finished join task with a new one), and a leader that rejoins a stable group rebalances it
    # (Kafka's rule) — polling the consumers in turn made that loop for tens of seconds.
    stop = threading.Event()
    kp = {}
    for name in ("kp-a", "kp-b"):
        kp[name] = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kp-migrating-group",
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 session_timeout_ms=10000, heartbeat_interval_ms=300)
        kp[name].subscribe(["kp-migrating"], listener=Track(name))

    def keep_polling(c):
        while not stop.is_set():
            c.poll(timeout_ms=200)
        c.close()

    pollers = [threading.Thread(target=keep_polling, args=(c,), daemon=True) for c in kp.values()]
    for t in pollers:
        t.start()

    def exclusive_cover(names):
        with lock:
            sets = [set(owned[n]) for n in names]
        return sum(len(x) for x in sets) == 4 and set().union(*sets) == {0, 1, 2, 3}

    def settle(check, others=(), timeout=40):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in others:
                c.poll(0.05)
            if not others:
                time.sleep(0.05)
            if check():
                return True
        return False

    try:
        assert settle(lambda: exclusive_cover(["kp-a", "kp-b"])), owned
        modern = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "kp-migrating-group", "group.protocol": "consumer",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
        modern.subscribe(["kp-migrating"], on_assign=lambda _, ps: owned["modern"].update(p.partition for p in ps),
                         on_revoke=lambda _, ps: owned["modern"].difference_update(p.partition for p in ps))
        assert settle(lambda: owned["modern"] and owned["kp-a"] and owned["kp-b"] and exclusive_cover(list(owned)), [modern]), owned
        modern.close()
        owned["modern"] = set()
        assert settle(lambda: exclusive_cover(["kp-a", "kp-b"])), owned
        assert "consumer-protocol group downgraded to classic" in broker.logs()
    finally:
        stop.set()
        for t in pollers:
            t.join(timeout=30)

