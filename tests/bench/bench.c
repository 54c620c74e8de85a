/* SPDX-License-Identifier: MIT */
/* bench.c - the benchmark suite of issue 6: runs every figure and its floor,
 * interleaved rep by rep, prints one table and writes JSON.
 *
 *   bench [--reps N] [--json PATH] [--only NAME,...]
 *
 * NAME: cycle, stream, delegate, rtt, heap, many, stub. docs/performance.md
 * says what each figure and floor measures. Timings here are never
 * pass/fail. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "stream.h"

extern char **environ;

#define GIB (1024u * 1024u * 1024u)
#define MIB (1024u * 1024u)

/* ---- utilities -------------------------------------------------------------- */

uint64_t b_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

double b_median_us(uint64_t *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_u64);
  double m = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
  return m / 1e3;
}

_Noreturn void b_die(const char *fmt, ...) {
  va_list ap;
  fputs("bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  _exit(1);
}

size_t b_read_full(int fd, void *buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    ssize_t r = read(fd, (char *)buf + have, n - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      b_die("read: %s", strerror(errno));
    if (r == 0)
      break;
    have += (size_t)r;
  }
  return have;
}

void b_write_full(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = write(fd, (const char *)buf + done, n - done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      b_die("write: %s", strerror(errno));
    done += (size_t)r;
  }
}

void b_wait_ok(pid_t pid, const char *what) {
  int st;
  pid_t r;
  do
    r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    b_die("waitpid %s: %s", what, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    b_die("%s failed (status 0x%x)", what, (unsigned)st);
}

long b_status_kib(pid_t pid, const char *field) {
  char path[64], line[256];
  size_t flen = strlen(field);
  long v = -1;
  if (pid == 0)
    snprintf(path, sizeof path, "/proc/self/status");
  else
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
      v = strtol(line + flen + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

void b_sock_pair(int transport, int fds[2]) {
  if (transport == BT_UNIX) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
      b_die("socketpair: %s", strerror(errno));
    return;
  }
  struct sockaddr_in in;
  socklen_t len = sizeof in;
  int one = 1;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&in, sizeof in) < 0 || listen(l, 1) < 0 ||
      getsockname(l, (struct sockaddr *)&in, &len) < 0)
    b_die("tcp listener: %s", strerror(errno));
  fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&in, sizeof in) < 0)
    b_die("tcp connect: %s", strerror(errno));
  fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (fds[1] < 0)
    b_die("tcp accept: %s", strerror(errno));
  close(l);
  setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void *b_ballast(size_t bytes) {
  char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    b_die("mmap: %s", strerror(errno));
  madvise(p, bytes, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < bytes; i += 4096)
    p[i] = (char)(i >> 12);
  return p;
}

void b_ballast_free(void *p, size_t bytes) {
  munmap(p, bytes);
}

void *b_ping(void *arg) {
  b_pinger *pg = arg;
  unsigned char buf[16] = "0123456789abcde";
  uint64_t t0 = 0;
  for (int i = 0; i < pg->warm + pg->n; i++) {
    if (i == pg->warm)
      t0 = b_now_ns();
    b_write_full(pg->wr, buf, sizeof buf);
    if (b_read_full(pg->rd, buf, sizeof buf) != sizeof buf)
      b_die("ping: short read");
  }
  pg->ns = b_now_ns() - t0;
  close(pg->wr);
  return NULL;
}

/* ---- rows of the table ---------------------------------------------------- */

typedef struct series {
  double v[BENCH_MAX_REPS];
  int n;
} series;

static void add(series *s, double v) {
  if (s->n < BENCH_MAX_REPS)
    s->v[s->n++] = v;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double med(const series *s) {
  double v[BENCH_MAX_REPS];
  if (s->n == 0)
    return 0;
  memcpy(v, s->v, (size_t)s->n * sizeof v[0]);
  qsort(v, (size_t)s->n, sizeof v[0], cmp_d);
  return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

static double lo(const series *s) {
  double m = s->n ? s->v[0] : 0;
  for (int i = 1; i < s->n; i++)
    m = s->v[i] < m ? s->v[i] : m;
  return m;
}

static double hi(const series *s) {
  double m = s->n ? s->v[0] : 0;
  for (int i = 1; i < s->n; i++)
    m = s->v[i] > m ? s->v[i] : m;
  return m;
}

typedef enum goal_kind { G_NONE, G_MAX, G_MIN } goal_kind; /* ratio <= or >= goal */

typedef struct row {
  char name[48];
  const char *unit;
  series fig, flo;
  const char *floor_name;
  goal_kind gk;
  double goal;
  bool skipped;
  char note[160]; /* for rows without a floor: the figure as text */
  int met;        /* -1 no goal, 0 missed, 1 met */
} row;

#define MAX_ROWS 40
static row rows[MAX_ROWS];
static int nrows;

static row *new_row(const char *name, const char *unit, const char *floor_name,
                    goal_kind gk, double goal) {
  if (nrows == MAX_ROWS)
    b_die("too many rows");
  row *r = &rows[nrows++];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->unit = unit;
  r->floor_name = floor_name;
  r->gk = gk;
  r->goal = goal;
  r->met = -1;
  return r;
}

static double ratio(const row *r) {
  double f = med(&r->fig), b = med(&r->flo);
  return b > 0 ? f / b : 0;
}

static void judge(row *r) {
  if (r->skipped || r->gk == G_NONE || r->flo.n == 0)
    return;
  double q = ratio(r);
  r->met = r->gk == G_MAX ? q <= r->goal : q >= r->goal;
}

/* ---- the figures ---------------------------------------------------------- */

static int reps = 5;

static void run_cycle(void) {
  for (int t = BT_TCP; t <= BT_UNIX; t++) {
    char name[48];
    const char *tn = bench_transport_name(t);
    snprintf(name, sizeof name, "stub cycle %s", tn);
    row *r = new_row(name, "us", "raw stub-shaped cycle (posix_spawn static tiny stub)",
                     G_MAX, 1.15);
    /* What the socketbridge code costs beyond exec'ing a program linked as
     * the stub is: "dyn" (libc DSO) or "musl" (static musl, the stub's
     * default where musl-gcc is found; tests/bench/CMakeLists.txt). The
     * musl row is the stub cycle's true floor, with its own goal (issue 14,
     * item 5); the dyn row stays information. */
    bool musl = strcmp(BENCH_TINYSTUB_LIKE_KIND, "musl") == 0;
    snprintf(name, sizeof name, "stub cycle vs %s floor %s", BENCH_TINYSTUB_LIKE_KIND,
             tn);
    row *d = new_row(name, "us",
                     musl ? "raw cycle, tiny stub linked like the stub (static musl)"
                          : "raw cycle, tiny stub linked like the stub (info)",
                     musl ? G_MAX : G_NONE, musl ? 1.3 : 0);
    for (int i = 0; i < reps; i++) {
      add(&r->flo, floor_cycle_us(t, 200));
      add(&d->flo, floor_cycle_us_with(t, 200, BENCH_TINYSTUB_LIKE));
      double v = fig_cycle_us(t, 200);
      add(&r->fig, v);
      add(&d->fig, v);
    }
    judge(r);
    judge(d);
  }
}

static long stub_hwm = -1;
static char stub_hwm_where[96];

static void note_hwm(const fig_stream_result *r, const char *where) {
  if (r->stub_hwm_kib <= stub_hwm)
    return;
  stub_hwm = r->stub_hwm_kib;
  snprintf(stub_hwm_where, sizeof stub_hwm_where,
           "in %s; RssAnon %ld + RssFile %ld KiB then", where, r->stub_anon_kib,
           r->stub_file_kib);
}

/* A 1 GiB file on tmpfs (page cache, no disk): 1 MiB of stream 3, repeated. */
static void make_file(const char *path, size_t total, uint64_t seed, bool whole_stream) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    b_die("%s: %s", path, strerror(errno));
  uint8_t *buf = malloc(MIB);
  if (buf == NULL)
    b_die("out of memory");
  tstream g;
  tstream_init(&g, seed);
  for (size_t done = 0; done < total; done += MIB) {
    if (done == 0 || whole_stream)
      tstream_fill(&g, buf, MIB);
    b_write_full(fd, buf, MIB);
  }
  free(buf);
  close(fd);
}

static void run_stream(void) {
  char big[64], small[64];
  snprintf(big, sizeof big, "/dev/shm/sbbench-%d-1g", (int)getpid());
  snprintf(small, sizeof small, "/dev/shm/sbbench-%d-64m", (int)getpid());
  make_file(big, GIB, 3, false);
  make_file(small, 64 * MIB, 7, true);
  for (int t = BT_TCP; t <= BT_UNIX; t++) {
    char name[48];
    const char *tn = bench_transport_name(t);
    snprintf(name, sizeof name, "stdout stream %s", tn);
    row *out = new_row(name, "GB/s", "two-hop relay A-pipe->B-socket->C", G_MIN, 0.8);
    snprintf(name, sizeof name, "stdin stream %s", tn);
    row *in = new_row(name, "GB/s", "two-hop relay A-pipe->B-socket->C", G_MIN, 0.8);
    snprintf(name, sizeof name, "stdout vs one hop %s", tn);
    row *out1 = new_row(name, "GB/s", "one socket hop A-socket->C (info)", G_NONE, 0);
    for (int i = 0; i < reps; i++) {
      double relay = floor_relay_gbs(t, GIB);
      add(&out->flo, relay);
      add(&in->flo, relay);
      add(&out1->flo, floor_stream_gbs(t, GIB));
      fig_stream_result o = fig_stdout(t, GIB, false);
      add(&out->fig, o.gbs);
      add(&out1->fig, o.gbs);
      note_hwm(&o, out->name);
      fig_stream_result s = fig_stdin(t, big, 0);
      add(&in->fig, s.gbs);
      note_hwm(&s, in->name);
    }
    judge(out);
    judge(in);
    /* Correctness at 64 MiB: every byte, in order (checksum). */
    fig_stream_result vo = fig_stdout(t, 64 * MIB, true);
    fig_stream_result vi = fig_stdin(t, small, 7);
    snprintf(out->note, sizeof out->note, "64 MiB checksum %s",
             vo.verified ? "ok" : "BAD");
    snprintf(in->note, sizeof in->note, "64 MiB checksum %s", vi.verified ? "ok" : "BAD");
    if (!vo.verified || !vi.verified)
      b_die("stream checksum mismatch (%s)", tn);
  }
  unlink(big);
  unlink(small);
}

/* A program's 1 GiB through sb_conn_delegate: program -pipe-> supervisor
 * -socket-> stub -> /dev/null, against the same three hops raw. */
static void run_delegate(void) {
  for (int t = BT_TCP; t <= BT_UNIX; t++) {
    char name[48];
    const char *tn = bench_transport_name(t);
    snprintf(name, sizeof name, "delegate %s", tn);
    row *r = new_row(name, "GB/s", "three-hop relay gen-pipe->B-socket->C->/dev/null",
                     G_MIN, 0.7);
    for (int i = 0; i < reps; i++) {
      add(&r->flo, floor_relay3_gbs(t, GIB));
      fig_stream_result d = fig_delegate(t, GIB, false);
      add(&r->fig, d.gbs);
      note_hwm(&d, r->name);
    }
    judge(r);
    fig_stream_result v = fig_delegate(t, 64 * MIB, true);
    snprintf(r->note, sizeof r->note, "64 MiB checksum %s", v.verified ? "ok" : "BAD");
    if (!v.verified)
      b_die("delegate checksum mismatch (%s)", tn);
  }
}

static void run_rtt(void) {
  for (int t = BT_TCP; t <= BT_UNIX; t++) {
    char name[48];
    const char *tn = bench_transport_name(t);
    snprintf(name, sizeof name, "bridge round trip %s", tn);
    row *r = new_row(name, "us", "ping-pong via pipe->relay->socket->echo and back",
                     G_MAX, 1.5);
    snprintf(name, sizeof name, "round trip vs bare socket %s", tn);
    row *r1 = new_row(name, "us", "bare socket ping-pong (info)", G_NONE, 0);
    for (int i = 0; i < reps; i++) {
      add(&r->flo, floor_rtt_us(t, 4000, true));
      add(&r1->flo, floor_rtt_us(t, 4000, false));
      double v = fig_rtt_us(t, 4000);
      add(&r->fig, v);
      add(&r1->fig, v);
    }
    judge(r);
  }
}

static void run_heap(void) {
  row *r = new_row("spawn, 1 GiB heap (unix)", "us", "same stub cycle, small heap", G_MAX,
                   1.2);
  row *p = new_row("raw posix_spawn, 1 GiB heap", "us",
                   "raw cycle, small heap (info: posix_spawn stays flat)", G_NONE, 0);
  for (int i = 0; i < reps; i++) {
    add(&r->flo, fig_cycle_us(BT_UNIX, 60));
    add(&p->flo, floor_cycle_us(BT_UNIX, 60));
  }
  void *heap = b_ballast(GIB);
  for (int i = 0; i < reps; i++) {
    add(&r->fig, fig_cycle_us(BT_UNIX, 8));
    add(&p->fig, floor_cycle_us(BT_UNIX, 60));
  }
  b_ballast_free(heap, GIB);
  judge(r);
}

/* fig_many in a child process of its own: RSS growth counts per
 * connection only on a fresh heap (in this process, the second transport
 * reused what the first had freed, and grew by 0.03 KiB a connection). */
static fig_many_result fig_many_fresh(int transport, unsigned n) {
  fig_many_result m;
  int p[2];
  if (pipe(p) != 0)
    b_die("pipe: %s", strerror(errno));
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0)
    b_die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(p[0]);
    m = fig_many(transport, n);
    _exit(write(p[1], &m, sizeof m) == (ssize_t)sizeof m ? 0 : 1);
  }
  close(p[1]);
  ssize_t got = read(p[0], &m, sizeof m);
  close(p[0]);
  b_wait_ok(pid, "the 1000-stub child");
  if (got != (ssize_t)sizeof m)
    b_die("the 1000-stub child reported nothing");
  return m;
}

static void run_many(void) {
  for (int t = BT_TCP; t <= BT_UNIX; t++) {
    char name[48];
    snprintf(name, sizeof name, "1000 stubs at once %s", bench_transport_name(t));
    row *r = new_row(name, "KiB/conn", NULL, G_NONE, 0);
    fig_many_result m = fig_many_fresh(t, 1000);
    add(&r->fig, m.rss_per_conn_kib);
    snprintf(r->note, sizeof r->note,
             "served %u/%u; RSS %.1f KiB/idle conn; spawn->welcome p50 %.2f p99 %.2f max "
             "%.2f ms; all in %.0f ms",
             m.served, m.stubs, m.rss_per_conn_kib, m.p50_ms, m.p99_ms, m.max_ms,
             m.all_ms);
    r->met = m.served == m.stubs && m.rss_per_conn_kib <= 32.0;
  }
}

static void run_stub(void) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "/tmp/sbbench-%d-stub", (int)getpid());
  char *args[] = {"strip", "-o", tmp, BENCH_STUB, NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, "strip", NULL, NULL, args, environ);
  if (e != 0)
    b_die("strip: %s", strerror(e));
  b_wait_ok(pid, "strip");
  struct stat st;
  if (stat(tmp, &st) < 0)
    b_die("%s: %s", tmp, strerror(errno));
  unlink(tmp);
  row *s = new_row("stub stripped size", "KiB", NULL, G_NONE, 0);
  add(&s->fig, (double)st.st_size / 1024);
  snprintf(s->note, sizeof s->note, "%lld bytes (goal <= 65536)", (long long)st.st_size);
  s->met = st.st_size <= 65536;
  if (stub_hwm >= 0) {
    row *h = new_row("stub peak RSS streaming", "KiB", NULL, G_NONE, 0);
    add(&h->fig, (double)stub_hwm);
    snprintf(h->note, sizeof h->note,
             "VmHWM %ld KiB (goal <= 2048), max of the streams: %s", stub_hwm,
             stub_hwm_where);
    h->met = stub_hwm <= 2048;
  }
}

/* ---- report --------------------------------------------------------------- */

typedef struct machine {
  long cores;
  char kernel[128], cpu[128], date[32];
  const char *libuv;
} machine;

static void get_machine(machine *m) {
  struct utsname u;
  m->cores = sysconf(_SC_NPROCESSORS_ONLN);
  uname(&u);
  snprintf(m->kernel, sizeof m->kernel, "%s", u.release);
  m->libuv = uv_version_string();
  snprintf(m->cpu, sizeof m->cpu, "?");
  FILE *f = fopen("/proc/cpuinfo", "re");
  char line[256];
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "model name", 10) == 0) {
      char *v = strchr(line, ':');
      if (v != NULL) {
        v += strspn(v + 1, " ") + 1;
        v[strcspn(v, "\n")] = '\0';
        snprintf(m->cpu, sizeof m->cpu, "%s", v);
      }
      break;
    }
  if (f != NULL)
    fclose(f);
  time_t now = time(NULL);
  strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
}

static const char *verdict(const row *r) {
  if (r->skipped)
    return "SKIP";
  return r->met < 0 ? "-" : r->met ? "met" : "MISSED";
}

/* Three significant digits or more, never an exponent. */
static int prec(double v) {
  return v >= 100 ? 0 : v >= 10 ? 1 : 2;
}

static void fmt_series(char *out, size_t size, const series *s) {
  double m = med(s), a = lo(s), z = hi(s);
  snprintf(out, size, "%.*f [%.*f..%.*f]", prec(m), m, prec(a), a, prec(z), z);
}

static void print_table(const machine *m) {
  printf("\nsocketbridge bench %s  cores %ld  kernel %s  libuv %s  cpu %s  reps %d\n\n",
         m->date, m->cores, m->kernel, m->libuv, m->cpu, reps);
  printf("%-31s %-8s %-24s %-24s %-7s %-8s %s\n", "figure", "unit",
         "figure median [min..max]", "floor median [min..max]", "ratio", "goal", "");
  for (int i = 0; i < nrows; i++) {
    const row *r = &rows[i];
    char f[64] = "", b[64] = "", q[16] = "", g[16] = "-";
    if (r->fig.n)
      fmt_series(f, sizeof f, &r->fig);
    if (r->flo.n) {
      fmt_series(b, sizeof b, &r->flo);
      snprintf(q, sizeof q, "%.2fx", ratio(r));
    }
    if (r->gk != G_NONE)
      snprintf(g, sizeof g, "%s %.2fx", r->gk == G_MAX ? "<=" : ">=", r->goal);
    printf("%-31s %-8s %-24s %-24s %-7s %-8s %s\n", r->name, r->unit, f, b, q, g,
           verdict(r));
    if (r->note[0] != '\0')
      printf("%-31s   %s\n", "", r->note);
  }
  printf("\nfloors:\n");
  for (int i = 0; i < nrows; i++)
    if (rows[i].floor_name != NULL)
      printf("  %-31s %s\n", rows[i].name, rows[i].floor_name);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s != '\0'; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if ((unsigned char)*s >= 0x20)
      fputc(*s, f);
  }
  fputc('"', f);
}

static void json_series(FILE *f, const char *key, const series *s) {
  fprintf(f, ", \"%s\": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"reps\": [",
          key, med(s), lo(s), hi(s));
  for (int i = 0; i < s->n; i++)
    fprintf(f, "%s%.6g", i ? ", " : "", s->v[i]);
  fputs("]}", f);
}

static void write_json(const char *path, const machine *m) {
  FILE *f = fopen(path, "we");
  if (f == NULL)
    b_die("%s: %s", path, strerror(errno));
  fprintf(f,
          "{\"date\": \"%s\", \"reps\": %d,\n \"machine\": {\"cores\": %ld, \"kernel\": ",
          m->date, reps, m->cores);
  json_str(f, m->kernel);
  fputs(", \"libuv\": ", f);
  json_str(f, m->libuv);
  fputs(", \"cpu\": ", f);
  json_str(f, m->cpu);
  fputs("},\n \"figures\": [\n", f);
  for (int i = 0; i < nrows; i++) {
    const row *r = &rows[i];
    fputs("  {\"figure\": ", f);
    json_str(f, r->name);
    fputs(", \"unit\": ", f);
    json_str(f, r->unit);
    if (r->fig.n)
      json_series(f, "value", &r->fig);
    if (r->flo.n) {
      json_series(f, "floor", &r->flo);
      fputs(", \"floor_is\": ", f);
      json_str(f, r->floor_name);
      fprintf(f, ", \"ratio\": %.4f", ratio(r));
    }
    if (r->gk != G_NONE)
      fprintf(f, ", \"goal\": \"%s %.2f\"", r->gk == G_MAX ? "<=" : ">=", r->goal);
    fputs(", \"verdict\": ", f);
    json_str(f, verdict(r));
    if (r->note[0] != '\0') {
      fputs(", \"note\": ", f);
      json_str(f, r->note);
    }
    fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
  }
  fputs(" ]}\n", f);
  fclose(f);
}

static bool wanted(const char *only, const char *name) {
  if (only == NULL)
    return true;
  size_t n = strlen(name);
  for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
    if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
      return true;
  return false;
}

int main(int argc, char **argv) {
  const char *json = "bench.json", *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
      json = argv[++i];
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr,
              "usage: %s [--reps N] [--json PATH] [--only "
              "cycle,stream,delegate,rtt,heap,many,stub]\n",
              argv[0]);
      return 2;
    }
  }
  if (reps < 1 || reps > BENCH_MAX_REPS)
    b_die("--reps: 1..%d", BENCH_MAX_REPS);
  /* 1000 stubs: one fd each in this process, plus the loop's own. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  machine m;
  get_machine(&m);
  struct {
    const char *name;
    void (*run)(void);
  } parts[] = {{"cycle", run_cycle}, {"stream", run_stream}, {"delegate", run_delegate},
               {"rtt", run_rtt},     {"heap", run_heap},     {"many", run_many},
               {"stub", run_stub}};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (wanted(only, parts[i].name)) {
      uint64_t t0 = b_now_ns();
      fprintf(stderr, "bench: %s...", parts[i].name);
      parts[i].run();
      fprintf(stderr, " %.1f s\n", (double)(b_now_ns() - t0) / 1e9);
    }
  print_table(&m);
  write_json(json, &m);
  printf("\nJSON: %s\n", json);
  return 0;
}
