/* SPDX-License-Identifier: MIT */
/* trampoline.c - `socketbridge-stub --socketbridge-die-with PPID FILE ARGV0
 * [ARG...]`: how the supervisor starts a program it delegates a call to.
 *
 * A delegated program is part of a call, not of the user's command: it must
 * not outlive its supervisor, even one killed with SIGKILL, which has no
 * chance to stop it. PR_SET_PDEATHSIG does that, and posix_spawn cannot set
 * it; so the supervisor spawns this instead, which asks for SIGKILL when
 * its parent dies, makes sure that parent is still the one that started it
 * (else it died in between: do what the signal would have done), and execs
 * the program in place: same pid, fds, environment, directory and signal
 * dispositions (all at their default: the supervisor's posix_spawn set
 * them so). The program looks exactly as if it had been spawned directly.
 *
 * Limits: the kernel clears the setting on exec of a set-user-ID or
 * set-group-ID program (or one with file capabilities); it covers the
 * program, not the processes it starts; and "parent" is the supervisor's
 * thread that spawned it (its event loop's thread). */
#include "stub.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

/* A file execve refuses with ENOEXEC (a script without #!) runs with
 * /bin/sh, as execvp does it. */
STUB_COLD static void exec_sh(const char *file, char **args) {
  size_t n = 0;
  while (args[n] != NULL)
    n++;
  char **v = malloc((n + 2) * sizeof *v);
  if (v == NULL)
    return;
  v[0] = "/bin/sh";
  v[1] = (char *)file;
  for (size_t i = 1; i <= n; i++)
    v[i + 1] = args[i]; /* args[n] is the NULL */
  execve("/bin/sh", v, environ);
}

_Noreturn void stub_trampoline(int argc, char **argv) {
  if (argc < 5)
    stub_fail("%s: expected PPID FILE ARGV0 [ARG...]", SB_TRAMPOLINE_ARG);
  pid_t ppid = (pid_t)strtol(argv[2], NULL, 10);
  const char *file = argv[3];
  char **args = argv + 4;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    stub_fail("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
  if (getppid() != ppid)
    kill(getpid(), SIGKILL);
  if (strchr(file, '/') != NULL)
    execve(file, args, environ);
  else
    execvp(file, args);
  int err = errno;
  if (err == ENOEXEC) {
    exec_sh(file, args);
    err = errno;
  }
  stub_fail_code(err == ENOENT || err == ENOTDIR ? STUB_EXIT_NOT_FOUND
                                                 : STUB_EXIT_CANNOT_RUN,
                 "cannot exec '%s': %s", file, strerror(err));
}
