/* SPDX-License-Identifier: MIT */
/* Who may connect: the loopback bind, the allowlist, and for a Unix socket
 * its private directory and the peer's uid. Each defence is tested alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(security, .timeout = 60);

static void refuse_all(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_fail("a peer that should have been refused was welcomed (pid %lld)",
                 (long long)sb_conn_call(c)->pid);
}

/* Runs rawpeer MODE (optionally as another user) and returns what it said,
 * or NULL when it could not even connect (exit 1). The caller frees. */
static char *rawpeer(harness *h, const char *mode, bool as_nobody) {
  char *plain[] = {HELPER_RAWPEER, (char *)mode, NULL};
  char *nobody[] = {"/usr/bin/setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    HELPER_RAWPEER,
                    (char *)mode,
                    NULL};
  h_exit ex;
  h_spawn_to(h, as_nobody ? nobody : plain, "peer", NULL, &ex);
  h_wait_exit(h, &ex);
  if (ex.status == 1)
    return NULL;
  cr_assert_eq(ex.status, 0, "rawpeer ended %lld", (long long)ex.status);
  return h_read(h, "peer", NULL);
}

Test(security, a_tcp_peer_outside_the_allowlist_is_refused) {
  harness h;
  h_init(&h, &(sb_server_options){.allowlist = "10.1.2.3,192.168.0.0/16"});
  h.on_connect = refuse_all;
  char *said = rawpeer(&h, "silent", false);
  cr_assert_not_null(said, "rawpeer could not connect");
  cr_assert_str_eq(said, "not_allowed\n");
  cr_assert_eq(h.rejects[SB_REASON_NOT_ALLOWED], 1);
  free(said);
  h_fini(&h);
}

Test(security, a_tcp_peer_inside_the_allowlist_gets_to_the_token_check) {
  harness h;
  h_init(&h, &(sb_server_options){.allowlist = "10.1.2.3,127.0.0.0/8"});
  h.on_connect = refuse_all;
  char *said = rawpeer(&h, "badtoken", false);
  cr_assert_not_null(said);
  cr_assert_str_eq(said, "bad_token\n", "the allowlist refused a listed peer");
  free(said);
  h_fini(&h);
}

static void never_called(sb_server *s, sb_conn *c) {
  (void)s, (void)c;
  cr_assert_fail("no server should exist to call this");
}

Test(security, a_non_loopback_bind_needs_allow_remote) {
  uv_loop_t loop;
  sb_server *s = NULL;
  cr_assert_eq(uv_loop_init(&loop), 0);
  int r = sb_server_new(&loop,
                        &(sb_server_options){.host = "0.0.0.0", .on_connect = NULL}, &s);
  cr_assert_lt(r, 0, "a server without on_connect or bound to 0.0.0.0 was made");
  sb_server_options o = {.host = "0.0.0.0", .on_connect = never_called};
  r = sb_server_new(&loop, &o, &s);
  cr_assert_eq(r, -EADDRNOTAVAIL, "binding 0.0.0.0: %s", sb_err_name(r));
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* Root can reach any socket; the tests below need a second user. */
static void need_root(void) {
  if (geteuid() != 0)
    cr_skip_test("needs root, to run a peer as nobody");
}

Test(security, the_socket_directory_keeps_another_user_out) {
  need_root();
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX});
  h.on_connect = refuse_all;
  /* The socket open to all: only the directory's 0700 is tested here (the
   * socket's own 0600 is checked in t_lifecycle.c). */
  cr_assert_eq(chmod(sb_server_address(h.server), 0666), 0);
  char *said = rawpeer(&h, "silent", true);
  cr_assert_null(said, "nobody reached the socket through its 0700 directory: %s", said);
  cr_assert_eq(h.reject_total, 0);
  h_fini(&h);
}

Test(security, a_unix_peer_of_another_uid_is_refused_even_when_it_can_reach_the_socket) {
  need_root();
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX});
  h.on_connect = refuse_all;
  /* Open the first defence on purpose, to test the second (SO_PEERCRED). */
  char dir[512];
  snprintf(dir, sizeof dir, "%s", sb_server_address(h.server));
  *strrchr(dir, '/') = '\0';
  cr_assert_eq(chmod(dir, 0711), 0);
  cr_assert_eq(chmod(sb_server_address(h.server), 0666), 0);
  char *said = rawpeer(&h, "silent", true);
  cr_assert_not_null(said, "nobody could not connect to an open socket");
  cr_assert_str_eq(said, "not_allowed\n");
  cr_assert_eq(h.rejects[SB_REASON_NOT_ALLOWED], 1);
  free(said);
  h_fini(&h);
}
