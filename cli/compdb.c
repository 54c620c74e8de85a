/* SPDX-License-Identifier: MIT */
/* compdb.c - compile_commands.json entries from the records of a build
 * (--record's JSON Lines), as Bear writes them: one entry per source file a
 * compiler call compiles, {"arguments", "directory", "file", "output"}.
 *
 * A compilation is a call of a compiler (compiler.c) with at least one
 * source file that does not stop before compiling (-E, -M, -MM, queries
 * like --version) and does not read stdin. Its arguments are the compiler's
 * path as it was run (a shim's found past the shims, as the stub did),
 * the flags in their order less the sources, -o and the dependency-file
 * flags (-MD, -MMD, -MP, -MF/-MT/-MQ and their values), "-c" first where
 * the call also linked, then "-o OUTPUT" and the source. An entry that
 * repeats the directory, file and output of an earlier one is left out. */
#include "compdb.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "compiler.h"
#include "proto.h"

/* One call as the record has it. */
typedef struct cli_compdb_call {
  char *const *argv;
  size_t argc;
  char *const *env; /* "NAME=VALUE": PATH, SOCKETBRIDGE_SHIMS, SOCKETBRIDGE_STUB */
  size_t envc;
  const char *cwd;
} cli_compdb_call;

/* Options whose value is the next argument. */
static const char *const takes_value[] = {
    "-o",
    "-x",
    "-I",
    "-D",
    "-U",
    "-include",
    "-imacros",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isysroot",
    "--sysroot",
    "-L",
    "-l",
    "-Xlinker",
    "-Xassembler",
    "-Xpreprocessor",
    "-Xclang",
    "-T",
    "-u",
    "-z",
    "-e",
    "-aux-info",
    "-arch",
    "-target",
    "--param",
    "-MF",
    "-MT",
    "-MQ",
    "-G",
    "-A",
    "-B",
    "-wrapper",
};

/* Dependency-file flags: dropped, with the value of those that take one. */
static const char *const dep_flags[] = {"-MD", "-MMD", "-MP", "-MG", "-MF", "-MT", "-MQ"};

/* Flags after which nothing is compiled. */
static const char *const no_compile[] = {
    "-E",           "-M",           "-MM",           "--version",
    "-dumpversion", "-dumpmachine", "-dumpspecs",    "-dumpfullversion",
    "--help",       "-###",         "-fsyntax-only", "--target-help",
};

static const char *const source_ext[] = {
    "c",   "i",   "ii",  "cc",  "cp",  "cxx", "cpp", "CPP", "c++", "C",
    "m",   "mi",  "mm",  "M",   "mii", "s",   "S",   "sx",  "cu",  "f",
    "for", "ftn", "F",   "FOR", "fpp", "FPP", "f90", "f95", "f03", "f08",
    "F90", "F95", "F03", "F08", "go",  "d",   "ads", "adb",
};

#define IN(list, s) in_list(list, sizeof list / sizeof list[0], s)

static bool in_list(const char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

static bool is_source(const char *arg) {
  const char *dot = strrchr(cli_basename(arg), '.');
  return arg[0] != '-' && dot != NULL && IN(source_ext, dot + 1);
}

static bool no_compile_flag(const char *arg) {
  return IN(no_compile, arg) || strncmp(arg, "-print-", 7) == 0;
}

/* dir/path, or path when it is absolute. */
static char *absolute(const char *dir, const char *path) {
  char *out;
  if (path[0] == '/' || dir == NULL)
    return strdup(path);
  size_t a = strlen(dir), b = strlen(path);
  out = malloc(a + b + 2);
  if (out != NULL)
    snprintf(out, a + b + 2, "%s/%s", dir, path);
  return out;
}

static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* True when path is in one of the colon-separated dirs (a shim's path:
 * the directory may be gone by the time the records are read). */
static bool in_dirs(const char *path, const char *dirs) {
  size_t dirlen = (size_t)(cli_basename(path) - path);
  while (dirs != NULL && *dirs != '\0' && dirlen > 1) {
    size_t n = strcspn(dirs, ":");
    if (n == dirlen - 1 && strncmp(dirs, path, n) == 0)
      return true;
    dirs += n + (dirs[n] == ':');
  }
  return false;
}

/* The program the call ran as its compiler, into out: argv[0] as it was,
 * unless it is the stub (a shim, by name or path): then what the stub
 * found past the shims, as exec does. */
static void compiler_path(const cli_compdb_call *c, char out[PATH_MAX]) {
  const char *stub = sb__env_value_n(c->env, c->envc, SB_ENV_STUB, SB__ENV_FIRST);
  const char *shims = sb__env_value_n(c->env, c->envc, SB_ENV_SHIMS, SB__ENV_FIRST);
  const char *name = c->argv[0];
  if (strchr(name, '/') != NULL) {
    if (!in_dirs(name, shims) && (stub == NULL || !same_file(name, stub))) {
      snprintf(out, PATH_MAX, "%s", name);
      return;
    }
    name = cli_basename(name);
  }
  if (sb_path_find(name, sb__env_value_n(c->env, c->envc, "PATH", SB__ENV_FIRST), shims,
                   stub, out, PATH_MAX) < 0)
    snprintf(out, PATH_MAX, "%s", c->argv[0]);
}

static bool has_entry(const cJSON *entries, const char *dir, const char *file,
                      const char *output) {
  const cJSON *e;
  cJSON_ArrayForEach(e, entries) {
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(e, "directory"));
    const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(e, "file"));
    const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(e, "output"));
    if (d != NULL && f != NULL && strcmp(d, dir) == 0 && strcmp(f, file) == 0 &&
        (o == NULL ? output == NULL : output != NULL && strcmp(o, output) == 0))
      return true;
  }
  return false;
}

/* One entry: arguments = compiler, [-c], flags, [-o output], source. */
static int add_entry(cJSON *entries, const char *compiler, bool add_c, char *const *flags,
                     size_t nflags, const char *output, const cli_compdb_call *c,
                     const char *source) {
  char *file = absolute(c->cwd, source), *out = output ? absolute(c->cwd, output) : NULL;
  cJSON *e = NULL, *args;
  int r = -ENOMEM;
  if (file == NULL || (output != NULL && out == NULL))
    goto done;
  r = 0;
  if (has_entry(entries, c->cwd, file, out))
    goto done;
  r = -ENOMEM;
  if ((e = cJSON_CreateObject()) == NULL ||
      (args = cJSON_AddArrayToObject(e, "arguments")) == NULL)
    goto done;
  cJSON_AddItemToArray(args, cJSON_CreateString(compiler));
  if (add_c)
    cJSON_AddItemToArray(args, cJSON_CreateString("-c"));
  for (size_t i = 0; i < nflags; i++)
    cJSON_AddItemToArray(args, cJSON_CreateString(flags[i]));
  if (output != NULL) {
    cJSON_AddItemToArray(args, cJSON_CreateString("-o"));
    cJSON_AddItemToArray(args, cJSON_CreateString(output));
  }
  cJSON_AddItemToArray(args, cJSON_CreateString(source));
  cJSON_AddStringToObject(e, "directory", c->cwd);
  cJSON_AddStringToObject(e, "file", file);
  if (out != NULL)
    cJSON_AddStringToObject(e, "output", out);
  if (cJSON_GetArraySize(args) != (int)(nflags + 2 + (add_c ? 1 : 0) + (output ? 2 : 0)))
    goto done;
  cJSON_AddItemToArray(entries, e);
  e = NULL;
  r = 0;
done:
  cJSON_Delete(e);
  free(file);
  free(out);
  return r;
}

/* Appends to entries (a cJSON array) an entry per source file the call
 * compiles; nothing when it is not a compilation. 0 or -ENOMEM. */
static int add_call(cJSON *entries, const cli_compdb_call *c) {
  if (c->argc < 2 || c->cwd == NULL || !cli_is_compiler_name(cli_basename(c->argv[0])))
    return 0;
  char **flags = malloc(c->argc * sizeof *flags),
       **sources = malloc(c->argc * sizeof *sources);
  size_t nflags = 0, nsources = 0;
  const char *output = NULL;
  bool stops = false, compiles_only = false;
  int r = -ENOMEM;
  if (flags == NULL || sources == NULL)
    goto done;
  for (size_t i = 1; i < c->argc; i++) {
    const char *a = c->argv[i];
    bool has_value = IN(takes_value, a) && i + 1 < c->argc;
    if (strcmp(a, "-") == 0 || no_compile_flag(a))
      stops = true;
    else if (strcmp(a, "-c") == 0 || strcmp(a, "-S") == 0)
      compiles_only = true;
    if (strcmp(a, "-o") == 0 && has_value) {
      output = c->argv[++i];
    } else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0' && !has_value) {
      output = a + 2;
    } else if (IN(dep_flags, a) || strncmp(a, "-MF", 3) == 0 ||
               strncmp(a, "-MT", 3) == 0 || strncmp(a, "-MQ", 3) == 0) {
      if (has_value)
        i++; /* its value goes too */
    } else if (is_source(a)) {
      sources[nsources++] = (char *)a;
    } else {
      flags[nflags++] = (char *)a;
      if (has_value)
        flags[nflags++] = c->argv[++i];
    }
  }
  r = 0;
  if (stops || nsources == 0)
    goto done;
  char compiler[PATH_MAX];
  compiler_path(c, compiler);
  for (size_t s = 0; s < nsources && r == 0; s++)
    r = add_entry(entries, compiler, !compiles_only, flags, nflags, output, c,
                  sources[s]);
done:
  free(flags);
  free(sources);
  return r;
}

/* A record's array of strings, into a malloc'd vector (NULL-terminated);
 * false when a member is not a string (bytes that are not UTF-8, which a
 * JSON compilation database cannot hold). */
static bool strings_of(const cJSON *a, char ***out, size_t *n) {
  int len = cJSON_GetArraySize(a);
  *out = NULL;
  *n = 0;
  if (!cJSON_IsArray(a) || (*out = calloc((size_t)len + 1, sizeof **out)) == NULL)
    return false;
  for (int i = 0; i < len; i++) {
    char *s = cJSON_GetStringValue(cJSON_GetArrayItem(a, i));
    if (s == NULL) {
      free(*out);
      *out = NULL;
      return false;
    }
    (*out)[i] = s;
  }
  *n = (size_t)len;
  return true;
}

int cli_compdb_add_records(cJSON *entries, const char *path, size_t *skipped) {
  FILE *f = fopen(path, "re");
  char *line = NULL;
  size_t cap = 0;
  int r = 0;
  if (f == NULL) {
    cli_error("%s: %s", path, strerror(errno));
    return -1;
  }
  for (unsigned lineno = 1; r == 0 && getline(&line, &cap, f) > 0; lineno++) {
    cJSON *rec = cJSON_Parse(line);
    cli_compdb_call c = {0};
    char **argv = NULL, **env = NULL;
    if (rec == NULL) {
      cli_error("%s:%u: not a JSON record", path, lineno);
      r = -1;
    } else if (!strings_of(cJSON_GetObjectItem(rec, "argv"), &argv, &c.argc) ||
               !strings_of(cJSON_GetObjectItem(rec, "env"), &env, &c.envc) ||
               (c.cwd = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "cwd"))) == NULL) {
      ++*skipped;
    } else {
      c.argv = argv;
      c.env = env;
      if (add_call(entries, &c) < 0) {
        cli_error("%s: out of memory", path);
        r = -1;
      }
    }
    free(argv);
    free(env);
    cJSON_Delete(rec);
  }
  free(line);
  fclose(f);
  return r;
}

int cli_compdb_load(cJSON *entries, const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return errno == ENOENT ? 0
                           : (cli_error("--append: %s: %s", path, strerror(errno)), -1);
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  char buf[65536];
  size_t n;
  while (m != NULL && (n = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, n, m);
  fclose(f);
  if (m == NULL || fclose(m) != 0) {
    free(text);
    cli_error("--append: %s: out of memory", path);
    return -1;
  }
  cJSON *old = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsArray(old)) {
    cJSON_Delete(old);
    cli_error("--append: %s: not a JSON array of entries", path);
    return -1;
  }
  cJSON *e;
  while ((e = cJSON_DetachItemFromArray(old, 0)) != NULL)
    cJSON_AddItemToArray(entries, e);
  cJSON_Delete(old);
  return 0;
}

int cli_compdb_write(const cJSON *entries, const char *path) {
  char tmp[PATH_MAX];
  char *text = cJSON_Print(entries);
  FILE *f = NULL;
  int ok;
  if (text == NULL || snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
    free(text);
    cli_error("--output: %s: name too long or out of memory", path);
    return -1;
  }
  /* A new file renamed over the old one: a reader never sees half of it. */
  int fd = mkstemp(tmp);
  ok = fd >= 0 && (f = fdopen(fd, "w")) != NULL && fputs(text, f) >= 0 &&
       fputc('\n', f) != EOF;
  ok = (f != NULL ? fclose(f) == 0 : (fd < 0 || close(fd) == 0)) && ok;
  ok = ok && fchmodat(AT_FDCWD, tmp, 0644, 0) == 0 && rename(tmp, path) == 0;
  if (!ok) {
    cli_error("--output: %s: %s", path, strerror(errno));
    if (fd >= 0)
      unlink(tmp);
  }
  free(text);
  return ok ? 0 : -1;
}
