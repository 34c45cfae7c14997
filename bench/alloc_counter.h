/* SPDX-License-Identifier: Apache-2.0 */
/* alloc_counter.h: counts the heap allocations the calling thread makes
 * between start and stop, in whichever shared object they happen (see
 * alloc_counter.c for how). Linked only into bench_render. */
#ifndef CM_BENCH_ALLOC_COUNTER_H
#define CM_BENCH_ALLOC_COUNTER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmb_alloc_stats {
  uint64_t bytes; /* sum of the sizes requested (malloc, calloc, realloc, aligned) */
  uint64_t calls; /* number of those requests */
} cmb_alloc_stats;

/* Zeroes the calling thread's tally and starts counting. */
void cmb_alloc_count_start(void);

/* Stops counting on the calling thread and returns the tally since start. */
cmb_alloc_stats cmb_alloc_count_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* CM_BENCH_ALLOC_COUNTER_H */
