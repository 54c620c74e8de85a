/* SPDX-License-Identifier: MIT */
/* test_path.c - sb_path_find: execvp's lookup, minus the stub's own shims.
 *
 * Each test builds its own tree in a fresh mkdtemp directory (tests run in
 * parallel, each in its own process):
 *   a/prog  b/prog  self   executables
 *   c/prog                 a file without any execute bit
 *   d/prog/                a directory named like the program
 *   e/prog -> ../self      a link to the "stub" */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[1024]; /* far below PATH_MAX: every path built from it fits */

static char *at(const char *rel) {
  static char bufs[8][PATH_MAX];
  static int next;
  char *p = bufs[next++ % 8];
  snprintf(p, PATH_MAX, "%s/%s", root, rel);
  return p;
}

static void mk_file(const char *rel, mode_t mode) {
  int fd = open(at(rel), O_WRONLY | O_CREAT | O_EXCL, 0600);
  cr_assert_geq(fd, 0, "create %s", rel);
  cr_assert_eq(write(fd, "#!/bin/sh\n", 10), 10);
  close(fd);
  cr_assert_eq(chmod(at(rel), mode), 0, "chmod %s", rel);
}

static void mk_dir(const char *rel) {
  cr_assert_eq(mkdir(at(rel), 0700), 0, "mkdir %s", rel);
}

static void make_tree(void) {
  const char *tmp = getenv("TMPDIR");
  int n = snprintf(root, sizeof root, "%s/sb_path_XXXXXX",
                   tmp != NULL && *tmp ? tmp : "/tmp");
  cr_assert_lt(n, (int)sizeof root, "TMPDIR too long");
  cr_assert_not_null(mkdtemp(root), "mkdtemp");
  mk_dir("a");
  mk_dir("b");
  mk_dir("c");
  mk_dir("d");
  mk_dir("e");
  mk_dir("d/prog");
  mk_file("a/prog", 0755);
  mk_file("b/prog", 0755);
  mk_file("c/prog", 0644);
  mk_file("self", 0755);
  cr_assert_eq(symlink("../self", at("e/prog")), 0, "symlink");
}

static void remove_tree(void) {
  const char *files[] = {"a/prog", "b/prog", "c/prog", "self", "e/prog"};
  const char *dirs[] = {"d/prog", "a", "b", "c", "d", "e"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    unlink(at(files[i]));
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    rmdir(at(dirs[i]));
  rmdir(root);
}

TestSuite(path, .init = make_tree, .fini = remove_tree);

/* A PATH value of tree directories: "a:b" gives "<root>/a:<root>/b". An
 * empty element stays empty; a trailing slash stays. */
static const char *path_of(const char *rels) {
  static char bufs[4][4 * PATH_MAX];
  static int next;
  char *out = bufs[next++ % 4];
  size_t n = 0;
  for (const char *p = rels;; p++) {
    size_t k = strcspn(p, ":");
    if (k > 0)
      n += (size_t)snprintf(out + n, sizeof bufs[0] - n, "%s/%.*s", root, (int)k, p);
    p += k;
    if (*p == '\0')
      break;
    out[n++] = ':';
  }
  out[n] = '\0';
  return out;
}

/* Looks prog up; asserts the result is want (a tree-relative path, or an
 * exact string when it starts with '.' or '/'). */
static void find_ok(const char *path, const char *skip, const char *skip_file,
                    const char *want) {
  char out[PATH_MAX];
  int r = sb_path_find("prog", path, skip, skip_file, out, sizeof out);
  cr_assert_eq(r, 0, "PATH=%s skip=%s: %s", path, skip ? skip : "-", sb_strerror(r));
  const char *w = want[0] == '.' || want[0] == '/' ? want : at(want);
  cr_assert_str_eq(out, w, "PATH=%s skip=%s", path, skip ? skip : "-");
}

static void find_err(const char *path, const char *skip, int want) {
  char out[PATH_MAX];
  int r = sb_path_find("prog", path, skip, NULL, out, sizeof out);
  cr_assert_eq(r, want, "PATH=%s: got %s, want %s", path, sb_err_name(r),
               sb_err_name(want));
}

Test(path, the_first_executable_on_path_wins) {
  find_ok(path_of("a:b"), NULL, NULL, "a/prog");
  find_ok(path_of("b:a"), NULL, NULL, "b/prog");
  find_ok(path_of("a:b"), "", NULL, "a/prog");
}

Test(path, skip_dirs_match_with_or_without_trailing_slashes) {
  char skip[2 * PATH_MAX];
  find_ok(path_of("a:b"), path_of("a"), NULL, "b/prog");
  find_ok(path_of("a:b"), path_of("a/"), NULL, "b/prog");
  find_ok(path_of("a/:b"), path_of("a"), NULL, "b/prog");
  find_ok(path_of("a//:b"), path_of("a/"), NULL, "b/prog");
  snprintf(skip, sizeof skip, "/nonexistent::%s", path_of("a"));
  find_ok(path_of("a:b"), skip, NULL, "b/prog");
  /* A prefix of a directory is not that directory. */
  snprintf(skip, sizeof skip, "%s/", root);
  find_ok(path_of("a:b"), skip, NULL, "a/prog");
  find_err(path_of("a:b"), path_of("a:b"), -ENOENT);
}

Test(path, the_skip_file_is_skipped_through_a_symlink) {
  find_ok(path_of("e:b"), NULL, NULL, "e/prog");
  find_ok(path_of("e:b"), NULL, at("self"), "b/prog");
  find_ok(path_of("e:b"), NULL, at("e/prog"), "b/prog");
  find_ok(path_of("e:b"), NULL, at("no/such/file"), "e/prog");
  char out[PATH_MAX];
  cr_assert_eq(sb_path_find("prog", path_of("e"), NULL, at("self"), out, sizeof out),
               -ENOENT);
}

Test(path, a_file_that_is_not_executable_is_eacces_when_nothing_better) {
  find_err(path_of("c"), NULL, -EACCES);
  find_ok(path_of("c:b"), NULL, NULL, "b/prog");
  find_err(path_of("c:d"), NULL, -EACCES);
  find_err(path_of("d:c"), NULL, -EACCES);
}

Test(path, a_directory_is_not_a_program) {
  find_err(path_of("d"), NULL, -ENOENT);
  find_ok(path_of("d:a"), NULL, NULL, "a/prog");
}

Test(path, nothing_found_is_enoent) {
  char out[PATH_MAX];
  cr_assert_eq(sb_path_find("nope", path_of("a:b:c:d"), NULL, NULL, out, sizeof out),
               -ENOENT);
  cr_assert_eq(sb_path_find("", path_of("a"), NULL, NULL, out, sizeof out), -ENOENT);
  cr_assert_eq(sb_path_find(NULL, path_of("a"), NULL, NULL, out, sizeof out), -ENOENT);
}

Test(path, a_name_with_a_slash_is_taken_as_it_is) {
  char out[PATH_MAX];
  cr_assert_eq(sb_path_find("no/such/prog", path_of("a"), NULL, NULL, out, sizeof out),
               0);
  cr_assert_str_eq(out, "no/such/prog");
  cr_assert_eq(
      sb_path_find(at("a/prog"), path_of("b"), path_of("b"), at("self"), out, sizeof out),
      0);
  cr_assert_str_eq(out, at("a/prog"), "a path that is not the stub is not looked up");
}

/* gcc's collect2 runs `ld` by the shim's absolute path, cmake the compiler:
 * a `{0}` that repeats it must not exec the stub again. */
Test(path, a_path_to_the_stub_is_looked_up_by_its_name_past_the_stub) {
  /* The same file as the stub, under another name. */
  find_ok(path_of("e:b"), NULL, at("self"), "b/prog");
  char out[PATH_MAX];
  cr_assert_eq(
      sb_path_find(at("e/prog"), path_of("e:b"), NULL, at("self"), out, sizeof out), 0);
  cr_assert_str_eq(out, at("b/prog"), "by identity");
  /* A file in a shim directory, whatever it is. */
  cr_assert_eq(
      sb_path_find(at("a/prog"), path_of("a:b"), path_of("a"), NULL, out, sizeof out), 0);
  cr_assert_str_eq(out, at("b/prog"), "by its directory");
  /* The stub itself, by its own path: nothing else is named like it. */
  cr_assert_eq(
      sb_path_find(at("self"), path_of("a:b"), NULL, at("self"), out, sizeof out),
      -ENOENT);
  cr_assert_eq(
      sb_path_find(at("e/prog"), path_of("e"), NULL, at("self"), out, sizeof out),
      -ENOENT);
}

Test(path, an_empty_element_is_the_current_directory) {
  cr_assert_eq(chdir(at("a")), 0);
  find_ok(path_of(":b"), NULL, NULL, "./prog");
  find_ok(path_of("b:"), NULL, NULL, "b/prog");
  find_ok(path_of("d::b"), NULL, NULL, "./prog");
  find_ok(path_of("c:"), NULL, NULL, "./prog");
  find_ok(path_of(":b"), ".", NULL, "b/prog");
  cr_assert_eq(chdir(at("c")), 0);
  find_err(path_of(":"), NULL, -EACCES);
}

Test(path, no_path_means_the_system_default) {
  char out[PATH_MAX];
  cr_assert_eq(sb_path_find("sh", NULL, NULL, NULL, out, sizeof out), 0);
  cr_assert_eq(out[0], '/', "%s", out);
  cr_assert_eq(sb_path_find("sh", "", NULL, NULL, out, sizeof out), 0);
  cr_assert_eq(sb_path_find("prog", "", NULL, NULL, out, sizeof out), -ENOENT);
}

Test(path, names_and_results_too_long_are_enametoolong) {
  char out[PATH_MAX];
  char name[NAME_MAX + 2];
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  cr_assert_eq(sb_path_find(name, path_of("a"), NULL, NULL, out, sizeof out),
               -ENAMETOOLONG);
  /* Found, but out cannot hold it. */
  size_t need = strlen(at("a/prog"));
  cr_assert_eq(sb_path_find("prog", path_of("a"), NULL, NULL, out, need), -ENAMETOOLONG);
  cr_assert_eq(sb_path_find("prog", path_of("a"), NULL, NULL, out, need + 1), 0);
  cr_assert_eq(sb_path_find("a/b", NULL, NULL, NULL, out, 3), -ENAMETOOLONG);
  /* A PATH element too long to try is reported only when nothing is found. */
  char longdir[PATH_MAX + 16];
  memset(longdir, 'd', sizeof longdir - 1);
  longdir[0] = '/';
  longdir[sizeof longdir - 1] = '\0';
  cr_assert_eq(sb_path_find("prog", longdir, NULL, NULL, out, sizeof out), -ENAMETOOLONG);
  char both[2 * PATH_MAX + 32];
  snprintf(both, sizeof both, "%s:%s", longdir, path_of("a"));
  cr_assert_eq(sb_path_find("prog", both, NULL, NULL, out, sizeof out), 0);
  snprintf(both, sizeof both, "%s:%s", longdir, path_of("c"));
  cr_assert_eq(sb_path_find("prog", both, NULL, NULL, out, sizeof out), -EACCES);
}
