/* SPDX-License-Identifier: MIT */
/* supervise.c - what happens to a child once it runs: reaping through a
 * SIGCHLD watcher, the deadline, the stop sequence, and restarts with
 * exponential backoff.
 *
 * A child's life, in sb__child_state terms:
 *
 *   RUNNING --reaped--> REAPED --restart due--> BACKOFF --timer--> RUNNING
 *                          |                       |
 *                          +--no restart--> ENDED <+-- sb_child_stop, close
 *
 * REAPED exists because the callbacks of a run's end (on_output for what the
 * pipes still hold, on_event for EXIT) may call sb_child_stop or
 * sb_server_close: they only mark the child as stopping, and the decision
 * that follows honours it. The pid is never signalled once reaped, so a
 * recycled pid is never hit.
 *
 * One timer per child serves, in turn, the deadline and then the grace of
 * the stop sequence (while RUNNING), the backoff (BACKOFF), and the deferred
 * on_exit of a child stopped while waiting to restart (ENDING). */
#include "sb_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void finish(sb_child *child);

/* ---- signals ----------------------------------------------------------------- */

static void emit_stop(sb_child *child, int signum, const char *message) {
  sb_event ev = {0};
  ev.signal = signum;
  ev.message = message;
  sb__emit_child(child, SB_EVENT_STOP, &ev);
}

/* Restarts the child's timer relative to now: the loop's clock may be stale
 * by however long this iteration has run (a fork, the caller's callbacks). */
static void arm(sb_child *child, uv_timer_cb cb, uint64_t ms) {
  uv_update_time(child->server->loop);
  uv_timer_start(&child->timer, cb, ms, 0);
}

/* ---- the stop sequence ------------------------------------------------------ */

static void on_grace_over(uv_timer_t *timer) {
  sb_child *child = timer->data;
  if (child->state != SB__CHILD_RUNNING || child->kill_sent)
    return;
  child->kill_sent = true;
  sb__child_signal(child, SIGKILL);
  emit_stop(child, SIGKILL, "the grace after the stop signal is over");
}

/* stop_signal to the group now, SIGKILL after kill_after_ms unless the run
 * ended by then. Once per run. */
static void stop_run(sb_child *child) {
  if (child->state != SB__CHILD_RUNNING || child->term_sent || child->kill_sent)
    return;
  child->term_sent = true;
  arm(child, on_grace_over, child->kill_after_ms); /* replaces the deadline */
  sb__child_signal(child, child->stop_signal);
  emit_stop(child, child->stop_signal, NULL);
}

/* A deadline passed while a run is RUNNING: TIMEOUT, then the stop
 * sequence. */
static void run_timed_out(sb_child *child) {
  sb_event ev = {0};
  child->timed_out = true;
  child->stopping = true;
  sb__emit_child(child, SB_EVENT_TIMEOUT, &ev);
  stop_run(child); /* does nothing if the callback already stopped it */
}

static void on_deadline(uv_timer_t *timer) {
  sb_child *child = timer->data;
  if (child->state == SB__CHILD_RUNNING)
    run_timed_out(child);
}

static void end_waiting(sb_child *child);

/* deadline_ms, the whole life's: a run is stopped as by its own deadline;
 * a child waiting to restart ends. Either way no restart follows. */
static void on_life_deadline(uv_timer_t *timer) {
  sb_child *child = timer->data;
  sb_event ev = {0};
  switch (child->state) {
  case SB__CHILD_RUNNING:
    if (!child->timed_out) /* its own timeout_ms came first: one TIMEOUT */
      run_timed_out(child);
    break;
  case SB__CHILD_BACKOFF:
    child->timed_out = true;
    child->stopping = true;
    sb__emit_child(child, SB_EVENT_TIMEOUT, &ev);
    if (child->state == SB__CHILD_BACKOFF) /* unless the callback stopped it */
      end_waiting(child);
    break;
  case SB__CHILD_REAPED: /* a decision is under way: it sees stopping */
    child->stopping = true;
    break;
  case SB__CHILD_ENDING:
  case SB__CHILD_ENDED:
    break;
  }
}

void sb__supervise_deadline(sb_child *child) {
  if (child->deadline_ms > 0)
    uv_timer_start(&child->deadline, on_life_deadline, child->deadline_ms, 0);
}

void sb__supervise_started(sb_child *child) {
  sb_event ev = {0};
  if (child->timeout_ms > 0)
    arm(child, on_deadline, child->timeout_ms);
  sb__emit_child(child, SB_EVENT_SPAWN, &ev);
}

/* ---- backoff ---------------------------------------------------------------- */

/* xorshift64: jitter needs no more, and no syscall per restart. */
static uint64_t next_random(sb_server *server) {
  uint64_t x = server->rng;
  if (x == 0)
    x = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)server;
  x = x != 0 ? x : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  server->rng = x;
  return x;
}

/* d = min(max, min * 2^k); the delay is uniform in [max(min, d/2), d].
 * The jitter keeps supervisors that failed together from restarting
 * together; the floor keeps the first delay at backoff_min_ms. */
static uint64_t backoff_delay(sb_child *child) {
  uint64_t lo, d = child->backoff_min_ms, max = child->backoff_max_ms;
  for (unsigned k = 0; k < child->backoff_k && d < max; k++)
    d = d > max / 2 ? max : d * 2;
  if (d > max)
    d = max;
  lo = d / 2 < child->backoff_min_ms ? child->backoff_min_ms : d / 2;
  return lo + next_random(child->server) % (d - lo + 1);
}

static void on_backoff_over(uv_timer_t *timer);

/* Waits before the next run, or gives up when max_restarts restarts in a
 * row have been made. */
static void next_run_or_give_up(sb_child *child, const char *message) {
  sb_event ev = {0};

  if (child->backoff_k >= child->max_restarts) {
    ev.message = message;
    sb__emit_child(child, SB_EVENT_GIVE_UP, &ev);
    finish(child);
    return;
  }
  ev.delay_ms = backoff_delay(child);
  ev.message = message;
  child->backoff_k++;
  child->state = SB__CHILD_BACKOFF;
  child->pid = 0;
  /* Armed before the event, so the callback can cancel it. */
  arm(child, on_backoff_over, ev.delay_ms);
  sb__emit_child(child, SB_EVENT_BACKOFF, &ev);
}

static void on_backoff_over(uv_timer_t *timer) {
  sb_child *child = timer->data;
  sb_event ev = {0};
  const char *why;
  int r;

  if (child->state != SB__CHILD_BACKOFF)
    return;
  child->restarts++;
  sb__emit_child(child, SB_EVENT_RESTART, &ev);
  if (child->state != SB__CHILD_BACKOFF)
    return; /* the callback stopped it: finish() is due */
  r = sb__child_start(child);
  if (r == 0) {
    sb__supervise_started(child);
    return;
  }
  /* The program is gone, or fork failed: not an exit, so no EXIT event
   * and no made-up status; on_exit will report the last real run's. */
  why = r == -ENOENT   ? "restart failed: not found"
        : r == -EACCES ? "restart failed: not executable"
                       : "restart failed";
  child->state = SB__CHILD_REAPED;
  if (child->stopping || child->server->closing)
    finish(child);
  else
    next_run_or_give_up(child, why);
}

/* ---- a run ended ------------------------------------------------------------ */

static bool wants_restart(const sb_child *child) {
  bool failed = child->last_signal != 0 || child->last_status != 0;
  if (child->stopping || child->server->closing)
    return false;
  return child->restart == SB_RESTART_ALWAYS ||
         (child->restart == SB_RESTART_ON_FAILURE && failed);
}

static void run_ended(sb_child *child, int64_t status, int signum) {
  uint64_t ran_ms = (uv_hrtime() - child->started_ns) / 1000000u;
  sb_event ev = {0};

  child->state = SB__CHILD_REAPED;
  child->last_status = status;
  child->last_signal = signum;
  uv_timer_stop(&child->timer); /* the deadline or the grace */
  sb__child_tty_ended(child);   /* the terminal is ours again, before any callback */

  /* Once a stop began (sb_child_stop, the deadline, sb_server_close),
   * nothing of the group may outlive the leader. The group's id stays
   * reserved while any member is left, so this cannot hit a stranger. */
  if (child->term_sent || child->kill_sent)
    kill(-child->pid, SIGKILL);

  /* Whatever the run wrote before it exited comes before its EXIT. */
  sb__stdio_run_ended(child);
  ev.pid = child->pid;
  ev.status = status;
  ev.signal = signum;
  sb__emit_child(child, SB_EVENT_EXIT, &ev);

  if (!wants_restart(child)) {
    finish(child);
    return;
  }
  if (ran_ms >= child->backoff_reset_ms)
    child->backoff_k = 0;
  next_run_or_give_up(child, NULL);
}

static void reap(sb_child *child) {
  int status = 0, sig = 0;
  int64_t code = -1;
  pid_t r;

  if (child->state != SB__CHILD_RUNNING)
    return;
  /* A run on our terminal is a shell's job: its stops matter too. One
   * SIGCHLD may stand for a stop and the end after it: wait again. */
  for (;;) {
    do
      r = waitpid(child->pid, &status,
                  WNOHANG | (child->tty_fd >= 0 ? WUNTRACED | WCONTINUED : 0));
    while (r < 0 && errno == EINTR);
    if (r == 0)
      return;
    if (r > 0 && WIFSTOPPED(status))
      sb__child_tty_stopped(child, WSTOPSIG(status));
    else if (r > 0 && WIFCONTINUED(status))
      sb__child_tty_continued(child);
    else
      break;
  }
  if (r > 0 && WIFEXITED(status))
    code = WEXITSTATUS(status);
  else if (r > 0 && WIFSIGNALED(status))
    code = 0, sig = WTERMSIG(status);
  /* r < 0 (ECHILD): something else in the process reaped it (SIGCHLD
   * ignored...); the status is lost and reported as -1. */
  run_ended(child, code, sig);
}

static void on_sigchld(uv_signal_t *handle, int signum) {
  sb_server *server = handle->data;
  sb__link *l, *next;
  (void)signum;

  /* Signals merge: one SIGCHLD may stand for several children. Children
   * spawned from a callback land at the tail and are polled too, which is
   * harmless. No child is freed during the walk: that waits for the close
   * callbacks of its handles. */
  for (l = server->children.next; l != &server->children; l = next) {
    next = l->next;
    reap(sb__container_of(l, sb_child, link));
  }
}

int sb__children_watch(sb_server *server) {
  int r;
  if (!server->sigchld_open) {
    r = uv_signal_init(server->loop, &server->sigchld);
    if (r < 0)
      return r;
    server->sigchld.data = server;
    server->sigchld_open = true;
  }
  /* Started before the fork, so no exit goes unnoticed. */
  return uv_signal_start(&server->sigchld, on_sigchld, SIGCHLD);
}

/* ---- the end ---------------------------------------------------------------- */

/* The child has ended for good: on_exit, then its ticket is revoked and its
 * timer closed; it is freed once every handle has closed. */
static void finish(sb_child *child) {
  sb_server *server = child->server;

  child->state = SB__CHILD_ENDED;
  uv_timer_stop(&child->timer);
  uv_timer_stop(&child->deadline);
  child->on_exit(child, child->last_status, child->last_signal);
  sb__conns_forget(server, NULL, child);
  if (child->ticket != NULL)
    sb_ticket_free(child->ticket);
  uv_close((uv_handle_t *)&child->timer, sb__child_handle_closed);
  uv_close((uv_handle_t *)&child->deadline, sb__child_handle_closed);
}

static void on_finish_due(uv_timer_t *timer) {
  finish(timer->data);
}

/* Ends a child waiting to restart: on_exit runs from the loop, not from
 * inside the caller's sb_child_stop. */
static void end_waiting(sb_child *child) {
  child->state = SB__CHILD_ENDING;
  uv_timer_start(&child->timer, on_finish_due, 0, 0);
}

void sb__child_handle_closed(uv_handle_t *handle) {
  sb_child *child = handle->data;
  sb_server *server = child->server;

  if (--child->open_handles > 0 || child->state != SB__CHILD_ENDED)
    return;
  sb__list_remove(&child->link);
  sb__child_free(child);
  /* With no child left, the watcher must not keep the loop alive. */
  if (sb__list_empty(&server->children) && server->sigchld_open &&
      !server->sigchld_closing)
    uv_signal_stop(&server->sigchld);
  sb__server_maybe_finish(server);
}

int sb_child_stop(sb_child *child) {
  if (child == NULL)
    return -EINVAL;
  switch (child->state) {
  case SB__CHILD_RUNNING:
    child->stopping = true;
    stop_run(child);
    return 0;
  case SB__CHILD_REAPED:
    child->stopping = true; /* the decision under way honours it */
    return 0;
  case SB__CHILD_BACKOFF:
    child->stopping = true;
    end_waiting(child);
    return 0;
  case SB__CHILD_ENDING:
    return 0; /* stopped already; on_exit is due */
  case SB__CHILD_ENDED:
    break;
  }
  return -ESRCH;
}

void sb__children_kill_all(sb_server *server) {
  sb__link *l;
  for (l = server->children.next; l != &server->children; l = l->next) {
    sb_child *child = sb__container_of(l, sb_child, link);
    switch (child->state) {
    case SB__CHILD_RUNNING:
      child->stopping = true;
      if (child->kill_sent)
        break;
      child->kill_sent = true;
      sb__child_signal(child, SIGKILL);
      /* And the leader itself, in case it left its group: its exit is
       * what sb_server_close waits for. */
      kill(child->pid, SIGKILL);
      emit_stop(child, SIGKILL, "the server is closing");
      break;
    case SB__CHILD_REAPED:
      child->stopping = true;
      break;
    case SB__CHILD_BACKOFF:
      child->stopping = true;
      end_waiting(child);
      break;
    case SB__CHILD_ENDING:
    case SB__CHILD_ENDED:
      break;
    }
  }
}

static void on_sigchld_closed(uv_handle_t *handle) {
  sb_server *server = handle->data;
  server->sigchld_open = false;
  sb__server_maybe_finish(server);
}

bool sb__children_close(sb_server *server) {
  if (!server->sigchld_open)
    return true;
  if (!server->sigchld_closing) {
    server->sigchld_closing = true;
    uv_close((uv_handle_t *)&server->sigchld, on_sigchld_closed);
  }
  return false;
}
