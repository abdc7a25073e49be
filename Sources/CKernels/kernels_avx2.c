// The kernels for AVX2 with FMA and F16C (one 8-float register per vector); chosen by dispatch.c.
#include "kernels_internal.h"
#if EQK_X86
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define EQK_W 8
#define EQK_NAME(f) f##_avx2
#include "kernels_impl.h"
#define EQK_GEMV_AVX2 1
#define EQK_GEMV_NAME(f) f##_avx2
#include "gemv_impl.h"
#pragma clang attribute pop
#endif
