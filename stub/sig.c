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

/* Async-signal-safe: one byte per signal. When the pipe is full (the loop is
 * far behind), the byte is dropped, as the kernel merges pending signals. */
static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  ssize_t r = write(stub_sig_wfd, &b, 1);
  (void)r;
  errno = saved;
}

int stub_signals_init(void) {
  int p[2];
  struct sigaction sa;
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
    stub_fail("cannot create a pipe: %s", strerror(errno));
  stub_sig_wfd = p[1];

  /* A closed reader of fd 1/2 or of the socket is an error code to handle,
   * not a reason to die. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);

  /* No SA_RESTART: a blocking write (the fallback in fdout.c) should return
   * to the loop so the signal goes up; the loop retries on EINTR. */
  sa.sa_handler = on_signal;
  sigfillset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof stub_forwarded / sizeof stub_forwarded[0]; i++) {
    struct sigaction old;
    /* A signal the parent left ignored (nohup, `cmd &` in a script) stays
     * ignored, as in any well-behaved program. */
    if (sigaction(stub_forwarded[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(stub_forwarded[i], &sa, NULL);
  }
  return p[0];
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
  /* A stop signal's default action would leave the stub stopped, never
   * ending; an instructed death must end. */
  if (!stops_process(sig)) {
    /* The death is an instruction, not a crash: no core file in the user's
     * directory, no crash report. WIFSIGNALED and WTERMSIG are the same. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
      rl.rlim_cur = 0;
      setrlimit(RLIMIT_CORE, &rl);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
  }
  /* Still alive: the default action ignores it (CHLD, URG, WINCH, CONT). */
  _exit(128 + sig);
}
