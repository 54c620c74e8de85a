/* SPDX-License-Identifier: MIT */
/* trace.c - -v: one human-readable line on stderr per event and per stub
 * call, as it happens, for whoever debugs a harness at a terminal (JSON
 * stays in --events and --record):
 *
 *   socketbridge 12:00:01.234 spawn pid 4242: make -j8
 *   socketbridge 12:00:01.300 call pid 4250: git push origin main
 *   socketbridge 12:00:01.302 end pid 4250: git push origin main: rule 0 respond,
 *     exit 128, 2 ms
 *   socketbridge 12:00:02.000 exit pid 4242: exit 0, 0.77 s
 *
 * stderr is usually a terminal or a pipe shared with COMMAND, and may be
 * slow or stuck: the loop never waits for it. A line is written only when
 * poll says stderr takes it now; lines are short enough (TRACE_LINE_MAX)
 * that a terminal or a pipe that is writable takes one whole. Lines it does
 * not take wait in a bounded queue, tried again on a timer (not a uv_poll:
 * that would make the stderr COMMAND shares non-blocking) and at the end;
 * past the bound they are counted, dropped, and the count said. */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_LINE_MAX 512           /* a line, newline included */
#define TRACE_QUEUE_MAX (64u * 1024) /* what waits for a slow stderr */
#define TRACE_ARGV_MAX 300           /* an argv as shown, then "..." */
#define TRACE_FINAL_WAIT_MS 1000     /* at the end, for what is queued */
#define TRACE_RETRY_MS 20            /* while lines wait for stderr */

struct cli_trace {
  const cli_options *o;
  char queue[TRACE_QUEUE_MAX];
  size_t len;             /* bytes queued */
  unsigned long dropped;  /* lines that did not fit, not yet said */
  bool broken;            /* stderr failed: no more lines */
  uv_timer_t retry;       /* while lines are queued */
  bool closed;            /* cli_trace_close ran: no more retries */
  uint64_t spawn_mono_ns; /* the child's last SPAWN, for its run's duration */
};

cli_trace *cli_trace_new(const cli_options *o, uv_loop_t *loop) {
  cli_trace *t;
  if (!o->verbose)
    return NULL;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  t->o = o;
  uv_timer_init(loop, &t->retry);
  t->retry.data = t;
  /* localtime_r reads the zone file the first time: here, not on the loop. */
  tzset();
  return t;
}

/* Writes whole queued lines while stderr takes them without waiting. */
static void flush(cli_trace *t, int wait_ms) {
  while (t->len > 0 && !t->broken) {
    struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
    const char *nl = memchr(t->queue, '\n', t->len);
    size_t n = (size_t)(nl - t->queue) + 1;
    ssize_t w;
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || !(p.revents & POLLOUT)) {
      t->broken = r < 0 || (p.revents & (POLLERR | POLLNVAL)) != 0;
      return;
    }
    w = write(STDERR_FILENO, t->queue, n);
    if (w < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (w <= 0) {
      t->broken = true;
      return;
    }
    memmove(t->queue, t->queue + w, t->len - (size_t)w);
    t->len -= (size_t)w;
  }
}

static void on_retry(uv_timer_t *timer) {
  cli_trace *t = timer->data;
  flush(t, 0);
  if (t->len > 0 && !t->broken)
    uv_timer_start(&t->retry, on_retry, TRACE_RETRY_MS, 0);
}

static void queue_line(cli_trace *t, const char *line, size_t n) {
  char said[80];
  if (t->dropped > 0) {
    int k = snprintf(said, sizeof said, "socketbridge: %lu trace lines dropped\n",
                     t->dropped);
    if (t->len + (size_t)k + n > TRACE_QUEUE_MAX) {
      t->dropped++;
      return;
    }
    memcpy(t->queue + t->len, said, (size_t)k);
    t->len += (size_t)k;
    t->dropped = 0;
  }
  if (t->len + n > TRACE_QUEUE_MAX) {
    t->dropped++;
    return;
  }
  memcpy(t->queue + t->len, line, n);
  t->len += n;
}

/* "socketbridge HH:MM:SS.mmm " then fmt, as one line. */
__attribute__((format(printf, 3, 4))) static void say(cli_trace *t, uint64_t ts_ns,
                                                      const char *fmt, ...) {
  char line[TRACE_LINE_MAX];
  time_t secs = (time_t)(ts_ns / 1000000000u);
  struct tm tm;
  va_list ap;
  int n;

  localtime_r(&secs, &tm);
  n = snprintf(line, sizeof line, "socketbridge %02d:%02d:%02d.%03u ", tm.tm_hour,
               tm.tm_min, tm.tm_sec, (unsigned)(ts_ns / 1000000u % 1000u));
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* Cut to leave room for the newline. */
  if (n < 0 || (size_t)n > sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  queue_line(t, line, (size_t)n);
  flush(t, 0);
  if (t->len > 0 && !t->broken && !t->closed && !uv_is_active((uv_handle_t *)&t->retry))
    uv_timer_start(&t->retry, on_retry, TRACE_RETRY_MS, 0);
}

/* An argv as a shell would take it back, on one line, cut when long. */
static const char *shown_argv(size_t argc, char *const *argv, char *buf) {
  size_t o = 0, room = TRACE_ARGV_MAX;
  for (size_t i = 0; i < argc && o < room; i++) {
    const char *a = argv[i];
    bool quote = *a == '\0' || strpbrk(a, " \t'\"\\$") != NULL;
    if (i > 0)
      buf[o++] = ' ';
    if (quote && o < room)
      buf[o++] = '\'';
    for (; *a != '\0' && o + 4 < room; a++) {
      if (*a == '\'') {
        memcpy(buf + o, "'\\''", 4);
        o += 4;
      } else {
        buf[o++] = ((unsigned char)*a < 0x20 || *a == 0x7f) ? '?' : *a;
      }
    }
    if (quote && o < room)
      buf[o++] = '\'';
  }
  if (o >= room)
    memcpy(buf + (o = room), "...", 3), o += 3;
  buf[o] = '\0';
  return buf;
}

/* "exit 3" or "signal TERM" (or "no status"). */
static const char *how(int64_t status, int signum, char *buf, size_t size) {
  const char *name = signum > 0 ? sb_signal_name(signum) : NULL;
  if (signum > 0 && name != NULL)
    snprintf(buf, size, "signal %s", name);
  else if (signum > 0)
    snprintf(buf, size, "signal %d", signum);
  else if (status >= 0)
    snprintf(buf, size, "exit %lld", (long long)status);
  else
    snprintf(buf, size, "no status");
  return buf;
}

static void call_end(cli_trace *t, const sb_event *ev) {
  const sb_call *call = sb_conn_call(ev->conn);
  /* answer.c's record of the call (the rule, the action), set as the
   * connection's data when it was answered; STUB_EXIT comes before the
   * connection's on_close, which frees it. NULL if it could not be made. */
  const cli_call *c = sb_conn_data(ev->conn);
  char argv[TRACE_ARGV_MAX + 8], which[32], st[48];
  double ms = c != NULL ? (double)(uv_hrtime() - c->start_mono_ns) / 1e6 : 0;

  if (c == NULL || c->rule == CLI_RULE_NONE)
    snprintf(which, sizeof which, "no rule");
  else if (c->rule == CLI_RULE_DEFAULT)
    snprintf(which, sizeof which, "default");
  else
    snprintf(which, sizeof which, "rule %d", c->rule);
  if (ev->close_reason == SB_CLOSE_EXITED || ev->close_reason == SB_CLOSE_EXEC)
    how(ev->status, ev->signal, st, sizeof st);
  else
    snprintf(st, sizeof st, "%s", sb_close_reason_name(ev->close_reason));
  say(t, ev->ts_ns, "end pid %lld: %s: %s %s, %s, %.0f ms", (long long)ev->pid,
      shown_argv(call->argc, call->argv, argv), which, c != NULL ? c->action : "-",
      ev->close_reason == SB_CLOSE_EXEC ? "exec'd" : st, ms);
}

void cli_trace_event(cli_trace *t, const sb_event *ev) {
  const cli_options *o;
  const char *name;
  char argv[TRACE_ARGV_MAX + 8], st[48];
  size_t argc = 0;

  if (t == NULL || t->broken)
    return;
  o = t->o;
  name = sb_event_type_name(ev->type);
  switch (ev->type) {
  case SB_EVENT_SPAWN:
    t->spawn_mono_ns = uv_hrtime();
    while (o->command[argc] != NULL)
      argc++;
    say(t, ev->ts_ns, "spawn pid %lld: %s", (long long)ev->pid,
        shown_argv(argc, o->command, argv));
    break;
  case SB_EVENT_EXIT:
    say(t, ev->ts_ns, "exit pid %lld: %s, %.3f s", (long long)ev->pid,
        how(ev->status, ev->signal, st, sizeof st),
        (double)(uv_hrtime() - t->spawn_mono_ns) / 1e9);
    break;
  case SB_EVENT_STOP:
    say(t, ev->ts_ns, "stop pid %lld: %s", (long long)ev->pid,
        how(-1, ev->signal, st, sizeof st));
    break;
  case SB_EVENT_STUB_CONNECT: {
    const sb_call *call = sb_conn_call(ev->conn);
    say(t, ev->ts_ns, "call pid %lld: %s", (long long)ev->pid,
        shown_argv(call->argc, call->argv, argv));
    break;
  }
  case SB_EVENT_STUB_EXIT:
    call_end(t, ev);
    break;
  case SB_EVENT_STUB_REJECT:
    say(t, ev->ts_ns, "reject pid %lld: %s%s%s", (long long)ev->pid,
        sb_reason_name(ev->reason), ev->message != NULL ? ": " : "",
        ev->message != NULL ? ev->message : "");
    break;
  case SB_EVENT_BACKOFF:
  case SB_EVENT_ACCEPT_RESUMED:
    say(t, ev->ts_ns, "%s: %llu ms", name, (unsigned long long)ev->delay_ms);
    break;
  case SB_EVENT_ACCEPT_PAUSED:
    say(t, ev->ts_ns, "%s: %s", name, uv_err_name(ev->error));
    break;
  default: /* timeout, restart, give_up */
    say(t, ev->ts_ns, "%s pid %lld: restarts %u", name, (long long)ev->pid, ev->restarts);
    break;
  }
}

void cli_trace_close(cli_trace *t) {
  if (t == NULL || t->closed)
    return;
  t->closed = true;
  uv_close((uv_handle_t *)&t->retry, NULL);
}

void cli_trace_free(cli_trace *t) {
  uint64_t end;
  if (t == NULL)
    return;
  /* The loop is over: a short bounded wait for stderr is no one's delay. */
  end = uv_hrtime() + (uint64_t)TRACE_FINAL_WAIT_MS * 1000000u;
  while (t->len > 0 && !t->broken && uv_hrtime() < end)
    flush(t, (int)((end - uv_hrtime()) / 1000000u) + 1);
  free(t);
}
