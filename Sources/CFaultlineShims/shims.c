#define _GNU_SOURCE
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <poll.h>
#include <pthread.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "faultline_shims.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int faultline_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int faultline_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int faultline_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

int faultline_fallocate(int fd, long long offset, long long length) { return fallocate(fd, 0, (off_t)offset, (off_t)length); }

int faultline_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

static int termination_fd = -1;

static void termination_handler(int sig) {
    (void)sig;
    int saved = errno;
    uint64_t one = 1;
    if (termination_fd >= 0) (void)!write(termination_fd, &one, sizeof one);
    errno = saved;
}

int faultline_termination_eventfd(void) {
    if (termination_fd >= 0) return termination_fd;
    termination_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (termination_fd < 0) return -1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = termination_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    sigaction(SIGQUIT, &action, NULL);
    return termination_fd;
}

int faultline_set_timer_slack(unsigned long nanoseconds) { return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0); }

int faultline_poll_nanoseconds(struct pollfd *fds, nfds_t count, long long timeout) {
    if (timeout < 0) return ppoll(fds, count, NULL, NULL);
    struct timespec wait = { .tv_sec = timeout / 1000000000LL, .tv_nsec = timeout % 1000000000LL };
    return ppoll(fds, count, &wait, NULL);
}

int faultline_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int faultline_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

long long faultline_filesystem_type(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return (long long)info.f_type;
}

unsigned long long faultline_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (unsigned long long)info.uordblks + (unsigned long long)info.hblkhd;
}
