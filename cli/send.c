/* SPDX-License-Identifier: MIT */
/* send.c - `socketbridge send [--timeout SECS] JSON`: a side-band message
 * to the supervisor this process runs under (docs/protocol.md section 7),
 * through the library's sb_send. The reply goes to stdout as one line, exit
 * 0; an error reply ({"type":"error",...}) is one line on stderr, exit 1;
 * anything that kept the message from being answered (no supervisor, bad
 * JSON, a rejection) is one line on stderr, exit 125. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define SEND_DEFAULT_TIMEOUT_MS 60000 /* the supervisor's own wait for a handler */
#define SEND_EXIT_ERROR_REPLY 1

/* An error reply as one line: "no_handler: no handler for ...". */
static int error_reply(const char *reply) {
  cJSON *o = cJSON_Parse(reply);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "error");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
  bool is_error = cJSON_IsString(type) && strcmp(type->valuestring, "error") == 0;
  if (is_error)
    cli_error("send: the supervisor answered an error: %s%s%s",
              cJSON_IsString(code) ? code->valuestring : "error",
              cJSON_IsString(msg) ? ": " : "",
              cJSON_IsString(msg) ? msg->valuestring : "");
  cJSON_Delete(o);
  return is_error;
}

int cli_send(int argc, char **argv) {
  long timeout_ms = SEND_DEFAULT_TIMEOUT_MS;
  const char *json = NULL;
  char *reply = NULL, *end;
  sb_diag diag;
  int r;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      double secs = strtod(argv[++i], &end);
      if (*argv[i] == '\0' || *end != '\0' || !(secs > 0) || secs > 86400) {
        cli_error(
            "send: --timeout: \"%s\" is not a number of seconds (0 < SECS <= 86400)",
            argv[i]);
        return CLI_EXIT_FAILURE;
      }
      timeout_ms = (long)(secs * 1000);
    } else if (json == NULL && argv[i][0] != '-') {
      json = argv[i];
    } else {
      cli_error("send: %s: unexpected (usage: socketbridge send [--timeout SECS] JSON)",
                argv[i]);
      return CLI_EXIT_FAILURE;
    }
  }
  if (json == NULL) {
    cli_error(
        "send: missing the message (usage: socketbridge send [--timeout SECS] JSON)");
    return CLI_EXIT_FAILURE;
  }
  memset(&diag, 0, sizeof diag);
  r = sb_send(json, (int)timeout_ms, &reply, &diag);
  if (r < 0) {
    cli_error("send: %s", diag.msg[0] != '\0' ? diag.msg : sb_strerror(r));
    return CLI_EXIT_FAILURE;
  }
  if (error_reply(reply)) {
    free(reply);
    return SEND_EXIT_ERROR_REPLY;
  }
  printf("%s\n", reply);
  free(reply);
  return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
}
