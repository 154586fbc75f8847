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


def uvarint(n):
    """An unsigned varint (compact lengths and tagged-field counts of flexible versions)."""
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def read_uvarint(buf, pos):
    """→ (value, position after it)"""
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def flexible_request(api_key, version, correlation_id, body, client_id="wire-test"):
    """Request header v2 (classic client id, empty tagged fields) + body, length-prefixed."""
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id) + b"\x00" + body
    return struct.pack(">i", len(payload)) + payload


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
    corr, parts = _parse_produce_response(payload, with_v8_fields=False)
    return corr, [p[:4] for p in parts]


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


def record(value, key=None, offset_delta=0, ts_delta=0, headers=()):
    """One v2 record, varint framed."""
    def var_bytes(b):
        return varint(-1) if b is None else varint(len(b)) + b
    body = b"\x00" + varint(ts_delta) + varint(offset_delta) + var_bytes(key) + var_bytes(value) + varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk + var_bytes(hv)
    return varint(len(body)) + body


def batch(records_bytes, count, *, last_offset_delta=None, base_offset=0, attributes=0, pid=-1, epoch=-1, seq=-1,
          base_ts=None, max_ts=None):
    """A v2 batch around already encoded (and maybe compressed) records, every header field settable,
    with a correct CRC-32C — so only the broker's deeper validation can refuse it."""
    ts = int(time.time() * 1000) if base_ts is None else base_ts
    lod = count - 1 if last_offset_delta is None else last_offset_delta
    after_crc = struct.pack(">hiqqqhii", attributes, lod, ts, ts if max_ts is None else max_ts, pid, epoch, seq, count)
    after_crc += records_bytes
    crc = crc32c.crc32c(after_crc)
    return struct.pack(">qiibI", base_offset, 4 + 1 + 4 + len(after_crc), -1, 2, crc) + after_crc


def produce_v8(topic, partition, records, acks=-1, transactional_id=None):
    body = string(transactional_id) + struct.pack(">hi", acks, 10000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return body


def _read_nullable_string(payload, pos):
    n, = struct.unpack_from(">h", payload, pos)
    pos += 2
    if n < 0:
        return None, pos
    return payload[pos:pos + n].decode(), pos + n


def parse_produce_v8_response(payload):
    """→ (correlation id, [(topic, partition, error, base offset, [(batch index, message)], error message)])"""
    return _parse_produce_response(payload, with_v8_fields=True)


def _parse_produce_response(payload, with_v8_fields):
    """Produce v3 response (or v8, which adds log start offset, record errors and a message)."""
    corr, = struct.unpack_from(">i", payload, 0)
    pos = 4
    out = []
    ntopics, = struct.unpack_from(">i", payload, pos)
    pos += 4
    for _ in range(ntopics):
        name, pos = _read_nullable_string(payload, pos)
        nparts, = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(nparts):
            idx, err, base, _append_time = struct.unpack_from(">ihqq", payload, pos)
            pos += 22
            record_errors, message = [], None
            if with_v8_fields:
                pos += 8  # log start offset
                nerr, = struct.unpack_from(">i", payload, pos)
                pos += 4
                for _ in range(max(nerr, 0)):
                    bi, = struct.unpack_from(">i", payload, pos)
                    msg, pos = _read_nullable_string(payload, pos + 4)
                    record_errors.append((bi, msg))
                message, pos = _read_nullable_string(payload, pos)
            out.append((name, idx, err, base, record_errors, message))
    return corr, out


def delete_records_v0(topic, partition, offset):
    return struct.pack(">i", 1) + string(topic) + struct.pack(">iiqi", 1, partition, offset, 10000)


def parse_delete_records_v0_response(payload):
    """→ [(topic, partition, low watermark, error)]"""
    pos = 8  # correlation id, throttle time
    ntopics, = struct.unpack_from(">i", payload, pos)
    pos += 4
    out = []
    for _ in range(ntopics):
        name, pos = _read_nullable_string(payload, pos)
        nparts, = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(nparts):
            idx, low, err = struct.unpack_from(">iqh", payload, pos)
            pos += 14
            out.append((name, idx, low, err))
    return out


def metadata_v1(topics=None):
    if topics is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
