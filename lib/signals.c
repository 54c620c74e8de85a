/* SPDX-License-Identifier: MIT */
/* signals.c - signal names on the wire ("TERM", without "SIG"). */
#include "proto.h"

#include <signal.h>
#include <string.h>
#include <strings.h>

static const struct {
  int num;
  const char *name;
} sb_signals[] = {
    {SIGHUP, "HUP"},       {SIGINT, "INT"},   {SIGQUIT, "QUIT"},   {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"},     {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},     {SIGFPE, "FPE"},
    {SIGKILL, "KILL"},     {SIGUSR1, "USR1"}, {SIGSEGV, "SEGV"},   {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"},     {SIGALRM, "ALRM"}, {SIGTERM, "TERM"},   {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"},     {SIGSTOP, "STOP"}, {SIGTSTP, "TSTP"},   {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"},     {SIGURG, "URG"},   {SIGXCPU, "XCPU"},   {SIGXFSZ, "XFSZ"},
    {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGIO, "IO"},
    {SIGSYS, "SYS"},
};

#define SB_NSIGNALS (sizeof sb_signals / sizeof sb_signals[0])

const char *sb_signal_name(int signum) {
  for (size_t i = 0; i < SB_NSIGNALS; i++)
    if (sb_signals[i].num == signum)
      return sb_signals[i].name;
  return NULL;
}

int sb__signal_from_wire(const char *name) {
  for (size_t i = 0; i < SB_NSIGNALS; i++)
    if (strcmp(sb_signals[i].name, name) == 0)
      return sb_signals[i].num;
  return 0;
}

/* A number in decimal digits (no sign, no spaces), if it names a signal of
 * the table. */
static int signal_from_number(const char *s) {
  int n = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9' || n > 1000)
      return 0;
    n = n * 10 + (*s - '0');
  }
  return sb_signal_name(n) != NULL ? n : 0;
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
      return sb_signals[i].num;
  return 0;
}
