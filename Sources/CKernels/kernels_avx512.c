// The kernels for AVX-512 (one 16-float register per vector); chosen by dispatch.c.
#include "kernels_internal.h"
#if EQK_X86
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#define EQK_W 16
#define EQK_NAME(f) f##_avx512
#include "kernels_impl.h"
#pragma clang attribute pop
#endif
