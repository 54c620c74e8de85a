/* SPDX-License-Identifier: MIT */
/* tty_shell: a shell's job control, and nothing else, for terminal tests.
 * Run with fds 0..2 on a terminal (a pty slave): it makes it the
 * controlling terminal of a new session, runs ARGV as a job in a process
 * group of its own, in the terminal's foreground (or, with -b first, in
 * its background), and reports on the terminal, as a shell would:
 *   "[shell] stopped SIG" when the job stops; it then reads a line from the
 *   terminal, and "fg" gives the job the terminal again and SIGCONT;
 *   "[shell] exit=N fg=WHO" when the job has ended: N as $? (128+signal),
 *   WHO the terminal's foreground group then: "job" (the job's own group),
 *   "shell", or "other" (a group the job left behind in the foreground).
 * Exits 0 once the job has ended, 2 on a setup error. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int job_signals[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
#define N_JOB_SIGNALS (sizeof job_signals / sizeof job_signals[0])

static void set_all(void (*handler)(int)) {
  for (size_t i = 0; i < N_JOB_SIGNALS; i++)
    signal(job_signals[i], handler);
}

static const char *who(pid_t fg, pid_t job) {
  return fg == job ? "job" : fg == getpgrp() ? "shell" : "other";
}

int main(int argc, char **argv) {
  bool background = argc > 1 && strcmp(argv[1], "-b") == 0;
  char **args = argv + 1 + background;
  pid_t job;
  int st;

  if (args[0] == NULL || setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)
    return 2;
  set_all(SIG_IGN); /* as an interactive shell: the keys are for the job */
  job = fork();
  if (job < 0)
    return 2;
  if (job == 0) {
    setpgid(0, 0);
    if (!background)
      tcsetpgrp(0, getpid());
    set_all(SIG_DFL);
    execvp(args[0], args);
    _exit(127);
  }
  setpgid(job, job);
  if (!background)
    tcsetpgrp(0, job);
  for (;;) {
    if (waitpid(job, &st, WUNTRACED) < 0)
      return 2;
    if (WIFSTOPPED(st)) {
      char line[64];
      ssize_t n;
      tcsetpgrp(0, getpgrp());
      printf("[shell] stopped %s\n", sigabbrev_np(WSTOPSIG(st)));
      fflush(stdout);
      n = read(0, line, sizeof line - 1); /* one line: the terminal is canonical */
      if (n <= 0 || strncmp(line, "fg", 2) != 0)
        return 2;
      tcsetpgrp(0, job);
      kill(-job, SIGCONT);
      continue;
    }
    printf("[shell] exit=%d fg=%s\n",
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), who(tcgetpgrp(0), job));
    fflush(stdout);
    return 0;
  }
}
