/* SPDX-License-Identifier: MIT */
/* test_lite_int.c - the lite parser's integers (lib/json_lite.c,
 * sb__jl_int) against what msg_parse.c does with cJSON's double: strtod
 * (glibc's, correctly rounded), then lo <= d <= hi, then d an integer. The
 * reader has no floating point; every rounding edge a double has between
 * 0 and 2^32 is tried here, then random numbers of every shape. */
#include "unit.h"

#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What msg_parse.c concludes from strtod's double. */
static int ref_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  double d = strtod(s, NULL);
  *out = 0;
  if (!(d >= (double)lo && d <= (double)hi))
    return SB__JL_INT_RANGE;
  if ((double)(int64_t)d != d)
    return SB__JL_INT_FRACTION;
  *out = (int64_t)d;
  return 0;
}

/* Asserts that the reader and strtod agree on s for lo..hi. */
static void check(const char *s, int64_t lo, int64_t hi) {
  sb__jl j = {(const uint8_t *)s, strlen(s), NULL};
  int64_t got = -1, want = -1;
  int r = sb__jl_int(&j, 0, lo, hi, &got);
  int w = ref_int(s, lo, hi, &want);
  cr_assert_eq(r, w, "%s in %lld..%lld: %d, strtod says %d (%.17g)", s, (long long)lo,
               (long long)hi, r, w, strtod(s, NULL));
  cr_assert_eq(got, want, "%s: %lld, strtod says %lld", s, (long long)got,
               (long long)want);
}

/* The bounds msg_parse.c uses, and some more. */
static const int64_t bounds[][2] = {
    {1, 65535}, {0, 255}, {1, INT32_MAX}, {0, INT32_MAX},  {1, 4095},
    {1, 1},     {0, 0},   {-5, 5},        {0, UINT32_MAX}, {-(int64_t)UINT32_MAX, 0},
};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

static void check_all(const char *s) {
  for (size_t i = 0; i < NBOUNDS; i++)
    check(s, bounds[i][0], bounds[i][1]);
}

/* "0." and the k decimals of 2^-k (5^k, zero-padded to k digits). */
static void pow2_neg(unsigned k, char *out) {
  uint8_t d[1100];
  memset(d, 0, k);
  d[k - 1] = 1;
  for (unsigned r = 0; r < k; r++) {
    unsigned carry = 0;
    for (unsigned i = k; i-- > 0;) {
      unsigned v = d[i] * 5u + carry;
      d[i] = (uint8_t)(v % 10);
      carry = v / 10;
    }
  }
  memcpy(out, "0.", 2);
  for (unsigned i = 0; i < k; i++)
    out[2 + i] = (char)('0' + d[i]);
  out[2 + k] = '\0';
}

/* The decimal string of x + 2^-k, x - 2^-k... built as text: an integer
 * part and the k decimals of 2^-k (or of 1 - 2^-k), then a tail. */
static void near(char *out, size_t size, const char *sign, uint64_t ip, unsigned k,
                 bool complement, const char *tail) {
  static char frac[1200];
  pow2_neg(k, frac);
  if (complement) { /* 1 - 2^-k: 9 - each digit, the last 10 - 5 */
    for (unsigned i = 0; i + 1 < k; i++)
      frac[2 + i] = (char)('9' - (frac[2 + i] - '0'));
    frac[2 + k - 1] = '5';
  }
  snprintf(out, size, "%s%llu.%s%s", sign, (unsigned long long)ip, frac + 2, tail);
}

Test(lite_int, plain_integers_and_the_laxness_cjson_reads) {
  static const char *const cases[] = {
      "0",
      "-0",
      "1",
      "01",
      "1.",
      "1.0",
      "-.5",
      "-.0",
      "-0.0",
      "0e0",
      "0e999999999",
      "0e-99999999999999",
      "10E-1",
      "1.0e0",
      "255",
      "256",
      "-1",
      "4095",
      "4096",
      "65535",
      "65536",
      "2147483647",
      "2147483648",
      "4294967295",
      "4294967296",
      "4294967297",
      "9999999999",
      "10000000000",
      "1e9",
      "1e10",
      "1e400",
      "-1e400",
      "1e-400",
      "-1e-400",
      "1e-300",
      "-1e-300",
      "1.5",
      "0.5",
      "-0.5",
      "254.5",
      "255.5",
      "0.000001e6",
      "12345678901234567890e-10",
      "0.0000000000000000000000000000000000001e37",
      "100000000000000000000000000000e-29",
      "1.0000000000000001",
      "1.0000000000000002",
      "0.99999999999999994",
      "0.99999999999999995",
      "0.9999999999999999",
      "2147483647.0000002",
      "2147483647.0000001",
      "2147483646.9999999",
      "4294967295.9999999",
      "4294967295.99999999",
      "2.4703282292062327e-324",
      "2.4703282292062328e-324",
      "4.9406564584124654e-324",
      "1e-323",
      "9.9e-324",
      "1e-324",
      "0.0",
      "00000.00000",
      "-00001.00000e0",
      "123e-2",
      "12300e-2",
      "1e+2",
      "1E+02",
      "-1e-0",
      "5e-1",
      "15e-1",
      "1e99999999999999999999",
      "1e-99999999999999999999",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_all(cases[i]);
}

/* Around every integer a bound may make matter, at its rounding edges:
 * v + half the spacing of doubles there (a tie, to v), a hair above, and
 * v + 1 - that (a tie, to v + 1), a hair below. */
Test(lite_int, every_rounding_edge_near_an_integer) {
  static const uint64_t ints[] = {1,
                                  2,
                                  3,
                                  4,
                                  5,
                                  7,
                                  8,
                                  254,
                                  255,
                                  256,
                                  4094,
                                  4095,
                                  4096,
                                  65534,
                                  65535,
                                  65536,
                                  1u << 20,
                                  (1u << 20) + 1,
                                  INT32_MAX - 1u,
                                  INT32_MAX,
                                  1u << 31,
                                  UINT32_MAX - 1u,
                                  UINT32_MAX};
  static const char *const tails[] = {"", "0", "000001", "1", "9", "0e0", "00e-0"};
  char s[1400];
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    uint64_t v = ints[i];
    unsigned e = 0;
    for (uint64_t t = v; t > 1; t >>= 1)
      e++;
    for (int dk = -2; dk <= 2; dk++) {
      unsigned k = (unsigned)(53 - (int)e + dk);
      for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        for (int neg = 0; neg < 2; neg++) {
          near(s, sizeof s, neg ? "-" : "", v, k, false, tails[t]);
          check_all(s);
          near(s, sizeof s, neg ? "-" : "", v, k, true, tails[t]);
          check_all(s);
          if (v > 0) {
            near(s, sizeof s, neg ? "-" : "", v - 1, k, true, tails[t]);
            check_all(s);
          }
        }
      }
    }
  }
}

/* Below 1: 0 up to 2^-1075 (half the least double, a tie to 0), 1 from
 * 1 - 2^-54 (a tie to 1). */
Test(lite_int, every_rounding_edge_below_one) {
  static const char *const tails[] = {"", "0", "1", "000000000000001", "e0"};
  char s[1400];
  for (unsigned k = 1070; k <= 1080; k++)
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
      near(s, sizeof s, "", 0, k, false, tails[t]);
      check_all(s);
      near(s, sizeof s, "-", 0, k, false, tails[t]);
      check_all(s);
    }
  for (unsigned k = 50; k <= 58; k++)
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
      near(s, sizeof s, "", 0, k, true, tails[t]);
      check_all(s);
      near(s, sizeof s, "-", 0, k, true, tails[t]);
      check_all(s);
    }
  /* 2^-1075 written with an exponent, and a hair off it either way */
  pow2_neg(1075, s);
  char e[1400];
  const char *digits = s + 2 + 323; /* 2^-1075 = 2.47...e-324 */
  snprintf(e, sizeof e, "%.1s.%se-324", digits, digits + 1);
  check_all(e);
  snprintf(e, sizeof e, "%.1s.%s1e-324", digits, digits + 1);
  check_all(e);
  snprintf(e, sizeof e, "%.1s.%.100se-324", digits, digits + 1);
  check_all(e);
}

/* Random numbers of every shape: digits around the point, exponents, and
 * runs of 0s and 9s that put them near integers. */
Test(lite_int, agrees_with_strtod_on_random_numbers) {
  char s[200];
  srand(12345);
  for (int n = 0; n < 60000; n++) {
    size_t o = 0;
    if (rand() % 2)
      s[o++] = '-';
    int shape = rand() % 4;
    int ndig = 1 + rand() % (shape == 0 ? 12 : 40);
    int point = rand() % (ndig + 2) - 1; /* -1: no point */
    for (int i = 0; i < ndig; i++) {
      if (i == point)
        s[o++] = '.';
      char c;
      if (shape == 1 && i > 3)
        c = '0';
      else if (shape == 2 && i > 3)
        c = '9';
      else
        c = (char)('0' + rand() % 10);
      if (shape != 0 && i == ndig - 1 && rand() % 2)
        c = (char)('0' + rand() % 10);
      s[o++] = c;
    }
    if (point == ndig)
      s[o++] = '.';
    if (rand() % 3 == 0) {
      s[o++] = rand() % 2 ? 'e' : 'E';
      int r = rand() % 3;
      if (r == 1)
        s[o++] = '-';
      else if (r == 2)
        s[o++] = '+';
      int exp = shape == 3 ? rand() % 400 : rand() % 45;
      o += (size_t)snprintf(s + o, sizeof s - o, "%d", exp);
    }
    s[o] = '\0';
    check_all(s);
  }
}

Test(lite_int, refuses_what_is_not_a_number) {
  int64_t v = 7;
  sb__jl j = {(const uint8_t *)"1e", 2, NULL};
  cr_assert_eq(sb__jl_int(&j, 0, 0, 9, &v), SB_EBADMSG);
  cr_assert_eq(v, 0);
  j = (sb__jl){(const uint8_t *)"-", 1, NULL};
  cr_assert_eq(sb__jl_int(&j, 0, 0, 9, &v), SB_EBADMSG);
  j = (sb__jl){(const uint8_t *)"1.2.3", 5, NULL};
  cr_assert_eq(sb__jl_int(&j, 0, 0, 9, &v), SB_EBADMSG);
}
