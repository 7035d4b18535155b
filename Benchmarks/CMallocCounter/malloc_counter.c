#include "malloc_counter.h"
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic uint64_t allocation_count;
static _Atomic uint64_t allocated_bytes;

static inline void record(size_t bytes) {
    atomic_fetch_add_explicit(&allocation_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&allocated_bytes, bytes, memory_order_relaxed);
}

void *malloc(size_t size) { record(size); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { record(count * size); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { record(size); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { record(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { record(size); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    record(size);
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t latent_allocation_count(void) { return atomic_load_explicit(&allocation_count, memory_order_relaxed); }
uint64_t latent_allocated_bytes(void) { return atomic_load_explicit(&allocated_bytes, memory_order_relaxed); }
