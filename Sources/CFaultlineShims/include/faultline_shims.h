#ifndef FAULTLINE_SHIMS_H
#define FAULTLINE_SHIMS_H

#include <sys/types.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <signal.h>
#include <poll.h>

/// pidfd_open(2); returns a file descriptor or -1 with errno set.
int faultline_pidfd_open(pid_t pid);
/// pidfd_send_signal(2); returns 0 or -1 with errno set.
int faultline_pidfd_send_signal(int pidfd, int sig);
/// prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent dies.
int faultline_set_parent_death_signal(int sig);
/// fallocate(2) with mode 0; returns 0 or -1 with errno set.
int faultline_fallocate(int fd, long long offset, long long length);
/// The filesystem type (statfs f_type, e.g. 0x794c7630 for overlayfs) of the filesystem holding `path`; -1 on error.
long long faultline_filesystem_type(const char *path);

/// setns(2) into the network namespace open at fd; returns 0 or -1 with errno set.
int faultline_setns_net(int fd);
/// An eventfd that becomes readable when SIGTERM, SIGINT, SIGHUP or SIGQUIT arrives (their handlers write to it,
/// whichever thread takes the signal); the same fd on every call; -1 with errno on failure.
int faultline_termination_eventfd(void);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to this process; 0 or -1 with errno.
int faultline_set_child_subreaper(void);
/// prctl(PR_SET_TIMERSLACK): how late the kernel may wake this thread, in nanoseconds.
int faultline_set_timer_slack(unsigned long nanoseconds);
/// ppoll(2) with a timeout in nanoseconds (negative: wait for ever).
int faultline_poll_nanoseconds(struct pollfd *fds, nfds_t count, long long timeout);
/// pipe2(2) with O_CLOEXEC on both ends; returns 0 or -1 with errno set.
int faultline_pipe_cloexec(int fds[2]);
/// Bytes the heap has handed out and not had back (mallinfo2 uordblks plus hblkhd): what a leak makes grow, which
/// resident memory alone does not show (freed memory is often not given back to the kernel).
unsigned long long faultline_heap_in_use(void);

#endif
