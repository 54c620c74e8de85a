/* SPDX-License-Identifier: MIT */
/* test_strv.c - string vectors. */
#include "unit.h"

Test(strv, a_copy_is_deep_and_null_terminated) {
  char a[] = "one", b[] = "two";
  char *src[] = {a, b, NULL};
  sb_strv s;
  cr_assert_eq(sb_strv_copy(&s, src), 0);
  cr_assert_eq(s.n, 2, "%zu strings", s.n);
  cr_assert_null(s.v[2], "not NULL-terminated");
  cr_assert(s.v[0] != a && s.v[1] != b, "strings shared, not copied");
  a[0] = 'X';
  cr_assert_str_eq(s.v[0], "one", "copy changed with the source: %s", s.v[0]);
  cr_assert_str_eq(s.v[1], "two");
  sb_strv_free(&s);
  cr_assert(s.v == NULL && s.n == 0, "not empty after free");
  sb_strv_free(&s);
}

Test(strv, copying_null_or_an_empty_vector_gives_an_empty_one) {
  char *empty[] = {NULL};
  sb_strv s;
  cr_assert_eq(sb_strv_copy(&s, NULL), 0);
  cr_assert(s.n == 0 && s.v != NULL && s.v[0] == NULL, "n %zu", s.n);
  sb_strv_free(&s);
  cr_assert_eq(sb_strv_copy(&s, empty), 0);
  cr_assert(s.n == 0 && s.v != NULL && s.v[0] == NULL, "n %zu", s.n);
  sb_strv_free(&s);
}

Test(strv, a_bare_vector_copy_is_deep_and_null_stays_null) {
  char a[] = "A=1";
  char *src[] = {a, "B=", NULL}, *empty[] = {NULL};
  char **v = (char **)src;
  cr_assert_eq(sb__vec_dup(src, &v), 0);
  cr_assert(v != src && v[0] != a, "shared, not copied");
  a[0] = 'X';
  cr_assert_str_eq(v[0], "A=1");
  cr_assert_str_eq(v[1], "B=");
  cr_assert_null(v[2], "not NULL-terminated");
  sb__vec_free(v);
  cr_assert_eq(sb__vec_dup(NULL, &v), 0);
  cr_assert_null(v, "NULL became a vector");
  cr_assert_eq(sb__vec_dup(empty, &v), 0);
  cr_assert(v != NULL && v[0] == NULL, "an empty vector is not NULL");
  sb__vec_free(v);
  sb__vec_free(NULL);
}
