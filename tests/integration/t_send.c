/* SPDX-License-Identifier: MIT */
/* `socketbridge send` from a shell in the tree of `socketbridge run`, on
 * both transports: ping and status answered by the supervisor, any other
 * type an error (run has no handler), a bad token, a message that is not
 * JSON, no supervisor at all. (A handler's answer, under serve: t_control.c.) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(sideband, .timeout = 90);

extern char **environ;

typedef struct result {
  int status;
  char *out, *err;
} result;

/* Runs `socketbridge run --transport T -- sh -c script` to its end. */
static void run_sh(harness *h, sb_transport tr, const char *script, result *r) {
  char *args[] = {
      SB_TEST_CLI, "run", "--transport", tr == SB_TRANSPORT_UNIX ? "unix" : "tcp",
      "--",        "sh",  "-c",          (char *)script,
      NULL};
  int st;
  pid_t pid = h_proc_start(h, args, NULL, "run", environ);
  bool ended = h_wait_reapable(pid, H_DEADLINE * h_scale());
  if (!ended)
    kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  cr_assert(ended, "socketbridge run did not end");
  cr_assert(WIFEXITED(st));
  r->status = WEXITSTATUS(st);
  r->out = h_read(h, "run.out", NULL);
  r->err = h_read(h, "run.err", NULL);
}

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

#define SEND SB_TEST_CLI " send "

#define TRANSPORT_TEST(name)                                                             \
  ParameterizedTestParameters(sideband, name) {                                          \
    static sb_transport t[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};                     \
    return cr_make_param_array(sb_transport, t, 2);                                      \
  }                                                                                      \
  ParameterizedTest(sb_transport *tr, sideband, name)

TRANSPORT_TEST(ping_is_answered_pong) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr, SEND "'{\"type\":\"ping\"}'; echo rc=$?", &r);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "{\"type\":\"pong\"}\nrc=0\n");
  cr_assert_str_empty(r.err);
  result_free(&r);
  h_fini(&h);
}

/* status: version, uptime, pid, the child running, calls, counters. */
TRANSPORT_TEST(status_tells_children_calls_and_connections) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr, "\"$SOCKETBRIDGE_STUB\" first; " SEND "'{\"type\":\"status\"}'", &r);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cJSON *s = cJSON_Parse(r.out);
  cr_assert(cJSON_IsObject(s), "%s", r.out);
  cr_assert_str_eq(cJSON_GetObjectItem(s, "type")->valuestring, "status");
  cr_assert_str_eq(cJSON_GetObjectItem(s, "version")->valuestring, sb_version_string());
  cr_assert_gt(cJSON_GetObjectItem(s, "pid")->valuedouble, 0);
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(s, "uptime_ms")));
  const cJSON *children = cJSON_GetObjectItem(s, "children");
  cr_assert_eq(cJSON_GetArraySize(children), 1);
  const cJSON *child = cJSON_GetArrayItem(children, 0);
  cr_assert_str_eq(cJSON_GetObjectItem(child, "state")->valuestring, "running");
  cr_assert_eq(cJSON_GetObjectItem(child, "restarts")->valuedouble, 0);
  cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(child, "argv"), 0)->valuestring,
                   "sh");
  const cJSON *calls = cJSON_GetObjectItem(s, "calls");
  cr_assert_eq(cJSON_GetObjectItem(calls, "served")->valuedouble, 1);
  cr_assert_eq(cJSON_GetObjectItem(calls, "open")->valuedouble, 0);
  const cJSON *conns = cJSON_GetObjectItem(s, "connections");
  cr_assert_eq(cJSON_GetObjectItem(conns, "messages")->valuedouble, 1);
  cr_assert_eq(cJSON_GetObjectItem(conns, "welcomed")->valuedouble, 1);
  cr_assert(cJSON_IsObject(cJSON_GetObjectItem(conns, "rejected")));
  cJSON_Delete(s);
  result_free(&r);
  h_fini(&h);
}

/* run has no handler: another type is an error reply, exit 1, said on
 * stderr. */
TRANSPORT_TEST(another_type_without_a_handler_is_an_error) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr, SEND "'{\"type\":\"deploy\",\"x\":1}'; echo rc=$?", &r);
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "rc=1\n");
  cr_assert_str_eq(r.err,
                   "socketbridge: send: the supervisor answered an error: no_handler: "
                   "no handler for messages of type \"deploy\"\n");
  result_free(&r);
  h_fini(&h);
}

/* A token the supervisor did not issue: rejected, a clear line, 125; the
 * token is not in it. */
TRANSPORT_TEST(a_bad_token_is_refused_clearly) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr,
         "SOCKETBRIDGE_TOKEN="
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef " SEND
         "'{\"type\":\"ping\"}'; echo rc=$?",
         &r);
  cr_assert_str_eq(r.out, "rc=125\n");
  cr_assert_not_null(
      strstr(r.err, "socketbridge: send: rejected by the supervisor: bad_token"), "%s",
      r.err);
  cr_assert_null(strstr(r.err, "0123456789abcdef"), "the token was echoed: %s", r.err);
  result_free(&r);
  h_fini(&h);
}

/* Bad input fails before anything is sent: 125 and one line. */
TRANSPORT_TEST(bad_messages_and_no_supervisor_fail_with_one_line) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr,
         SEND "'not json'; echo rc=$?; " SEND "'{\"x\":1}'; echo rc=$?; " SEND
              "; echo rc=$?; env -u SOCKETBRIDGE_TOKEN " SEND
              "'{\"type\":\"ping\"}'; echo rc=$?",
         &r);
  cr_assert_str_eq(r.out, "rc=125\nrc=125\nrc=125\nrc=125\n");
  cr_assert_str_eq(r.err,
                   "socketbridge: send: the message is not a JSON object with a string "
                   "\"type\"\n"
                   "socketbridge: send: the message is not a JSON object with a string "
                   "\"type\"\n"
                   "socketbridge: send: missing the message (usage: socketbridge send "
                   "[--timeout SECS] JSON)\n"
                   "socketbridge: send: SOCKETBRIDGE_TOKEN is not set\n");
  result_free(&r);
  h_fini(&h);
}

/* The frame bound holds for messages too: over max_bytes, refused before
 * it is sent. */
TRANSPORT_TEST(a_message_over_max_bytes_is_refused) {
  harness h;
  result r;
  h_init(&h, NULL);
  run_sh(&h, *tr,
         "big=$(head -c 5000 /dev/zero | tr '\\0' x); SOCKETBRIDGE_MAX_BYTES=4096 " SEND
         "\"{\\\"type\\\":\\\"$big\\\"}\"; echo rc=$?",
         &r);
  cr_assert_str_eq(r.out, "rc=125\n");
  cr_assert_not_null(strstr(r.err, "over the frame bound"), "%s", r.err);
  result_free(&r);
  h_fini(&h);
}

/* README's snippet, verbatim, with the built socketbridge first on PATH. */
Test(sideband, the_readme_snippet_prints_pong) {
  harness h;
  char path[4096];
  int st;
  h_init(&h, NULL);
  snprintf(path, sizeof path, "PATH=%s:%s", SB_TEST_BINDIR, getenv("PATH"));
  char *envp[] = {path, NULL};
  pid_t pid = h_proc_start(
      &h,
      (char *[]){
          "sh", "-c",
          "socketbridge run -- sh -c 'socketbridge send \"{\\\"type\\\":\\\"ping\\\"}\"'",
          NULL},
      NULL, "readme", envp);
  cr_assert(h_wait_reapable(pid, H_DEADLINE * h_scale()));
  waitpid(pid, &st, 0);
  char *out = h_read(&h, "readme.out", NULL);
  cr_assert_eq(WEXITSTATUS(st), 0);
  cr_assert_str_eq(out, "{\"type\":\"pong\"}\n");
  free(out);
  h_fini(&h);
}

/* ---- the library's handler --------------------------------------------------- */

/* on_message keeps the message and replies later, from the loop: a reply
 * need not come from inside the callback. */
typedef struct lib_state {
  sb_message *pending;
  char type[64], json[256];
  int64_t pid;
  bool ticket_ok;
  uv_timer_t later;
} lib_state;

static harness *lib_h;

static void reply_later(uv_timer_t *t) {
  lib_state *st = t->data;
  cr_assert_eq(sb_message_reply(st->pending, "{\"type\":\"ok\",\"n\":42}"), 0);
  st->pending = NULL;
}

static void lib_on_message(sb_server *server, sb_message *msg) {
  lib_state *st = lib_h->user;
  (void)server;
  snprintf(st->type, sizeof st->type, "%s", sb_message_type(msg));
  snprintf(st->json, sizeof st->json, "%s", sb_message_json(msg));
  st->pid = sb_message_pid(msg);
  st->ticket_ok = sb_message_ticket(msg) != NULL;
  st->pending = msg;
  uv_timer_start(&st->later, reply_later, 0, 0);
}

TRANSPORT_TEST(the_library_on_message_handler_answers) {
  harness h;
  h_exit ex = {0};
  lib_state st;
  char script[600];
  memset(&st, 0, sizeof st);
  lib_h = &h;
  h_init(&h, &(sb_server_options){.transport = *tr, .on_message = lib_on_message});
  h.user = &st;
  uv_timer_init(&h.loop, &st.later);
  st.later.data = &st;
  int out = h_create(&h, "out");
  snprintf(script, sizeof script, "%s send '{\"type\":\"job\",\"args\":[1,\"a\"]}'",
           SB_TEST_CLI);
  h_sh(&h, script, out, 0, &ex);
  h_wait_exit(&h, &ex);
  close(out);
  cr_assert_eq(ex.status, 0);
  char *got = h_read(&h, "out", NULL);
  cr_assert_str_eq(got, "{\"type\":\"ok\",\"n\":42}\n");
  free(got);
  cr_assert_str_eq(st.type, "job");
  cr_assert_str_eq(st.json, "{\"type\":\"job\",\"args\":[1,\"a\"]}");
  cr_assert_gt(st.pid, 0);
  cr_assert(st.ticket_ok);
  sb_server_stats stats;
  sb_server_stats_get(h.server, &stats);
  cr_assert_eq(stats.messages, 1);
  cr_assert_eq(stats.welcomed, 0, "a message is not a call");
  uv_close((uv_handle_t *)&st.later, NULL);
  h_fini(&h);
}

Test(sideband, help_names_serve_and_send) {
  harness h;
  int st;
  h_init(&h, NULL);
  pid_t pid =
      h_proc_start(&h, (char *[]){SB_TEST_CLI, "--help", NULL}, NULL, "help", environ);
  cr_assert(h_wait_reapable(pid, H_DEADLINE * h_scale()));
  waitpid(pid, &st, 0);
  char *out = h_read(&h, "help.out", NULL);
  cr_assert_eq(WEXITSTATUS(st), 0);
  cr_assert_not_null(
      strstr(out, "socketbridge serve [--transport tcp|unix] [--control-fd N]"));
  cr_assert_not_null(strstr(out, "socketbridge send [--timeout SECS] JSON"));
  cr_assert_not_null(strstr(out, "docs/control.md"));
  free(out);
  h_fini(&h);
}
