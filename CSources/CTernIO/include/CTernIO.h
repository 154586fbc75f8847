// CTernIO: the thin C core of Tern.
// io_uring rings for batched log appends and syncs. No policy lives here: callers own every
// buffer and decide when to sync.
#ifndef CTERNIO_H
#define CTERNIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- io_uring ----

typedef struct tern_ring tern_ring;

/// Creates a ring with `entries` submission slots. Returns NULL and sets *err (negative errno) on failure.
tern_ring *tern_ring_create(unsigned entries, int *err);
void tern_ring_destroy(tern_ring *ring);

/// One append in a batch submission (group commit): a writev at an offset with optional linked fdatasync.
typedef struct tern_append {
    int fd;
    const struct iovec *iov;
    int iovcnt;
    uint64_t offset;
    /// Non-zero: an fdatasync of `fd` runs after this write succeeds (linked SQE).
    int sync;
    /// Non-zero: the next append starts only after this one (and its sync) succeeded. Chain every
    /// append to the same file this way so a trailing sync covers all of them.
    int link_next;
    ssize_t result; // out: bytes written, or negative errno (-ECANCELED when an earlier link failed)
    int sync_failed; // out: non-zero when the write succeeded and its linked fdatasync failed
} tern_append;

/// Called once per append as soon as all its completions (write, linked sync) have arrived, with
/// its `result`/`sync_failed` already set — in completion order, which follows link order within
/// a chain — on the submitting thread, before `tern_ring_submit_appends` returns.
typedef void (*tern_append_done)(void *context, int index);

/// Submits all `count` appends with one io_uring_enter (retried when the kernel refuses for a
/// while or takes only part) and reaps every completion before returning, calling `on_done` (if
/// not NULL) for each append as it finishes. `count * 2` must not exceed the ring's entries
/// (-EINVAL otherwise). Returns 0 (per-append results in `result`) or a negative errno when
/// nothing was submitted; aborts if the ring breaks with requests in flight.
int tern_ring_submit_appends(tern_ring *ring, tern_append *appends, int count, tern_append_done on_done, void *context);

/// Writes the bytes of `iov` from byte `done` on at `offset + done`, continuing short writes and
/// retrying EINTR: the total written (all of it, or less only when the kernel took nothing more)
/// or a negative errno.
ssize_t tern_pwritev_rest(int fd, const struct iovec *iov, int iovcnt, uint64_t offset, size_t done);

/// fdatasync(2), retrying EINTR: 0 or a negative errno.
int tern_fdatasync(int fd);

/// Test-only: makes upcoming calls misbehave as the kernel may, to drive the error paths. Each
/// counter is how many times; the matching `*_error` is the negative errno to report.
typedef struct tern_ring_faults {
    int submit_errors;   // io_uring_enter refusals (submit_error, e.g. -EINTR, -EBUSY, -EAGAIN)
    int submit_error;
    int short_submits;   // submissions that take only the first queued SQE
    int wait_errors;     // io_uring_wait_cqe interrupted (-EINTR)
    int write_errors;    // successful writes reported as write_error (e.g. -EIO, -ENOSPC)
    int write_error;
    int short_writes;    // successful writes reported as having written half (their linked sync cancelled)
} tern_ring_faults;
void tern_ring_inject_faults(tern_ring *ring, tern_ring_faults faults);

// Lowers (positive increment) the calling thread's scheduling priority; 0 or -errno.
int tern_nice_current_thread(int increment);

#ifdef __cplusplus
}
#endif
#endif
