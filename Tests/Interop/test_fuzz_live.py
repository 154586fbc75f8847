"""`tern-fuzz live` against real broker processes: a single broker and a broker of a 3-broker
cluster each take generated and mutated requests for every advertised API and version, with
topics, groups and an open transaction in place; after every case a fresh connection must get
ApiVersions within 1 s, every broker process must be alive, and RSS and descriptors stay bounded.

CI runs a bounded slice with fixed seeds (so a failure replays); `make fuzz-live` runs long ones
with new seeds (TERN_FUZZ_LIVE_CASES, TERN_FUZZ_LIVE_CLUSTER_CASES, TERN_FUZZ_LIVE_SEED).
A finding leaves the last 64 cases in the test's findings directory, as inputs of the in-process
`broker` target: `tern-fuzz broker DIR` replays them.
"""
import os
import re
import subprocess

from cluster import Cluster
from conftest import TERN_BIN, running_broker

FUZZ_BIN = os.environ.get("TERN_FUZZ_BIN", os.path.join(os.path.dirname(TERN_BIN), "tern-fuzz"))
CORPUS = os.path.join(os.path.dirname(__file__), "..", "Fuzz", "corpus", "request")
CASES = int(os.environ.get("TERN_FUZZ_LIVE_CASES", "12000"))
CLUSTER_CASES = int(os.environ.get("TERN_FUZZ_LIVE_CLUSTER_CASES", "6000"))
SEED = int(os.environ.get("TERN_FUZZ_LIVE_SEED", "21"))


def crash_sites(brokers):
    """The fatal error and the first Tern frames of each crashed broker's backtrace."""
    out = []
    for b in brokers:
        log = b.logs()
        fatal = re.findall(r".*(?:Fatal error|runtime failure).*", log)
        frames = re.findall(r"in tern at (/\S*/Sources/\S+)", log.split("crashed:", 1)[1]) if "crashed:" in log else []
        if fatal or frames:
            out.append(f"broker {b.port}: {fatal[:1]} at {frames[:6]}")
    return "\n".join(out)


def fuzz(brokers, cases, seed, findings, replication_factor):
    args = [FUZZ_BIN, "live", "--brokers", ",".join(b.bootstrap for b in brokers),
            "--pids", ",".join(str(b.proc.pid) for b in brokers), "--cases", str(cases), "--seed", str(seed),
            "--corpus", CORPUS, "--findings", findings, "--replication-factor", str(replication_factor)]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120 + cases // 20)
    print(res.stdout)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{crash_sites(brokers)}"
    assert f"{cases} cases, 0 findings" in res.stdout
    assert all(b.alive() for b in brokers)


def test_a_single_broker_survives_generated_and_mutated_requests_of_every_api():
    with running_broker() as b:
        fuzz([b], CASES, SEED, os.path.join(b.root, "findings"), replication_factor=1)


def test_a_cluster_survives_generated_and_mutated_requests_of_every_api():
    cluster = Cluster(3)
    try:
        brokers = list(cluster.brokers.values())
        fuzz(brokers, CLUSTER_CASES, SEED + 1, os.path.join(cluster.root, "findings"), replication_factor=3)
    finally:
        cluster.stop()
