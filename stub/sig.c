/* SPDX-License-Identifier: MIT */
/* sig.c - signals: caught into a self-pipe, forwarded by the relay; and
 * dying by one when the supervisor says so. */
#include "stub.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The self-pipe's write end: the only state the handler needs, set once
 * before any handler is installed. */
static int stub_sig_wfd = -1;

/* The signals the supervisor hears about (protocol.md, `signal`). */
static const int stub_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* What a program we start must not inherit from us: the handlers we
 * installed (bit i: stub_forwarded[i]; SIGCHLD apart), and our SIGPIPE
 * ignore, unless the parent had it ignored already. */
static unsigned stub_caught;
static bool stub_chld_caught, stub_winch_caught;
static bool stub_pipe_was_ignored;

/* Async-signal-safe: one byte per signal. When the pipe is full (the loop is
 * far behind), the byte is dropped, as the kernel merges pending signals. */
static void on_signal(int sig, siginfo_t *si, void *ctx) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  (void)ctx;
  if (si != NULL && si->si_code == SI_KERNEL)
    b |= STUB_SIG_KERNEL;
  ssize_t r = write(stub_sig_wfd, &b, 1);
  (void)r;
  errno = saved;
}

/* No SA_RESTART: a blocking write (the fallback in fdout.c) should return
 * to the loop so the signal goes up; the loop retries on EINTR. SA_SIGINFO
 * tells who sent it; SA_NOCLDSTOP (SIGCHLD only) leaves out a program's
 * stops and continues: only its end matters. */
static void catch_signal(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP;
  sigfillset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void set_handler(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigaction(sig, &sa, NULL);
}

int stub_signals_init(void) {
  int p[2];
  struct sigaction old;
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
    stub_fail("cannot create a pipe: %s", strerror(errno));
  stub_sig_wfd = p[1];

  /* A closed reader of fd 1/2 or of the socket is an error code to handle,
   * not a reason to die. */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  stub_pipe_was_ignored =
      sigaction(SIGPIPE, &ign, &old) == 0 && old.sa_handler == SIG_IGN;

  for (size_t i = 0; i < sizeof stub_forwarded / sizeof stub_forwarded[0]; i++) {
    /* A signal the parent left ignored (nohup, `cmd &` in a script) stays
     * ignored, as in any well-behaved program. */
    if (sigaction(stub_forwarded[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    catch_signal(stub_forwarded[i]);
    stub_caught |= 1u << i;
  }
  return p[0];
}

void stub_signals_catch_child(void) {
  catch_signal(SIGCHLD);
  stub_chld_caught = true;
}

void stub_signals_catch_winch(void) {
  catch_signal(SIGWINCH);
  stub_winch_caught = true;
}

/* The signals whose action we changed and a program must find at the
 * default. Returns how many (at most 7). */
static size_t changed(int out[7]) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof stub_forwarded / sizeof stub_forwarded[0]; i++)
    if (stub_caught & (1u << i))
      out[n++] = stub_forwarded[i];
  if (stub_chld_caught)
    out[n++] = SIGCHLD;
  if (stub_winch_caught)
    out[n++] = SIGWINCH;
  if (!stub_pipe_was_ignored)
    out[n++] = SIGPIPE;
  return n;
}

void stub_signals_restore(void) {
  int sigs[7];
  size_t n = changed(sigs);
  for (size_t i = 0; i < n; i++)
    set_handler(sigs[i], SIG_DFL);
}

size_t stub_signals_take(int sigfd, int *out, size_t max) {
  unsigned char b[STUB_OUTQ_LEN];
  if (max > sizeof b)
    max = sizeof b;
  ssize_t n;
  do
    n = read(sigfd, b, max);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return 0;
  for (ssize_t i = 0; i < n; i++)
    out[i] = b[i];
  return (size_t)n;
}

static bool stops_process(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

_Noreturn void stub_die_by_signal(int sig) {
  stub_tty_restore();
  /* A stop signal's default action would leave the stub stopped, never
   * ending; an instructed death must end. */
  if (!stops_process(sig)) {
    /* The death is an instruction, not a crash: no core file in the user's
     * directory, no crash report. WIFSIGNALED and WTERMSIG are the same. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
      rl.rlim_cur = 0;
      /* setrlimit without its synchronization of every thread (we are
       * one): in the static musl stub, that and fork's locking (run.c)
       * take 3 KB of thread machinery between them. */
      prlimit(0, RLIMIT_CORE, &rl, NULL);
    }
    set_handler(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
  }
  /* Still alive: the default action ignores it (CHLD, URG, WINCH, CONT). */
  _exit(128 + sig);
}
