// Per-thread scheduling niceness (Linux: a thread's nice value is its own, set by thread id).
#define _GNU_SOURCE
#include "CTernIO.h"
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int tern_nice_current_thread(int increment) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, (id_t)tid);
    if (current == -1 && errno != 0) return -errno;
    return setpriority(PRIO_PROCESS, (id_t)tid, current + increment) == 0 ? 0 : -errno;
}
