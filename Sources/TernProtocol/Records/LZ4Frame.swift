import CTernIO
import NIOCore

/// Kafka's lz4 codec (the LZ4 frame format) through the C core.
public enum LZ4Frame {
    public enum Error: Swift.Error { case compressFailed, corrupt, tooLarge }

    /// Largest decompressed batch accepted: Kafka's default max message size is far below this.
    public static let maxDecompressedSize = 256 << 20

    public static func compress(_ input: ByteBuffer) throws -> ByteBuffer {
        let bound = tern_lz4f_compress_bound(input.readableBytes)
        var out = ByteBuffer()
        out.reserveCapacity(bound)
        let written = input.withUnsafeReadableBytes { src in
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { dst in
                let n = tern_lz4f_compress(src.baseAddress, src.count, dst.baseAddress, dst.count)
                return n < 0 ? 0 : n
            }
        }
        guard written > 0 || input.readableBytes == 0 else { throw Error.compressFailed }
        return out
    }

    public static func decompress(_ input: ByteBuffer) throws -> ByteBuffer {
        var capacity = max(input.readableBytes * 4, 4096)
        while true {
            var out = ByteBuffer()
            var result = 0
            input.withUnsafeReadableBytes { src in
                _ = out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { dst in
                    result = tern_lz4f_decompress(src.baseAddress, src.count, dst.baseAddress, capacity)
                    return max(result, 0)
                }
            }
            if result >= 0 { return out }
            guard result == -2 else { throw Error.corrupt }
            capacity *= 4
            guard capacity <= maxDecompressedSize else { throw Error.tooLarge }
        }
    }
}
