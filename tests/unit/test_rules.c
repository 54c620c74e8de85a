/* SPDX-License-Identifier: MIT */
/* test_rules.c - the rules file of `socketbridge run --rules`: loading,
 * matching calls, expanding templates, and one-line errors with the line. */
#include "rules.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every test writes its files into one fresh directory, removed after it. */
static char *tdir;
static char *tfiles[16];
static size_t ntfiles;

static void cleanup(void) {
  for (size_t i = 0; i < ntfiles; i++) {
    unlink(tfiles[i]);
    free(tfiles[i]);
  }
  ntfiles = 0;
  if (tdir != NULL)
    rmdir(tdir);
  free(tdir);
  tdir = NULL;
}

TestSuite(rules, .fini = cleanup);

static const char *test_dir(void) {
  if (tdir == NULL) {
    const char *base = getenv("TMPDIR");
    cr_assert_neq(asprintf(&tdir, "%s/sb-rules-XXXXXX", base ? base : "/tmp"), -1);
    cr_assert_not_null(mkdtemp(tdir), "mkdtemp %s: %s", tdir, strerror(errno));
  }
  return tdir;
}

/* Writes len bytes to a new file in the test directory; its path. */
static const char *write_bytes(const char *name, const void *data, size_t len) {
  cr_assert_lt(ntfiles, sizeof tfiles / sizeof tfiles[0]);
  char *path = NULL;
  cr_assert_neq(asprintf(&path, "%s/%s", test_dir(), name), -1);
  tfiles[ntfiles++] = path;
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
  return path;
}

/* Makes a FIFO in the test directory (nobody writes it); its path. */
static const char *make_fifo(const char *name) {
  char *path = NULL;
  cr_assert_lt(ntfiles, sizeof tfiles / sizeof tfiles[0]);
  cr_assert_neq(asprintf(&path, "%s/%s", test_dir(), name), -1);
  tfiles[ntfiles++] = path;
  cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s: %s", path, strerror(errno));
  return path;
}

static const char *write_rules(const char *json) {
  return write_bytes("rules.json", json, strlen(json));
}

static void load_ok(const char *json, rules *r) {
  char err[RULES_ERR_MAX] = "";
  int rc = rules_load(write_rules(json), r, err, sizeof err);
  cr_assert_eq(rc, 0, "rules_load failed: %s", err);
}

/* Asserts loading path fails with "FILE:LINE: ..." holding word. */
static void expect_error_in(const char *path, int line, const char *word) {
  rules r;
  char err[RULES_ERR_MAX] = "", prefix[300];
  int rc = rules_load(path, &r, err, sizeof err);
  cr_assert_eq(rc, -1, "loaded, want an error with \"%s\"", word);
  cr_assert_null(r.v, "rules left after a failure");
  cr_assert_null(r.deflt, "default left after a failure");
  snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
  cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "want prefix \"%s\", got \"%s\"",
            prefix, err);
  cr_assert_not_null(strstr(err, word), "want \"%s\" in \"%s\"", word, err);
  cr_assert_null(strchr(err, '\n'), "not one line: \"%s\"", err);
}

static void expect_error(const char *json, int line, const char *word) {
  expect_error_in(write_rules(json), line, word);
}

/* A call's argc and argv from string literals. */
#define CALL(...)                                                                        \
  sizeof((char *[]){__VA_ARGS__}) / sizeof(char *), (char *[]) {                         \
    __VA_ARGS__                                                                          \
  }

/* The index of the rule a call gets (-1 the default, -2 none). */
static int hit_at(rules *r, size_t argc, char **argv, const char *cwd, size_t envc,
                  char **env) {
  const rule *got = rules_match(r, argc, argv, cwd, envc, env);
  return got != NULL ? got->index : -2;
}

static int hit(rules *r, size_t argc, char **argv) {
  return hit_at(r, argc, argv, NULL, 0, NULL);
}

static const char example[] =
    "{\n"
    "  \"rules\": [\n"
    "    {\"match\": {\"argv0\": \"git\", \"args\": [\"commit\", \"**\"]},\n"
    "     \"respond\": {\"stdout\": \"ok\\n\", \"stderr\": \"\", \"exit\": 3}},\n"
    "    {\"match\": {\"argv0\": \"ssh\"}, \"delegate\": {\"argv\": [\"sh\", \"-c\", "
    "\"{-1}\"]}},\n"
    "    {\"match\": {\"argv0\": \"cc\"}, \"exec\": {\"argv\": [\"cc\", \"{@}\"]}},\n"
    "    {\"match\": {\"argv0\": \"make\"}, \"run\": {\"argv\": [\"make\", \"{@}\"], "
    "\"tee\": true}}\n"
    "  ],\n"
    "  \"default\": {\"respond\": {\"exit\": 127, \"stderr\": \"unexpected call\\n\"}}\n"
    "}\n";

Test(rules, example_file_loads_and_matches) {
  rules r;
  load_ok(example, &r);
  cr_assert_eq(r.n, 4);
  cr_assert_not_null(r.deflt);

  const rule *g = rules_match(&r, CALL("git", "commit", "-m", "x"), NULL, 0, NULL);
  cr_assert_not_null(g);
  cr_assert_eq(g->index, 0);
  cr_assert_eq(g->action, RULE_RESPOND);
  cr_assert_eq(g->respond.out_len, 3);
  cr_assert_eq(memcmp(g->respond.out, "ok\n", 3), 0);
  cr_assert_eq(g->respond.err_len, 0);
  cr_assert_eq(g->respond.code, 3);
  cr_assert_eq(g->respond.signal, 0);

  const rule *d = rules_match(&r, CALL("git", "status"), NULL, 0, NULL);
  cr_assert_eq(d, r.deflt, "git status did not get the default");
  cr_assert_eq(d->index, -1);
  cr_assert_eq(d->respond.code, 127);
  cr_assert_eq(d->respond.err_len, strlen("unexpected call\n"));
  cr_assert_eq(memcmp(d->respond.err, "unexpected call\n", d->respond.err_len), 0);

  const rule *cc = rules_match(&r, CALL("/usr/bin/cc", "-c", "a.c"), NULL, 0, NULL);
  cr_assert_eq(cc->index, 2, "basename match of /usr/bin/cc gave %d", cc->index);
  cr_assert_eq(cc->action, RULE_EXEC);
  cr_assert_eq(cc->program.argc, 2);
  cr_assert_str_eq(cc->program.argv[1], "{@}");

  const rule *ssh = rules_match(&r, CALL("ssh", "host", "ls"), NULL, 0, NULL);
  cr_assert_eq(ssh->action, RULE_DELEGATE);
  const rule *mk = rules_match(&r, CALL("make", "all"), NULL, 0, NULL);
  cr_assert_eq(mk->action, RULE_RUN);
  cr_assert(mk->program.tee);
  cr_assert_not(ssh->program.tee);
  rules_free(&r);
  cr_assert_null(r.v);
}

Test(rules, any_args_at_end_middle_alone_and_with_nothing_left) {
  rules r;
  load_ok("{\"rules\": [\n"
          "{\"match\": {\"argv0\": \"end\", \"args\": [\"commit\", \"**\"]}, "
          "\"respond\": {}},\n"
          "{\"match\": {\"argv0\": \"mid\", \"args\": [\"a\", \"**\", \"z\"]}, "
          "\"respond\": {}},\n"
          "{\"match\": {\"argv0\": \"alone\", \"args\": [\"**\"]}, \"respond\": {}},\n"
          "{\"match\": {\"argv0\": \"back\", \"args\": [\"**\", \"a\", \"b\"]}, "
          "\"respond\": {}},\n"
          "{\"match\": {\"argv0\": \"two\", \"args\": [\"**\", \"x\", \"**\", \"y\"]}, "
          "\"respond\": {}}]}",
          &r);
  cr_assert_eq(hit(&r, CALL("end", "commit")), 0, "** with nothing left");
  cr_assert_eq(hit(&r, CALL("end", "commit", "-m", "x")), 0);
  cr_assert_eq(hit(&r, CALL("end")), -2);
  cr_assert_eq(hit(&r, CALL("end", "push", "commit")), -2);

  cr_assert_eq(hit(&r, CALL("mid", "a", "z")), 1);
  cr_assert_eq(hit(&r, CALL("mid", "a", "b", "c", "z")), 1);
  cr_assert_eq(hit(&r, CALL("mid", "a", "z", "z")), 1);
  cr_assert_eq(hit(&r, CALL("mid", "a", "b", "c")), -2);
  cr_assert_eq(hit(&r, CALL("mid", "z")), -2);

  cr_assert_eq(hit(&r, CALL("alone")), 2);
  cr_assert_eq(hit(&r, CALL("alone", "1", "2", "3")), 2);

  cr_assert_eq(hit(&r, CALL("back", "a", "a", "b")), 3, "needs backtracking");
  cr_assert_eq(hit(&r, CALL("back", "a", "b", "a")), -2);

  cr_assert_eq(hit(&r, CALL("two", "q", "x", "r", "y")), 4);
  cr_assert_eq(hit(&r, CALL("two", "x", "y")), 4);
  cr_assert_eq(hit(&r, CALL("two", "y", "x")), -2);
  rules_free(&r);
}

Test(rules, args_without_any_match_the_whole_count) {
  rules r;
  load_ok("{\"rules\": [{\"match\": {\"args\": [\"-c\", \"*.c\"]}, \"respond\": {}},\n"
          "{\"match\": {\"argv0\": \"none\", \"args\": []}, \"respond\": {}}]}",
          &r);
  cr_assert_eq(hit(&r, CALL("cc", "-c", "a.c")), 0);
  cr_assert_eq(hit(&r, CALL("cc", "-c", "dir/a.c")), 0, "* must match /");
  cr_assert_eq(hit(&r, CALL("cc", "-c", "a.c", "b.c")), -2);
  cr_assert_eq(hit(&r, CALL("cc", "-c")), -2);
  cr_assert_eq(hit(&r, CALL("none")), 1);
  cr_assert_eq(hit(&r, CALL("none", "x")), -2);
  rules_free(&r);
}

Test(rules, argv0_is_a_glob_on_the_basename) {
  rules r;
  load_ok("{\"rules\": [{\"match\": {\"argv0\": \"c[c+]*\"}, \"respond\": {}},"
          "{\"match\": {\"args\": [\"**\"]}, \"respond\": {\"exit\": 1}}]}",
          &r);
  cr_assert_eq(hit(&r, CALL("/usr/bin/cc")), 0);
  cr_assert_eq(hit(&r, CALL("c++")), 0);
  cr_assert_eq(hit(&r, CALL("/usr/cc/gcc")), 1);
  cr_assert_eq(hit(&r, 0, (char *[]){NULL}), 1, "argc 0 matched an argv0 glob");
  rules_free(&r);
}

Test(rules, cwd_glob) {
  rules r;
  load_ok("{\"rules\": [{\"match\": {\"cwd\": \"/src/*\"}, \"respond\": {}}]}", &r);
  cr_assert_eq(hit_at(&r, CALL("x"), "/src/a/b", 0, NULL), 0);
  cr_assert_eq(hit_at(&r, CALL("x"), "/srcx", 0, NULL), -2);
  cr_assert_eq(hit_at(&r, CALL("x"), NULL, 0, NULL), -2, "unknown cwd matched");
  rules_free(&r);
}

Test(rules, env_globs_and_unset_variables) {
  rules r;
  load_ok("{\"rules\": [{\"match\": {\"env\": {\"CI\": \"1*\", \"HOME\": \"*\"}}, "
          "\"respond\": {}}]}",
          &r);
  char *both[] = {"PATH=/bin", "CI=12", "HOME="};
  cr_assert_eq(hit_at(&r, CALL("x"), NULL, 3, both), 0);
  char *no_home[] = {"CI=1", "HOMEX=1"};
  cr_assert_eq(hit_at(&r, CALL("x"), NULL, 2, no_home), -2, "unset HOME matched *");
  char *first[] = {"HOME=/", "CI=0", "CI=1"};
  cr_assert_eq(hit_at(&r, CALL("x"), NULL, 3, first), -2, "the first CI counts");
  cr_assert_eq(hit_at(&r, CALL("x"), NULL, 0, NULL), -2);
  rules_free(&r);
}

Test(rules, no_rules_and_no_default_match_nothing) {
  rules r;
  load_ok("{}", &r);
  cr_assert_eq(r.n, 0);
  cr_assert_eq(hit(&r, CALL("x")), -2);
  rules_free(&r);
  load_ok("{\"rules\": []}", &r);
  cr_assert_eq(hit(&r, CALL("x")), -2);
  rules_free(&r);
  load_ok("{\"rules\": [{\"respond\": {\"exit\": 4}}]}", &r);
  cr_assert_eq(hit(&r, 0, (char *[]){NULL}), 0, "an empty match takes every call");
  rules_free(&r);
}

static void assert_strv(char **got, const char *const *want, size_t n) {
  for (size_t i = 0; i < n; i++) {
    cr_assert_not_null(got[i], "[%zu] is NULL, want \"%s\"", i, want[i]);
    cr_assert_str_eq(got[i], want[i], "[%zu]: \"%s\", want \"%s\"", i, got[i], want[i]);
  }
  cr_assert_null(got[n], "more than %zu entries", n);
}

static const char tpl_rules[] =
    "{\"rules\": [{\"run\": {\"argv\": [\"x{0}\", \"{@}\", \"--out={1}.o\", \"{-1}\", "
    "\"{cwd}\", \"{{lit}}\", \"{9}\", \"{-9}\", \"{{{1}}}\"], \"cwd\": \"{cwd}/sub\", "
    "\"env\": {\"A\": \"{1}{-1}\", \"B\": \"\"}, \"unset\": [\"C\"], \"tee\": true}}]}";

Test(rules, templates_expand) {
  rules r;
  load_ok(tpl_rules, &r);
  rule_launch l;
  cr_assert_eq(rules_expand(&r.v[0].program, CALL("/bin/cc", "-c", "a\xff.c"), "/w", &l),
               0);
  const char *argv[] = {"x/bin/cc", "-c",    "a\xff.c", "--out=-c.o", "a\xff.c",
                        "/w",       "{lit}", "",        "",           "{-c}"};
  cr_assert_eq(l.argc, 10);
  assert_strv(l.argv, argv, 10);
  cr_assert_str_eq(l.cwd, "/w/sub");
  assert_strv(l.set, (const char *[]){"A=-ca\xff.c", "B="}, 2);
  assert_strv(l.unset, (const char *[]){"C"}, 1);
  cr_assert(l.tee);
  rule_launch_free(&l);
  cr_assert_null(l.argv);
  rules_free(&r);
}

Test(rules, templates_out_of_range_are_empty) {
  rules r;
  load_ok(tpl_rules, &r);
  rule_launch l;
  cr_assert_eq(rules_expand(&r.v[0].program, CALL("cmd"), NULL, &l), 0);
  const char *one[] = {"xcmd", "--out=.o", "", "", "{lit}", "", "", "{}"};
  assert_strv(l.argv, one, 8); /* {-1} is never argv[0] */
  cr_assert_str_eq(l.cwd, "/sub");
  rule_launch_free(&l);
  cr_assert_eq(rules_expand(&r.v[0].program, 0, (char *[]){NULL}, NULL, &l), 0);
  const char *none[] = {"x", "--out=.o", "", "", "{lit}", "", "", "{}"};
  assert_strv(l.argv, none, 8);
  rule_launch_free(&l);
  rules_free(&r);
}

Test(rules, program_without_cwd_env_unset) {
  rules r;
  load_ok("{\"rules\": [{\"exec\": {\"argv\": [\"{@}\"]}}]}", &r);
  rule_launch l;
  cr_assert_eq(rules_expand(&r.v[0].program, CALL("a"), NULL, &l), 0);
  cr_assert_eq(l.argc, 0, "{@} of no arguments gave %zu", l.argc);
  cr_assert_null(l.argv[0]);
  cr_assert_null(l.cwd);
  cr_assert_null(l.set[0]);
  cr_assert_null(l.unset[0]);
  cr_assert_not(l.tee);
  rule_launch_free(&l);
  rules_free(&r);
}

Test(rules, respond_signal_delay_and_stdout_file) {
  static const char bytes[] = "a\0b\xff\n";
  write_bytes("out.bin", bytes, sizeof bytes - 1);
  rules r;
  load_ok("{\"rules\": [{\"respond\": {\"stdout_file\": \"out.bin\", \"signal\": "
          "\"SIGTERM\", \"delay_ms\": 250}},\n"
          "{\"respond\": {\"signal\": 9, \"delay_ms\": 3600000}}]}",
          &r);
  const rule_respond *a = &r.v[0].respond;
  char got[16];
  cr_assert(a->has_out_file);
  cr_assert_eq(pread(a->out_fd, got, sizeof got, 0), (ssize_t)sizeof bytes - 1);
  cr_assert_eq(memcmp(got, bytes, sizeof bytes - 1), 0, "stdout_file bytes differ");
  cr_assert_eq(a->signal, SIGTERM);
  cr_assert_eq(a->delay_ms, 250);
  cr_assert_eq(r.v[1].respond.signal, SIGKILL);
  rules_free(&r);
}

/* The file is kept open, not read: an answer streams from it, any size. */
Test(rules, stdout_file_absolute_path_and_large) {
  static char big[100000];
  memset(big, 'x', sizeof big);
  memcpy(big, "hello", 5);
  const char *out = write_bytes("abs.txt", big, sizeof big);
  char *json = NULL;
  cr_assert_neq(
      asprintf(&json, "{\"default\": {\"respond\": {\"stdout_file\": \"%s\"}}}", out),
      -1);
  rules r;
  load_ok(json, &r);
  free(json);
  static char got[sizeof big];
  cr_assert(r.deflt->respond.has_out_file);
  cr_assert_null(r.deflt->respond.out);
  cr_assert_eq(pread(r.deflt->respond.out_fd, got, sizeof got, 0), (ssize_t)sizeof big);
  cr_assert_eq(memcmp(got, big, sizeof big), 0);
  rules_free(&r);
}

/* ---- errors ------------------------------------------------------------- */

Test(rules, missing_file) {
  char *path = NULL;
  cr_assert_neq(asprintf(&path, "%s/nope.json", test_dir()), -1);
  rules r;
  char err[RULES_ERR_MAX], want[400];
  cr_assert_eq(rules_load(path, &r, err, sizeof err), -1);
  snprintf(want, sizeof want, "%s: No such file or directory", path);
  cr_assert_str_eq(err, want);
  free(path);
}

Test(rules, bad_json_on_line_3) {
  expect_error("{\n  \"rules\": [\n    {\"respond\": {\"exit\": 1,}}\n  ]\n}\n", 3,
               "JSON");
}

Test(rules, nul_byte_in_the_file) {
  static const char text[] = "{\"rules\": [\n{\"respond\": {\"stdout\": \"a\0b\"}}]}";
  expect_error_in(write_bytes("nul.json", text, sizeof text - 1), 2, "NUL byte");
}

Test(rules, empty_file_and_non_object) {
  expect_error("", 1, "empty");
  expect_error("\n\n  [1]", 3, "expected an object");
}

Test(rules, unknown_key_line_of_the_key) {
  expect_error("{\"rules\": [\n  {\n    \"match\": {\"argv0\": \"x\",\n"
               "      \"argv\": \"x\"},\n    \"respond\": {}}]}",
               4, "rules[0].match: unknown key \"argv\"");
  expect_error("{\n\"rules\": [],\n\"extra\": 1}", 3, "unknown key \"extra\"");
  expect_error("{\"rules\": [{\"respond\": {\"stdout\": \"\",\n\"exit \":\n1}}]}", 2,
               "rules[0].respond: unknown key \"exit \"");
}

Test(rules, positions_survive_escapes_and_brackets_in_strings) {
  expect_error("{\"rules\": [{\"respond\": {\"stdout\": \"a\\\"]},{[\\\\\", "
               "\"stderr\": \"}\"}},\n"
               "{\"\\u0072espond\": {\"stdout\": \"\\n\"}},\n"
               "{\"respond\": {\"exit\": 1}}, {\"respond\": {\"stdout\": \"\\\\\",\n"
               "\"exit\": 256}}]}",
               4, "rules[3].respond.exit: expected an integer 0..255");
}

Test(rules, positions_skip_escaped_quotes) {
  expect_error("{\"rules\": [\n"
               "{\"respond\": {\"stdout\": \"\\\"{[\\\"\"}},\n"
               "{\"respond\": {\"exit\": 300}},\n"
               "{\"respond\": {\"stdout\": \"x\"}}\n"
               "]}",
               3, "rules[1].respond.exit");
}

Test(rules, exit_out_of_range_or_not_an_integer) {
  expect_error("{\"rules\": [\n{\"respond\": {\"exit\": 256}}]}", 2, "0..255");
  expect_error("{\"rules\": [\n{\"respond\": {\"exit\": 1.5}}]}", 2, "0..255");
  expect_error("{\"rules\": [\n{\"respond\": {\"exit\": \"1\"}}]}", 2, "0..255");
}

Test(rules, exit_and_signal_are_exclusive) {
  expect_error("{\"rules\": [{\"respond\": {\"exit\": 1,\n\"signal\": \"TERM\"}}]}", 2,
               "exclusive");
}

Test(rules, bad_signal_name) {
  expect_error("{\n\"default\": {\"respond\": {\"signal\": \"SIGNOPE\"}}}", 2,
               "default.respond.signal: unknown signal \"SIGNOPE\"");
}

Test(rules, two_actions_or_none) {
  expect_error("{\"rules\": [{\"respond\": {},\n\"exec\": {\"argv\": [\"a\"]}}]}", 2,
               "rules[0]: expected exactly one of respond, delegate, exec, run");
  expect_error("{\"rules\": [{},\n{\"match\": {}}]}", 1,
               "rules[0]: expected exactly one");
  expect_error("{\"default\":\n {}}", 2, "default: expected exactly one");
}

Test(rules, default_has_no_match) {
  expect_error("{\"default\": {\"respond\": {},\n\"match\": {}}}", 2, "no \"match\"");
}

Test(rules, all_args_only_as_a_whole_argv_element) {
  expect_error("{\"rules\": [{\"exec\": {\"argv\": [\"a\",\n\"-{@}\"]}}]}", 2,
               "rules[0].exec.argv[1]: {@} must be a whole argv element");
  expect_error("{\"rules\": [{\"exec\": {\"argv\": [\"a\"],\n\"cwd\": \"{@}\"}}]}", 2,
               "whole argv element");
}

Test(rules, unknown_and_broken_templates) {
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"a\"],\n\"env\": {\"X\": "
               "\"{foo}\"}}}]}",
               2, "rules[0].run.env.X: unknown template {foo}");
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"{-0}\"]}}]}", 1, "{-0}");
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"{01}\"]}}]}", 1, "{01}");
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"{1\"]}}]}", 1, "unterminated");
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"a}b\"]}}]}", 1, "lone }");
}

Test(rules, bad_glob) {
  expect_error("{\"rules\": [\n{\"match\": {\"args\": [\"x\",\n\"[a\"]}, \"respond\": "
               "{}}]}",
               3, "rules[0].match.args[1]: bad glob \"[a\"");
  expect_error("{\"rules\": [{\"match\": {\"argv0\": \"[[:nope:]]\"}, \"respond\": {}}]}",
               1, "character class");
}

Test(rules, tee_only_for_run) {
  expect_error("{\"rules\": [{\"exec\": {\"argv\": [\"a\"],\n\"tee\": true}}]}", 2,
               "only for run");
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"a\"],\n\"tee\": 1}}]}", 2,
               "true or false");
}

Test(rules, program_fields_checked) {
  expect_error("{\"rules\": [{\"delegate\": {\"argv\":\n[]}}]}", 2, "non-empty");
  expect_error("{\"rules\": [{\"delegate\":\n{}}]}", 2, "missing \"argv\"");
  expect_error("{\"rules\": [{\"delegate\": {\"argv\": [\"a\"], \"unset\": [\"A\",\n"
               "\"B=1\"]}}]}",
               2, "bad variable name");
  expect_error("{\"rules\": [{\"delegate\": {\"argv\": [\"a\"], \"env\": {\"A\": \"\",\n"
               "\"\": \"x\"}}}]}",
               2, "bad variable name");
  expect_error("{\"rules\": [{\"delegate\": {\"argv\": [\"a\"], \"env\": {\"A\": \"\"},\n"
               "\"unset\": [\"A\"]}}]}",
               2, "both in env and in unset");
}

/* A rules file replaced by a FIFO must not stop the loop that reloads it
 * (this load would wait for a writer forever). */
Test(rules, a_rules_file_that_is_a_fifo_is_refused_without_waiting) {
  rules r;
  char err[RULES_ERR_MAX] = "";
  const char *fifo = make_fifo("rules.fifo");
  cr_assert_eq(rules_load(fifo, &r, err, sizeof err), -1);
  cr_assert_not_null(strstr(err, "not a regular file"), "got \"%s\"", err);
}

Test(rules, respond_fields_checked) {
  expect_error(
      "{\"rules\": [{\"respond\": {\"stdout\": \"\",\n\"stdout_file\": \"f\"}}]}", 2,
      "exclusive");
  expect_error("{\"rules\": [{\"respond\": {\n\"stdout_file\": \"missing.txt\"}}]}", 2,
               "missing.txt: No such file or directory");
  /* A FIFO would make each call wait on a writer: refused, never opened
   * blocking (this load would hang). */
  make_fifo("fifo");
  expect_error("{\"rules\": [{\"respond\": {\n\"stdout_file\": \"fifo\"}}]}", 2,
               "fifo: not a regular file");
  expect_error("{\"rules\": [{\"respond\": {\n\"delay_ms\": 3600001}}]}", 2, "1 hour");
  expect_error("{\"rules\": [{\"respond\": {\n\"stdout\": \"a\\u0000b\"}}]}", 2,
               "\\u0000");
  expect_error("{\"rules\": [{\"respond\": {\"exit\": 1,\n\"exit\": 2}}]}", 2,
               "duplicate key \"exit\"");
}

/* issue 16: the error names the escapes, and the README documents them. */
Test(rules, an_unknown_template_names_the_brace_escapes) {
  expect_error("{\"rules\": [{\"run\": {\"argv\": [\"echo\", \"{x}\"]}}]}", 1,
               "unknown template {x} (the templates: {@} {N} {-N} {cwd}; write {{ and }} "
               "for literal braces)");
  rules r;
  load_ok("{\"rules\": [{\"run\": {\"argv\": [\"printf\", \"{{%s}}\", \"{1}\"]}}]}", &r);
  rule_launch l;
  cr_assert_eq(rules_expand(&r.v[0].program, CALL("tool", "a"), NULL, &l), 0);
  cr_assert_str_eq(l.argv[1], "{%s}");
  rule_launch_free(&l);
  rules_free(&r);
}

/* argv0 is matched against a basename, which holds no '/'. */
Test(rules, an_argv0_glob_with_a_slash_is_a_load_error) {
  expect_error(
      "{\"rules\": [\n{\"match\": {\"argv0\": \"/usr/bin/git\"}, \"respond\": {}}]}", 2,
      "rules[0].match.argv0: \"/usr/bin/git\" can never match: argv0 is matched "
      "against the basename of argv[0] (write \"git\")");
  expect_error("{\"rules\": [{\"match\": {\"argv0\": \"*/cc\"}, \"respond\": {}}]}", 1,
               "(write \"cc\")");
  expect_error("{\"rules\": [{\"match\": {\"argv0\": \"a\\\\/b\"}, \"respond\": {}}]}", 1,
               "can never match");
  rules r;
  load_ok("{\"rules\": [{\"match\": {\"argv0\": \"[!/]c\"}, \"respond\": {}}]}", &r);
  cr_assert_eq(hit(&r, CALL("/usr/bin/cc")), 0, "a slash inside brackets is fine");
  rules_free(&r);
}

/* Sequenced answers, as bats-mock and pytest-subprocess give them. */
Test(rules, a_rule_with_times_answers_that_many_calls_then_the_next_matches) {
  rules r;
  load_ok(
      "{\"rules\": [{\"match\": {\"argv0\": \"git\"}, \"times\": 2, \"respond\": {}},\n"
      "           {\"match\": {\"argv0\": \"git\"}, \"times\": 1, \"respond\": {}},\n"
      "           {\"match\": {\"argv0\": \"curl\"}, \"respond\": {}}],\n"
      " \"default\": {\"respond\": {\"exit\": 127}}}",
      &r);
  cr_assert_eq(hit(&r, CALL("curl")), 2);
  cr_assert_eq(hit(&r, CALL("git", "fetch")), 0);
  cr_assert_eq(hit(&r, CALL("ls")), -1, "a call no rule takes counts against none");
  cr_assert_eq(hit(&r, CALL("git", "fetch")), 0);
  cr_assert_eq(hit(&r, CALL("git", "fetch")), 1);
  cr_assert_eq(hit(&r, CALL("git", "fetch")), -1, "all used: the default");
  cr_assert_eq(hit(&r, CALL("curl")), 2, "no times: every call");
  cr_assert_eq(hit(&r, CALL("curl")), 2);
  rules_free(&r);
  expect_error("{\"rules\": [{\"times\": 0, \"respond\": {}}]}", 1,
               "rules[0].times: expected a number of calls 1..1000000000");
  expect_error("{\"rules\": [{\"times\": 1.5, \"respond\": {}}]}", 1, "number of calls");
  expect_error("{\"rules\": [{\"times\": \"2\", \"respond\": {}}]}", 1,
               "number of calls");
  expect_error("{\"default\": {\"times\": 2, \"respond\": {}}}", 1,
               "the default has no \"times\"");
}
