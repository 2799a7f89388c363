/* The CPU backend's one public entry point (kernels/cpu). main registers it. */
#ifndef GROVE_KERNELS_CPU_H
#define GROVE_KERNELS_CPU_H

#include "grove/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

const gv_backend *grove_backend_cpu(void);

#ifdef __cplusplus
}
#endif
#endif
