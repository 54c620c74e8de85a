# SPDX-License-Identifier: MIT
"""What ships is what is used, and what a comment names exists.

- The library holds no hook of the fuzzers (they are compiled only into the
  fuzz build's copy, under SB_FUZZ).
- Every function of ours with external linkage is called from another file
  (a test, an example or the program counts), or is the public API: one
  used only where it is defined is static, one used nowhere is gone.
- Every file and every function a comment names exists.

SB_BUILD_DIR names the build whose objects are read (default build/gcc).
"""
import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("SB_BUILD_DIR", ROOT / "build" / "gcc")).resolve()
# The targets built from our sources (lib/, supervisor/, cli/, stub/, preload/).
OURS = ["sb_proto", "socketbridge_static", "socketbridge_cli", "sb_stub_lib",
        "socketbridge-stub", "socketbridge-exec"]
# External on purpose: LD_PRELOAD interposers (preload/exec.c) and programs.
CALLED_FROM_OUTSIDE = {"main", "execle", "execlp", "execvpe"}
C_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)


def nm(args, path):
    r = subprocess.run(["nm", *args, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def objects(dirs):
    """The objects in dirs whose source file still exists (a build directory
    keeps the objects of removed files)."""
    names = {f.name for f in sources()}
    for d in dirs:
        yield from (o for o in sorted(d.rglob("*.o")) if o.name.removesuffix(".o") in names)


def sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [ROOT / f for f in out.split()]


def comments(text):
    """(line, text) of each comment of C source text, string literals skipped."""
    for m in C_TOKEN.finditer(text):
        if m.group(0).startswith("/"):
            yield text.count("\n", 0, m.start()) + 1, m.group(0)


def test_the_library_ships_no_fuzz_hook():
    for lib in (BUILD / "libsocketbridge.so", BUILD / "libsocketbridge.a"):
        names = nm([], lib)
        for hook in ("sb__conn_feed", "sb__conn_feed_end"):
            assert not re.search(rf"\b{hook}\b", names), f"{lib.name} holds {hook}"


def test_every_function_of_ours_is_called_from_another_file():
    ours = [BUILD / "CMakeFiles" / f"{t}.dir" for t in OURS]
    users = ours + [BUILD / "tests" / "CMakeFiles", BUILD / "examples" / "CMakeFiles"]
    defined = {}
    for o in objects(ours):
        for line in nm(["--defined-only", "-g"], o).splitlines():
            _, kind, name = line.split()
            if kind == "T":
                defined.setdefault(name, o.name.removesuffix(".o"))
    assert len(defined) > 100, f"{BUILD}: the objects of {OURS} not found"
    called = set()
    for o in objects(users):
        called.update(line.split()[-1] for line in nm(["-u"], o).splitlines())
    public = set(re.findall(r"\b(sb_\w+)\(", (ROOT / "include" / "socketbridge.h").read_text()))
    unused = sorted(f"{n} ({f})" for n, f in defined.items()
                    if n not in called | public | CALLED_FROM_OUTSIDE)
    assert not unused, "external but called from no other file: " + ", ".join(unused)


def test_every_file_and_function_a_comment_names_exists():
    files = sources()
    names = {f.name for f in files}
    code = set()
    for f in files:
        text = C_TOKEN.sub(lambda m: " " if m.group(0)[0] == "/" else m.group(0),
                           f.read_text(errors="replace"))
        code.update(re.findall(r"\b\w+\b", text))
    stale = []
    for f in files:
        for line, text in comments(f.read_text(errors="replace")):
            where = f"{f.relative_to(ROOT)}:{line}"
            for n in re.findall(r"(?<![\w.-])[\w/.-]*?([\w-]+\.[ch])\b(?![\w(])", text):
                if n not in names and not (ROOT / "include" / n).exists():
                    stale.append(f"{where}: {n}")
            for n in re.findall(r"\b((?:sb_|sb__|cli_|stub_)\w*[a-z0-9])\b(?!\.[ch]\b)|\b(\w+)\(\)", text):
                n = n[0] or n[1]
                if n not in code:
                    stale.append(f"{where}: {n}")
    assert not stale, "comments name what does not exist:\n" + "\n".join(stale)
