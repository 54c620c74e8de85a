/* SPDX-License-Identifier: MIT */
/* test_options.c - the `socketbridge run` command line as cli_parse_run
 * reads it: where COMMAND starts, long and short spellings, durations, and
 * the one-line error of each bad value. */
#include "options.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <string.h>

/* Parses "run" then words (NULL-terminated) with envp; asserts it parsed. */
static void parse_ok(char **words, char *const *envp, cli_options *o) {
  char *argv[32] = {"run"};
  char err[CLI_ERR_MAX];
  int argc = 1;
  while (words[argc - 1] != NULL)
    argv[argc] = words[argc - 1], argc++;
  int r = cli_parse_run(argc, argv, envp, o, err);
  cr_assert_eq(r, 0, "parse failed: %s", err);
}

/* Parses and expects -1 with an error containing want. */
static void parse_bad(char **words, char *const *envp, const char *want) {
  char *argv[32] = {"run"};
  char err[CLI_ERR_MAX];
  cli_options o;
  int argc = 1;
  while (words[argc - 1] != NULL)
    argv[argc] = words[argc - 1], argc++;
  int r = cli_parse_run(argc, argv, envp, &o, err);
  cr_assert_eq(r, -1, "parsed, wanted an error with %s", want);
  cr_assert(strncmp(err, "socketbridge: ", 14) == 0, "err: %s", err);
  cr_assert_not_null(strstr(err, want), "err \"%s\" lacks \"%s\"", err, want);
  cr_assert_null(strchr(err, '\n'), "err is not one line: %s", err);
}

#define W(...) ((char *[]){__VA_ARGS__, NULL})

Test(options, the_first_word_that_is_not_an_option_starts_the_command) {
  cli_options o;
  parse_ok(W("--timeout", "5", "make", "-j8", "--timeout", "9"), NULL, &o);
  cr_assert_str_eq(o.command[0], "make");
  cr_assert_str_eq(o.command[1], "-j8");
  cr_assert_str_eq(o.command[2], "--timeout", "options after COMMAND are its own");
  cr_assert_eq(o.timeout_ms, 5000);
  cli_options_free(&o);
  /* "--" still works, and lets a COMMAND start with '-'. */
  parse_ok(W("--", "-weird", "x"), NULL, &o);
  cr_assert_str_eq(o.command[0], "-weird");
  cli_options_free(&o);
}

Test(options, long_options_take_their_value_with_or_without_equals) {
  cli_options o;
  parse_ok(W("--stop-signal=INT", "--chdir", "/tmp", "--env=A=b=c", "true"), NULL, &o);
  cr_assert_eq(o.stop_signal, SIGINT);
  cr_assert_str_eq(o.chdir, "/tmp");
  cr_assert_str_eq(o.env[0], "A=b=c");
  cli_options_free(&o);
}

Test(options, short_options_as_getopt_reads_them) {
  cli_options o;
  parse_ok(W("-s", "HUP", "-k0.5", "-iv", "-uA", "-u", "B", "-C/", "true"), NULL, &o);
  cr_assert_eq(o.stop_signal, SIGHUP);
  cr_assert_eq(o.kill_after_ms, 500);
  cr_assert(o.ignore_env);
  cr_assert(o.verbose);
  cr_assert_eq(o.nunset, 2);
  cr_assert_str_eq(o.unset[0], "A");
  cr_assert_str_eq(o.unset[1], "B");
  cr_assert_null(o.unset[2]);
  cr_assert_str_eq(o.chdir, "/");
  cli_options_free(&o);
  /* A flag's letter then a valued one in the same word. */
  parse_ok(W("-vk", "2", "true"), NULL, &o);
  cr_assert(o.verbose);
  cr_assert_eq(o.kill_after_ms, 2000);
  cli_options_free(&o);
}

/* Arrays, not pointers: Criterion runs each case in a fresh process. */
typedef struct dur_case {
  char text[24];
  uint64_t ms; /* UINT64_MAX: refused */
} dur_case;

ParameterizedTestParameters(options, durations_take_s_m_h_d_as_timeout) {
  static dur_case cases[] = {
      {"2", 2000},
      {"0.5", 500},
      {"10.", 10000},
      {"90s", 90000},
      {"1.5m", 90000},
      {"2h", 7200000},
      {"1d", 86400000},
      {"0.001m", 60},
      {"0.0001s", 1},
      {"0", 0},
      {"0s", 0},
      {".25h", 900000},
      {"", UINT64_MAX},
      {"s", UINT64_MAX},
      {".", UINT64_MAX},
      {"5x", UINT64_MAX},
      {"5ms", UINT64_MAX},
      {"1e3", UINT64_MAX},
      {"-1", UINT64_MAX},
      {"5 s", UINT64_MAX},
      {"5S", UINT64_MAX},
      {"99999999999", UINT64_MAX},
      {"999999999d", UINT64_MAX},
  };
  return cr_make_param_array(dur_case, cases, sizeof cases / sizeof cases[0]);
}

/* Through --timeout, as a user writes it (-k and --backoff read the same). */
ParameterizedTest(dur_case *c, options, durations_take_s_m_h_d_as_timeout) {
  if (c->ms == UINT64_MAX) {
    parse_bad(W("--timeout", c->text, "true"), NULL, "is not a duration");
  } else {
    cli_options o;
    parse_ok(W("--timeout", c->text, "true"), NULL, &o);
    cr_assert_eq(o.timeout_ms, c->ms, "\"%s\": %llu ms, want %llu", c->text,
                 (unsigned long long)o.timeout_ms, (unsigned long long)c->ms);
    cli_options_free(&o);
  }
}

Test(options, flags_and_socket_settings) {
  cli_options o;
  parse_ok(
      W("--preserve-status", "--socket", "/tmp/x.sock", "--socket-mode", "660", "true"),
      NULL, &o);
  cr_assert(o.preserve_status);
  cr_assert_eq(o.transport, CLI_TRANSPORT_UNIX, "--socket implies unix");
  cr_assert_str_eq(o.socket_path, "/tmp/x.sock");
  cr_assert_eq(o.socket_mode, 0660);
  cli_options_free(&o);
  parse_ok(W("--socket=@name", "true"), NULL, &o);
  cr_assert_str_eq(o.socket_path, "@name");
  cli_options_free(&o);
  parse_ok(W("--host", "::1", "--allow", "::1,127.0.0.0/8", "true"), NULL, &o);
  cr_assert_str_eq(o.host, "::1");
  cr_assert_str_eq(o.allowlist, "::1,127.0.0.0/8");
  cli_options_free(&o);
  /* A non-loopback host with who may connect. */
  parse_ok(W("--host", "0.0.0.0", "--allow", "10.0.0.0/8", "true"), NULL, &o);
  cli_options_free(&o);
}

Test(options, socketbridge_allowlist_is_the_default_of_allow) {
  cli_options o;
  char *env[] = {"SOCKETBRIDGE_ALLOWLIST=127.0.0.1", NULL};
  parse_ok(W("true"), env, &o);
  cr_assert_str_eq(o.allowlist, "127.0.0.1");
  cli_options_free(&o);
  parse_ok(W("--allow", "::1", "true"), env, &o);
  cr_assert_str_eq(o.allowlist, "::1", "--allow wins");
  cli_options_free(&o);
  /* A Unix socket admits the same uid only: the list does not apply. */
  parse_ok(W("--transport", "unix", "true"), env, &o);
  cr_assert_null(o.allowlist);
  cli_options_free(&o);
  char *empty[] = {"SOCKETBRIDGE_ALLOWLIST=", NULL};
  parse_ok(W("true"), empty, &o);
  cr_assert_null(o.allowlist);
  cli_options_free(&o);
  char *bad[] = {"SOCKETBRIDGE_ALLOWLIST=localhost", NULL};
  parse_bad(W("true"), bad, "SOCKETBRIDGE_ALLOWLIST: ");
}

typedef struct bad_case {
  char words[6][48]; /* up to the first empty one */
  char want[80];
} bad_case;

ParameterizedTestParameters(options, bad_command_lines_get_one_line_naming_the_option) {
  static bad_case cases[] = {
      {{"--verbose=1", "true"}, "--verbose: takes no value"},
      {{"--preserve-status=yes", "true"}, "--preserve-status: takes no value"},
      {{"-k"}, "-k: missing value"},
      {{"-q", "true"}, "-q: unknown option"},
      {{"-iq", "true"}, "-q: unknown option"},
      {{"--frob", "true"}, "--frob: unknown option"},
      {{"-k", "1w", "true"}, "-k: \"1w\" is not a duration"},
      {{"--timeout", "5x", "true"}, "--timeout: \"5x\" is not a duration"},
      {{"-s", "NOPE", "true"}, "-s: \"NOPE\" is not a signal"},
      {{"-u", "A=B", "true"}, "-u: \"A=B\" is not a variable name"},
      {{"--unset=", "true"}, "--unset: \"\" is not a variable name"},
      {{"-u", "SOCKETBRIDGE_TOKEN", "true"}, "-u: SOCKETBRIDGE_TOKEN is set by"},
      {{"--chdir=", "true"}, "--chdir: the name is empty"},
      {{"--host", "localhost", "true"}, "--host: \"localhost\" is not an IPv4 or IPv6"},
      {{"--host", "10.1.2.3", "true"}, "--host: 10.1.2.3 is not a loopback address"},
      {{"--allow", "10.0.0.0/33", "true"}, "--allow: allowlist entry"},
      {{"--allow=", "true"}, "--allow: the list is empty"},
      {{"--transport", "unix", "--allow", "::1", "true"}, "--allow: applies to"},
      {{"--transport", "unix", "--host", "::1", "true"}, "--host: applies to"},
      {{"--socket", "rel/path", "true"}, "--socket: \"rel/path\" is not an absolute"},
      {{"--socket", "@", "true"}, "--socket: \"@\" is not an absolute"},
      {{"--transport", "tcp", "--socket", "/tmp/s", "true"}, "--socket: a Unix socket"},
      {{"--socket-mode", "0600", "true"}, "--socket-mode: applies to a --socket"},
      {{"--socket", "@x", "--socket-mode", "600", "true"}, "--socket-mode: applies"},
      {{"--socket-mode", "0400", "true"}, "--socket-mode: \"0400\" leaves the owner"},
      {{"--socket-mode", "999", "true"}, "--socket-mode: \"999\" is not an octal"},
      {{"--shim-dir", "/tmp/d", "true"}, "--shim-dir: needs at least one --shim"},
      {{"--timeout", "1"}, "missing COMMAND"},
      {{"--"}, "missing COMMAND"},
  };
  return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, options,
                  bad_command_lines_get_one_line_naming_the_option) {
  char *words[8];
  size_t n = 0;
  for (; n < 6 && c->words[n][0] != '\0'; n++)
    words[n] = c->words[n];
  words[n] = NULL;
  parse_bad(words, NULL, c->want);
}
