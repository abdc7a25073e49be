// The batch-1 int8 product for AVX-512 with VNNI (vpdpbusd) and GFNI (the 4-bit kernel's
// high nibbles); chosen by dispatch.c when the CPU has avx512_vnni and gfni and the AVX-512
// copies are in use. Only this kernel is compiled for them, so the other AVX-512 kernels
// still run on AVX-512 CPUs without them (those take the AVX2 batch-1 copy).
#include "kernels_internal.h"
#if EQK_X86
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,gfni,fma"))), apply_to = function)
#define EQK_GEMV_VNNI 1
#define EQK_GEMV_NAME(f) f##_vnni
#include "gemv_impl.h"
#pragma clang attribute pop
#endif
