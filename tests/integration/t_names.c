/* SPDX-License-Identifier: MIT */
/* The public enums of the supervisor and their names are one list each
 * (SB_EVENT_TYPE_MAP, SB_CLOSE_REASON_MAP in socketbridge.h): every value
 * a list gives has its name, values are distinct, others are "unknown". */
#include <string.h>

#include <criterion/criterion.h>

#include "socketbridge.h"

typedef struct named {
  int value;
  const char *name;
} named;

#define ROW(id, value, name) {id, name},

static void check(const char *what, const named *rows, size_t n,
                  const char *(*name_of)(int)) {
  for (size_t i = 0; i < n; i++) {
    cr_assert_str_eq(name_of(rows[i].value), rows[i].name, "%s %d", what, rows[i].value);
    for (size_t j = 0; j < i; j++)
      cr_assert_neq(rows[j].value, rows[i].value, "%s: %s and %s share a value", what,
                    rows[j].name, rows[i].name);
  }
  cr_assert_str_eq(name_of(0), "unknown", "%s 0", what);
  cr_assert_str_eq(name_of(999), "unknown", "%s 999", what);
}

static const char *event_name(int v) {
  return sb_event_type_name((sb_event_type)v);
}
static const char *close_name(int v) {
  return sb_close_reason_name((sb_close_reason)v);
}

Test(names, event_types_from_sb_event_type_map) {
  static const named rows[] = {SB_EVENT_TYPE_MAP(ROW)};
  check("event", rows, sizeof rows / sizeof rows[0], event_name);
  cr_assert_str_eq(sb_event_type_name(SB_EVENT_ACCEPT_RESUMED), "accept_resumed");
}

Test(names, close_reasons_from_sb_close_reason_map) {
  static const named rows[] = {SB_CLOSE_REASON_MAP(ROW)};
  check("close reason", rows, sizeof rows / sizeof rows[0], close_name);
}
