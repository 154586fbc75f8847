"""Broker process lifecycle: graceful stop on SIGTERM, data kept across SIGKILL."""
import signal

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition


def produce_acked(bootstrap, topic, n, **conf):
    acked = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", **conf})
    for i in range(n):
        p.produce(topic, value=f"{topic}-{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: acked.append(msg.offset()) if err is None else None)
    assert p.flush(30) == 0
    return sorted(acked)


def read_partition0(bootstrap, topic, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    for _ in range(300):
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append((m.offset(), m.value().decode()))
        if len(out) >= n:
            break
    c.close()
    return out


def test_sigterm_stops_cleanly_and_keeps_data(broker):
    acked = produce_acked(broker.bootstrap, "life", 100)
    assert broker.stop(signal.SIGTERM) == 0
    assert "stopped" in broker.logs()
    broker.start()
    assert read_partition0(broker.bootstrap, "life", 100) == [(o, f"life-{o}") for o in acked]


def test_acked_data_survives_kill_9(broker):
    acked = produce_acked(broker.bootstrap, "crash", 200)
    broker.stop(signal.SIGKILL)
    broker.start()
    got = read_partition0(broker.bootstrap, "crash", 200)
    assert got == [(o, f"crash-{o}") for o in acked]
    # And the log continues at the right offset after recovery.
    more = produce_acked(broker.bootstrap, "crash", 5)
    assert more == list(range(200, 205))
