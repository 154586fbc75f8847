"""Wall-clock steps, through the clock shim `tern verify --nemesis clock` preloads into brokers
(libTernClockShim.so, built beside tern). The shim moves a process's wall clock and nothing else;
a broker whose wall clock is stepped stamps LogAppendTime with it, never hands a producer id out
twice across a restart after the clock went back, and — as a leader whose clock ran ahead — still
drops a silent follower from the ISR in time."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

import wire
from cluster import Cluster, wait_for
from conftest import TERN_BIN, kcat, running_broker

SHIM = os.path.join(os.path.dirname(os.path.realpath(TERN_BIN)), "libTernClockShim.so")

pytestmark = pytest.mark.skipif(not os.path.exists(SHIM), reason=f"{SHIM} not built (swift build --product TernClockShim)")


def set_offset(path, seconds):
    """As tern verify does: a rename, so the shim never reads half a number."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{seconds}\n")
    os.replace(tmp, path)


def shimmed(offset_file):
    return dict(os.environ, LD_PRELOAD=SHIM, TERN_CLOCK_OFFSET_FILE=str(offset_file))


# Answers each line on stdin with the times it sees: Python's clock_gettime(CLOCK_REALTIME) and
# CLOCK_MONOTONIC, and the C library's gettimeofday and time; "sleep" first sleeps half a second.
CHILD = r"""
import ctypes, json, sys, time
libc = ctypes.CDLL(None)
class timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]
libc.time.restype = ctypes.c_long
for line in sys.stdin:
    if line.strip() == "sleep":
        time.sleep(0.5)
    tv = timeval()
    libc.gettimeofday(ctypes.byref(tv), None)
    print(json.dumps({"wall": time.time(), "mono": time.monotonic(), "tod": tv.tv_sec + tv.tv_usec / 1e6,
                      "time": libc.time(None)}), flush=True)
"""


def test_the_shim_moves_the_wall_clock_and_nothing_else(tmp_path):
    offset = tmp_path / "clock"
    set_offset(offset, 0)
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=shimmed(offset))

    def ask(command="now"):
        child.stdin.write(command + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    try:
        first = ask()
        assert abs(first["wall"] - time.time()) < 2
        set_offset(offset, -1800)
        time.sleep(0.3)  # the shim re-reads its file at most every 100 ms
        back = ask()
        for clock in ("wall", "tod", "time"):
            assert abs(back[clock] - (time.time() - 1800)) < 2, (clock, back)
        assert 0 < back["mono"] - first["mono"] < 5, "monotonic time is not moved"
        # A sleep lasts what it says, whatever the wall clock did.
        started = time.monotonic()
        slept = ask("sleep")
        assert 0.45 < time.monotonic() - started < 2
        assert 0.45 < slept["mono"] - back["mono"] < 2
        # A damaged file keeps the offset it had.
        with open(offset, "w") as f:
            f.write("soon\n")
        time.sleep(0.3)
        assert abs(ask()["wall"] - (time.time() - 1800)) < 2
        set_offset(offset, 600)
        time.sleep(0.3)
        assert abs(ask()["wall"] - (time.time() + 600)) < 2
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the futures are done
    for f in admin.create_topics([topic]).values():
        f.result(timeout=30)


@pytest.fixture
def shimmed_broker():
    def env(root):
        set_offset(os.path.join(root, "clock"), 0)
        return shimmed(os.path.join(root, "clock"))

    with running_broker(env) as b:
        b.offset_file = os.path.join(b.root, "clock")
        yield b


def test_log_append_time_follows_the_brokers_wall_clock(shimmed_broker):
    b = shimmed_broker
    create_topic(b.bootstrap, NewTopic("appended", 1, 1, config={"message.timestamp.type": "LogAppendTime"}))

    def produce_and_read(value, index):
        p = Producer({"bootstrap.servers": b.bootstrap})
        p.produce("appended", value=value, timestamp=1_000)
        assert p.flush(30) == 0
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "clock", "enable.auto.commit": False})
        c.assign([TopicPartition("appended", 0, OFFSET_BEGINNING)])
        messages = []
        deadline = time.time() + 30
        while len(messages) <= index and time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                messages.append(m)
        c.close()
        assert messages[index].value() == value
        return messages[index].timestamp()

    set_offset(b.offset_file, 3600)
    time.sleep(0.3)
    kind, ms = produce_and_read(b"ahead", 0)
    assert kind == 2, "LogAppendTime"  # TIMESTAMP_LOG_APPEND_TIME
    assert abs(ms / 1000 - (time.time() + 3600)) < 30, ms
    set_offset(b.offset_file, -3600)
    time.sleep(0.3)
    _, behind = produce_and_read(b"behind", 1)
    assert abs(behind / 1000 - (time.time() - 3600)) < 30, behind
    # librdkafka 2.0.2 (kcat) reads the same broker-given stamps.
    out = kcat("-b", b.bootstrap, "-C", "-t", "appended", "-o", "beginning", "-e", "-q", "-f", "%T %s\n")
    assert out.decode().split() == [str(ms), "ahead", str(behind), "behind"], out


def init_producer_id(port):
    """InitProducerId v1 without a transactional id: a fresh idempotent producer's id."""
    conn = wire.Conn(port)
    conn.send(wire.request(22, 1, 1, struct.pack(">h", -1) + struct.pack(">i", 60000)))
    resp = conn.recv_frame()
    conn.close()
    _corr, _throttle, error, pid, epoch = struct.unpack_from(">iihqh", resp, 0)
    assert error == 0 and epoch == 0, error
    return pid


def test_producer_ids_never_repeat_after_the_clock_went_back(shimmed_broker):
    """Partitions remember producer ids; a new producer handed a remembered one has its first
    batch taken for a duplicate. A broker restarted after its clock was stepped back an hour —
    with ids counted from the wall clock — handed out ids from an hour ago."""
    b = shimmed_broker
    before = [init_producer_id(b.port) for _ in range(50)]
    assert before == sorted(before) and len(set(before)) == len(before)
    b.stop()
    set_offset(b.offset_file, -3600)
    b.start()
    after = [init_producer_id(b.port) for _ in range(50)]
    assert min(after) > max(before), (min(after), max(before))
    # Idempotent producers of two clients write on with fresh ids, and every record is there.
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
    p.produce("after-the-step", value=b"confluent")
    assert p.flush(30) == 0
    kp = KafkaProducer(bootstrap_servers=b.bootstrap, enable_idempotence=True, acks="all")
    kp.send("after-the-step", b"kafka-python").get(timeout=30)
    kp.close()
    out = kcat("-b", b.bootstrap, "-C", "-t", "after-the-step", "-o", "beginning", "-e", "-q")
    assert sorted(out.decode().split()) == ["confluent", "kafka-python"], out


@pytest.fixture
def shimmed_pair():
    """Two brokers under the shim, with a broker session long enough that a paused follower
    stays registered: only the leader's lag check can take it out of the ISR."""
    root = tempfile.mkdtemp(prefix="tern-clock-offsets-")
    offsets = {n: os.path.join(root, f"clock-{n}") for n in (1, 2)}
    for path in offsets.values():
        set_offset(path, 0)
    c = Cluster(2, extra_args=["--set", "broker.session.timeout.ms=60000", "--set", "replica.lag.time.max.ms=2000"],
                env=lambda n: shimmed(offsets[n]))
    c.offsets = offsets
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_leader_whose_clock_ran_ahead_still_drops_a_silent_follower(shimmed_pair):
    c = shimmed_pair
    create_topic(c.bootstrap, NewTopic("lagging", 1, 2))

    def partition():
        md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics(topic="lagging", timeout=10)
        p = md.topics["lagging"].partitions.get(0)
        return p if p is not None and p.leader >= 0 and len(p.isrs) == 2 else None

    p, _ = wait_for("lagging-0 led with both replicas in sync", partition)
    leader, follower = p.leader, next(r for r in p.replicas if r != p.leader)
    producer = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "message.timeout.ms": 15000})
    producer.produce("lagging", value=b"before")
    assert producer.flush(20) == 0
    # The leader's clock an hour ahead while the follower fetches, then the follower falls
    # silent, then the clock is put right.
    set_offset(c.offsets[leader], 3600)
    time.sleep(1.5)
    os.kill(c.brokers[follower].proc.pid, signal.SIGSTOP)
    try:
        set_offset(c.offsets[leader], 0)
        errors = []
        started = time.time()
        producer.produce("lagging", value=b"after", on_delivery=lambda err, _msg: errors.append(err))
        producer.flush(20)
        took = time.time() - started
        assert errors == [None], f"acks=all waited for a follower silent {took:.1f} s: {errors}"
        assert took < 10, took
    finally:
        os.kill(c.brokers[follower].proc.pid, signal.SIGCONT)
