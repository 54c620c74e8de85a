/* SPDX-License-Identifier: MIT */
/* strv.c - NULL-terminated string vectors (argv, env). */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

int sb__strv_alloc(sb_strv *s, size_t n) {
  s->n = 0;
  s->v = calloc(n + 1, sizeof *s->v);
  return s->v != NULL ? 0 : SB_ENOMEM;
}

void sb_strv_free(sb_strv *s) {
  if (s->v != NULL)
    for (size_t i = 0; s->v[i] != NULL; i++)
      free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

int sb_strv_copy(sb_strv *dst, char *const *src) {
  size_t n = 0;
  if (src != NULL)
    while (src[n] != NULL)
      n++;
  if (sb__strv_alloc(dst, n) < 0)
    return SB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    dst->v[i] = strdup(src[i]);
    if (dst->v[i] == NULL) {
      sb_strv_free(dst);
      return SB_ENOMEM;
    }
    dst->n = i + 1;
  }
  return 0;
}
