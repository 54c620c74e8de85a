/* SPDX-License-Identifier: MIT */
/* A terminal (issue 16, items 4 and 5), under a pseudo-terminal: a
 * command run by `socketbridge run` in a terminal's foreground gets the
 * terminal as a shell's job does (prompts on /dev/tty, ^C, ^Z, the
 * foreground group given back after); --no-tty and a run in the
 * background keep it detached. A delegated program gets a pseudo-terminal
 * of its own when the call has a terminal, sized and resized as it, with
 * the stub's terminal raw meanwhile and restored after. helper_tty_shell plays the
 * interactive shell: it owns the terminal's session and reports on it what it sees. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(tty, .timeout = 90);

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The test's side of a terminal: the pty master, and what it has shown so
 * far (`seen` bytes of it matched already). */
typedef struct term {
  int master;
  pid_t pid; /* the process started on the slave */
  char shown[65536];
  size_t len, seen;
} term;

/* Starts args (args[0] a path) with fds 0..2 on a fresh pty's slave, rows x
 * cols. */
static void term_start(term *t, char *const *args, unsigned short rows,
                       unsigned short cols) {
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  int slave;
  memset(t, 0, sizeof *t);
  cr_assert_eq(openpty(&t->master, &slave, NULL, NULL, &ws), 0, "openpty: %s",
               strerror(errno));
  fcntl(t->master, F_SETFD, FD_CLOEXEC);
  t->pid = fork();
  cr_assert(t->pid >= 0, "fork: %s", strerror(errno));
  if (t->pid == 0) {
    for (int i = 0; i < 3; i++)
      dup2(slave, i);
    if (slave > 2)
      close(slave);
    execv(args[0], args);
    _exit(127);
  }
  close(slave);
}

/* Reads the terminal until text shows up (after what earlier calls
 * matched), failing the test at the deadline with what it showed. */
static void term_expect(term *t, const char *text) {
  double end = now_s() + H_DEADLINE * h_scale();
  for (;;) {
    char *at;
    t->shown[t->len] = '\0';
    at = strstr(t->shown + t->seen, text);
    if (at != NULL) {
      t->seen = (size_t)(at - t->shown) + strlen(text);
      return;
    }
    double left = end - now_s();
    cr_assert(left > 0, "the terminal never showed \"%s\"; it showed:\n%s", text,
              t->shown);
    struct pollfd p = {.fd = t->master, .events = POLLIN};
    int r = poll(&p, 1, (int)(left * 1000) + 1);
    if (r <= 0)
      continue;
    ssize_t n = read(t->master, t->shown + t->len, sizeof t->shown - 1 - t->len);
    cr_assert(n > 0, "the terminal closed without showing \"%s\"; it showed:\n%s", text,
              t->shown);
    t->len += (size_t)n;
  }
}

static void term_send(term *t, const char *keys) {
  size_t n = strlen(keys);
  cr_assert_eq(write(t->master, keys, n), (ssize_t)n, "write to the pty: %s",
               strerror(errno));
}

/* Waits for the process on the terminal to end; returns its exit status. */
static int term_end(term *t) {
  int st = 0;
  cr_assert(h_wait_reapable(t->pid, H_DEADLINE * h_scale()), "the shell did not end");
  cr_assert_eq(waitpid(t->pid, &st, 0), t->pid);
  close(t->master);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- item 4: the command of `socketbridge run` gets the terminal ----------- */

/* tty_shell [-b] socketbridge run [OPTION] -- ask_tty */
static void run_ask_tty(term *t, bool background, const char *option) {
  char *args[8];
  int n = 0;
  args[n++] = HELPER_TTY_SHELL;
  if (background)
    args[n++] = "-b";
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  if (option != NULL)
    args[n++] = (char *)option;
  args[n++] = "--";
  args[n++] = HELPER_ASK_TTY;
  args[n] = NULL;
  term_start(t, args, 24, 80);
}

Test(tty, a_command_prompts_on_dev_tty_and_reads_the_answer) {
  term t;
  run_ask_tty(&t, false, NULL);
  term_expect(&t, "Username: ");
  term_send(&t, "alice\n");
  term_expect(&t, "got alice");
  /* And the terminal is socketbridge's group's again, not the command's. */
  term_expect(&t, "[shell] exit=0 fg=job");
  cr_assert_eq(term_end(&t), 0);
}

Test(tty, python_getpass_prompts_on_the_terminal_as_under_a_shell) {
  /* A real program that, as git, ssh and sudo, asks on /dev/tty with the
   * echo off. */
  static char ask[] = "import getpass; print('got', getpass.getpass('Password: '))";
  char *args[] = {HELPER_TTY_SHELL, SB_TEST_CLI, "run", "--", "python3", "-c", ask, NULL};
  term t;
  term_start(&t, args, 24, 80);
  term_expect(&t, "Password: ");
  term_send(&t, "s3cret\n");
  term_expect(&t, "got s3cret");
  term_expect(&t, "[shell] exit=0 fg=job");
  /* Echo was off: the answer shows once, in python's own line (without
   * /dev/tty, getpass falls back to stdin with the echo on, and warns). */
  char *first = strstr(t.shown, "s3cret");
  cr_assert(first != NULL && strstr(first + 1, "s3cret") == NULL,
            "the password was echoed; the terminal showed:\n%s", t.shown);
  cr_assert_eq(term_end(&t), 0);
}

Test(tty, ctrl_c_reaches_the_command_and_run_exits_130) {
  term t;
  run_ask_tty(&t, false, NULL);
  term_expect(&t, "Username: ");
  term_send(&t, "\x03");
  term_expect(&t, "[shell] exit=130 fg=job");
  cr_assert_eq(term_end(&t), 0);
}

Test(tty, ctrl_z_stops_the_job_and_fg_resumes_the_command) {
  term t;
  run_ask_tty(&t, false, NULL);
  term_expect(&t, "Username: ");
  term_send(&t, "\x1a");
  /* The shell sees its job (socketbridge run) stop, and has the terminal. */
  term_expect(&t, "[shell] stopped TSTP");
  term_send(&t, "fg\n");
  term_send(&t, "bob\n");
  term_expect(&t, "got bob");
  term_expect(&t, "[shell] exit=0 fg=job");
  cr_assert_eq(term_end(&t), 0);
}

Test(tty, no_tty_keeps_the_command_detached) {
  term t;
  run_ask_tty(&t, false, "--no-tty");
  term_expect(&t, "no tty: No such device or address");
  term_expect(&t, "[shell] exit=3 fg=job");
  cr_assert_eq(term_end(&t), 0);
}

Test(tty, a_run_in_the_background_leaves_the_terminal_alone) {
  term t;
  run_ask_tty(&t, true, NULL);
  term_expect(&t, "no tty: No such device or address");
  term_expect(&t, "[shell] exit=3 fg=shell");
  cr_assert_eq(term_end(&t), 0);
}

/* ---- item 5: a delegated program gets a terminal when the call has one ---- */

/* tty_shell socketbridge run --shim tty-info --rules R -- tty-info, where R
 * delegates every call to helper_tty_info: the command is the stub, on the
 * terminal, and the program runs beside the supervisor. */
static void run_delegated_tty_info(term *t, harness *h) {
  char rules[1024];
  int fd;
  snprintf(rules, sizeof rules, "{\"rules\": [{\"delegate\": {\"argv\": [\"%s\"]}}]}\n",
           HELPER_TTY_INFO);
  fd = h_create(h, "rules.json");
  cr_assert_eq(write(fd, rules, strlen(rules)), (ssize_t)strlen(rules));
  close(fd);
  char *args[] = {HELPER_TTY_SHELL,
                  SB_TEST_CLI,
                  "run",
                  "--shim",
                  "tty-info",
                  "--rules",
                  (char *)h_path(h, "rules.json"),
                  "--",
                  "tty-info",
                  NULL};
  term_start(t, args, 24, 80);
}

static void expect_cooked(term *t) {
  struct termios tio;
  cr_assert_eq(tcgetattr(t->master, &tio), 0, "tcgetattr: %s", strerror(errno));
  cr_assert((tio.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG),
            "the terminal was left raw: c_lflag %#x", (unsigned)tio.c_lflag);
}

Test(tty, a_delegated_program_gets_a_terminal_of_the_calls_size_and_its_resizes) {
  harness h;
  term t;
  h_init(&h, NULL);
  run_delegated_tty_info(&t, &h);
  term_expect(&t, "isatty=111 rows=24 cols=80");
  struct winsize ws = {.ws_row = 30, .ws_col = 100};
  cr_assert_eq(ioctl(t.master, TIOCSWINSZ, &ws), 0);
  term_send(&t, "x\r");
  term_expect(&t, "winch=1 rows=30 cols=100");
  term_send(&t, "q\r");
  term_expect(&t, "[shell] exit=0 fg=job");
  expect_cooked(&t);
  cr_assert_eq(term_end(&t), 0);
  h_fini(&h);
}

Test(tty, ctrl_c_reaches_a_delegated_program_through_its_terminal) {
  harness h;
  term t;
  h_init(&h, NULL);
  run_delegated_tty_info(&t, &h);
  term_expect(&t, "isatty=111");
  term_send(&t, "\x03");
  /* The program died of SIGINT on its pty; the stub (the command) ends the
   * same way, and so does run; the terminal is cooked again. */
  term_expect(&t, "[shell] exit=130 fg=job");
  expect_cooked(&t);
  cr_assert_eq(term_end(&t), 0);
  h_fini(&h);
}

static void never_exits(sb_child *child, int64_t status, int signum) {
  (void)child, (void)status, (void)signum;
  cr_assert_fail("a child that was refused ended");
}

Test(tty, an_unknown_terminal_mode_is_refused) {
  harness h;
  sb_child *child = NULL;
  h_init(&h, NULL);
  char *args[] = {"true", NULL};
  int r = sb_spawn(h.server,
                   &(sb_spawn_options){.file = "true",
                                       .args = args,
                                       .terminal = (sb_terminal)7,
                                       .on_exit = never_exits},
                   &child);
  cr_assert_eq(r, -EINVAL, "sb_spawn: %s", sb_strerror(r));
  cr_assert_null(child);
  h_fini(&h);
}
