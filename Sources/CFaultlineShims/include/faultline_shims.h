#ifndef FAULTLINE_SHIMS_H
#define FAULTLINE_SHIMS_H

#include <sys/types.h>

/// pidfd_open(2); returns a file descriptor or -1 with errno set.
int faultline_pidfd_open(pid_t pid);
/// pidfd_send_signal(2); returns 0 or -1 with errno set.
int faultline_pidfd_send_signal(int pidfd, int sig);
/// prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent dies.
int faultline_set_parent_death_signal(int sig);
/// fallocate(2) with mode 0; returns 0 or -1 with errno set.
int faultline_fallocate(int fd, long long offset, long long length);

#endif
