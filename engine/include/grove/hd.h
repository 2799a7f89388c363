/* GV_HD marks arithmetic that is compiled for both host and device.
 *
 * Functions marked GV_HD live in headers, are `static inline`, and use only contraction-free float
 * arithmetic (no implicit FMA: the C build uses -ffp-contract=off, nvcc gets --fmad=false for
 * these), so the CPU test harness runs the exact arithmetic the CUDA kernels run (DESIGN.md §3). */
#ifndef GROVE_HD_H
#define GROVE_HD_H

#if defined(__CUDACC__)
#define GV_HD static __host__ __device__ __forceinline__
#else
#define GV_HD static inline
#endif

#endif
