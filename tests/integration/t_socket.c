/* SPDX-License-Identifier: MIT */
/* A Unix socket where the caller says (socket_path): made with its mode,
 * removed at close only if it is still ours, a stale one (nobody listens)
 * replaced, a live one or a non-socket refused; and abstract "@name"
 * sockets, which have no file at all. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

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
