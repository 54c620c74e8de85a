/* SPDX-License-Identifier: MIT */
/* unit.h - helpers shared by the unit tests of lib/. */
#ifndef SB_UNIT_H
#define SB_UNIT_H

#include "proto.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

/* A token that is valid but secret-looking, and one that is not valid. */
#define TEST_TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Encodes m, decodes the frame, parses it into *out; asserts on every step
 * (the frame is one whole control frame of the announced length). */
void unit_roundtrip(const sb_msg *m, sb_msg *out);

/* Asserts that two messages hold the same fields. */
void unit_assert_msg_eq(const sb_msg *want, const sb_msg *got);

/* Parses a NUL-terminated JSON text. */
int unit_parse(const char *json, sb_msg *out, sb_diag *diag);

/* A strv borrowing a NULL-terminated array of literals. */
sb_strv unit_strv(char **v);

#endif
