"""A hostile client cannot crash, wedge or corrupt the broker (issue 9).

Each test sends what a careless or malicious client could — batches whose headers lie, forged
control and transactional batches, zip bombs, requests it never reads the answers to, trickled
frames, idle sockets — checks the broker's answer against what Kafka answers, and then checks that
an ordinary client still produces and consumes.
"""
import os
import socket
import struct
import subprocess
import time

import lz4.frame
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from conftest import TERN_BIN, BrokerProcess, kcat

CORRUPT_MESSAGE = 2
INVALID_TOPIC = 17
INVALID_TXN_STATE = 48
INVALID_RECORD = 87


def create_topic(broker, name, partitions=1, config=None):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=30)


def produce(conn, topic, records, version=8, partition=0, correlation_id=7):
    """Sends one Produce and returns (error, base offset, record errors, message) of the partition."""
    if version == 3:
        conn.send(wire.request(0, 3, correlation_id, wire.produce_v3(topic, partition, records)))
        _, parts = wire.parse_produce_v3_response(conn.recv_frame())
        return parts[0][2], parts[0][3], [], None
    conn.send(wire.request(0, 8, correlation_id, wire.produce_v8(topic, partition, records)))
    frame = conn.recv_frame()
    assert frame is not None, "broker closed the connection instead of answering"
    _, parts = wire.parse_produce_v8_response(frame)
    _, _, err, base, record_errors, message = parts[0]
    return err, base, record_errors, message


def assert_still_serves(broker, topic=None):
    """An ordinary client can still write and read a fresh topic, end to end."""
    assert broker.alive(), broker.logs()[-3000:]
    topic = topic or f"after-{time.monotonic_ns()}"
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", input_bytes=b"still\nserving\n")
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-c", "2", "-q")
    assert out.splitlines() == [b"still", b"serving"]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_crash_loop_reproduction_is_refused_and_survives_restart(broker):
    """The issue's reproduction: lastOffsetDelta = 2^31-1 on a one-record batch, three times."""
    create_topic(broker, "loop")
    conn = wire.Conn(broker.port)
    for i in range(3):
        b = wire.batch(wire.record(b"x"), 1, last_offset_delta=2**31 - 1)
        err, _, _, _ = produce(conn, "loop", b, version=3, correlation_id=i)
        assert err == INVALID_RECORD
    ok, base, _, _ = produce(conn, "loop", wire.batch(wire.record(b"fine"), 1), version=3)
    assert (ok, base) == (0, 0), "offsets stay dense: the refused batches took none"
    conn.close()
    broker.restart()
    out = kcat("-b", broker.bootstrap, "-C", "-t", "loop", "-o", "beginning", "-e", "-q", "-f", "%o %s\n")
    assert out == b"0 fine\n"
    assert_still_serves(broker)


@pytest.mark.parametrize("case", [
    "count_above_records", "count_below_records", "zero_count", "offset_delta_gap", "base_offset_nonzero",
    "last_delta_mismatch", "garbage_records", "negative_header_key", "two_batches", "sequence_without_pid_rules",
])
def test_lying_batches_are_invalid_record(broker, case):
    create_topic(broker, "lies")
    r0, r1 = wire.record(b"a", offset_delta=0), wire.record(b"b", offset_delta=1)
    body = b"\x00" + wire.varint(0) + wire.varint(0) + wire.varint(-1) + wire.varint(1) + b"v" + wire.varint(1) + wire.varint(-3)
    bad_header_record = wire.varint(len(body)) + body
    batches = {
        "count_above_records": wire.batch(r0, 2, last_offset_delta=1),
        "count_below_records": wire.batch(r0 + r1, 1, last_offset_delta=0),
        "zero_count": wire.batch(b"", 0, last_offset_delta=0),
        "offset_delta_gap": wire.batch(r0 + wire.record(b"b", offset_delta=5), 2),
        "base_offset_nonzero": wire.batch(r0, 1, base_offset=1000),
        "last_delta_mismatch": wire.batch(r0 + r1, 2, last_offset_delta=7),
        "garbage_records": wire.batch(wire.varint(100000) + os.urandom(64), 1),
        "negative_header_key": wire.batch(bad_header_record, 1),
        "two_batches": wire.batch(r0, 1) + wire.batch(r0, 1),
        "sequence_without_pid_rules": wire.batch(r0, 1, pid=42, epoch=0, seq=-1),
    }
    conn = wire.Conn(broker.port)
    err, base, _, message = produce(conn, "lies", batches[case])
    assert err == INVALID_RECORD, (case, err)
    assert base == -1 and message, "Produce v8 carries Kafka's error message"
    ok, base, _, _ = produce(conn, "lies", wire.batch(wire.record(b"good"), 1))
    assert (ok, base) == (0, 0)
    out = kcat("-b", broker.bootstrap, "-C", "-t", "lies", "-o", "beginning", "-e", "-q")
    assert out == b"good\n", "nothing of the refused batch was stored"


def test_forged_control_batch_is_refused(broker):
    """A COMMIT marker from a plain client would end (or fake) someone else's transaction."""
    create_topic(broker, "forge")
    key = struct.pack(">hh", 0, 1)  # version 0, COMMIT
    value = struct.pack(">hi", 0, 0)
    marker = wire.batch(wire.record(value, key=key), 1, attributes=0x30, pid=1234, epoch=0, seq=-1)
    conn = wire.Conn(broker.port)
    err, _, _, message = produce(conn, "forge", marker)
    assert err == INVALID_RECORD and "control" in message
    assert_still_serves(broker)


def test_stray_transactional_batch_is_refused_and_does_not_pin_the_lso(broker):
    """A transactional batch from a producer id no coordinator knows: Kafka answers INVALID_TXN_STATE.
    Were it stored, read_committed consumers would stop in front of it forever."""
    create_topic(broker, "stray")
    conn = wire.Conn(broker.port)
    stray = wire.batch(wire.record(b"stray"), 1, attributes=0x10, pid=987654321, epoch=0, seq=0)
    err, _, _, _ = produce(conn, "stray", stray)
    assert err == INVALID_TXN_STATE
    ok, _, _, _ = produce(conn, "stray", wire.batch(wire.record(b"after"), 1))
    assert ok == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lso", "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("stray", 0, 0)])
        deadline, values = time.time() + 20, []
        while time.time() < deadline and not values:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                values.append(m.value())
        assert values == [b"after"]
        low, high = consumer.get_watermark_offsets(TopicPartition("stray", 0), timeout=10)
        assert (low, high) == (0, 1)
    finally:
        consumer.close()


def test_keyless_record_on_compacted_topic_gets_record_errors(broker):
    create_topic(broker, "compacted", config={"cleanup.policy": "compact"})
    conn = wire.Conn(broker.port)
    records = wire.record(b"v0", key=b"k", offset_delta=0) + wire.record(b"v1", key=None, offset_delta=1)
    err, _, record_errors, message = produce(conn, "compacted", wire.batch(records, 2))
    assert err == INVALID_RECORD
    assert [i for i, _ in record_errors] == [1], record_errors
    assert "without key" in record_errors[0][1]
    assert "1 record errors" in message
    assert_still_serves(broker)


def test_lz4_zip_bomb_is_corrupt_message_and_memory_stays_small(broker):
    """981 KB of LZ4 that expands to hundreds of MB: refused without allocating it."""
    create_topic(broker, "bomb")
    payload = lz4.frame.compress(b"\x00" * (200 << 20))
    assert len(payload) < 1_000_000
    conn = wire.Conn(broker.port)
    before = rss_bytes(broker.proc.pid)
    err, _, _, _ = produce(conn, "bomb", wire.batch(payload, 1, attributes=3))
    assert err == CORRUPT_MESSAGE
    assert rss_bytes(broker.proc.pid) - before < 150 << 20
    assert_still_serves(broker)


def test_wrong_max_timestamp_is_corrected_like_kafka(broker):
    """Kafka rewrites a batch's max timestamp to its records' maximum; ListOffsets by time sees it."""
    create_topic(broker, "ts")
    conn = wire.Conn(broker.port)
    records = wire.record(b"early", offset_delta=0, ts_delta=0) + wire.record(b"late", offset_delta=1, ts_delta=5000)
    err, _, _, _ = produce(conn, "ts", wire.batch(records, 2, base_ts=1_700_000_000_000, max_ts=0))
    assert err == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ts"})
    try:
        found = consumer.offsets_for_times([TopicPartition("ts", 0, 1_700_000_004_000)], timeout=10)
        assert found[0].offset == 1
    finally:
        consumer.close()


def test_internal_topics_refuse_delete_records_produce_and_delete(broker):
    conn = wire.Conn(broker.port)
    for topic in ("__consumer_offsets", "__transaction_state"):
        conn.send(wire.request(21, 0, 1, wire.delete_records_v0(topic, 0, -1)))
        assert wire.parse_delete_records_v0_response(conn.recv_frame())[0][3] == INVALID_TOPIC
        err, _, _, _ = produce(conn, topic, wire.batch(wire.record(b"x", key=b"k"), 1))
        assert err == INVALID_TOPIC
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(Exception):
        admin.delete_topics(["__consumer_offsets"])["__consumer_offsets"].result(timeout=30)
    assert_still_serves(broker)


def test_invalid_and_colliding_topic_names(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for bad in ["a/b", "x" * 250, "..", "sp ace"]:
        with pytest.raises(Exception):
            admin.create_topics([NewTopic(bad, 1, 1)])[bad].result(timeout=30)
    create_topic(broker, "metrics_topic")
    with pytest.raises(Exception) as e:
        admin.create_topics([NewTopic("metrics.topic", 1, 1)])["metrics.topic"].result(timeout=30)
    assert "INVALID_TOPIC" in str(e.value) or "17" in str(e.value)
    assert_still_serves(broker)


def test_pipelined_requests_never_read_keep_memory_bounded(broker):
    """A client that pipelines Metadata requests and never reads: the broker stops reading from it
    (backpressure) instead of buffering responses, and other clients are served meanwhile."""
    for i in range(20):
        create_topic(broker, f"meta-{i}", partitions=8)
    request = wire.request(3, 1, 1, wire.metadata_v1())
    hog = socket.create_connection(("127.0.0.1", broker.port))
    hog.setblocking(False)
    sent, deadline = 0, time.time() + 8
    chunk = request * 256
    while time.time() < deadline:
        try:
            sent += hog.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    rss = rss_bytes(broker.proc.pid)
    started = time.monotonic()
    assert_still_serves(broker)
    elapsed = time.monotonic() - started
    hog.close()
    assert rss < 400 << 20, f"broker RSS {rss >> 20} MiB after {sent >> 20} MiB of unread pipelined requests"
    assert elapsed < 15


def test_connection_that_never_reads_fetch_responses_holds_few_descriptors(broker):
    create_topic(broker, "fds")
    kcat("-b", broker.bootstrap, "-P", "-t", "fds", input_bytes=b"".join(b"v%06d\n" % i for i in range(2000)))
    fetch = struct.pack(">iiii", -1, 0, 1, 50 << 20) + struct.pack(">b", 0) + struct.pack(">i", 1) + wire.string("fds")
    fetch += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
    request = wire.request(1, 4, 1, fetch)
    before = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
    hog = socket.create_connection(("127.0.0.1", broker.port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.setblocking(False)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            hog.send(request * 64)
        except BlockingIOError:
            time.sleep(0.01)
    during = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
    hog.close()
    assert during - before < 500, f"{during - before} descriptors pinned by one connection"
    assert_still_serves(broker)


def test_many_connections_never_reading_fetch_responses_share_descriptors(broker):
    """Issue 22: every unread fetch response held a descriptor of its own — 200 such connections
    took the broker to 20 000 descriptors and it stopped accepting. Readers of one segment now
    share one descriptor."""
    create_topic(broker, "fds-many")
    kcat("-b", broker.bootstrap, "-P", "-t", "fds-many", input_bytes=b"".join(b"v%06d\n" % i for i in range(2000)))
    fetch = struct.pack(">iiii", -1, 0, 1, 50 << 20) + struct.pack(">b", 0) + struct.pack(">i", 1) + wire.string("fds-many")
    fetch += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
    request = wire.request(1, 4, 1, fetch)
    before = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
    hogs = []
    for _ in range(100):
        hog = socket.create_connection(("127.0.0.1", broker.port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.setblocking(False)
        hogs.append(hog)
    deadline = time.time() + 5
    while time.time() < deadline:
        for hog in hogs:
            try:
                hog.send(request * 64)
            except (BlockingIOError, OSError):
                pass
        time.sleep(0.01)
    during = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
    started = time.monotonic()
    assert_still_serves(broker)
    elapsed = time.monotonic() - started
    for hog in hogs:
        hog.close()
    assert during - before < 400, f"{during - before} descriptors for 100 connections' unread fetch responses"
    assert elapsed < 15


@pytest.fixture
def strict_broker(tmp_path):
    b = BrokerProcess(str(tmp_path / "data"), extra_args=[
        "--set", "connections.max.idle.ms=1500", "--set", "tern.socket.frame.timeout.ms=1500",
        "--set", "queued.max.request.bytes=33554432", "--set", "max.connections=50"])
    b.start()
    yield b
    b.stop()


def test_idle_connection_is_closed(strict_broker):
    conn = wire.Conn(strict_broker.port)
    conn.sock.settimeout(10)
    started = time.monotonic()
    assert conn.closed_by_peer()
    assert 1.0 < time.monotonic() - started < 8


def test_slowloris_frame_is_cut_off(strict_broker):
    conn = wire.Conn(strict_broker.port)
    conn.sock.settimeout(10)
    frame = wire.request(18, 0, 1, b"")
    started = time.monotonic()
    closed = False
    for byte in frame:
        try:
            conn.send(bytes([byte]))
        except OSError:
            closed = True
            break
        time.sleep(0.3)
    assert closed or conn.closed_by_peer()
    assert time.monotonic() - started < 8
    assert_still_serves(strict_broker)


def test_partial_frames_are_bounded_by_the_request_memory_pool(strict_broker):
    """Eight connections each start a 90 MiB frame and send most of it; the pool (32 MiB) lets one
    of them proceed and holds the others back, so broker memory stays far below 8 × 90 MiB."""
    size = 90 << 20
    header = struct.pack(">i", size) + struct.pack(">hhi", 18, 0, 1) + wire.string("hog")
    socks = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", strict_broker.port))
        s.setblocking(False)
        socks.append([s, 0])
    block = header + b"\x00" * (1 << 20)
    deadline = time.time() + 4
    while time.time() < deadline:
        for entry in socks:
            s, sent = entry
            if sent < size - (1 << 20):
                try:
                    entry[1] += s.send(block if sent == 0 else block[len(header):])
                except (BlockingIOError, OSError):
                    pass
        time.sleep(0.001)
    rss = rss_bytes(strict_broker.proc.pid)
    for s, _ in socks:
        s.close()
    assert rss < 300 << 20, f"broker RSS {rss >> 20} MiB holding partial frames"
    assert_still_serves(strict_broker)


def test_many_idle_connections_then_normal_service(broker):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    count = min(5000, want - 200)
    socks = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", broker.port)))
        time.sleep(0.5)
        assert_still_serves(broker)
    finally:
        for s in socks:
            s.close()
    assert count >= 1000, "the test could not open enough connections to mean anything"


def test_max_connections_refuses_the_excess(strict_broker):
    socks = [socket.create_connection(("127.0.0.1", strict_broker.port)) for _ in range(50)]
    try:
        time.sleep(0.3)
        extra = wire.Conn(strict_broker.port)
        extra.sock.settimeout(5)
        assert extra.closed_by_peer()
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert_still_serves(strict_broker)


@pytest.mark.parametrize("listeners", ["SSL://127.0.0.1:0", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"])
def test_secure_listener_is_refused_at_start(tmp_path, listeners):
    """A listener is served or the start refused: PLAINTEXT beside SSL used to start and drop SSL."""
    res = subprocess.run(
        [TERN_BIN, "broker", "--listeners", listeners, "--log-dirs", str(tmp_path / "d")],
        capture_output=True, timeout=30)
    assert res.returncode != 0
    assert b"SSL listeners are not supported" in res.stderr + res.stdout


def test_sasl_and_acl_requests_get_kafka_answers_not_a_closed_connection(broker):
    conn = wire.Conn(broker.port)
    conn.send(wire.request(17, 1, 1, wire.string("PLAIN")))  # SaslHandshake v1
    corr, err = struct.unpack_from(">ih", conn.recv_frame())
    assert (corr, err) == (1, 34)  # ILLEGAL_SASL_STATE: no SASL on a PLAINTEXT listener
    # DescribeAcls v1: any resource, any principal.
    body = struct.pack(">b", 1) + wire.string(None) + struct.pack(">b", 1) + wire.string(None) + wire.string(None)
    body += struct.pack(">bb", 1, 1)
    conn.send(wire.request(29, 1, 2, body))
    corr, _throttle, err = struct.unpack_from(">iih", conn.recv_frame())
    assert (corr, err) == (2, 54)  # SECURITY_DISABLED: no authorizer
    conn.send(wire.request(18, 0, 3, b""))
    assert struct.unpack_from(">ih", conn.recv_frame()) == (3, 0), "the connection is still served"


def test_error_replies_never_carry_nulls_the_schema_forbids(broker):
    """JoinGroup v5 error replies name the protocol "" (Kafka), not null; Metadata v10 asked by topic
    id (unsupported before v12) answers INVALID_REQUEST with a non-null name. Java clients fail to
    parse a null in these fields."""
    conn = wire.Conn(broker.port)
    body = wire.string("g-null") + struct.pack(">ii", 10000, 10000) + wire.string("no-such-member") + wire.string(None)
    body += wire.string("consumer") + struct.pack(">i", 1) + wire.string("range") + struct.pack(">i", 0)
    conn.send(wire.request(11, 5, 1, body))
    payload = conn.recv_frame()
    corr, _throttle, err, _generation = struct.unpack_from(">iihi", payload)
    assert corr == 1 and err != 0
    name_length, = struct.unpack_from(">h", payload, 14)
    assert name_length == 0, "protocol name must be an empty string, not null"
    # Metadata v10 (flexible): one topic with a topic id and a null name.
    topic = b"\x01" * 16 + b"\x00" + b"\x00"  # uuid, compact nullable string null, no tagged fields
    body = b"\x02" + topic + b"\x01" + b"\x00" + b"\x00" + b"\x00"  # topics, auto-create, cluster ops, topic ops, tags
    flexible = struct.pack(">hhi", 3, 10, 2) + wire.string("wire-test") + b"\x00" + body
    conn.send(struct.pack(">i", len(flexible)) + flexible)
    payload = conn.recv_frame()
    assert payload is not None
    assert struct.pack(">h", 42) in payload, "INVALID_REQUEST for the topic"


def test_ten_thousand_partitions_fit_and_an_oversized_topic_is_refused_up_front(broker):
    """A partition costs one descriptor (its active segment's log; index files are written whole at
    seal, not held open): 10 000 partitions fit under this machine's limit and survive a restart. A
    topic that would exhaust the limit is refused with POLICY_VIOLATION before anything is opened."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(f"many-{i}", 1000, 1) for i in range(10)], request_timeout=120)
    for f in futures.values():
        f.result(timeout=180)
    fds = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
    assert 10_000 <= fds < 11_000, fds
    with pytest.raises(Exception) as refused:
        admin.create_topics([NewTopic("too-many", 90_000, 1)], request_timeout=120)["too-many"].result(timeout=120)
    assert "POLICY_VIOLATION" in str(refused.value) and "file descriptors" in str(refused.value)
    assert not [d for d in os.listdir(broker.data_dir) if d.startswith("too-many")], "nothing left behind"
    broker.restart()
    kcat("-b", broker.bootstrap, "-P", "-t", "many-7", "-p", "999", input_bytes=b"deep\n")
    assert kcat("-b", broker.bootstrap, "-C", "-t", "many-7", "-p", "999", "-o", "beginning", "-e", "-q") == b"deep\n"
    assert_still_serves(broker)


def test_fetch_max_bytes_caps_a_response_that_names_a_partition_many_times(tmp_path):
    """A fetch asking for Int32.max bytes and naming one partition 40 times got every byte of it
    40 times over (a partition with 100 MB would have passed the int32 frame size and killed the
    broker). `fetch.max.bytes` caps the response as Kafka does: the first batch still comes whole
    (KIP-74), and nothing past the cap."""
    b = BrokerProcess(str(tmp_path / "data"), extra_args=["--set", "fetch.max.bytes=1024"])
    b.start()
    try:
        create_topic(b, "capped")
        conn = wire.Conn(b.port)
        for i in range(3):
            conn.send(wire.request(0, 3, i, wire.produce_v3("capped", 0, wire.record_batch([b"x" * 8000]))))
            assert wire.parse_produce_v3_response(conn.recv_frame())[1][0][2] == 0
        partition = struct.pack(">iqi", 0, 0, 2**31 - 1)
        fetch = struct.pack(">iiiib", -1, 0, 1, 2**31 - 1, 0) + struct.pack(">i", 1) + wire.string("capped")
        fetch += struct.pack(">i", 40) + partition * 40
        conn.send(wire.request(1, 4, 9, fetch))
        payload = conn.recv_frame()
        pos = 4 + 4  # correlation id, throttle time
        (topics,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        record_bytes = 0
        for _ in range(topics):
            (n,) = struct.unpack_from(">h", payload, pos)
            pos += 2 + n
            (partitions,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            for _ in range(partitions):
                pos += 4 + 2 + 8 + 8
                (aborted,) = struct.unpack_from(">i", payload, pos)
                pos += 4 + max(aborted, 0) * 16
                (size,) = struct.unpack_from(">i", payload, pos)
                pos += 4 + max(size, 0)
                record_bytes += max(size, 0)
        assert partitions == 40
        assert 8000 < record_bytes < 2 * 8100, f"{record_bytes} record bytes for a 1024-byte cap"
        assert_still_serves(b)
    finally:
        b.stop()


def test_a_group_id_too_long_for_the_offsets_key_is_invalid_group_id(broker):
    """A flexible request's group id may be longer than the int16 string `__consumer_offsets`
    keys hold; stored cut short, two such groups would share offsets after a reload. Refused as
    INVALID_GROUP_ID (24), as Kafka fails to write it, and the broker goes on serving."""
    create_topic(broker, "long-group")
    conn = wire.Conn(broker.port)
    partition = struct.pack(">iqi", 0, 1, -1) + b"\x01" + b"\x00"  # index, offset, leader epoch, null metadata, tags
    topic = wire.compact_string("long-group") + wire.uvarint(2) + partition + b"\x00"
    for group, expected in (("g" * 40000, 24), ("g" * 100, 0)):
        body = wire.compact_string(group) + struct.pack(">i", -1) + wire.compact_string("") + b"\x00"
        body += wire.uvarint(2) + topic + b"\x00"
        conn.send(wire.flexible_request(8, 8, 5, body))
        payload = conn.recv_frame()
        pos = 4 + 1 + 4  # correlation id, tags, throttle time
        _, pos = wire.read_uvarint(payload, pos)  # topics + 1
        n, pos = wire.read_uvarint(payload, pos)
        pos += n - 1
        _, pos = wire.read_uvarint(payload, pos)  # partitions + 1
        (index, error) = struct.unpack_from(">ih", payload, pos)
        assert (index, error) == (0, expected), group[:10]
    assert_still_serves(broker)
