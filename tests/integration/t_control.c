/* SPDX-License-Identifier: MIT */
/* `socketbridge serve` driven as a controller drives it (docs/control.md):
 * over a socketpair (--control-fd) or its stdio, on both bridge
 * transports. The controller here is plain blocking C with poll() and
 * deadlines: frames in, frames out, as a Python or Node package would. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(control, .timeout = 120);

extern char **environ;

/* ---- a controller ---------------------------------------------------------- */

#define K_JSON 1
#define K_STDIN 2
#define K_STDOUT 3
#define K_STDERR 4
#define K_PROC_STDOUT 5
#define K_PROC_STDERR 6
#define MAX_STREAMS 256

typedef struct stream_buf {
  int kind;
  uint64_t id;
  char *data;
  size_t len;
  bool end;
} stream_buf;

typedef struct ctl {
  pid_t pid;
  int rd, wr; /* the channel, our side */
  uint8_t *in;
  size_t in_len, in_cap;
  cJSON *msgs[4096]; /* JSON frames received, NULL once taken */
  size_t nmsgs;
  stream_buf streams[MAX_STREAMS];
  size_t nstreams;
  uint64_t next_req;
  bool eof;
  cJSON *ready;
  harness *h;
} ctl;

static double deadline(void) {
  return h_now() + H_DEADLINE * h_scale();
}

static stream_buf *stream_of(ctl *c, int kind, uint64_t id) {
  for (size_t i = 0; i < c->nstreams; i++)
    if (c->streams[i].kind == kind && c->streams[i].id == id)
      return &c->streams[i];
  cr_assert_lt(c->nstreams, MAX_STREAMS);
  stream_buf *s = &c->streams[c->nstreams++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->id = id;
  return s;
}

/* Takes every whole frame out of the input buffer. */
static void parse_frames(ctl *c) {
  size_t off = 0;
  while (c->in_len - off >= 5) {
    const uint8_t *p = c->in + off;
    uint32_t len =
        (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    cr_assert_geq(len, 1, "a frame of length 0 from serve");
    if (c->in_len - off < 4 + (size_t)len)
      break;
    int kind = p[4];
    const uint8_t *body = p + 5;
    size_t blen = len - 1;
    if (kind == K_JSON) {
      cJSON *o = cJSON_ParseWithLength((const char *)body, blen);
      cr_assert(cJSON_IsObject(o), "serve sent a JSON frame that is not an object: %.*s",
                (int)blen, body);
      cr_assert_lt(c->nmsgs, 4096);
      c->msgs[c->nmsgs++] = o;
    } else {
      cr_assert(kind >= K_STDIN && kind <= K_PROC_STDERR, "frame kind %d from serve",
                kind);
      cr_assert_geq(blen, 8, "a data frame without its id");
      uint64_t id = 0;
      for (int i = 0; i < 8; i++)
        id = id << 8 | body[i];
      stream_buf *s = stream_of(c, kind, id);
      cr_assert(!s->end, "data after the end of stream kind %d id %llu", kind,
                (unsigned long long)id);
      if (blen == 8) {
        s->end = true;
      } else {
        s->data = realloc(s->data, s->len + blen - 8 + 1);
        memcpy(s->data + s->len, body + 8, blen - 8);
        s->len += blen - 8;
        s->data[s->len] = '\0';
      }
    }
    off += 4 + len;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

/* Reads what serve sent, waiting at most until end; false at the deadline. */
static bool pump(ctl *c, double end) {
  struct pollfd p = {.fd = c->rd, .events = POLLIN};
  int ms = (int)((end - h_now()) * 1000);
  if (c->eof)
    return false;
  if (ms < 0)
    ms = 0;
  int r = poll(&p, 1, ms);
  if (r <= 0)
    return r < 0 && errno == EINTR;
  if (c->in_cap - c->in_len < 65536) {
    c->in_cap = c->in_cap * 2 + 65536;
    c->in = realloc(c->in, c->in_cap);
  }
  ssize_t n = read(c->rd, c->in + c->in_len, c->in_cap - c->in_len);
  if (n <= 0) {
    c->eof = true;
    return false;
  }
  c->in_len += (size_t)n;
  parse_frames(c);
  return true;
}

static void write_all(ctl *c, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(c->wr, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = c->wr, .events = POLLOUT};
      poll(&pf, 1, 100);
      pump(c, h_now() + 0.001); /* keep reading: serve may wait on us */
      continue;
    }
    cr_assert_gt(n, 0, "writing to serve: %s", strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

static void frame(ctl *c, int kind, const void *head, size_t hlen, const void *body,
                  size_t blen) {
  uint8_t h[5];
  uint32_t len = (uint32_t)(1 + hlen + blen);
  h[0] = (uint8_t)(len >> 24);
  h[1] = (uint8_t)(len >> 16);
  h[2] = (uint8_t)(len >> 8);
  h[3] = (uint8_t)len;
  h[4] = (uint8_t)kind;
  write_all(c, h, 5);
  if (hlen)
    write_all(c, head, hlen);
  if (blen)
    write_all(c, body, blen);
}

static void send_raw(ctl *c, const char *json) {
  frame(c, K_JSON, NULL, 0, json, strlen(json));
}

/* Sends a request (printf-style JSON with %llu for the id first) and
 * returns its id. */
#define REQ(c, fmt, ...)                                                                 \
  req((c), "{\"id\":%llu," fmt "}", (unsigned long long)++(c)->next_req, ##__VA_ARGS__)
__attribute__((format(printf, 2, 3))) static uint64_t req(ctl *c, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  uint64_t id = c->next_req;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  send_raw(c, buf);
  return id;
}

static void data(ctl *c, int kind, uint64_t id, const void *buf, size_t len) {
  uint8_t head[8];
  for (int i = 7; i >= 0; i--, id >>= 8)
    head[i] = (uint8_t)id;
  frame(c, kind, head, 8, buf, len);
}

static double num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  cr_assert(cJSON_IsNumber(v), "no number \"%s\" in %s", name, cJSON_PrintUnformatted(o));
  return v->valuedouble;
}

static const char *str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_type(const cJSON *o, const char *type) {
  const char *t = str(o, "type");
  return t != NULL && strcmp(t, type) == 0;
}

/* The first message not yet taken of type (and with member == value when
 * member is given); waits for it until the deadline. The caller frees. */
static cJSON *expect(ctl *c, const char *type, const char *member, double value) {
  double end = deadline();
  for (;;) {
    for (size_t i = 0; i < c->nmsgs; i++) {
      cJSON *o = c->msgs[i];
      if (o == NULL || !is_type(o, type))
        continue;
      const cJSON *m = member ? cJSON_GetObjectItemCaseSensitive(o, member) : NULL;
      if (member && !(cJSON_IsNumber(m) && m->valuedouble == value))
        continue;
      c->msgs[i] = NULL;
      return o;
    }
    cr_assert(pump(c, end) || h_now() < end, "no \"%s\" message%s%s within the deadline",
              type, member ? " with " : "", member ? member : "");
    cr_assert(!c->eof || c->in_len > 0, "serve closed the channel before a \"%s\"", type);
  }
}

/* The answer to request id: must be ok; the caller frees. */
static cJSON *ok(ctl *c, uint64_t id) {
  double end = deadline();
  for (;;) {
    for (size_t i = 0; i < c->nmsgs; i++) {
      cJSON *o = c->msgs[i];
      const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
      if (!cJSON_IsNumber(v) || v->valuedouble != (double)id)
        continue;
      cr_assert(is_type(o, "ok"), "request %llu: %s", (unsigned long long)id,
                cJSON_PrintUnformatted(o));
      c->msgs[i] = NULL;
      return o;
    }
    cr_assert(pump(c, end), "no answer to request %llu", (unsigned long long)id);
  }
}

/* The error answering request id (id 0: an error with "id": null). */
static cJSON *error_of(ctl *c, uint64_t id, const char *code) {
  double end = deadline();
  for (;;) {
    for (size_t i = 0; i < c->nmsgs; i++) {
      cJSON *o = c->msgs[i];
      const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
      if (o == NULL ||
          (id ? !(cJSON_IsNumber(v) && v->valuedouble == (double)id) : !cJSON_IsNull(v)))
        continue;
      cr_assert(is_type(o, "error"), "request %llu answered %s", (unsigned long long)id,
                cJSON_PrintUnformatted(o));
      cr_assert_str_eq(str(o, "error"), code, "%s", cJSON_PrintUnformatted(o));
      c->msgs[i] = NULL;
      return o;
    }
    cr_assert(pump(c, end), "no error answering request %llu", (unsigned long long)id);
  }
}

static void okf(ctl *c, uint64_t id) {
  cJSON_Delete(ok(c, id));
}

/* Waits for the end of a stream; returns it. */
static stream_buf *stream_end(ctl *c, int kind, uint64_t id) {
  double end = deadline();
  stream_buf *s;
  while (!(s = stream_of(c, kind, id))->end)
    cr_assert(pump(c, end), "stream kind %d id %llu did not end", kind,
              (unsigned long long)id);
  return s;
}

/* Starts `socketbridge serve --transport T`, over a socketpair on fd 3, or
 * (stdio) over two pipes on its stdin and stdout; reads `ready`. */
static void ctl_start(ctl *c, harness *h, sb_transport tr, bool stdio) {
  int sv[2], in[2], out[2];
  posix_spawn_file_actions_t fa;
  char *args[] = {SB_TEST_CLI,
                  "serve",
                  "--transport",
                  tr == SB_TRANSPORT_UNIX ? "unix" : "tcp",
                  stdio ? NULL : "--control-fd",
                  "3",
                  NULL};
  char err[600];

  memset(c, 0, sizeof *c);
  c->h = h;
  snprintf(err, sizeof err, "%s/serve.err", h->dir);
  posix_spawn_file_actions_init(&fa);
  if (stdio) {
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  } else {
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
  }
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_eq(posix_spawn(&c->pid, SB_TEST_CLI, &fa, NULL, args, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  if (stdio) {
    close(in[0]);
    close(out[1]);
    c->wr = in[1];
    c->rd = out[0];
  } else {
    close(sv[1]);
    c->rd = c->wr = sv[0];
  }
  c->ready = expect(c, "ready", NULL, 0);
  cr_assert_eq(num(c->ready, "version"), 1);
  cr_assert_str_eq(str(c->ready, "transport"), tr == SB_TRANSPORT_UNIX ? "unix" : "tcp");
}

/* Closes the channel and waits for serve's exit status. */
static int ctl_end(ctl *c) {
  int st;
  if (c->wr != c->rd)
    close(c->wr);
  else
    shutdown(c->wr, SHUT_WR);
  double end = deadline();
  while (pump(c, end))
    ;
  close(c->rd);
  bool ended = h_wait_reapable(c->pid, H_DEADLINE * h_scale());
  if (!ended)
    kill(c->pid, SIGKILL);
  waitpid(c->pid, &st, 0);
  cr_assert(ended, "serve did not end once the channel closed");
  cr_assert(WIFEXITED(st), "serve died by signal %d", WTERMSIG(st));
  for (size_t i = 0; i < c->nmsgs; i++)
    cJSON_Delete(c->msgs[i]);
  for (size_t i = 0; i < c->nstreams; i++)
    free(c->streams[i].data);
  cJSON_Delete(c->ready);
  free(c->in);
  /* Under ASan, serve's leaks and errors land on its stderr. */
  char *err = h_read(c->h, "serve.err", NULL);
  cr_assert_null(strstr(err, "Sanitizer"), "serve: %s", err);
  cr_assert_null(strstr(err, "runtime error"), "serve: %s", err);
  free(err);
  return WEXITSTATUS(st);
}

/* Spawns `sh -c script` as a proc with `git` shimmed to the controller;
 * returns the proc id. */
static uint64_t spawn_sh(ctl *c, const char *script) {
  cJSON *js = cJSON_CreateString(script);
  char *esc = cJSON_PrintUnformatted(js);
  cJSON_Delete(js);
  uint64_t id = REQ(c, "\"type\":\"spawn\",\"argv\":[\"sh\",\"-c\",%s]", esc);
  cJSON *o = ok(c, id);
  uint64_t proc = (uint64_t)num(o, "proc");
  cr_assert_gt(num(o, "pid"), 0);
  cJSON_Delete(o);
  free(esc);
  return proc;
}

static void shim_git(ctl *c) {
  cJSON *o = ok(c, REQ(c, "\"type\":\"shim\",\"names\":[\"git\"]"));
  cr_assert_not_null(str(o, "dir"));
  cJSON_Delete(o);
}

/* The code a proc ended with. */
static int proc_end(ctl *c, uint64_t proc) {
  cJSON *o = expect(c, "proc_end", "proc", (double)proc);
  cr_assert_null(str(o, "signal"), "proc died by %s", str(o, "signal"));
  int code = (int)num(o, "code");
  cJSON_Delete(o);
  return code;
}

static const char *proc_out(ctl *c, uint64_t proc) {
  stream_buf *s = stream_end(c, K_PROC_STDOUT, proc);
  return s->data != NULL ? s->data : "";
}

static const char *arg(const cJSON *call, int i) {
  const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(call, "argv"), i);
  cr_assert(cJSON_IsString(a));
  return a->valuestring;
}

/* A test run on both bridge transports. */
#define TRANSPORT_TEST(name)                                                             \
  ParameterizedTestParameters(control, name) {                                           \
    static sb_transport t[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};                     \
    return cr_make_param_array(sb_transport, t, 2);                                      \
  }                                                                                      \
  ParameterizedTest(sb_transport *tr, control, name)

/* ---- calls ---------------------------------------------------------------- */

#define NCALLS 20

/* Twenty calls at once, each held until answered; their stdin streams up;
 * they are answered in reverse order with output written in two frames and
 * an exit code of their own. */
TRANSPORT_TEST(many_calls_at_once_with_stdin_and_streamed_answers) {
  harness h;
  ctl c;
  uint64_t calls[NCALLS];
  char script[512];

  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  snprintf(
      script, sizeof script,
      "cd '%s' && for i in $(seq 1 %d); do (echo in$i | git call $i > out$i; echo $? > "
      "rc$i) & done; wait; for i in $(seq 1 %d); do echo $(cat out$i) $(cat rc$i); done",
      h.dir, NCALLS, NCALLS);
  uint64_t proc = spawn_sh(&c, script);
  for (int i = 0; i < NCALLS; i++) {
    cJSON *call = expect(&c, "call", NULL, 0);
    int n = atoi(arg(call, 2));
    cr_assert(n >= 1 && n <= NCALLS);
    calls[n - 1] = (uint64_t)num(call, "call");
    /* Through a shim: the shims' own ticket, not the proc's. */
    cr_assert_gt(num(call, "ticket"), 0);
    cJSON_Delete(call);
  }
  /* All twenty are open at once, none answered yet. */
  cJSON *st = ok(&c, REQ(&c, "\"type\":\"status\""));
  cr_assert_eq(
      num(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "status"), "calls"), "open"),
      NCALLS);
  cJSON_Delete(st);
  for (int i = NCALLS - 1; i >= 0; i--) {
    char want[32], part[32];
    okf(&c, REQ(&c, "\"type\":\"open\",\"call\":%llu", (unsigned long long)calls[i]));
    stream_buf *in = stream_end(&c, K_STDIN, calls[i]);
    snprintf(want, sizeof want, "in%d\n", i + 1);
    cr_assert_str_eq(in->data, want);
    snprintf(part, sizeof part, "out-");
    data(&c, K_STDOUT, calls[i], part, strlen(part));
    snprintf(part, sizeof part, "%d\n", i + 1);
    data(&c, K_STDOUT, calls[i], part, strlen(part));
    okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"code\":%d",
                (unsigned long long)calls[i], i + 1));
    cJSON *end = expect(&c, "call_end", "call", (double)calls[i]);
    cr_assert_str_eq(str(end, "reason"), "exited");
    cr_assert_eq(num(end, "code"), i + 1);
    cJSON_Delete(end);
  }
  cr_assert_eq(proc_end(&c, proc), 0);
  const char *out = proc_out(&c, proc);
  for (int i = 1; i <= NCALLS; i++) {
    char line[32];
    snprintf(line, sizeof line, "out-%d %d\n", i, i);
    cr_assert_not_null(strstr(out, line), "no \"%s\" in %s", line, out);
  }
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* delegate, exec and run, each given as a call's first answer: the program
 * gets the caller's stdin whole; run's output comes up as data frames. */
TRANSPORT_TEST(delegate_exec_and_run_answer_calls) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  uint64_t proc = spawn_sh(&c, "echo to-d | git d; echo rc=$?; echo to-e | git e; "
                               "echo rc=$?; echo to-r | git r; echo rc=$?");
  cJSON *call = expect(&c, "call", NULL, 0);
  cr_assert_str_eq(arg(call, 1), "d");
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c, REQ(&c,
              "\"type\":\"delegate\",\"call\":%llu,\"argv\":[\"sh\",\"-c\",\"cat; echo "
              "D; exit 4\"]",
              (unsigned long long)id));
  cJSON *pe = expect(&c, "program_exit", "call", (double)id);
  cr_assert_eq(num(pe, "code"), 4);
  cJSON_Delete(pe);
  cr_assert_str_eq(stream_end(&c, K_STDOUT, id)->data, "to-d\nD\n");

  call = expect(&c, "call", NULL, 0);
  cr_assert_str_eq(arg(call, 1), "e");
  id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c,
      REQ(&c, "\"type\":\"exec\",\"call\":%llu,\"argv\":[\"sh\",\"-c\",\"cat; exit 5\"]",
          (unsigned long long)id));
  cJSON *end = expect(&c, "call_end", "call", (double)id);
  cr_assert_str_eq(str(end, "reason"), "exec");
  cJSON_Delete(end);

  call = expect(&c, "call", NULL, 0);
  cr_assert_str_eq(arg(call, 1), "r");
  id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c,
      REQ(&c, "\"type\":\"run\",\"call\":%llu,\"argv\":[\"sh\",\"-c\",\"cat; exit 6\"]",
          (unsigned long long)id));
  pe = expect(&c, "program_exit", "call", (double)id);
  cr_assert_eq(num(pe, "code"), 6);
  cJSON_Delete(pe);
  cr_assert_str_eq(stream_end(&c, K_STDOUT, id)->data, "to-r\n");
  cr_assert_eq(proc_end(&c, proc), 0);
  /* run without tee: the program's output came here, not to the caller's. */
  cr_assert_str_eq(proc_out(&c, proc), "to-d\nD\nrc=4\nto-e\nrc=5\nrc=6\n");
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* respond with output and a signal; events name the call and the proc;
 * a second answer is `already`. */
TRANSPORT_TEST(respond_and_events) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  okf(&c, REQ(&c, "\"type\":\"events\",\"enable\":true"));
  uint64_t proc = spawn_sh(&c, "git x; echo rc=$?; git y; echo rc=$?");
  cJSON *ev = expect(&c, "event", "proc", (double)proc);
  cr_assert_str_eq(str(cJSON_GetObjectItem(ev, "event"), "event"), "spawn");
  cJSON_Delete(ev);
  cJSON *call = expect(&c, "call", NULL, 0);
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  ev = expect(&c, "event", "call", (double)id);
  cr_assert_str_eq(str(cJSON_GetObjectItem(ev, "event"), "event"), "stub_connect");
  cJSON_Delete(ev);
  /* Both requests in one write: serve reads them together, before the
   * call can end, so the second meets an answered call, not a gone one. */
  char two[1024];
  int n1 =
      snprintf(two + 5, sizeof two - 5,
               "{\"id\":%llu,\"type\":\"respond\",\"call\":%llu,\"stdout\":\"hello\\n\","
               "\"stderr\":{\"base64\":\"ZXJy\"},\"code\":3}",
               (unsigned long long)++c.next_req, (unsigned long long)id);
  uint64_t rid = c.next_req;
  two[0] = two[1] = 0;
  two[2] = (char)((n1 + 1) >> 8);
  two[3] = (char)((n1 + 1) & 0xff);
  two[4] = K_JSON;
  int n2 = snprintf(two + 10 + n1, sizeof two - 10 - (size_t)n1,
                    "{\"id\":%llu,\"type\":\"exit\",\"call\":%llu,\"code\":1}",
                    (unsigned long long)++c.next_req, (unsigned long long)id);
  two[5 + n1] = two[6 + n1] = 0;
  two[7 + n1] = (char)((n2 + 1) >> 8);
  two[8 + n1] = (char)((n2 + 1) & 0xff);
  two[9 + n1] = K_JSON;
  write_all(&c, two, (size_t)(10 + n1 + n2));
  okf(&c, rid);
  cJSON_Delete(error_of(&c, c.next_req, "already"));
  ev = expect(&c, "event", "call", (double)id);
  cr_assert_str_eq(str(cJSON_GetObjectItem(ev, "event"), "event"), "stub_exit");
  cJSON_Delete(ev);
  call = expect(&c, "call", NULL, 0);
  id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"signal\":\"TERM\"",
              (unsigned long long)id));
  cJSON *end = expect(&c, "call_end", "call", (double)id);
  cr_assert_str_eq(str(end, "signal"), "TERM");
  cJSON_Delete(end);
  cr_assert_eq(proc_end(&c, proc), 0);
  cr_assert_str_eq(proc_out(&c, proc), "hello\nrc=3\nrc=143\n");
  /* "err", then the shell's word on the call killed by TERM. */
  cr_assert_eq(strncmp(stream_end(&c, K_PROC_STDERR, proc)->data, "err", 3), 0);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* A ticket's env lets a process the controller starts itself reach serve;
 * freed, it no longer does. */
TRANSPORT_TEST(tickets_admit_processes_the_controller_starts) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  cJSON *t = ok(&c, REQ(&c, "\"type\":\"ticket\""));
  uint64_t ticket = (uint64_t)num(t, "ticket");
  const cJSON *env = cJSON_GetObjectItem(t, "env");
  char *envp[16] = {"PATH=/usr/bin:/bin"};
  int n = 1;
  for (int i = 0; i < cJSON_GetArraySize(env) && n < 15; i++)
    envp[n++] = cJSON_GetArrayItem(env, i)->valuestring;
  envp[n] = NULL;
  pid_t pid = h_proc_start(&h, (char *[]){H_STUB, "mine", NULL}, NULL, "stub", envp);
  cJSON *call = expect(&c, "call", NULL, 0);
  cr_assert_eq(num(call, "ticket"), (double)ticket);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(call, "proc")));
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"code\":7", (unsigned long long)id));
  int st;
  cr_assert(h_wait_reapable(pid, H_DEADLINE * h_scale()));
  waitpid(pid, &st, 0);
  cr_assert_eq(WEXITSTATUS(st), 7);
  okf(&c,
      REQ(&c, "\"type\":\"ticket_free\",\"ticket\":%llu", (unsigned long long)ticket));
  pid = h_proc_start(&h, (char *[]){H_STUB, "again", NULL}, NULL, "stub2", envp);
  cr_assert(h_wait_reapable(pid, H_DEADLINE * h_scale()));
  waitpid(pid, &st, 0);
  cr_assert_eq(WEXITSTATUS(st), 125);
  char *err = h_read(&h, "stub2.err", NULL);
  cr_assert_not_null(strstr(err, "bad_token"), "%s", err);
  free(err);
  cJSON_Delete(t);
  /* One the controller never frees: serve frees it at its end (ASan). */
  cJSON_Delete(ok(&c, REQ(&c, "\"type\":\"ticket\"")));
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* spawn and stop; kill; a program that is not there is `failed` ENOENT. */
TRANSPORT_TEST(spawn_stop_kill_and_status) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  uint64_t a = spawn_sh(&c, "echo up; exec sleep 100");
  uint64_t b = spawn_sh(&c, "exec sleep 100");
  stream_buf *up = stream_of(&c, K_PROC_STDOUT, a);
  double end = deadline();
  while (up->data == NULL)
    cr_assert(pump(&c, end), "no output from the first proc");
  cJSON *st = ok(&c, REQ(&c, "\"type\":\"status\""));
  const cJSON *s = cJSON_GetObjectItem(st, "status");
  cr_assert_str_eq(str(s, "type"), "status");
  cr_assert_str_eq(str(s, "version"), sb_version_string());
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(s, "children")), 2);
  cr_assert_str_eq(
      str(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "children"), 0), "state"), "running");
  cr_assert_not_null(
      cJSON_GetObjectItem(cJSON_GetObjectItem(s, "connections"), "rejected"));
  cJSON_Delete(st);
  okf(&c, REQ(&c, "\"type\":\"stop\",\"proc\":%llu", (unsigned long long)a));
  cJSON *e = expect(&c, "proc_end", "proc", (double)a);
  cr_assert_str_eq(str(e, "signal"), "TERM");
  cJSON_Delete(e);
  cr_assert_str_eq(proc_out(&c, a), "up\n");
  okf(&c, REQ(&c, "\"type\":\"kill\",\"proc\":%llu,\"signal\":\"KILL\"",
              (unsigned long long)b));
  e = expect(&c, "proc_end", "proc", (double)b);
  cr_assert_str_eq(str(e, "signal"), "KILL");
  cJSON_Delete(e);
  cJSON_Delete(error_of(&c,
                        REQ(&c, "\"type\":\"stop\",\"proc\":%llu", (unsigned long long)a),
                        "no_such_proc"));
  cJSON *f = error_of(
      &c, REQ(&c, "\"type\":\"spawn\",\"argv\":[\"no-such-program-xyz\"]"), "failed");
  cr_assert_str_eq(str(f, "errno"), "ENOENT");
  cJSON_Delete(f);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* A name shimmed with route exec runs the real program, unasked. */
TRANSPORT_TEST(shims_routed_exec_are_left_alone) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  cJSON *o =
      ok(&c, REQ(&c, "\"type\":\"shim\",\"names\":[\"printf\"],\"route\":\"exec\""));
  const char *dir = str(o, "dir");
  char path[600];
  snprintf(path, sizeof path, "%s/printf", dir);
  struct stat sb;
  cr_assert_eq(lstat(path, &sb), 0);
  cr_assert(S_ISLNK(sb.st_mode));
  okf(&c, REQ(&c, "\"type\":\"events\",\"enable\":true"));
  /* env(1) finds printf on PATH: the shim, which the supervisor execs as
   * the real printf. */
  uint64_t proc = spawn_sh(&c, "env printf 'real\\n'");
  cr_assert_eq(proc_end(&c, proc), 0);
  cr_assert_str_eq(proc_out(&c, proc), "real\n");
  cJSON *ev;
  do {
    ev = expect(&c, "event", NULL, 0);
  } while (strcmp(str(cJSON_GetObjectItem(ev, "event"), "event"), "stub_exit") != 0 &&
           (cJSON_Delete(ev), true));
  cr_assert_str_eq(str(cJSON_GetObjectItem(ev, "event"), "close_reason"), "exec");
  cJSON_Delete(ev);
  for (size_t i = 0; i < c.nmsgs; i++)
    cr_assert(c.msgs[i] == NULL || !is_type(c.msgs[i], "call"),
              "a call reached the controller");
  cJSON_Delete(o);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* Side-band messages reach the controller's handler once enabled. */
TRANSPORT_TEST(messages_reach_the_controller) {
  harness h;
  ctl c;
  char script[2048];
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  snprintf(script, sizeof script,
           "mkfifo '%s/gate'; %s send '{\"type\":\"greet\",\"n\":1}'; echo rc=$?; "
           "read _ < '%s/gate'; %s send '{\"type\":\"greet\",\"n\":2}'; echo rc=$?",
           h.dir, SB_TEST_CLI, h.dir, SB_TEST_CLI);
  uint64_t proc = spawn_sh(&c, script);
  /* Not enabled yet: the first gets no_handler... */
  stream_buf *se = stream_of(&c, K_PROC_STDOUT, proc);
  double end = deadline();
  while ((se->data == NULL || strstr(se->data, "rc=1") == NULL))
    cr_assert(pump(&c, end), "the first send did not end");
  /* ...the second reaches us. */
  okf(&c, REQ(&c, "\"type\":\"messages\",\"enable\":true"));
  int g = open(h_path(&h, "gate"), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(g, 0);
  cr_assert_eq(write(g, "\n", 1), 1);
  close(g);
  cJSON *m = expect(&c, "message", NULL, 0);
  const cJSON *body = cJSON_GetObjectItem(m, "body");
  cr_assert_str_eq(str(body, "type"), "greet");
  cr_assert_eq(num(body, "n"), 2);
  cr_assert_eq(num(m, "proc"), (double)proc);
  unsigned long long mid = (unsigned long long)num(m, "message");
  okf(&c,
      REQ(&c, "\"type\":\"reply\",\"message\":%llu,\"body\":{\"type\":\"hi\",\"x\":[1]}",
          mid));
  /* Once only. */
  cJSON_Delete(error_of(
      &c, REQ(&c, "\"type\":\"reply\",\"message\":%llu,\"body\":{\"type\":\"x\"}", mid),
      "no_such_message"));
  cJSON_Delete(m);
  cr_assert_eq(proc_end(&c, proc), 0);
  cr_assert_str_eq(proc_out(&c, proc), "rc=1\n{\"type\":\"hi\",\"x\":[1]}\nrc=0\n");
  char *e = stream_end(&c, K_PROC_STDERR, proc)->data;
  cr_assert_not_null(strstr(e, "no_handler"), "%s", e);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* ---- a controller that breaks the rules ------------------------------------------ */

/* Bad requests get errors and the channel goes on; a frame that cannot be
 * delimited gets bad_frame and serve exits 125, not a crash. */
TRANSPORT_TEST(malformed_frames_get_errors_not_a_crash) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  send_raw(&c, "{not json");
  cJSON_Delete(error_of(&c, 0, "bad_request"));
  send_raw(&c, "[1,2]");
  cJSON_Delete(error_of(&c, 0, "bad_request"));
  send_raw(&c, "{\"type\":\"status\"}");
  cJSON_Delete(error_of(&c, 0, "bad_request"));
  cJSON_Delete(error_of(&c, REQ(&c, "\"type\":\"frobnicate\""), "unknown_type"));
  cJSON_Delete(error_of(&c, REQ(&c, "\"type\":\"exit\",\"call\":\"x\""), "bad_request"));
  cJSON_Delete(error_of(&c, REQ(&c, "\"type\":\"exit\",\"call\":99999,\"code\":0"),
                        "no_such_call"));
  cJSON_Delete(error_of(&c, REQ(&c, "\"type\":\"spawn\",\"argv\":[]"), "bad_request"));
  data(&c, K_STDOUT, 123456789, "x", 1);
  cJSON_Delete(error_of(&c, 0, "no_such_call"));
  okf(&c, REQ(&c, "\"type\":\"status\"")); /* still serving */
  uint8_t bad[] = {0, 0, 0, 2, 9, 0};      /* kind 9 */
  write_all(&c, bad, sizeof bad);
  cJSON_Delete(error_of(&c, 0, "bad_frame"));
  cr_assert_eq(ctl_end(&c), 125);
  char *err = h_read(&h, "serve.err", NULL);
  cr_assert_not_null(strstr(err, "socketbridge: serve: control channel:"), "%s", err);
  free(err);
  h_fini(&h);
}

/* Over stdio too; `shutdown` ends it, exit 0, and a call still open ends
 * (its stub exits 125). */
TRANSPORT_TEST(stdio_channel_and_shutdown) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, true);
  shim_git(&c);
  uint64_t proc = spawn_sh(&c, "git hang; echo rc=$?");
  cJSON *call = expect(&c, "call", NULL, 0);
  cJSON_Delete(call);
  okf(&c, REQ(&c, "\"type\":\"shutdown\""));
  cJSON *end = expect(&c, "call_end", NULL, 0);
  cr_assert_str_eq(str(end, "reason"), "server");
  cJSON_Delete(end);
  cJSON *pe = expect(&c, "proc_end", "proc", (double)proc);
  cJSON_Delete(pe);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* A stub that does not take its output: write_pause past 1 MiB queued,
 * write_resume once it reads again. */
TRANSPORT_TEST(write_pause_and_resume) {
  harness h;
  ctl c;
  char script[700];
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  snprintf(script, sizeof script,
           "mkfifo '%s/gate' && git big | { read _ < '%s/gate'; wc -c; }", h.dir, h.dir);
  uint64_t proc = spawn_sh(&c, script);
  cJSON *call = expect(&c, "call", NULL, 0);
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  static char chunk[256 * 1024];
  memset(chunk, 'x', sizeof chunk);
  size_t sent = 0;
  bool paused = false;
  double end = deadline();
  while (!paused) {
    data(&c, K_STDOUT, id, chunk, sizeof chunk);
    sent += sizeof chunk;
    pump(&c, h_now() + 0.001);
    for (size_t i = 0; i < c.nmsgs && !paused; i++)
      if (c.msgs[i] && is_type(c.msgs[i], "write_pause")) {
        cr_assert_eq(num(c.msgs[i], "call"), (double)id);
        paused = true;
      }
    cr_assert(h_now() < end && sent < 256u * 1024 * 1024,
              "no write_pause after %zu bytes", sent);
  }
  int g = open(h_path(&h, "gate"), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(g, 0);
  cr_assert_eq(write(g, "\n", 1), 1);
  close(g);
  cJSON_Delete(expect(&c, "write_resume", "call", (double)id));
  data(&c, K_STDOUT, id, NULL, 0);
  okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"code\":0", (unsigned long long)id));
  cr_assert_eq(proc_end(&c, proc), 0);
  char want[32];
  snprintf(want, sizeof want, "%zu\n", sent);
  cr_assert_str_eq(proc_out(&c, proc), want);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* A call the controller leaves alone is opened after 10 s: its stdin comes,
 * the stub does not time out waiting for a welcome. */
TRANSPORT_TEST(a_held_call_opens_by_itself) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  uint64_t proc = spawn_sh(&c, "echo late | git slow; echo rc=$?");
  cJSON *call = expect(&c, "call", NULL, 0);
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  cr_assert_str_eq(stream_end(&c, K_STDIN, id)->data, "late\n");
  okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"code\":9", (unsigned long long)id));
  cr_assert_eq(proc_end(&c, proc), 0);
  cr_assert_str_eq(proc_out(&c, proc), "rc=9\n");
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* pause stops a call's stdin; resume lets it through. What was paused is
 * not lost. */
TRANSPORT_TEST(pause_and_resume_a_calls_stdin) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  shim_git(&c);
  uint64_t proc = spawn_sh(&c, "head -c 3000000 /dev/zero | git eat; echo rc=$?");
  cJSON *call = expect(&c, "call", NULL, 0);
  uint64_t id = (uint64_t)num(call, "call");
  cJSON_Delete(call);
  okf(&c, REQ(&c, "\"type\":\"pause\",\"call\":%llu", (unsigned long long)id));
  okf(&c, REQ(&c, "\"type\":\"open\",\"call\":%llu", (unsigned long long)id));
  /* The status round trip proves the pause is in effect. */
  okf(&c, REQ(&c, "\"type\":\"status\""));
  stream_buf *in = stream_of(&c, K_STDIN, id);
  cr_assert(!in->end, "the whole stdin came through a paused call");
  okf(&c, REQ(&c, "\"type\":\"resume\",\"call\":%llu", (unsigned long long)id));
  in = stream_end(&c, K_STDIN, id);
  cr_assert_eq(in->len, 3000000);
  okf(&c, REQ(&c, "\"type\":\"exit\",\"call\":%llu,\"code\":0", (unsigned long long)id));
  cr_assert_eq(proc_end(&c, proc), 0);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}

/* A bad command line: one line, exit 125, before anything. */
Test(control, bad_options_exit_125_with_one_line) {
  harness h;
  int st;
  h_init(&h, NULL);
  const char *cases[][2] = {
      {"--transport", "udp"}, {"--control-fd", "9999"}, {"--frob", NULL}};
  const char *want[] = {
      "socketbridge: serve: --transport: \"udp\" is not tcp or unix\n",
      ("socketbridge: serve: --control-fd: \"9999\" is not an open file "
       "descriptor\n"),
      "socketbridge: serve: --frob: unknown option (see socketbridge --help)\n"};
  for (int i = 0; i < 3; i++) {
    char *args[] = {SB_TEST_CLI, "serve", (char *)cases[i][0], (char *)cases[i][1], NULL};
    pid_t pid = h_proc_start(&h, args, NULL, "bad", environ);
    cr_assert(h_wait_reapable(pid, H_DEADLINE * h_scale()));
    waitpid(pid, &st, 0);
    cr_assert_eq(WEXITSTATUS(st), 125);
    char *out = h_read(&h, "bad.out", NULL), *err = h_read(&h, "bad.err", NULL);
    cr_assert_str_empty(out);
    cr_assert_str_eq(err, want[i]);
    free(out);
    free(err);
  }
  h_fini(&h);
}

/* Every frame that cannot be delimited or may not come from a controller
 * breaks the channel the same way: bad_frame, exit 125, one line. */
typedef struct bad_frame_case {
  sb_transport tr;
  uint8_t bytes[16];
  size_t len;
  char why[16]; /* what is wrong, for the log */
} bad_frame_case;

ParameterizedTestParameters(control, each_bad_frame_ends_the_channel_cleanly) {
  static bad_frame_case cases[] = {
      {SB_TRANSPORT_TCP, {0, 0, 0, 0}, 4, "length 0"},
      {SB_TRANSPORT_UNIX, {0, 0, 0, 0}, 4, "length 0"},
      {SB_TRANSPORT_TCP, {0, 0, 0, 2, 9, 0}, 6, "kind"},
      {SB_TRANSPORT_UNIX, {0, 0, 0, 2, 7, 0}, 6, "kind"},
      {SB_TRANSPORT_TCP, {0, 0, 0, 10, 2, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, 14, "kind 2"},
      {SB_TRANSPORT_UNIX, {0, 0, 0, 5, 3, 0, 0, 0, 1}, 9, "8-byte id"},
      {SB_TRANSPORT_TCP, {0x01, 0, 0, 1, 1}, 5, "max"},
      {SB_TRANSPORT_UNIX, {0xff, 0xff, 0xff, 0xff, 1}, 5, "max"},
  };
  return cr_make_param_array(bad_frame_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_frame_case *bc, control, each_bad_frame_ends_the_channel_cleanly) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, bc->tr, false);
  okf(&c, REQ(&c, "\"type\":\"status\""));
  write_all(&c, bc->bytes, bc->len);
  cJSON_Delete(error_of(&c, 0, "bad_frame"));
  cr_assert_eq(ctl_end(&c), 125);
  char *err = h_read(&h, "serve.err", NULL);
  cr_assert_not_null(strstr(err, "socketbridge: serve: control channel:"), "%s", err);
  cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "not one line: %s", err);
  cr_log_info("%s -> %s", bc->why, err);
  free(err);
  h_fini(&h);
}

/* SIGTERM to serve ends it as the channel's end does: its procs are
 * stopped, their proc_end still sent, exit 0. */
TRANSPORT_TEST(sigterm_ends_serve_cleanly) {
  harness h;
  ctl c;
  h_init(&h, NULL);
  ctl_start(&c, &h, *tr, false);
  uint64_t proc = spawn_sh(&c, "exec sleep 100");
  cr_assert_eq(kill(c.pid, SIGTERM), 0);
  cJSON *e = expect(&c, "proc_end", "proc", (double)proc);
  cr_assert_str_eq(str(e, "signal"), "KILL");
  cJSON_Delete(e);
  cr_assert_eq(ctl_end(&c), 0);
  h_fini(&h);
}
