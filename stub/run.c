/* SPDX-License-Identifier: MIT */
/* run.c - run mode (proto 4, step 5): the stub spawns the program, with
 * the stub's own stdin and pipes for stdout/stderr, in the stub's process
 * group, and relays the pipes up as stdout/stderr frames from the same poll
 * loop as everything else (relay.c calls in here).
 *
 * Backpressure as for stdin: a pipe is read only when the send queue is
 * empty (its last frame, which points into the pipe's buffer, is sent) and
 * the tee has written that chunk; a program that outruns the supervisor
 * blocks on its full pipe. The program is reaped on SIGCHLD, which the
 * self-pipe brings to the loop. `exited` goes up once it is reaped and both
 * pipes are at EOF, so it always follows the last byte of output. */
#include "stub.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* glibc's; musl (a static stub, SB_STUB_MUSL) has no W_EXITCODE. */
#ifndef W_EXITCODE
#define W_EXITCODE(ret, sig) ((ret) << 8 | (sig))
#endif

/* From here on stdin belongs to the program: the stub neither reads it nor
 * sends more of it up (no EOF frame either: the stream simply stops). */
static void stop_stdin(stub *st) {
  stub_fd *in = &st->std[0];
  if (in->io >= 0 && in->io != in->fd)
    close(in->io);
  in->io = -1;
  in->done = true;
}

/* Starts the program with stdout/stderr on fresh pipes (fds[1], fds[3]:
 * the program's ends; fds[0], fds[2]: ours), the stub's stdin, in the
 * stub's process group. Returns 0 or a negative errno.
 *
 * fork + execve, the steps posix_spawn takes with POSIX_SPAWN_SETSIGDEF
 * and SETSIGMASK: posix_spawn's attribute and file-action calls alone
 * would cost the stub a page of its 64 KiB (every import takes room).
 * _Fork: fork without the atfork handlers and the C library's locking
 * around them (the stub is one thread and registers none; the child calls
 * only async-signal-safe functions), which in the static musl stub take
 * 3 KB of thread machinery (with setrlimit's, sig.c).
 * Every signal is blocked across fork, so no handler of ours runs in the
 * child; the child puts back the signals we changed to their default and
 * the mask as we got it, then execs. An exec error comes back through a
 * close-on-exec pipe: EOF there means the program runs. */
static int spawn(stub_run *run, const stub_prog *p, char *const *argv, const int fds[4]) {
  sigset_t all, old;
  int ep[2], err = 0;
  if (pipe2(ep, O_CLOEXEC) < 0)
    return -errno;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = _Fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[3], 2);
    if (stub_std_closed & 1u)
      close(0); /* as we got it: closed */
    stub_signals_restore();
    sigprocmask(SIG_SETMASK, &old, NULL);
    execve(p->file, argv, p->env);
    err = errno;
    ssize_t w = write(ep[1], &err, sizeof err);
    (void)w;
    _exit(STUB_EXIT_CANNOT_RUN);
  }
  err = pid < 0 ? errno : 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(ep[1]);
  ssize_t n = 0;
  while (pid > 0 && (n = read(ep[0], &err, sizeof err)) < 0 && errno == EINTR)
    ;
  close(ep[0]);
  if (n == (ssize_t)sizeof err)
    waitpid(pid, NULL, 0); /* the child that could not exec */
  else if (pid > 0)
    run->pid = pid;
  return -err;
}

/* Pipes, spawn, and our ends made non-blocking (they are ours alone). */
static int start(stub_run *run, const stub_prog *p, char *const *argv) {
  int fds[4];
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2(fds + 2, O_CLOEXEC) < 0) {
    int err = -errno;
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  int err = spawn(run, p, argv, fds);
  close(fds[1]);
  close(fds[3]);
  for (int i = 0; i < 2; i++) {
    if (err == 0)
      fcntl(fds[2 * i], F_SETFL, O_NONBLOCK);
    else
      close(fds[2 * i]);
    run->out[i].fd = err == 0 ? fds[2 * i] : -1;
  }
  return err;
}

void stub_run_start(stub *st, sb_launch *l) {
  stub_prog p;
  stub_run *run = calloc(1, sizeof *run);
  uint8_t *buf = malloc(st->ibuf_len);
  if (run == NULL || buf == NULL)
    stub_fail("out of memory");
  st->run = run;
  run->tee = l->tee;
  /* stdin is never read again: its buffer is free once its frame is sent,
   * which a pipe read waits for (an empty send queue). */
  run->out[0] = (stub_pipe){.fd = -1, .buf = st->ibuf};
  run->out[1] = (stub_pipe){.fd = -1, .buf = buf};
  stop_stdin(st);
  stub_signals_catch_child();

  int err = stub_prog_prepare(&p, l);
  if (err == 0)
    err = start(run, &p, l->argv.v);
  free(p.env);
  /* As a shell says it: the line, and the status of a program that could
   * not start; `exited` follows from stub_run_step. */
  if (err != 0) {
    stub_prog_say(&p, "run", err);
    run->status = W_EXITCODE(stub_prog_exit_code(&p, err), 0);
  }
}

/* ---- the loop's side ------------------------------------------------------ */

bool stub_run_tee_busy(const stub *st, int stream) {
  const stub_pipe *pp = &st->run->out[stream - 1];
  return pp->teed < pp->len;
}

/* Writes what our fd takes of the chunk. A failed write is reported once
 * (stream_error) and the tee of that stream stops; the relay goes on. So
 * does a stream the supervisor closed: its tee is dropped. */
static void tee_write(stub *st, int i) {
  stub_pipe *pp = &st->run->out[i];
  stub_fd *f = &st->std[i + 1];
  while (pp->teed < pp->len) {
    if (f->done || f->failed) {
      pp->teed = pp->len;
      return;
    }
    ssize_t n = stub_fd_write(f, pp->buf + pp->teed, pp->len - pp->teed);
    if (n > 0)
      pp->teed += (size_t)n;
    else if (n == -EAGAIN || n == -EINTR)
      return;
    else
      stub_stream_failed(st, i + 1, (int)-n);
  }
}

/* One read of pipe i: a data frame (and the tee), or at EOF the empty frame
 * that closes the stream. A read error ends the stream as EOF does. */
static void read_pipe(stub *st, int i) {
  stub_pipe *pp = &st->run->out[i];
  sb_kind kind = i == 0 ? SB_KIND_STDOUT : SB_KIND_STDERR;
  ssize_t n = read(pp->fd, pp->buf, st->ibuf_len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    stub_bridge_push_data(&st->br, kind, NULL, 0);
    close(pp->fd);
    pp->fd = -1;
    return;
  }
  pp->len = (size_t)n;
  pp->teed = st->run->tee ? 0 : pp->len;
  stub_bridge_push_data(&st->br, kind, pp->buf, pp->len);
  tee_write(st, i);
}

void stub_run_poll(const stub *st, struct pollfd *p) {
  for (int i = 0; i < 2; i++) {
    const stub_pipe *pp = &st->run->out[i];
    bool teeing = pp->teed < pp->len;
    /* Data the supervisor sent for the same fd is written first. */
    bool theirs = st->piece_len > 0 && st->piece_stream == i + 1;
    bool readable = pp->fd >= 0 && st->br.q_len == 0 && !teeing && !theirs;
    p[2 * i] = (struct pollfd){.fd = readable ? pp->fd : -1, .events = POLLIN};
    p[2 * i + 1] =
        (struct pollfd){.fd = teeing ? st->std[i + 1].io : -1, .events = POLLOUT};
  }
}

void stub_run_handle(stub *st, const struct pollfd *p) {
  for (int i = 0; i < 2; i++) {
    if (p[2 * i + 1].revents != 0)
      tee_write(st, i);
    if (p[2 * i].revents != 0)
      read_pipe(st, i);
  }
}

bool stub_run_signal(stub *st, int b) {
  stub_run *run = st->run;
  int sig = b & ~STUB_SIG_KERNEL;
  if (run == NULL)
    return false;
  if (sig == SIGCHLD) {
    int status;
    if (run->pid > 0 && waitpid(run->pid, &status, WNOHANG) == run->pid) {
      run->status = status;
      run->pid = 0;
    }
    return true;
  }
  if (run->pid == 0)
    return false; /* the program has ended: up as `signal`, as in proxy mode */
  /* One the kernel sent (a terminal's ^C) went to the whole process group,
   * the program included: sending it again would deliver it twice. */
  if (!(b & STUB_SIG_KERNEL))
    kill(run->pid, sig);
  return true;
}

STUB_COLD static void send_exited(stub *st) {
  int s = st->run->status;
  sb_msg m = {.type = SB_MSG_EXITED};
  if (WIFSIGNALED(s) && sb_signal_name(WTERMSIG(s)) != NULL)
    m.u.exit.signal = WTERMSIG(s);
  else
    m.u.exit.code = WIFSIGNALED(s) ? 128 + WTERMSIG(s) : WEXITSTATUS(s);
  stub_bridge_push_msg(&st->br, &m);
  st->run->exited_sent = true;
}

/* Kills the program (it is part of the call, and no one is left to hear
 * how it ends) and reaps it, waiting STUB_REAP_MS at most: a process in an
 * uninterruptible sleep dies when it wakes, and init reaps it then. */
STUB_COLD static void kill_program(stub *st) {
  stub_run *run = st->run;
  if (run->pid <= 0)
    return;
  kill(run->pid, SIGKILL);
  int64_t deadline = stub_now_ms() + STUB_REAP_MS;
  while (waitpid(run->pid, NULL, WNOHANG) == 0) {
    /* SIGCHLD puts a byte in the self-pipe: no wake-up is missed. */
    struct pollfd p = {.fd = st->sigfd, .events = POLLIN};
    int left = stub_ms_left(deadline), sigs[STUB_OUTQ_LEN];
    if (left == 0)
      break;
    if (poll(&p, 1, left) > 0)
      stub_signals_take(st->sigfd, sigs, STUB_OUTQ_LEN);
  }
  run->pid = 0;
}

/* The bridge is lost. A program that has ended, with all of its output
 * teed to our own fds, was seen whole by the caller: the stub ends as it
 * did. Otherwise nobody can be told how the call ends: a program still
 * running is killed (a call does not outlive its supervisor, as delegates
 * do not: PR_SET_PDEATHSIG) and the stub fails. */
_Noreturn void stub_run_lost(stub *st) {
  stub_run *run = st->run;
  bool ended = run->pid == 0 && run->out[0].fd < 0 && run->out[1].fd < 0;
  bool whole = ended && run->tee;
  for (int fd = 1; fd <= 2; fd++)
    whole = whole && !st->std[fd].failed && !st->std[fd].done;
  if (!whole) {
    kill_program(st);
    stub_fail("connection to the supervisor lost during run");
  }
  if (WIFSIGNALED(run->status))
    stub_die_by_signal(WTERMSIG(run->status));
  _exit(WEXITSTATUS(run->status));
}

void stub_run_step(stub *st) {
  stub_run *run = st->run;
  if (run == NULL || run->pid != 0 || run->out[0].fd >= 0 || run->out[1].fd >= 0)
    return;
  if (!run->exited_sent && stub_bridge_room(&st->br) > 0)
    send_exited(st);
}
