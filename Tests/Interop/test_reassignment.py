"""Partition reassignment (KIP-455): replicas move to other brokers under load without losing or
duplicating a record; reassignments can be listed and cancelled; bad targets get Kafka's errors.
etcd + 4 real brokers on loopback; the `tern` CLI and kafka-python's admin client drive it."""
import json
import os
import signal
import subprocess

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError, UnknownTopicOrPartitionError

from cluster import BackgroundProducer, Cluster, wait_for
from conftest import TERN_BIN
from test_replication import consume_everything, partitions_of, replicas_identical


@pytest.fixture
def cluster():
    c = Cluster(4)
    try:
        yield c
    finally:
        c.stop()


def create_placed(cluster, name, assignment, **configs):
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment, config={k.replace("_", "."): str(v) for k, v in configs.items()})
    for f in a.create_topics([topic], operation_timeout=15).values():
        f.result(timeout=30)
    wait_for(f"{name} is led and fully in sync", lambda: len(partitions_of(cluster, name)) == len(assignment) and all(
        p.leader >= 0 and sorted(p.isrs) == sorted(p.replicas) for p in partitions_of(cluster, name).values()))


def tern(*args, timeout=120):
    res = subprocess.run([TERN_BIN, *args], capture_output=True, timeout=timeout)
    assert res.returncode == 0, f"tern {args}: {res.stdout.decode()} {res.stderr.decode()}"
    return res.stdout.decode()


def test_reassignment_under_load_moves_every_replica_off_a_broker_without_loss(cluster):
    """{1,2,3} → {1,2,4} for three partitions while an idempotent acks=all producer writes: broker 4
    copies each partition from its start, broker 3 is dropped only once 4 is in sync — the leader of
    one partition included, which hands over to broker 4 — and afterwards every acknowledged record
    is there once, on byte-identical replicas, and broker 3 keeps no copy."""
    create_placed(cluster, "moving", [[1, 2, 3], [2, 3, 1], [3, 1, 2]], min_insync_replicas=2)
    with BackgroundProducer(cluster.bootstrap, "moving", **{"enable.idempotence": True}) as producer:
        wait_for("some records acknowledged before the move", lambda: len(producer.acked) >= 3000, timeout=30)
        out = tern("topic", "reassign", "moving", "--replicas", "1,2,4", "--wait", "--timeout", "60", "-b", cluster.brokers[1].bootstrap)
        assert out.count("started") == 3 and "every partition has finished moving" in out, out
        moved_at = len(producer.acked)
        wait_for("more records acknowledged after the move", lambda: len(producer.acked) >= moved_at + 3000, timeout=30)
    assert producer.errors == []
    state = partitions_of(cluster, "moving")
    assert {p: list(s.replicas) for p, s in state.items()} == {0: [1, 2, 4], 1: [2, 4, 1], 2: [4, 1, 2]}
    assert all(sorted(s.isrs) == [1, 2, 4] for s in state.values())
    assert state[2].leader == 4, "the removed leader handed partition 2 to the first new replica"
    assert len(set(producer.acked)) == len(producer.acked)
    seen = consume_everything(cluster.bootstrap, "moving", 3)
    values = [v for _, _, v in seen]
    assert len(values) == len(set(values)), "a record was written twice"
    assert set(values) == set(producer.acked), "acknowledged records are missing"
    for partition in range(3):
        wait_for(f"moving-{partition} identical on brokers 1, 2 and 4",
                 lambda: replicas_identical(cluster, "moving", partition, [1, 2, 4]))
    wait_for("broker 3 deleted its copies", lambda: not any(
        d.startswith("moving-") for d in os.listdir(cluster.brokers[3].data_dir)))
    assert "moving" not in tern("topic", "reassignments", "-b", cluster.brokers[2].bootstrap)


def test_reassignments_are_listed_cancelled_and_bad_targets_refused(cluster):
    create_placed(cluster, "held", [[1, 2, 3]])
    admin = KafkaAdminClient(bootstrap_servers=cluster.brokers[1].bootstrap, request_timeout_ms=10000)
    tp = KafkaPythonTopicPartition("held", 0)
    try:
        assert admin.alter_partition_reassignments({tp: [1, 2, 9]}) == {tp: InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: [1, 1, 2]}) == {tp: InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
        missing = [KafkaPythonTopicPartition("held", 5), KafkaPythonTopicPartition("nowhere", 0)]
        assert admin.alter_partition_reassignments({t: [1, 2, 3] for t in missing}) == {t: UnknownTopicOrPartitionError for t in missing}
        assert admin.list_partition_reassignments() == {}
        # A paused broker cannot catch up, so the move stays in progress while it is looked at (the
        # pause is shorter than the session timeout: broker 4 stays registered).
        plan = os.path.join(cluster.root, "plan.json")
        with open(plan, "w") as f:
            json.dump({"version": 1, "partitions": [{"topic": "held", "partition": 0, "replicas": [1, 2, 4], "log_dirs": ["any"] * 3}]}, f)
        cluster.brokers[4].proc.send_signal(signal.SIGSTOP)
        try:
            assert "started" in tern("topic", "reassign", "--plan", plan, "-b", cluster.brokers[2].bootstrap)
            ongoing = {tp: {"replicas": [1, 2, 4, 3], "adding_replicas": [4], "removing_replicas": [3]}}
            wait_for("the reassignment is listed", lambda: admin.list_partition_reassignments() == ongoing, timeout=5)
            assert admin.list_partition_reassignments({"held": [0]}) == ongoing
            listed = tern("topic", "reassignments", "held", "-b", cluster.brokers[3].bootstrap)
            assert listed.split("\n")[1].split() == ["held", "0", "1,2,4,3", "4", "3"], listed
            assert "cancelled" in tern("topic", "reassign", "held", "-p", "0", "--cancel", "-b", cluster.brokers[2].bootstrap)
        finally:
            cluster.brokers[4].proc.send_signal(signal.SIGCONT)
        wait_for("the cancellation is seen", lambda: admin.list_partition_reassignments() == {}, timeout=5)
        assert list(partitions_of(cluster, "held")[0].replicas) == [1, 2, 3]
        assert admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
    finally:
        admin.close()


def test_a_single_broker_is_the_only_possible_replica(broker):
    tern("topic", "create", "solo", "-p", "1", "-b", broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    tp = KafkaPythonTopicPartition("solo", 0)
    try:
        assert admin.alter_partition_reassignments({tp: [0]}) == {tp: None}
        assert admin.alter_partition_reassignments({tp: [0, 1]}) == {tp: InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
        assert admin.list_partition_reassignments() == {}
    finally:
        admin.close()
