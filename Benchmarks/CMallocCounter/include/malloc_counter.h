// Counts heap allocations of the whole process (latent-bench only): the benchmark's proof that a training step
// allocates nothing. Interposes malloc and friends and forwards to glibc's implementations.
#pragma once
#include <stdint.h>

/// Number of allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) so far.
uint64_t latent_allocation_count(void);
/// Bytes requested by those calls so far.
uint64_t latent_allocated_bytes(void);
