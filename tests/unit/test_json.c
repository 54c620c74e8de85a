/* SPDX-License-Identifier: MIT */
/* test_json.c - control messages through lib/'s one JSON reader and
 * writer (json_read.c, json_write.c, msg_parse.c, msg_encode.c): the grammar
 * docs/protocol.md section 2 writes down, what sb_msg_parse accepts and
 * refuses and why, and the bytes sb_msg_encode writes. */
#include "unit.h"

#include "proto.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Parses with sb_msg_parse (len 0: strlen). */
static int parse(const char *json, size_t len, sb_msg *out, sb_diag *diag) {
  return sb_msg_parse((const uint8_t *)json, len != 0 ? len : strlen(json), out, diag);
}

/* Encodes m; on error asserts nothing is handed out. Returns the result. */
static int encode(const sb_msg *m, uint32_t max_bytes) {
  uint8_t *frame = (uint8_t *)"x";
  size_t len = 1;
  int r = sb_msg_encode(m, max_bytes, &frame, &len);
  if (r < 0) {
    cr_assert_null(frame);
    cr_assert_eq(len, 0);
  }
  free(r == 0 ? frame : NULL);
  return r;
}

/* Asserts that m is encoded as want (the payload: header checked too). */
static void encode_is(const sb_msg *m, const char *want) {
  uint8_t *frame;
  size_t len, n = strlen(want);
  cr_assert_eq(sb_msg_encode(m, 0, &frame, &len), 0, "%s", want);
  cr_assert(len == SB_FRAME_HEADER + n && memcmp(frame + SB_FRAME_HEADER, want, n) == 0,
            "wrote %.*s\nwant  %s", (int)(len - SB_FRAME_HEADER),
            (const char *)frame + SB_FRAME_HEADER, want);
  uint8_t hdr[SB_FRAME_HEADER];
  sb_frame_header(hdr, SB_KIND_CONTROL, (uint32_t)n);
  cr_assert_arr_eq(frame, hdr, sizeof hdr);
  free(frame);
}

/* Encodes m with sb_msg_encode and parses it back. */
static void roundtrip(const sb_msg *m) {
  uint8_t *frame;
  size_t len;
  sb_msg back;
  sb_diag diag = {""};
  cr_assert_eq(sb_msg_encode(m, 0, &frame, &len), 0);
  int r =
      parse((const char *)frame + SB_FRAME_HEADER, len - SB_FRAME_HEADER, &back, &diag);
  cr_assert_eq(r, 0, "%s: %s", sb_msg_type_name(m->type), diag.msg);
  unit_assert_msg_eq(m, &back);
  sb_msg_free(&back);
  free(frame);
}

/* ---- round trips -------------------------------------------------------- */

Test(json, parses_every_message_the_supervisor_sends) {
  char *argv[] = {"git", "commit", "-m", "\xff\xfe not UTF-8", NULL};
  char *env[] = {"A=1", "B=\x80", "C=tab\there", NULL};
  char *unset[] = {"PAGER", "LESS", NULL};
  sb_msg m;

  roundtrip(&(sb_msg){.type = SB_MSG_WELCOME, .u.welcome = {1, false}});
  roundtrip(&(sb_msg){.type = SB_MSG_WELCOME, .u.welcome = {65535, true}});
  roundtrip(&(sb_msg){.type = SB_MSG_REJECT,
                      .u.reject = {SB_REASON_BAD_TOKEN, "no \"such\" token\n"}});
  roundtrip(&(sb_msg){.type = SB_MSG_EXIT, .u.exit = {.code = 255}});
  roundtrip(&(sb_msg){.type = SB_MSG_EXIT, .u.exit = {.signal = SIGTERM}});
  roundtrip(&(sb_msg){.type = SB_MSG_PTY});
  for (int t = SB_MSG_EXEC; t <= SB_MSG_RUN; t++) {
    memset(&m, 0, sizeof m);
    m.type = (sb_msg_type)t;
    m.u.launch.argv = unit_strv(argv);
    roundtrip(&m); /* no path, cwd, env, unset */
    m.u.launch.path = "/usr/bin/\xc3\x28git";
    m.u.launch.cwd = "/tmp/\xe2\x82\xac";
    m.u.launch.set = unit_strv(env);
    m.u.launch.unset = unit_strv(unset);
    m.u.launch.tee = t == SB_MSG_RUN;
    roundtrip(&m);
  }
}

/* The bytes are those the cJSON encoder wrote (checked against it when it
 * left): members in this order, strings escaped as cJSON escaped them. */
Test(json, encodes_every_message_byte_for_byte) {
  char *argv[] = {"tool", "", "\x01\x1f\"\\/\x7f", "caf\xe9", "\xf0\x9f\x98\x80", NULL};
  char *env[] = {"A=1", "SOCKETBRIDGE_TOKEN=" TEST_TOKEN, "B=\xff", "C=", NULL};
  char *unset[] = {"PAGER", NULL};
  sb_msg m = {.type = SB_MSG_HELLO};
  sb_hello *h = &m.u.hello;
  h->version = 3;
  memcpy(h->token, TEST_TOKEN, sizeof h->token);
  h->pid = INT32_MAX;
  h->ppid = 0;
  h->argv = unit_strv(argv);
  h->env = unit_strv(env);
  h->cwd = "/home/\xff";
  h->tty = SB_TTY_STDIN | SB_TTY_STDERR;
  /* min_version 0: written as version; the token entry of env left out */
  encode_is(
      &m,
      "{\"type\":\"hello\",\"token\":"
      "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"version\":"
      "3,\"min_version\":3,\"pid\":2147483647,\"ppid\":0,\"argv\":[\"tool\",\"\","
      "\"\\u0001\\u001f\\\"\\\\/\x7f"
      "\",{\"base64\":\"Y2Fm6Q==\"},\"\xf0"
      "\x9f"
      "\x98"
      "\x80"
      "\"],\"env\":[\"A=1\",{\"base64\":\"Qj3/\"},\"C=\"],\"cwd\":{\"base64\":\"L2hvbWUv/"
      "w==\"},\"exe\":null,\"tty\":{\"stdin\":true,\"stdout\":false,\"stderr\":true}}");
  h->min_version = 2;
  h->exe = "/usr/bin/socketbridge-stub";
  h->argv = (sb_strv){NULL, 0};
  h->has_winsize = true;
  h->winsize = (sb_winsize){24, 80};
  encode_is(&m, "{\"type\":\"hello\",\"token\":"
                "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                "\"version\":3,\"min_version\":2,\"pid\":2147483647,\"ppid\":0,\"argv\":["
                "],\"env\":[\"A=1\",{\"base64\":\"Qj3/"
                "\"},\"C=\"],\"cwd\":{\"base64\":\"L2hvbWUv/w==\"},\"exe\":\"/usr/bin/"
                "socketbridge-stub\",\"tty\":{\"stdin\":true,\"stdout\":false,\"stderr\":"
                "true},\"winsize\":{\"rows\":24,\"cols\":80}}");
  encode_is(&(sb_msg){.type = SB_MSG_WINSIZE, .u.winsize = {65535, 0}},
            "{\"type\":\"winsize\",\"rows\":65535,\"cols\":0}");
  encode_is(&(sb_msg){.type = SB_MSG_SIGNAL, .u.signal = {SIGINT}},
            "{\"type\":\"signal\",\"signal\":\"INT\"}");
  encode_is(&(sb_msg){.type = SB_MSG_EXITED, .u.exit = {.signal = SIGKILL}},
            "{\"type\":\"exited\",\"signal\":\"KILL\"}");
  encode_is(&(sb_msg){.type = SB_MSG_EXIT, .u.exit = {.code = 7}},
            "{\"type\":\"exit\",\"code\":7}");
  encode_is(&(sb_msg){.type = SB_MSG_STREAM_ERROR,
                      .u.stream_error = {2, -EPIPE, "Broken \"pipe\"\n"}},
            "{\"type\":\"stream_error\",\"stream\":\"stderr\",\"errno\":32,\"message\":"
            "\"Broken \\\"pipe\\\"\\n\"}");
  encode_is(&(sb_msg){.type = SB_MSG_STREAM_ERROR, .u.stream_error = {1, -4095, NULL}},
            "{\"type\":\"stream_error\",\"stream\":\"stdout\",\"errno\":4095,\"message\":"
            "\"\"}");
  encode_is(&(sb_msg){.type = SB_MSG_WELCOME, .u.welcome = {65535, true}},
            "{\"type\":\"welcome\",\"version\":65535,\"stdin\":false}");
  encode_is(&(sb_msg){.type = SB_MSG_WELCOME, .u.welcome = {1, false}},
            "{\"type\":\"welcome\",\"version\":1}");
  encode_is(&(sb_msg){.type = SB_MSG_REJECT,
                      .u.reject = {SB_REASON_BAD_TOKEN, "no \"such\" token\n"}},
            "{\"type\":\"reject\",\"reason\":\"bad_token\",\"message\":\"no \\\"such\\\" "
            "token\\n\"}");
  encode_is(&(sb_msg){.type = SB_MSG_PTY}, "{\"type\":\"pty\"}");
  sb_msg l = {.type = SB_MSG_RUN};
  l.u.launch.argv = unit_strv(argv);
  l.u.launch.path = "/usr/bin/\xc3\x28git";
  l.u.launch.cwd = "/tmp/\xe2\x82\xac";
  l.u.launch.set = unit_strv(env); /* a program's env may hold the token */
  l.u.launch.unset = unit_strv(unset);
  l.u.launch.tee = true;
  encode_is(&l, "{\"type\":\"run\",\"argv\":[\"tool\",\"\",\"\\u0001\\u001f\\\"\\\\/\x7f"
                "\",{\"base64\":\"Y2Fm6Q==\"},\"\xf0"
                "\x9f"
                "\x98"
                "\x80"
                "\"],\"path\":{\"base64\":\"L3Vzci9iaW4vwyhnaXQ=\"},\"cwd\":\"/tmp/\xe2"
                "\x82"
                "\xac"
                "\",\"env\":[\"A=1\",\"SOCKETBRIDGE_TOKEN="
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",{"
                "\"base64\":\"Qj3/\"},\"C=\"],\"unset\":[\"PAGER\"],\"tee\":true}");
  l.type = SB_MSG_EXEC; /* no tee */
  encode_is(&l, "{\"type\":\"exec\",\"argv\":[\"tool\",\"\",\"\\u0001\\u001f\\\"\\\\/\x7f"
                "\",{\"base64\":\"Y2Fm6Q==\"},\"\xf0"
                "\x9f"
                "\x98"
                "\x80"
                "\"],\"path\":{\"base64\":\"L3Vzci9iaW4vwyhnaXQ=\"},\"cwd\":\"/tmp/\xe2"
                "\x82"
                "\xac"
                "\",\"env\":[\"A=1\",\"SOCKETBRIDGE_TOKEN="
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",{"
                "\"base64\":\"Qj3/\"},\"C=\"],\"unset\":[\"PAGER\"]}");
}

Test(json, the_hello_it_encodes_parses_back) {
  char *argv[] = {"a\xff", "b", NULL};
  char *env[] = {"X=\xc0\xaf", "SOCKETBRIDGE_TOKEN=x", NULL};
  char *env_out[] = {"X=\xc0\xaf", NULL};
  sb_msg m = {.type = SB_MSG_HELLO}, back;
  sb_hello *h = &m.u.hello;
  h->version = 1;
  memcpy(h->token, TEST_TOKEN, sizeof h->token);
  h->pid = 42;
  h->ppid = 1;
  h->argv = unit_strv(argv);
  h->env = unit_strv(env);
  h->tty = SB_TTY_STDOUT;
  uint8_t *frame;
  size_t len;
  sb_diag diag = {""};
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  int r =
      parse((const char *)frame + SB_FRAME_HEADER, len - SB_FRAME_HEADER, &back, &diag);
  cr_assert_eq(r, 0, "%s", diag.msg);
  h->env = unit_strv(env_out); /* the token entry is never sent */
  unit_assert_msg_eq(&m, &back);
  sb_msg_free(&back);
  free(frame);
}

Test(json, encode_refuses_a_message_out_of_range) {
  char *holes[] = {NULL};
  char *noeq[] = {"NOEQ", NULL};
  sb_msg m = {.type = SB_MSG_HELLO};
  m.u.hello.version = 1;
  m.u.hello.pid = 1;
  cr_assert_eq(encode(&m, 0), SB_EINVAL); /* no token */
  memcpy(m.u.hello.token, TEST_TOKEN, sizeof m.u.hello.token);
  m.u.hello.argv = (sb_strv){holes, 1};
  cr_assert_eq(encode(&m, 0), SB_EINVAL);
  m.u.hello.argv = (sb_strv){NULL, 0};
  m.u.hello.env = unit_strv(noeq);
  cr_assert_eq(encode(&m, 0), SB_EINVAL);
  m.u.hello.env = (sb_strv){NULL, 0};
  m.u.hello.tty = 8;
  cr_assert_eq(encode(&m, 0), SB_EINVAL);
  m.u.hello.tty = 0;
  m.u.hello.min_version = 2;
  cr_assert_eq(encode(&m, 0), SB_EINVAL);
  cr_assert_eq(encode(&(sb_msg){.type = SB_MSG_SIGNAL, .u.signal = {0}}, 0), SB_EINVAL);
  cr_assert_eq(encode(&(sb_msg){.type = SB_MSG_EXITED, .u.exit = {.code = 256}}, 0),
               SB_EINVAL);
  cr_assert_eq(
      encode(&(sb_msg){.type = SB_MSG_STREAM_ERROR, .u.stream_error = {1, -32, "\xff"}},
             0),
      SB_EINVAL);
  cr_assert_eq(
      encode(&(sb_msg){.type = SB_MSG_STREAM_ERROR, .u.stream_error = {3, -32, "x"}}, 0),
      SB_EINVAL);
  cr_assert_eq(encode(&(sb_msg){.type = (sb_msg_type)42}, 0), SB_EINVAL);
}

Test(json, encode_refuses_a_hello_over_max_bytes) {
  static char big[8000];
  char *argv[] = {big, NULL};
  memset(big, 'a', sizeof big - 1);
  sb_msg m = {.type = SB_MSG_HELLO};
  m.u.hello.version = 1;
  m.u.hello.pid = 1;
  memcpy(m.u.hello.token, TEST_TOKEN, sizeof m.u.hello.token);
  m.u.hello.argv = unit_strv(argv);
  cr_assert_eq(encode(&m, SB_MIN_MAX_BYTES), SB_EMSGSIZE);
  cr_assert_eq(encode(&m, 0), 0);
  /* At the bound exactly: the payload plus the kind byte fits max_bytes. */
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  free(frame);
  uint32_t exact = (uint32_t)(len - SB_FRAME_HEADER + 1);
  cr_assert_eq(encode(&m, exact), 0);
  cr_assert_eq(encode(&m, exact - 1), SB_EMSGSIZE);
}

/* ---- what sb_msg_parse accepts ------------------------------------------- */

typedef struct ok_case {
  char json[160];
  size_t len; /* 0: strlen */
} ok_case;

ParameterizedTestParameters(json, accepts_what_sb_msg_parse_accepts) {
  static ok_case cases[] = {
      {"{\"type\":\"welcome\",\"version\":1}", 0},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":false}", 0},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":null}", 0},
      {" \t\r\n{ \"type\" : \"welcome\" , \"version\" : 1 } \r\n\t", 0},
      /* -0 is an integer as written; numbers of any shape where none is read */
      {"{\"type\":\"exit\",\"code\":-0}", 0},
      {"{\"type\":\"exit\",\"code\":0,\"x\":[0,-0.5,1E+2,1e-400,12.5e7]}", 0},
      /* names: escaped, unknown ones (twice too) ignored */
      {"{\"typ\\u0065\":\"exit\",\"\\u0063ode\":3}", 0},
      {"{\"type\":\"exit\",\"code\":3,\"x\":1,\"x\":[{},[]],\"\":null}", 0},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"tee\":1,\"tee\":2}", 0},
      /* the first "base64" of a byte string object is the one */
      {"{\"type\":\"exec\",\"argv\":[{\"x\":1,\"base64\":\"QQ==\",\"base64\":5}]}", 0},
      /* escapes */
      {"{\"type\":\"reject\",\"reason\":\"busy\",\"message\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t"
       "\\u00e9\\u20AC\\ud83d\\ude00\\uDBFF\\uDFFF\"}",
       0},
      {"{\"type\":\"reject\",\"reason\":\"busy\",\"message\":\"\\\\u0000\"}", 0},
      {"{\"type\":\"exit\",\"signal\":\"TERM\",\"y\":[1,2,{\"a\":[true,false,null,-1."
       "5e+3]}]}",
       0},
  };
  return cr_make_param_array(ok_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(ok_case *c, json, accepts_what_sb_msg_parse_accepts) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse(c->json, c->len, &m, &diag);
  cr_assert_eq(r, 0, "%s: %s", c->json, diag.msg);
  sb_msg_free(&m);
}

Test(json, decodes_escapes_and_surrogate_pairs) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse("{\"type\":\"reject\",\"reason\":\"busy\",\"message\":"
                "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\udbff\\udfff\\n\"}",
                0, &m, &diag);
  cr_assert_eq(r, 0, "%s", diag.msg);
  cr_assert_str_eq(m.u.reject.message,
                   "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\n");
  sb_msg_free(&m);
}

/* Array elements are skipped to the first quote no backslash escapes,
 * and a string is decoded into a buffer its span bounds: quotes and
 * backslashes next to each other, at either end, must land right. */
Test(json, decodes_array_strings_that_end_in_escapes) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse(
      "{\"type\":\"exec\",\"argv\":[\"\\\\\",\"\\\"\",\"a\\\\\\\"b\",\"\",\"\\\\\\\\\","
      "\"\\u00e9\\\\\",\"z\"],\"cwd\":\"\\\"\\\\\"}",
      0, &m, &diag);
  cr_assert_eq(r, 0, "%s", diag.msg);
  cr_assert_eq(m.u.launch.argv.n, 7);
  cr_assert_str_eq(m.u.launch.argv.v[0], "\\");
  cr_assert_str_eq(m.u.launch.argv.v[1], "\"");
  cr_assert_str_eq(m.u.launch.argv.v[2], "a\\\"b");
  cr_assert_str_eq(m.u.launch.argv.v[3], "");
  cr_assert_str_eq(m.u.launch.argv.v[4], "\\\\");
  cr_assert_str_eq(m.u.launch.argv.v[5], "\xc3\xa9\\");
  cr_assert_str_eq(m.u.launch.argv.v[6], "z");
  cr_assert_str_eq(m.u.launch.cwd, "\"\\");
  sb_msg_free(&m);
}

Test(json, decodes_base64_byte_strings) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse("{\"type\":\"run\",\"argv\":[{\"base64\":\"/w==\"},\"b\","
                "{\"base64\":\"Y2Fm6Q==\"},{\"base64\":\"\"}],\"cwd\":{\"base64\":"
                "\"L3RtcP8=\"},\"env\":[{\"base64\":\"QT3/\"}]}",
                0, &m, &diag);
  cr_assert_eq(r, 0, "%s", diag.msg);
  cr_assert_eq(m.u.launch.argv.n, 4);
  cr_assert_str_eq(m.u.launch.argv.v[0], "\xff");
  cr_assert_str_eq(m.u.launch.argv.v[2], "caf\xe9");
  cr_assert_str_eq(m.u.launch.argv.v[3], "");
  cr_assert_str_eq(m.u.launch.cwd, "/tmp\xff");
  cr_assert_str_eq(m.u.launch.set.v[0], "A=\xff");
  sb_msg_free(&m);
}

Test(json, drops_the_token_from_a_hello_env) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse("{\"type\":\"hello\",\"version\":1,\"token\":\"" TEST_TOKEN
                "\",\"pid\":2,\"ppid\":1,\"argv\":[],\"env\":[\"A=1\","
                "\"SOCKETBRIDGE_TOKEN=" TEST_TOKEN "\",\"B=2\"],\"cwd\":null,"
                "\"exe\":\"/x\",\"tty\":{\"stdin\":false,\"stdout\":true,"
                "\"stderr\":false,\"x\":1}}",
                0, &m, &diag);
  cr_assert_eq(r, 0, "%s", diag.msg);
  cr_assert_eq(m.u.hello.env.n, 2);
  cr_assert_str_eq(m.u.hello.env.v[1], "B=2");
  cr_assert_eq(m.u.hello.tty, SB_TTY_STDOUT);
  sb_msg_free(&m);
}

/* ---- what sb_msg_parse refuses ------------------------------------------- */

typedef struct bad_case {
  char json[160];
  size_t len; /* 0: strlen */
  char diag[72];
} bad_case;

ParameterizedTestParameters(json, refuses_what_sb_msg_parse_refuses) {
  static bad_case cases[] = {
      /* the payload */
      {"", 0, "empty payload"},
      {"[]", 0, "not a JSON object"},
      {"\"x\"", 0, "not a JSON object"},
      {"  ", 0, "invalid JSON"},
      {"{", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1 \"x\":1}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\" \"version\":1}", 0, "invalid JSON"},
      {"{\"type\";\"welcome\"}", 0, "invalid JSON"},
      {"{'type':'welcome'}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,\"x\":[1,]}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,\"x\":tru}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,\"x\":nul}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1,\"x\":truex}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1} x", 0,
       "data after the JSON value at offset 31"},
      {"{\"type\":\"welcome\",\"version\":1}{}", 0, "data after the JSON value"},
      {"{\"type\":\"welcome\",\"version\":1}\x0b", 0, "data after the JSON value"},
      {"\xef\xbb\xbf", 0, "invalid JSON"},
      /* no BOM; whitespace is space, tab, LF and CR only (RFC 8259) */
      {"\xef\xbb\xbf{\"type\":\"welcome\",\"version\":1}", 0, "invalid JSON at offset 0"},
      {"{\x01\"type\":\"welcome\",\"version\":1}", 0, "invalid JSON at offset 1"},
      {"{\"type\"\x0b:\"welcome\",\"version\":1}", 0, "invalid JSON"},
      {"\x0c{\"type\":\"welcome\",\"version\":1}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1", 0, "invalid JSON"},
      /* numbers: RFC 8259's grammar */
      {"{\"type\":\"welcome\",\"version\":01}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1.}", 0, "invalid JSON"},
      {"{\"type\":\"exit\",\"code\":-.0}", 0, "invalid JSON"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":1.e5}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":+1}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":.5}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":-}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1e}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1e+}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1.2.3}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":1-2}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":0x1}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":--1}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":-inf}", 0, "invalid JSON"},
      {"{\"type\":\"welcome\",\"version\":NaN}", 0, "invalid JSON"},
      /* strings */
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\xc0\xaf\"}", 0, "invalid UTF-8"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\u0000\"}", 0,
       "\\u0000 escape at offset 29"},
      {"{\0\"type\":\"exit\",\"code\":0}", 25, "NUL byte at offset 1"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\x\"}", 0, "invalid escape"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\U0041\"}", 0, "invalid escape"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\", 0, "invalid JSON"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"abc", 0, "unterminated string"},
      /* \u escapes: 4 hex digits */
      {"{\"type\":\"exit\\uzzzz\",\"code\":1}", 0, "\\u escape without 4 hex digits"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\u00g1\"}", 0, "without 4 hex digits"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\u12\"}", 0, "without 4 hex digits"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\udc00\"}", 0, "lone low surrogate"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\ud800\"}", 0, "unpaired surrogate"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\ud800x\\udc00\"}", 0,
       "unpaired surrogate"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\ud800\\u0041\"}", 0,
       "unpaired surrogate"},
      {"{\"type\":\"exit\",\"code\":0,\"x\":\"\\ud800\\\\udc00\"}", 0, "unpaired"},
      /* types, ranges, missing, given twice */
      {"{}", 0, "message.type: missing"},
      {"{\"type\":1}", 0, "message.type: expected a string"},
      {"{\"type\":\"nope\"}", 0, "message.type: unknown type \"nope\""},
      {"{\"type\":\"welcome\",\"type\":\"exit\",\"version\":1}", 0, "type: given twice"},
      {"{\"type\":\"welcome\"}", 0, "welcome.version: missing"},
      {"{\"type\":\"welcome\",\"version\":\"1\"}", 0,
       "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":0}", 0, "expected an integer in 1..65535"},
      {"{\"type\":\"welcome\",\"version\":65536}", 0, "expected an integer in 1..65535"},
      {"{\"type\":\"welcome\",\"version\":1.5}", 0,
       "welcome.version: expected an integer"},
      /* integers as written: no fraction, no exponent, even when integral */
      {"{\"type\":\"welcome\",\"version\":1e400}", 0,
       "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":1.0}", 0,
       "welcome.version: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":1.0e0}", 0, "expected an integer"},
      {"{\"type\":\"welcome\",\"version\":10E-1}", 0, "expected an integer"},
      {"{\"type\":\"exit\",\"code\":1e-400}", 0, "exit.code: expected an integer"},
      {"{\"type\":\"welcome\",\"version\":99999999999999999999999}", 0,
       "expected an integer in 1..65535"},
      {"{\"type\":\"welcome\",\"version\":1,\"version\":1}", 0, "version: given twice"},
      {"{\"type\":\"welcome\",\"version\":1,\"stdin\":0}", 0, "expected true or false"},
      {"{\"type\":\"reject\",\"reason\":\"nope\",\"message\":\"m\"}", 0,
       "unknown reason"},
      {"{\"type\":\"reject\",\"reason\":\"busy\"}", 0, "reject.message: missing"},
      {"{\"type\":\"exit\"}", 0, "exit: needs exactly one of code and signal"},
      {"{\"type\":\"exit\",\"code\":null,\"signal\":\"TERM\"}", 0, "needs exactly one"},
      {"{\"type\":\"exit\",\"code\":null}", 0, "exit.code: expected an integer"},
      {"{\"type\":\"exit\",\"code\":256}", 0, "exit.code: expected an integer in 0..255"},
      {"{\"type\":\"exit\",\"code\":-1e-300}", 0, "exit.code: expected an integer"},
      {"{\"type\":\"exit\",\"code\":1,\"code\":1}", 0, "exit.code: given twice"},
      {"{\"type\":\"exit\",\"signal\":\"SIGTERM\"}", 0,
       "unknown signal name \"SIGTERM\""},
      {"{\"type\":\"exit\",\"signal\":15}", 0, "expected a signal name"},
      {"{\"type\":\"signal\",\"signal\":null}", 0,
       "signal.signal: expected a signal name"},
      {"{\"type\":\"stream_error\",\"stream\":\"stdin\",\"errno\":32,\"message\":\"\"}",
       0, "stream_error.stream: expected \"stdout\" or \"stderr\""},
      {"{\"type\":\"stream_error\",\"stream\":\"stdout\",\"errno\":4096,\"message\":"
       "\"\"}",
       0, "stream_error.errno: expected an integer in 1..4095"},
      {"{\"type\":\"exec\",\"argv\":[]}", 0, "exec.argv: must not be empty"},
      {"{\"type\":\"exec\",\"argv\":\"ls\"}", 0, "exec.argv: expected an array"},
      {"{\"type\":\"run\",\"argv\":[\"ls\",1]}", 0,
       "run.argv[1]: expected a string or {\"base64\": ...}"},
      {"{\"type\":\"run\",\"argv\":[{\"b64\":\"AA==\"}]}", 0, "run.argv[0]: expected a"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":1}]}", 0, "run.argv[0]: expected a"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"QQ\"}]}", 0,
       "run.argv[0].base64: not padded RFC 4648 base64"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"QR==\"}]}", 0, "not padded"},
      {"{\"type\":\"run\",\"argv\":[{\"base64\":\"QUEA\"}]}", 0,
       "run.argv[0].base64: decodes to bytes with a NUL"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"path\":1}", 0,
       "exec.path: expected a string"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"cwd\":{\"base64\":\"!!!!\"}}", 0,
       "exec.cwd.base64: not padded"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"env\":[\"A=1\",\"NOEQ\"]}", 0,
       "exec.env[1]: expected NAME=VALUE"},
      {"{\"type\":\"exec\",\"argv\":[\"a\"],\"unset\":[\"A\",\"B=1\"]}", 0,
       "exec.unset[1]: expected a variable name"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"unset\":[\"\"]}", 0,
       "expected a variable name"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"tee\":\"yes\"}", 0,
       "run.tee: expected true"},
      {"{\"type\":\"run\",\"argv\":[\"a\"],\"env\":[],\"env\":[]}", 0,
       "run.env: given twice"},
      {"{\"type\":\"hello\",\"tty\":{\"stdin\":true,\"stdin\":true},\"version\":1}", 0,
       "hello.token: missing"},
  };
  return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, json, refuses_what_sb_msg_parse_refuses) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse(c->json, c->len, &m, &diag);
  cr_assert_eq(r, SB_EBADMSG, "%s: returned %d, want EBADMSG", c->json, r);
  cr_assert(strstr(diag.msg, c->diag) != NULL, "%s: diag \"%s\" lacks \"%s\"", c->json,
            diag.msg, c->diag);
  sb_msg zero;
  memset(&zero, 0, sizeof zero);
  cr_assert_arr_eq(&m, &zero, sizeof m, "%s: output not left empty", c->json);
}

Test(json, refuses_a_tty_member_given_twice) {
  sb_msg m;
  sb_diag diag = {""};
  int r = parse("{\"type\":\"hello\",\"version\":1,\"token\":\"" TEST_TOKEN
                "\",\"pid\":2,\"ppid\":1,\"argv\":[],\"env\":[],\"cwd\":null,"
                "\"exe\":null,\"tty\":{\"stdin\":true,\"stdout\":true,"
                "\"stderr\":true,\"stdin\":false}}",
                0, &m, &diag);
  cr_assert_eq(r, SB_EBADMSG);
  cr_assert(strstr(diag.msg, "hello.tty.stdin: given twice"), "diag: %s", diag.msg);
}

/* {"type":"welcome","version":1,"x":[[...]]}: the object and depth arrays. */
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

Test(json, nests_1000_deep_and_no_deeper) {
  sb_msg m;
  sb_diag diag = {""};
  char *s = nested(999); /* 1000 levels: the bound */
  cr_assert_eq(parse(s, 0, &m, &diag), 0, "%s", diag.msg);
  sb_msg_free(&m);
  free(s);
  s = nested(1000);
  cr_assert_eq(parse(s, 0, &m, &diag), SB_EBADMSG);
  cr_assert(strstr(diag.msg, "nested deeper than 1000"), "diag: %s", diag.msg);
  free(s);
  s = nested(100000);
  cr_assert_eq(parse(s, 0, &m, &diag), SB_EBADMSG);
  free(s);
}

Test(json, a_null_diag_is_allowed) {
  sb_msg m;
  cr_assert_eq(sb_msg_parse((const uint8_t *)"{}", 2, &m, NULL), SB_EBADMSG);
  cr_assert_eq(
      sb_msg_parse((const uint8_t *)"{\"type\":\"run\",\"argv\":[1]}", 25, &m, NULL),
      SB_EBADMSG);
  cr_assert_eq(sb_msg_parse((const uint8_t *)"{\"x\":\"\xff\"}", 9, &m, NULL),
               SB_EBADMSG);
}

/* docs/protocol.md section 1: a hello begins with its token, so that a
 * supervisor can authenticate a hello longer than max_bytes before it
 * buffers the rest. */
Test(json, a_hello_begins_with_its_token) {
  char *argv[] = {"cc", NULL};
  sb_msg m = {.type = SB_MSG_HELLO};
  m.u.hello.version = 1;
  memcpy(m.u.hello.token, TEST_TOKEN, sizeof m.u.hello.token);
  m.u.hello.pid = 42;
  m.u.hello.argv = unit_strv(argv);
  const char want[] = SB_HELLO_PREFIX TEST_TOKEN "\"";
  cr_assert_eq(sizeof want - 1, SB_HELLO_PREFIX_LEN);
  uint8_t *frame;
  size_t len;
  cr_assert_eq(sb_msg_encode(&m, 0, &frame, &len), 0);
  cr_assert(len > SB_FRAME_HEADER + SB_HELLO_PREFIX_LEN &&
                memcmp(frame + SB_FRAME_HEADER, want, SB_HELLO_PREFIX_LEN) == 0,
            "the hello begins %.40s", frame + SB_FRAME_HEADER);
  free(frame);
}
