# SPDX-License-Identifier: MIT
"""What a user copies from the docs works, and so does what a user installs.

- Every ```c block of README.md and docs/*.md compiles with -Wall -Werror, as a
  user compiles it: no _GNU_SOURCE, against an install, through pkg-config.
  A block that has main() is linked and run; a fragment is compiled alone,
  with the context its `<!-- snippet: SCOPE; DECLARATIONS -->` comment
  gives (SCOPE: `body`, inside a function; `file`, at file scope).
- examples/ builds standalone against the install, and runs.
- A consumer of the shared library needs no libcjson development files, and
  neither library links libcjson.

SB_BUILD_DIR names the build to install (default build/gcc).
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("SB_BUILD_DIR", ROOT / "build" / "gcc")).resolve()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- snippet: (?P<ctx>.*?) -->\n)?```c\n(?P<code>.*?)```", re.S)
WARN = ["-Wall", "-Werror"]


def c_blocks():
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start("code"))
            yield pytest.param(m.group("ctx"), m.group("code"),
                               id=f"{doc.relative_to(ROOT)}:{line}")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stdout}{r.stderr}"
    return r


@pytest.fixture(scope="session")
def prefix(tmp_path_factory):
    """socketbridge installed into a fresh prefix, as `cmake --install` does."""
    p = tmp_path_factory.mktemp("prefix")
    run(["cmake", "--install", str(BUILD), "--prefix", str(p)])
    return p


def pkg_env(prefix, libdir=None):
    env = dict(os.environ)
    pc = str(prefix / "lib" / "pkgconfig")
    if libdir is None:
        env["PKG_CONFIG_PATH"] = pc
    else:
        env["PKG_CONFIG_LIBDIR"] = f"{pc}:{libdir}"
    env["LD_LIBRARY_PATH"] = str(prefix / "lib")
    return env


def pkg_flags(prefix, env=None):
    out = run(["pkg-config", "--cflags", "--libs", "socketbridge"],
              env=env or pkg_env(prefix)).stdout
    return out.split()


@pytest.mark.parametrize("ctx,code", c_blocks())
def test_c_snippet_compiles(ctx, code, prefix, tmp_path):
    src = tmp_path / "snippet.c"
    if ctx is None:
        assert "int main(" in code, "a C block without a snippet comment must be a whole program"
        src.write_text(code)
        exe = tmp_path / "snippet"
        run(["cc", *WARN, str(src), "-o", str(exe), *pkg_flags(prefix)])
        return
    scope, _, decls = ctx.partition(";")
    scope = scope.strip()
    assert scope in ("body", "file"), f"unknown snippet scope {scope!r}"
    head = ("#include <limits.h>\n#include <signal.h>\n#include <stdio.h>\n"
            "#include <socketbridge.h>\n") + decls.strip() + "\n"
    if scope == "body":
        src.write_text(head + "void snippet(void);\nvoid snippet(void) {\n" + code + "}\n")
        extra = []
    else:
        src.write_text(head + code)
        extra = ["-Wno-unused-function"]  # a fragment's helpers have no caller here
    cflags = [f for f in pkg_flags(prefix) if f.startswith("-I")]
    run(["cc", *WARN, *extra, "-c", str(src), "-o", str(tmp_path / "snippet.o"), *cflags])


def test_the_readme_program_prints_the_stub_arguments(prefix, tmp_path):
    text = (ROOT / "README.md").read_text()
    code = next(m.group("code") for m in FENCE.finditer(text) if "int main(" in m.group("code"))
    src, exe = tmp_path / "main.c", tmp_path / "main"
    src.write_text(code)
    run(["cc", *WARN, str(src), "-o", str(exe), *pkg_flags(prefix)])
    r = run([str(exe)], env=pkg_env(prefix), timeout=60)
    assert r.stdout == "hello\nworld\n", r.stdout


def test_examples_build_standalone_against_an_install(prefix, tmp_path):
    b = tmp_path / "examples"
    run(["cmake", "-S", str(ROOT / "examples"), "-B", str(b), "-G", "Ninja",
         f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_C_FLAGS=-Wall -Werror"])
    run(["cmake", "--build", str(b)])
    r = run([str(b / "echo"), "sh", "-c", '"$SOCKETBRIDGE_STUB" a "b c"'],
            env=pkg_env(prefix), timeout=60)
    assert r.stdout.splitlines()[1:] == ["argv[1] = a", "argv[2] = b c"], r.stdout


@pytest.mark.parametrize("name", ["wrap", "fake_tool", "askpass"])
def test_the_readme_shows_the_three_jobs_as_examples_has_them(name):
    """The C section's programs are examples/*.c (run by t_examples) verbatim,
    from the first #include on, and each is 15 lines of code at most."""
    text = (ROOT / "examples" / f"{name}.c").read_text()
    code = text[text.index("#include"):]
    assert "```c\n" + code + "```" in (ROOT / "README.md").read_text(), name
    lines = [ln for ln in code.splitlines()
             if ln.strip() and not ln.startswith("#include")]
    # Comment lines do not count; there are none between the code lines here.
    assert not any(ln.lstrip().startswith(("/*", "*")) for ln in lines), name
    assert len(lines) <= 15, f"{name}: {len(lines)} lines of code"


def libuv_only_pkgconfig(tmp_path):
    """A pkg-config directory with libuv's file and nothing of libcjson's."""
    d = tmp_path / "pc"
    d.mkdir()
    uv = run(["pkg-config", "--variable=pcfiledir", "libuv"]).stdout.strip()
    shutil.copy(pathlib.Path(uv) / "libuv.pc", d / "libuv.pc")
    return d


def test_a_shared_library_consumer_needs_no_libcjson_development_files(prefix, tmp_path):
    env = pkg_env(prefix, libdir=libuv_only_pkgconfig(tmp_path))
    r = subprocess.run(["pkg-config", "--exists", "libcjson"], env=env)
    assert r.returncode != 0, "the test's pkg-config directory must hide libcjson"
    flags = pkg_flags(prefix, env)
    src, exe = tmp_path / "v.c", tmp_path / "v"
    src.write_text('#include <socketbridge.h>\n#include <stdio.h>\n'
                   'int main(void) { puts(sb_version_string()); return 0; }\n')
    run(["cc", *WARN, str(src), "-o", str(exe), *flags], env=env)
    assert run([str(exe)], env=env).stdout.strip() == "0.1.0"
    # CMake's package, with the same pkg-config directory.
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(v C)\n"
        "find_package(socketbridge REQUIRED)\nadd_executable(v ../v.c)\n"
        "target_link_libraries(v socketbridge::socketbridge)\n")
    run(["cmake", "-S", str(proj), "-B", str(proj / "b"), "-G", "Ninja",
         f"-DCMAKE_PREFIX_PATH={prefix}"], env=env)
    run(["cmake", "--build", str(proj / "b")], env=env)
    assert run([str(proj / "b" / "v")], env=env).stdout.strip() == "0.1.0"


def test_the_library_links_no_cjson(prefix, tmp_path):
    """lib/ reads and writes JSON itself: neither library needs libcjson, and
    neither does what the .pc tells a static consumer to link."""
    lib = prefix / "lib"
    assert "cjson" not in run(["ldd", str(lib / "libsocketbridge.so")]).stdout
    assert "cjson" not in (lib / "pkgconfig" / "socketbridge.pc").read_text()
    src, exe = tmp_path / "s.c", tmp_path / "s"
    src.write_text('#include <socketbridge.h>\n#include <stdio.h>\n#include <stdlib.h>\n'
                   'int main(void) { sb_event ev = {.type = SB_EVENT_SPAWN, .pid = 7};\n'
                   '  char *j; if (sb_event_to_json(&ev, &j) < 0) return 1;\n'
                   '  puts(j); free(j); return 0; }\n')
    env = pkg_env(prefix, libdir=libuv_only_pkgconfig(tmp_path))
    flags = run(["pkg-config", "--static", "--cflags", "--libs", "socketbridge"],
                env=env).stdout.split()
    static = [f"-L{lib}", "-Wl,-Bstatic", "-lsocketbridge", "-Wl,-Bdynamic"]
    run(["cc", *WARN, str(src), "-o", str(exe), *static, *flags], env=env)
    out = run([str(exe)]).stdout
    assert out.startswith('{"event":"spawn","ts":') and out.endswith(',"pid":7,"restarts":0}\n'), out


def test_the_man_pages_are_installed_and_render_cleanly(prefix):
    pages = sorted((prefix / "share" / "man" / "man1").glob("*.1"))
    assert [p.name for p in pages] == ["socketbridge-stub.1", "socketbridge.1"]
    for p in pages:
        r = subprocess.run(["man", "--warnings", "-l", str(p)], capture_output=True,
                           text=True, env={**os.environ, "MANWIDTH": "80"})
        assert r.returncode == 0 and r.stderr == "", f"{p.name}: {r.stderr}"
        assert "SYNOPSIS" in r.stdout and "DESCRIPTION" in r.stdout
    text = subprocess.run(["man", "-l", str(pages[1])], capture_output=True, text=True,
                          env={**os.environ, "MANWIDTH": "200"}).stdout
    for opt in re.findall(r"^\s+(--[a-z-]+)", run([str(BUILD / "socketbridge"), "--help"]).stdout,
                          re.M):
        assert opt in text, f"{opt} is in --help but not in socketbridge(1)"


@pytest.mark.parametrize("sub", ["shim", "stub-path", "compile-db"])
def test_each_subcommand_has_help(sub):
    r = subprocess.run([str(BUILD / "socketbridge"), sub, "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "socketbridge " + sub in r.stdout and r.stderr == ""


def test_every_source_file_says_its_license():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()
    src = [f for f in files if "corpus" not in f and (
        f.endswith((".c", ".h", ".py", ".sh", ".js", ".mjs", ".d.ts", ".cmake"))
        or f.endswith("CMakeLists.txt"))]
    assert len(src) > 100, src
    untagged = [f for f in src
                if "SPDX-License-Identifier: MIT" not in (ROOT / f).read_text()[:400]]
    assert untagged == [], f"no SPDX tag: {untagged}"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
