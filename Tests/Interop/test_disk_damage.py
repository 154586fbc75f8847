"""On-disk damage is detected, reported in the log, and never served or trapped on (issue 9).

Each test writes data with a real client, stops the broker, damages one file the way a bad disk,
an operator or a half-finished copy could, restarts, and reads everything back with kcat.
"""
import glob
import os
import struct

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import kcat


def produce_lines(broker, topic, lines):
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", input_bytes=b"".join(l + b"\n" for l in lines))


def consume_all(broker, topic):
    return kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q").splitlines()


def create(broker, name, config=None):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config or {})])[name].result(timeout=30)


def test_corrupt_metadata_file_falls_back_to_its_backup(broker):
    create(broker, "meta-a")
    create(broker, "meta-b")
    produce_lines(broker, "meta-a", [b"kept"])
    create(broker, "meta-c")  # the backup now holds meta-a and meta-b
    broker.stop()
    with open(os.path.join(broker.data_dir, "tern-metadata.json"), "wb") as f:
        f.write(b'{"clusterId": "x", "topics": [{"name": ')  # torn write
    broker.start()
    assert "using the previous version" in broker.logs()
    assert consume_all(broker, "meta-a") == [b"kept"]
    listed = kcat("-b", broker.bootstrap, "-L").decode()
    assert "meta-b" in listed


def test_log_start_offset_beyond_the_end_is_clamped(broker):
    create(broker, "lso")
    produce_lines(broker, "lso", [b"a", b"b"])
    broker.stop()
    with open(os.path.join(broker.data_dir, "lso-0", "log-start-offset"), "w") as f:
        f.write("5000\n")
    broker.start()
    assert "clamping" in broker.logs()
    produce_lines(broker, "lso", [b"c"])
    assert consume_all(broker, "lso")[-1] == b"c", "new records are readable"


def test_wrong_index_of_a_sealed_segment_is_rebuilt(broker):
    create(broker, "idx", {"segment.bytes": "4096", "index.interval.bytes": "128"})
    lines = [b"value-%05d" % i for i in range(2000)]
    for start in range(0, len(lines), 100):
        produce_lines(broker, "idx", lines[start:start + 100])
    broker.stop()
    indexes = sorted(glob.glob(os.path.join(broker.data_dir, "idx-0", "*.index")))
    assert len(indexes) > 2
    # Well-formed (increasing) entries that point at the wrong places.
    with open(indexes[1], "wb") as f:
        for i in range(20):
            f.write(struct.pack(">II", i * 5 + 2, i * 151 + 7))
    broker.start()
    assert "rebuilding" in broker.logs()
    assert consume_all(broker, "idx") == lines


def test_corrupt_producer_state_is_reported_and_rebuilt(broker):
    create(broker, "pstate")
    produce_lines(broker, "pstate", [b"x"])
    broker.stop()
    with open(os.path.join(broker.data_dir, "pstate-0", "producer-state.json"), "wb") as f:
        f.write(b"\x00garbage")
    broker.start()
    assert "unreadable producer state" in broker.logs()
    produce_lines(broker, "pstate", [b"y"])
    assert consume_all(broker, "pstate") == [b"x", b"y"]


def test_full_disk_refuses_writes_keeps_acknowledged_data_and_recovers(tmp_path):
    """A small tmpfs as the log directory: produce until the disk is full. The producer sees
    KAFKA_STORAGE_ERROR, everything acknowledged stays readable, and once space is freed writes
    resume without a restart."""
    import subprocess
    import time

    import pytest

    import wire
    from conftest import BrokerProcess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    broker = None
    try:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (6 << 20))
        broker = BrokerProcess(str(mount / "data"), extra_args=["--set", "log.segment.bytes=4194304"])
        broker.start()
        create(broker, "full")
        conn = wire.Conn(broker.port)
        acked, errors, value = [], set(), b"v" * 50_000
        for i in range(1000):
            payload = b"%06d" % i + value
            conn.send(wire.request(0, 3, i, wire.produce_v3("full", 0, wire.record_batch([payload]), acks=-1)))
            _, parts = wire.parse_produce_v3_response(conn.recv_frame())
            err = parts[0][2]
            if err == 0:
                acked.append(payload[:6])
            else:
                errors.add(err)
                if len(errors) and i > len(acked) + 5:
                    break
        assert errors == {56}, f"expected KAFKA_STORAGE_ERROR only, got {errors}"
        assert len(acked) > 50
        assert broker.alive()
        read = [line[:6] for line in consume_all(broker, "full")]
        assert read == acked, "every acknowledged record readable, nothing else"
        filler.unlink()
        ok = False
        for attempt in range(20):
            conn.send(wire.request(0, 3, 5000 + attempt, wire.produce_v3("full", 0, wire.record_batch([b"after-space-freed"]), acks=-1)))
            _, parts = wire.parse_produce_v3_response(conn.recv_frame())
            if parts[0][2] == 0:
                ok = True
                break
            time.sleep(0.2)
        assert ok, "writes resume once space is freed"
        assert consume_all(broker, "full")[-1] == b"after-space-freed"
    finally:
        if broker:
            broker.stop()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
