/* SPDX-License-Identifier: MIT */
/* test_token.c - token generation, validation and comparison. */
#include "unit.h"
#include "sb_internal.h"

#include <string.h>

Test(token, a_new_token_is_64_lowercase_hex_digits) {
  char t[SB_TOKEN_HEX + 1];
  memset(t, 'X', sizeof t);
  int r = sb_token_new(t);
  cr_assert_eq(r, 0, "sb_token_new: %s", sb_strerror(r));
  cr_assert_eq(strlen(t), SB_TOKEN_HEX, "token of %zu characters", strlen(t));
  for (size_t i = 0; i < SB_TOKEN_HEX; i++)
    cr_assert(strchr("0123456789abcdef", t[i]) != NULL, "character %zu is '%c'", i, t[i]);
  cr_assert(sb_token_valid(t), "a new token is not valid");
}

Test(token, two_new_tokens_differ) {
  char a[SB_TOKEN_HEX + 1], b[SB_TOKEN_HEX + 1];
  cr_assert_eq(sb_token_new(a), 0);
  cr_assert_eq(sb_token_new(b), 0);
  cr_assert_str_neq(a, b, "two tokens are both %s", a);
}

Test(token, new_tokens_use_every_hex_digit) {
  /* 64 tokens of 64 digits: all 16 digits appear unless getrandom is
   * broken (odds of a miss are about 16 * (15/16)^4096). */
  bool seen[16] = {false};
  for (int k = 0; k < 64; k++) {
    char t[SB_TOKEN_HEX + 1];
    cr_assert_eq(sb_token_new(t), 0);
    for (size_t i = 0; i < SB_TOKEN_HEX; i++)
      seen[t[i] <= '9' ? t[i] - '0' : t[i] - 'a' + 10] = true;
  }
  for (int d = 0; d < 16; d++)
    cr_assert(seen[d], "hex digit %x never appeared", d);
}

Test(token, equal_tokens_compare_equal) {
  char a[] = TEST_TOKEN, b[] = TEST_TOKEN;
  cr_assert(sb_token_equal(a, b), "equal tokens compare unequal");
  cr_assert(sb_token_equal("", ""), "two empty strings compare unequal");
}

Test(token, tokens_differing_anywhere_compare_unequal) {
  char a[] = TEST_TOKEN;
  for (size_t i = 0; i < SB_TOKEN_HEX; i++) {
    char b[] = TEST_TOKEN;
    b[i] = b[i] == 'a' ? 'b' : 'a';
    cr_assert(!sb_token_equal(a, b), "tokens differing at %zu compare equal", i);
    cr_assert(!sb_token_equal(b, a), "tokens differing at %zu compare equal (swapped)",
              i);
  }
}

Test(token, tokens_of_different_lengths_compare_unequal) {
  char a[] = TEST_TOKEN;
  char shorter[] = TEST_TOKEN;
  shorter[SB_TOKEN_HEX - 1] = '\0';
  char longer[] = TEST_TOKEN "0";
  cr_assert(!sb_token_equal(a, shorter), "a prefix compares equal");
  cr_assert(!sb_token_equal(shorter, a), "a prefix compares equal (swapped)");
  cr_assert(!sb_token_equal(a, longer), "a longer string compares equal");
  cr_assert(!sb_token_equal(longer, a), "a longer string compares equal (swapped)");
  cr_assert(!sb_token_equal(a, ""), "empty compares equal");
  cr_assert(!sb_token_equal("", a), "empty compares equal (swapped)");
  cr_assert(!sb_token_equal(a, NULL), "NULL compares equal");
  cr_assert(!sb_token_equal(NULL, NULL), "NULL compares equal to NULL");
}

Test(token, validation_wants_exactly_64_lowercase_hex_digits) {
  char t[] = TEST_TOKEN;
  cr_assert(sb_token_valid(t));
  cr_assert(!sb_token_valid(NULL));
  cr_assert(!sb_token_valid(""));
  char upper[] = TEST_TOKEN;
  upper[10] = 'A';
  cr_assert(!sb_token_valid(upper), "upper case accepted");
  char g[] = TEST_TOKEN;
  g[63] = 'g';
  cr_assert(!sb_token_valid(g), "'g' accepted");
  char shorter[] = TEST_TOKEN;
  shorter[63] = '\0';
  cr_assert(!sb_token_valid(shorter), "63 digits accepted");
  cr_assert(!sb_token_valid(TEST_TOKEN "0"), "65 digits accepted");
  cr_assert(!sb_token_valid(TEST_TOKEN "\n"), "a trailing newline accepted");
}
