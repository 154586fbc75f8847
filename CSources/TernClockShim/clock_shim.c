// A preload library for `tern verify`'s clock nemesis: moves one process's wall clock and nothing
// else. Loaded with LD_PRELOAD=libTernClockShim.so and TERN_CLOCK_OFFSET_FILE=<path>; the file
// holds a signed number of seconds ("+600", "-1800", "0") and is re-read at most every 100 ms, so
// the harness moves a running broker's clock by rewriting it (atomically, by rename).
//
// Why not libfaketime: it also rewrites sleep and timer deadlines (timerfd_settime, poll, futex
// waits), and libdispatch's absolute monotonic deadlines got the wall-clock offset — Swift's
// Task.sleep stalled for the length of the jump. A real NTP step moves CLOCK_REALTIME alone:
// monotonic clocks, sleeps and timers keep time, and so they do here.
//
// Only calls that go through the dynamic linker are moved: clock_gettime for the clocks derived
// from CLOCK_REALTIME, gettimeofday, time and timespec_get. Every wrapper leaves errno as it was
// whenever the real call succeeds, whatever the file read did.
#define _GNU_SOURCE
#include "TernClockShim.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S INT64_C(1000000000)
#define REFRESH_NS (100 * INT64_C(1000000))

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef int (*timespec_get_fn)(struct timespec *, int);

// Resolved once by the constructor, before the process has threads of its own; a call that comes
// earlier (another library's constructor) takes the system call instead.
static clock_gettime_fn real_clock_gettime;
static gettimeofday_fn real_gettimeofday;
static time_fn real_time;
static timespec_get_fn real_timespec_get;
static const char *offset_path;

static _Atomic int64_t offset_ns;
// CLOCK_MONOTONIC time at which the file is next read; the thread that moves it reads the file.
static _Atomic int64_t next_read_ns;

__attribute__((constructor)) static void tern_clock_shim_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    real_gettimeofday = (gettimeofday_fn)dlsym(RTLD_NEXT, "gettimeofday");
    real_time = (time_fn)dlsym(RTLD_NEXT, "time");
    real_timespec_get = (timespec_get_fn)dlsym(RTLD_NEXT, "timespec_get");
    offset_path = getenv(TERN_CLOCK_OFFSET_FILE_VARIABLE);
}

static int system_clock_gettime(clockid_t clock, struct timespec *ts) {
    if (real_clock_gettime) return real_clock_gettime(clock, ts);
    return (int)syscall(SYS_clock_gettime, clock, ts);
}

// Seconds as the file says them: optional sign, digits, optional trailing whitespace. Anything
// else (a half-written file cannot happen with rename, but a hand-edited one can) keeps the offset.
static int parse_seconds(const char *text, int64_t *seconds) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || errno != 0) return 0;
    while (*end == '\n' || *end == ' ' || *end == '\t' || *end == '\r') end++;
    if (*end != '\0') return 0;
    // A century either way is more than any test wants and keeps the nanoseconds far from overflow.
    if (value > 3155760000LL || value < -3155760000LL) return 0;
    *seconds = value;
    return 1;
}

static void read_offset_file(void) {
    if (!offset_path) return;
    int fd = open(offset_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return;
    text[n] = '\0';
    int64_t seconds;
    if (parse_seconds(text, &seconds)) atomic_store_explicit(&offset_ns, seconds * NS_PER_S, memory_order_relaxed);
}

static int64_t current_offset_ns(void) {
    int saved = errno;
    struct timespec now;
    if (system_clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        int64_t now_ns = (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
        int64_t due = atomic_load_explicit(&next_read_ns, memory_order_relaxed);
        if (now_ns >= due &&
            atomic_compare_exchange_strong_explicit(&next_read_ns, &due, now_ns + REFRESH_NS, memory_order_relaxed, memory_order_relaxed))
            read_offset_file();
    }
    errno = saved;
    return atomic_load_explicit(&offset_ns, memory_order_relaxed);
}

static void shift(struct timespec *ts, int64_t by_ns) {
    int64_t ns = (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec + by_ns;
    ts->tv_sec = (time_t)(ns / NS_PER_S);
    ts->tv_nsec = (long)(ns % NS_PER_S);
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += NS_PER_S;
        ts->tv_sec -= 1;
    }
}

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI || clock == CLOCK_REALTIME_ALARM;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = system_clock_gettime(clock, ts);
    if (result == 0 && is_wall_clock(clock)) shift(ts, current_offset_ns());
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    int result = real_gettimeofday ? real_gettimeofday(tv, tz) : (int)syscall(SYS_gettimeofday, tv, tz);
    // A null tv is allowed by the kernel (only the time zone asked for): nothing to shift then.
    // glibc declares tv nonnull, so the test reads it through a volatile copy the compiler cannot
    // fold away.
    struct timeval *volatile checked = tv;
    if (result == 0 && checked != NULL) {
        struct timespec ts = {.tv_sec = tv->tv_sec, .tv_nsec = (long)tv->tv_usec * 1000};
        shift(&ts, current_offset_ns());
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return real_time ? real_time(out) : (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

int timespec_get(struct timespec *ts, int base) {
    if (base != TIME_UTC) return real_timespec_get ? real_timespec_get(ts, base) : 0;
    return clock_gettime(CLOCK_REALTIME, ts) == 0 ? base : 0;
}
