/* SPDX-License-Identifier: MIT */
/* tty_info: what a program learns of its terminal. Prints
 * "isatty=IOE rows=R cols=C" (I, O, E: 1 when fd 0, 1, 2 is a terminal;
 * the size of fd 0's), then for each line it reads on stdin
 * "winch=N rows=R cols=C" (N: SIGWINCHs received so far); exits 0 at "q"
 * or EOF. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t winches;

static void on_winch(int sig) {
  (void)sig;
  winches++;
}

static void size(unsigned *rows, unsigned *cols) {
  struct winsize w = {0};
  ioctl(0, TIOCGWINSZ, &w);
  *rows = w.ws_row;
  *cols = w.ws_col;
}

int main(void) {
  struct sigaction sa;
  char line[256];
  unsigned rows, cols;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGWINCH, &sa, NULL);
  size(&rows, &cols);
  printf("isatty=%d%d%d rows=%u cols=%u\n", isatty(0), isatty(1), isatty(2), rows, cols);
  fflush(stdout);
  while (fgets(line, sizeof line, stdin) != NULL && line[0] != 'q') {
    size(&rows, &cols);
    printf("winch=%d rows=%u cols=%u\n", (int)winches, rows, cols);
    fflush(stdout);
  }
  return 0;
}
