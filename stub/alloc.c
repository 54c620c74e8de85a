/* SPDX-License-Identifier: MIT */
/* alloc.c - malloc for the static musl stub (CMakeLists.txt adds this file
 * only to that build): musl's own (mallocng, ~9 KB) would take a seventh of
 * the stub's 64 KiB. The stub is one thread and allocates little: a few
 * dozen small blocks per process (strings of messages, argv and env
 * vectors, frames to send) and a few large buffers (the 128 KiB receive
 * buffer, the 64 KiB stdin and pipe buffers, a control frame being
 * reassembled).
 *
 * Small blocks (with their 16-byte header, up to SMALL_MAX) come in
 * power-of-two sizes from 64 KiB chunks, and a freed one goes on its size's
 * free list for the next request of that size. Larger ones (and any with an
 * alignment over 16) are mappings of their own, cache-line aligned,
 * unmapped when freed. Every block has a header just before it saying
 * which of the two it is. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HDR 16u
#define MIN_SHIFT 4u                /* the smallest block: 16 bytes, header included */
#define SMALL_MAX ((size_t)1 << 14) /* 16 KiB, header included */
#define NCLASS 11u                  /* 2^4 .. 2^14 */
#define CHUNK ((size_t)1 << 16)

/* Blocks start 16-byte aligned (chunks and mappings are page-aligned, and
 * every block size and lead is a multiple of 16), as malloc's must. */
typedef struct hdr {
  size_t size;  /* small: 0; mapped: the mapping's length */
  size_t klass; /* small: the size class; mapped: bytes before the block */
} hdr;
_Static_assert(sizeof(hdr) == HDR, "header size");

typedef struct free_block {
  struct free_block *next;
} free_block;

static free_block *free_list[NCLASS];
/* The first chunk is static: most stubs never need a second, and a bss
 * page costs its fault alone, not a mapping as well. */
static char first_chunk[CHUNK] __attribute__((aligned(4096)));
static char *chunk_at = first_chunk, *chunk_end = first_chunk + CHUNK;

static hdr *header_of(void *p) {
  return (hdr *)(void *)((char *)p - HDR);
}

/* A mapping of its own: size bytes aligned to align (a power of two, at
 * least 16) and to 64 at least, with the header right before. The large
 * blocks are the I/O buffers (stdin's, a run's pipe's): the kernel copies
 * into and out of one that starts 16 bytes past a cache line at half the
 * speed (measured: the stdin stream, 0.7 against 1.4 GB/s; see
 * docs/performance.md, "Misaligned buffers"). */
#define MAP_ALIGN 64u
static void *map_block(size_t size, size_t align) {
  size_t lead = align > MAP_ALIGN ? align : MAP_ALIGN;
  size_t len = (lead + size + 4095) & ~(size_t)4095;
  if (size > SIZE_MAX / 2 || len < size) {
    errno = ENOMEM;
    return NULL;
  }
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL; /* errno: ENOMEM */
  hdr *h = (hdr *)(void *)(m + lead - HDR);
  h->size = len;
  h->klass = lead;
  return m + lead;
}

void *malloc(size_t size) {
  if (size > SMALL_MAX - HDR)
    return map_block(size, HDR);
  unsigned k = 0;
  while (((size_t)1 << (k + MIN_SHIFT)) < size + HDR)
    k++;
  size_t block = (size_t)1 << (k + MIN_SHIFT);
  char *b;
  if (free_list[k] != NULL) {
    b = (char *)free_list[k];
    free_list[k] = free_list[k]->next;
  } else {
    if ((size_t)(chunk_end - chunk_at) < block) {
      /* The rest of the old chunk is left unused. */
      char *m =
          mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED)
        return NULL;
      chunk_at = m;
      chunk_end = m + CHUNK;
    }
    b = chunk_at;
    chunk_at += block;
  }
  hdr *h = (hdr *)(void *)b;
  h->size = 0;
  h->klass = k;
  return b + HDR;
}

void free(void *p) {
  if (p == NULL)
    return;
  hdr *h = header_of(p);
  if (h->size != 0) {
    munmap((char *)p - h->klass, h->size);
    return;
  }
  free_block *f = (free_block *)(void *)h;
  f->next = free_list[h->klass];
  free_list[h->klass] = f;
}

/* Bytes the block at p can hold. */
static size_t capacity(void *p) {
  const hdr *h = header_of(p);
  if (h->size != 0)
    return h->size - h->klass;
  return ((size_t)1 << (h->klass + MIN_SHIFT)) - HDR;
}

void *calloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = malloc(n * size);
  if (p != NULL)
    memset(p, 0, n * size);
  return p;
}

void *realloc(void *p, size_t size) {
  if (p == NULL)
    return malloc(size);
  size_t have = capacity(p);
  if (size <= have)
    return p;
  void *q = malloc(size);
  if (q != NULL) {
    memcpy(q, p, have);
    free(p);
  }
  return q;
}

int posix_memalign(void **out, size_t align, size_t size) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0)
    return EINVAL;
  void *p = align <= HDR ? malloc(size) : map_block(size, align);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}
