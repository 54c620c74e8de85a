/* SPDX-License-Identifier: MIT */
/* record.c - --record: one JSON line per stub call, written when the call
 * ends, however it ends (answered, exec'd, cut off, refused by a rule).
 *
 * Bytes (argv, env, cwd, and the data of stdin, stdout, stderr) are encoded
 * as the protocol encodes them: a JSON string when they are UTF-8 without a
 * NUL, else {"base64": ...}. The data of each stream is kept up to
 * CLI_RECORD_CAP bytes; "bytes" counts all of it. */
#include "proto.h"
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void cli_rec_bytes(cli_rec_stream *s, const char *buf, size_t len) {
  size_t keep = len;

  s->bytes += len;
  if (s->len + keep > CLI_RECORD_CAP)
    keep = CLI_RECORD_CAP - s->len;
  if (keep == 0)
    return;
  if (s->data == NULL && (s->data = malloc(CLI_RECORD_CAP)) == NULL)
    return; /* the record keeps the count only */
  memcpy(s->data + s->len, buf, keep);
  s->len += keep;
}

void cli_rec_free(cli_rec_stream *s) {
  free(s->data);
  memset(s, 0, sizeof *s);
}

/* Bytes as the protocol carries them. */
static cJSON *bytes_json(const char *buf, size_t len) {
  cJSON *obj;
  char *b64;

  if (memchr(buf, '\0', len) == NULL && sb_utf8_valid((const uint8_t *)buf, len)) {
    /* A NUL-terminated copy (buf is not terminated): not strndup, which
     * may read past len looking for a NUL. */
    char *s = malloc(len + 1);
    cJSON *str = NULL;
    if (s != NULL) {
      memcpy(s, buf, len);
      s[len] = '\0';
      str = cJSON_CreateString(s);
    }
    free(s);
    return str;
  }
  b64 = sb_base64(buf, len);
  obj = b64 != NULL ? cJSON_CreateObject() : NULL;
  if (obj != NULL && cJSON_AddStringToObject(obj, "base64", b64) == NULL) {
    cJSON_Delete(obj);
    obj = NULL;
  }
  free(b64);
  return obj;
}

static bool add_strings(cJSON *o, const char *name, size_t n, char *const *v) {
  cJSON *arr = cJSON_AddArrayToObject(o, name);
  for (size_t i = 0; arr != NULL && i < n; i++) {
    cJSON *item = bytes_json(v[i], strlen(v[i]));
    if (item == NULL)
      return false;
    cJSON_AddItemToArray(arr, item);
  }
  return arr != NULL;
}

static bool add_stream(cJSON *o, const char *name, const cli_rec_stream *s) {
  cJSON *obj = cJSON_AddObjectToObject(o, name), *data;
  if (obj == NULL || cJSON_AddNumberToObject(obj, "bytes", (double)s->bytes) == NULL)
    return false;
  data = bytes_json(s->data != NULL ? s->data : "", s->len);
  if (data == NULL)
    return false;
  cJSON_AddItemToObject(obj, "data", data);
  return s->len == s->bytes || cJSON_AddTrueToObject(obj, "truncated") != NULL;
}

static bool add_status(cJSON *o, const cli_call *c) {
  const char *name;
  if (!c->have_status)
    return cJSON_AddNullToObject(o, "exit") != NULL;
  if (c->signum == 0)
    return cJSON_AddNumberToObject(o, "exit", (double)c->code) != NULL;
  name = sb_signal_name(c->signum);
  return (name != NULL ? cJSON_AddStringToObject(o, "signal", name)
                       : cJSON_AddNumberToObject(o, "signal", c->signum)) != NULL;
}

static bool add_rule(cJSON *o, const cli_call *c) {
  if (c->rule >= 0)
    return cJSON_AddNumberToObject(o, "rule", c->rule) != NULL;
  if (c->rule == CLI_RULE_DEFAULT)
    return cJSON_AddStringToObject(o, "rule", "default") != NULL;
  return cJSON_AddNullToObject(o, "rule") != NULL;
}

static bool fill(cJSON *o, const cli_call *c, const sb_call *call, sb_close_reason why,
                 uint64_t end_ns) {
  cJSON *cwd =
      call->cwd != NULL ? bytes_json(call->cwd, strlen(call->cwd)) : cJSON_CreateNull();
  if (cwd == NULL)
    return false;
  return cJSON_AddNumberToObject(o, "ts", (double)c->start_ns / 1e9) != NULL &&
         cJSON_AddNumberToObject(o, "pid", (double)call->pid) != NULL &&
         cJSON_AddNumberToObject(o, "ppid", (double)call->ppid) != NULL &&
         add_strings(o, "argv", call->argc, call->argv) &&
         cJSON_AddItemToObject(o, "cwd", cwd) &&
         /* The library never hands out SOCKETBRIDGE_TOKEN: not here either. */
         add_strings(o, "env", call->envc, call->env) &&
         cJSON_AddStringToObject(o, "action", c->action) != NULL && add_rule(o, c) &&
         add_stream(o, "stdin", &c->io[0]) && add_stream(o, "stdout", &c->io[1]) &&
         add_stream(o, "stderr", &c->io[2]) && add_status(o, c) &&
         cJSON_AddNumberToObject(o, "duration_ms",
                                 (double)(end_ns - c->start_mono_ns) / 1e6) != NULL &&
         cJSON_AddStringToObject(o, "close_reason", sb_close_reason_name(why)) != NULL &&
         (c->error == NULL || cJSON_AddStringToObject(o, "error", c->error) != NULL);
}

char *cli_call_json(const cli_call *c, const sb_call *call, sb_close_reason why) {
  cJSON *o = cJSON_CreateObject();
  char *line = NULL;
  if (o != NULL && fill(o, c, call, why, uv_hrtime()))
    line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return line;
}
