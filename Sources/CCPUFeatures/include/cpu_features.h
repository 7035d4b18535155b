#ifndef LATENT_CPU_FEATURES_H
#define LATENT_CPU_FEATURES_H

/// Bits of the CPU's features as its CPUID instruction reports them (what an emulator such as qemu-user presents,
/// unlike /proc/cpuinfo, which is the host's): 1 AVX, 2 AVX2 and FMA, 4 the AVX-512 F/CD/BW/DQ/VL set.
/// 0 on other architectures.
int latent_cpu_features(void);

#endif
