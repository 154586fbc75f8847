"""kill -9 at random points while an acks=all producer writes with flush-per-batch: every
acknowledged record survives, in order, exactly once, and no corrupt batch is ever served."""
import os
import random
import shutil
import signal
import tempfile
import threading
import time

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition

from conftest import BrokerProcess

KILLS = 20


def produce_until_killed(bootstrap, run_id, killed, acked):
    """Produces numbered values as fast as possible; records (offset, value) of each ack."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                  "message.send.max.retries": 0,  # a retried batch could legitimately duplicate
                  "enable.idempotence": False, "message.timeout.ms": 800, "socket.timeout.ms": 800})
    lock = threading.Lock()

    def report(err, msg):
        if err is None:
            with lock:
                acked.append((msg.offset(), msg.value()))

    i = 0
    while not killed.is_set():
        try:
            p.produce("durable", value=f"{run_id}-{i}".encode(), partition=0, on_delivery=report)
            i += 1
        except BufferError:
            pass
        # Paced (a few thousand records/s) so checking every record afterwards stays quick.
        p.poll(0)
        time.sleep(0.0002)
    p.flush(2)  # what was in flight at the kill fails after message.timeout.ms: not acked


def test_acked_records_survive_repeated_kill_9():
    root = tempfile.mkdtemp(prefix="tern-kill-")
    broker = BrokerProcess(os.path.join(root, "data"), ["--set", "log.flush.interval.messages=1"])
    rng = random.Random(1234)
    acked = []
    try:
        broker.start()
        for run in range(KILLS):
            killed = threading.Event()
            t = threading.Thread(target=produce_until_killed, args=(broker.bootstrap, run, killed, acked))
            t.start()
            time.sleep(rng.uniform(0.2, 0.9))
            broker.stop(signal.SIGKILL)
            killed.set()
            t.join()
            broker.start()
        assert len(acked) > 2000, "the producer should have been acknowledged many times"

        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False,
                      "check.crcs": True, "enable.partition.eof": True})
        c.assign([TopicPartition("durable", 0, OFFSET_BEGINNING)])
        stored = []
        while True:
            m = c.poll(5)
            assert m is not None, "consumer stalled"
            if m.error():
                assert m.error().code() == -191, m.error()  # _PARTITION_EOF
                break
            stored.append((m.offset(), m.value()))
        c.close()
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)

    offsets = [o for o, _ in stored]
    assert offsets == list(range(len(stored))), "offsets must be dense and ordered"
    values = [v for _, v in stored]
    assert len(values) == len(set(values)), "a value was stored twice"
    by_offset = dict(stored)
    for offset, value in acked:
        assert by_offset.get(offset) == value, f"acked record {value!r} at {offset} lost or moved"
    # Within each producer run, acknowledged values appear in the order they were sent.
    position = {v: o for o, v in stored}
    for run in range(KILLS):
        mine = [v for _, v in acked if v.startswith(f"{run}-".encode())]
        seq = [int(v.split(b"-")[1]) for v in sorted(mine, key=lambda v: position[v])]
        assert seq == sorted(seq)
