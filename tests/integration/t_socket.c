/* SPDX-License-Identifier: MIT */
/* A Unix socket where the caller says (socket_path): made with its mode,
 * removed at close only if it is still ours, a stale one (nobody listens)
 * replaced, a live one or a non-socket refused; and abstract "@name"
 * sockets, which have no file at all. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

TestSuite(socket, .timeout = 60);

/* A fresh directory for a socket path, outside the harness's. */
static char *sock_dir(void) {
  char *d = strdup("/tmp/sbsock.XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

static int bind_at(const char *path, bool listening) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
  if (listening)
    cr_assert_eq(listen(fd, 4), 0);
  return fd;
}

static void answer_0(harness *h, sb_conn *c) {
  (void)h;
  sb_conn_exit(c, 0);
}

/* A stub under h is answered: the transport reached it. */
static void assert_stub_reaches(harness *h) {
  h->on_connect = answer_0;
  h_exit ex;
  h_sh(h, "\"$SOCKETBRIDGE_STUB\" x", 0, 0, &ex);
  h_wait_exit(h, &ex);
  cr_assert_eq(ex.status, 0, "the stub ended %lld", (long long)ex.status);
  cr_assert_eq(h->connects, 1);
}

static void never_called(sb_server *s, sb_conn *c) {
  (void)s, (void)c;
  cr_assert_fail("no server should exist to call this");
}

Test(socket, a_socket_path_gets_its_mode_and_goes_at_close) {
  char *d = sock_dir(), path[256];
  snprintf(path, sizeof path, "%s/s", d);
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX,
                                  .socket_path = path,
                                  .socket_mode = 0660});
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert(S_ISSOCK(st.st_mode));
  cr_assert_eq(st.st_mode & 0777, 0660, "mode %o", st.st_mode & 0777);
  cr_assert_str_eq(sb_server_address(h.server), path);
  assert_stub_reaches(&h);
  h_fini(&h);
  cr_assert(access(path, F_OK) != 0 && errno == ENOENT, "the socket outlived the server");
  cr_assert_eq(rmdir(d), 0);
  free(d);
}

Test(socket, a_stale_socket_is_replaced_and_a_live_one_or_a_file_refused) {
  char *d = sock_dir(), path[256];
  snprintf(path, sizeof path, "%s/s", d);
  uv_loop_t loop;
  sb_server *s = NULL;
  sb_server_options o = {
      .transport = SB_TRANSPORT_UNIX, .socket_path = path, .on_connect = never_called};
  cr_assert_eq(uv_loop_init(&loop), 0);

  int live = bind_at(path, true);
  cr_assert_eq(sb_server_new(&loop, &o, &s), -EADDRINUSE);
  close(live);
  /* Closed: nobody listens any more, the file is stale. */
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX, .socket_path = path});
  assert_stub_reaches(&h);
  h_fini(&h);

  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  cr_assert(fd >= 0);
  close(fd);
  cr_assert_eq(sb_server_new(&loop, &o, &s), -EEXIST);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "the file was removed");
  cr_assert(S_ISREG(st.st_mode));
  unlink(path);

  /* A path that is neither absolute nor @name, or a path for TCP. */
  o.socket_path = "relative/s";
  cr_assert_eq(sb_server_new(&loop, &o, &s), -EINVAL);
  o.socket_path = "@";
  cr_assert_eq(sb_server_new(&loop, &o, &s), -EINVAL);
  o.socket_path = path;
  o.transport = SB_TRANSPORT_TCP;
  cr_assert_eq(sb_server_new(&loop, &o, &s), -EINVAL);
  cr_assert_eq(uv_loop_close(&loop), 0);
  cr_assert_eq(rmdir(d), 0);
  free(d);
}

Test(socket, close_leaves_a_socket_that_someone_else_put_at_the_path) {
  char *d = sock_dir(), path[256];
  snprintf(path, sizeof path, "%s/s", d);
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX, .socket_path = path});
  /* Another supervisor took the path over meanwhile. */
  cr_assert_eq(unlink(path), 0);
  int other = bind_at(path, true);
  h_fini(&h);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "close removed a socket that was not its own");
  close(other);
  unlink(path);
  cr_assert_eq(rmdir(d), 0);
  free(d);
}

Test(socket, an_abstract_socket_has_no_file_and_reaches_the_stub) {
  char name[64];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(name, sizeof name, "@sbtest-%d-%ld", (int)getpid(), (long)ts.tv_nsec);
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX, .socket_path = name});
  cr_assert_str_eq(sb_server_address(h.server), name);
  cr_assert(access(name, F_OK) != 0, "a file named %s was made", name);
  assert_stub_reaches(&h);
  /* The name is taken while the server lives. */
  uv_loop_t loop;
  sb_server *s = NULL;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(sb_server_new(&loop,
                             &(sb_server_options){.transport = SB_TRANSPORT_UNIX,
                                                  .socket_path = name,
                                                  .on_connect = never_called},
                             &s),
               -EADDRINUSE);
  cr_assert_eq(uv_loop_close(&loop), 0);
  h_fini(&h);
}

/* ---- a full backlog ------------------------------------------------------ */

/* Whether the process is blocked in connect(2) (syscall 42 on x86-64, 203
 * on aarch64): /proc/PID/syscall names the call a sleeping task is in. */
static bool in_connect(harness *h, const void *arg) {
  (void)h;
  char path[64], buf[64] = "";
  snprintf(path, sizeof path, "/proc/%d/syscall", *(const pid_t *)arg);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  bool in = fgets(buf, sizeof buf, f) != NULL &&
            (strncmp(buf, "42 ", 3) == 0 || strncmp(buf, "203 ", 4) == 0);
  fclose(f);
  return in;
}

static int accept_within(int l) {
  struct pollfd p = {.fd = l, .events = POLLIN};
  cr_assert_eq(poll(&p, 1, (int)(10000 * h_scale())), 1, "nothing to accept");
  int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  cr_assert(fd >= 0, "accept: %s", strerror(errno));
  return fd;
}

/* The stub connects without blocking, and only a full backlog (EAGAIN)
 * makes it wait, in a blocking connect() bounded by its handshake
 * timeout: it gets in as soon as the listener takes a connection. */
Test(socket, a_stub_waits_for_room_in_a_full_backlog) {
  harness h;
  h_init(&h, NULL);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", h_path(&h, "full.sock"));
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
  cr_assert_eq(listen(l, 0), 0);
  /* One connection waiting fills a backlog of 0; a second would wait. */
  int first = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  cr_assert_eq(connect(first, (struct sockaddr *)&sa, sizeof sa), 0, "%s",
               strerror(errno));
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  cr_assert(connect(probe, (struct sockaddr *)&sa, sizeof sa) < 0 && errno == EAGAIN,
            "the backlog is not full");
  close(probe);

  char script[600];
  snprintf(script, sizeof script,
           "SOCKETBRIDGE_SOCKET='%s' exec \"$SOCKETBRIDGE_STUB\" x", sa.sun_path);
  int err = h_create(&h, "err");
  h_exit ex;
  pid_t pid = sb_child_pid(h_sh(&h, script, 0, err, &ex));
  close(err);
  h_poll_until(&h, in_connect, &pid, "the stub waiting in connect()");

  close(accept_within(l)); /* room: the stub's connect() completes */
  int s = accept_within(l);
  struct pollfd p = {.fd = s, .events = POLLIN};
  cr_assert_eq(poll(&p, 1, (int)(10000 * h_scale())), 1, "no hello");
  char buf[256] = "";
  cr_assert_gt(read(s, buf, sizeof buf - 1), SB_FRAME_HEADER);
  cr_assert_not_null(memmem(buf, sizeof buf, "\"type\":\"hello\"", 14), "not a hello");

  /* Closed without an answer: the stub's one line, and 125. */
  close(s);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 125);
  char *e = h_read(&h, "err", NULL);
  cr_assert_not_null(strstr(e, "during the handshake"), "%s", e);
  free(e);
  close(first);
  close(l);
  h_fini(&h);
}
