/* SPDX-License-Identifier: MIT */
/* The examples are programs users copy: each must do what its comment says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(examples, .timeout = 60);

/* Runs an example with its stdout and stderr captured; returns its status.
 * Its stub is this build's, found as $SOCKETBRIDGE_STUB, as the library's
 * default lookup finds it (an installed example finds the installed one). */
static int run(harness *h, char *const *args, char *const *env, char **out, char **err) {
  int o = h_create(h, "out"), e = h_create(h, "err");
  char *all[8] = {SB_ENV_STUB "=" H_STUB};
  h_exit ex;
  for (size_t i = 0; env != NULL && env[i] != NULL; i++)
    all[i + 1] = env[i];
  h_spawn(h, &(h_spawn_opts){.args = args, .env = all, .out = o, .err = e}, &ex);
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
  cr_assert_str_eq(out, "7\n", "the demo prints the length of the password it got");
  free(out);
  free(err);

  /* git asks SSH_ASKPASS when it has no GIT_ASKPASS: a real git clone over
   * HTTP would; here git's own credential prompt, run as git runs it. */
  char *git[] = {SB_EXAMPLE_ASKPASS, "sh", "-c",
                 "printf 'url=https://example.invalid\\n\\n' | git credential fill",
                 NULL};
  cr_assert_eq(run(&h, git, env, &out, &err), 0, "stderr: %s", err);
  cr_assert_not_null(strstr(out, "password=s3cret!\n"), "stdout: %s", out);
  free(out);
  free(err);
  h_fini(&h);
}

Test(examples, fake_tool_fakes_git_at_any_depth) {
  harness h;
  h_init(&h, NULL);
  char *out, *err;
  char *args[] = {SB_EXAMPLE_FAKE_TOOL, NULL};
  cr_assert_eq(run(&h, args, NULL, &out, &err), 0, "stdout: %s stderr: %s", out, err);
  cr_assert_str_eq(out, "gave up\ngit calls: 2, script exit: 0\n");
  cr_assert_str_eq(err, "fatal: the remote end hung up unexpectedly\n"
                        "fatal: the remote end hung up unexpectedly\n");
  free(out);
  free(err);
  h_fini(&h);
}

Test(examples, wrap_captures_the_output_and_stops_at_the_timeout) {
  harness h;
  h_init(&h, NULL);
  char *out, *err;
  char *quick[] = {
      SB_EXAMPLE_WRAP, "60000", "sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  cr_assert_eq(run(&h, quick, NULL, &out, &err), 0, "stderr: %s", err);
  cr_assert_str_eq(out, "sh: status 3, signal 0\nstdout: out\n\nstderr: err\n\n");
  free(out);
  free(err);

  char *slow[] = {
      SB_EXAMPLE_WRAP, "300", "sh", "-c", "echo working; exec sleep 300", NULL};
  cr_assert_eq(run(&h, slow, NULL, &out, &err), 124, "stderr: %s", err);
  cr_assert_str_eq(out,
                   "sh: status 0, signal 15, timed out\nstdout: working\n\nstderr: \n");
  free(out);
  free(err);

  char *missing[] = {SB_EXAMPLE_WRAP, "300", "no-such-command-sb-test", NULL};
  cr_assert_eq(run(&h, missing, NULL, &out, &err), 127);
  cr_assert_str_eq(err, "wrap: no-such-command-sb-test: No such file or directory\n");
  free(out);
  free(err);
  h_fini(&h);
}
