"""The tern CLI and load generator against a real tern broker, and interop with kcat both ways."""
import json
import subprocess
import time

from conftest import TERN_BIN, kcat


def tern(broker, *args, input_bytes=None, check=True, timeout=120):
    res = subprocess.run([TERN_BIN, *args, "-b", broker.bootstrap], input=input_bytes, capture_output=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"tern {args} failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
    return res


def test_topic_commands(broker):
    tern(broker, "topic", "create", "cli-t", "-p", "4", "-c", "retention.ms=600000")
    listed = tern(broker, "topic", "list").stdout.decode()
    assert any(line.split()[:2] == ["cli-t", "4"] for line in listed.splitlines())
    assert "__consumer_offsets" not in listed
    assert "__consumer_offsets" in tern(broker, "topic", "list", "--internal").stdout.decode()
    described = tern(broker, "topic", "describe", "cli-t").stdout.decode()
    assert "PARTITIONS 4" in described and "HIGH-WATERMARK" in described
    tern(broker, "topic", "alter-config", "cli-t", "--set", "retention.ms=1000", "--set", "cleanup.policy=compact")
    bad = tern(broker, "topic", "alter-config", "cli-t", "--set", "retention.ms=soon", check=False)
    assert bad.returncode != 0 and b"INVALID_CONFIG" in bad.stderr
    again = tern(broker, "topic", "create", "cli-t", check=False)
    assert again.returncode != 0 and b"TOPIC_ALREADY_EXISTS" in again.stderr
    tern(broker, "topic", "delete", "cli-t")
    assert "cli-t" not in tern(broker, "topic", "list").stdout.decode()


def test_tern_produce_read_by_kcat(broker):
    tern(broker, "topic", "create", "to-kcat", "-p", "2")
    lines = [f"k{i}:value {i}" for i in range(50)]
    tern(broker, "produce", "to-kcat", "-k", ":", "-H", "origin=tern", input_bytes=("\n".join(lines) + "\n").encode())
    out = kcat("-b", broker.bootstrap, "-t", "to-kcat", "-C", "-e", "-o", "beginning", "-f", "%k|%s|%h\n").decode()
    got = sorted(out.splitlines())
    assert got == sorted(f"k{i}|value {i}|origin=tern" for i in range(50))


def test_kcat_produce_read_by_tern(broker):
    lines = [f"key{i}\tpayload-{i}" for i in range(40)]
    kcat("-b", broker.bootstrap, "-t", "from-kcat", "-P", "-K", "\t", "-H", "via=kcat", "-z", "lz4",
         input_bytes=("\n".join(lines) + "\n").encode())
    out = tern(broker, "consume", "from-kcat", "-e", "-f", "%k=%v %h\\n").stdout.decode()
    assert sorted(out.splitlines()) == sorted(f"key{i}=payload-{i} via=kcat" for i in range(40))
    # From an offset and for one partition only.
    one = tern(broker, "consume", "from-kcat", "-p", "0", "-o", "1", "-e", "-f", "%p:%o\\n").stdout.decode().split()
    assert one and all(x.startswith("0:") and int(x.split(":")[1]) >= 1 for x in one)


def test_consume_with_group_commits_and_group_commands(broker):
    tern(broker, "topic", "create", "grp-t", "-p", "3")
    tern(broker, "produce", "grp-t", input_bytes=b"".join(f"m{i}\n".encode() for i in range(30)))
    first = tern(broker, "consume", "grp-t", "-g", "cli-group", "-e").stdout.decode().split()
    assert sorted(first) == sorted(f"m{i}" for i in range(30))
    tern(broker, "produce", "grp-t", input_bytes=b"n1\nn2\n")
    second = tern(broker, "consume", "grp-t", "-g", "cli-group", "-e").stdout.decode().split()
    assert sorted(second) == ["n1", "n2"], "the group resumed at its commits"
    assert "cli-group" in tern(broker, "group", "list").stdout.decode()
    described = tern(broker, "group", "describe", "cli-group").stdout.decode()
    assert "LAG" in described and "grp-t" in described
    tern(broker, "group", "reset-offsets", "cli-group", "-t", "grp-t", "--to-earliest")
    replay = tern(broker, "consume", "grp-t", "-g", "cli-group", "-e").stdout.decode().split()
    assert len(replay) == 32


def test_cluster_info(broker):
    out = tern(broker, "cluster", "info").stdout.decode()
    assert "CONTROLLER  0" in out and str(broker.port) in out


def high_watermarks(broker, topic):
    out = tern(broker, "topic", "describe", topic).stdout.decode().splitlines()
    rows = [l.split() for l in out if l and l[0].isdigit()]
    return sum(int(r[3]) for r in rows)


def test_bench_produce_and_consume_json(broker, tmp_path):
    report = tmp_path / "report.html"
    produced = json.loads(tern(broker, "bench", "produce", "-t", "bench-t", "--partitions", "3", "-n", "20000",
                               "--record-size", "50", "--json", "--report", str(report)).stdout)
    assert produced["records"] == 20000 and produced["errors"] == 0
    assert produced["recordsPerSec"] > 0 and produced["mbPerSec"] > 0
    assert 0 < produced["latencyMs"]["p50"] <= produced["latencyMs"]["p99"] <= produced["latencyMs"]["max"]
    assert high_watermarks(broker, "bench-t") == 20000
    html = report.read_text()
    assert "<svg" in html and "Latency over time" in html and "percentile" in html
    consumed = json.loads(tern(broker, "bench", "consume", "-t", "bench-t", "-n", "20000", "--json").stdout)
    assert consumed["records"] == 20000 and consumed["mbPerSec"] > 0
    e2e = json.loads(tern(broker, "bench", "e2e", "-t", "bench-e2e", "-n", "5000", "--rate", "20000", "--json").stdout)
    assert e2e["records"] == 5000 and e2e["latencyMs"]["p50"] > 0


def test_acks_takes_kafkas_spellings(broker):
    """`--acks all` and `--acks -1` (not only `--acks=-1`) as Kafka's tools accept them."""
    total = 0
    for spelling in (["--acks", "all"], ["--acks", "-1"], ["--acks", "0"]):
        out = json.loads(tern(broker, "bench", "produce", "-t", "bench-acks", "-n", "1000", "--record-size", "10",
                              *spelling, "--json").stdout)
        assert out["records"] == 1000 and out["errors"] == 0, spelling
        total += 1000
    tern(broker, "produce", "bench-acks", "--acks", "-1", input_bytes=b"one\ntwo\n")
    wait_until = time.time() + 10
    while high_watermarks(broker, "bench-acks") < total + 2 and time.time() < wait_until:
        time.sleep(0.1)
    assert high_watermarks(broker, "bench-acks") == total + 2


def test_one_partition_keeps_the_order_it_was_produced_in(broker):
    """`tern produce` keeps up to five requests in flight; a partition's batches must still be
    written in the order they were sealed (they raced to the socket once, and 100 lines came back
    as 91–99, 0–90)."""
    topic = "order-kept"
    tern(broker, "topic", "create", topic, "-p", "1")
    lines = b"".join(b"line %06d %s\n" % (i, b"x" * 40) for i in range(100_000))
    codecs = ["none", "gzip", "lz4", "zstd"]
    for codec in codecs:
        tern(broker, "produce", topic, "--compression", codec, input_bytes=lines)
    assert tern(broker, "consume", topic, "-o", "start", "-e").stdout == lines * len(codecs)


def test_every_codec_from_the_tern_client_reads_back_everywhere(broker):
    """The native client compresses with each of Kafka's codecs (snappy in snappy-java framing);
    the broker validates them, and kcat (librdkafka 2.0.2), kafka-python and tern read them back."""
    from kafka import KafkaConsumer

    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        topic = f"codec-{codec}"
        tern(broker, "topic", "create", topic, "-p", "1")
        lines = b"".join(b"%s value %d\n" % (codec.encode(), i) for i in range(100))
        tern(broker, "produce", topic, "--compression", codec, input_bytes=lines)
        assert kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q") == lines
        assert tern(broker, "consume", topic, "-o", "start", "-e").stdout == lines
        consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
        assert b"".join(m.value + b"\n" for m in consumer) == lines
        consumer.close()
