/* SPDX-License-Identifier: MIT */
/* wrap.c - run a command with a time limit and its output captured, as a
 * harness wraps a tool: `wrap MILLISECONDS COMMAND [ARG...]`.
 *
 *   $ ./wrap 1000 sh -c 'echo working; sleep 5'
 *   sh: status 0, signal 15, timed out
 *   stdout: working
 *
 *   stderr:
 */
#include <socketbridge.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc < 3)
    return 125;
  sb_run_result res;
  sb_run_options o = {.capture = true, .spawn.timeout_ms = strtoull(argv[1], NULL, 10)};
  int r = sb_run(argv + 2, &o, &res);
  if (r < 0)
    fprintf(stderr, "wrap: %s: %s\n", argv[2], sb_strerror(r));
  else
    printf("%s: status %lld, signal %d%s\nstdout: %s\nstderr: %s\n", argv[2],
           (long long)res.status, res.signal, res.timed_out ? ", timed out" : "", res.out,
           res.err);
  sb_run_result_free(&res);
  return r < 0 ? 127 : res.timed_out ? 124 : 0;
}
