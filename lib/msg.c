/* msg.c - control messages: names, the payload checks before parsing, freeing.
 * The members of each message are read in msg_parse.c. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [SB_MSG_HELLO] = "hello",   [SB_MSG_WELCOME] = "welcome",
    [SB_MSG_REJECT] = "reject", [SB_MSG_EXIT] = "exit",
    [SB_MSG_SIGNAL] = "signal", [SB_MSG_STREAM_ERROR] = "stream_error",
    [SB_MSG_EXEC] = "exec",     [SB_MSG_RUN] = "run",
    [SB_MSG_EXITED] = "exited",
};

static const char *const reason_names[] = {
    [SB_REASON_BAD_TOKEN] = "bad_token", [SB_REASON_VERSION] = "version",
    [SB_REASON_TOO_LARGE] = "too_large", [SB_REASON_NOT_ALLOWED] = "not_allowed",
    [SB_REASON_BUSY] = "busy",           [SB_REASON_TIMEOUT] = "timeout",
    [SB_REASON_PROTOCOL] = "protocol",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *sb_msg_type_name(sb_msg_type t) {
  return ((size_t)t < COUNT(type_names)) ? type_names[t] : NULL;
}

const char *sb_reason_name(sb_reason r) {
  return ((size_t)r < COUNT(reason_names)) ? reason_names[r] : NULL;
}

sb_reason sb_reason_from_name(const char *name) {
  for (size_t i = 1; name != NULL && i < COUNT(reason_names); i++)
    if (strcmp(reason_names[i], name) == 0)
      return (sb_reason)i;
  return 0;
}

/* ---- the whole payload ------------------------------------------------ */

static bool is_json_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int parse_json(const uint8_t *payload, size_t len, cJSON **root, sb_diag *diag) {
  const char *end = NULL;
  int r;

  if (len == 0)
    return sb_diag_set(diag, SB_EBADMSG, "control message: empty payload");
  if ((r = sb__json_precheck(payload, len, diag)) < 0)
    return r;
  *root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, false);
  if (*root == NULL) {
    size_t at = end != NULL ? (size_t)((const uint8_t *)end - payload) : 0;
    return sb_diag_set(
        diag, SB_EBADMSG,
        "control message: invalid JSON (or nested deeper than %d) at offset "
        "%zu",
        CJSON_NESTING_LIMIT, at);
  }
  size_t at = (size_t)((const uint8_t *)end - payload);
  while (at < len && is_json_space(payload[at]))
    at++;
  if (at < len)
    return sb_diag_set(diag, SB_EBADMSG,
                       "control message: data after the JSON value at offset %zu", at);
  if (!cJSON_IsObject(*root))
    return sb_diag_set(diag, SB_EBADMSG, "control message: not a JSON object");
  return 0;
}

int sb_msg_parse(const uint8_t *payload, size_t len, sb_msg *out, sb_diag *diag) {
  cJSON *root = NULL;

  memset(out, 0, sizeof *out);
  int r = parse_json(payload, len, &root, diag);
  if (r < 0)
    goto out;

  r = sb__msg_parse_object(root, out, diag);

out:
  cJSON_Delete(root);
  if (r < 0)
    sb_msg_free(out);
  return r;
}

void sb_msg_free(sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    sb_strv_free(&m->u.hello.argv);
    sb_strv_free(&m->u.hello.env);
    free(m->u.hello.cwd);
    free(m->u.hello.exe);
    break;
  case SB_MSG_REJECT:
    free(m->u.reject.message);
    break;
  case SB_MSG_STREAM_ERROR:
    free(m->u.stream_error.message);
    break;
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    sb_strv_free(&m->u.launch.argv);
    sb_strv_free(&m->u.launch.set);
    sb_strv_free(&m->u.launch.unset);
    free(m->u.launch.path);
    free(m->u.launch.cwd);
    break;
  default:
    break;
  }
  /* A hello holds a token; zeroing clears it from memory too. */
  explicit_bzero(m, sizeof *m);
}
