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
#include <string.h>

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

/* One conversion specification, "%-08.3lld" read into its parts. */
typedef struct fmt_spec {
  bool left, zero; /* the '-' and '0' flags */
  size_t width;    /* 0: none */
  bool has_prec;   /* a precision was given (and was not negative) */
  size_t prec;
  enum { M_INT, M_LONG, M_LLONG, M_SIZE } mod; /* the argument's type */
  char conv; /* the conversion letter, or what stands in its place */
} fmt_spec;

/* n, then the decimal digits at *fmt appended to it. */
static size_t read_digits(const char **fmt, size_t n) {
  for (; **fmt >= '0' && **fmt <= '9'; (*fmt)++)
    n = n * 10 + (size_t)(**fmt - '0');
  return n;
}

/* Reads the specification after its '%'; consumes '*' arguments, and returns
 * where its conversion letter is. A va_list is passed by pointer so that the
 * caller's advances too. */
static const char *read_spec(const char *fmt, fmt_spec *sp, va_list *ap) {
  *sp = (fmt_spec){.mod = M_INT};
  for (;; fmt++) {
    if (*fmt == '-')
      sp->left = true;
    else if (*fmt == '0')
      sp->zero = true;
    else
      break;
  }
  if (*fmt == '*') {
    int w = va_arg(*ap, int);
    /* A negative width is the '-' flag and the width. */
    sp->left |= w < 0;
    sp->width = w < 0 ? (size_t) - (int64_t)w : (size_t)w;
    fmt++;
  }
  sp->width = read_digits(&fmt, sp->width);
  if (*fmt == '.') {
    sp->has_prec = true;
    fmt++;
    if (*fmt == '*') {
      int p = va_arg(*ap, int);
      /* A negative precision is none. */
      sp->has_prec = p >= 0;
      sp->prec = p >= 0 ? (size_t)p : 0;
      fmt++;
    }
    sp->prec = read_digits(&fmt, sp->prec);
  }
  if (*fmt == 'z') {
    sp->mod = M_SIZE;
    fmt++;
  } else {
    for (; *fmt == 'l' && sp->mod < M_LLONG; fmt++)
      sp->mod++;
  }
  sp->conv = *fmt;
  return fmt;
}

/* %c and %s. */
static void put_text(fmt_out *o, const fmt_spec *sp, va_list *ap) {
  char ch;
  const char *s;
  size_t n;
  if (sp->conv == 'c') {
    ch = (char)va_arg(*ap, int);
    s = &ch;
    n = 1;
  } else {
    s = va_arg(*ap, const char *);
    if (s == NULL)
      s = "(null)";
    for (n = 0; (!sp->has_prec || n < sp->prec) && s[n] != '\0'; n++)
      ;
  }
  put_field(o, s, n, sp->width, sp->left);
}

/* %d %i %u %x %X: the argument of the type mod says. */
static uintmax_t read_number(const fmt_spec *sp, va_list *ap, bool *neg) {
  *neg = false;
  if (sp->conv == 'd' || sp->conv == 'i') {
    intmax_t sv = sp->mod == M_INT    ? va_arg(*ap, int)
                  : sp->mod == M_LONG ? va_arg(*ap, long)
                  : sp->mod == M_SIZE ? va_arg(*ap, ptrdiff_t) /* size_t's signed kin */
                                      : va_arg(*ap, long long);
    *neg = sv < 0;
    return *neg ? 0u - (uintmax_t)sv : (uintmax_t)sv;
  }
  return sp->mod == M_INT    ? va_arg(*ap, unsigned)
         : sp->mod == M_LONG ? va_arg(*ap, unsigned long)
         : sp->mod == M_SIZE ? va_arg(*ap, size_t)
                             : va_arg(*ap, unsigned long long);
}

static void put_number(fmt_out *o, const fmt_spec *sp, va_list *ap) {
  bool neg;
  uintmax_t v = read_number(sp, ap, &neg);
  /* Digits backwards, then zeros to the precision (or, with '0' and no
   * precision, to the width), then the sign. */
  char tmp[48];
  size_t n = 0, prec = sp->has_prec ? sp->prec : 1;
  unsigned base = sp->conv == 'x' || sp->conv == 'X' ? 16u : 10u;
  const char *digits = sp->conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  for (; v > 0; v /= base)
    tmp[sizeof tmp - ++n] = digits[v % base];
  if (sp->zero && !sp->left && !sp->has_prec && sp->width > prec)
    prec = sp->width - (neg ? 1u : 0u);
  if (prec > sizeof tmp - 1)
    prec = sizeof tmp - 1;
  while (n < prec)
    tmp[sizeof tmp - ++n] = '0';
  if (neg)
    tmp[sizeof tmp - ++n] = '-';
  put_field(o, tmp + sizeof tmp - n, n, sp->width, sp->left);
}

int sb__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  fmt_out o = {buf, size, 0};
  va_list args;
  va_copy(args, ap);
  while (*fmt != '\0') {
    const char *spec = fmt;
    fmt_spec sp;
    if (*fmt != '%') {
      while (*fmt != '\0' && *fmt != '%')
        fmt++;
      put(&o, spec, (size_t)(fmt - spec));
      continue;
    }
    fmt = read_spec(fmt + 1, &sp, &args);
    if (sp.conv == '%') {
      put(&o, "%", 1);
    } else if (sp.conv == 's' || sp.conv == 'c') {
      put_text(&o, &sp, &args);
    } else if (sp.conv == 'd' || sp.conv == 'i' || sp.conv == 'u' || sp.conv == 'x' ||
               sp.conv == 'X') {
      put_number(&o, &sp, &args);
    } else {
      /* Not ours: the rest as it stands. */
      put(&o, spec, strlen(spec));
      break;
    }
    fmt++;
  }
  va_end(args);
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
