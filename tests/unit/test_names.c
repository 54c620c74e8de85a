/* SPDX-License-Identifier: MIT */
/* test_names.c - each enum of lib/ and its names are one list (the
 * SB_*_MAP X-macros): every value the list gives has its name, the name
 * reads back as the value, values are distinct, and a value outside the
 * list has no name. The rules file's actions are such a list too. */
#include "unit.h"

#include "rules.h"

#include <string.h>

typedef struct named {
  int value;
  const char *name;
} named;

#define ROW(id, value, name) {id, name},

/* The table a list makes, checked against the lookups of its enum. */
static void check(const char *what, const named *rows, size_t n,
                  const char *(*name_of)(int), int (*value_of)(const char *)) {
  for (size_t i = 0; i < n; i++) {
    cr_assert_str_eq(name_of(rows[i].value), rows[i].name, "%s %d", what, rows[i].value);
    if (value_of != NULL)
      cr_assert_eq(value_of(rows[i].name), rows[i].value, "%s \"%s\"", what,
                   rows[i].name);
    for (size_t j = 0; j < i; j++)
      cr_assert_neq(rows[j].value, rows[i].value, "%s: %s and %s share a value", what,
                    rows[j].name, rows[i].name);
  }
  if (value_of != NULL)
    cr_assert_eq(value_of("no-such-name"), 0, "%s: an unknown name has a value", what);
}

static const char *reason_name(int v) {
  return sb_reason_name((sb_reason)v);
}
static int reason_value(const char *s) {
  return (int)sb_reason_from_name(s);
}
static const char *type_name(int v) {
  return sb_msg_type_name((sb_msg_type)v);
}
static int type_value(const char *s) {
  return (int)sb__msg_type_from_name(s);
}

Test(names, reasons_from_sb_reason_map) {
  static const named rows[] = {SB_REASON_MAP(ROW)};
  check("reason", rows, sizeof rows / sizeof rows[0], reason_name, reason_value);
  cr_assert_null(sb_reason_name(0));
  cr_assert_null(sb_reason_name((sb_reason)99));
  cr_assert_eq(sb_reason_from_name(NULL), 0);
}

Test(names, message_types_from_sb_msg_type_map) {
  static const named rows[] = {SB_MSG_TYPE_MAP(ROW)};
  check("type", rows, sizeof rows / sizeof rows[0], type_name, type_value);
  cr_assert_null(sb_msg_type_name(0));
  cr_assert_null(sb_msg_type_name((sb_msg_type)99));
}

Test(names, frame_kinds_from_sb_kind_map) {
  static const named rows[] = {SB_KIND_MAP(ROW)};
  check("kind", rows, sizeof rows / sizeof rows[0], sb_kind_name, NULL);
  cr_assert_str_eq(sb_kind_name(99), "unknown");
}

Test(names, errors_from_sb_errno_map) {
#define ERR_ROW(id, value, text) {id, &#id[3]},
  static const named rows[] = {SB_ERRNO_MAP(ERR_ROW)};
  check("error", rows, sizeof rows / sizeof rows[0], sb_err_name, NULL);
  cr_assert_str_eq(sb_strerror(SB_EMSGSIZE), "frame too large (over max_bytes)");
}

static const char *action_name(int v) {
  return rules_action_name((rule_action)v);
}

Test(names, rule_actions_from_rule_action_map) {
  static const named rows[] = {RULE_ACTION_MAP(ROW)};
  check("action", rows, sizeof rows / sizeof rows[0], action_name, NULL);
  cr_assert_null(rules_action_name(0));
}
