"""Seeds of the in-process `broker` fuzz target from the captured request corpus: each captured
frame becomes one raw step (0xFF, a big-endian UInt16 length, the frame without its size prefix).

    python3 Tests/Fuzz/broker_seeds.py Tests/Fuzz/corpus/request OUT_DIR
"""
import hashlib
import os
import sys


def steps(data):
    out, pos = b"", 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        if size < 0 or pos + 4 + size > len(data):
            break
        frame, pos = data[pos + 4:pos + 4 + size], pos + 4 + size
        if len(frame) <= 0xFFFF:
            out += b"\xff" + len(frame).to_bytes(2, "big") + frame
    return out


if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source)):
        with open(os.path.join(source, name), "rb") as f:
            seed = steps(f.read())
        if seed:
            with open(os.path.join(target, hashlib.sha1(seed).hexdigest()[:16]), "wb") as f:
                f.write(seed)
