"""Malformed input gets an error response or a closed connection; the broker keeps serving and
loses nothing already written."""
import os
import struct

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition

import wire


def write_known_data(bootstrap, n=50):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(n):
        p.produce("safe", value=f"keep-{i}".encode(), partition=0)
    assert p.flush(30) == 0


def read_values(bootstrap, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition("safe", 0, OFFSET_BEGINNING)])
    out = []
    for _ in range(200):
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append(m.value().decode())
        if len(out) >= n:
            break
    c.close()
    return out


def assert_still_serving(broker):
    conn = wire.Conn(broker.port)
    conn.send(wire.request(18, 0, 42, b""))
    payload = conn.recv_frame()
    assert payload is not None, "broker stopped answering ApiVersions"
    corr, err = struct.unpack_from(">ih", payload)
    assert (corr, err) == (42, 0)
    conn.close()
    assert broker.alive()


def test_absurd_and_negative_lengths_close_the_connection(broker):
    for size in (0x7FFFFFFF, -5, 3):
        conn = wire.Conn(broker.port)
        conn.send(struct.pack(">i", size) + b"\x00" * 16)
        assert conn.closed_by_peer(), f"size {size} was not refused"
        conn.close()
    assert_still_serving(broker)


def test_truncated_request_closes_the_connection(broker):
    conn = wire.Conn(broker.port)
    # A Metadata v1 frame whose body says one topic follows, but stops there.
    payload = struct.pack(">hhi", 3, 1, 7) + wire.string("c") + struct.pack(">i", 1)
    conn.send(struct.pack(">i", len(payload)) + payload)
    assert conn.closed_by_peer()
    conn.close()
    assert_still_serving(broker)


def test_unknown_api_key_and_version(broker):
    conn = wire.Conn(broker.port)
    conn.send(wire.request(999, 0, 1, b""))
    assert conn.closed_by_peer()
    conn.close()
    conn = wire.Conn(broker.port)
    conn.send(wire.request(3, 99, 1, b""))  # Metadata v99
    assert conn.closed_by_peer()
    conn.close()
    assert_still_serving(broker)


def test_unsupported_api_versions_version_gets_v0_error_reply(broker):
    conn = wire.Conn(broker.port)
    conn.send(wire.request(18, 77, 5, b""))
    payload = conn.recv_frame()
    corr, err, count = struct.unpack_from(">ihi", payload)
    assert (corr, err) == (5, 35)  # UNSUPPORTED_VERSION, with our ranges so the client can retry
    keys = [struct.unpack_from(">hhh", payload, 10 + 6 * i) for i in range(count)]
    assert (18, 0, 4) in keys and (0, 0, 12) in keys
    conn.close()


def test_garbage_bytes(broker):
    for seed in range(5):
        conn = wire.Conn(broker.port)
        junk = os.urandom(2000)
        conn.send(struct.pack(">i", len(junk)) + junk)
        conn.recv_frame()  # whatever the broker says (most likely it closes), it must not die
        conn.close()
    assert_still_serving(broker)


def test_corrupt_batch_is_refused_and_nothing_is_lost(broker):
    write_known_data(broker.bootstrap)
    conn = wire.Conn(broker.port)
    good = wire.record_batch([b"good"])
    bad = bytearray(good)
    bad[-3] ^= 0xFF  # CRC no longer matches
    conn.send(wire.request(0, 3, 11, wire.produce_v3("safe", 0, bytes(bad))))
    corr, results = wire.parse_produce_v3_response(conn.recv_frame())
    assert corr == 11 and results == [("safe", 0, 2, -1)]  # CORRUPT_MESSAGE
    # A batch cut short, and one with magic 1, are refused too.
    conn.send(wire.request(0, 3, 12, wire.produce_v3("safe", 0, good[:-4])))
    assert wire.parse_produce_v3_response(conn.recv_frame())[1][0][2] == 2
    old = bytearray(good)
    old[16] = 1
    conn.send(wire.request(0, 3, 13, wire.produce_v3("safe", 0, bytes(old))))
    assert wire.parse_produce_v3_response(conn.recv_frame())[1][0][2] == 87  # INVALID_RECORD, as Kafka answers Produce v3+ with magic < 2
    # The connection still works: a good batch lands right after the 50 records.
    conn.send(wire.request(0, 3, 14, wire.produce_v3("safe", 0, good)))
    assert wire.parse_produce_v3_response(conn.recv_frame()) == (14, [("safe", 0, 0, 50)])
    conn.close()
    values = read_values(broker.bootstrap, 51)
    assert values == [f"keep-{i}" for i in range(50)] + ["good"]


def test_pipelined_requests_answer_in_order(broker):
    conn = wire.Conn(broker.port)
    batch = wire.record_batch([b"p"])
    frames = b""
    for i in range(20):
        # Alternate two kinds of request; the Produce names a topic that does not exist (an error reply).
        frames += wire.request(18, 0, 100 + 2 * i, b"")
        frames += wire.request(0, 3, 101 + 2 * i, wire.produce_v3("pipe", 0, batch))
    conn.send(frames)
    seen = [struct.unpack_from(">i", conn.recv_frame())[0] for _ in range(40)]
    assert seen == list(range(100, 140))
    conn.close()
