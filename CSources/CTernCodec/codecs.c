// gzip, snappy and zstd, in the framings Kafka record batches carry them. The decompressors write
// only into the caller's buffer and allocate at most a fixed-size context, whatever sizes the input
// claims: a batch is untrusted until it has been decompressed.
#include "CTernCodec.h"
#include <limits.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

// ---- gzip ----

// zlib counts in uInt: feed it at most this much per call so lengths past 4 GiB stay correct.
static const size_t z_chunk = UINT_MAX;

static uInt z_avail(size_t left) { return left < z_chunk ? (uInt)left : (uInt)z_chunk; }

// compressBound is deflate's bound at default parameters plus the 6-byte zlib wrapper; the gzip
// wrapper zlib writes is 18 bytes.
size_t tern_gzip_compress_bound(size_t src_len) { return compressBound(src_len) - 6 + 18; }

ssize_t tern_gzip_compress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    // Default level, window and memory: what GZIPOutputStream writes, and what the bound assumes.
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    const Bytef *in = src;
    Bytef *out = dst;
    size_t in_left = src_len, produced = 0;
    ssize_t result = -1;
    for (;;) {
        uInt in_avail = z_avail(in_left), out_avail = z_avail(dst_cap - produced);
        z.next_in = (Bytef *)in;
        z.avail_in = in_avail;
        z.next_out = out_avail ? out + produced : NULL;
        z.avail_out = out_avail;
        int rc = deflate(&z, in_left <= z_chunk ? Z_FINISH : Z_NO_FLUSH);
        size_t used = in_avail - z.avail_in, made = out_avail - z.avail_out;
        in += used;
        in_left -= used;
        produced += made;
        if (rc == Z_STREAM_END) {
            result = (ssize_t)produced;
            break;
        }
        if ((rc != Z_OK && rc != Z_BUF_ERROR) || (used == 0 && made == 0)) break; // out of room
    }
    deflateEnd(&z);
    return result;
}

static ssize_t gzip_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap, int several_members);

ssize_t tern_gzip_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    return gzip_decompress(src, src_len, dst, dst_cap, 1);
}

ssize_t tern_gzip_decompress_one_member(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    return gzip_decompress(src, src_len, dst, dst_cap, 0);
}

static ssize_t gzip_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap, int several_members) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    // 16 + MAX_WBITS: gzip wrapper only (no zlib or raw deflate); zlib's memory is its state and a
    // 32 KiB window.
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return -1;
    const Bytef *in = src;
    Bytef *out = dst;
    // Once dst is full inflate gets this one spare byte instead: if it writes into it, the output
    // would exceed dst_cap (-2); if it cannot move, the input is truncated (-1). This tells the two
    // apart even when the input ends exactly where dst does.
    Bytef spare;
    size_t in_left = src_len, produced = 0;
    ssize_t result = -1;
    for (;;) {
        uInt in_avail = z_avail(in_left);
        int full = produced == dst_cap;
        uInt out_avail = full ? 1 : z_avail(dst_cap - produced);
        z.next_in = (Bytef *)in;
        z.avail_in = in_avail;
        z.next_out = full ? &spare : out + produced;
        z.avail_out = out_avail;
        int rc = inflate(&z, Z_NO_FLUSH);
        size_t used = in_avail - z.avail_in, made = out_avail - z.avail_out;
        in += used;
        in_left -= used;
        if (full && made) {
            result = -2;
            break;
        }
        if (!full) produced += made;
        if (rc == Z_STREAM_END) {
            if (in_left == 0) {
                result = (ssize_t)produced;
                break;
            }
            // Another member follows. GZIPInputStream reads them all, librdkafka only the first:
            // data a producer sends is refused (-3) so that every consumer reads the same
            // records; stored data is read as Java reads it. Bytes that are not a gzip header
            // fail in the next inflate, so trailing garbage is rejected.
            if (!several_members) {
                result = -3;
                break;
            }
            if (inflateReset(&z) != Z_OK) break;
            continue;
        }
        if (rc != Z_OK || (used == 0 && made == 0)) break; // corrupt, or truncated
    }
    inflateEnd(&z);
    return result;
}

// ---- snappy ----

// snappy-java's stream header, which Kafka's Java producer writes: this magic, then int32 BE version
// and int32 BE minimum compatible version, then blocks of [int32 BE length][raw snappy block].
static const unsigned char xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
enum { xerial_header_len = 16, xerial_block_input = 32 * 1024 }; // snappy-java's default block size

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t tern_snappy_compress_bound(size_t src_len) {
    size_t full = src_len / xerial_block_input, rest = src_len % xerial_block_input;
    size_t bound = xerial_header_len + full * (4 + snappy_max_compressed_length(xerial_block_input));
    if (rest) bound += 4 + snappy_max_compressed_length(rest);
    return bound;
}

// snappy_compress refuses any room below snappy_max_compressed_length, so a dst_cap under the bound
// can fail even when the output would have fit (LZ4F_compressFrame behaves the same).
ssize_t tern_snappy_compress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    const char *in = src;
    unsigned char *out = dst;
    if (dst_cap < xerial_header_len) return -1;
    memcpy(out, xerial_magic, 8);
    memcpy(out + 8, "\0\0\0\1\0\0\0\1", 8);
    size_t pos = xerial_header_len;
    for (size_t done = 0; done < src_len;) {
        size_t n = src_len - done < xerial_block_input ? src_len - done : xerial_block_input;
        if (dst_cap - pos < 4) return -1;
        size_t block_len = dst_cap - pos - 4;
        if (snappy_compress(in + done, n, (char *)out + pos + 4, &block_len) != SNAPPY_OK) return -1;
        out[pos] = (unsigned char)(block_len >> 24);
        out[pos + 1] = (unsigned char)(block_len >> 16);
        out[pos + 2] = (unsigned char)(block_len >> 8);
        out[pos + 3] = (unsigned char)block_len;
        pos += 4 + block_len;
        done += n;
    }
    return (ssize_t)pos;
}

// One raw snappy block into dst. The block's leading varint says how much it makes; checking that
// against the room first means snappy never writes (or is asked to write) past dst_cap.
static ssize_t snappy_block(const char *src, size_t len, char *dst, size_t dst_cap) {
    size_t n;
    if (snappy_uncompressed_length(src, len, &n) != SNAPPY_OK) return -1;
    // Only call it "too big" when the block is otherwise sound, so a caller does not retry garbage.
    if (n > dst_cap) return snappy_validate_compressed_buffer(src, len) == SNAPPY_OK ? -2 : -1;
    size_t out_len = dst_cap;
    if (snappy_uncompress(src, len, dst, &out_len) != SNAPPY_OK) return -1;
    return (ssize_t)out_len;
}

ssize_t tern_snappy_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    const unsigned char *in = src;
    char spare, *out = dst_cap ? (char *)dst : &spare; // never a NULL dst, even for zero bytes
    // librdkafka and sarama write a bare snappy block. A valid one cannot start with the magic: after
    // the length varint (0x82 'S') comes 'N', a copy tag, and a block cannot open with a copy.
    if (src_len < 8 || memcmp(in, xerial_magic, 8) != 0) return snappy_block(src, src_len, out, dst_cap);
    if (src_len < xerial_header_len) return -1;
    // The two version words are not checked: librdkafka and kafka-python skip them, and some
    // producers (Redpanda) have written them little-endian.
    size_t pos = xerial_header_len, produced = 0;
    while (pos < src_len) {
        if (src_len - pos < 4) return -1;
        uint32_t block_len = be32(in + pos);
        // snappy-java reads a second stream header where a block length would be: concatenated streams.
        if (block_len == be32(xerial_magic)) {
            if (src_len - pos < xerial_header_len || memcmp(in + pos, xerial_magic, 8) != 0) return -1;
            pos += xerial_header_len;
            continue;
        }
        pos += 4;
        if (block_len > src_len - pos) return -1;
        ssize_t n = snappy_block((const char *)in + pos, block_len, out + produced, dst_cap - produced);
        if (n < 0) return n;
        produced += (size_t)n;
        pos += block_len;
    }
    return (ssize_t)produced;
}

// ---- zstd ----

size_t tern_zstd_compress_bound(size_t src_len) { return ZSTD_compressBound(src_len); }

// Like snappy, zstd may need more room than its output takes (it keeps slack for a raw-block fallback).
ssize_t tern_zstd_compress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    size_t n = ZSTD_compress(dst, dst_cap, src, src_len, 3); // level 3: zstd's and Kafka's default
    return ZSTD_isError(n) ? -1 : (ssize_t)n;
}

ssize_t tern_zstd_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    // No frame at all is as corrupt as a torn one (gzip and snappy reject empty input too).
    if (src_len == 0) return -1;
    // Walk the frames first: only zstd1 and skippable frames, whole. libzstd is often built to also
    // decode the pre-1.0 "legacy" formats, with older code and contexts of their own (Debian's does);
    // no Kafka client writes them.
    const unsigned char *in = src;
    for (size_t pos = 0; pos < src_len;) {
        if (src_len - pos < 4) return -1;
        const unsigned char *p = in + pos;
        uint32_t magic = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (magic != ZSTD_MAGICNUMBER && (magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START) return -1;
        size_t frame = ZSTD_findFrameCompressedSize(p, src_len - pos); // checks block sizes against the input
        if (ZSTD_isError(frame)) return -1;
        pos += frame;
    }
    // One-shot decompression decodes every frame (and skips skippable ones) straight into dst, with
    // dst as the window, so the only allocation is the fixed-size context. The streaming API would
    // allocate the window the frame header asks for (up to 128 MiB), and the content size in the
    // header is never used to size anything.
    ZSTD_DCtx *ctx = ZSTD_createDCtx();
    if (!ctx) return -1;
    size_t n = ZSTD_decompressDCtx(ctx, dst, dst_cap, src, src_len);
    ZSTD_freeDCtx(ctx);
    if (!ZSTD_isError(n)) return (ssize_t)n;
    return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? -2 : -1;
}
