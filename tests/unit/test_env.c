/* SPDX-License-Identifier: MIT */
/* test_env.c - environments (lib/env.c): the value of a name, the entries a
 * name covers, the bridge's variables, and an environment edited. */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- sb__env_is: the SOCKETBRIDGE_TOKEN filter, and every lookup's test --- */

Test(env, an_entry_is_its_name_followed_by_an_equals_sign) {
  cr_assert(sb__env_is("PATH=/bin", "PATH"));
  cr_assert(sb__env_is("PATH=", "PATH"), "an empty value is a value");
  cr_assert(sb__env_is("A==", "A"), "the value may start with '='");
}

Test(env, a_name_that_is_a_prefix_of_another_is_not_that_other) {
  cr_assert_not(sb__env_is("PATHX=/bin", "PATH"));
  cr_assert_not(sb__env_is("PATH=/bin", "PATHX"));
  cr_assert_not(sb__env_is("PAT=/bin", "PATH"));
  cr_assert_not(sb__env_is("path=/bin", "PATH"), "names are case-sensitive");
}

Test(env, a_bare_name_without_equals_sign_sets_nothing) {
  cr_assert_not(sb__env_is("PATH", "PATH"));
  cr_assert_not(sb__env_is("", "PATH"));
}

Test(env, an_empty_name_or_one_holding_equals_names_no_entry) {
  cr_assert_not(sb__env_is("=x", ""), "the empty name matched an entry \"=x\"");
  cr_assert_not(sb__env_is("A=B=C", "A=B"), "a name holding '=' matched");
}

Test(env, an_entry_has_a_value_when_it_holds_an_equals_sign) {
  cr_assert(sb__env_has_value("A=1"));
  cr_assert(sb__env_has_value("A="));
  cr_assert(sb__env_has_value("=x"));
  cr_assert(sb__env_has_value("A=b=c"));
  cr_assert_not(sb__env_has_value("A"));
  cr_assert_not(sb__env_has_value(""));
}

Test(env, the_token_filter_takes_the_token_and_nothing_else) {
  cr_assert(sb__env_is(SB_ENV_TOKEN "=" TEST_TOKEN, SB_ENV_TOKEN));
  cr_assert(sb__env_is(SB_ENV_TOKEN "=", SB_ENV_TOKEN));
  cr_assert_not(sb__env_is(SB_ENV_TOKEN "X=1", SB_ENV_TOKEN));
  cr_assert_not(sb__env_is("X" SB_ENV_TOKEN "=1", SB_ENV_TOKEN));
  cr_assert_not(sb__env_is(SB_ENV_TOKEN, SB_ENV_TOKEN));
}

/* ---- sb__env_value, sb__env_value_n --------------------------------------- */

Test(env, the_value_of_a_name_is_what_follows_its_equals_sign) {
  char *env[] = {"HOME=/root", "PATHX=/no", "PATH=/bin:/usr/bin", "EMPTY=", NULL};
  cr_assert_str_eq(sb__env_value(env, "PATH"), "/bin:/usr/bin");
  cr_assert_eq(sb__env_value(env, "PATH"), env[2] + 5, "not a pointer into the entry");
  cr_assert_str_eq(sb__env_value(env, "PATHX"), "/no");
  cr_assert_str_eq(sb__env_value(env, "EMPTY"), "", "an empty value is not unset");
  cr_assert_null(sb__env_value(env, "PAT"), "a prefix of a name matched");
  cr_assert_null(sb__env_value(env, "HOME=/root"), "a name holding '=' matched");
  cr_assert_null(sb__env_value(env, ""), "the empty name matched");
}

Test(env, the_first_entry_wins_as_getenv_unless_the_last_is_asked) {
  char *env[] = {"CI=0", "X=1", "CI=1", "CI=2", NULL};
  cr_assert_str_eq(sb__env_value(env, "CI"), "0");
  cr_assert_str_eq(sb__env_value_n(env, SIZE_MAX, "CI", SB__ENV_FIRST), "0");
  cr_assert_str_eq(sb__env_value_n(env, SIZE_MAX, "CI", SB__ENV_LAST), "2");
  cr_assert_str_eq(sb__env_value_n(env, 3, "CI", SB__ENV_LAST), "1",
                   "an entry past n was read");
  cr_assert_str_eq(sb__env_value_n(env, SIZE_MAX, "X", SB__ENV_LAST), "1");
}

Test(env, a_counted_env_needs_no_null_and_stops_at_one) {
  char *counted[] = {"A=1", "B=2"}; /* no NULL: n alone bounds it */
  cr_assert_str_eq(sb__env_value_n(counted, 2, "B", SB__ENV_FIRST), "2");
  cr_assert_null(sb__env_value_n(counted, 1, "B", SB__ENV_FIRST));
  cr_assert_null(sb__env_value_n(counted, 0, "A", SB__ENV_FIRST));
  char *ended[] = {"A=1", NULL, "B=2"};
  cr_assert_null(sb__env_value_n(ended, 3, "B", SB__ENV_LAST), "read past the NULL");
}

Test(env, no_env_or_an_empty_one_has_no_values) {
  char *empty[] = {NULL};
  cr_assert_null(sb__env_value(NULL, "PATH"));
  cr_assert_null(sb__env_value(empty, "PATH"));
  cr_assert_null(sb__env_value_n(NULL, 5, "PATH", SB__ENV_LAST));
}

/* ---- sb__bridge_var -------------------------------------------------------- */

Test(env, the_bridge_variables_are_the_six_a_ticket_decides) {
  const char *names[] = {SB_ENV_TOKEN,  SB_ENV_PORT,      SB_ENV_HOST,
                         SB_ENV_SOCKET, SB_ENV_MAX_BYTES, SB_ENV_STUB};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    cr_assert_str_eq(sb__bridge_var(names[i], strlen(names[i])), names[i]);
  /* Variables of socketbridge's own that a user or a rule may set. */
  cr_assert_null(sb__bridge_var(SB_ENV_SHIMS, strlen(SB_ENV_SHIMS)));
  cr_assert_null(sb__bridge_var(SB_ENV_DEPTH, strlen(SB_ENV_DEPTH)));
  cr_assert_null(sb__bridge_var(SB_ENV_ALLOWLIST, strlen(SB_ENV_ALLOWLIST)));
}

Test(env, a_bridge_variable_is_named_by_a_length_into_an_entry) {
  const char *e = SB_ENV_PORT "=1234";
  cr_assert_str_eq(sb__bridge_var(e, strlen(SB_ENV_PORT)), SB_ENV_PORT);
  cr_assert_null(sb__bridge_var(e, strlen(e)), "the whole entry is not a name");
  cr_assert_null(sb__bridge_var(e, strlen(SB_ENV_PORT) - 1), "a prefix matched");
  cr_assert_null(sb__bridge_var(SB_ENV_PORT "X", strlen(SB_ENV_PORT) + 1));
  cr_assert_null(sb__bridge_var("", 0), "the empty name matched");
}

/* ---- sb__env_apply ---------------------------------------------------------- */

static void expect_env(char **got, char **want) {
  size_t i = 0;
  for (; want[i] != NULL; i++) {
    cr_assert_not_null(got[i], "entry %zu: missing, want %s", i, want[i]);
    cr_assert_str_eq(got[i], want[i], "entry %zu", i);
  }
  cr_assert_null(got[i], "entry %zu: %s, want the end", i, got[i]);
}

Test(env, apply_removes_unset_names_and_keeps_the_order_of_the_rest) {
  char *base[] = {"A=1", "PATH=/bin", "PATHX=2", "B=3", NULL};
  char *unset[] = {"PATH", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, unset, NULL, &env), 0);
  expect_env(env, (char *[]){"A=1", "PATHX=2", "B=3", NULL});
  cr_assert_eq(env[0], base[0], "the strings are borrowed, not copied");
  free(env);
}

Test(env, apply_puts_a_set_name_last_in_place_of_the_base_one) {
  char *base[] = {"A=1", "B=2", "C=3", NULL};
  char *set[] = {"B=new", "D=4", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, NULL, set, &env), 0);
  expect_env(env, (char *[]){"A=1", "C=3", "B=new", "D=4", NULL});
  free(env);
}

Test(env, apply_keeps_only_the_last_of_two_set_entries_for_one_name) {
  char *base[] = {"A=1", NULL};
  char *set[] = {"X=first", "A=2", "X=last", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, NULL, set, &env), 0);
  expect_env(env, (char *[]){"A=2", "X=last", NULL});
  free(env);
}

Test(env, apply_sets_a_name_it_also_unsets) {
  char *base[] = {"A=1", "B=2", NULL};
  char *unset[] = {"A", "B=ignored", NULL};
  char *set[] = {"A=again", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, unset, set, &env), 0);
  expect_env(env, (char *[]){"A=again", NULL});
  free(env);
}

Test(env, apply_leaves_duplicates_of_the_base_alone) {
  /* Which of two base entries counts is the reader's choice (getenv: the
   * first): the edit neither picks one nor reorders them. */
  char *base[] = {"A=1", "B=2", "A=3", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, NULL, NULL, &env), 0);
  expect_env(env, base);
  free(env);
}

Test(env, apply_takes_a_prefix_name_for_no_other) {
  char *base[] = {"PATH=/bin", "PATHX=1", "PAT=2", NULL};
  char *unset[] = {"PATHX", NULL};
  char *set[] = {"PAT=3", NULL};
  char **env;
  cr_assert_eq(sb__env_apply(base, unset, set, &env), 0);
  expect_env(env, (char *[]){"PATH=/bin", "PAT=3", NULL});
  free(env);
}

Test(env, apply_of_nothing_is_an_empty_environment) {
  char **env;
  cr_assert_eq(sb__env_apply(NULL, NULL, NULL, &env), 0);
  cr_assert_not_null(env);
  cr_assert_null(env[0]);
  free(env);
}
