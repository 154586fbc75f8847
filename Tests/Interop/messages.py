"""A deterministic message set with keys, headers and binary values, and the order checks."""
from collections import defaultdict


def make_messages(n, prefix="m"):
    out = []
    for i in range(n):
        key = f"{prefix}-key-{i % 17}".encode()
        # Binary values, including every byte value and an empty one, to prove byte-exactness.
        value = bytes((i * 7 + j) % 256 for j in range(i % 300)) + f"|{prefix}-{i}".encode()
        headers = [("idx", str(i).encode()), ("bin", bytes([0, 255, i % 256]))]
        out.append((key, value, headers))
    return out


def by_partition(records):
    """records: iterable of (partition, offset, key, value, headers) → {partition: [(offset, key, value, headers)]}"""
    parts = defaultdict(list)
    for p, o, k, v, h in records:
        parts[p].append((o, k, v, h))
    for p in parts:
        parts[p].sort()
    return parts


def assert_same_per_partition(produced, consumed):
    """Every produced record comes back once, at its acknowledged offset, in per-partition order."""
    want = by_partition(produced)
    got = by_partition(consumed)
    assert sorted(want) == sorted(got), f"partitions differ: {sorted(want)} vs {sorted(got)}"
    for p in want:
        assert [o for o, *_ in got[p]] == [o for o, *_ in want[p]], f"offsets differ in partition {p}"
        assert got[p] == want[p], f"records differ in partition {p}"
