#include "cpu_features.h"

int latent_cpu_features(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int bits = 0;
    if (__builtin_cpu_supports("avx")) bits |= 1;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) bits |= 2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) bits |= 4;
    return bits;
#else
    return 0;
#endif
}
