/* SPDX-License-Identifier: MIT */
/* error.c - error names, descriptions and diagnostics. */
#include "proto.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The errors only the protocol produces get their own wording (the
 * SB_ERRNO_MAP's descriptions): the system's ("Bad message", "Protocol
 * error") says little about a bridge. Codes that also come from the system
 * (ENOENT from a spawn, EACCES from a socket) keep the system's wording,
 * which fits every caller. The name is the constant's less its "SB_". */
#define ERROR_ROW(id, value, text) {value, &#id[3], text},
static const struct {
  int err;
  const char *name;
  const char *text; /* NULL: the system's */
} sb_errors[] = {SB_ERRNO_MAP(ERROR_ROW)};

#define SB_NERRORS (sizeof sb_errors / sizeof sb_errors[0])

const char *sb_strerror(int err) {
  for (size_t i = 0; i < SB_NERRORS; i++)
    if (sb_errors[i].err == err && sb_errors[i].text != NULL)
      return sb_errors[i].text;
  if (err == 0)
    return "success";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  /* strerrordesc_np returns static strings (strerror may format into a
   * shared buffer for unknown values, which is not thread-safe). */
  if (err < 0 && err > INT_MIN) {
    const char *s = strerrordesc_np(-err);
    if (s != NULL)
      return s;
  }
#else
  /* musl (the static stub, SB_STUB_MUSL): strerror returns static strings. */
  if (err < 0 && err > INT_MIN)
    return strerror(-err);
#endif
  return "unknown error";
}

const char *sb_err_name(int err) {
  for (size_t i = 0; i < SB_NERRORS; i++)
    if (sb_errors[i].err == err)
      return sb_errors[i].name;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (err < 0 && err > INT_MIN) {
    const char *s = strerrorname_np(-err);
    if (s != NULL)
      return s;
  }
#endif
  return "UNKNOWN";
}

int sb_diag_set(sb_diag *diag, int err, const char *fmt, ...) {
  if (diag != NULL) {
    va_list ap;
    va_start(ap, fmt);
    SB_VSNPRINTF(diag->msg, sizeof diag->msg, fmt, ap);
    va_end(ap);
  }
  return err;
}

/* Runs of hex digits this long are not quoted (tokens are 64). */
#define SB__QUOTE_HEX_RUN 16

static size_t hex_run(const char *s) {
  size_t n = 0;
  while (sb__hex_value((uint8_t)s[n]) >= 0)
    n++;
  return n;
}

void sb__quote(char *dst, size_t size, const char *src) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  if (size < 8) {
    if (size > 0)
      dst[0] = '\0';
    return;
  }
  dst[o++] = '"';
  for (; *src != '\0'; src++) {
    unsigned char c = (unsigned char)*src;
    size_t run = hex_run(src);
    if (run >= SB__QUOTE_HEX_RUN) {
      /* A token, or the start of one, put where it does not belong: a
       * diag can end up in a log, which must never hold a token. */
      static const char elided[] = "<hex digits>";
      if (o + sizeof elided - 1 + 5 > size) {
        memcpy(dst + o, "...", 3);
        o += 3;
        break;
      }
      memcpy(dst + o, elided, sizeof elided - 1);
      o += sizeof elided - 1;
      src += run - 1;
      continue;
    }
    size_t need = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? 1 : 4;
    /* Keep room for `..."` and the NUL. */
    if (o + need + 5 > size) {
      memcpy(dst + o, "...", 3);
      o += 3;
      break;
    }
    if (need == 1) {
      dst[o++] = (char)c;
    } else {
      dst[o++] = '\\';
      dst[o++] = 'x';
      dst[o++] = hex[c >> 4];
      dst[o++] = hex[c & 15];
    }
  }
  dst[o++] = '"';
  dst[o] = '\0';
}
