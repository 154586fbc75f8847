"""The noisy neighbour: a confluent-kafka (librdkafka) producer writing 10 KB records to topic
heavy-rd as fast as it can, acks=all, for SECONDS. Usage: heavy_librdkafka.py HOST:PORT SECONDS"""
import sys, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 5, "acks": "all", "queue.buffering.max.kbytes": 1048576})
v = b"x" * 10240
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    try:
        p.produce("heavy-rd", v)
        n += 1
    except BufferError:
        p.poll(0.001)
    if n % 1000 == 0:
        p.poll(0)
p.flush(30)
print(f"heavy: {n} records, {n*10240/float(sys.argv[2])/1e6:.0f} MB/s offered")
