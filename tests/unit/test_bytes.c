/* SPDX-License-Identifier: MIT */
/* test_bytes.c - UTF-8 validation and the base64 of byte strings. */
#include "unit.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

typedef struct utf8_case {
  char bytes[8];
  size_t len;
  bool valid;
} utf8_case;

/* Whether buf[0..len) is UTF-8, as the reader and the writer decide it:
 * sequence by sequence with lib/'s sb__utf8_seq. */
static bool utf8_valid(const uint8_t *buf, size_t len) {
  for (size_t i = 0, n; i < len; i += n)
    if ((n = sb__utf8_seq(buf + i, len - i)) == 0)
      return false;
  return true;
}

ParameterizedTestParameters(utf8, classifies_sequences_like_unicode_table_3_7) {
  static utf8_case cases[] = {
      {"", 0, true},
      {"a", 1, true},
      {"\x7f", 1, true},
      {"\xc2\x80", 2, true},         /* U+0080, smallest 2-byte */
      {"\xdf\xbf", 2, true},         /* U+07FF */
      {"\xe0\xa0\x80", 3, true},     /* U+0800 */
      {"\xed\x9f\xbf", 3, true},     /* U+D7FF, below the surrogates */
      {"\xee\x80\x80", 3, true},     /* U+E000, above them */
      {"\xef\xbf\xbf", 3, true},     /* U+FFFF */
      {"\xf0\x90\x80\x80", 4, true}, /* U+10000 */
      {"\xf4\x8f\xbf\xbf", 4, true}, /* U+10FFFF */
      {"\x80", 1, false},            /* lone continuation */
      {"\xbf", 1, false},
      {"\xc0\x80", 2, false},         /* overlong NUL */
      {"\xc1\xbf", 2, false},         /* overlong */
      {"\xe0\x9f\xbf", 3, false},     /* overlong 3-byte */
      {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong 4-byte */
      {"\xed\xa0\x80", 3, false},     /* U+D800 */
      {"\xed\xbf\xbf", 3, false},     /* U+DFFF */
      {"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
      {"\xf5\x80\x80\x80", 4, false},
      {"\xf8\x88\x80\x80\x80", 5, false}, /* 5-byte form */
      {"\xfe", 1, false},
      {"\xff", 1, false},
      {"\xc3", 1, false}, /* truncated */
      {"\xe2\x82", 2, false},
      {"\xf0\x9f\x98", 3, false},
      {"\xe2\x28\xa1", 3, false}, /* bad continuation */
      {"a\xc3\xa9z", 4, true},
  };
  return cr_make_param_array(utf8_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(utf8_case *c, utf8, classifies_sequences_like_unicode_table_3_7) {
  bool got = utf8_valid((const uint8_t *)c->bytes, c->len);
  cr_assert_eq(got, c->valid, "%zu bytes starting %02x: valid %d, want %d", c->len,
               (unsigned char)c->bytes[0], got, c->valid);
}

Test(utf8, accepts_every_scalar_value_and_refuses_every_surrogate) {
  /* Build each code point's encoding and check it is valid, and that the
   * validator refuses every surrogate. */
  for (uint32_t cp = 0; cp <= 0x10ffff; cp += (cp < 0x20000 ? 1 : 97)) {
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
      b[0] = (uint8_t)cp;
      n = 1;
    } else if (cp < 0x800) {
      b[0] = (uint8_t)(0xc0 | cp >> 6);
      b[1] = (uint8_t)(0x80 | (cp & 63));
      n = 2;
    } else if (cp < 0x10000) {
      b[0] = (uint8_t)(0xe0 | cp >> 12);
      b[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
      b[2] = (uint8_t)(0x80 | (cp & 63));
      n = 3;
    } else {
      b[0] = (uint8_t)(0xf0 | cp >> 18);
      b[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
      b[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
      b[3] = (uint8_t)(0x80 | (cp & 63));
      n = 4;
    }
    bool want = cp < 0xd800 || cp > 0xdfff;
    cr_assert_eq(utf8_valid(b, n), want, "U+%04X: valid %d", cp, !want);
  }
}

typedef struct b64_case {
  char raw[8];
  size_t len;
  char text[16];
} b64_case;

ParameterizedTestParameters(base64, encodes_rfc_4648_test_vectors) {
  static b64_case cases[] = {
      {"", 0, ""},
      {"f", 1, "Zg=="},
      {"fo", 2, "Zm8="},
      {"foo", 3, "Zm9v"},
      {"foob", 4, "Zm9vYg=="},
      {"fooba", 5, "Zm9vYmE="},
      {"foobar", 6, "Zm9vYmFy"},
      {"\xff\xfe\xfd", 3, "//79"},
      {"\xfb\xef", 2, "++8="},
  };
  return cr_make_param_array(b64_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(b64_case *c, base64, encodes_rfc_4648_test_vectors) {
  char out[16];
  cr_assert_eq(sb__b64_encoded_len(c->len), strlen(c->text));
  sb__b64_encode((const uint8_t *)c->raw, c->len, out);
  cr_assert_str_eq(out, c->text, "encoded %zu bytes as %s, want %s", c->len, out,
                   c->text);
  uint8_t back[16];
  ptrdiff_t n = sb__b64_decode(c->text, strlen(c->text), back);
  cr_assert_eq(n, (ptrdiff_t)c->len, "%s decodes to %td bytes", c->text, n);
  cr_assert_arr_eq(back, c->raw, c->len, "%s decodes to other bytes", c->text);
}

typedef struct b64_bad {
  char text[16];
} b64_bad;

ParameterizedTestParameters(base64, decoding_is_strict) {
  static b64_bad cases[] = {
      {"Zg"},                 /* unpadded */
      {"Zg="},                /* short padding */
      {"Zg==="},              /* too much */
      {"Z==="},               /* three pads */
      {"===="},     {"Zh=="}, /* non-zero bits under the padding */
      {"Zm9="},               /* likewise, one pad */
      {"Zm=v"},               /* padding in the middle */
      {"Zg==Zg=="},           /* padding before the end */
      {"Zm9v\n"},             /* whitespace */
      {"Zm 9v"},    {"Zm9-"}, /* base64url */
      {"Zm9_"},     {"Zm9v!"}, {"\xc3\xa9\xc3\xa9"},
  };
  return cr_make_param_array(b64_bad, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(b64_bad *c, base64, decoding_is_strict) {
  uint8_t out[16];
  ptrdiff_t n = sb__b64_decode(c->text, strlen(c->text), out);
  cr_assert_eq(n, -1, "\"%s\" decoded to %td bytes", c->text, n);
}

Test(base64, round_trips_every_byte_value_at_every_length_mod_3) {
  uint8_t raw[258];
  for (size_t i = 0; i < sizeof raw; i++)
    raw[i] = (uint8_t)i;
  for (size_t len = 0; len <= sizeof raw; len++) {
    char text[400];
    uint8_t back[300];
    sb__b64_encode(raw, len, text);
    ptrdiff_t n = sb__b64_decode(text, strlen(text), back);
    cr_assert_eq(n, (ptrdiff_t)len, "length %zu came back as %td", len, n);
    cr_assert_arr_eq(back, raw, len, "length %zu came back different", len);
  }
}

/* Writes with a fresh writer (bounded by max) and returns the text, or
 * NULL with *err set. */
static char *written(void (*fn)(sb_jw *), size_t max, int *err) {
  sb_jw w;
  char *text;
  size_t len;
  sb_jw_init(&w, 0, 4, max);
  fn(&w);
  *err = sb_jw_end(&w, &text, &len);
  if (*err == 0)
    cr_assert_eq(len, strlen(text));
  return text;
}

static void byte_strings(sb_jw *w) {
  sb_jw_open(w, '[');
  sb_jw_bytes(w, "caf\xc3\xa9");
  sb_jw_bytes(w, "caf\xe9");
  sb_jw_bytes(w, NULL);
  sb_jw_bytes(w, "");
  sb_jw_close(w, ']');
}

Test(bytes, json_byte_strings_are_strings_or_base64_objects) {
  int err;
  char *s = written(byte_strings, 1000, &err);
  cr_assert_eq(err, 0);
  cr_assert_str_eq(s, "[\"caf\xc3\xa9\",{\"base64\":\"Y2Fm6Q==\"},null,\"\"]");
  free(s);
}

static void members(sb_jw *w) {
  sb_jw_open(w, '{');
  sb_jw_key(w, "a");
  sb_jw_int(w, INT64_MIN);
  sb_jw_key(w, "b");
  sb_jw_open(w, '[');
  sb_jw_bool(w, true);
  sb_jw_open(w, '{');
  sb_jw_close(w, '}');
  sb_jw_str(w, "\x01\t\"\\/\x7f");
  sb_jw_close(w, ']');
  sb_jw_key(w, "c");
  static const char json[] = "{ \"x\" :\n[1, \" a \\\" b \"] }";
  sb_jw_json(w, (const uint8_t *)json, sizeof json - 1);
  sb_jw_close(w, '}');
}

Test(bytes, the_writer_places_the_commas_and_escapes_as_before) {
  int err;
  char *s = written(members, 1000, &err);
  cr_assert_eq(err, 0);
  cr_assert_str_eq(s, "{\"a\":-9223372036854775808,\"b\":[true,{},"
                      "\"\\u0001\\t\\\"\\\\/\x7f\"],\"c\":{\"x\":[1,\" a \\\" b \"]}}");
  free(s);
}

static void not_utf8(sb_jw *w) {
  sb_jw_open(w, '[');
  sb_jw_str(w, "\xff");
  sb_jw_close(w, ']');
}

Test(bytes, the_writer_is_bounded_and_refuses_text_that_is_not_utf8) {
  int err;
  char *s = written(members, 20, &err);
  cr_assert_null(s);
  cr_assert_eq(err, SB_EMSGSIZE);
  s = written(not_utf8, 100, &err);
  cr_assert_null(s);
  cr_assert_eq(err, SB_EINVAL);
  /* The bound counts the NUL: 39 bytes of text fit in 40. */
  s = written(byte_strings, 40, &err);
  cr_assert_eq(err, 0);
  cr_assert_eq(strlen(s), 39);
  free(s);
  s = written(byte_strings, 39, &err);
  cr_assert_null(s);
  cr_assert_eq(err, SB_EMSGSIZE);
}
