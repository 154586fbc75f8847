"""kcat (Debian, librdkafka 2.0.2: old and strict about ApiVersions) against a real tern broker."""
import pytest

from conftest import kcat

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def produce_lines(bootstrap, topic, lines, *extra):
    kcat("-b", bootstrap, "-t", topic, "-P", "-K", "\t", *extra, input_bytes=("\n".join(lines) + "\n").encode())


def consume(bootstrap, topic, fmt="%p\t%o\t%k\t%s\t%h\n"):
    out = kcat("-b", bootstrap, "-t", topic, "-C", "-e", "-o", "beginning", "-f", fmt)
    return [l.split("\t") for l in out.decode().splitlines() if l]


def test_metadata_lists_broker_and_topics(broker):
    produce_lines(broker.bootstrap, "kc-md", ["k\tv"])
    out = kcat("-b", broker.bootstrap, "-L").decode()
    assert f"broker 0 at {broker.bootstrap}" in out
    assert 'topic "kc-md" with 3 partitions' in out


def test_keys_headers_order_three_partitions(broker):
    lines = [f"key{i % 11}\tvalue-{i}" for i in range(300)]
    # Auto-created with num.partitions=3; headers on every message.
    produce_lines(broker.bootstrap, "kc-order", lines, "-H", "src=kcat", "-H", "n=1")
    rows = consume(broker.bootstrap, "kc-order")
    assert len(rows) == 300
    assert {r[0] for r in rows} == {"0", "1", "2"}
    # Per partition: offsets 0..n-1, and values in the order they were produced.
    for p in ("0", "1", "2"):
        part = [r for r in rows if r[0] == p]
        assert [int(r[1]) for r in part] == list(range(len(part)))
        values = [r[3] for r in part]
        assert values == sorted(values, key=lambda v: int(v.split("-")[1]))
        assert all(r[4] == "src=kcat,n=1" for r in part)
    assert sorted(r[3] for r in rows) == sorted(l.split("\t")[1] for l in lines)
    # The same key always lands in the same partition.
    key_parts = {}
    for r in rows:
        key_parts.setdefault(r[2], set()).add(r[0])
    assert all(len(s) == 1 for s in key_parts.values())


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trips(broker, codec):
    topic = f"kc-{codec}"
    lines = [f"k{i}\t{'x' * (i % 50)}payload-{i}" for i in range(200)]
    produce_lines(broker.bootstrap, topic, lines, "-z", codec)
    rows = consume(broker.bootstrap, topic, fmt="%k\t%s\n")
    assert sorted("\t".join(r) for r in rows) == sorted(lines)


def test_restart_keeps_data_and_offsets_query(broker):
    lines = [f"k{i}\tv{i}" for i in range(90)]
    produce_lines(broker.bootstrap, "kc-restart", lines)
    before = consume(broker.bootstrap, "kc-restart")
    broker.restart()
    after = consume(broker.bootstrap, "kc-restart")
    assert sorted(before) == sorted(after) and len(after) == 90
    # kcat -Q: offset for timestamp far in the past = earliest = 0 for every partition.
    out = kcat("-b", broker.bootstrap, "-Q", "-t", "kc-restart:0:1", "-t", "kc-restart:1:1", "-t", "kc-restart:2:1").decode()
    assert out.count("offset 0") == 3, out
