/* SPDX-License-Identifier: MIT */
/* test_msg.c - control messages: every type survives encode, frame decode
 * and parse with every field intact. */
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void roundtrip_and_compare(const sb_msg *m) {
  sb_msg got;
  unit_roundtrip(m, &got);
  unit_assert_msg_eq(m, &got);
  sb_msg_free(&got);
}

static sb_msg hello_msg(char **argv, char **env) {
  sb_msg m = {.type = SB_MSG_HELLO};
  m.u.hello.version = 3;
  m.u.hello.min_version = 1;
  memcpy(m.u.hello.token, TEST_TOKEN, sizeof m.u.hello.token);
  m.u.hello.pid = 4242;
  m.u.hello.ppid = 1;
  m.u.hello.argv = unit_strv(argv);
  m.u.hello.env = unit_strv(env);
  m.u.hello.cwd = "/home/user/project";
  m.u.hello.exe = "/usr/bin/socketbridge-stub";
  m.u.hello.tty = SB_TTY_STDIN | SB_TTY_STDERR;
  return m;
}

Test(msg, a_hello_round_trips_with_every_field) {
  char *argv[] = {"git", "commit", "-m", "caf\xc3\xa9 \"quoted\" \\ \n\t", NULL};
  char *env[] = {"PATH=/usr/bin:/bin", "EMPTY=", "A=B=C", NULL};
  sb_msg m = hello_msg(argv, env);
  roundtrip_and_compare(&m);
}

Test(msg, a_hello_round_trips_with_null_cwd_and_exe_and_empty_lists) {
  sb_msg m = hello_msg(NULL, NULL);
  m.u.hello.cwd = NULL;
  m.u.hello.exe = NULL;
  m.u.hello.tty = 0;
  m.u.hello.min_version = 0; /* means == version */
  m.u.hello.ppid = 0;
  roundtrip_and_compare(&m);
}

Test(msg, a_hello_round_trips_every_tty_combination) {
  for (unsigned tty = 0; tty < 8; tty++) {
    sb_msg m = hello_msg(NULL, NULL);
    m.u.hello.tty = tty;
    roundtrip_and_compare(&m);
  }
}

Test(msg, a_hello_round_trips_with_its_terminal_size) {
  sb_winsize sizes[] = {{24, 80}, {0, 0}, {65535, 65535}};
  for (size_t i = 0; i < 3; i++) {
    sb_msg m = hello_msg(NULL, NULL);
    m.u.hello.has_winsize = true;
    m.u.hello.winsize = sizes[i];
    roundtrip_and_compare(&m);
  }
}

Test(msg, winsize_and_pty_round_trip) {
  sb_msg w = {.type = SB_MSG_WINSIZE, .u.winsize = {50, 132}};
  sb_msg p = {.type = SB_MSG_PTY};
  roundtrip_and_compare(&w);
  roundtrip_and_compare(&p);
}

Test(msg, a_hello_without_winsize_reads_as_no_terminal_size) {
  sb_msg m;
  sb_diag d;
  const char *json = "{\"type\":\"hello\",\"version\":1,\"token\":\"" TEST_TOKEN
                     "\",\"pid\":2,\"ppid\":1,\"argv\":[],\"env\":[],\"cwd\":null,"
                     "\"exe\":null,\"tty\":{\"stdin\":true,\"stdout\":true,"
                     "\"stderr\":true}}";
  cr_assert_eq(sb_msg_parse((const uint8_t *)json, strlen(json), &m, &d), 0, "%s", d.msg);
  cr_assert(!m.u.hello.has_winsize, "an old stub's hello has no winsize");
  sb_msg_free(&m);
}

Test(msg, a_hello_never_carries_the_token_variable_in_env) {
  char *env[] = {"A=1", "SOCKETBRIDGE_TOKEN=" TEST_TOKEN, "B=2", NULL};
  char *want_env[] = {"A=1", "B=2", NULL};
  sb_msg m = hello_msg(NULL, env);
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  size_t n = 0;
  for (size_t i = 0; i + SB_TOKEN_HEX <= len; i++)
    n += memcmp(frame + i, TEST_TOKEN, SB_TOKEN_HEX) == 0;
  cr_assert_eq(n, 1, "the token appears %zu times in the frame (want: once, as token)",
               n);
  free(frame);

  sb_msg got;
  unit_roundtrip(&m, &got);
  m.u.hello.env = unit_strv(want_env);
  unit_assert_msg_eq(&m, &got);
  sb_msg_free(&got);
}

Test(msg, the_parser_drops_the_token_variable_from_hello_env) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse("{\"type\":\"hello\",\"version\":1,\"token\":\"" TEST_TOKEN
                     "\",\"pid\":2,\"ppid\":1,\"argv\":[],\"env\":[\"A=1\","
                     "\"SOCKETBRIDGE_TOKEN=x\",\"SOCKETBRIDGE_TOKENS=y\"],\"cwd\":null,"
                     "\"exe\":null,\"tty\":{\"stdin\":false,\"stdout\":false,"
                     "\"stderr\":false}}",
                     &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.hello.env.n, 2, "%zu env entries", m.u.hello.env.n);
  cr_assert_str_eq(m.u.hello.env.v[0], "A=1");
  cr_assert_str_eq(m.u.hello.env.v[1], "SOCKETBRIDGE_TOKENS=y");
  cr_assert_null(m.u.hello.env.v[2], "env not NULL-terminated");
  cr_assert_eq(m.u.hello.min_version, 1, "min_version defaults to version, got %d",
               m.u.hello.min_version);
  sb_msg_free(&m);
}

Test(msg, a_welcome_round_trips) {
  sb_msg m = {.type = SB_MSG_WELCOME, .u.welcome.version = 1};
  roundtrip_and_compare(&m);
  m.u.welcome.version = 65535;
  roundtrip_and_compare(&m);
  m.u.welcome.hold_stdin = true;
  roundtrip_and_compare(&m);
}

/* Encodes m and returns its JSON text (the caller frees it). */
static char *encoded_json(const sb_msg *m) {
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(m, 0, &frame, &len), 0);
  /* Not strndup: ASan's reads the source as a C string, and a frame has no NUL. */
  char *json = malloc(len - SB_FRAME_HEADER + 1);
  cr_assert_not_null(json);
  memcpy(json, frame + SB_FRAME_HEADER, len - SB_FRAME_HEADER);
  json[len - SB_FRAME_HEADER] = '\0';
  free(frame);
  return json;
}

Test(msg, welcome_says_stdin_false_only_when_stdin_is_held) {
  sb_msg m = {.type = SB_MSG_WELCOME, .u.welcome.version = 1};
  char *json = encoded_json(&m);
  cr_assert_null(strstr(json, "stdin"), "default stdin encoded: %s", json);
  free(json);
  m.u.welcome.hold_stdin = true;
  json = encoded_json(&m);
  cr_assert_not_null(strstr(json, "\"stdin\":false"), "%s", json);
  free(json);
}

Test(msg, welcome_stdin_reads_as_hold_stdin) {
  static const struct {
    const char *json;
    bool hold;
  } cases[] = {
      {"{\"type\":\"welcome\",\"version\":1}", false},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":true}", false},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":null}", false},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":false}", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sb_msg m;
    sb_diag diag = {""};
    cr_assert_eq(unit_parse(cases[i].json, &m, &diag), 0, "%s: %s", cases[i].json,
                 diag.msg);
    cr_assert_eq(m.u.welcome.hold_stdin, cases[i].hold, "%s", cases[i].json);
    sb_msg_free(&m);
  }
}

ParameterizedTestParameters(msg, a_reject_round_trips_with_each_reason) {
  static sb_reason reasons[] = {
      SB_REASON_BAD_TOKEN, SB_REASON_VERSION, SB_REASON_TOO_LARGE, SB_REASON_NOT_ALLOWED,
      SB_REASON_BUSY,      SB_REASON_TIMEOUT, SB_REASON_PROTOCOL};
  return cr_make_param_array(sb_reason, reasons, sizeof reasons / sizeof reasons[0]);
}

ParameterizedTest(sb_reason *reason, msg, a_reject_round_trips_with_each_reason) {
  sb_msg m = {.type = SB_MSG_REJECT};
  m.u.reject.reason = *reason;
  m.u.reject.message = "no such token (revoked?) \xe2\x9c\x93";
  roundtrip_and_compare(&m);
  const char *name = sb_reason_name(*reason);
  cr_assert_not_null(name, "reason %d has no name", *reason);
  cr_assert_eq(sb_reason_from_name(name), *reason, "%s does not map back", name);
}

Test(msg, a_reject_without_a_message_sends_an_empty_one) {
  sb_msg m = {.type = SB_MSG_REJECT, .u.reject = {SB_REASON_BUSY, NULL}};
  roundtrip_and_compare(&m);
}

Test(msg, reason_names_are_the_wire_names) {
  cr_assert_str_eq(sb_reason_name(SB_REASON_BAD_TOKEN), "bad_token");
  cr_assert_str_eq(sb_reason_name(SB_REASON_NOT_ALLOWED), "not_allowed");
  cr_assert_str_eq(sb_reason_name(SB_REASON_TOO_LARGE), "too_large");
  cr_assert_null(sb_reason_name(0));
  cr_assert_null(sb_reason_name((sb_reason)99));
  cr_assert_eq(sb_reason_from_name("nope"), 0);
  cr_assert_eq(sb_reason_from_name(NULL), 0);
}

Test(msg, type_names_are_the_wire_names) {
  const char *want[] = {NULL,           "hello", "welcome", "reject", "exit",    "signal",
                        "stream_error", "exec",  "run",     "exited", "winsize", "pty"};
  for (int t = 1; t <= SB_MSG_PTY; t++)
    cr_assert_str_eq(sb_msg_type_name((sb_msg_type)t), want[t], "type %d", t);
  cr_assert_null(sb_msg_type_name(0));
  cr_assert_null(sb_msg_type_name((sb_msg_type)12));
}

Test(msg, exit_and_exited_round_trip_with_a_code_or_a_signal) {
  sb_msg_type types[] = {SB_MSG_EXIT, SB_MSG_EXITED};
  for (size_t i = 0; i < 2; i++) {
    int codes[] = {0, 1, 125, 255};
    for (size_t k = 0; k < 4; k++) {
      sb_msg m = {.type = types[i], .u.exit = {.code = codes[k]}};
      roundtrip_and_compare(&m);
    }
    int sigs[] = {SIGTERM, SIGKILL, SIGINT, SIGSEGV, SIGSYS};
    for (size_t k = 0; k < 5; k++) {
      sb_msg m = {.type = types[i], .u.exit = {.signal = sigs[k]}};
      roundtrip_and_compare(&m);
    }
  }
}

Test(msg, a_signal_round_trips) {
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  for (size_t k = 0; k < 4; k++) {
    sb_msg m = {.type = SB_MSG_SIGNAL, .u.signal.signal = sigs[k]};
    roundtrip_and_compare(&m);
  }
}

Test(msg, a_stream_error_round_trips_with_a_negative_errno) {
  sb_msg m = {.type = SB_MSG_STREAM_ERROR};
  m.u.stream_error.stream = 1;
  m.u.stream_error.err = -EPIPE;
  m.u.stream_error.message = "Broken pipe";
  roundtrip_and_compare(&m);
  m.u.stream_error.stream = 2;
  m.u.stream_error.err = -EIO;
  roundtrip_and_compare(&m);
}

Test(msg, the_wire_errno_of_stream_error_is_positive) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(
      "{\"type\":\"stream_error\",\"stream\":\"stderr\",\"errno\":32,\"message\":\"x\"}",
      &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.stream_error.err, -32, "err %d", m.u.stream_error.err);
  cr_assert_eq(m.u.stream_error.stream, 2, "stream %d", m.u.stream_error.stream);
  sb_msg_free(&m);
}

Test(msg, exec_and_run_round_trip_with_every_field) {
  char *argv[] = {"make", "-j8", NULL};
  char *env[] = {"HOME=/root", "LANG=C.UTF-8", "EMPTY=", "A==b", NULL};
  char *unset[] = {"SOCKETBRIDGE_TOKEN", "MAKEFLAGS", NULL};
  for (int t = SB_MSG_EXEC; t <= SB_MSG_RUN; t++) {
    sb_msg m = {.type = (sb_msg_type)t};
    m.u.launch.argv = unit_strv(argv);
    m.u.launch.path = "/usr/bin/make";
    m.u.launch.cwd = "/src";
    m.u.launch.set = unit_strv(env);
    m.u.launch.unset = unit_strv(unset);
    m.u.launch.tee = t == SB_MSG_RUN;
    roundtrip_and_compare(&m);
  }
}

Test(msg, env_and_unset_are_the_wire_names_and_left_out_when_empty) {
  char *argv[] = {"true", NULL};
  char *env[] = {"A=1", NULL};
  char *unset[] = {"B", NULL};
  sb_msg m = {.type = SB_MSG_EXEC};
  m.u.launch.argv = unit_strv(argv);
  char *json = encoded_json(&m);
  cr_assert(strstr(json, "env") == NULL && strstr(json, "unset") == NULL, "%s", json);
  free(json);
  m.u.launch.set = unit_strv(env);
  m.u.launch.unset = unit_strv(unset);
  json = encoded_json(&m);
  cr_assert_not_null(strstr(json, "\"env\":[\"A=1\"]"), "%s", json);
  cr_assert_not_null(strstr(json, "\"unset\":[\"B\"]"), "%s", json);
  free(json);
}

Test(msg, unset_names_may_be_bytes_but_not_empty_or_hold_equals) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse("{\"type\":\"run\",\"argv\":[\"a\"],\"unset\":[\"X\",{\"base64\":"
                     "\"/w==\"}],\"env\":[]}",
                     &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.launch.unset.n, 2);
  cr_assert_str_eq(m.u.launch.unset.v[1], "\xff");
  cr_assert_eq(m.u.launch.set.n, 0);
  sb_msg_free(&m);
  /* Absent lists are empty vectors, not NULL ones. */
  cr_assert_eq(unit_parse("{\"type\":\"exec\",\"argv\":[\"a\"]}", &m, &diag), 0);
  cr_assert(m.u.launch.set.v != NULL && m.u.launch.set.v[0] == NULL);
  cr_assert(m.u.launch.unset.v != NULL && m.u.launch.unset.v[0] == NULL);
  sb_msg_free(&m);
}

Test(msg, exec_and_run_round_trip_with_only_argv) {
  char *argv[] = {"true", NULL};
  for (int t = SB_MSG_EXEC; t <= SB_MSG_RUN; t++) {
    sb_msg m = {.type = (sb_msg_type)t};
    m.u.launch.argv = unit_strv(argv);
    roundtrip_and_compare(&m);
  }
}

Test(msg, empty_env_and_unset_round_trip_as_nothing_to_change) {
  char *argv[] = {"env", NULL};
  char *none[] = {NULL};
  sb_msg m = {.type = SB_MSG_RUN};
  m.u.launch.argv = unit_strv(argv);
  m.u.launch.set = unit_strv(none);
  m.u.launch.unset = unit_strv(none);
  roundtrip_and_compare(&m);
}

/* Every byte but NUL, in every position that holds bytes. */
Test(msg, non_utf8_argv_env_and_cwd_round_trip_exactly) {
  char all[256], high[129];
  char *argv[256 + 2];
  char singles[255][2];
  for (int b = 1; b < 256; b++) {
    all[b - 1] = (char)b;
    singles[b - 1][0] = (char)b;
    singles[b - 1][1] = '\0';
    argv[b - 1] = singles[b - 1];
  }
  all[255] = '\0';
  argv[255] = all;
  argv[256] = NULL;
  for (int b = 0x80; b < 0x100; b++)
    high[b - 0x80] = (char)b;
  high[128] = '\0';

  char envbuf[300];
  snprintf(envbuf, sizeof envbuf, "BYTES=%s", all);
  char *env[] = {envbuf, "LATIN1=caf\xe9", "OVERLONG=\xc0\xaf", "SURROGATE=\xed\xa0\x80",
                 NULL};

  sb_msg m = hello_msg(argv, env);
  m.u.hello.cwd = high;
  m.u.hello.exe = "/bin/\xff";
  roundtrip_and_compare(&m);

  sb_msg l = {.type = SB_MSG_EXEC};
  l.u.launch.argv = unit_strv(argv);
  l.u.launch.path = high;
  l.u.launch.cwd = "\x80";
  l.u.launch.set = unit_strv(env);
  /* Every byte but NUL and '=' may be in a name. */
  char noeq[256];
  size_t k = 0;
  for (int b = 1; b < 256; b++)
    if (b != '=')
      noeq[k++] = (char)b;
  noeq[k] = '\0';
  char *unset[] = {noeq, "caf\xe9", NULL};
  l.u.launch.unset = unit_strv(unset);
  roundtrip_and_compare(&l);
}

Test(msg, byte_strings_use_base64_only_when_not_utf8) {
  char *argv[] = {"plain", "caf\xe9", NULL};
  sb_msg m = {.type = SB_MSG_EXEC};
  m.u.launch.argv = unit_strv(argv);
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  const char *want = "\"argv\":[\"plain\",{\"base64\":\"Y2Fm6Q==\"}]";
  cr_assert(memmem(frame, len, want, strlen(want)) != NULL, "frame: %.*s",
            (int)(len - SB_FRAME_HEADER), (const char *)frame + SB_FRAME_HEADER);
  free(frame);
}

Test(msg, a_base64_byte_string_is_read_from_the_wire) {
  sb_msg m;
  sb_diag diag = {""};
  int r =
      unit_parse("{\"type\":\"exec\",\"argv\":[{\"base64\":\"/w==\"},{\"base64\":\"\"},"
                 "\"x\"],\"path\":null}",
                 &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.launch.argv.n, 3);
  cr_assert_str_eq(m.u.launch.argv.v[0], "\xff");
  cr_assert_str_eq(m.u.launch.argv.v[1], "");
  cr_assert_null(m.u.launch.path, "null path is not absent");
  sb_msg_free(&m);
}

Test(msg, unknown_members_are_ignored) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse("{\"future\":[1,{\"a\":null}],\"type\":\"welcome\",\"version\":2,"
                     "\"extra\":\"x\"}",
                     &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.welcome.version, 2);
  sb_msg_free(&m);
}

Test(msg, whitespace_around_the_object_is_accepted) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse(" \n\t{ \"type\" : \"exit\" , \"code\" : 7 }\r\n ", &m, &diag);
  cr_assert_eq(r, 0, "parse failed: %s", diag.msg);
  cr_assert_eq(m.u.exit.code, 7);
  sb_msg_free(&m);
}

/* docs/protocol.md section 2: an integer is written as one. cJSON read
 * 1.0e2 as 100; the protocol's own reader does not guess. */
Test(msg, an_integer_in_another_spelling_is_refused) {
  sb_msg m;
  sb_diag diag = {""};
  int r = unit_parse("{\"type\":\"exit\",\"code\":1.0e2}", &m, &diag);
  cr_assert_eq(r, SB_EBADMSG);
  cr_assert(strstr(diag.msg, "exit.code: expected an integer") != NULL, "diag: %s",
            diag.msg);
}

Test(msg, a_large_message_fits_in_a_larger_max_bytes_only) {
  size_t n = 2000;
  char **argv = calloc(n + 1, sizeof *argv);
  cr_assert_not_null(argv);
  for (size_t i = 0; i < n; i++) {
    argv[i] = malloc(1001);
    memset(argv[i], (i % 2) ? 'a' : '\x01', 1000); /* \x01 prints as \u0001 */
    argv[i][1000] = '\0';
  }
  sb_msg m = {.type = SB_MSG_RUN};
  m.u.launch.argv = unit_strv(argv);
  uint8_t *frame = NULL;
  size_t len = 0;
  int r = sb_msg_encode(&m, 0, &frame, &len);
  cr_assert_eq(r, SB_EMSGSIZE, "a 4 MB message under a 1 MiB bound: %d", r);
  cr_assert_null(frame);

  r = sb_msg_encode(&m, 16u * 1024 * 1024, &frame, &len);
  cr_assert_eq(r, 0, "encode under 16 MiB: %d", r);
  sb_decoder d;
  sb_decoder_init(&d, 16u * 1024 * 1024);
  const uint8_t *p = frame;
  size_t left = len;
  sb_frame f;
  cr_assert_eq(sb_decoder_next(&d, &p, &left, &f, NULL), 1);
  sb_msg got;
  sb_diag diag = {""};
  cr_assert_eq(sb_msg_parse(f.data, f.len, &got, &diag), 0, "parse: %s", diag.msg);
  unit_assert_msg_eq(&m, &got);
  sb_msg_free(&got);
  sb_decoder_free(&d);
  free(frame);
  for (size_t i = 0; i < n; i++)
    free(argv[i]);
  free(argv);
}

Test(msg, encoding_right_at_max_bytes_is_exact) {
  /* Find the argument length that makes the frame length exactly
   * SB_MIN_MAX_BYTES, then check that one byte more is refused. */
  char *arg = malloc(SB_MIN_MAX_BYTES + 1);
  char *argv[] = {arg, NULL};
  sb_msg m = {.type = SB_MSG_EXEC};
  m.u.launch.argv = unit_strv(argv);
  memset(arg, 'x', 10);
  arg[10] = '\0';
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  free(frame);
  size_t overhead = len - SB_FRAME_HEADER + 1 - 10; /* frame length minus the arg */
  size_t fit = SB_MIN_MAX_BYTES - overhead;
  memset(arg, 'x', fit);
  arg[fit] = '\0';
  int r = sb_msg_encode(&m, SB_MIN_MAX_BYTES, &frame, &len);
  cr_assert_eq(r, 0, "a frame of exactly max_bytes refused: %d", r);
  cr_assert_eq(len, SB_FRAME_HEADER + SB_MIN_MAX_BYTES - 1, "frame of %zu bytes", len);
  free(frame);
  arg[fit] = 'x';
  arg[fit + 1] = '\0';
  r = sb_msg_encode(&m, SB_MIN_MAX_BYTES, &frame, &len);
  cr_assert_eq(r, SB_EMSGSIZE, "a frame one byte over max_bytes: %d", r);
  free(arg);
}

Test(msg, free_leaves_a_message_zeroed_and_is_safe_twice) {
  sb_msg m;
  cr_assert_eq(unit_parse("{\"type\":\"exec\",\"argv\":[\"a\"],\"cwd\":\"/\"}", &m, NULL),
               0);
  sb_msg_free(&m);
  sb_msg zero;
  memset(&zero, 0, sizeof zero);
  cr_assert_arr_eq(&m, &zero, sizeof m, "not zeroed");
  sb_msg_free(&m);
}
