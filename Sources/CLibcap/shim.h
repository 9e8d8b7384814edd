#ifndef FAULTLINE_CLIBCAP_SHIM_H
#define FAULTLINE_CLIBCAP_SHIM_H
#include <sys/capability.h>
#endif
