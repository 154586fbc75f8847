"""Prometheus metrics on the broker's /metrics endpoint."""
import re
import time
import urllib.request

from confluent_kafka.admin import AdminClient

from conftest import kcat


def scrape(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def value(text, pattern):
    m = re.search(pattern + r"\s+([0-9.e+]+)", text)
    return float(m.group(1)) if m else None


def test_metrics_count_traffic_latency_connections_and_sizes(broker):
    lines = "\n".join(f"k{i}:{'v' * 90}" for i in range(100)) + "\n"
    kcat("-b", broker.bootstrap, "-t", "metered", "-P", "-K", ":", input_bytes=lines.encode())
    kcat("-b", broker.bootstrap, "-t", "metered", "-C", "-e", "-o", "beginning", "-q")
    time.sleep(6)  # gauges are sampled every 5 s
    text = scrape(broker)
    assert value(text, r'tern_records_in_total\{topic="metered"\}') == 100
    assert value(text, r'tern_bytes_in_total\{topic="metered"\}') > 9000
    assert value(text, r'tern_bytes_out_total\{topic="metered"\}') > 9000
    assert re.search(r'tern_request_duration_seconds_count\{api="produce"\}\s+[1-9]', text)
    assert re.search(r'tern_request_duration_seconds_bucket\{api="fetch",le=', text)
    assert value(text, r"tern_connections_active") is not None
    assert value(text, r'tern_log_size_bytes\{topic="metered"\}') > 9000
    # Unknown paths are 404, and the endpoint keeps answering.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/nope", timeout=10)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    assert "tern_records_in_total" in scrape(broker)
    # A deleted topic's series go (the next sample drops them): creating and deleting topics cannot
    # grow the registry.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics(["metered"])["metered"].result(30)
    time.sleep(6)
    text = scrape(broker)
    assert 'topic="metered"' not in text, [line for line in text.splitlines() if "metered" in line]
