/* SPDX-License-Identifier: MIT */
/* bench.h - the benchmark suite of issue 6: what its parts share.
 *
 * Every figure is measured against a floor measured by the same run, on the
 * same machine, interleaved with it where that is cheap: this machine is
 * shared and noisy, so absolute times drift and ratios hold. */
#ifndef SB_BENCH_H
#define SB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_REPS 9
#define BENCH_CHUNK (64u * 1024u) /* every stream writes and relays 64 KiB at once */

/* The bridge's two transports, as in sb_transport. */
enum { BT_TCP = 0, BT_UNIX = 1 };

static inline const char *bench_transport_name(int t) {
  return t == BT_TCP ? "tcp" : "unix";
}

/* ---- bench.c: utilities --------------------------------------------------- */

uint64_t b_now_ns(void);
/* The median of v[0..n) (sorts v), in µs. The stub cycles report the median
 * cycle, not the mean: on a shared host the few cycles that waited for a
 * core (2-20x the others) move a mean by more than the code does. */
double b_median_us(uint64_t *v, int n);
_Noreturn void b_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads exactly n bytes (less only at EOF); dies on error. */
size_t b_read_full(int fd, void *buf, size_t n);
/* Writes all n bytes; dies on error. */
void b_write_full(int fd, const void *buf, size_t n);
/* Waits for pid; dies unless it exited 0. */
void b_wait_ok(pid_t pid, const char *what);
/* A field of /proc/PID/status in KiB (VmRSS, VmHWM), or -1. pid 0: self. */
long b_status_kib(pid_t pid, const char *field);
/* A connected stream socket pair over the transport: TCP on loopback (both
 * ends TCP_NODELAY, as the bridge's), or a Unix socketpair. Close-on-exec. */
void b_sock_pair(int transport, int fds[2]);
/* Anonymous memory of `bytes`, every 4 KiB page touched (MADV_NOHUGEPAGE: the
 * page tables of a fragmented heap). b_ballast_free() undoes it. */
void *b_ballast(size_t bytes);
void b_ballast_free(void *p, size_t bytes);

/* A client thread of a round trip: writes 16 B to wr, reads 16 B from rd,
 * warm + n times; ns is the time of the last n. Closes wr at the end. */
typedef struct b_pinger {
  int wr, rd, n, warm;
  uint64_t ns;
} b_pinger;
void *b_ping(void *arg);

/* ---- floors.c: the raw floors, no socketbridge code ---------------------- */

/* µs per cycle: posix_spawn the tiny static stub, accept its connection,
 * read its 300 B hello and check the token, write a 16 B reply, reap it. */
double floor_cycle_us(int transport, int n);
/* The same with another tiny stub (the one linked like the stub). */
double floor_cycle_us_with(int transport, int n, const char *tiny);
/* GB/s of `total` bytes over A -pipe-> B (64 KiB relay) -socket-> C. */
double floor_relay_gbs(int transport, size_t total);
/* GB/s of `total` bytes over three hops: A (bench_gen, posix_spawn'd)
 * -pipe-> B (64 KiB relay) -socket-> C (64 KiB relay) -> /dev/null; from
 * A's spawn to A, B and C reaped. */
double floor_relay3_gbs(int transport, size_t total);
/* GB/s of `total` bytes over one socket hop: A -socket-> C. */
double floor_stream_gbs(int transport, size_t total);
/* µs per 16 B round trip. with_pipes: client -pipe-> relay process -socket->
 * echo -socket-> relay -pipe-> client (the bridge's shape); otherwise
 * client -socket-> echo -socket-> client. */
double floor_rtt_us(int transport, int n, bool with_pipes);

/* ---- figures.c: the same through socketbridge ----------------------------- */

/* µs per cycle: sb_spawn the stub, hello, welcome, sb_conn_exit(0), the
 * connection closed and the child's status reaped. */
double fig_cycle_us(int transport, int n);

typedef struct fig_stream_result {
  double gbs;        /* throughput, bytes / (end - start) */
  long stub_hwm_kib; /* the stub's peak RSS (VmHWM) at the end of the stream */
  long stub_anon_kib, stub_file_kib; /* its RssAnon and RssFile then */
  bool verified;                     /* checksum compared (verify runs only) and equal */
} fig_stream_result;

/* Supervisor -> stub stdout. total bytes in 64 KiB sb_conn_write()s.
 * verify: the stream of tests/helpers/stream.h into a pipe whose reader
 * checksums it; otherwise fixed chunks into /dev/null. */
fig_stream_result fig_stdout(int transport, size_t total, bool verify);
/* File -> stub stdin -> supervisor's on_stdin. path: the file (its size is
 * the total); seed: its content is stream seed (verify), or 0 to not check. */
fig_stream_result fig_stdin(int transport, const char *path, uint64_t seed);
/* The delegate figure: the stub (stdin /dev/null) is spawned through the
 * library; on_connect sb_conn_delegate()s bench_gen, which writes total
 * bytes in 64 KiB writes; the library splices its stdout to the stub's.
 * From sb_spawn of the stub to its status reaped and connection closed.
 * verify: the stream of seed 9 into a pipe whose reader checksums it;
 * otherwise fixed chunks and the stub's stdout on /dev/null. */
fig_stream_result fig_delegate(int transport, size_t total, bool verify);
/* µs per 16 B round trip: client -pipe-> stub stdin -bridge-> supervisor
 * echoes it as stdout -bridge-> stub -pipe-> client. */
double fig_rtt_us(int transport, int n);

typedef struct fig_many_result {
  unsigned stubs, served;
  double rss_per_conn_kib;
  double p50_ms, p99_ms, max_ms; /* posix_spawn returned -> on_connect */
  double all_ms;                 /* first spawn -> last welcome */
} fig_many_result;

/* n stubs connected at once, idle, then all told exit 0. */
fig_many_result fig_many(int transport, unsigned n);

#endif
