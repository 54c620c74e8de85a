/* SPDX-License-Identifier: MIT */
/* test_msg_reject.c - control payloads the parser must refuse, and the
 * diagnostics that say which field was wrong. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* A hello put together from its members, each ending with a comma, so a
 * case can replace or drop any one of them. */
#define H_TTY "\"tty\":{\"stdin\":true,\"stdout\":false,\"stderr\":false},"
#define H_VERSION "\"version\":1,"
#define H_TOKEN "\"token\":\"" TEST_TOKEN "\","
#define H_PIDS "\"pid\":2,\"ppid\":1,"
#define H_ARGV "\"argv\":[\"a\"],"
#define H_ENV "\"env\":[\"A=1\"],"
#define H_PATHS "\"cwd\":null,\"exe\":null,"
#define HELLO(y, v, t, p, a, e, c) "{" y v t p a e c "\"type\":\"hello\"}"
#define HELLO_OK HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, H_PATHS)

typedef struct bad_case {
  char json[400];
  char diag[96]; /* what the diag must contain */
} bad_case;

Test(msg_reject, the_hello_the_table_starts_from_is_valid) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(HELLO_OK, &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  sb_msg_free(&m);
}

ParameterizedTestParameters(msg_reject, refuses_a_malformed_message_naming_the_field) {
  static bad_case cases[] = {
      /* the payload as a whole */
      {"", "empty payload"},
      {"[]", "not a JSON object"},
      {"\"welcome\"", "not a JSON object"},
      {"null", "not a JSON object"},
      {"{", "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,}", "invalid JSON"},
      {"{'type':'welcome'}", "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1} x",
       "data after the JSON value at offset 31"},
      {"{\"type\":\"welcome\",\"version\":1}{}", "data after the JSON value"},
      /* type */
      {"{}", "message.type: missing"},
      {"{\"type\":1}", "message.type: expected a string"},
      {"{\"type\":null}", "message.type: expected a string"},
      {"{\"type\":\"nope\"}", "message.type: unknown type \"nope\""},
      {"{\"type\":\"Hello\"}", "unknown type"},
      {"{\"type\":\"welcome\",\"type\":\"exit\",\"version\":1}",
       "message.type: given twice"},
      /* welcome */
      {"{\"type\":\"welcome\"}", "welcome.version: missing"},
      {"{\"type\":\"welcome\",\"version\":\"1\"}",
       "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":0}",
       "welcome.version: expected an integer in 1..65535"},
      {"{\"type\":\"welcome\",\"version\":65536}",
       "welcome.version: expected an integer in"},
      {"{\"type\":\"welcome\",\"version\":1.5}", "welcome.version: expected an integer"},
      /* not an integer as written (cJSON read inf, out of range) */
      {"{\"type\":\"welcome\",\"version\":1e400}",
       "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":1e6}", "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":true}", "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":1,\"version\":2}",
       "welcome.version: given twice"},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":0}",
       "welcome.stdin: expected true or false"},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":\"false\"}",
       "welcome.stdin: expected true or false"},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":false,\"stdin\":false}",
       "welcome.stdin: given twice"},
      /* reject */
      {"{\"type\":\"reject\",\"message\":\"m\"}", "reject.reason: missing"},
      {"{\"type\":\"reject\",\"reason\":\"nope\",\"message\":\"m\"}",
       "reject.reason: unknown reason \"nope\""},
      {"{\"type\":\"reject\",\"reason\":1,\"message\":\"m\"}",
       "reject.reason: expected a string"},
      {"{\"type\":\"reject\",\"reason\":\"busy\"}", "reject.message: missing"},
      {"{\"type\":\"reject\",\"reason\":\"busy\",\"message\":[]}",
       "reject.message: expected a string"},
      /* exit, exited */
      {"{\"type\":\"exit\"}", "exit: needs exactly one of code and signal"},
      {"{\"type\":\"exit\",\"code\":0,\"signal\":\"TERM\"}",
       "exit: needs exactly one of code and signal"},
      {"{\"type\":\"exited\",\"code\":null,\"signal\":\"TERM\"}",
       "exited: needs exactly one"},
      {"{\"type\":\"exit\",\"code\":256}", "exit.code: expected an integer in 0..255"},
      {"{\"type\":\"exit\",\"code\":-1}", "exit.code: expected an integer in 0..255"},
      {"{\"type\":\"exited\",\"code\":\"0\"}", "exited.code: expected an integer"},
      {"{\"type\":\"exit\",\"signal\":\"SIGTERM\"}",
       "exit.signal: unknown signal name \"SIGTERM\""},
      {"{\"type\":\"exit\",\"signal\":\"term\"}", "exit.signal: unknown signal name"},
      {"{\"type\":\"exit\",\"signal\":\"15\"}", "exit.signal: unknown signal name"},
      {"{\"type\":\"exit\",\"signal\":15}", "exit.signal: expected a signal name"},
      /* signal */
      {"{\"type\":\"signal\"}", "signal.signal: missing"},
      {"{\"type\":\"signal\",\"signal\":\"NOPE\"}", "signal.signal: unknown signal name"},
      {"{\"type\":\"signal\",\"signal\":null}", "signal.signal: expected a signal name"},
      /* stream_error */
      {"{\"type\":\"stream_error\",\"stream\":\"stdin\",\"errno\":32,\"message\":\"\"}",
       "stream_error.stream: expected \"stdout\" or \"stderr\""},
      {"{\"type\":\"stream_error\",\"stream\":1,\"errno\":32,\"message\":\"\"}",
       "stream_error.stream: expected a string"},
      {"{\"type\":\"stream_error\",\"stream\":\"stdout\",\"errno\":0,\"message\":\"\"}",
       "stream_error.errno: expected an integer in 1..4095"},
      {"{\"type\":\"stream_error\",\"stream\":\"stdout\",\"errno\":-32,\"message\":\"\"}",
       "stream_error.errno: expected an integer in"},
      {"{\"type\":\"stream_error\",\"stream\":\"stdout\",\"message\":\"\"}",
       "stream_error.errno: missing"},
      {"{\"type\":\"stream_error\",\"stream\":\"stdout\",\"errno\":32}",
       "stream_error.message: missing"},
      /* exec, run */
      {"{\"type\":\"exec\"}", "exec.argv: missing"},
      {"{\"type\":\"exec\",\"argv\":[]}", "exec.argv: must not be empty"},
      {"{\"type\":\"exec\",\"argv\":\"ls\"}", "exec.argv: expected an array"},
      {"{\"type\":\"run\",\"argv\":[\"ls\",1]}",
       "run.argv[1]: expected a string or {\"base64\": ...}"},
      {"{\"type\":\"run\",\"argv\":[null]}", "run.argv[0]: expected a string or"},
      {"{\"type\":\"run\",\"argv\":[{\"b64\":\"AA==\"}]}",
       "run.argv[0]: expected a string or"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":1}]}",
       "run.argv[0]: expected a string or"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"!!!!\"}]}",
       "run.argv[0].base64: not padded RFC 4648 base64"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"QQ\"}]}",
       "run.argv[0].base64: not padded"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"QUEA\"}]}",
       "run.argv[0].base64: decodes to bytes with a NUL"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"path\":1}",
       "exec.path: expected a string or"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"cwd\":[]}",
       "exec.cwd: expected a string or"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"env\":{}}", "exec.env: expected an array"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"env\":[\"A=1\",\"NOEQ\"]}",
       "exec.env[1]: expected NAME=VALUE"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"env\":[\"\"]}",
       "run.env[0]: expected NAME=VALUE"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"unset\":\"A\"}",
       "exec.unset: expected an array"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"unset\":[\"A\",\"B=1\"]}",
       "exec.unset[1]: expected a variable name"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"unset\":[\"\"]}",
       "run.unset[0]: expected a variable name"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"unset\":[\"=\"]}",
       "run.unset[0]: expected a variable name"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"unset\":[1]}",
       "run.unset[0]: expected a string or"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"tee\":\"yes\"}",
       "run.tee: expected true or false"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"tee\":1}",
       "run.tee: expected true or false"},
      /* hello, one member at a time */
      {HELLO(H_TTY, "", H_TOKEN, H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.version: missing"},
      {HELLO(H_TTY, "\"version\":0,", H_TOKEN, H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.version: expected an integer in 1..65535"},
      {HELLO(H_TTY, "\"version\":1,\"min_version\":2,", H_TOKEN, H_PIDS, H_ARGV, H_ENV,
             H_PATHS),
       "hello.min_version: expected an integer in 1..1"},
      {HELLO(H_TTY, "\"version\":3,\"min_version\":0,", H_TOKEN, H_PIDS, H_ARGV, H_ENV,
             H_PATHS),
       "hello.min_version: expected an integer in 1..3"},
      {HELLO(H_TTY, H_VERSION, "", H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.token: missing"},
      {HELLO(H_TTY, H_VERSION, "\"token\":\"abc\",", H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.token: not 64 lowercase hex digits"},
      {HELLO(H_TTY, H_VERSION, "\"token\":1,", H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.token: expected a string"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, "\"pid\":0,\"ppid\":1,", H_ARGV, H_ENV, H_PATHS),
       "hello.pid: expected an integer in 1..2147483647"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, "\"pid\":2147483648,\"ppid\":1,", H_ARGV, H_ENV,
             H_PATHS),
       "hello.pid: expected an integer in"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, "\"pid\":2,\"ppid\":-1,", H_ARGV, H_ENV, H_PATHS),
       "hello.ppid: expected an integer in 0..2147483647"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, "\"pid\":2,", H_ARGV, H_ENV, H_PATHS),
       "hello.ppid: missing"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, "", H_ENV, H_PATHS),
       "hello.argv: missing"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, "\"argv\":[\"a\",\"b\",\"c\",5],", H_ENV,
             H_PATHS),
       "hello.argv[3]: expected a string or {\"base64\": ...}"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, "", H_PATHS),
       "hello.env: missing"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, "\"env\":[\"A\"],", H_PATHS),
       "hello.env[0]: expected NAME=VALUE"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, "\"env\":null,", H_PATHS),
       "hello.env: expected an array"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, "\"exe\":null,"),
       "hello.cwd: missing"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, "\"cwd\":null,"),
       "hello.exe: missing"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, "\"cwd\":1,\"exe\":null,"),
       "hello.cwd: expected a string or"},
      {HELLO(H_TTY, H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV,
             "\"cwd\":null,\"exe\":false,"),
       "hello.exe: expected a string or"},
      {HELLO("", H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.tty: missing"},
      {HELLO("\"tty\":7,", H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.tty: expected an object"},
      {HELLO("\"tty\":{\"stdout\":true,\"stderr\":true},", H_VERSION, H_TOKEN, H_PIDS,
             H_ARGV, H_ENV, H_PATHS),
       "hello.tty.stdin: missing"},
      {HELLO("\"tty\":{\"stdin\":true,\"stdout\":1,\"stderr\":true},", H_VERSION, H_TOKEN,
             H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.tty.stdout: expected true or false"},
      {HELLO(H_TTY "\"winsize\":[24,80],", H_VERSION, H_TOKEN, H_PIDS, H_ARGV, H_ENV,
             H_PATHS),
       "hello.winsize: expected an object"},
      {HELLO(H_TTY "\"winsize\":{\"cols\":80},", H_VERSION, H_TOKEN, H_PIDS, H_ARGV,
             H_ENV, H_PATHS),
       "hello.winsize.rows: missing"},
      {HELLO(H_TTY "\"winsize\":{\"rows\":24,\"cols\":65536},", H_VERSION, H_TOKEN,
             H_PIDS, H_ARGV, H_ENV, H_PATHS),
       "hello.winsize.cols: expected an integer in 0..65535"},
      {"{\"type\":\"winsize\",\"rows\":24}", "winsize.cols: missing"},
      {"{\"type\":\"winsize\",\"rows\":-1,\"cols\":80}",
       "winsize.rows: expected an integer in 0..65535"},
  };
  return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, msg_reject, refuses_a_malformed_message_naming_the_field) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(c->json, &m, &diag);
  cr_assert_eq(r, SB_EBADMSG, "%s: returned %d (%s), want EBADMSG", c->json, r,
               sb_err_name(r));
  cr_assert(strstr(diag.msg, c->diag) != NULL, "%s: diag \"%s\" lacks \"%s\"", c->json,
            diag.msg, c->diag);
  sb_msg zero;
  memset(&zero, 0, sizeof zero);
  cr_assert_arr_eq(&m, &zero, sizeof m, "%s: output not left empty", c->json);
}

/* ---- bytes the JSON parser must never see ------------------------------ */

typedef struct raw_case {
  char json[64];
  size_t len; /* 0: strlen */
  char diag[64];
} raw_case;

ParameterizedTestParameters(msg_reject, refuses_invalid_utf8_nul_and_control_bytes) {
  static raw_case cases[] = {
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xff\"}", 0, "invalid UTF-8 at offset 29"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xc0\xaf\"}", 0,
       "invalid UTF-8 at offset 29"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xe0\x80\xaf\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xf0\x80\x80\xaf\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xed\xa0\x80\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xed\xbf\xbf\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xf4\x90\x80\x80\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xf5\x80\x80\x80\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\x80\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xe2\x82\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0}\xc3", 0, "invalid UTF-8 at offset 24"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\u0000\"}", 0,
       "\\u0000 escape at offset 29"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"a\\\\\\u0000\"}", 0, "\\u0000 escape"},
      {"{\"type\":\"exit\",\"code\":0,\"\\u0000\":1}", 0, "\\u0000 escape"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\0\"}", 31, "NUL byte at offset 29"},
      {"{\"type\":\"exit\",\"code\":0}\0", 25, "NUL byte at offset 24"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\x01\"}", 0, "control character 0x01"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"a\nb\"}", 0, "control character 0x0a"},
  };
  return cr_make_param_array(raw_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(raw_case *c, msg_reject, refuses_invalid_utf8_nul_and_control_bytes) {
  sb_msg m;
  sb_diag diag = {""};
  size_t len = c->len != 0 ? c->len : strlen(c->json);
  int r = sb_msg_parse((const uint8_t *)c->json, len, &m, &diag);
  cr_assert_eq(r, SB_EBADMSG, "%s: returned %d, want EBADMSG", c->json, r);
  cr_assert(strstr(diag.msg, c->diag) != NULL, "diag \"%s\" lacks \"%s\"", diag.msg,
            c->diag);
  sb_msg zero;
  memset(&zero, 0, sizeof zero);
  cr_assert_arr_eq(&m, &zero, sizeof m, "%s: output not left empty", c->json);
}

Test(msg_reject, accepts_an_escaped_backslash_before_u0000_text) {
  /* "\\u0000" is a backslash and the text u0000, not a NUL. */
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(
      "{\"type\":\"reject\",\"reason\":\"busy\",\"message\":\"\\\\u0000\"}", &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_str_eq(m.u.reject.message, "\\u0000");
  sb_msg_free(&m);
}

Test(msg_reject, accepts_valid_multibyte_utf8_and_escaped_surrogate_pairs) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(
      "{\"type\":\"reject\",\"reason\":\"busy\",\"message\":"
      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\\ud83d\\ude00\"}",
      &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_str_eq(
      m.u.reject.message,
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf0\x9f\x98\x80");
  sb_msg_free(&m);
}

static char *nested(size_t depth) {
  static const char head[] = "{\"type\":\"welcome\",\"version\":1,\"x\":";
  size_t len = sizeof head - 1 + 2 * depth + 2;
  char *s = malloc(len);
  cr_assert_not_null(s);
  memcpy(s, head, sizeof head - 1);
  memset(s + sizeof head - 1, '[', depth);
  memset(s + sizeof head - 1 + depth, ']', depth);
  s[len - 2] = '}';
  s[len - 1] = '\0';
  return s;
}

Test(msg_reject, refuses_nesting_10000_levels_deep) {
  char *s = nested(10000);
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(s, &m, &diag);
  cr_assert_eq(r, SB_EBADMSG, "returned %d", r);
  cr_assert(strstr(diag.msg, "nested deeper than"), "diag: %s", diag.msg);
  free(s);
}

Test(msg_reject, accepts_nesting_within_the_limit) {
  char *s = nested(998); /* plus the message object: 999 levels */
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(s, &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  sb_msg_free(&m);
  free(s);
}

Test(msg_reject, never_quotes_a_token_in_a_diag) {
  /* A token one character short, one too long, one in upper case: the diag
   * must not show any of it. */
  const char *tokens[] = {
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
  };
  for (size_t i = 0; i < 3; i++) {
    char json[600];
    snprintf(json, sizeof json,
             "{\"type\":\"hello\",\"version\":1,\"token\":\"%s\",\"pid\":2,\"ppid\":1,"
             "\"argv\":[],\"env\":[],\"cwd\":null,\"exe\":null,\"tty\":{\"stdin\":true,"
             "\"stdout\":true,\"stderr\":true}}",
             tokens[i]);
    sb_msg m;
    sb_diag diag = {""};
    int r = unit_parse(json, &m, &diag);
    cr_assert_eq(r, SB_EBADMSG, "token %zu accepted", i);
    cr_assert(strstr(diag.msg, "0123456789") == NULL, "diag shows the token: %s",
              diag.msg);
    cr_assert(strstr(diag.msg, "hello.token"), "diag does not name the field: %s",
              diag.msg);
  }
}

/* A peer may put a token (or part of one) in any string the diag quotes:
 * an unknown type, reason or signal name. */
Test(msg_reject, never_quotes_a_token_put_in_another_field) {
  const char *tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  static const struct {
    const char *pre;
    int len; /* of the token put there */
    const char *post;
  } cases[] = {
      {"{\"type\":\"", 64, "\"}"},
      {"{\"type\":\"x", 20, "\"}"},
      {"{\"type\":\"reject\",\"reason\":\"", 64, "\",\"message\":\"m\"}"},
      {"{\"type\":\"signal\",\"signal\":\"TERM", 16, "\"}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[256];
    snprintf(json, sizeof json, "%s%.*s%s", cases[i].pre, cases[i].len, tok,
             cases[i].post);
    sb_msg m;
    sb_diag diag = {""};
    cr_assert_eq(unit_parse(json, &m, &diag), SB_EBADMSG, "%s accepted", json);
    cr_assert(strstr(diag.msg, "0123456789abcdef") == NULL, "diag shows the token: %s",
              diag.msg);
    cr_assert(strstr(diag.msg, "<hex digits>") != NULL, "nothing elided: %s", diag.msg);
  }
}

/* ---- encoding refuses what it could not send --------------------------- */

Test(msg_reject, encode_refuses_fields_out_of_range) {
  char *argv[] = {"a", NULL};
  char *bad_env[] = {"NOEQ", NULL};
  char *bad_unset[] = {"A=1", NULL};
  char *empty_name[] = {"", NULL};
  char *holes[] = {NULL};
  sb_msg cases[20];
  size_t n = 0;
  memset(cases, 0, sizeof cases);
  cases[n++] = (sb_msg){.type = 0};
  cases[n++] = (sb_msg){.type = (sb_msg_type)42};
  cases[n++] = (sb_msg){.type = SB_MSG_WELCOME, .u.welcome.version = 0};
  cases[n++] = (sb_msg){.type = SB_MSG_WELCOME, .u.welcome.version = 65536};
  cases[n++] = (sb_msg){.type = SB_MSG_REJECT, .u.reject = {0, "x"}};
  cases[n++] = (sb_msg){.type = SB_MSG_REJECT, .u.reject = {SB_REASON_BUSY, "\xff"}};
  cases[n++] = (sb_msg){.type = SB_MSG_EXIT, .u.exit = {.code = 256}};
  cases[n++] = (sb_msg){.type = SB_MSG_EXITED, .u.exit = {.code = -1}};
  cases[n++] = (sb_msg){.type = SB_MSG_EXIT, .u.exit = {.signal = 99}};
  cases[n++] = (sb_msg){.type = SB_MSG_SIGNAL, .u.signal.signal = 0};
  cases[n++] = (sb_msg){.type = SB_MSG_STREAM_ERROR, .u.stream_error = {0, -32, "x"}};
  cases[n++] = (sb_msg){.type = SB_MSG_STREAM_ERROR, .u.stream_error = {1, 32, "x"}};
  cases[n++] = (sb_msg){.type = SB_MSG_EXEC};
  cases[n] = (sb_msg){.type = SB_MSG_RUN};
  cases[n].u.launch.argv = unit_strv(argv);
  cases[n++].u.launch.set = unit_strv(bad_env);
  cases[n] = (sb_msg){.type = SB_MSG_EXEC};
  cases[n].u.launch.argv = unit_strv(argv);
  cases[n++].u.launch.unset = unit_strv(bad_unset);
  cases[n] = (sb_msg){.type = SB_MSG_RUN};
  cases[n].u.launch.argv = unit_strv(argv);
  cases[n++].u.launch.unset = unit_strv(empty_name);
  cases[n] = (sb_msg){.type = SB_MSG_EXEC};
  cases[n].u.launch.argv = unit_strv(argv);
  cases[n++].u.launch.set = (sb_strv){holes, 1};
  cases[n] = (sb_msg){.type = SB_MSG_EXEC};
  cases[n].u.launch.argv = (sb_strv){holes, 1};
  n++;
  for (size_t i = 0; i < n; i++) {
    uint8_t *frame = (uint8_t *)"untouched";
    size_t len = 99;
    int r = sb_msg_encode(&cases[i], 0, &frame, &len);
    cr_assert_eq(r, SB_EINVAL, "case %zu (type %d): returned %d, want EINVAL", i,
                 cases[i].type, r);
    cr_assert(frame == NULL && len == 0, "case %zu: output not cleared", i);
  }
}

Test(msg_reject, encode_refuses_a_bad_hello) {
  sb_msg base = {.type = SB_MSG_HELLO};
  base.u.hello.version = 1;
  memcpy(base.u.hello.token, TEST_TOKEN, sizeof base.u.hello.token);
  base.u.hello.pid = 1;
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&base, 0, &frame, &len), 0, "the base hello is refused");
  free(frame);

  sb_msg m[8];
  for (size_t i = 0; i < 8; i++)
    m[i] = base;
  m[0].u.hello.version = 0;
  m[1].u.hello.min_version = 2;
  m[2].u.hello.token[0] = 'A';
  m[3].u.hello.pid = 0;
  m[4].u.hello.ppid = -1;
  m[5].u.hello.tty = 8;
  char *bad_env[] = {"X", NULL};
  m[6].u.hello.env = unit_strv(bad_env);
  m[7].u.hello.token[SB_TOKEN_HEX - 1] = '\0';
  for (size_t i = 0; i < 8; i++)
    cr_assert_eq(sb_msg_encode(&m[i], 0, &frame, &len), SB_EINVAL, "case %zu accepted",
                 i);
}
