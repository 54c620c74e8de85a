/* SPDX-License-Identifier: MIT */
/* signals.c - signal names on the wire ("TERM", without "SIG"). */
#include "proto.h"

#include <signal.h>
#include <string.h>
#include <strings.h>

/* The signals with a wire name: X(NAME) for SIGNAME. Not an enum (the
 * numbers are the system's), but a list as the SB_*_MAP lists are. */
/* clang-format off */
#define SB__SIGNAL_MAP(X)                                                                \
  X(HUP) X(INT) X(QUIT) X(ILL) X(TRAP) X(ABRT) X(BUS) X(FPE) X(KILL) X(USR1) X(SEGV)     \
  X(USR2) X(PIPE) X(ALRM) X(TERM) X(CHLD) X(CONT) X(STOP) X(TSTP) X(TTIN) X(TTOU)        \
  X(URG) X(XCPU) X(XFSZ) X(VTALRM) X(PROF) X(WINCH) X(IO) X(SYS)
/* clang-format on */
#define SIGNAL_ROW(name) SB__NAMED_ROW(SIG##name, SIG##name, #name)

static const sb__named sb_signals[] = {SB__SIGNAL_MAP(SIGNAL_ROW)};

#define SB_NSIGNALS SB__NROWS(sb_signals)

const char *sb_signal_name(int signum) {
  return sb__name_of(sb_signals, SB_NSIGNALS, signum);
}

int sb__signal_from_wire(const char *name) {
  return sb__value_of(sb_signals, SB_NSIGNALS, name);
}

/* A number in decimal digits (no sign, no spaces), if it names a signal of
 * the table. */
static int signal_from_number(const char *s) {
  uint64_t n;
  if (!sb__parse_uint(s, NSIG, &n))
    return 0;
  return sb_signal_name((int)n) != NULL ? (int)n : 0;
}

int sb_signal_from_name(const char *name) {
  if (name == NULL || *name == '\0')
    return 0;
  if (*name >= '0' && *name <= '9')
    return signal_from_number(name);
  if (strncasecmp(name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < SB_NSIGNALS; i++)
    if (strcasecmp(sb_signals[i].name, name) == 0)
      return sb_signals[i].value;
  return 0;
}
