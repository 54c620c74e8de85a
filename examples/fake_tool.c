/* SPDX-License-Identifier: MIT */
/* fake_tool.c - fake a command-line tool in a test: the script under test
 * runs `git push`, and every git anywhere in its process tree is this
 * program's fake_git(), which fails as a git whose remote hung up. The test
 * checks that the script retried once, then gave up cleanly.
 *
 *   $ ./fake_tool
 *   fatal: the remote end hung up unexpectedly
 *   fatal: the remote end hung up unexpectedly
 *   gave up
 *   git calls: 2, script exit: 0
 */
#include <socketbridge.h>
#include <stdio.h>
#include <string.h>

static void fake_git(sb_server *server, sb_conn *conn) {
  const char *err = "fatal: the remote end hung up unexpectedly\n";
  ++*(unsigned *)sb_server_data(server); /* one more call */
  sb_conn_respond(conn, &(sb_response){.err = err, .err_len = strlen(err), .code = 128});
}

int main(void) {
  unsigned calls = 0;
  char *script[] = {"sh", "-c", "git push || git push || echo 'gave up'", NULL};
  sb_run_options o = {.server = {.on_connect = fake_git, .data = &calls},
                      .spawn.shims = (char *[]){"git", NULL}};
  sb_run_result res;
  int r = sb_run(script, &o, &res);
  printf("git calls: %u, script exit: %lld\n", calls, (long long)res.status);
  return r == 0 && calls == 2 && res.status == 0 ? 0 : 1;
}
