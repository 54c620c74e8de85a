/* SPDX-License-Identifier: MIT */
/* compiledb.c - `socketbridge compile-db`: runs a build under `run`, every
 * compiler call recorded and then exec'd in place, and writes
 * compile_commands.json from the records (compdb.c).
 *
 * Two mechanisms catch the compilers, as docs/compile-db.md says: shims
 * first on PATH for every compiler name found on PATH (a call by name), and
 * libsocketbridge-exec.so in LD_PRELOAD (a call by path, as CMake makes:
 * preload/exec.c). The rules are one: exec argv[0] with its arguments,
 * found past the shims and the stub. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compdb.h"
#include "compiler.h"
#include "proto.h"

extern char **environ;

#define USAGE                                                                            \
  "usage: socketbridge compile-db [--output FILE] [--append] [--record FILE] "           \
  "[--transport tcp|unix] [--] BUILD [ARG...]\n"                                         \
  "       socketbridge compile-db [--output FILE] [--append] --from-record FILE"

/* Every call is the real program, exec'd in place once recorded. */
static const char exec_rules[] =
    "{\"rules\": [{\"exec\": {\"argv\": [\"{0}\", \"{@}\"]}}]}\n";
/* Shimmed even when not on PATH: a build may add them to it. */
static const char *const base_names[] = {"cc", "c++", "gcc", "g++", "clang", "clang++"};
#define MAX_NAMES 512

typedef struct cdb_options {
  const char *output;      /* compile_commands.json */
  bool append;             /* merge with what output holds */
  const char *record;      /* --record: kept; NULL: a temporary one */
  const char *from_record; /* convert this record, run nothing */
  const char *transport;   /* passed to run, or NULL */
  char **build;            /* the command, or NULL */
} cdb_options;

static int usage_error(const char *what, const char *arg) {
  cli_error("compile-db: %s%s%s\n" USAGE, what, arg ? ": " : "", arg ? arg : "");
  return -1;
}

static int parse(int argc, char **argv, cdb_options *o) {
  *o = (cdb_options){.output = "compile_commands.json"};
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    const char **value = strcmp(a, "--output") == 0        ? &o->output
                         : strcmp(a, "--record") == 0      ? &o->record
                         : strcmp(a, "--from-record") == 0 ? &o->from_record
                         : strcmp(a, "--transport") == 0   ? &o->transport
                                                           : NULL;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "--append") == 0) {
      o->append = true;
    } else if (value == NULL) {
      return usage_error("unknown option", a);
    } else if (i + 1 >= argc || argv[i + 1][0] == '\0') {
      return usage_error("missing a value after", a);
    } else {
      *value = argv[++i];
    }
  }
  if (i < argc)
    o->build = argv + i;
  if ((o->build == NULL) == (o->from_record == NULL))
    return usage_error(
        o->build ? "--from-record runs no build" : "missing the build command", NULL);
  if (o->from_record != NULL && o->record != NULL)
    return usage_error("--record goes with a build, not --from-record", NULL);
  return 0;
}

/* The preload library: next to socketbridge (a build tree), else where
 * it is installed relative to it. */
static char *find_preload(void) {
  static const char *const rels[] = {SB_PRELOAD_NAME, SB_BINDIR_TO_PRELOAD};
  for (size_t i = 0; i < 2; i++) {
    char *p = cli_exe_relative(rels[i]);
    if (p != NULL && access(p, R_OK) == 0)
      return p;
    free(p);
  }
  cli_error("compile-db: no " SB_PRELOAD_NAME " next to socketbridge nor at %s",
            SB_BINDIR_TO_PRELOAD);
  return NULL;
}

static bool listed(char **names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      return true;
  return false;
}

/* The compiler names to shim: the usual ones, and every compiler name
 * (x86_64-linux-gnu-gcc-12, clang-14...) an executable on PATH has. */
static size_t compiler_names(char **names) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof base_names / sizeof base_names[0]; i++)
    names[n++] = strdup(base_names[i]);
  const char *path = getenv("PATH");
  char *copy = strdup(path != NULL ? path : SB_DEFAULT_PATH), *save = NULL;
  for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir != NULL;
       dir = strtok_r(NULL, ":", &save)) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < MAX_NAMES)
      if (cli_is_compiler_name(e->d_name) && !listed(names, n, e->d_name))
        names[n++] = strdup(e->d_name);
    if (d != NULL)
      closedir(d);
  }
  free(copy);
  names[n] = NULL;
  return n;
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "we");
  int ok = f != NULL && fputs(text, f) >= 0;
  if (f != NULL && fclose(f) != 0)
    ok = 0;
  if (!ok)
    cli_error("compile-db: %s: %s", path, strerror(errno));
  return ok ? 0 : -1;
}

/* Runs the build under `run` as the command line would; its exit status. */
/* The arguments of `socketbridge run` for the build: a --shim per compiler
 * name, the rules, the record, env (LD_PRELOAD), then the build's command.
 * The array is malloc'd, its strings borrowed; NULL when out of memory. */
static char **run_args(const cdb_options *o, char **names, size_t n,
                       const char *rules_path, const char *record, char *env, int *argc) {
  size_t nb = 0, ac = 0;
  while (o->build[nb] != NULL)
    nb++;
  char **args = calloc(2 * n + 16 + nb + 1, sizeof *args);
  if (args == NULL)
    return NULL;
  args[ac++] = "run";
  for (size_t i = 0; i < n; i++)
    if (names[i] != NULL) {
      args[ac++] = "--shim";
      args[ac++] = names[i];
    }
  args[ac++] = "--rules";
  args[ac++] = (char *)rules_path;
  args[ac++] = "--record";
  args[ac++] = (char *)record;
  args[ac++] = "--env";
  args[ac++] = env;
  if (o->transport != NULL) {
    args[ac++] = "--transport";
    args[ac++] = (char *)o->transport;
  }
  args[ac++] = "--";
  memcpy(args + ac, o->build, (nb + 1) * sizeof *args);
  *argc = (int)(ac + nb);
  return args;
}

static int run_build(const cdb_options *o, const char *rules_path, const char *record,
                     const char *preload) {
  char *names[MAX_NAMES + 1];
  size_t n = compiler_names(names);
  char env[PATH_MAX * 2];
  const char *old = getenv("LD_PRELOAD");
  int status = CLI_EXIT_FAILURE, argc = 0;
  cli_options opts;
  char err[CLI_ERR_MAX];

  snprintf(env, sizeof env, "LD_PRELOAD=%s%s%s", preload, old && *old ? ":" : "",
           old && *old ? old : "");
  char **args = run_args(o, names, n, rules_path, record, env, &argc);
  if (args == NULL) {
    cli_error("compile-db: out of memory");
  } else if (cli_parse_run(argc, args, environ, &opts, err) < 0) {
    fprintf(stderr, "%s\n", err);
  } else {
    status = cli_run(&opts);
    cli_options_free(&opts);
  }
  free(args);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  return status;
}

/* Writes output from record (and, with --append, what output held). */
static int convert(const cdb_options *o, const char *record) {
  cJSON *entries = cJSON_CreateArray();
  size_t skipped = 0;
  int r = entries != NULL ? 0 : -1;
  if (r == 0 && o->append)
    r = cli_compdb_load(entries, o->output);
  if (r == 0)
    r = cli_compdb_add_records(entries, record, &skipped);
  if (r == 0)
    r = cli_compdb_write(entries, o->output);
  if (skipped > 0)
    cli_error("compile-db: %zu calls left out: argv, env or cwd not UTF-8", skipped);
  cJSON_Delete(entries);
  return r;
}

int cli_compile_db(int argc, char **argv) {
  cdb_options o;
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    puts(USAGE);
    return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
  }
  if (parse(argc, argv, &o) < 0)
    return CLI_EXIT_FAILURE;
  if (o.from_record != NULL)
    return convert(&o, o.from_record) == 0 ? 0 : CLI_EXIT_FAILURE;

  char *preload = find_preload();
  const char *tmp = getenv("TMPDIR");
  char dir[PATH_MAX], rules_path[PATH_MAX + 16], record[PATH_MAX + 16];
  int status = CLI_EXIT_FAILURE;
  if (preload == NULL)
    return CLI_EXIT_FAILURE;
  snprintf(dir, sizeof dir, "%s/socketbridge-compile-db.XXXXXX",
           tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    cli_error("compile-db: cannot create a directory %s: %s", dir, strerror(errno));
    free(preload);
    return CLI_EXIT_FAILURE;
  }
  snprintf(rules_path, sizeof rules_path, "%s/rules.json", dir);
  snprintf(record, sizeof record, "%s/record.jsonl", dir);
  if (write_file(rules_path, exec_rules) == 0) {
    status = run_build(&o, rules_path, o.record != NULL ? o.record : record, preload);
    /* The database is written whatever the build's status, as Bear does:
     * what compiled is there. A run that did not start has no record. */
    if (access(o.record != NULL ? o.record : record, F_OK) == 0 &&
        convert(&o, o.record != NULL ? o.record : record) < 0)
      status = CLI_EXIT_FAILURE;
  }
  unlink(rules_path);
  unlink(record);
  rmdir(dir);
  free(preload);
  return status;
}
