"""Idempotent producers: retries across broker restarts never duplicate or drop records."""
import signal
import threading
import time

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition
from kafka import KafkaProducer

N = 20000


def read_all(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    while True:
        m = c.poll(5)
        assert m is not None, "consumer stalled"
        if m.error():
            if m.error().code() == -191:
                break
            continue
        out.append(m.value().decode())
    c.close()
    return out


def test_confluent_idempotent_producer_across_restarts(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                  "batch.num.messages": 200, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    errors = []
    done = threading.Event()

    def produce():
        for i in range(N):
            while True:
                try:
                    p.produce("idem", value=str(i).encode(), partition=0,
                              on_delivery=lambda err, _m: errors.append(err) if err else None)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
            if i % 100 == 0:
                time.sleep(0.01)  # spread the stream (~2 s) over the restarts
        p.flush(60)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.5)
    assert not done.is_set()
    broker.restart()  # SIGTERM: in-flight requests are cut, the client retries
    time.sleep(0.5)
    assert not done.is_set(), "the stream should still be running at the crash"
    broker.stop(signal.SIGKILL)  # a crash: producer state is rebuilt from the log
    broker.start()
    t.join(timeout=120)
    assert done.is_set(), "producer did not finish"
    assert not errors, errors[:3]
    values = read_all(broker.bootstrap, "idem")
    assert values == [str(i) for i in range(N)], "duplicates or gaps in the partition"


def test_kafka_python_idempotent_producer(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
    futures = [producer.send("kp-idem", value=f"v{i}".encode(), partition=0) for i in range(500)]
    producer.flush()
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    assert offsets == list(range(500))
    assert read_all(broker.bootstrap, "kp-idem") == [f"v{i}" for i in range(500)]
