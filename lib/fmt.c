/* SPDX-License-Identifier: MIT */
/* fmt.c - snprintf for the stub's copy of lib/ (SB_STUB_LIB): the
 * conversions the stub's messages use, and no more, so that a static stub
 * does not link the C library's printf (its float formatting alone is
 * larger than all of this; docs/performance.md).
 *
 * Supported, with the C library's meaning: the flags '-' and '0', a field
 * width and a precision (digits or '*'), the length modifiers l ll z,
 * and the conversions d i u x X c s %. Anything else is written out
 * as it stands from there on, and no further argument is read. Output is
 * cut to size - 1 bytes and NUL-terminated (size > 0); the return value is
 * the length the whole text has, as vsnprintf's. */
#include "proto.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fmt_out {
  char *buf;
  size_t size; /* room in buf, the NUL's included */
  size_t len;  /* length of the whole text so far */
} fmt_out;

static void put(fmt_out *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++, o->len++)
    if (o->len + 1 < o->size)
      o->buf[o->len] = s[i];
}

static void pad(fmt_out *o, char c, size_t n) {
  for (; n > 0; n--)
    put(o, &c, 1);
}

/* A number in the field: sign, zeros (precision or '0' flag), digits. */
static void put_field(fmt_out *o, const char *s, size_t n, size_t width, bool left) {
  if (!left && width > n)
    pad(o, ' ', width - n);
  put(o, s, n);
  if (left && width > n)
    pad(o, ' ', width - n);
}

int sb__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  fmt_out o = {buf, size, 0};
  while (*fmt != '\0') {
    const char *spec = fmt;
    if (*fmt != '%') {
      while (*fmt != '\0' && *fmt != '%')
        fmt++;
      put(&o, spec, (size_t)(fmt - spec));
      continue;
    }
    fmt++;
    bool left = false, zero = false;
    for (;; fmt++) {
      if (*fmt == '-')
        left = true;
      else if (*fmt == '0')
        zero = true;
      else
        break;
    }
    size_t width = 0, prec = 0;
    bool has_prec = false;
    if (*fmt == '*') {
      int w = va_arg(ap, int);
      /* A negative width is the '-' flag and the width. */
      left |= w < 0;
      width = w < 0 ? (size_t) - (int64_t)w : (size_t)w;
      fmt++;
    }
    for (; *fmt >= '0' && *fmt <= '9'; fmt++)
      width = width * 10 + (size_t)(*fmt - '0');
    if (*fmt == '.') {
      has_prec = true;
      fmt++;
      if (*fmt == '*') {
        int p = va_arg(ap, int);
        /* A negative precision is none. */
        has_prec = p >= 0;
        prec = p >= 0 ? (size_t)p : 0;
        fmt++;
      }
      for (; *fmt >= '0' && *fmt <= '9'; fmt++)
        prec = prec * 10 + (size_t)(*fmt - '0');
    }
    /* The argument's type. */
    enum { M_INT, M_LONG, M_LLONG, M_SIZE } mod = M_INT;
    if (*fmt == 'z') {
      mod = M_SIZE;
      fmt++;
    } else {
      for (; *fmt == 'l' && mod < M_LLONG; fmt++)
        mod++;
    }
    char c = *fmt;
    if (c == '%') {
      put(&o, "%", 1);
      fmt++;
      continue;
    }
    if (c == 's' || c == 'c') {
      char ch;
      const char *s;
      size_t n;
      if (c == 'c') {
        ch = (char)va_arg(ap, int);
        s = &ch;
        n = 1;
      } else {
        s = va_arg(ap, const char *);
        if (s == NULL)
          s = "(null)";
        for (n = 0; (!has_prec || n < prec) && s[n] != '\0'; n++)
          ;
      }
      put_field(&o, s, n, width, left);
      fmt++;
      continue;
    }
    bool is_signed = c == 'd' || c == 'i';
    if (!is_signed && c != 'u' && c != 'x' && c != 'X') {
      /* Not ours: the rest as it stands. */
      while (*spec != '\0')
        put(&o, spec++, 1);
      break;
    }
    fmt++;
    uintmax_t v;
    bool neg = false;
    if (is_signed) {
      intmax_t sv = mod == M_INT    ? va_arg(ap, int)
                    : mod == M_LONG ? va_arg(ap, long)
                    : mod == M_SIZE ? va_arg(ap, ptrdiff_t) /* size_t's signed kin */
                                    : va_arg(ap, long long);
      neg = sv < 0;
      v = neg ? 0u - (uintmax_t)sv : (uintmax_t)sv;
    } else {
      v = mod == M_INT    ? va_arg(ap, unsigned)
          : mod == M_LONG ? va_arg(ap, unsigned long)
          : mod == M_SIZE ? va_arg(ap, size_t)
                          : va_arg(ap, unsigned long long);
    }
    /* Digits backwards, then zeros to the precision (or, with '0' and no
     * precision, to the width), then the sign. */
    char tmp[48];
    size_t n = 0;
    unsigned base = c == 'x' || c == 'X' ? 16u : 10u;
    const char *digits = c == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    for (; v > 0; v /= base)
      tmp[sizeof tmp - ++n] = digits[v % base];
    if (!has_prec)
      prec = 1;
    if (zero && !left && !has_prec && width > prec)
      prec = width - (neg ? 1u : 0u);
    if (prec > sizeof tmp - 1)
      prec = sizeof tmp - 1;
    while (n < prec)
      tmp[sizeof tmp - ++n] = '0';
    if (neg)
      tmp[sizeof tmp - ++n] = '-';
    put_field(&o, tmp + sizeof tmp - n, n, width, left);
  }
  if (size > 0)
    buf[o.len < size ? o.len : size - 1] = '\0';
  return o.len > INT32_MAX ? -1 : (int)o.len;
}

int sb__snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = sb__vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
