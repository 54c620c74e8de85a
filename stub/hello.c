/* SPDX-License-Identifier: MIT */
/* hello.c - who the stub is: the first frame it sends.
 *
 * argv and env go out byte for byte as the kernel handed them to us (lib/
 * escapes what is not UTF-8); the encoded frame holds the token, so the
 * caller wipes it once sent. */
#include "stub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

/* Paths longer than this are not worth reporting (the kernel's own limit
 * for one path is 4096; getcwd can exceed it, in deep trees). */
#define STUB_PATH_CAP (1u << 20)

/* The environment without SOCKETBRIDGE_TOKEN (the supervisor issued it and
 * must never see it echoed back), and without entries that hold no '=',
 * which execve() allows but the protocol cannot carry. The strings are
 * environ's own: only the vector is allocated. */
static void env_for_hello(sb_strv *out) {
  size_t n = 0;
  for (char **e = environ; *e != NULL; e++)
    n++;
  out->v = malloc((n + 1) * sizeof *out->v);
  if (out->v == NULL)
    stub_fail("out of memory");
  out->n = 0;
  for (char **e = environ; *e != NULL; e++)
    if (sb__env_has_value(*e) && !sb__env_is(*e, SB_ENV_TOKEN))
      out->v[out->n++] = *e;
  out->v[out->n] = NULL;
}

/* getcwd into a buffer that grows until the path fits; NULL when there is
 * no path to give (a deleted directory: ENOENT). */
static char *current_dir(void) {
  for (size_t cap = 256; cap <= STUB_PATH_CAP; cap *= 2) {
    char *buf = malloc(cap);
    if (buf == NULL)
      return NULL;
    if (getcwd(buf, cap) != NULL)
      return buf;
    free(buf);
    if (errno != ERANGE)
      return NULL;
  }
  return NULL;
}

/* The path we were started by: execve's pathname (AT_EXECFN, on our
 * stack already), made absolute against cwd; for a shim, the shim's path.
 * Not /proc/self/exe: a new process's first look at /proc costs it more
 * than the rest of its hello (docs/performance.md). NULL when unknown. */
static char *own_exe(const char *cwd) {
  const char *fn = (const char *)getauxval(AT_EXECFN);
  if (fn == NULL || *fn == '\0')
    return NULL;
  if (fn[0] == '/')
    return strdup(fn);
  if (cwd == NULL)
    return NULL;
  while (fn[0] == '.' && fn[1] == '/')
    fn += 2;
  size_t c = strlen(cwd), n = strlen(fn);
  char *buf = malloc(c + n + 2);
  if (buf == NULL)
    return NULL;
  memcpy(buf, cwd, c);
  buf[c] = '/';
  memcpy(buf + c + (c == 0 || cwd[c - 1] != '/'), fn, n + 1);
  return buf;
}

void stub_hello_encode(const sb_config *cfg, int argc, char **argv, unsigned tty,
                       uint8_t **frame, size_t *len) {
  sb_msg m;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_HELLO;
  sb_hello *h = &m.u.hello;
  h->version = SB_PROTOCOL_VERSION;
  h->min_version = SB_PROTOCOL_MIN_VERSION;
  memcpy(h->token, cfg->token, sizeof h->token);
  h->pid = getpid();
  h->ppid = getppid();
  h->argv.v = argv;
  h->argv.n = argc > 0 ? (size_t)argc : 0;
  env_for_hello(&h->env);
  h->cwd = current_dir();
  h->exe = own_exe(h->cwd);
  h->tty = tty;
  /* Also says we speak `pty`: a delegated program may get a terminal. */
  h->has_winsize = tty != 0 && stub_tty_size(&h->winsize);

  /* Not max_bytes: whatever execve(2) took must pass (SB_CTL_MAX_BYTES). */
  uint32_t bound = cfg->max_bytes > SB_CTL_MAX_BYTES ? cfg->max_bytes : SB_CTL_MAX_BYTES;
  int r = sb_msg_encode(&m, bound, frame, len);
  explicit_bzero(h->token, sizeof h->token);
  free(h->env.v);
  free(h->cwd);
  free(h->exe);
  if (r == SB_EMSGSIZE)
    stub_fail("hello (argv and environment) exceeds %u bytes", bound);
  if (r < 0)
    stub_fail("cannot encode hello: %s", sb_strerror(r));
}
