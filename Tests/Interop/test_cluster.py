"""Cluster mode: etcd + three real brokers on loopback, driven by confluent-kafka (librdkafka 2.16),
kafka-python and kcat. Each test starts its own cluster and stops it."""
import base64
import json
import os
import signal
import struct
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka.admin import KafkaAdminClient

import wire
from cluster import SESSION_TIMEOUT_MS, BackgroundProducer, Cluster, wait_for
from conftest import TERN_BIN, BrokerProcess, free_port, kcat


@pytest.fixture
def cluster():
    c = Cluster(3)
    try:
        yield c
    finally:
        c.stop()


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create(cluster, name, partitions, rf, via=None):
    """CreateTopics through a given broker (any: a non-controller answers NOT_CONTROLLER and the
    client retries at the controller)."""
    a = admin(via or cluster.bootstrap)
    for f in a.create_topics([NewTopic(name, partitions, rf)], operation_timeout=15).values():
        f.result(timeout=30)
    return wait_for(f"{name} has leaders everywhere", lambda: leaders(cluster, name) if all(
        l >= 0 for l in leaders(cluster, name).values()) and len(leaders(cluster, name)) == partitions else None)[0]


def delete(cluster, name):
    a = admin(cluster.bootstrap)
    for f in a.delete_topics([name], operation_timeout=15).values():
        f.result(timeout=30)


def metadata(cluster, topic=None):
    return admin(cluster.bootstrap).list_topics(topic=topic, timeout=10)


def leaders(cluster, topic):
    md = metadata(cluster, topic)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p.id: p.leader for p in t.partitions.values()}


def produce_numbered(bootstrap, topic, n, errors, **conf):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5, **conf})
    acked = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), on_delivery=report)
        p.poll(0)
    assert p.flush(60) == 0
    return acked


def consume_all(bootstrap, topic, expected, group="cluster-test", timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen = []
    deadline = time.time() + timeout
    try:
        while len(seen) < expected and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None or m.error().code() == KafkaError._PARTITION_EOF, m.error()
            if m.error() is None:
                seen.append((m.partition(), m.offset(), m.value()))
        if seen:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return seen


def test_clients_see_every_broker_and_leaders_spread_over_all(cluster):
    lead = create(cluster, "orders", 12, 3, via=cluster.brokers[2].bootstrap)
    # Kafka's placement: the 12 leaderships spread evenly, 4 per broker.
    assert sorted(list(lead.values()).count(b) for b in (1, 2, 3)) == [4, 4, 4], lead
    md = metadata(cluster, "orders")
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id in (1, 2, 3)
    for p in md.topics["orders"].partitions.values():
        assert sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3]
    # Every broker gives the same answer.
    for b in cluster.brokers.values():
        md_b = admin(b.bootstrap).list_topics(topic="orders", timeout=10)
        assert md_b.controller_id == md.controller_id
        assert {p.id: p.leader for p in md_b.topics["orders"].partitions.values()} == lead
    # kafka-python's DescribeCluster and kcat's Metadata see the three brokers too.
    kp = KafkaAdminClient(bootstrap_servers=cluster.brokers[3].bootstrap)
    try:
        described = kp.describe_cluster()
        assert sorted(b["broker_id"] for b in described["brokers"]) == [1, 2, 3]
        assert described["controller_id"] == md.controller_id
    finally:
        kp.close()
    listing = kcat("-b", cluster.brokers[1].bootstrap, "-L", "-t", "orders").decode()
    assert " 3 brokers:" in listing and "(controller)" in listing, listing


def test_produce_and_consume_through_any_bootstrap_broker(cluster):
    create(cluster, "events", 12, 3)
    errors = []
    acked = produce_numbered(cluster.brokers[3].bootstrap, "events", 3000, errors)
    assert errors == [] and len(acked) == 3000
    assert len({p for p, _, _ in acked}) == 12
    seen = consume_all(cluster.brokers[1].bootstrap, "events", 3000)
    assert sorted(v for _, _, v in seen) == sorted(v for _, _, v in acked)
    # kcat (librdkafka 2.0.2) reads one partition through yet another broker.
    p0 = [v for p, _, v in acked if p == 0]
    out = kcat("-b", cluster.brokers[2].bootstrap, "-C", "-t", "events", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\n")
    assert out.decode().split("\n")[:-1] == [v.decode() for v in p0]


def test_a_broker_that_does_not_lead_a_partition_refuses_it(cluster):
    lead = create(cluster, "routed", 3, 1)
    partition, leader = next(iter(lead.items()))
    other = next(b for i, b in cluster.brokers.items() if i != leader)
    conn = wire.Conn(other.port)
    try:
        conn.send(wire.request(0, 3, 7, wire.produce_v3("routed", partition, wire.record_batch([b"x"]))))
        _, results = wire.parse_produce_v3_response(conn.recv_frame())
        assert results[0][2] == 6, "NOT_LEADER_OR_FOLLOWER"
    finally:
        conn.close()
    conn = wire.Conn(cluster.brokers[leader].port)
    try:
        conn.send(wire.request(0, 3, 8, wire.produce_v3("routed", partition, wire.record_batch([b"x"]))))
        _, results = wire.parse_produce_v3_response(conn.recv_frame())
        assert results[0][2] == 0, "the leader takes it"
    finally:
        conn.close()


def test_kill_9_of_the_controller_elects_another_within_seconds(cluster):
    create(cluster, "kept", 6, 3)
    before = metadata(cluster, "kept")
    controller = before.controller_id
    cluster.brokers[controller].stop(signal.SIGKILL)

    def new_controller():
        md = admin(cluster.bootstrap).list_topics(topic="kept", timeout=5)
        # A partition whose leader died shows leader -1 until the new controller re-elects it.
        all_led = all(p.leader not in (-1, controller) for p in md.topics["kept"].partitions.values())
        return md if md.controller_id not in (-1, controller) and controller not in md.brokers and all_led else None

    after, seconds = wait_for("a new controller", new_controller, timeout=SESSION_TIMEOUT_MS / 1000 + 10)
    print(f"\ncontroller failover after kill -9: {seconds:.2f} s (broker.session.timeout.ms={SESSION_TIMEOUT_MS})")
    assert seconds < SESSION_TIMEOUT_MS / 1000 + 5
    # No metadata lost: same topic id, partitions and replicas; the dead broker left the ISR.
    assert sorted(after.topics["kept"].partitions) == sorted(before.topics["kept"].partitions)
    for p in after.topics["kept"].partitions.values():
        assert sorted(p.replicas) == [1, 2, 3]
        assert controller not in p.isrs and len(p.isrs) == 2


def test_kill_9_of_a_broker_moves_its_leaderships_and_producing_continues(cluster):
    lead = create(cluster, "steady", 6, 3)
    controller = metadata(cluster).controller_id
    victim = next(i for i in (1, 2, 3) if i != controller)
    with BackgroundProducer(cluster.brokers[controller].bootstrap, "steady", **{"enable.idempotence": True, "message.timeout.ms": 60000}) as bg:
        time.sleep(1)
        cluster.brokers[victim].stop(signal.SIGKILL)
        moved, seconds = wait_for("the victim's partitions get new leaders", lambda: (lambda l: l if l and victim not in l.values() and all(
            x >= 0 for x in l.values()) else None)(leaders(cluster, "steady")), timeout=20)
        print(f"\nleaders moved {seconds:.2f} s after kill -9 of broker {victim}: {lead} -> {moved}")
        time.sleep(1)
    errors, acked = bg.errors, bg.acked
    assert errors == [], errors[:3]
    assert len(acked) > 100


def test_a_second_broker_with_the_same_node_id_refuses_to_start(cluster):
    twin = cluster.make_broker(2)
    twin.data_dir = os.path.join(cluster.root, "twin")
    with pytest.raises(RuntimeError, match="exited with 1"):
        twin.start()
    assert "already registered with node id 2" in twin.logs()


def test_etcd_unreachable_at_start_is_a_clear_error_and_exit_code_1():
    root = os.path.join("/tmp", f"tern-noetcd-{os.getpid()}")
    os.makedirs(root, exist_ok=True)
    b = BrokerProcess(os.path.join(root, "data"), extra_args=["--node-id", "1", "--cluster", f"etcd://127.0.0.1:{free_port()}"])
    try:
        started = time.time()
        with pytest.raises(RuntimeError, match="exited with 1"):
            b.start()
        assert time.time() - started < 15
        assert "broker not started" in b.logs() and "unreachable" in b.logs(), b.logs()
    finally:
        b.stop()
        subprocess.run(["rm", "-rf", root])


def test_controlled_shutdown_moves_leaderships_before_exit(cluster):
    lead = create(cluster, "handover", 6, 3)
    target = 3
    assert target in lead.values()
    started = time.time()
    assert cluster.brokers[target].stop(signal.SIGTERM) == 0
    took = time.time() - started
    # Leadership moved while the broker was still alive, not after its session timed out.
    after = leaders(cluster, "handover")
    assert target not in after.values() and all(l >= 0 for l in after.values()), after
    assert took < SESSION_TIMEOUT_MS / 1000, f"shutdown took {took:.2f} s"
    print(f"\ncontrolled shutdown of broker {target}: {took:.2f} s")


def test_conflicting_create_topics_race_has_one_winner(cluster):
    controller = metadata(cluster).controller_id
    results = []

    def create_one():
        client = admin(cluster.brokers[controller].bootstrap)  # kept alive until the answer is in
        f = client.create_topics([NewTopic("contested", 4, 2)], operation_timeout=10)["contested"]
        try:
            f.result(timeout=30)
            results.append("ok")
        except Exception as e:  # noqa: BLE001 - the error's code is what is checked
            results.append(e.args[0].code())

    threads = [threading.Thread(target=create_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count(KafkaError.TOPIC_ALREADY_EXISTS) == 3, results


def test_a_broker_returning_with_a_deleted_topic_deletes_its_replicas(cluster):
    create(cluster, "doomed", 3, 3)
    data3 = cluster.brokers[3].data_dir
    wait_for("broker 3 holds replicas", lambda: any(d.startswith("doomed-") for d in os.listdir(data3)))
    cluster.brokers[3].stop(signal.SIGKILL)
    wait_for("broker 3 is gone", lambda: 3 not in metadata(cluster).brokers)
    delete(cluster, "doomed")
    assert any(d.startswith("doomed-") for d in os.listdir(data3)), "stale data is still there while broker 3 is down"
    cluster.brokers[3].start()
    wait_for("broker 3 deleted the stale replicas", lambda: not any(d.startswith("doomed-") for d in os.listdir(data3)))
    # And a topic of the same name made afterwards is a new one, not the old data.
    create(cluster, "doomed", 3, 3)
    seen = consume_all(cluster.bootstrap, "doomed", 1, timeout=3)
    assert seen == []


def test_deleting_a_topic_while_it_is_produced_to(cluster):
    create(cluster, "busy", 3, 2)
    with BackgroundProducer(cluster.bootstrap, "busy", flush_seconds=10,
                            **{"message.timeout.ms": 5000, "allow.auto.create.topics": False}) as bg:
        time.sleep(1)
        delete(cluster, "busy")
        time.sleep(1)
    delivered = bg.acked
    assert delivered, "produced before the deletion"
    # Every broker is still up and answering, and the topic's replicas are gone everywhere.
    for b in cluster.brokers.values():
        assert b.alive()
        wait_for(f"{b.port} deleted busy", lambda: not any(d.startswith("busy-") for d in os.listdir(b.data_dir)))


def test_rolling_restart_under_a_producer_shows_no_errors_to_the_application(cluster):
    create(cluster, "rolling", 6, 3)
    with BackgroundProducer(cluster.bootstrap, "rolling", flush_seconds=120,
                            **{"enable.idempotence": True, "message.timeout.ms": 120000}) as bg:
        for node in (1, 2, 3):
            time.sleep(1)
            before = len(bg.acked)
            b = cluster.brokers[node]
            assert b.stop(signal.SIGTERM) == 0
            b.start()
            wait_for(f"broker {node} is back", lambda: node in metadata(cluster).brokers)
            wait_for("acknowledgements continue", lambda: len(bg.acked) > before + 50, timeout=30)
    errors, acked = bg.errors, bg.acked
    assert errors == [], errors[:3]
    print(f"\nrolling restart: {len(acked)} records acknowledged, no errors reached the application")


def test_kip848_consumer_group_is_assigned_partitions_of_every_broker(cluster):
    """The coordinator assigns (KIP-848) from the cluster's topics, including partitions whose
    replicas are all on other brokers."""
    create(cluster, "spread", 6, 1)
    errors = []
    acked = produce_numbered(cluster.bootstrap, "spread", 600, errors)
    assert errors == [] and len(acked) == 600
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "kip848", "group.protocol": "consumer",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["spread"])
    seen = set()
    deadline = time.time() + 60
    try:
        while len(seen) < 600 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen.add((m.partition(), m.offset()))
        assert len(seen) == 600
        assert sorted(tp.partition for tp in c.assignment()) == list(range(6))
    finally:
        c.close()


def test_topic_configs_changed_through_any_broker_apply_on_the_leader(cluster):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    lead = create(cluster, "limited", 1, 1)
    leader = lead[0]
    other = next(b for i, b in cluster.brokers.items() if i != leader)
    a = admin(other.bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "limited", incremental_configs=[
        ConfigEntry("max.message.bytes", "200", incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([resource]).values():
        f.result(timeout=30)
    # Every broker describes the new value, the leader's included.
    def described_by(b):
        client = admin(b.bootstrap)  # kept alive until the answer is in
        result = list(client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "limited")]).values())[0].result(timeout=10)
        return result if result["max.message.bytes"].value == "200" else None

    for b in cluster.brokers.values():
        described = wait_for(f"{b.port} describes the new value", lambda: described_by(b))[0]
        assert described["max.message.bytes"].source == 1  # DYNAMIC_TOPIC_CONFIG
    # …and the leader enforces it.
    errors = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    p.produce("limited", value=b"x" * 1000, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert [e.code() for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE], errors


def test_losing_etcd_keeps_serving_until_the_lease_would_end_then_refuses_writes_until_it_returns(cluster):
    import urllib.request

    lead = create(cluster, "outage", 1, 1)
    leader = cluster.brokers[lead[0]]

    def produce_raw():
        conn = wire.Conn(leader.port)
        try:
            conn.send(wire.request(0, 3, 1, wire.produce_v3("outage", 0, wire.record_batch([b"x"]))))
            return wire.parse_produce_v3_response(conn.recv_frame())[1][0][2]
        finally:
            conn.close()

    def fenced_gauge():
        body = urllib.request.urlopen(f"http://127.0.0.1:{leader.metrics_port}/metrics", timeout=5).read().decode()
        return next((float(l.split()[-1]) for l in body.splitlines() if l.startswith("tern_cluster_fenced")), None)

    cluster.etcd.proc.send_signal(signal.SIGSTOP)
    try:
        assert produce_raw() == 0, "within the lease the leader still takes writes"
        _, seconds = wait_for("the leader refuses writes", lambda: produce_raw() == 6, timeout=SESSION_TIMEOUT_MS / 1000 + 5)
        print(f"\netcd stopped: leader refused writes after {seconds:.2f} s (lease {SESSION_TIMEOUT_MS} ms)")
        wait_for("the fenced gauge says so", lambda: fenced_gauge() == 1.0, timeout=10)
        wait_for("the log says so", lambda: "no heartbeat reached etcd within the lease" in leader.logs(), timeout=10)
    finally:
        cluster.etcd.proc.send_signal(signal.SIGCONT)
    # etcd back: the brokers register again and the partition is served again (wherever it is led).
    errors = []
    acked = produce_numbered(cluster.bootstrap, "outage", 10, errors, **{"message.timeout.ms": 60000})
    assert errors == [] and len(acked) == 10
    wait_for("the fenced gauge clears", lambda: fenced_gauge() == 0.0, timeout=15)


def coordinator_partition(key, partitions):
    """Kafka's Utils.abs(key.hashCode()) % partitions, with Java's String.hashCode."""
    h = 0
    data = key.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (h * 31 + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def elect(bootstrap, election_type, partitions):
    """confluent-kafka's ElectLeaders → {(topic, partition): error code or 0}."""
    from confluent_kafka import TopicPartition

    a = admin(bootstrap)
    result = a.elect_leaders(election_type, [TopicPartition(t, p) for t, p in partitions]).result(timeout=30)
    return {(tp.topic, tp.partition): (e.code() if e is not None else 0) for tp, e in result.items()}


def test_elect_leaders_preferred_and_unclean(cluster):
    from confluent_kafka import ElectionType

    lead = create(cluster, "electable", 3, 2)
    md = metadata(cluster, "electable").topics["electable"].partitions
    # Everything led by its preferred replica already.
    assert set(elect(cluster.bootstrap, ElectionType.PREFERRED, [("electable", p) for p in range(3)]).values()) == {
        KafkaError.ELECTION_NOT_NEEDED}
    # Partition 0 (replicas [a, b]): b goes, then a; b comes back but was out of sync when a led.
    a_id, b_id = md[0].replicas
    cluster.brokers[b_id].stop(signal.SIGKILL)
    wait_for("b leaves partition 0's ISR", lambda: metadata(cluster, "electable").topics["electable"].partitions[0].isrs == [a_id])
    cluster.brokers[a_id].stop(signal.SIGKILL)
    wait_for("partition 0 has no leader", lambda: leaders(cluster, "electable").get(0) == -1)
    cluster.brokers[b_id].start()
    wait_for("b is back", lambda: b_id in metadata(cluster).brokers)
    assert leaders(cluster, "electable")[0] == -1, "a clean election never picks the out-of-sync replica"
    assert elect(cluster.bootstrap, ElectionType.PREFERRED, [("electable", 0)]) == {("electable", 0): KafkaError.PREFERRED_LEADER_NOT_AVAILABLE}
    assert elect(cluster.bootstrap, ElectionType.UNCLEAN, [("electable", 0)]) == {("electable", 0): 0}
    p0 = metadata(cluster, "electable").topics["electable"].partitions[0]
    assert p0.leader == b_id and p0.isrs == [b_id]
    assert elect(cluster.bootstrap, ElectionType.UNCLEAN, [("electable", 0)]) == {("electable", 0): KafkaError.ELECTION_NOT_NEEDED}


def test_tern_cli_creates_through_any_broker_and_cluster_info_shows_the_layout(cluster):
    def tern(*args):
        res = subprocess.run([TERN_BIN, *args], capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr.decode()
        return res.stdout.decode()

    controller = metadata(cluster).controller_id
    other = next(b for i, b in cluster.brokers.items() if i != controller)
    assert "created layout" in tern("topic", "create", "layout", "-p", "6", "-r", "3", "-b", other.bootstrap)
    lead = wait_for("layout has leaders", lambda: (lambda l: l if len(l) == 6 and all(x >= 0 for x in l.values()) else None)(
        leaders(cluster, "layout")))[0]
    out = tern("cluster", "info", "-b", other.bootstrap, "--topic", "layout")
    assert f"CONTROLLER  {controller}" in out, out
    rows = [l.split() for l in out.splitlines() if l.startswith("layout")]
    assert len(rows) == 6
    for topic, partition, leader, epoch, replicas, isr, offline in rows:
        assert int(leader) == lead[int(partition)]
        assert sorted(replicas.split(",")) == ["1", "2", "3"] and sorted(isr.split(",")) == ["1", "2", "3"] and offline == "-"
    # Every partition is led by its preferred replica already: nothing to elect.
    out = tern("topic", "elect-leaders", "layout", "-b", other.bootstrap)
    assert out.count("ELECTION_NOT_NEEDED") == 6, out
    out = tern("topic", "elect-leaders", "layout", "-p", "2", "--unclean", "-b", other.bootstrap)
    assert out.count("ELECTION_NOT_NEEDED") == 1 and "layout" in out, out


def test_a_broker_killed_and_restarted_at_once_takes_its_registration_back(cluster):
    """systemd-style restart right after kill -9: the old lease is still alive, but the registration
    came from the same data directory, so the new process takes it over (a new broker epoch)
    instead of refusing to start as it would for a different broker with the same id."""
    b = cluster.brokers[2]
    b.stop(signal.SIGKILL)
    started = time.time()
    b.start()
    assert time.time() - started < SESSION_TIMEOUT_MS / 1000, "started before the old lease could expire"
    assert "taking over this broker's registration" in b.logs()
    wait_for("broker 2 is registered again", lambda: 2 in metadata(cluster).brokers)


def test_a_second_process_on_the_same_data_directory_refuses_to_start(cluster):
    twin = BrokerProcess(cluster.brokers[1].data_dir, extra_args=["--node-id", "7", "--cluster", cluster.etcd.endpoint])
    with pytest.raises(RuntimeError, match="exited with 1"):
        twin.start()
    assert "is in use by another broker process" in twin.logs()


def test_a_consumer_group_follows_its_coordinator_to_another_broker(cluster):
    """kill -9 of the broker coordinating a group: the coordinator moves with the leadership of
    __consumer_offsets, the group rebalances there and consumption goes on (its committed offsets
    follow it: test_replication.py)."""
    create(cluster, "followed", 6, 3)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "follower", "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000})
    c.subscribe(["followed"])
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})

    def consumed_after(marker, timeout=45):
        p.produce("followed", value=marker.encode())
        p.flush(30)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None and m.value() == marker.encode():
                return True
        return False

    try:
        assert consumed_after("before")
        a = admin(cluster.bootstrap)
        coordinator = a.describe_consumer_groups(["follower"])["follower"].result(timeout=30).coordinator.id
        cluster.brokers[coordinator].stop(signal.SIGKILL)

        def new_coordinator():
            client = admin(cluster.bootstrap)
            try:
                d = client.describe_consumer_groups(["follower"], request_timeout=3)["follower"].result(timeout=5)
            except Exception:  # noqa: BLE001 - asked the dead broker: ask again
                return None
            return d.coordinator.id if d.coordinator.id != coordinator else None

        moved, seconds = wait_for("the group has a new coordinator", new_coordinator, timeout=30)
        assert consumed_after("after"), "the consumer goes on at the new coordinator"
        print(f"\ngroup coordinator moved {coordinator} -> {moved} in {seconds:.2f} s after kill -9")
    finally:
        c.close()


def read_committed(cluster, topic, partition):
    out = kcat("-b", cluster.bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e", "-q", "-f", "%s\n",
               "-X", "isolation.level=read_committed")
    return out.decode().split()


def test_a_transaction_spans_partitions_led_by_every_broker(cluster):
    """The coordinator writes markers to partitions it leads itself and sends WriteTxnMarkers to
    the leaders of the others; their leaders check the producer's first batch with the coordinator
    (AddPartitionsToTxn verify_only). Commit and abort both reach every partition."""
    lead = create(cluster, "txn-spread", 6, 3)
    assert len(set(lead.values())) == 3
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "cluster-txn"})
    p.init_transactions(30)
    p.begin_transaction()
    for part in range(6):
        p.produce("txn-spread", value=f"c{part}".encode(), partition=part)
    p.commit_transaction(30)
    p.begin_transaction()
    for part in range(6):
        p.produce("txn-spread", value=f"a{part}".encode(), partition=part)
    p.flush(30)
    p.abort_transaction(30)
    after = Producer({"bootstrap.servers": cluster.bootstrap})
    for part in range(6):
        after.produce("txn-spread", value=f"z{part}".encode(), partition=part)
    assert after.flush(30) == 0
    for part in range(6):
        assert read_committed(cluster, "txn-spread", part) == [f"c{part}", f"z{part}"]


def test_a_stray_transactional_batch_is_refused_by_a_partition_not_in_the_transaction(cluster):
    """A leader that is not the coordinator still refuses a transactional batch for a partition the
    producer never added to its transaction: it asks the coordinator (INVALID_TXN_STATE), where a
    partition the coordinator has added is accepted."""
    lead = create(cluster, "txn-stray", 3, 3)
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "stray-txn"}).init_transactions(30)
    state = leaders(cluster, "__transaction_state")
    coordinator = state[coordinator_partition("stray-txn", len(state))]
    remote = next(part for part, l in lead.items() if l != coordinator)
    remote_leader = cluster.brokers[lead[remote]]
    # InitProducerId v1 at the coordinator: the producer id and epoch of "stray-txn".
    conn = wire.Conn(cluster.brokers[coordinator].port)
    conn.send(wire.request(22, 1, 3, wire.string("stray-txn") + struct.pack(">i", 60000)))
    resp = conn.recv_frame()
    conn.close()
    _corr, _throttle, error, pid, epoch = struct.unpack_from(">iihqh", resp, 0)
    assert error == 0

    def produce_transactional(seq):
        batch = wire.batch(wire.record(b"stray"), 1, attributes=0x10, pid=pid, epoch=epoch, seq=seq)
        c = wire.Conn(remote_leader.port)
        c.send(wire.request(0, 8, 4, wire.produce_v8("txn-stray", remote, batch, transactional_id="stray-txn")))
        _, results = wire.parse_produce_v8_response(c.recv_frame())
        c.close()
        return results[0][2]

    assert produce_transactional(0) == 48  # INVALID_TXN_STATE: never added to the transaction
    assert read_committed(cluster, "txn-stray", remote) == []


def test_a_transactional_producer_goes_on_after_its_coordinator_is_killed(cluster):
    """kill -9 of the broker coordinating a transactional id: the transaction state is on the
    other replicas of its __transaction_state partition, the new coordinator loads it, and the same
    producer commits its next transactions there."""
    lead = create(cluster, "txn-moving", 3, 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "moving-txn", "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    p.begin_transaction()
    for part in range(3):
        p.produce("txn-moving", value=f"before{part}".encode(), partition=part)
    p.commit_transaction(30)
    state = leaders(cluster, "__transaction_state")
    coordinator = state[coordinator_partition("moving-txn", len(state))]
    cluster.brokers[coordinator].stop(signal.SIGKILL)
    wait_for("a new coordinator", lambda: leaders(cluster, "__transaction_state").get(coordinator_partition("moving-txn", len(state)), -1)
             not in (-1, coordinator), timeout=30)
    for round in range(3):
        p.begin_transaction()
        for part in range(3):
            p.produce("txn-moving", value=f"after{round}-{part}".encode(), partition=part)
        p.commit_transaction(60)
    for part in range(3):
        assert read_committed(cluster, "txn-moving", part) == [f"before{part}"] + [f"after{r}-{part}" for r in range(3)]


def test_exactly_once_with_the_group_and_transaction_coordinators_on_different_brokers(cluster):
    """consume-transform-produce where the consumer group's coordinator and the producer's
    transaction coordinator are different brokers: TxnOffsetCommit writes the offsets as the
    transaction's records at the group coordinator, and the transaction coordinator's marker there
    (WriteTxnMarkers) commits or drops them. The committed offsets then survive kill -9 of the
    group's coordinator."""
    create(cluster, "eos-in", 2, 3)
    create(cluster, "eos-out", 2, 3)
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "eos-probe"}).init_transactions(30)
    admin(cluster.bootstrap).list_topics(timeout=10)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "eos-probe-group"})
    c.list_topics(timeout=10)
    c.close()
    offsets_leaders = wait_for("__consumer_offsets has leaders", lambda: leaders(cluster, "__consumer_offsets") or None)[0]
    state_leaders = leaders(cluster, "__transaction_state")
    group, txn = next((f"eos-group-{i}", f"eos-txn-{i}") for i in range(200)
                      if offsets_leaders[coordinator_partition(f"eos-group-{i}", len(offsets_leaders))]
                      != state_leaders[coordinator_partition(f"eos-txn-{i}", len(state_leaders))])
    group_coordinator = offsets_leaders[coordinator_partition(group, len(offsets_leaders))]
    src = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(40):
        src.produce("eos-in", value=f"{i}".encode(), partition=i % 2)
    assert src.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.subscribe(["eos-in"])
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn})
    producer.init_transactions(30)
    done, rounds = 0, 0
    deadline = time.time() + 60
    try:
        while done < 40 and time.time() < deadline:
            msgs = [m for m in consumer.consume(10, 1.0) if not m.error()]
            if not msgs:
                continue
            producer.begin_transaction()
            for m in msgs:
                producer.produce("eos-out", value=f"t{m.value().decode()}".encode(), partition=m.partition())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata())
            rounds += 1
            if rounds == 2:
                producer.abort_transaction(30)
                for tp in consumer.committed(consumer.assignment(), timeout=10):
                    consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            else:
                producer.commit_transaction(30)
                done += len(msgs)
    finally:
        consumer.close()
    assert done == 40
    for part in range(2):
        assert sorted(read_committed(cluster, "eos-out", part)) == sorted(f"t{i}" for i in range(part, 40, 2))
    cluster.brokers[group_coordinator].stop(signal.SIGKILL)

    def committed():
        check = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
        try:
            return [tp.offset for tp in check.committed([TopicPartition("eos-in", 0), TopicPartition("eos-in", 1)], timeout=5)]
        except Exception:  # noqa: BLE001 - the coordinator is moving: ask again
            return None
        finally:
            check.close()

    assert wait_for("the committed offsets at the new coordinator", lambda: committed() == [20, 20], timeout=30)


def test_a_metadata_request_naming_an_internal_topic_creates_it_as_the_coordinators_need(cluster):
    """A client's Metadata request naming `__consumer_offsets` or `__transaction_state` before any
    FindCoordinator (auto-creation allowed) creates them as Kafka's AutoTopicCreationManager does:
    the cluster's 50 partitions, 3 replicas, compacted. Created as an ordinary topic instead (3
    partitions here, one replica, no configs) the coordinators, which hash over 50, lost the
    groups past partition 2: a consumer group rebalanced thousands of times a second and never
    consumed. Groups and transactions then work on the topics the request created. CreateTopics
    may create one too (Kafka allows it), but only with the count the coordinators hash over."""
    internal = ["__consumer_offsets", "__transaction_state"]
    a = admin(cluster.bootstrap)
    refused = a.create_topics([NewTopic("__consumer_offsets", 3, 3)], operation_timeout=15)["__consumer_offsets"]
    with pytest.raises(KafkaException) as e:
        refused.result(timeout=30)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert "50 partitions" in e.value.args[0].str()
    conn = wire.Conn(cluster.brokers[1].port)
    try:
        # Metadata v1 has no allow_auto_topic_creation flag: the broker's setting (on) decides.
        conn.send(wire.request(3, 1, 1, wire.metadata_v1(internal)))
        assert conn.recv_frame() is not None
    finally:
        conn.close()

    def created(topic):
        t = metadata(cluster, topic).topics.get(topic)
        return t if t is not None and t.error is None and t.partitions and all(p.leader >= 0 for p in t.partitions.values()) else None

    for topic in internal:
        t = wait_for(f"{topic} has leaders", lambda: created(topic))[0]
        assert len(t.partitions) == 50, topic
        assert {len(p.replicas) for p in t.partitions.values()} == {3}, topic
    for resource, configs in a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in internal]).items():
        assert configs.result(timeout=10)["cleanup.policy"].value == "compact", resource

    create(cluster, "after-internal", 2, 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "after-internal-txn"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce("after-internal", value=f"{i}".encode(), partition=i % 2)
    p.commit_transaction(30)
    for group in ("internal-a", "internal-b", "internal-c"):
        assert sorted(int(v) for _, _, v in consume_all(cluster.bootstrap, "after-internal", 10, group=group, timeout=30)) == list(range(10))
        committed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=30)
        # Five records a partition, then the transaction's commit marker.
        assert {tp.partition: tp.offset in (5, 6) for tp in committed.topic_partitions} == {0: True, 1: True}, group


def test_an_internal_topic_record_with_another_partition_count_is_not_applied(cluster):
    """A `__consumer_offsets` record in etcd with another partition count than the brokers agreed
    (as the Metadata bug above wrote) is reported and not applied: adopting it deleted the local
    partitions past its count, the committed offsets and generations of the groups hashed there."""
    def offsets_partitions(b):
        return len([d for d in os.listdir(b.data_dir) if d.startswith("__consumer_offsets-")])

    assert [offsets_partitions(b) for b in cluster.brokers.values()] == [50, 50, 50]
    record = {"name": "__consumer_offsets", "topicId": uuid.uuid4().hex, "configs": {},
              "partitions": [{"leader": i, "replicas": [i], "isr": [i], "leaderEpoch": 0, "partitionEpoch": 0} for i in (1, 2, 3)]}
    etcd_put(cluster, "/tern/topics/__consumer_offsets", json.dumps(record))

    def reported(b):
        return "another partition count than this broker's" in b.logs()

    for b in cluster.brokers.values():
        wait_for(f"broker {b.port} applies or reports the record", lambda: reported(b) or offsets_partitions(b) != 50)
    assert [offsets_partitions(b) for b in cluster.brokers.values()] == [50, 50, 50]
    assert all(reported(b) for b in cluster.brokers.values())
    # The brokers still serve: an ordinary topic is created, written and read.
    create(cluster, "after-bad-record", 1, 3)
    errors = []
    produce_numbered(cluster.bootstrap, "after-bad-record", 5, errors)
    assert errors == []


def etcd_put(cluster, key, value):
    """A put through etcd's JSON gateway (v3 API), as a damaged or foreign writer would make."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value.encode()).decode()})
    url = f"http://127.0.0.1:{cluster.etcd.port}/v3/kv/put"
    with urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"}), timeout=10) as r:
        assert r.status == 200


def test_groups_are_spread_over_coordinators_by_their_id(cluster):
    """__consumer_offsets has 50 partitions led across the brokers; each group's coordinator is the
    leader of the partition its id hashes to (Kafka's rule), and every group works there."""
    create(cluster, "many-groups", 3, 3)
    errors = []
    produce_numbered(cluster.bootstrap, "many-groups", 30, errors)
    assert errors == []
    names = [f"spread-{i}" for i in range(6)]
    for name in names:
        assert len(consume_all(cluster.bootstrap, "many-groups", 30, group=name)) == 30
    offsets = metadata(cluster, "__consumer_offsets").topics["__consumer_offsets"].partitions
    assert len(offsets) == 50
    assert {p.leader for p in offsets.values()} == {1, 2, 3}
    a = admin(cluster.bootstrap)
    described = {n: f.result(timeout=30) for n, f in a.describe_consumer_groups(names).items()}
    for name, d in described.items():
        assert d.coordinator.id == offsets[coordinator_partition(name, 50)].leader, name
    assert len({d.coordinator.id for d in described.values()}) > 1, "six groups, more than one coordinator"
    # Committed offsets are served by each group's own coordinator.
    for name in names:
        committed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(name)])[name].result(timeout=30)
        assert sum(tp.offset for tp in committed.topic_partitions) == 30, name


def test_the_controller_refuses_impossible_topics_without_trying_them(cluster):
    """Bad CreateTopics input gets Kafka's errors from the controller, fast, and nothing is written:
    more partitions than one topic may have in cluster mode (checked before placement, which would
    allocate per partition), a replication factor above the live brokers, an assignment naming an
    unknown broker, a name differing from an existing one only in '.' versus '_'."""
    a = admin(cluster.bootstrap)
    create(cluster, "metrics.like", 1, 1)
    asks = [NewTopic("huge", 100_000, 1), NewTopic("too-many-replicas", 3, 4),
            NewTopic("unknown-broker", num_partitions=1, replica_assignment=[[1, 9]]), NewTopic("metrics_like", 1, 1)]
    started = time.time()
    codes = {}
    for name, f in a.create_topics(asks, operation_timeout=10).items():
        with pytest.raises(Exception) as refused:
            f.result(timeout=30)
        codes[name] = refused.value.args[0].code()
    assert time.time() - started < 10
    assert codes == {"huge": KafkaError.INVALID_PARTITIONS, "too-many-replicas": KafkaError.INVALID_REPLICATION_FACTOR,
                     "unknown-broker": KafkaError.INVALID_REPLICA_ASSIGNMENT, "metrics_like": KafkaError.TOPIC_EXCEPTION}, codes
    # 2^31-1 partitions on the wire (clients refuse to send it): refused at once, the controller
    # never tries to place them.
    controller = cluster.brokers[metadata(cluster).controller_id]
    conn = wire.Conn(controller.port)
    try:
        body = struct.pack(">i", 1) + wire.string("enormous") + struct.pack(">ihii", 2**31 - 1, 1, 0, 0) + struct.pack(">i?", 10000, False)
        started = time.time()
        conn.send(wire.request(19, 2, 5, body))  # CreateTopics v2, the oldest Kafka 4 serves
        payload = conn.recv_frame()
        assert time.time() - started < 2
        count, = struct.unpack_from(">i", payload, 8)
        name_len, = struct.unpack_from(">h", payload, 12)
        error, = struct.unpack_from(">h", payload, 14 + name_len)
        assert (count, payload[14:14 + name_len], error) == (1, b"enormous", 37), "INVALID_PARTITIONS"
    finally:
        conn.close()
    md = metadata(cluster)
    assert not {"huge", "too-many-replicas", "unknown-broker", "enormous"} & set(md.topics)
    assert all(b.alive() for b in cluster.brokers.values())


def test_a_single_brokers_data_joins_a_cluster_and_a_name_clash_stops_a_broker(cluster):
    """A data directory written by a single broker joins with its topics (registered with their
    replicas on that broker, records readable); one whose topic name the cluster already uses for
    another topic refuses to start and keeps its data."""
    from conftest import BrokerProcess as Single

    def single_broker_data(name, topic):
        b = Single(os.path.join(cluster.root, name))
        b.start()
        try:
            errors = []
            assert len(produce_numbered(b.bootstrap, topic, 5, errors)) == 5 and errors == []
        finally:
            b.stop()
        return b.data_dir

    create(cluster, "taken", 1, 1)
    joiner = cluster.make_broker(4)
    joiner.data_dir = single_broker_data("single-4", "legacy")
    cluster.brokers[4] = joiner  # stopped with the cluster
    joiner.start()
    lead = wait_for("legacy is a cluster topic", lambda: (lambda l: l if l and all(x == 4 for x in l.values()) else None)(leaders(cluster, "legacy")))[0]
    assert len(lead) == 3  # the single broker's --num-partitions 3
    assert sorted(v for _, _, v in consume_all(cluster.bootstrap, "legacy", 5)) == sorted(f"v{i}".encode() for i in range(5))

    clash = cluster.make_broker(5)
    clash.data_dir = single_broker_data("single-5", "taken")
    with pytest.raises(RuntimeError, match="exited with 1"):
        clash.start()
    assert "from before it joined the cluster" in clash.logs()
    assert any(d.startswith("taken-") for d in os.listdir(clash.data_dir)), "its data is kept"
