"""aiokafka 0.14 (ApiVersions v0 only, never flexible) against a real tern broker process."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def round_trip(bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="lz4")
    await producer.start()
    sent = []
    for i in range(50):
        md = await producer.send_and_wait("aio", f"v{i}".encode(), key=f"k{i % 3}".encode(), headers=[("h", b"x")])
        sent.append((md.partition, md.offset, f"v{i}".encode()))
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition("aio", p) for p in range(3)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    got = []
    for _ in range(60):
        for _, msgs in (await consumer.getmany(timeout_ms=500)).items():
            got += [(m.partition, m.offset, m.value) for m in msgs if m.headers == (("h", b"x"),)]
        if len(got) >= 50:
            break
    ends = await consumer.end_offsets(tps)
    await consumer.stop()
    return sent, got, ends


def test_aiokafka_round_trip(broker):
    sent, got, ends = asyncio.run(round_trip(broker.bootstrap))
    assert sorted(got) == sorted(sent)
    for tp, end in ends.items():
        assert end == sum(1 for p, *_ in sent if p == tp.partition)
