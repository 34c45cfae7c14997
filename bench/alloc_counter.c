/* SPDX-License-Identifier: Apache-2.0 */
/* alloc_counter.c: malloc & co defined in the benchmark executable. The
 * dynamic linker resolves malloc to the executable's definition before
 * libc's, for every shared object: libstdc++'s operator new,
 * libcachemeter.so and libprometheus-cpp-core.so all land here, so one hook
 * sees the heap traffic of both libraries. The work itself is forwarded to
 * glibc's exported __libc_* entry points (same heap, so glibc's own
 * malloc_usable_size, valloc, ... stay compatible with this free).
 * The tally is thread-local: nothing is shared, nothing can recurse. */
#include "alloc_counter.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t alignment, size_t n);
void __libc_free(void *p);

static _Thread_local int t_counting;
static _Thread_local cmb_alloc_stats t_stats;

static void note(size_t n) {
  if (t_counting) {
    t_stats.bytes += n;
    t_stats.calls += 1;
  }
}

void cmb_alloc_count_start(void) {
  t_stats.bytes = 0;
  t_stats.calls = 0;
  t_counting = 1;
}

cmb_alloc_stats cmb_alloc_count_stop(void) {
  t_counting = 0;
  return t_stats;
}

void *malloc(size_t n) {
  note(n);
  return __libc_malloc(n);
}

void *calloc(size_t count, size_t size) {
  size_t n;
  if (!__builtin_mul_overflow(count, size, &n)) note(n);
  return __libc_calloc(count, size); /* reports the overflow itself */
}

void *realloc(void *p, size_t n) {
  note(n);
  return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }

void *memalign(size_t alignment, size_t n) {
  note(n);
  return __libc_memalign(alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }

int posix_memalign(void **out, size_t alignment, size_t n) {
  /* The checks glibc's own posix_memalign makes; memalign makes none. */
  if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0)
    return EINVAL;
  void *p = memalign(alignment, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
