/* SPDX-License-Identifier: MIT */
/* json_bytes.c - byte strings (argv, env, paths) in cJSON trees: a string
 * when the bytes are UTF-8, else {"base64": "..."} (base64.c). */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

cJSON *sb__json_bytes_new(const char *s) {
  size_t n = strlen(s);
  if (sb_utf8_valid((const uint8_t *)s, n))
    return cJSON_CreateString(s);

  cJSON *obj = NULL;
  char *b64 = malloc(sb__b64_encoded_len(n) + 1);
  if (b64 == NULL)
    goto out;
  sb__b64_encode((const uint8_t *)s, n, b64);
  obj = cJSON_CreateObject();
  if (obj != NULL && cJSON_AddStringToObject(obj, "base64", b64) == NULL) {
    cJSON_Delete(obj);
    obj = NULL;
  }
out:
  free(b64);
  return obj;
}

static int bad_bytes(const char *path, sb_diag *diag) {
  return sb_diag_set(diag, SB_EBADMSG, "%s: expected a string or {\"base64\": ...}",
                     path);
}

static int bytes_from_b64(const cJSON *item, const char *path, char **out,
                          sb_diag *diag) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(item, "base64");
  if (!cJSON_IsString(b))
    return bad_bytes(path, diag);

  size_t len = strlen(b->valuestring);
  char *s = malloc(len / 4 * 3 + 1);
  if (s == NULL)
    return SB_ENOMEM;
  ptrdiff_t n = sb__b64_decode(b->valuestring, len, (uint8_t *)s);
  if (n < 0) {
    free(s);
    return sb_diag_set(diag, SB_EBADMSG, "%s.base64: not padded RFC 4648 base64", path);
  }
  if (memchr(s, '\0', (size_t)n) != NULL) {
    free(s);
    return sb_diag_set(diag, SB_EBADMSG, "%s.base64: decodes to bytes with a NUL", path);
  }
  s[n] = '\0';
  *out = s;
  return 0;
}

int sb__json_bytes_get(const cJSON *item, const char *path, char **out, sb_diag *diag) {
  *out = NULL;
  if (cJSON_IsString(item)) {
    /* The payload check already refused \u0000, so the string is whole. */
    *out = strdup(item->valuestring);
    return *out != NULL ? 0 : SB_ENOMEM;
  }
  if (cJSON_IsObject(item))
    return bytes_from_b64(item, path, out, diag);
  return bad_bytes(path, diag);
}
