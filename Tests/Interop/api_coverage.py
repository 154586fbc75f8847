"""Which real-client interop tests exercise each Kafka API Tern advertises, and the README table
made from it.

`test_api_matrix.py` fails when an API the broker advertises in ApiVersions has no entry here, when
an entry names a test that does not exist, and when README's matrix is not what this script prints.
Regenerate the README section with:  python3 Tests/Interop/api_coverage.py --write
"""
import os
import re
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
BEGIN, END = "<!-- api-matrix:begin -->", "<!-- api-matrix:end -->"

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit", 29: "DescribeAcls",
    30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs", 34: "AlterReplicaLogDirs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups",
    43: "ElectLeaders", 44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 60: "DescribeCluster", 61: "DescribeProducers",
    65: "DescribeTransactions", 66: "ListTransactions", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    74: "ListClientMetricsResources", 75: "DescribeTopicPartitions",
}

# API name → [(client, "file.py::test")]; clients: kcat (librdkafka 2.0.2), confluent-kafka
# (librdkafka 2.16), kafka-python, aiokafka, tern (Tern's own client via the CLI), wire (hand-made bytes).
COVERAGE = {
    "Produce": [("kcat", "test_kcat.py::test_keys_headers_order_three_partitions"),
                ("confluent-kafka", "test_confluent_kafka.py::test_produce_consume_keys_headers_three_partitions"),
                ("kafka-python", "test_kafka_python.py::test_idempotent_produce_and_consume"),
                ("aiokafka", "test_aiokafka.py::test_aiokafka_round_trip"),
                ("tern", "test_cli.py::test_tern_produce_read_by_kcat"),
                ("wire", "test_api_answers.py::test_old_produce_and_fetch_versions_get_unsupported_version_not_a_closed_connection")],
    "Fetch": [("kcat", "test_kcat.py::test_keys_headers_order_three_partitions"),
              ("confluent-kafka", "test_confluent_kafka.py::test_produce_consume_keys_headers_three_partitions"),
              ("kafka-python", "test_kafka_python.py::test_idempotent_produce_and_consume"),
              ("aiokafka", "test_aiokafka.py::test_aiokafka_round_trip"),
              ("tern", "test_cli.py::test_kcat_produce_read_by_tern")],
    "ListOffsets": [("confluent-kafka", "test_api_answers.py::test_list_offsets_by_isolation_level_and_max_timestamp"),
                    ("kafka-python", "test_api_answers.py::test_list_offsets_by_isolation_level_and_max_timestamp"),
                    ("kcat", "test_kcat.py::test_restart_keeps_data_and_offsets_query")],
    "Metadata": [("kcat", "test_kcat.py::test_metadata_lists_broker_and_topics"),
                 ("confluent-kafka", "test_api_answers.py::test_authorized_operations_are_all_operations_without_an_authorizer"),
                 ("kafka-python", "test_kafka_python.py::test_restart_and_offsets"),
                 ("aiokafka", "test_aiokafka.py::test_aiokafka_round_trip")],
    "OffsetCommit": [("confluent-kafka", "test_api_answers.py::test_offset_commit_rules_for_committers_outside_the_group"),
                     ("kafka-python", "test_api_answers.py::test_offset_commit_rules_for_committers_outside_the_group"),
                     ("kcat", "test_groups.py::test_kcat_balanced_consumer_commits_and_resumes"),
                     ("wire", "test_api_answers.py::test_offset_commit_rules_for_committers_outside_the_group")],
    "OffsetFetch": [("confluent-kafka", "test_groups.py::test_committed_offsets_survive_restart"),
                    ("kafka-python", "test_admin_apis.py::test_offset_delete_and_describe_transactions")],
    "FindCoordinator": [("confluent-kafka", "test_groups.py::test_three_consumers_share_six_partitions_and_take_over_exactly_once"),
                        ("kafka-python", "test_kafka_face.py::test_kafka_python_pinned_to_a_release_runs_a_transaction_and_a_group"),
                        ("kafka-python", "test_groups.py::test_kafka_python_group")],
    "JoinGroup": [("confluent-kafka", "test_api_answers.py::test_a_static_leader_restart_causes_no_rebalance"),
                  ("kafka-python", "test_groups.py::test_kafka_python_group"),
                  ("kcat", "test_groups.py::test_kcat_balanced_consumer_commits_and_resumes")],
    "Heartbeat": [("confluent-kafka", "test_api_answers.py::test_a_replaced_static_member_is_fenced_and_does_not_fence_back"),
                  ("kafka-python", "test_groups.py::test_kafka_python_group")],
    "LeaveGroup": [("confluent-kafka", "test_groups.py::test_three_consumers_share_six_partitions_and_take_over_exactly_once"),
                   ("kafka-python", "test_groups.py::test_kafka_python_group")],
    "SyncGroup": [("confluent-kafka", "test_api_answers.py::test_a_static_leader_restart_causes_no_rebalance"),
                  ("kafka-python", "test_groups.py::test_kafka_python_group")],
    "DescribeGroups": [("confluent-kafka", "test_api_answers.py::test_authorized_operations_are_all_operations_without_an_authorizer"),
                       ("tern", "test_cli.py::test_consume_with_group_commits_and_group_commands")],
    "ListGroups": [("confluent-kafka", "test_groups.py::test_admin_list_describe_delete_groups"),
                   ("tern", "test_cli.py::test_consume_with_group_commits_and_group_commands")],
    "SaslHandshake": [("wire", "test_hostile.py::test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection")],
    "SaslAuthenticate": [("wire", "test_hostile.py::test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection")],
    "ApiVersions": [("kcat", "test_kcat.py::test_metadata_lists_broker_and_topics"),
                    ("aiokafka", "test_aiokafka.py::test_aiokafka_round_trip"),
                    ("wire", "test_bad_input.py::test_unsupported_api_versions_version_gets_v0_error_reply")],
    "CreateTopics": [("confluent-kafka", "test_configs.py::test_explicit_replica_assignment"),
                     ("kafka-python", "test_configs.py::test_explicit_replica_assignment"),
                     ("tern", "test_cli.py::test_topic_commands")],
    "DeleteTopics": [("confluent-kafka", "test_confluent_kafka.py::test_admin_create_delete_and_errors"),
                     ("tern", "test_cli.py::test_topic_commands")],
    "DeleteRecords": [("wire", "test_hostile.py::test_internal_topics_refuse_delete_records_produce_and_delete"),
                      ("confluent-kafka", "test_storage.py::test_delete_records")],
    "InitProducerId": [("confluent-kafka", "test_idempotence.py::test_confluent_idempotent_producer_across_restarts"),
                       ("kafka-python", "test_idempotence.py::test_kafka_python_idempotent_producer")],
    "AddPartitionsToTxn": [("confluent-kafka", "test_transactions.py::test_consume_transform_produce_commits_visible_aborts_not"),
                           ("wire", "test_api_answers.py::test_add_partitions_to_txn_v4_verifies_and_adds_in_batches")],
    "AddOffsetsToTxn": [("confluent-kafka", "test_transactions.py::test_consume_transform_produce_commits_visible_aborts_not")],
    "EndTxn": [("confluent-kafka", "test_transactions.py::test_consume_transform_produce_commits_visible_aborts_not"),
               ("kafka-python", "test_kafka_face.py::test_kafka_python_pinned_to_a_release_runs_a_transaction_and_a_group"),
               ("wire", "test_kafka_face.py::test_transactions_v2_add_partitions_by_producing_and_bump_the_epoch_at_every_end")],
    "TxnOffsetCommit": [("confluent-kafka", "test_transactions.py::test_consume_transform_produce_commits_visible_aborts_not"),
                        ("aiokafka", "test_kafka_face.py::test_aiokafka_sends_offsets_to_a_transaction_while_the_group_has_live_members"),
                        ("wire", "test_kafka_face.py::test_transactions_v2_add_partitions_by_producing_and_bump_the_epoch_at_every_end"),
                        ("wire", "test_transactions.py::test_txn_offset_commit_needs_the_groups_partition_in_the_producers_transaction")],
    "DescribeAcls": [("wire", "test_hostile.py::test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection")],
    "CreateAcls": [("wire", "test_hostile.py::test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection")],
    "DeleteAcls": [("wire", "test_hostile.py::test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection")],
    "DescribeConfigs": [("kafka-python", "test_configs.py::test_every_kafka_topic_config_is_accepted_and_described_with_its_type"),
                        ("confluent-kafka", "test_configs.py::test_broker_and_logger_configs_are_described")],
    "AlterConfigs": [("confluent-kafka", "test_dynamic_configs.py::test_legacy_alter_configs_replaces_a_brokers_dynamic_configs"),
                     ("wire", "test_configs.py::test_incremental_append_subtract_and_legacy_alter_configs")],
    "AlterReplicaLogDirs": [("kafka-python", "test_admin_apis.py::test_log_dirs_are_described_and_moves_to_the_same_dir_accepted"),
                            ("kafka-python", "test_kafka_face.py::test_alter_replica_log_dirs_for_a_partition_hosted_elsewhere_is_replica_not_available")],
    "DescribeLogDirs": [("kafka-python", "test_admin_apis.py::test_log_dirs_are_described_and_moves_to_the_same_dir_accepted")],
    "CreatePartitions": [("confluent-kafka", "test_admin_apis.py::test_create_partitions_grows_a_topic_and_survives_restart"),
                         ("kafka-python", "test_admin_apis.py::test_create_partitions_grows_a_topic_and_survives_restart")],
    "DeleteGroups": [("confluent-kafka", "test_groups.py::test_admin_list_describe_delete_groups")],
    "IncrementalAlterConfigs": [("confluent-kafka", "test_configs.py::test_incremental_append_subtract_and_legacy_alter_configs"),
                                ("kafka-python", "test_dynamic_configs.py::test_legacy_alter_configs_replaces_a_brokers_dynamic_configs"),
                                ("tern", "test_cli.py::test_topic_commands")],
    "OffsetDelete": [("kafka-python", "test_admin_apis.py::test_offset_delete_and_describe_transactions")],
    "DescribeCluster": [("confluent-kafka", "test_api_answers.py::test_authorized_operations_are_all_operations_without_an_authorizer"),
                        ("kafka-python", "test_api_answers.py::test_authorized_operations_are_all_operations_without_an_authorizer"),
                        ("kafka-python", "test_cluster.py::test_clients_see_every_broker_and_leaders_spread_over_all")],
    "ElectLeaders": [("confluent-kafka", "test_cluster.py::test_elect_leaders_preferred_and_unclean")],
    "AlterPartitionReassignments": [("kafka-python", "test_reassignment.py::test_reassignments_are_listed_cancelled_and_bad_targets_refused"),
                                    ("tern", "test_reassignment.py::test_reassignment_under_load_moves_every_replica_off_a_broker_without_loss")],
    "ListPartitionReassignments": [("kafka-python", "test_reassignment.py::test_reassignments_are_listed_cancelled_and_bad_targets_refused"),
                                   ("tern", "test_reassignment.py::test_reassignments_are_listed_cancelled_and_bad_targets_refused")],
    "OffsetForLeaderEpoch": [("wire", "test_replication.py::test_a_returning_leader_truncates_the_tail_nobody_else_has")],
    # Sent by Tern brokers to each other (a coordinator to the leaders of a transaction's partitions).
    "WriteTxnMarkers": [("tern", "test_cluster.py::test_a_transaction_spans_partitions_led_by_every_broker")],
    "DescribeProducers": [("kafka-python", "test_admin_apis.py::test_describe_producers_lists_idempotent_and_transactional_producers")],
    "DescribeTransactions": [("kafka-python", "test_admin_apis.py::test_offset_delete_and_describe_transactions")],
    "ListTransactions": [("wire", "test_transactions.py::test_idle_transactional_ids_expire_and_stay_gone_after_restart"),
                         ("kafka-python", "test_admin_apis.py::test_list_transactions_filters_by_state_producer_and_duration")],
    "ConsumerGroupHeartbeat": [("confluent-kafka", "test_groups.py::test_kip848_consumer_protocol"),
                               ("confluent-kafka", "test_groups.py::test_kip848_online_upgrade_and_downgrade_of_a_live_group")],
    "ConsumerGroupDescribe": [("confluent-kafka", "test_admin_apis.py::test_consumer_group_describe_for_kip848_groups")],
    "ListClientMetricsResources": [("kafka-python", "test_admin_apis.py::test_list_config_resources_has_no_client_metrics")],
    "DescribeTopicPartitions": [("kafka-python", "test_admin_apis.py::test_describe_topic_partitions_pages_with_a_cursor")],
}


def advertised(port):
    """(key, min, max) for every API in the broker's ApiVersions v0 answer."""
    sys.path.insert(0, HERE)
    import wire
    conn = wire.Conn(port)
    conn.send(wire.request(18, 0, 1, b""))
    resp = conn.recv_frame()
    conn.close()
    error, count = struct.unpack_from(">hi", resp, 4)
    assert error == 0
    return [struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count)]


def matrix(apis):
    lines = ["| key | API | versions | exercised by |", "|---|---|---|---|"]
    for key, low, high in sorted(apis):
        name = API_NAMES.get(key, f"api {key}")
        clients = sorted({client for client, _ in COVERAGE.get(name, [])})
        lines.append(f"| {key} | {name} | {low}–{high} | {', '.join(clients) or '—'} |")
    return "\n".join(lines)


def readme_section():
    with open(README) as f:
        text = f.read()
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return text, match


def with_broker(body):
    sys.path.insert(0, HERE)
    from conftest import BrokerProcess
    root = tempfile.mkdtemp(prefix="tern-matrix-")
    broker = BrokerProcess(os.path.join(root, "data")).start()
    try:
        return body(broker)
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    table = with_broker(lambda b: matrix(advertised(b.port)))
    if "--write" in sys.argv:
        text, match = readme_section()
        assert match, f"README.md has no {BEGIN} … {END} section"
        with open(README, "w") as f:
            f.write(text[:match.start(1)] + table + "\n" + text[match.end(1):])
    else:
        print(table)
