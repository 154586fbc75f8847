// io_uring wrapper: batched positional writev with optionally linked fdatasync (group commit).
//
// Invariant: every call returns with the submission queue empty and every request it submitted
// reaped, so no SQE ever outlives the buffers it points at. Transient refusals of io_uring_enter
// (EINTR, EAGAIN, EBUSY) and short submissions are retried; results are per request (the caller
// fails exactly the affected appends). A refusal that leaves requests the kernel may still run
// with no way to collect them is a broken ring: the process aborts rather than let the kernel
// write from or into memory that is about to be freed.
#include "CTernIO.h"
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tern_ring {
    struct io_uring ring;
    unsigned entries;
    // Test-only fault injection (tern_ring_inject_faults): each counter makes that many upcoming
    // calls misbehave as the kernel may.
    tern_ring_faults faults;
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
    // Completions can never be lost to a full completion queue: the CQ has twice `entries` slots,
    // one submission holds at most `entries` SQEs, and every completion is reaped before the
    // next submission. A kernel without IORING_FEAT_NODROP (before 5.5) could still drop CQEs on
    // overflow — a lost completion would hang or misreport an append — so such a kernel is
    // refused and the caller falls back to pwritev.
    if (!(r->ring.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&r->ring);
        free(r);
        if (err) *err = -ENOTSUP;
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

void tern_ring_inject_faults(tern_ring *r, tern_ring_faults faults) { r->faults = faults; }

static void broken_ring(const char *what, int rc) {
    fprintf(stderr, "tern: io_uring %s failed (%s) with requests in flight; aborting rather than "
                    "risk the kernel using freed buffers\n", what, strerror(-rc));
    abort();
}

static int transient(int rc) { return rc == -EINTR || rc == -EAGAIN || rc == -EBUSY; }

// What a submission's completions are reaped into: two result slots per append (its write and
// its optional linked sync), how many completions each append still waits for, and whom to tell
// when one is done.
typedef struct reaping {
    tern_append *appends;
    ssize_t *results;
    unsigned char *remaining;
    tern_append_done on_done;
    void *context;
    unsigned got;
} reaping;

static size_t iov_bytes(const tern_append *a) {
    size_t total = 0;
    for (int k = 0; k < a->iovcnt; k++) total += a->iov[k].iov_len;
    return total;
}

// An append whose completions have all arrived: its outcome, then the caller's callback. A short
// write is not a lack of space (the kernel may stop early for its own reasons): the rest is
// written here, and — since a short write cuts the link chain, cancelling the linked sync — so is
// the sync. Only a continuation that makes no progress is reported short.
static void finish(tern_ring *r, reaping *st, int i) {
    tern_append *a = &st->appends[i];
    ssize_t w = st->results[i * 2];
    ssize_t s = st->results[i * 2 + 1];
    if (r->faults.write_errors > 0 && w >= 0) {
        r->faults.write_errors--;
        w = r->faults.write_error;
    }
    if (r->faults.short_writes > 0 && w > 1) {
        r->faults.short_writes--;
        w /= 2;
        if (a->sync) s = -ECANCELED;
    }
    size_t total = iov_bytes(a);
    if (w >= 0 && (size_t)w < total) {
        w = tern_pwritev_rest(a->fd, a->iov, a->iovcnt, a->offset, (size_t)w);
        if (w == (ssize_t)total && a->sync && s == -ECANCELED) s = tern_fdatasync(a->fd);
    }
    a->result = w < 0 ? w : (s < 0 ? s : w);
    a->sync_failed = w >= 0 && s < 0;
    if (st->on_done) st->on_done(st->context, i);
}

// Records one completion by its user_data slot.
static void take(tern_ring *r, struct io_uring_cqe *cqe, reaping *st) {
    uint64_t slot = io_uring_cqe_get_data64(cqe);
    st->results[slot] = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    st->got++;
    int i = (int)(slot / 2);
    if (--st->remaining[i] == 0) finish(r, st, i);
}

// Collects completions already posted without waiting (frees CQ space for a retried submit).
static void drain_ready(tern_ring *r, reaping *st) {
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) take(r, cqe, st);
}

static void wait_for(tern_ring *r, unsigned want, reaping *st) {
    while (st->got < want) {
        struct io_uring_cqe *cqe;
        int rc;
        if (r->faults.wait_errors > 0) {
            r->faults.wait_errors--;
            rc = -EINTR;
        } else {
            rc = io_uring_wait_cqe(&r->ring, &cqe);
        }
        if (rc == 0) {
            take(r, cqe, st);
        } else if (!transient(rc) && rc != -ETIME) {
            broken_ring("wait", rc);
        }
    }
}

// Submits every prepared SQE, retrying transient refusals, then waits for `want` completions.
// Returns only when all are reaped. After a short submission the part already submitted is
// reaped before the rest goes in: a link chain cut by the kernel keeps its order that way (the
// trailing fdatasync still runs after every write before it), and a failure in the first part
// fails the appends behind it in PartitionLog, which checks that each append follows the last.
static void submit_and_reap(tern_ring *r, unsigned want, reaping *st) {
    unsigned submitted = 0;
    while (io_uring_sq_ready(&r->ring) > 0) {
        int rc;
        if (r->faults.submit_errors > 0) {
            r->faults.submit_errors--;
            rc = r->faults.submit_error;
        } else if (r->faults.short_submits > 0 && io_uring_sq_ready(&r->ring) > 1) {
            // A short submission: hand the kernel only the first queued SQE.
            r->faults.short_submits--;
            unsigned tail = r->ring.sq.sqe_tail;
            r->ring.sq.sqe_tail = r->ring.sq.sqe_head + 1;
            rc = io_uring_submit(&r->ring);
            r->ring.sq.sqe_tail = tail;
        } else {
            rc = io_uring_submit(&r->ring);
        }
        if (rc >= 0) {
            submitted += (unsigned)rc;
            if (io_uring_sq_ready(&r->ring) > 0) wait_for(r, submitted, st);
            continue;
        }
        if (transient(rc)) {
            // Out of kernel resources or completion space: collect what is done, pause, retry.
            drain_ready(r, st);
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
            continue;
        }
        broken_ring("submit", rc);
    }
    wait_for(r, want, st);
    // Invariant: every completion of this submission is reaped and no other is pending — one
    // left behind would be taken for a later submission's.
    if (io_uring_cq_ready(&r->ring) != 0) broken_ring("reap (completions nobody asked for)", -EINVAL);
}

// The SQ is empty between calls (the invariant above), and callers ask for at most `entries`
// SQEs, so a missing SQE is a bug, not a load condition.
static struct io_uring_sqe *sqe_or_abort(tern_ring *r) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) broken_ring("get_sqe (submission queue full mid-chain)", -EBUSY);
    return sqe;
}

int tern_ring_submit_appends(tern_ring *r, tern_append *a, int count, tern_append_done on_done, void *context) {
    // Each append needs up to two SQEs and a link chain must never be split across submissions.
    if (count <= 0) return 0;
    if ((unsigned)count * 2 > r->entries) return -EINVAL;
    if (io_uring_sq_ready(&r->ring) != 0) broken_ring("submit_appends (stale SQEs)", -EINVAL);
    // Two completion slots per append: the write and its (optional) linked sync.
    ssize_t stack_results[64];
    unsigned char stack_remaining[32];
    ssize_t *results = count * 2 <= 64 ? stack_results : malloc(sizeof(ssize_t) * (size_t)count * 2);
    unsigned char *remaining = count <= 32 ? stack_remaining : malloc((size_t)count);
    if (!results || !remaining) {
        if (results != stack_results) free(results);
        if (remaining != stack_remaining) free(remaining);
        return -ENOMEM;
    }
    unsigned pending = 0;
    for (int i = 0; i < count; i++) {
        // A write whose completion never arrives would read as success: start each as canceled.
        results[i * 2] = -ECANCELED;
        results[i * 2 + 1] = 0;
        remaining[i] = 1;
        struct io_uring_sqe *sqe = sqe_or_abort(r);
        io_uring_prep_writev(sqe, a[i].fd, a[i].iov, (unsigned)a[i].iovcnt, a[i].offset);
        io_uring_sqe_set_data64(sqe, (uint64_t)i * 2);
        pending++;
        if (a[i].sync) {
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *s2 = sqe_or_abort(r);
            io_uring_prep_fsync(s2, a[i].fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(s2, (uint64_t)i * 2 + 1);
            results[i * 2 + 1] = -ECANCELED;
            remaining[i] = 2;
            if (a[i].link_next && i + 1 < count) s2->flags |= IOSQE_IO_LINK;
            pending++;
        } else if (a[i].link_next && i + 1 < count) {
            sqe->flags |= IOSQE_IO_LINK;
        }
    }
    reaping st = {.appends = a, .results = results, .remaining = remaining, .on_done = on_done, .context = context, .got = 0};
    submit_and_reap(r, pending, &st);
    if (results != stack_results) free(results);
    if (remaining != stack_remaining) free(remaining);
    return 0;
}
