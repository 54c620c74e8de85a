# SPDX-License-Identifier: MIT
"""`socketbridge compile-db` against Bear (Debian's bear), on real builds.

Each test builds the same project twice from the same state, once under
`bear --` and once under `socketbridge compile-db --`, and compares the two
compile_commands.json: the same entries (directory, file, output and
arguments), with the two build directories' names made alike.
"""
import json
import os
import re
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("SB_BUILD_DIR", ROOT / "build" / "gcc")).resolve()
SB = str(BUILD / "socketbridge")

pytestmark = pytest.mark.skipif(shutil.which("bear") is None, reason="bear is not installed")


def run(cmd, cwd, **kw):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    return r


def entries(path, root, keep=lambda e: True):
    """The entries of a compile_commands.json, keyed by (file, output), with
    root written as ROOT so that two trees compare."""
    def norm(s):
        return s.replace(str(root), "ROOT")
    out = {}
    for e in json.loads(path.read_text()):
        if not keep(e):
            continue
        key = (norm(e["file"]), norm(e.get("output", "")))
        assert key not in out, f"two entries for {key}"
        out[key] = {"directory": norm(e["directory"]),
                    "arguments": [norm(a) for a in e["arguments"]]}
    return out


def twice(tmp_path, setup, build, keep=lambda e: True):
    """setup(dir) prepares a tree; build is the command, run in each tree
    under bear and under compile-db. Returns (bear's, ours)."""
    got = []
    for who in ("bear", "sb"):
        d = tmp_path / who
        d.mkdir()
        setup(d)
        wrap = ["bear", "--"] if who == "bear" else [SB, "compile-db", "--"]
        run(wrap + build, d)
        got.append(entries(d / "compile_commands.json", d, keep))
    return got


def assert_same(bear, ours, at_least):
    assert len(bear) >= at_least, f"bear recorded {len(bear)} entries: {sorted(bear)}"
    for k in sorted(set(bear) | set(ours)):
        assert ours.get(k) == bear.get(k), f"{k}: bear {bear.get(k)}, ours {ours.get(k)}"


MAKEFILE = """\
all: app sub/lib.o as.o
app: main.o util.o
\tcc -o app main.o util.o
%.o: %.c
\tcc -O2 -MD -MF $*.d -c $< -o $@
sub/lib.o: sub/lib.c
\tcd sub && gcc -Wall -DLIB=1 -I ../inc -c lib.c
as.o: as.s
\tcc -c as.s -o as.o
\tcc -E main.c >/dev/null
\tcc --version >/dev/null
\tcc -c -x c - -o stdin.o <main.c
\tc++ -std=c++17 -c x.cc -o x.o
"""


def make_project(d):
    (d / "inc").mkdir()
    (d / "sub").mkdir()
    (d / "inc" / "h.h").write_text("#define H 1\n")
    (d / "main.c").write_text("int util(void);\nint main(void) { return util(); }\n")
    (d / "util.c").write_text("int util(void) { return 0; }\n")
    (d / "sub" / "lib.c").write_text('#include "h.h"\nint lib(void) { return H; }\n')
    (d / "as.s").write_text(".text\n")
    (d / "x.cc").write_text("int x() { return 1; }\n")
    (d / "Makefile").write_text(MAKEFILE)


def test_a_makefile_project_gives_bears_entries(tmp_path):
    bear, ours = twice(tmp_path, make_project, ["make", "-j2"])
    assert_same(bear, ours, at_least=5)


SMALL_CMAKE = """\
cmake_minimum_required(VERSION 3.25)
project(p C CXX)
add_library(l STATIC l.c)
add_executable(app main.cc)
target_link_libraries(app l)
target_compile_definitions(app PRIVATE APP=1)
"""


def cmake_project(d):
    (d / "l.c").write_text("int l(void) { return 0; }\n")
    (d / "main.cc").write_text('extern "C" int l(void);\nint main() { return l(); }\n')
    (d / "CMakeLists.txt").write_text(SMALL_CMAKE)


def configured(setup):
    def go(d):
        setup(d)
        run(["cmake", "-S", ".", "-B", "b", "-G", "Unix Makefiles"], d)
    return go


def test_cmake_configured_outside_the_run_gives_bears_entries(tmp_path):
    """CMake calls the compiler by its absolute path: no shim sees it."""
    bear, ours = twice(tmp_path, configured(cmake_project), ["cmake", "--build", "b"])
    assert_same(bear, ours, at_least=2)
    assert all(e["arguments"][0].startswith("/") for e in ours.values())


def not_scratch(e):
    """CMake's try_compile builds in directories named at random each run."""
    return "CMakeScratch" not in e["directory"] and "CMakeFiles/CMakeTmp" not in e["directory"]


def test_cmake_configured_in_the_run_gives_bears_entries(tmp_path):
    bear, ours = twice(tmp_path, cmake_project,
                       ["sh", "-c", 'cmake -S . -B b -G "Unix Makefiles" && cmake --build b'],
                       keep=not_scratch)
    assert_same(bear, ours, at_least=2)


def this_project(d):
    run(["cmake", "-S", str(ROOT), "-B", str(d / "b"), "-G", "Unix Makefiles",
         "-DSB_TESTS=OFF", "-DSB_EXAMPLES=OFF"], d)


def test_this_project_configured_outside_gives_bears_entries(tmp_path):
    """The library and the stub: gcc by path from CMake, and (where
    musl-gcc is found) musl-gcc, a script that runs x86_64-linux-gnu-gcc by
    name."""
    bear, ours = twice(tmp_path, this_project,
                       ["cmake", "--build", "b", "-j2", "--", "socketbridge-stub",
                        "socketbridge_static"])
    assert_same(bear, ours, at_least=30)


SPAWNER = r"""
#include <unistd.h>
int main(void) {
  char *argv[] = {"cc", "-c", "s.c", "-o", "s.o", 0};
  execvp("cc", argv);
  return 127;
}
"""


def test_a_static_program_calling_a_compiler_by_name_is_recorded(tmp_path):
    """LD_PRELOAD does not reach a static program; the shims do."""
    (tmp_path / "spawner.c").write_text(SPAWNER)
    run(["cc", "-static", "-o", "spawner", "spawner.c"], tmp_path)
    (tmp_path / "s.c").write_text("int s;\n")
    run([SB, "compile-db", "--", "./spawner"], tmp_path)
    got = json.loads((tmp_path / "compile_commands.json").read_text())
    assert [e["file"] for e in got] == [str(tmp_path / "s.c")]
    assert (tmp_path / "s.o").exists()


def test_append_from_record_and_record(tmp_path):
    (tmp_path / "a.c").write_text("int a;\n")
    (tmp_path / "b.c").write_text("int b;\n")
    run([SB, "compile-db", "--record", "calls.jsonl", "--", "cc", "-c", "a.c"], tmp_path)
    run([SB, "compile-db", "--append", "--", "cc", "-c", "b.c"], tmp_path)
    files = [e["file"] for e in json.loads((tmp_path / "compile_commands.json").read_text())]
    assert files == [str(tmp_path / "a.c"), str(tmp_path / "b.c")]
    run([SB, "compile-db", "--output", "again.json", "--from-record", "calls.jsonl"], tmp_path)
    again = json.loads((tmp_path / "again.json").read_text())
    assert [e["file"] for e in again] == [str(tmp_path / "a.c")]


@pytest.mark.parametrize("args", [["--bogus", "--", "true"], ["--output"], [],
                                  ["--from-record", "x", "--", "true"]])
def test_a_bad_command_line_exits_125_and_touches_nothing(tmp_path, args):
    out = tmp_path / "compile_commands.json"
    out.write_text("precious")
    r = subprocess.run([SB, "compile-db", *args], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 125, r.stderr
    assert r.stderr.startswith("socketbridge: compile-db: "), r.stderr
    assert out.read_text() == "precious"


def readme_blocks(heading):
    """The ```sh blocks of the README section under heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    section = section[:section.find("\n## ", 1) if "\n## " in section else None]
    nxt = section.find("\n### ", 1)
    section = section[:nxt] if nxt > 0 else section
    return [m.group(1) for m in re.finditer(r"```sh\n(.*?)```", section, re.S)]


def test_the_readme_compile_db_recipe_runs_verbatim(tmp_path):
    recipe = next(b for b in readme_blocks("### Recording a build") if "compile-db" in b)
    make_project(tmp_path)
    env = {**os.environ, "PATH": f"{BUILD}:{os.environ['PATH']}"}
    run(["sh", "-ec", recipe], tmp_path, env=env)
    got = json.loads((tmp_path / "compile_commands.json").read_text())
    assert {pathlib.Path(e["file"]).name for e in got} >= {"main.c", "util.c", "lib.c"}
