/* SPDX-License-Identifier: MIT */
/* test_lite_int.c - integers as the reader reads them (lib/json_read.c,
 * sb_jr_int): where the protocol means an integer, an integer as written
 * (docs/protocol.md section 2): no fraction, no exponent, even an integral
 * one; any number of digits, judged against the bounds without
 * overflowing. */
#include "unit.h"

#include "proto.h"

#include <stdint.h>
#include <string.h>

typedef struct int_case {
  const char *text;
  int64_t lo, hi;
  int want; /* 0, SB_JR_INT_RANGE, SB_JR_INT_FRACTION or SB_EBADMSG */
  int64_t value;
} int_case;

static const int_case cases[] = {
    {"0", 0, 255, 0, 0},
    {"-0", 0, 255, 0, 0},
    {"255", 0, 255, 0, 255},
    {"256", 0, 255, SB_JR_INT_RANGE, 0},
    {"-1", 0, 255, SB_JR_INT_RANGE, 0},
    {"-5", -5, 5, 0, -5},
    {"2147483647", 1, INT32_MAX, 0, INT32_MAX},
    {"2147483648", 1, INT32_MAX, SB_JR_INT_RANGE, 0},
    {"4294967295", 0, UINT32_MAX, 0, UINT32_MAX},
    {"-4294967295", -(int64_t)UINT32_MAX, 0, 0, -(int64_t)UINT32_MAX},
    {"99999999999999999999999999999999", 0, UINT32_MAX, SB_JR_INT_RANGE, 0},
    {"-99999999999999999999999999999999", -5, 5, SB_JR_INT_RANGE, 0},
    {"1.0", 0, 255, SB_JR_INT_FRACTION, 0},
    {"1.5", 0, 255, SB_JR_INT_FRACTION, 0},
    {"1e2", 0, 255, SB_JR_INT_FRACTION, 0},
    {"1.0e2", 0, 255, SB_JR_INT_FRACTION, 0},
    {"10E-1", 0, 255, SB_JR_INT_FRACTION, 0},
    {"1e400", 0, 255, SB_JR_INT_FRACTION, 0},
    {"01", 0, 255, SB_EBADMSG, 0},
    {"1.", 0, 255, SB_EBADMSG, 0},
    {"-.5", 0, 255, SB_EBADMSG, 0},
    {".5", 0, 255, SB_EBADMSG, 0},
    {"+1", 0, 255, SB_EBADMSG, 0},
    {"1e", 0, 9, SB_EBADMSG, 0},
    {"1e+", 0, 9, SB_EBADMSG, 0},
    {"-", 0, 9, SB_EBADMSG, 0},
    {"--1", 0, 9, SB_EBADMSG, 0},
};

Test(lite_int, integers_as_written_and_nothing_else) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int_case *c = &cases[i];
    sb_jr j = {(const uint8_t *)c->text, strlen(c->text), NULL};
    int64_t got = 7;
    int r = sb_jr_int(&j, 0, c->lo, c->hi, &got);
    cr_assert_eq(r, c->want, "%s in %lld..%lld: %d, want %d", c->text, (long long)c->lo,
                 (long long)c->hi, r, c->want);
    cr_assert_eq(got, c->value, "%s: %lld, want %lld", c->text, (long long)got,
                 (long long)c->value);
  }
}

Test(lite_int, a_number_ends_where_its_grammar_does) {
  int64_t v;
  sb_jr j = {(const uint8_t *)"12,", 3, NULL};
  cr_assert_eq(sb_jr_int(&j, 0, 0, 99, &v), 0);
  cr_assert_eq(v, 12);
  j = (sb_jr){(const uint8_t *)"1.2.3", 5, NULL};
  cr_assert_eq(sb_jr_int(&j, 0, 0, 9, &v), SB_JR_INT_FRACTION);
}
