/* SPDX-License-Identifier: MIT */
/* `socketbridge run --rules/--record/--shim` and `socketbridge shim`, end to
 * end with real tools (git, make, cc, sh) as they run the stub: as an
 * editor, as an ssh command, as PATH shims several shells deep, and with no
 * supervisor at all (the fallback). Every test drives the CLI binary as a
 * user would and judges it by what the child's tree saw (its output, its
 * exit codes, the repository it built) and by the --record file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

/* Each command has its own deadline (finish()); this only bounds a test
 * hung elsewhere (a fifo nobody opens). */
TestSuite(rules, .timeout = 180);

extern char **environ;

/* ---- files in the test's directory ---------------------------------------- */

static void write_bytes(harness *h, const char *name, const char *data, size_t len,
                        mode_t mode) {
  int fd = open(h_path(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  cr_assert(fd >= 0, "create %s: %s", name, strerror(errno));
  cr_assert_eq(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void write_text(harness *h, const char *name, const char *text, mode_t mode) {
  write_bytes(h, name, text, strlen(text), mode);
}

/* Rules are written in C with ' for " so they stay readable; a real '
 * inside them is spelled \u0027, which JSON decodes. */
static const char *write_rules(harness *h, const char *name, const char *squoted) {
  char *json = strdup(squoted);
  for (char *p = json; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  write_text(h, name, json, 0600);
  free(json);
  return h_path(h, name);
}

static void make_dir(harness *h, const char *name) {
  cr_assert_eq(mkdir(h_path(h, name), 0755), 0, "mkdir %s: %s", name, strerror(errno));
}

static void make_fifo(harness *h, const char *name) {
  cr_assert_eq(mkfifo(h_path(h, name), 0600), 0, "mkfifo %s: %s", name, strerror(errno));
}

static bool exists(harness *h, const char *name) {
  return access(h_path(h, name), F_OK) == 0;
}

/* The file's whole content equals want. */
static void assert_file(harness *h, const char *name, const char *want) {
  char *got = h_read(h, name, NULL);
  cr_assert_str_eq(got, want, "%s", name);
  free(got);
}

/* ---- the environment of everything a test runs ----------------------------- */

/* Whether a variable of ours is passed on: not when it would make a run
 * depend on who runs the tests (an outer supervisor's bridge, a git or make
 * of the caller's), nor when the test sets it. */
static bool inherited(const char *e, char *const *extra) {
  static const char *const drop[] = {
      "SOCKETBRIDGE_", "GIT_", "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=",
      "HOME=",         "T=",   "LC_ALL=",    "TMPDIR="};
  for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
    if (strncmp(e, drop[i], strlen(drop[i])) == 0)
      return false;
  size_t len = strcspn(e, "=") + 1;
  for (; extra != NULL && *extra != NULL; extra++)
    if (strncmp(e, *extra, len) == 0)
      return false;
  return true;
}

/* Our environment as inherited() filters it, with a private HOME (git reads
 * its config there) and TMPDIR (where --shim makes its directory), T (the
 * test's directory, for scripts) and extra. free() the array, not its
 * strings. */
static char **child_env(harness *h, char *const *extra) {
  static char home[600], tvar[600], tmp[600];
  size_t n = 0, m = 0, k = 0;
  while (environ[n] != NULL)
    n++;
  while (extra != NULL && extra[m] != NULL)
    m++;
  char **env = calloc(n + m + 6, sizeof *env);
  cr_assert_not_null(env);
  for (size_t i = 0; i < n; i++)
    if (inherited(environ[i], extra))
      env[k++] = environ[i];
  snprintf(home, sizeof home, "HOME=%s/home", h->dir);
  snprintf(tvar, sizeof tvar, "T=%s", h->dir);
  snprintf(tmp, sizeof tmp, "TMPDIR=%s/tmp", h->dir);
  cr_assert(mkdir(tmp + 7, 0700) == 0 || errno == EEXIST, "mkdir %s", tmp + 7);
  env[k++] = home;
  env[k++] = tvar;
  env[k++] = tmp;
  env[k++] = "GIT_CONFIG_NOSYSTEM=1";
  env[k++] = "LC_ALL=C";
  for (size_t i = 0; i < m; i++)
    env[k++] = extra[i];
  return env;
}

/* A HOME for git: who commits, and a branch name without advice. */
static void git_home(harness *h) {
  make_dir(h, "home");
  write_text(h, "home/.gitconfig",
             "[user]\n\tname = Rules Test\n\temail = rules@test.invalid\n"
             "[init]\n\tdefaultBranch = main\n",
             0600);
}

/* ---- running things ---------------------------------------------------------- */

typedef struct result {
  int status;
  char *out, *err;
} result;

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

/* Starts args (looked up in PATH) with stdin from /dev/null, stdout and
 * stderr to "<tag>.out" and "<tag>.err", every signal at its default. */
static pid_t start(harness *h, char *const *args, const char *tag, char *const *extra) {
  char **env = child_env(h, extra);
  pid_t pid = h_proc_start(h, args, NULL, tag, env);
  free(env);
  return pid;
}

/* Waits for pid (killing it at the deadline) and reads what it wrote. */
static void finish(harness *h, pid_t pid, const char *tag, result *r) {
  bool ended = h_wait_reapable(pid, 3 * H_DEADLINE * h_scale());
  if (!ended)
    kill(pid, SIGKILL);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  cr_assert(ended, "%s did not end in time", tag);
  cr_assert(WIFEXITED(st), "%s died by signal %d", tag, WTERMSIG(st));
  r->status = WEXITSTATUS(st);
  char name[64];
  snprintf(name, sizeof name, "%s.out", tag);
  r->out = h_read(h, name, NULL);
  snprintf(name, sizeof name, "%s.err", tag);
  r->err = h_read(h, name, NULL);
}

static void run(harness *h, result *r, char *const *args, char *const *extra) {
  finish(h, start(h, args, "cmd", extra), "cmd", r);
}

/* `socketbridge ARGS...` to its end. */
#define SB(h, r, ...) run((h), (r), (char *[]){SB_TEST_CLI, __VA_ARGS__, NULL}, NULL)

/* `sh -c script` outside any supervisor (setting up repositories...);
 * asserts it succeeds. */
static void sh_ok(harness *h, const char *script) {
  result r;
  run(h, &r, (char *[]){"sh", "-c", (char *)script, NULL}, NULL);
  cr_assert_eq(r.status, 0, "setup failed (%d): %s\n%s", r.status, script, r.err);
  result_free(&r);
}

/* Starts `socketbridge run OPTS... -- sh $T/script.sh` (the script written
 * first: no quoting through argv). */
static pid_t start_script(harness *h, char *const *opts, const char *script) {
  char *args[32];
  size_t n = 0;
  write_text(h, "script.sh", script, 0600);
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  for (; opts != NULL && *opts != NULL; opts++) {
    cr_assert_lt(n, 26u);
    args[n++] = *opts;
  }
  args[n++] = "--";
  args[n++] = "sh";
  args[n++] = (char *)h_path(h, "script.sh");
  args[n] = NULL;
  return start(h, args, "cli", NULL);
}

static void run_script(harness *h, result *r, char *const *opts, const char *script) {
  finish(h, start_script(h, opts, script), "cli", r);
}

/* The run ended as its script did, and socketbridge said nothing. */
static void assert_clean_run(const result *r) {
  cr_assert_eq(r->status, 0, "socketbridge run exited %d; stderr: %s; stdout: %s",
               r->status, r->err, r->out);
  cr_assert_str_empty(r->err, "socketbridge wrote on stderr: %s", r->err);
}

/* stderr is exactly one line, starting with prefix. */
static void assert_one_line(const char *err, const char *prefix) {
  size_t n = strlen(err);
  cr_assert(n > 0 && strchr(err, '\n') == err + n - 1, "not one line: \"%s\"", err);
  cr_assert(strncmp(err, prefix, strlen(prefix)) == 0,
            "\"%s\" does not start with \"%s\"", err, prefix);
}

/* Scripts whose record a test reads end with this call: the call the test
 * checks is then never the child's last act, whose record races with the
 * end of the run (the_call_that_ends_the_child_is_recorded_as_exited).
 * record_read() leaves its line out. */
#define LAST_CALL "\"$SOCKETBRIDGE_STUB\" last-call > /dev/null 2>&1 || :\n"

/* ---- the record ---------------------------------------------------------------- */

typedef struct record {
  cJSON *line[64];
  size_t n;
} record;

static bool is_last_call(const cJSON *o) {
  const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "argv"), 1);
  return cJSON_IsString(a) && strcmp(a->valuestring, "last-call") == 0;
}

/* Parses the --record file (JSON Lines, each a whole object), but for the
 * LAST_CALL. */
static void record_read(harness *h, const char *name, record *rec) {
  char *text = h_read(h, name, NULL), *line = text, *nl;
  rec->n = 0;
  cr_assert(text[0] == '\0' || text[strlen(text) - 1] == '\n', "a partial last line");
  while ((nl = strchr(line, '\n')) != NULL) {
    *nl = '\0';
    cJSON *j = cJSON_Parse(line);
    cr_assert(cJSON_IsObject(j), "not a JSON object: %s", line);
    line = nl + 1;
    if (is_last_call(j)) {
      cJSON_Delete(j);
      continue;
    }
    cr_assert_lt(rec->n, 64u);
    rec->line[rec->n++] = j;
  }
  free(text);
}

static void record_free(record *rec) {
  for (size_t i = 0; i < rec->n; i++)
    cJSON_Delete(rec->line[i]);
}

static const char *str_of(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  cr_assert(cJSON_IsString(v), "\"%s\" is not a string", name);
  return v->valuestring;
}

static double num_of(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", name);
  return v->valuedouble;
}

/* The data of a stream of a call when it is a string (UTF-8). */
static const char *stream_text(const cJSON *o, const char *stream) {
  return str_of(cJSON_GetObjectItemCaseSensitive(o, stream), "data");
}

/* argv[i] of a call, or NULL past its end. */
static const char *arg_of(const cJSON *o, int i) {
  const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "argv"), i);
  cr_assert(v == NULL || cJSON_IsString(v), "argv[%d] is not a string", i);
  return v != NULL ? v->valuestring : NULL;
}

/* The one line of the record whose argv[1] is arg1. */
static const cJSON *call_with(const record *rec, const char *arg1) {
  const cJSON *found = NULL;
  for (size_t i = 0; i < rec->n; i++) {
    const char *a = arg_of(rec->line[i], 1);
    if (a != NULL && strcmp(a, arg1) == 0) {
      cr_assert_null(found, "two calls with argv[1] %s", arg1);
      found = rec->line[i];
    }
  }
  cr_assert_not_null(found, "no call with argv[1] %s", arg1);
  return found;
}

static void assert_exit(const cJSON *call, int code) {
  cr_assert_eq(num_of(call, "exit"), code, "exit");
  cr_assert_null(cJSON_GetObjectItemCaseSensitive(call, "signal"));
}

/* ---- 1. git commit: the editor is the stub ------------------------------------- */

/* A repository with one commit, and a run that commits again with the
 * stub as editor, then says how it went. The message is seeded, so that
 * only the editor's exit status can abort the commit (an editor that
 * leaves the template empty would abort it too). */
static const char commit_script[] =
    "cd \"$T/repo\" || exit 90\n"
    "echo more >> f\n"
    "GIT_EDITOR=\"$SOCKETBRIDGE_STUB\" git commit -q -a -e -m seeded 2> \"$T/git.err\"\n"
    "echo \"commit=$?\"\n"
    "echo \"count=$(git rev-list --count HEAD)\"\n"
    "git log -1 --format=%s\n";

/* The run went well and its script printed want; git's stderr helps when
 * it did not. */
static void assert_git_out(harness *h, const result *r, const char *want) {
  char *git_err = h_read(h, "git.err", NULL);
  assert_clean_run(r);
  cr_assert_str_eq(r->out, want, "git's stderr: %s", git_err);
  free(git_err);
}

static void assert_commit(harness *h, result *r, const char *want) {
  assert_git_out(h, r, want);
  result_free(r);
}

static void commit_setup(harness *h) {
  git_home(h);
  sh_ok(h, "git init -q \"$T/repo\" && cd \"$T/repo\" && echo a > f && git add f && "
           "git commit -q -m first");
}

Test(rules, git_commit_is_aborted_by_an_editor_rule_exiting_1) {
  harness h;
  h_init(&h, NULL);
  commit_setup(&h);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'argv0': 'socketbridge-stub', 'args': ['*COMMIT_EDITMSG']},"
      "            'respond': {'exit': 1}}]}");
  result r;
  run_script(&h, &r, (char *[]){"--rules", (char *)rules, NULL}, commit_script);
  assert_commit(&h, &r, "commit=1\ncount=1\nfirst\n");
  h_fini(&h);
}

Test(rules, git_commit_takes_the_message_a_delegated_editor_writes) {
  harness h;
  h_init(&h, NULL);
  commit_setup(&h);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'argv0': 'socketbridge-stub', 'args': ['*COMMIT_EDITMSG']},"
      "            'delegate': {'argv': ['sh', '-c', 'echo msg from rule > \\\"$1\\\"',"
      "                                  'sh', '{-1}']}}]}");
  result r;
  run_script(&h, &r, (char *[]){"--rules", (char *)rules, NULL}, commit_script);
  assert_commit(&h, &r, "commit=0\ncount=2\nmsg from rule\n");
  h_fini(&h);
}

/* ---- 2. git clone: the ssh command is the stub --------------------------------- */

Test(rules, git_clone_over_ssh_delegated_to_a_local_upload_pack) {
  harness h;
  h_init(&h, NULL);
  git_home(&h);
  sh_ok(&h, "git init -q --bare \"$T/bare.git\" && git init -q \"$T/src\" && "
            "cd \"$T/src\" && echo 1 > f && git add f && git commit -q -m one && "
            "echo 2 > f && git commit -q -a -m two && "
            "git push -q \"$T/bare.git\" main");
  /* git runs `$GIT_SSH_COMMAND host 'git-upload-pack '\''PATH'\'''`; the
   * simple variant keeps -o options (and the probe of -G) out of it. */
  const char *rules =
      write_rules(&h, "rules.json",
                  "{'rules': [{'match': {'argv0': 'socketbridge-stub'},"
                  "            'delegate': {'argv': ['sh', '-c', '{-1}']}}]}");
  result r;
  run_script(
      &h, &r,
      (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"), NULL},
      "GIT_SSH_COMMAND=\"$SOCKETBRIDGE_STUB\" GIT_SSH_VARIANT=simple \\\n"
      "  git clone -q \"host:$T/bare.git\" \"$T/dst\" 2> \"$T/git.err\"\n"
      "echo \"clone=$?\"\n"
      "f=$(git -C \"$T/dst\" fsck --no-progress 2>&1); echo \"fsck=$?:$f\"\n"
      "echo \"count=$(git -C \"$T/dst\" rev-list --count HEAD)\"\n" LAST_CALL);
  assert_git_out(&h, &r, "clone=0\nfsck=0:\ncount=2\n");

  /* One connection, spliced to the end: the upload-pack's exit status. */
  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 1u);
  cr_assert_str_eq(str_of(rec.line[0], "action"), "delegate");
  cr_assert_str_eq(arg_of(rec.line[0], 1), "host");
  cr_assert_str_eq(str_of(rec.line[0], "close_reason"), "exited");
  assert_exit(rec.line[0], 0);
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* ---- 3. make with a cc shim -------------------------------------------------- */

static void c_project(harness *h) {
  make_dir(h, "proj");
  write_text(
      h, "proj/a.c",
      "#include <stdio.h>\nint twice(int x);\n"
      "int main(void) {\n  printf(\"prog says %d\\n\", twice(21));\n  return 0;\n}\n",
      0600);
  write_text(h, "proj/b.c", "int twice(int x) {\n  return 2 * x;\n}\n", 0600);
  write_text(h, "proj/Makefile",
             "prog: a.o b.o\n\tcc -o prog a.o b.o\n"
             "a.o: a.c\n\tcc -c a.c\n"
             "b.o: b.c\n\tcc -c b.c\n",
             0600);
}

/* The record has exactly one call with these arguments after "cc". */
static void assert_cc_call(const record *rec, const char *dir, const char *const *args) {
  unsigned found = 0;
  for (size_t i = 0; i < rec->n; i++) {
    size_t k = 0;
    while (args[k] != NULL && arg_of(rec->line[i], (int)k + 1) != NULL &&
           strcmp(arg_of(rec->line[i], (int)k + 1), args[k]) == 0)
      k++;
    if (args[k] != NULL || arg_of(rec->line[i], (int)k + 1) != NULL)
      continue;
    found++;
    cr_assert_str_eq(arg_of(rec->line[i], 0), "cc");
    cr_assert_str_eq(str_of(rec->line[i], "action"), "exec");
    cr_assert_str_eq(str_of(rec->line[i], "close_reason"), "exec");
    /* As documented: an exec's status is not the supervisor's to know, and
     * no field is named after a jq keyword. */
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec->line[i], "exit")));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(rec->line[i], "end"));
    cr_assert_eq(num_of(rec->line[i], "rule"), 0);
    cr_assert_str_eq(str_of(rec->line[i], "cwd"), dir);
  }
  cr_assert_eq(found, 1, "calls of cc %s ...: %u", args[0], found);
}

Test(rules, make_builds_through_a_cc_shim_that_execs_the_compiler) {
  harness h;
  h_init(&h, NULL);
  c_project(&h);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'argv0': 'cc'}, 'exec': {'argv': ['cc', '{@}']}}]}");
  result r;
  run_script(&h, &r,
             (char *[]){"--shim", "cc", "--rules", (char *)rules, "--record",
                        (char *)h_path(&h, "rec"), NULL},
             "cd \"$T/proj\" && make -s && ./prog\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "prog says 42\n");

  char *dir = realpath(h_path(&h, "proj"), NULL);
  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 3u, "one line per compiler call");
  assert_cc_call(&rec, dir, (const char *[]){"-c", "a.c", NULL});
  assert_cc_call(&rec, dir, (const char *[]){"-c", "b.c", NULL});
  assert_cc_call(&rec, dir, (const char *[]){"-o", "prog", "a.o", "b.o", NULL});
  record_free(&rec);
  free(dir);
  result_free(&r);
  h_fini(&h);
}

/* ---- 3b. the README's recipes, verbatim --------------------------------------- */

/* The n-th (from 0) ```sh block of the README section whose heading line
 * starts with heading. malloc'd. */
static char *readme_block(const char *heading, int n) {
  FILE *f = fopen(SB_TEST_SRCDIR "/README.md", "r");
  cr_assert_not_null(f, "README.md: %s", strerror(errno));
  static char text[1 << 17];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  char *at = strstr(text, heading);
  cr_assert_not_null(at, "README.md has no \"%s\"", heading);
  char *next = strstr(at + 1, "\n#");
  for (int i = 0; i <= n; i++) {
    at = strstr(at, "\n```sh\n");
    cr_assert(at != NULL && (next == NULL || at < next), "%s: no sh block %d", heading,
              i);
    at += 7;
  }
  char *end = strstr(at, "\n```\n");
  cr_assert_not_null(end);
  return strndup(at, (size_t)(end - at) + 1);
}

/* Runs the block in $T/dir with this build's socketbridge first on PATH, as
 * `sh -e`: every command of it must succeed. */
static void run_recipe(harness *h, result *r, const char *dir, const char *block) {
  static char path[4096];
  char *cli = strdup(SB_TEST_CLI), *script;
  *strrchr(cli, '/') = '\0';
  snprintf(path, sizeof path, "PATH=%s:%s", cli, getenv("PATH"));
  cr_assert_gt(asprintf(&script, "cd \"$T/%s\" || exit 90\n%s", dir, block), 0);
  write_text(h, "recipe.sh", script, 0600);
  run(h, r, (char *[]){"sh", "-e", (char *)h_path(h, "recipe.sh"), NULL},
      (char *[]){path, NULL});
  free(script);
  free(cli);
}

/* Every line of a build's record: the compiler or linker exec'd once,
 * nothing called twice (no loop), and jq printed one line for each. */
static void assert_build_record(harness *h, const char *name, const result *r) {
  record rec;
  record_read(h, name, &rec);
  cr_assert_geq(rec.n, 3u, "compiles and a link: %zu calls", rec.n);
  size_t by_path = 0, lines = 0;
  for (size_t i = 0; i < rec.n; i++) {
    const char *a0 = arg_of(rec.line[i], 0), *base = strrchr(a0, '/');
    base = base != NULL ? base + 1 : a0;
    cr_assert(strcmp(base, "cc") == 0 || strcmp(base, "ld") == 0, "called %s", a0);
    by_path += base != a0;
    cr_assert_str_eq(str_of(rec.line[i], "action"), "exec");
    cr_assert_str_eq(str_of(rec.line[i], "close_reason"), "exec");
    cr_assert_eq(num_of(rec.line[i], "ppid") != num_of(rec.line[i], "pid"), true);
    for (size_t k = 0; k < i; k++)
      cr_assert_neq(num_of(rec.line[k], "ppid"), num_of(rec.line[i], "pid"),
                    "call %zu is the exec of call %zu: a loop", i, k);
  }
  cr_assert_gt(by_path, 0u, "gcc's collect2 runs ld by the shim's path");
  for (const char *p = r->out; (p = strstr(p, "{\"cwd\":")) != NULL; p++)
    lines++;
  cr_assert_eq(lines, rec.n + 0u, "jq: %s", r->out);
  record_free(&rec);
}

Test(rules, the_readme_recording_recipe_builds_a_makefile_project) {
  harness h;
  h_init(&h, NULL);
  c_project(&h);
  char *block = readme_block("### Recording a build", 0);
  cr_assert_not_null(strstr(block, "make -j8"), "%s", block);
  result r;
  run_recipe(&h, &r, "proj", block);
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  assert_build_record(&h, "proj/build.jsonl", &r);
  result_free(&r);
  run(&h, &r, (char *[]){(char *)h_path(&h, "proj/prog"), NULL}, NULL);
  cr_assert_str_eq(r.out, "prog says 42\n");
  result_free(&r);
  free(block);
  h_fini(&h);
}

Test(rules, the_readme_recording_recipe_builds_a_cmake_project) {
  harness h;
  h_init(&h, NULL);
  c_project(&h);
  write_text(&h, "proj/CMakeLists.txt",
             "cmake_minimum_required(VERSION 3.13)\nproject(prog C)\n"
             "add_executable(prog a.c b.c)\n",
             0600);
  char *block = readme_block("### Recording a build", 1);
  cr_assert_not_null(strstr(block, "cmake --build"), "%s", block);
  result r;
  run_recipe(&h, &r, "proj", block);
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  assert_build_record(&h, "proj/build.jsonl", &r);
  result_free(&r);
  run(&h, &r, (char *[]){(char *)h_path(&h, "proj/build/prog"), NULL}, NULL);
  cr_assert_str_eq(r.out, "prog says 42\n");
  result_free(&r);
  free(block);
  h_fini(&h);
}

/* The deploy script the README's faking recipe runs: real git for all but
 * push, curl from a fixture. */
static const char deploy_sh[] =
    "#!/bin/sh\n"
    "git init -q repo && cd repo && echo a > f && git add f && git commit -q -m one\n"
    "git push origin main; echo \"push=$?\"\n"
    "curl -s https://api.example.com/v1/status; echo \"curl=$?\"\n"
    "git log --format=%s\n";

Test(rules, the_readme_faking_recipe_fakes_push_and_curl_and_runs_real_git) {
  harness h;
  h_init(&h, NULL);
  git_home(&h);
  make_dir(&h, "site");
  make_dir(&h, "site/fixtures");
  write_text(&h, "site/deploy.sh", deploy_sh, 0700);
  write_text(&h, "site/fixtures/api.json", "{\"status\": \"green\"}\n", 0600);
  char *block = readme_block("### Faking tools", 0);
  result r;
  run_recipe(&h, &r, "site", block);
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_assert_str_eq(r.out, "push=128\n{\"status\": \"green\"}\ncurl=0\none\n");
  cr_assert_str_eq(r.err, "fatal: the remote hung up\n");
  record rec;
  record_read(&h, "site/calls.jsonl", &rec);
  cr_assert_eq(rec.n, 6u, "init, add, commit, push, curl, log: %zu", rec.n);
  assert_exit(call_with(&rec, "push"), 128);
  cr_assert_eq(num_of(call_with(&rec, "push"), "rule"), 0);
  cr_assert_str_eq(str_of(call_with(&rec, "commit"), "action"), "exec");
  record_free(&rec);
  result_free(&r);
  free(block);
  h_fini(&h);
}

Test(rules, the_readme_times_recipe_answers_in_sequence) {
  harness h;
  h_init(&h, NULL);
  make_dir(&h, "seq");
  char *block = readme_block("### Faking tools", 1);
  cr_assert_not_null(strstr(block, "\"times\": 2"), "%s", block);
  result r;
  run_recipe(&h, &r, "seq", block);
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_assert_str_eq(r.out, "ok\n");
  cr_assert_str_eq(r.err, "timeout\ntimeout\n");
  result_free(&r);
  free(block);
  h_fini(&h);
}

/* ---- 4. a shim three shells deep ----------------------------------------------- */

Test(rules, a_shim_is_answered_through_nested_shells) {
  harness h;
  h_init(&h, NULL);
  const char *rules =
      write_rules(&h, "rules.json",
                  "{'rules': [{'match': {'argv0': 'mytool', 'args': ['a', 'b']},"
                  "            'respond': {'stdout': 'scripted\\n', 'exit': 7}}]}");
  result r;
  run_script(&h, &r, (char *[]){"--shim", "mytool", "--rules", (char *)rules, NULL},
             "case $PATH in \"$TMPDIR\"/socketbridge-shims.*) echo shims first;; esac\n"
             "sh -c 'sh -c \"mytool a b\"'\necho \"code=$?\"\n");
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "shims first\nscripted\ncode=7\n");
  /* The run's shim directory went with it. */
  cr_assert_eq(rmdir(h_path(&h, "tmp")), 0, "$TMPDIR: %s", strerror(errno));
  result_free(&r);
  h_fini(&h);
}

/* ---- 5. a shim forwarding to its own name ------------------------------------- */

/* What `git --version` prints here, run directly. */
static char *real_git_version(harness *h) {
  result r;
  run(h, &r, (char *[]){"git", "--version", NULL}, NULL);
  cr_assert_eq(r.status, 0);
  cr_assert(strncmp(r.out, "git version ", 12) == 0, "%s", r.out);
  free(r.err);
  return r.out;
}

static void git_through_own_shim(harness *h, const char *rules_json, const char *action) {
  char *version = real_git_version(h), want[256];
  const char *rules = write_rules(h, "rules.json", rules_json);
  result r;
  run_script(h, &r,
             (char *[]){"--shim", "git", "--rules", (char *)rules, "--record",
                        (char *)h_path(h, "rec"), NULL},
             "git --version\necho \"code=$?\"\n");
  assert_clean_run(&r);
  snprintf(want, sizeof want, "%scode=0\n", version);
  cr_assert_str_eq(r.out, want, "%s", action);

  /* The shim was called, once: it did not find itself again. */
  record rec;
  record_read(h, "rec", &rec);
  cr_assert_eq(rec.n, 1u, "%s: %zu calls", action, rec.n);
  cr_assert_str_eq(str_of(rec.line[0], "action"), action);
  cr_assert_str_eq(arg_of(rec.line[0], 0), "git");
  cr_assert_str_eq(arg_of(rec.line[0], 1), "--version");
  record_free(&rec);
  free(version);
  result_free(&r);
}

Test(rules, a_git_shim_that_execs_git_runs_the_real_one) {
  harness h;
  h_init(&h, NULL);
  git_through_own_shim(
      &h, "{'rules': [{'match': {'argv0': 'git'}, 'exec': {'argv': ['git', '{@}']}}]}",
      "exec");
  h_fini(&h);
}

Test(rules, a_git_shim_that_runs_git_runs_the_real_one) {
  harness h;
  h_init(&h, NULL);
  git_through_own_shim(&h,
                       "{'rules': [{'match': {'argv0': 'git'},"
                       "            'run': {'argv': ['git', '{@}'], 'tee': true}}]}",
                       "run");
  h_fini(&h);
}

/* ---- 5b. nested runs: each shim reaches the run that made it ------------------- */

/* `socketbridge run --shim tool --rules R --record rec -- socketbridge run
 * --transport T INNER... -- sh script.sh`. */
static void run_nested(harness *h, result *r, const char *transport,
                       const char *inner_shim, const char *script) {
  const char *rules = write_rules(
      h, "rules.json", "{'rules': [{'respond': {'stdout': 'outer\\n', 'exit': 3}}]}");
  write_text(h, "script.sh", script, 0600);
  char *args[24];
  size_t n = 0;
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  args[n++] = "--transport";
  args[n++] = (char *)transport;
  args[n++] = "--shim";
  args[n++] = "tool";
  args[n++] = "--rules";
  args[n++] = (char *)rules;
  args[n++] = "--record";
  args[n++] = (char *)h_path(h, "rec");
  args[n++] = "--";
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  args[n++] = "--transport";
  args[n++] = (char *)transport;
  if (inner_shim != NULL) {
    args[n++] = "--shim";
    args[n++] = (char *)inner_shim;
  }
  args[n++] = "--";
  args[n++] = "sh";
  args[n++] = (char *)h_path(h, "script.sh");
  args[n] = NULL;
  finish(h, start(h, args, "cli", NULL), "cli", r);
}

Test(rules, a_nested_run_leaves_the_outer_runs_shims_to_it) {
  harness h;
  h_init(&h, NULL);
  const char *const transports[] = {"tcp", "unix"};
  for (size_t i = 0; i < 2; i++) {
    result r;
    /* By name; by the shim's path with the environment cleared. */
    run_nested(&h, &r, transports[i], NULL,
               "tool a; echo \"code=$?\"\n"
               "env -i \"$(command -v tool)\" b; echo \"code=$?\"\n");
    assert_clean_run(&r);
    cr_assert_str_eq(r.out, "outer\ncode=3\nouter\ncode=3\n", "%s", transports[i]);
    record rec;
    record_read(&h, "rec", &rec);
    cr_assert_eq(rec.n, 2u, "%s: the outer run saw %zu calls", transports[i], rec.n);
    record_free(&rec);
    result_free(&r);

    /* An inner run that shims the name answers it (no rules: exit 0). */
    run_nested(&h, &r, transports[i], "tool", "tool a; echo \"code=$?\"\n");
    assert_clean_run(&r);
    cr_assert_str_eq(r.out, "code=0\n", "%s", transports[i]);
    record_read(&h, "rec", &rec);
    cr_assert_eq(rec.n, 0u, "%s: the outer run saw %zu calls", transports[i], rec.n);
    record_free(&rec);
    result_free(&r);
  }
  h_fini(&h);
}

/* ---- 6. no supervisor: the fallback ----------------------------------------- */

/* A shim dir made by `socketbridge shim`, and the real tool later in PATH. */
static void fallback_setup(harness *h, char path[1200], char shims[600]) {
  result r;
  SB(h, &r, "shim", (char *)h_path(h, "shims"), "tool");
  cr_assert_eq(r.status, 0, "shim: %s", r.err);
  result_free(&r);
  make_dir(h, "bin");
  write_text(h, "bin/tool", "#!/bin/sh\necho \"real tool $*\"\nexit 4\n", 0755);
  snprintf(path, 1200, "PATH=%s:%s:%s", h_path(h, "shims"), h_path(h, "bin"),
           getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  snprintf(shims, 600, "SOCKETBRIDGE_SHIMS=%s", h_path(h, "shims"));
}

static char *const tool_call[] = {"sh", "-c", "tool a b; echo \"code=$?\"", NULL};

Test(rules, without_a_supervisor_the_fallback_execs_the_real_tool) {
  harness h;
  h_init(&h, NULL);
  char path[1200], shims[600];
  fallback_setup(&h, path, shims);
  result r;
  run(&h, &r, tool_call, (char *[]){path, shims, "SOCKETBRIDGE_FALLBACK=exec", NULL});
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "real tool a b\ncode=4\n");
  cr_assert_str_empty(r.err);
  result_free(&r);
  h_fini(&h);
}

/* Without SOCKETBRIDGE_SHIMS the shim dir is not skipped as such: the stub
 * must still pass over itself (the link in it) to find the real tool. */
Test(rules, the_fallback_skips_the_stub_itself_in_path) {
  harness h;
  h_init(&h, NULL);
  char path[1200], shims[600];
  fallback_setup(&h, path, shims);
  result r;
  run(&h, &r, tool_call, (char *[]){path, "SOCKETBRIDGE_FALLBACK=exec", NULL});
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "real tool a b\ncode=4\n");
  cr_assert_str_empty(r.err);
  result_free(&r);
  h_fini(&h);
}

/* The bridge file of a shim directory is read only when no one else could
 * have written or read it; one that is there but malformed is named. */
Test(rules, a_shims_bridge_file_counts_only_when_private_and_is_named_when_bad) {
  harness h;
  h_init(&h, NULL);
  char path[1200], shims[600];
  fallback_setup(&h, path, shims);
  write_text(&h, "shims/.socketbridge-bridge", "SOCKETBRIDGE_PORT=notaport\n", 0600);
  result r;
  run(&h, &r, tool_call, (char *[]){path, shims, NULL});
  cr_assert_str_eq(r.out, "code=125\n");
  assert_one_line(r.err, "socketbridge-stub: ");
  cr_assert_not_null(strstr(r.err, "/shims/.socketbridge-bridge: SOCKETBRIDGE_PORT: "),
                     "%s", r.err);
  result_free(&r);

  cr_assert_eq(chmod(h_path(&h, "shims/.socketbridge-bridge"), 0644), 0);
  run(&h, &r, tool_call, (char *[]){path, shims, NULL});
  cr_assert_str_eq(r.out, "code=125\n");
  cr_assert_str_eq(r.err, "socketbridge-stub: SOCKETBRIDGE_TOKEN is not set\n",
                   "a file others may read is not ours: the environment counts");
  result_free(&r);
  h_fini(&h);
}

Test(rules, without_a_supervisor_or_a_fallback_the_shim_exits_125) {
  harness h;
  h_init(&h, NULL);
  char path[1200], shims[600];
  fallback_setup(&h, path, shims);
  result r;
  run(&h, &r, tool_call, (char *[]){path, shims, NULL});
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "code=125\n");
  assert_one_line(r.err, "socketbridge-stub: ");
  result_free(&r);
  h_fini(&h);
}

/* ---- 6b. loops: a program started for a stub that is the stub again ---------- */

/* A real `tool` in $T/bin, after the run's shim directory on PATH. */
#define TOOL_AFTER_SHIMS                                                                 \
  "mkdir -p \"$T/bin\" && printf '#!/bin/sh\\necho \"real tool $*\"\\n' > "              \
  "\"$T/bin/tool\" "                                                                     \
  "&& chmod +x \"$T/bin/tool\" && PATH=\"${PATH%%:*}:$T/bin:${PATH#*:}\" || exit 90\n"

/* gcc's collect2 runs `ld` by the shim's path, cmake the compiler: {0} is
 * then the shim itself, which must stand for the real program, not the
 * stub again (issue 16: 3.6 GB of record in 10 minutes). */
Test(rules, exec_of_argv0_called_by_the_shims_own_path_runs_the_real_program) {
  harness h;
  h_init(&h, NULL);
  const char *rules =
      write_rules(&h, "rules.json", "{'rules': [{'exec': {'argv': ['{0}', '{@}']}}]}");
  result r;
  run_script(&h, &r,
             (char *[]){"--shim", "tool", "--rules", (char *)rules, "--record",
                        (char *)h_path(&h, "rec"), NULL},
             TOOL_AFTER_SHIMS "\"$(command -v tool)\" by-path; echo \"code=$?\"\n"
                              "tool by-name; echo \"code=$?\"\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "real tool by-path\ncode=0\nreal tool by-name\ncode=0\n");
  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 2u, "one call each, no loop: %zu", rec.n);
  cr_assert_not_null(strstr(arg_of(call_with(&rec, "by-path"), 0), "/tool"));
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* A rule that finds the shim again through a shell: every stub (and the
 * supervisor, for delegate) hands its depth on, and the chain stops with
 * one line. */
Test(rules, a_chain_of_stubs_running_stubs_stops_with_one_line) {
  harness h;
  h_init(&h, NULL);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'args': ['exec', '**']},"
      "            'exec': {'argv': ['sh', '-c', 'tool \\'$@\\'', 'sh', '{@}']}},"
      "           {'match': {'args': ['run', '**']},"
      "            'run': {'argv': ['sh', '-c', 'tool \\'$@\\'', 'sh', '{@}'],"
      "                    'tee': true}},"
      "           {'delegate': {'argv': ['sh', '-c', 'tool \\'$@\\'', 'sh', '{@}']}}]}");
  const char *const modes[] = {"exec", "run", "delegate"};
  for (size_t i = 0; i < 3; i++) {
    char script[200];
    snprintf(script, sizeof script,
             "tool %s 2> \"$T/tool.err\"; echo \"code=$?\"\n" LAST_CALL, modes[i]);
    result r;
    run_script(&h, &r,
               (char *[]){"--shim", "tool", "--rules", (char *)rules, "--record",
                          (char *)h_path(&h, "rec"), NULL},
               script);
    assert_clean_run(&r);
    cr_assert_str_eq(r.out, "code=125\n", "%s", modes[i]);
    char *err = h_read(&h, "tool.err", NULL);
    cr_assert_str_eq(err,
                     "socketbridge-stub: 16 stubs deep (SOCKETBRIDGE_DEPTH): a program "
                     "started for a stub ran the stub again; stopping the chain here\n",
                     "%s", modes[i]);
    free(err);
    record rec;
    record_read(&h, "rec", &rec);
    cr_assert_eq(rec.n, 16u, "%s: %zu calls", modes[i], rec.n);
    record_free(&rec);
    result_free(&r);
  }
  h_fini(&h);
}

/* ---- 7. a bad rules file ------------------------------------------------------- */

typedef struct bad_rules {
  const char *text;  /* NULL: no such file */
  const char *where; /* what stderr says after "socketbridge: --rules: FILE" */
} bad_rules;

Test(rules, a_bad_rules_file_exits_125_before_anything_runs) {
  harness h;
  h_init(&h, NULL);
  const bad_rules cases[] = {
      {"{\n  \"rules\": [\n    {\"match\": }\n  ]\n}\n", ":3: "},
      {"{\n  \"rules\": [],\n  \"bogus\": 1\n}\n", ":3: "},
      {"{\n  \"default\": {\n    \"respond\": {\"exit\": 300}\n  }\n}\n", ":3: "},
      {NULL, ": "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[32], prefix[700];
    snprintf(name, sizeof name, "bad%zu.json", i);
    if (cases[i].text != NULL)
      write_text(&h, name, cases[i].text, 0600);
    snprintf(prefix, sizeof prefix, "socketbridge: --rules: %s%s", h_path(&h, name),
             cases[i].where);
    result r;
    run_script(&h, &r, (char *[]){"--rules", (char *)h_path(&h, name), NULL},
               "touch \"$T/ran\"\n");
    cr_assert_eq(r.status, 125, "case %zu: %d, %s", i, r.status, r.err);
    cr_assert_str_empty(r.out);
    assert_one_line(r.err, prefix);
    cr_assert(!exists(&h, "ran"), "case %zu: the command ran", i);
    result_free(&r);
  }
  h_fini(&h);
}

/* ---- 8. no match, the default, which rule ----------------------------------- */

Test(rules, a_call_no_rule_matches_exits_127_with_one_line) {
  harness h;
  h_init(&h, NULL);
  const char *rules = write_rules(
      &h, "rules.json", "{'rules': [{'match': {'args': ['other']}, 'respond': {}}]}");
  result r;
  run_script(
      &h, &r,
      (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"), NULL},
      "\"$SOCKETBRIDGE_STUB\" one two > \"$T/call.out\" 2> \"$T/call.err\"\n"
      "echo \"code=$?\"\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "code=127\n");
  assert_file(&h, "call.out", "");
  char *err = h_read(&h, "call.err", NULL);
  assert_one_line(err, "socketbridge: no rule matches: ");
  cr_assert_not_null(strstr(err, "socketbridge-stub one two\n"), "%s", err);

  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 1u);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec.line[0], "rule")));
  assert_exit(rec.line[0], 127);
  cr_assert_str_eq(stream_text(rec.line[0], "stderr"), err);
  cr_assert_not_null(strstr(str_of(rec.line[0], "error"), "no rule matches"));
  record_free(&rec);
  free(err);
  result_free(&r);
  h_fini(&h);
}

Test(rules, the_first_matching_rule_wins_else_the_default) {
  harness h;
  h_init(&h, NULL);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'args': ['first']}, 'respond': {'stdout': 'r0\\n'}},"
      "           {'match': {'args': ['*']}, 'respond': {'stdout': 'r1\\n', 'exit': 3}},"
      "           {'match': {'args': ['second']}, 'respond': {'stdout': 'never\\n'}}],"
      " 'default': {'respond': {'stdout': 'dflt\\n', 'exit': 5}}}");
  result r;
  run_script(
      &h, &r,
      (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"), NULL},
      "\"$SOCKETBRIDGE_STUB\" second; echo \"code=$?\"\n"
      "\"$SOCKETBRIDGE_STUB\" first; echo \"code=$?\"\n"
      "\"$SOCKETBRIDGE_STUB\" third fourth; echo \"code=$?\"\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "r1\ncode=3\nr0\ncode=0\ndflt\ncode=5\n");

  /* Calls end in any order; each line says its rule. */
  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 3u);
  cr_assert_eq(num_of(call_with(&rec, "second"), "rule"), 1);
  cr_assert_eq(num_of(call_with(&rec, "first"), "rule"), 0);
  cr_assert_str_eq(str_of(call_with(&rec, "third"), "rule"), "default");
  assert_exit(call_with(&rec, "third"), 5);
  cr_assert_str_eq(stream_text(call_with(&rec, "third"), "stdout"), "dflt\n");
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* ---- 8b. a respond reads its caller's stdin -------------------------------------- */

/* With "stdin": true the supervisor stands in for a tool that reads its
 * input: the record has all the caller sent. By default it answers at once,
 * and a caller that keeps its stdin open and waits is never left hanging. */
Test(rules, a_respond_call_records_the_stdin_its_caller_sent) {
  harness h;
  h_init(&h, NULL);
  make_fifo(&h, "fifo");
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'args': ['open']}, 'respond': {'stdout': 'now\\n'}},"
      "           {'respond': {'stdout': 'read\\n', 'exit': 4, 'stdin': true}}]}");
  result r;
  run_script(&h, &r,
             (char *[]){"--shim", "tool", "--rules", (char *)rules, "--record",
                        (char *)h_path(&h, "rec"), NULL},
             "printf 'line 1\\nline 2\\n' | tool piped; echo \"code=$?\"\n"
             "exec 3<> \"$T/fifo\"\n"
             "tool open <&3; echo \"code=$?\"\n"
             "exec 3>&-\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "read\ncode=4\nnow\ncode=0\n");
  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 2u);
  cr_assert_str_eq(stream_text(call_with(&rec, "piped"), "stdin"), "line 1\nline 2\n");
  cr_assert_str_eq(stream_text(call_with(&rec, "open"), "stdin"), "");
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* The child's last act is a call (the child execs the stub): the run ends
 * as the call does, and the record must still say how the call ended.
 * Which of the two the supervisor sees first varies: try it a few times. */
Test(rules, the_call_that_ends_the_child_is_recorded_as_exited) {
  harness h;
  h_init(&h, NULL);
  char rules[600], rec_path[600];
  snprintf(rules, sizeof rules, "%s",
           write_rules(&h, "rules.json",
                       "{'default': {'respond': {'stdout': 'bye\\n', 'exit': 5}}}"));
  snprintf(rec_path, sizeof rec_path, "%s", h_path(&h, "rec"));
  for (int i = 0; i < 50; i++) {
    result r;
    run_script(&h, &r, (char *[]){"--rules", rules, "--record", rec_path, NULL},
               "exec \"$SOCKETBRIDGE_STUB\" the-end\n");
    cr_assert_eq(r.status, 5, "run %d: %d, %s", i, r.status, r.err);
    cr_assert_str_eq(r.out, "bye\n");
    cr_assert_str_empty(r.err);
    record rec;
    record_read(&h, "rec", &rec);
    cr_assert_eq(rec.n, 1u);
    cr_assert_str_eq(str_of(rec.line[0], "close_reason"), "exited", "run %d", i);
    assert_exit(rec.line[0], 5);
    record_free(&rec);
    result_free(&r);
  }
  h_fini(&h);
}

/* ---- 9. the record: bytes, the token, a killed call ---------------------------- */

Test(rules, the_record_has_binary_output_as_base64_and_never_the_token) {
  harness h;
  h_init(&h, NULL);
  write_bytes(&h, "bin.dat", "\xff\x00", 2, 0600);
  /* stdout_file is relative to the rules file. */
  const char *rules = write_rules(&h, "rules.json",
                                  "{'default': {'respond': {'stdout_file': 'bin.dat'}}}");
  result r;
  run_script(&h, &r,
             (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"),
                        "--events", (char *)h_path(&h, "events"), "--env", "MARK=visible",
                        NULL},
             "printf %s \"$SOCKETBRIDGE_TOKEN\" > \"$T/token\"\n"
             "\"$SOCKETBRIDGE_STUB\" bin > \"$T/bin.out\"\n"
             "echo \"code=$?\"\n");
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "code=0\n");
  size_t len;
  char *out = h_read(&h, "bin.out", &len);
  cr_assert(len == 2 && memcmp(out, "\xff\x00", 2) == 0, "the call's stdout");

  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 1u);
  const cJSON *so = cJSON_GetObjectItemCaseSensitive(rec.line[0], "stdout");
  cr_assert_eq(num_of(so, "bytes"), 2);
  cr_assert_str_eq(str_of(cJSON_GetObjectItemCaseSensitive(so, "data"), "base64"),
                   "/wA=");
  const cJSON *env = cJSON_GetObjectItemCaseSensitive(rec.line[0], "env");
  bool mark = false;
  for (const cJSON *e = env != NULL ? env->child : NULL; e != NULL; e = e->next)
    mark |= cJSON_IsString(e) && strcmp(e->valuestring, "MARK=visible") == 0;
  cr_assert(mark, "the call's environment is not in the record");

  size_t tlen;
  char *token = h_read(&h, "token", &tlen);
  cr_assert_eq(tlen, 64u, "the child has no token: %s", token);
  char *raw_rec = h_read(&h, "rec", NULL), *raw_ev = h_read(&h, "events", NULL);
  cr_assert_null(strstr(raw_rec, token), "the token is in the record");
  cr_assert_null(strstr(raw_rec, "SOCKETBRIDGE_TOKEN"),
                 "the token's name is in the record");
  cr_assert_null(strstr(raw_ev, token), "the token is in the events");
  free(raw_rec);
  free(raw_ev);
  free(token);
  free(out);
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* The stub reads its stdin only once what it read before is on the socket,
 * and a pipe holds 64 KiB (1 MiB with 64 KiB pages): once the writer is
 * through 2 MB, the supervisor has been sent far more than the record
 * keeps. Then the stub is killed in the middle of its (hour-long) respond
 * delay. */
static const char killed_script[] =
    "mkfifo \"$T/in\"\n"
    "\"$SOCKETBRIDGE_STUB\" slow < \"$T/in\" > \"$T/slow.out\" &\n"
    "pid=$!\n"
    "{ printf stdin-marker; head -c 2000000 /dev/zero | tr '\\000' x; } > \"$T/in\"\n"
    "kill -KILL $pid\n"
    "wait $pid 2> /dev/null\n"
    "echo \"code=$?\"\n" LAST_CALL;

Test(rules, a_killed_call_is_recorded_with_its_stdin_as_peer_lost) {
  harness h;
  h_init(&h, NULL);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'args': ['slow']},"
      "            'respond': {'stdout': 'never\\n', 'delay_ms': 3600000}}]}");
  result r;
  run_script(
      &h, &r,
      (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"), NULL},
      killed_script);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "code=137\n");
  assert_file(&h, "slow.out", "");

  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 1u);
  const cJSON *call = rec.line[0], *in = cJSON_GetObjectItemCaseSensitive(call, "stdin");
  cr_assert_str_eq(str_of(call, "close_reason"), "peer_lost");
  cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(call, "exit")),
            "exit not null");
  cr_assert_null(cJSON_GetObjectItemCaseSensitive(call, "signal"));
  cr_assert_str_eq(str_of(call, "action"), "respond");
  cr_assert_eq(num_of(call, "rule"), 0);
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(call, "error"));
  const char *data = stream_text(call, "stdin");
  cr_assert_eq(strlen(data), 64u * 1024u, "the data kept");
  cr_assert(strncmp(data, "stdin-markerxxx", 15) == 0, "stdin: %.20s", data);
  cr_assert_geq(num_of(in, "bytes"), 65536.0);
  cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "truncated")));
  cr_assert_eq(num_of(cJSON_GetObjectItemCaseSensitive(call, "stdout"), "bytes"), 0,
               "the response was never sent");
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* ---- 10. run, with and without tee ------------------------------------------ */

Test(rules, run_relays_the_output_up_and_tee_also_writes_it_down) {
  harness h;
  h_init(&h, NULL);
  const char *rules = write_rules(
      &h, "rules.json",
      "{'rules': [{'match': {'args': ['quiet']},"
      "            'run': {'argv': ['sh', '-c', 'printf out-data; printf err-data >&2; "
      "exit 3']}},"
      "           {'match': {'args': ['loud']},"
      "            'run': {'argv': ['sh', '-c', 'printf out-data; printf err-data >&2; "
      "exit 3'], 'tee': true}}]}");
  result r;
  run_script(
      &h, &r,
      (char *[]){"--rules", (char *)rules, "--record", (char *)h_path(&h, "rec"), NULL},
      "\"$SOCKETBRIDGE_STUB\" quiet > \"$T/q.out\" 2> \"$T/q.err\"\n"
      "echo \"quiet=$?\"\n"
      "\"$SOCKETBRIDGE_STUB\" loud > \"$T/l.out\" 2> \"$T/l.err\"\n"
      "echo \"loud=$?\"\n" LAST_CALL);
  assert_clean_run(&r);
  cr_assert_str_eq(r.out, "quiet=3\nloud=3\n");
  assert_file(&h, "q.out", "");
  assert_file(&h, "q.err", "");
  assert_file(&h, "l.out", "out-data");
  assert_file(&h, "l.err", "err-data");

  record rec;
  record_read(&h, "rec", &rec);
  cr_assert_eq(rec.n, 2u);
  const char *which[] = {"quiet", "loud"};
  for (size_t i = 0; i < 2; i++) {
    const cJSON *call = call_with(&rec, which[i]);
    cr_assert_str_eq(str_of(call, "action"), "run");
    cr_assert_str_eq(stream_text(call, "stdout"), "out-data", "%s", which[i]);
    cr_assert_str_eq(stream_text(call, "stderr"), "err-data", "%s", which[i]);
    assert_exit(call, 3);
  }
  record_free(&rec);
  result_free(&r);
  h_fini(&h);
}

/* ---- 11. the rules file changes under a running child ----------------------- */

/* Writes a line to a fifo the script waits on, once the script reads it
 * (h_poll_until asks again after it held: the second time is a no-op). */
typedef struct go {
  const char *name;
  bool sent;
} go;

static bool go_sent(harness *h, const void *arg) {
  go *g = (go *)arg;
  if (g->sent)
    return true;
  int fd = open(h_path(h, g->name), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    cr_assert_eq(errno, ENXIO, "open %s: %s", g->name, strerror(errno));
    return false; /* the script is not reading it yet */
  }
  cr_assert_eq(write(fd, "\n", 1), 1);
  close(fd);
  g->sent = true;
  return true;
}

static void send_go(harness *h, const char *name) {
  go g = {.name = name};
  h_poll_until(h, go_sent, &g, name);
}

/* Replaces the rules as a harness should: a whole new file renamed over. */
static void replace_rules(harness *h, const char *squoted) {
  write_rules(h, "rules.tmp", squoted);
  cr_assert_eq(rename(h_path(h, "rules.tmp"), h_path(h, "rules.json")), 0);
}

Test(rules, the_rules_file_is_read_again_when_it_is_replaced) {
  harness h;
  h_init(&h, NULL);
  make_fifo(&h, "go");
  make_fifo(&h, "go2");
  char rules[600]; /* h_path()'s slots turn over while we poll */
  snprintf(
      rules, sizeof rules, "%s",
      write_rules(&h, "rules.json", "{'default': {'respond': {'stdout': 'one\\n'}}}"));
  pid_t pid = start_script(&h, (char *[]){"--rules", rules, NULL},
                           "\"$SOCKETBRIDGE_STUB\" > \"$T/first\"\n"
                           "read x < \"$T/go\"\n"
                           "\"$SOCKETBRIDGE_STUB\" > \"$T/second\"\n"
                           "read x < \"$T/go2\"\n"
                           "\"$SOCKETBRIDGE_STUB\" > \"$T/third\"\n");
  h_wait_file(&h, "first");
  assert_file(&h, "first", "one\n");

  replace_rules(&h, "{'default': {'respond': {'stdout': 'two\\n'}}}");
  send_go(&h, "go");
  h_wait_file(&h, "second");
  assert_file(&h, "second", "two\n");

  /* A version that does not load: said on stderr, the rules stay. */
  replace_rules(&h, "{'default': {'respond': {'stdout': 'three\\n', 'exit': 300}}}");
  send_go(&h, "go2");
  h_wait_file(&h, "third");
  assert_file(&h, "third", "two\n");

  result r;
  finish(&h, pid, "cli", &r);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char prefix[700];
  snprintf(prefix, sizeof prefix, "socketbridge: --rules: %s:1: ", rules);
  assert_one_line(r.err, prefix);
  result_free(&r);
  h_fini(&h);
}

/* ---- 12. socketbridge shim -------------------------------------------------- */

/* dir/name is a link to the stub the command uses. */
static void assert_stub_link(harness *h, const char *name) {
  char target[PATH_MAX];
  ssize_t n = readlink(h_path(h, name), target, sizeof target - 1);
  cr_assert_gt(n, 0, "%s is not a link: %s", name, strerror(errno));
  target[n] = '\0';
  char *a = realpath(target, NULL), *b = realpath(SB_TEST_STUB, NULL);
  cr_assert_not_null(a, "%s -> %s: %s", name, target, strerror(errno));
  cr_assert_str_eq(a, b, "%s", name);
  free(a);
  free(b);
}

Test(rules, shim_makes_links_to_the_stub_and_can_be_repeated) {
  harness h;
  h_init(&h, NULL);
  result r;
  for (int i = 0; i < 2; i++) {
    SB(&h, &r, "shim", (char *)h_path(&h, "shims"), "a", "b");
    cr_assert_eq(r.status, 0, "run %d: %s", i, r.err);
    cr_assert_str_empty(r.out);
    cr_assert_str_empty(r.err);
    result_free(&r);
    assert_stub_link(&h, "shims/a");
    assert_stub_link(&h, "shims/b");
  }
  h_fini(&h);
}

Test(rules, shim_refuses_a_name_taken_by_anything_else) {
  harness h;
  h_init(&h, NULL);
  make_dir(&h, "shims");
  write_text(&h, "shims/a", "mine\n", 0600);
  result r;
  SB(&h, &r, "shim", (char *)h_path(&h, "shims"), "a", "b");
  cr_assert_eq(r.status, 125, "%s", r.err);
  cr_assert_str_empty(r.out);
  assert_one_line(r.err, "socketbridge: shim: ");
  cr_assert_not_null(strstr(r.err, h_path(&h, "shims/a")), "%s", r.err);
  assert_file(&h, "shims/a", "mine\n");
  result_free(&r);
  h_fini(&h);
}
