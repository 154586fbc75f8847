// CTernCodec: the C half of the wire format: CRC32C and the compression codecs Kafka batches use.
// Linked by the protocol library and so by every client; it needs no io_uring.
#ifndef CTERNCODEC_H
#define CTERNCODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- CRC32C (Castagnoli), as used by Kafka record batches v2 ----

/// Extends `crc` (start with 0) over `len` bytes. Uses SSE4.2 when the CPU has it.
uint32_t tern_crc32c(uint32_t crc, const void *data, size_t len);
/// 1 when the hardware path is in use (for logs and tests).
int tern_crc32c_hardware(void);

// ---- LZ4 frame (Kafka's lz4 codec is the LZ4 frame format) ----

/// Worst-case compressed size for `src_len` bytes.
size_t tern_lz4f_compress_bound(size_t src_len);
/// Compresses into dst. Returns compressed size, or a negative value on error.
ssize_t tern_lz4f_compress(const void *src, size_t src_len, void *dst, size_t dst_cap);
/// Decompresses a full frame into dst. Returns decompressed size, or a negative value on error
/// (-2 when dst is too small).
ssize_t tern_lz4f_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap);

// ---- gzip, snappy, zstd (as Kafka batches carry them) ----
// gzip: RFC 1952 members, as GZIPOutputStream writes; several concatenated members are one stream.
// snappy: snappy-java's framing (magic, two version words, [int32 BE length][raw block]...), as
// Kafka's Java client writes; decompress also takes one bare snappy block, as librdkafka writes.
// zstd: standard frames, possibly concatenated.

/// Each decompress writes at most dst_cap bytes. Returns the decompressed size, -2 when the output
/// would exceed dst_cap (caller may retry bigger, up to its own cap), -1 when the input is corrupt
/// or truncated (trailing bytes included). Never reads past src_len, never writes past dst_cap, never
/// allocates more than a small fixed amount (no allocation proportional to a size the input claims).
ssize_t tern_gzip_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap);
// As tern_gzip_decompress, but data after the first gzip member is refused with -3.
ssize_t tern_gzip_decompress_one_member(const void *src, size_t src_len, void *dst, size_t dst_cap);
ssize_t tern_snappy_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap);
ssize_t tern_zstd_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap);
/// Compress for producers and tests; bound gives the worst-case output size; compress returns the
/// compressed size, or -1 (always succeeds with dst_cap >= bound; below it, snappy and zstd may fail
/// even when the output would fit).
size_t tern_gzip_compress_bound(size_t src_len);
ssize_t tern_gzip_compress(const void *src, size_t src_len, void *dst, size_t dst_cap);
size_t tern_snappy_compress_bound(size_t src_len);
ssize_t tern_snappy_compress(const void *src, size_t src_len, void *dst, size_t dst_cap);
size_t tern_zstd_compress_bound(size_t src_len);
ssize_t tern_zstd_compress(const void *src, size_t src_len, void *dst, size_t dst_cap);

#ifdef __cplusplus
}
#endif
#endif
