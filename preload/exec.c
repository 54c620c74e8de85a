/* SPDX-License-Identifier: MIT */
/* exec.c - libsocketbridge-exec.so, which `socketbridge compile-db` puts in
 * LD_PRELOAD of the build it records.
 *
 * PATH shims catch a compiler run by its name. A compiler run by its path
 * (CMake always calls /usr/bin/cc so) never looks at PATH: here, an exec of
 * a path whose basename is a compiler's (compiler.c) becomes an exec of the
 * stub ($SOCKETBRIDGE_STUB in the new program's environment), with that
 * path as argv[0]. The stub then connects, is recorded, and is told to exec
 * that same path: the build goes on as it would have.
 *
 * Covered: execve, execv, execl, execle, posix_spawn, and the PATH-searching
 * variants (execvp, execvpe, execlp, posix_spawnp) when given a path (a
 * name is found on PATH, where the shims are). Not covered: static
 * programs (LD_PRELOAD does not apply to them; their execs by name still
 * reach the shims), a raw execve syscall, execveat/fexecve. Nothing else
 * changes: a call that is not redirected goes to the C library as it was. */
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"
/* lib/env.c is compiled in: its lookups are libc-only and allocate
 * nothing, as the exec paths here must. */
#include "proto.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

/* The stub's own execs are never redirected: a dynamically linked stub
 * (sanitized builds) gets this library too, and its exec of the real
 * compiler would come back to it. */
static bool in_stub;

static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

__attribute__((constructor)) static void init(void) {
  const char *stub = getenv("SOCKETBRIDGE_STUB");
  in_stub = stub != NULL && same_file("/proc/self/exe", stub);
}

/* The stub to run instead of path, or NULL to run path itself: path names
 * a compiler that is not the stub (a shim is a link to it). */
static const char *redirect(const char *path, char *const envp[]) {
  const char *stub;
  if (in_stub || strchr(path, '/') == NULL || !cli_is_compiler_name(cli_basename(path)))
    return NULL;
  stub = sb__env_value(envp, SB_ENV_STUB);
  if (stub == NULL || stub[0] != '/' || same_file(path, stub))
    return NULL;
  return stub;
}

static size_t count(char *const argv[]) {
  size_t n = 0;
  while (argv != NULL && argv[n] != NULL)
    n++;
  return n;
}

/* Fills out (room for count(argv) + 2) with argv, argv[0] replaced by path. */
static char **with_argv0(char **out, const char *path, char *const argv[]) {
  size_t n = count(argv);
  out[0] = (char *)path;
  for (size_t i = 1; i < n; i++)
    out[i] = argv[i];
  out[n > 0 ? n : 1] = NULL;
  return out;
}

#define REAL(name) ((name##_fn)dlsym(RTLD_NEXT, #name))

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*posix_spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                              const posix_spawnattr_t *, char *const[], char *const[]);

/* No malloc on the exec paths: a vfork child may call them. The argv
 * copies live on the stack (what execve accepts fits). */
EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  const char *stub = redirect(path, envp);
  if (stub == NULL)
    return REAL(execve)(path, argv, envp);
  char *args[count(argv) + 2];
  return REAL(execve)(stub, with_argv0(args, path, argv), envp);
}

EXPORT int execv(const char *path, char *const argv[]) {
  return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
  if (strchr(file, '/') != NULL)
    return execve(file, argv, envp);
  return REAL(execvpe)(file, argv, envp);
}

EXPORT int execvp(const char *file, char *const argv[]) {
  return execvpe(file, argv, environ);
}

/* execl, execle, execlp: the variadic forms, gathered into an argv. */
#define GATHER(first, ap, args)                                                          \
  size_t n_ = 1;                                                                         \
  va_start(ap, first);                                                                   \
  while (va_arg(ap, char *) != NULL)                                                     \
    n_++;                                                                                \
  va_end(ap);                                                                            \
  char *args[n_ + 1];                                                                    \
  va_start(ap, first);                                                                   \
  args[0] = (char *)(first);                                                             \
  for (size_t i_ = 1; i_ <= n_; i_++)                                                    \
    args[i_] = va_arg(ap, char *);

EXPORT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  GATHER(arg, ap, args)
  va_end(ap);
  return execve(path, args, environ);
}

EXPORT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  GATHER(arg, ap, args)
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, args, envp);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  GATHER(arg, ap, args)
  va_end(ap);
  return execvpe(file, args, environ);
}

static int spawn(posix_spawn_fn real, pid_t *pid, const char *path,
                 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                 char *const argv[], char *const envp[]) {
  const char *stub = redirect(path, envp);
  if (stub == NULL)
    return real(pid, path, fa, attr, argv, envp);
  char *args[count(argv) + 2];
  return real(pid, stub, fa, attr, with_argv0(args, path, argv), envp);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[],
                       char *const envp[]) {
  return spawn(REAL(posix_spawn), pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file,
                        const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[],
                        char *const envp[]) {
  typedef posix_spawn_fn posix_spawnp_fn;
  if (strchr(file, '/') != NULL)
    return spawn(REAL(posix_spawn), pid, file, fa, attr, argv, envp);
  return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
}
