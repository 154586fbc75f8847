"""Just enough of the Kafka wire format to send hand-made (and malformed) requests."""
import socket
import struct
import time

import crc32c


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, correlation_id, body, client_id="wire-test"):
    """Request header v1 + body, length-prefixed."""
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id) + body
    return struct.pack(">i", len(payload)) + payload


def varint(n):
    n = (n << 1) ^ (n >> 63)
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def record_batch(values, timestamp=None):
    """A valid uncompressed v2 record batch with the given values (no keys, no headers)."""
    ts = timestamp or int(time.time() * 1000)
    records = b""
    for i, v in enumerate(values):
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        records += varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, ts, ts, -1, -1, -1, len(values)) + records
    crc = crc32c.crc32c(after_crc)
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), -1, 2, crc) + after_crc


def produce_v3(topic, partition, records, acks=1):
    body = string(None) + struct.pack(">hi", acks, 10000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return body


def parse_produce_v3_response(payload):
    """→ (correlation id, [(topic, partition, error, base offset)])"""
    corr, = struct.unpack_from(">i", payload, 0)
    pos = 4
    out = []
    ntopics, = struct.unpack_from(">i", payload, pos)
    pos += 4
    for _ in range(ntopics):
        nlen, = struct.unpack_from(">h", payload, pos)
        name = payload[pos + 2:pos + 2 + nlen].decode()
        pos += 2 + nlen
        nparts, = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(nparts):
            idx, err, base, _append_time = struct.unpack_from(">ihqq", payload, pos)
            pos += 22
            out.append((name, idx, err, base))
    return corr, out


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """The next response payload, or None when the broker closed the connection."""
        head = self._recv_exact(4)
        if head is None:
            return None
        size, = struct.unpack(">i", head)
        return self._recv_exact(size)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def closed_by_peer(self):
        return self.recv_frame() is None

    def close(self):
        self.sock.close()
