// io_uring wrapper: batched positional writev with optionally linked fdatasync, reads, syncs.
// Completions are reaped before each call returns, so buffer ownership never outlives a call.
#include "CTernIO.h"
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

struct tern_ring {
    struct io_uring ring;
    unsigned entries;
};

tern_ring *tern_ring_create(unsigned entries, int *err) {
    tern_ring *r = calloc(1, sizeof(*r));
    if (!r) {
        if (err) *err = -ENOMEM;
        return NULL;
    }
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) {
        free(r);
        if (err) *err = rc;
        return NULL;
    }
    r->entries = entries;
    if (err) *err = 0;
    return r;
}

void tern_ring_destroy(tern_ring *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

// Waits for `want` completions, storing each result by its user_data index.
static int reap(tern_ring *r, unsigned want, ssize_t *results) {
    unsigned got = 0;
    int first_err = 0;
    while (got < want) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&r->ring, &cqe);
        if (rc == -EINTR) continue;
        if (rc < 0) return rc;
        uint64_t idx = io_uring_cqe_get_data64(cqe);
        if (results) results[idx] = cqe->res;
        if (cqe->res < 0 && !first_err) first_err = cqe->res;
        io_uring_cqe_seen(&r->ring, cqe);
        got++;
    }
    return first_err;
}

static struct io_uring_sqe *next_sqe(tern_ring *r) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) {
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

int tern_ring_submit_appends(tern_ring *r, tern_append *a, int count) {
    // Each append needs up to two SQEs and a link chain must not be split across submissions.
    if (count <= 0) return 0;
    if ((unsigned)count * 2 > r->entries) return -EINVAL;
    // Two completion slots per append: the write and its (optional) linked sync.
    ssize_t stack_results[64];
    ssize_t *results = count * 2 <= 64 ? stack_results : malloc(sizeof(ssize_t) * (size_t)count * 2);
    if (!results) return -ENOMEM;
    unsigned pending = 0;
    for (int i = 0; i < count; i++) {
        struct io_uring_sqe *sqe = next_sqe(r);
        if (!sqe) return -EBUSY;
        io_uring_prep_writev(sqe, a[i].fd, a[i].iov, (unsigned)a[i].iovcnt, a[i].offset);
        io_uring_sqe_set_data64(sqe, (uint64_t)i * 2);
        pending++;
        results[i * 2 + 1] = 0;
        if (a[i].sync) {
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *s2 = next_sqe(r);
            if (!s2) return -EBUSY;
            io_uring_prep_fsync(s2, a[i].fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(s2, (uint64_t)i * 2 + 1);
            if (a[i].link_next && i + 1 < count) s2->flags |= IOSQE_IO_LINK;
            pending++;
        } else if (a[i].link_next && i + 1 < count) {
            sqe->flags |= IOSQE_IO_LINK;
        }
    }
    int rc = io_uring_submit(&r->ring);
    if (rc < 0) {
        if (results != stack_results) free(results);
        return rc;
    }
    rc = reap(r, pending, results);
    (void)rc; // per-append results carry the errors
    for (int i = 0; i < count; i++) {
        ssize_t w = results[i * 2];
        ssize_t s = results[i * 2 + 1];
        a[i].result = w < 0 ? w : (s < 0 ? s : w);
    }
    if (results != stack_results) free(results);
    return 0;
}

ssize_t tern_ring_writev_at(tern_ring *r, int fd, const struct iovec *iov, int iovcnt, uint64_t offset,
                            int sync) {
    tern_append a = {.fd = fd, .iov = iov, .iovcnt = iovcnt, .offset = offset, .sync = sync, .link_next = 0, .result = 0};
    int rc = tern_ring_submit_appends(r, &a, 1);
    return rc < 0 ? rc : a.result;
}

ssize_t tern_ring_read_at(tern_ring *r, int fd, void *buf, size_t len, uint64_t offset) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (!sqe) return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, offset);
    io_uring_sqe_set_data64(sqe, 0);
    int rc = io_uring_submit(&r->ring);
    if (rc < 0) return rc;
    ssize_t res = 0;
    rc = reap(r, 1, &res);
    return res;
}

int tern_ring_fdatasync(tern_ring *r, int fd) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (!sqe) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, 0);
    int rc = io_uring_submit(&r->ring);
    if (rc < 0) return rc;
    ssize_t res = 0;
    rc = reap(r, 1, &res);
    return (int)res;
}
