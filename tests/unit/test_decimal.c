/* SPDX-License-Identifier: MIT */
/* test_decimal.c - the one decimal reader (lib/decimal.c). */
#include "unit.h"

#include <stdint.h>

/* The value s reads as with max, or -1 when it is refused; *out must be
 * left alone then. */
static int64_t read_as(const char *s, uint64_t max) {
  uint64_t v = 12345;
  if (!sb__parse_uint(s, max, &v)) {
    cr_assert_eq(v, 12345, "\"%s\": refused, yet *out changed to %llu", s,
                 (unsigned long long)v);
    return -1;
  }
  return (int64_t)v;
}

Test(decimal, reads_digits_and_leading_zeros) {
  cr_assert_eq(read_as("0", 10), 0);
  cr_assert_eq(read_as("7", 10), 7);
  cr_assert_eq(read_as("65535", 65535), 65535);
  cr_assert_eq(read_as("007", 10), 7);
  cr_assert_eq(read_as("0000000000000000000000000000042", 100), 42,
               "leading zeros counted towards overflow");
}

Test(decimal, refuses_an_empty_string_and_null) {
  uint64_t v;
  cr_assert_eq(read_as("", 10), -1);
  cr_assert_not(sb__parse_uint(NULL, 10, &v));
}

Test(decimal, refuses_signs_spaces_and_other_spellings) {
  const char *bad[] = {"+1",   "-1",  "-0",  " 1",    "1 ",    "\t1",      "1\n",
                       "0x10", "1e3", "1.0", "1,000", "1_000", "\xd9\xa1", "one"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(read_as(bad[i], UINT64_MAX), -1, "\"%s\" was read", bad[i]);
}

Test(decimal, refuses_a_value_over_max_but_takes_max_itself) {
  cr_assert_eq(read_as("65536", 65535), -1);
  cr_assert_eq(read_as("100000", 65535), -1);
  cr_assert_eq(read_as("1", 0), -1);
  cr_assert_eq(read_as("0", 0), 0);
  cr_assert_eq(read_as("10", 9), -1);
  cr_assert_eq(read_as("9", 9), 9);
}

Test(decimal, never_wraps_at_the_top_of_64_bits) {
  uint64_t v = 0;
  cr_assert(sb__parse_uint("18446744073709551615", UINT64_MAX, &v));
  cr_assert_eq(v, UINT64_MAX);
  /* 2^64 and 2^64 * 10 would wrap to 0 and to a small number. */
  cr_assert_eq(read_as("18446744073709551616", UINT64_MAX), -1);
  cr_assert_eq(read_as("184467440737095516150", UINT64_MAX), -1);
  cr_assert_eq(read_as("99999999999999999999999999", UINT64_MAX), -1);
  /* A max just below a power of ten. */
  cr_assert_eq(read_as("4294967295", UINT32_MAX), (int64_t)UINT32_MAX);
  cr_assert_eq(read_as("4294967296", UINT32_MAX), -1);
}
