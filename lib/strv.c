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

void sb__vec_free(char **v) {
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

void sb_strv_free(sb_strv *s) {
  sb__vec_free(s->v);
  s->v = NULL;
  s->n = 0;
}

int sb__vec_dup(char *const *src, char ***out) {
  size_t n = 0;
  char **v;
  *out = NULL;
  if (src == NULL)
    return 0;
  while (src[n] != NULL)
    n++;
  if ((v = calloc(n + 1, sizeof *v)) == NULL)
    return SB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if ((v[i] = strdup(src[i])) == NULL) {
      sb__vec_free(v);
      return SB_ENOMEM;
    }
  }
  *out = v;
  return 0;
}

int sb_strv_copy(sb_strv *dst, char *const *src) {
  static char *const empty[1] = {NULL};
  size_t n = 0;
  int r = sb__vec_dup(src != NULL ? src : empty, &dst->v);
  while (r == 0 && dst->v[n] != NULL)
    n++;
  dst->n = n;
  return r;
}
