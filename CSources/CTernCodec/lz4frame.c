// LZ4 frame codec: Kafka's "lz4" compression is the LZ4 frame format (not raw blocks).
#include "CTernCodec.h"
#include <lz4frame.h>
#include <string.h>

size_t tern_lz4f_compress_bound(size_t src_len) { return LZ4F_compressFrameBound(src_len, NULL); }

ssize_t tern_lz4f_compress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    // Independent blocks without content checksum: what Kafka's Java and Python clients write.
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t n = LZ4F_compressFrame(dst, dst_cap, src, src_len, &prefs);
    if (LZ4F_isError(n)) return -1;
    return (ssize_t)n;
}

ssize_t tern_lz4f_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
    LZ4F_dctx *ctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) return -1;
    const char *in = src;
    char *out = dst;
    size_t in_left = src_len, produced = 0;
    ssize_t result = -1;
    for (;;) {
        size_t in_size = in_left, out_size = dst_cap - produced;
        size_t hint = LZ4F_decompress(ctx, out + produced, &out_size, in, &in_size, NULL);
        if (LZ4F_isError(hint)) break;
        in += in_size;
        in_left -= in_size;
        produced += out_size;
        if (hint == 0) { // frame complete
            result = (ssize_t)produced;
            break;
        }
        if (produced == dst_cap) {
            result = -2;
            break;
        }
        if (in_size == 0 && out_size == 0) break; // truncated input
    }
    LZ4F_freeDecompressionContext(ctx);
    return result;
}
