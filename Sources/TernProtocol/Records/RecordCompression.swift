import CTernCodec
import NIOCore

/// The compression codecs of Kafka record batches, through the C core.
///
/// Decompression never allocates more than the caller's `limit`: a small batch that expands to
/// gigabytes (a "zip bomb") fails with `RecordBatchError.decompressedTooLarge` instead. The output
/// buffer starts near the input's size and grows by 4× up to the limit, so an honest batch costs
/// one or two attempts and a bomb at most ~1.3 × `limit` of work.
public enum RecordCompression {
    /// Largest decompressed body of one batch. Kafka has no such limit; clients cap batches at about
    /// 1 MB compressed, and 64× that covers any real data (text compresses 5–20×).
    public static let defaultDecompressedLimit = 64 << 20

    public static func decompress(_ input: ByteBuffer, codec: CompressionCodec, limit: Int = defaultDecompressedLimit) throws -> ByteBuffer {
        let decode: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
        switch codec {
        case .none: return input
        case .gzip: decode = { tern_gzip_decompress($0, $1, $2, $3) }
        case .snappy: decode = { tern_snappy_decompress($0, $1, $2, $3) }
        case .lz4: decode = { tern_lz4f_decompress($0, $1, $2, $3) }
        case .zstd: decode = { tern_zstd_decompress($0, $1, $2, $3) }
        }
        var capacity = min(limit, max(input.readableBytes * 4, 4096))
        while true {
            var out = ByteBuffer()
            var result = 0
            input.withUnsafeReadableBytes { src in
                _ = out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { dst in
                    result = decode(src.baseAddress, src.count, dst.baseAddress, capacity)
                    return max(result, 0)
                }
            }
            if result >= 0 { return out }
            guard result == -2 else { throw RecordBatchError.corruptCompression(codec) }
            guard capacity < limit else { throw RecordBatchError.decompressedTooLarge(limit: limit) }
            capacity = min(limit, capacity * 4)
        }
    }

    public static func compress(_ input: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        let bound: Int
        let encode: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
        switch codec {
        case .none: return input
        case .gzip: (bound, encode) = (tern_gzip_compress_bound(input.readableBytes), { tern_gzip_compress($0, $1, $2, $3) })
        case .snappy: (bound, encode) = (tern_snappy_compress_bound(input.readableBytes), { tern_snappy_compress($0, $1, $2, $3) })
        case .lz4: (bound, encode) = (tern_lz4f_compress_bound(input.readableBytes), { tern_lz4f_compress($0, $1, $2, $3) })
        case .zstd: (bound, encode) = (tern_zstd_compress_bound(input.readableBytes), { tern_zstd_compress($0, $1, $2, $3) })
        }
        var out = ByteBuffer()
        var result = 0
        input.withUnsafeReadableBytes { src in
            _ = out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { dst in
                result = encode(src.baseAddress, src.count, dst.baseAddress, bound)
                return max(result, 0)
            }
        }
        guard result >= 0 else { throw RecordBatchError.compressionFailed(codec) }
        return out
    }
}
