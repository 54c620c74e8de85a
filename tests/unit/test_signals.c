/* SPDX-License-Identifier: MIT */
/* test_signals.c - signal names on the wire, errors and their names. */
#include "unit.h"

#include <signal.h>
#include <string.h>

typedef struct sig_case {
  char name[12];
  int num;
} sig_case;

ParameterizedTestParameters(signals, every_posix_name_maps_both_ways) {
  static sig_case cases[] = {
      {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
      {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
      {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
      {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
      {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
      {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
      {"SYS", SIGSYS},
  };
  return cr_make_param_array(sig_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(sig_case *c, signals, every_posix_name_maps_both_ways) {
  const char *name = sb_signal_name(c->num);
  cr_assert_not_null(name, "signal %d (%s) has no name", c->num, c->name);
  cr_assert_str_eq(name, c->name, "signal %d named %s", c->num, name);
  cr_assert_eq(sb_signal_from_name(c->name), c->num, "%s", c->name);
  char sig[16], lower[16], num[16];
  snprintf(sig, sizeof sig, "SIG%s", c->name);
  cr_assert_eq(sb_signal_from_name(sig), c->num, "%s", sig);
  for (size_t i = 0; i <= strlen(sig); i++)
    lower[i] = (char)(sig[i] >= 'A' && sig[i] <= 'Z' ? sig[i] + 32 : sig[i]);
  cr_assert_eq(sb_signal_from_name(lower), c->num, "%s", lower);
  cr_assert_eq(sb_signal_from_name(lower + 3), c->num, "%s", lower + 3);
  snprintf(num, sizeof num, "%d", c->num);
  cr_assert_eq(sb_signal_from_name(num), c->num, "%s", num);
}

Test(signals, unknown_names_and_numbers_give_zero) {
  const char *bad[] = {"",    "SIG", "NOPE", "SIGSIGTERM", "TERM ", " TERM",    "-15",
                       "+15", "0",   "99",   "15x",        "1e1",   "SIGRTMIN", NULL};
  for (size_t i = 0; bad[i] != NULL; i++)
    cr_assert_eq(sb_signal_from_name(bad[i]), 0, "\"%s\" gave %d", bad[i],
                 sb_signal_from_name(bad[i]));
  cr_assert_eq(sb_signal_from_name(NULL), 0);
  cr_assert_null(sb_signal_name(0));
  cr_assert_null(sb_signal_name(-1));
  cr_assert_null(sb_signal_name(1000));
}

Test(errors, every_sb_error_has_a_name_and_a_description) {
  struct {
    int err;
    const char *name;
  } want[] = {
      {SB_ENOMEM, "ENOMEM"},     {SB_EINVAL, "EINVAL"},
      {SB_EMSGSIZE, "EMSGSIZE"}, {SB_EBADMSG, "EBADMSG"},
      {SB_EPROTO, "EPROTO"},     {SB_EPROTONOSUPPORT, "EPROTONOSUPPORT"},
      {SB_EACCES, "EACCES"},     {SB_ENOENT, "ENOENT"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    cr_assert_str_eq(sb_err_name(want[i].err), want[i].name);
    const char *s = sb_strerror(want[i].err);
    cr_assert(s != NULL && *s != '\0', "%s has no description", want[i].name);
    cr_assert_str_neq(s, "unknown error", "%s is described as unknown", want[i].name);
  }
}

Test(errors, other_errors_are_described_and_unknown_ones_too) {
  cr_assert_str_eq(sb_err_name(-EPIPE), "EPIPE");
  cr_assert_str_eq(sb_strerror(-EPIPE), "Broken pipe");
  cr_assert_str_eq(sb_err_name(-99999), "UNKNOWN");
  cr_assert_str_eq(sb_err_name(12345), "UNKNOWN");
  cr_assert_str_eq(sb_err_name(INT32_MIN), "UNKNOWN");
  cr_assert_not_null(sb_strerror(-99999));
  cr_assert_not_null(sb_strerror(INT32_MIN));
  cr_assert_not_null(sb_strerror(0));
}

Test(errors, diag_set_formats_and_returns_the_error) {
  sb_diag d;
  cr_assert_eq(sb_diag_set(&d, SB_EPROTO, "a %s %d", "b", 3), SB_EPROTO);
  cr_assert_str_eq(d.msg, "a b 3");
  cr_assert_eq(sb_diag_set(NULL, SB_EINVAL, "x"), SB_EINVAL);
  char long_text[600];
  memset(long_text, 'z', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  sb_diag_set(&d, SB_EINVAL, "%s", long_text);
  cr_assert_eq(strlen(d.msg), sizeof d.msg - 1, "diag not truncated: %zu", strlen(d.msg));
}
