// The kernels for any CPU (4 floats per vector: SSE2 on x86-64, NEON on arm64).
#include "kernels_internal.h"
#define EQK_W 4
#define EQK_NAME(f) f##_baseline
#include "kernels_impl.h"
#define EQK_GEMV_NAME(f) f##_baseline
#include "gemv_impl.h"
