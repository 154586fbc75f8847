"""Admin APIs clients call and Tern used to refuse (issue 10, "missing APIs"): CreatePartitions,
DescribeLogDirs, AlterReplicaLogDirs, DescribeProducers, DescribeTopicPartitions (with paging) and
ConsumerGroupDescribe — each through kafka-python and, where it has the call, confluent-kafka."""
import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KNewPartitions


def create(bootstrap, name, partitions=1):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)


def test_create_partitions_grows_a_topic_and_survives_restart(broker):
    create(broker.bootstrap, "growing", 2)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_partitions([NewPartitions("growing", 4)])["growing"].result(30)
    assert len(a.list_topics("growing", timeout=10).topics["growing"].partitions) == 4
    p = Producer({"bootstrap.servers": broker.bootstrap})
    delivered = []
    p.produce("growing", value=b"to-3", partition=3, on_delivery=lambda err, msg: delivered.append(err))
    p.flush(20)
    assert delivered == [None]
    with pytest.raises(KafkaException) as shrink:
        a.create_partitions([NewPartitions("growing", 3)])["growing"].result(30)
    assert shrink.value.args[0].code() == 37 and "would not be an increase" in shrink.value.args[0].str()
    with pytest.raises(KafkaException) as internal:
        a.create_partitions([NewPartitions("__consumer_offsets", 5)])["__consumer_offsets"].result(30)
    assert internal.value.args[0].code() == 42
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    k.create_partitions({"growing": KNewPartitions(6)})
    k.close()
    broker.restart()
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert len(a.list_topics("growing", timeout=10).topics["growing"].partitions) == 6


def test_names_differing_only_in_dot_versus_underscore_collide(broker):
    """Kafka refuses a topic whose name differs from an existing one only in '.' versus '_' (their
    metric names would be the same): INVALID_TOPIC_EXCEPTION, and the first topic is untouched."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("orders.eu", 2)])["orders.eu"].result(timeout=10)
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic("orders_eu", 1)])["orders_eu"].result(timeout=10)
    assert refused.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    topics = admin.list_topics(timeout=10).topics
    assert "orders_eu" not in topics and len(topics["orders.eu"].partitions) == 2


def test_log_dirs_are_described_and_moves_to_the_same_dir_accepted(broker):
    create(broker.bootstrap, "sized", 2)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        p.produce("sized", value=b"x" * 100, partition=0)
    p.flush(20)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    dirs = k.describe_log_dirs()
    flat = dirs[0] if isinstance(dirs, list) else dirs
    text = repr(flat)
    assert os.path.realpath(broker.data_dir) in text or broker.data_dir in text, text[:500]
    found = k.describe_log_dirs({"sized": [0, 1]})
    assert "sized" in repr(found)
    moved = k.alter_replica_log_dirs({("sized", 0, 0): os.path.abspath(broker.data_dir), ("sized", 1, 0): "/elsewhere"})
    outcome = {tpr.partition: err.__name__ for tpr, err in moved.items()}
    assert outcome == {0: "NoError", 1: "LogDirNotFoundError"}, outcome
    k.close()


def test_describe_producers_lists_idempotent_and_transactional_producers(broker):
    create(broker.bootstrap, "producers", 1)
    idem = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(5):
        idem.produce("producers", value=b"i", partition=0)
    idem.flush(20)
    tx = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "dp-tx"})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce("producers", value=b"t", partition=0)
    tx.flush(20)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    state = k.describe_producers([KTopicPartition("producers", 0)])[KTopicPartition("producers", 0)]
    producers = sorted(state.active_producers, key=lambda p: p.last_sequence)
    assert len(producers) == 2, producers
    assert producers[0].current_transaction_start_offset == 5, "the open transaction starts after the five idempotent records"
    assert producers[1].last_sequence == 4 and producers[1].current_transaction_start_offset == -1
    assert all(p.producer_id >= 0 and p.producer_epoch >= 0 for p in producers)
    k.close()
    tx.abort_transaction(30)


def test_describe_topic_partitions_pages_with_a_cursor(broker):
    create(broker.bootstrap, "paged-a", 3)
    create(broker.bootstrap, "paged-b", 2)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    seen = []
    cursor = None
    pages = 0
    while True:
        page = k.describe_topic_partitions(["paged-a", "paged-b"], response_partition_limit=2, cursor=cursor)
        pages += 1
        for t in page["topics"]:
            assert t["error_code"] == 0 and t["topic_authorized_operations"] != -2147483648
            seen += [(t["name"], p["partition_index"]) for p in t["partitions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == [("paged-a", 0), ("paged-a", 1), ("paged-a", 2), ("paged-b", 0), ("paged-b", 1)]
    assert pages == 3
    k.close()


def test_consumer_group_describe_for_kip848_groups(broker):
    broker.stop()
    broker.extra_args = ["--set", "group.consumer.heartbeat.interval.ms=300"]
    broker.start()
    create(broker.bootstrap, "cgd", 2)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "cgd-group", "group.protocol": "consumer",
                  "auto.offset.reset": "earliest"})
    assigned = []
    c.subscribe(["cgd"], on_assign=lambda _, ps: assigned.extend(ps))
    deadline = time.time() + 20
    while len(assigned) < 2 and time.time() < deadline:
        c.poll(0.2)
    assert len(assigned) == 2
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    group = a.describe_consumer_groups(["cgd-group"])["cgd-group"].result(10)
    assert len(group.members) == 1
    member = group.members[0]
    assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1]
    assert group.state.name in ("STABLE", "RECONCILING")
    # A classic group is still described (librdkafka falls back to DescribeGroups).
    classic = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "classic-group", "session.timeout.ms": 6000})
    got = []
    classic.subscribe(["cgd"], on_assign=lambda _, ps: got.extend(ps))
    deadline = time.time() + 20
    while not got and time.time() < deadline:
        classic.poll(0.2)
    described = a.describe_consumer_groups(["classic-group"])["classic-group"].result(10)
    assert len(described.members) == 1
    classic.close()
    c.close()


def test_offset_delete_and_describe_transactions(broker):
    create(broker.bootstrap, "od", 2)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for part in (0, 1):
        p.produce("od", value=b"x", partition=part)
    p.flush(20)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "od-group", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("od", 0, 1), TopicPartition("od", 1, 1)], asynchronous=False)
    c.close()
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    before = k.list_group_offsets("od-group")["od-group"]
    assert {tp.partition for tp in before} == {0, 1}
    k.delete_group_offsets("od-group", [KTopicPartition("od", 0)])  # OffsetDelete
    after = k.list_group_offsets("od-group")["od-group"]
    assert {tp.partition for tp in after} == {1}

    tx = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "described-tx"})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce("od", value=b"t", partition=1)
    tx.flush(20)
    described = k.describe_transactions(["described-tx"])
    text = repr(described)
    assert "Ongoing" in text and "described-tx" in text and "'od'" in text, text
    from kafka.errors import TransactionalIdNotFoundError
    with pytest.raises(TransactionalIdNotFoundError):
        k.describe_transactions(["never-seen"])
    k.close()
    tx.abort_transaction(30)


def test_list_config_resources_has_no_client_metrics(broker):
    """API 74 (ListClientMetricsResources; ListConfigResources from Kafka 4.1): Tern keeps no KIP-714
    client-metrics subscriptions, so the list is empty rather than the request refused."""
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    listed = k.list_config_resources()  # raises IncompatibleBrokerVersion when API 74 is not advertised
    assert all(not names for names in listed.values()), listed
    k.close()


def test_list_transactions_filters_by_state_producer_and_duration(broker):
    create(broker.bootstrap, "lt", 1)
    done = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "lt-done"})
    done.init_transactions(30)
    done.begin_transaction()
    done.produce("lt", value=b"d", partition=0)
    done.commit_transaction(30)
    running = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "lt-running"})
    running.init_transactions(30)
    running.begin_transaction()
    running.produce("lt", value=b"r", partition=0)
    running.flush(20)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)

    def ids(**filters):
        listed = k.list_transactions(**filters)[0]  # node id → listings
        return sorted(t.transactional_id for t in listed)

    assert ids() == ["lt-done", "lt-running"]
    assert ids(state_filters=["Ongoing"]) == ["lt-running"]
    assert ids(state_filters=["CompleteCommit"]) == ["lt-done"]
    time.sleep(1.2)
    assert ids(state_filters=["Ongoing"], duration_filter_ms=1000) == ["lt-running"], "running for more than a second"
    assert ids(state_filters=["Ongoing"], duration_filter_ms=600_000) == [], "not running for ten minutes"
    k.close()
    running.abort_transaction(30)
