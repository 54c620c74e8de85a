/* SPDX-License-Identifier: MIT */
/* The examples are programs users copy: each must do what its comment says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(examples, .timeout = 60);

/* Runs an example with its stdout and stderr captured; returns its status. */
static int run(harness *h, char *const *args, char *const *env, char **out, char **err) {
  int o = h_create(h, "out"), e = h_create(h, "err");
  h_exit ex;
  h_spawn(h, &(h_spawn_opts){.args = args, .env = env, .out = o, .err = e}, &ex);
  close(o);
  close(e);
  h_wait_exit(h, &ex);
  cr_assert_eq(ex.signal, 0, "%s died by signal %d", args[0], ex.signal);
  *out = h_read(h, "out", NULL);
  *err = h_read(h, "err", NULL);
  return (int)ex.status;
}

Test(examples, echo_answers_the_stub_with_its_argv) {
  harness h;
  h_init(&h, NULL);
  char *out, *err;
  char *args[] = {SB_EXAMPLE_ECHO, NULL};
  cr_assert_eq(run(&h, args, NULL, &out, &err), 0, "stderr: %s", err);
  char want[512];
  snprintf(want, sizeof want, "argv[0] = %s\nargv[1] = hello\nargv[2] = world\n", H_STUB);
  cr_assert_str_eq(out, want);
  free(out);
  free(err);

  char *custom[] = {SB_EXAMPLE_ECHO, "sh", "-c",
                    "x=$(\"$SOCKETBRIDGE_STUB\" a 'b c'); echo \"got: $x\"; exit 3",
                    NULL};
  cr_assert_eq(run(&h, custom, NULL, &out, &err), 3, "the command's own status");
  cr_assert_not_null(strstr(out, "got: argv[0] = "), "stdout: %s", out);
  cr_assert_not_null(strstr(out, "argv[2] = b c"), "stdout: %s", out);
  free(out);
  free(err);
  h_fini(&h);
}

Test(examples, askpass_answers_the_password_prompt) {
  harness h;
  h_init(&h, NULL);
  char *out, *err;
  char *args[] = {SB_EXAMPLE_ASKPASS, NULL};
  char *env[] = {"ASKPASS_PASSWORD=s3cret!", NULL};
  cr_assert_eq(run(&h, args, env, &out, &err), 0, "stderr: %s", err);
  cr_assert_str_eq(out, "the command got a password of 7 characters\n");
  cr_assert_not_null(strstr(err, "answering \"Password for"), "stderr: %s", err);
  free(out);
  free(err);
  h_fini(&h);
}

Test(examples, fake_tool_fakes_git_on_path) {
  harness h;
  h_init(&h, NULL);
  char *out, *err;
  char *args[] = {SB_EXAMPLE_FAKE_TOOL, NULL};
  cr_assert_eq(run(&h, args, NULL, &out, &err), 0, "stderr: %s", err);
  cr_assert_not_null(strstr(out, "git version 2.99.0 (fake)\n"), "stdout: %s", out);
  cr_assert_not_null(strstr(out, "call 2: git commit -m 'first commit'"), "stdout: %s",
                     out);
  cr_assert_not_null(strstr(out, "called git 2 times"), "stdout: %s", out);
  free(out);
  free(err);
  h_fini(&h);
}
