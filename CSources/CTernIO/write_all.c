// Positional writes and syncs that finish what the kernel started: EINTR is retried and a short
// write continued, so only a real error (or a kernel that takes nothing more) reaches the caller.
#include "CTernIO.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024  // Linux's UIO_MAXIOV
#endif

ssize_t tern_pwritev_rest(int fd, const struct iovec *iov, int iovcnt, uint64_t offset, size_t done) {
    if (iovcnt <= 0) return (ssize_t)done;
    struct iovec *rest = malloc(sizeof(struct iovec) * (size_t)iovcnt);
    if (!rest) return -ENOMEM;
    memcpy(rest, iov, sizeof(struct iovec) * (size_t)iovcnt);
    // Skip what is already written: whole buffers, then the start of the first one left.
    int first = 0;
    size_t skip = done;
    while (first < iovcnt && skip >= rest[first].iov_len) skip -= rest[first++].iov_len;
    if (first < iovcnt) {
        rest[first].iov_base = (char *)rest[first].iov_base + skip;
        rest[first].iov_len -= skip;
    }
    ssize_t result = (ssize_t)done;
    while (first < iovcnt) {
        int count = iovcnt - first > IOV_MAX ? IOV_MAX : iovcnt - first;
        ssize_t n = pwritev(fd, rest + first, count, (off_t)(offset + (uint64_t)result));
        if (n < 0) {
            if (errno == EINTR) continue;
            result = -errno;
            break;
        }
        if (n == 0) break;  // no progress: the caller sees a short write
        result += n;
        size_t left = (size_t)n;
        while (first < iovcnt && left >= rest[first].iov_len) left -= rest[first++].iov_len;
        if (first < iovcnt) {
            rest[first].iov_base = (char *)rest[first].iov_base + left;
            rest[first].iov_len -= left;
        }
    }
    free(rest);
    return result;
}

int tern_fdatasync(int fd) {
    while (fdatasync(fd) != 0) {
        if (errno != EINTR) return -errno;
    }
    return 0;
}
