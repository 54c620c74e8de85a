/* SPDX-License-Identifier: MIT */
/* test_fmt.c - the stub's snprintf (stub/fmt.c, compiled into the stub
 * alone, so its source is compiled in here) against the C library's, for
 * every conversion it supports; and what it does with the others. */
#include "unit.h"

#include "../../stub/fmt.c"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Formats with both, into buffers of every size up to the whole text's
 * and one more; asserts the same text, the same NUL and the same return. */
#define SAME(...)                                                                        \
  do {                                                                                   \
    char want[256], got[256];                                                            \
    int w = snprintf(want, sizeof want, __VA_ARGS__);                                    \
    int g = sb__snprintf(got, sizeof got, __VA_ARGS__);                                  \
    cr_assert_eq(g, w, "%s: returned %d, snprintf %d", #__VA_ARGS__, g, w);              \
    cr_assert_str_eq(got, want, "%s", #__VA_ARGS__);                                     \
    for (size_t size = 0; size <= (size_t)w + 1; size++) {                               \
      memset(want, 'x', sizeof want);                                                    \
      memset(got, 'x', sizeof got);                                                      \
      w = snprintf(want, size, __VA_ARGS__);                                             \
      g = sb__snprintf(got, size, __VA_ARGS__);                                          \
      cr_assert_eq(g, w, "%s, size %zu", #__VA_ARGS__, size);                            \
      cr_assert_eq(memcmp(got, want, sizeof want), 0, "%s, size %zu", #__VA_ARGS__,      \
                   size);                                                                \
    }                                                                                    \
  } while (0)

Test(fmt, formats_every_conversion_the_stub_uses_as_snprintf_does) {
  const char *volatile null = NULL; /* unknown to the compiler */
  SAME("plain text, no conversion");
  SAME("%s", "");
  SAME("%s and %s", "one", "two");
  SAME("%s", null);
  SAME("%%");
  SAME("100%% of %s", "it");
  SAME("%d %d %d %d", 0, -1, INT_MAX, INT_MIN);
  SAME("%i", -42);
  SAME("%u %u", 0u, UINT_MAX);
  SAME("%zu %zu", (size_t)0, SIZE_MAX);
  SAME("%lld %lld %lld", 0LL, LLONG_MAX, LLONG_MIN);
  SAME("%llu", ULLONG_MAX);
  SAME("%ld %lu", LONG_MIN, ULONG_MAX);
  SAME("%x %X %x", 0xdeadbeefu, 0xabcdefu, 0u);
  SAME("0x%02x 0x%02x 0x%02x", 0u, 0x1fu, 0xabcu);
  SAME("%c%c%c", 'a', ' ', '~');
  SAME("%.64s", "short");
  SAME("%.3s|%.0s|%.10s", "abcdef", "gone", "abc");
  SAME("%.*s", 4, "abcdefgh");
  SAME("%.*s", -1, "abcdefgh");
  SAME("%5s|%-5s|%5d|%-5d|%05d|%05d", "ab", "ab", 42, 42, 42, -42);
  SAME("%*d|%*d|%-*s|", 6, 7, -6, 7, 4, "x");
  SAME("%.3d|%.0d|%.0d|%8.3d|%-8.3d", 7, 0, 1, -7, 7);
  SAME("%3c|%-3c|", 'x', 'y');
  SAME("%02x%02x%02x", 1u, 255u, 16u);
  SAME("cannot %s '%s': %s%s%s%s", "exec", "prog", "", "", "", "No such file");
  SAME("%s%s%s:%u", "[", "::1", "]", 65535u);
  SAME("control message: NUL byte at offset %zu", (size_t)123456);
  SAME("%s.%s: expected an integer in %lld..%lld", "hello", "pid", 1LL, 2147483647LL);
}

/* The conversions the stub has no use for are not guessed at: the text
 * from the conversion on is written as it stands, and no argument read. */
Test(fmt, writes_an_unknown_conversion_and_the_rest_as_they_stand) {
  char buf[64];
  cr_assert_eq(sb__snprintf(buf, sizeof buf, "a %d b %f c %s", 1, 2.5, "x"), 13);
  cr_assert_str_eq(buf, "a 1 b %f c %s");
  sb__snprintf(buf, sizeof buf, "%+d|%p|%hd", 1, (void *)buf, (short)1);
  cr_assert_str_eq(buf, "%+d|%p|%hd");
}

Test(fmt, a_long_text_is_cut_and_still_ends_in_nul) {
  char buf[8];
  cr_assert_eq(sb__snprintf(buf, sizeof buf, "%s-%d", "abcdefgh", 12345), 14);
  cr_assert_str_eq(buf, "abcdefg");
  cr_assert_eq(sb__snprintf(NULL, 0, "%s", "abc"), 3);
}
