/* SPDX-License-Identifier: MIT */
/* main.c - the socketbridge command: subcommand dispatch, --help, --version.
 * Nothing but --help, --version and stub-path writes to stdout: a child's
 * output captured through stdout stays the child's. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "socketbridge.h"

extern char **environ;

/* The paragraphs of the subcommands, shared by --help and `SUB --help`. */
#define SHIM_HELP                                                                        \
  "shim: creates DIR if needed, and in it a link NAME -> the stub for each\n"            \
  "NAME. With SOCKETBRIDGE_FALLBACK=exec in its environment, a stub that\n"              \
  "cannot reach a supervisor runs the real NAME instead of failing.\n"
#define STUB_PATH_HELP                                                                   \
  "stub-path: prints the absolute path of the socketbridge-stub that run hands\n"        \
  "to COMMAND: the one next to this executable, else $SOCKETBRIDGE_STUB when\n"          \
  "absolute, else the one installed beside it, else the first on PATH, else\n"           \
  "the configured install path. Exit 125 when there is none (run --shim too,\n"          \
  "before anything runs).\n"

static const struct {
  const char *name, *usage, *text;
} sub_help[] = {
    {"shim", "Usage: socketbridge shim DIR NAME...\n\n", SHIM_HELP},
    {"stub-path", "Usage: socketbridge stub-path\n\n", STUB_PATH_HELP},
};

static const char help_text[] =
    "Usage: socketbridge run [OPTIONS] [--] COMMAND [ARG...]\n"
    "       socketbridge serve [--transport tcp|unix] [--control-fd N]\n"
    "       socketbridge send [--timeout SECS] JSON\n"
    "       socketbridge shim DIR NAME...\n"
    "       socketbridge stub-path\n"
    "       socketbridge compile-db [--output FILE] [--append] [--] BUILD [ARG...]\n"
    "       socketbridge --help | --version\n"
    "\n"
    "run: runs COMMAND under supervision, with a bridge on loopback that\n"
    "socketbridge-stub, run anywhere in COMMAND's process tree, connects back\n"
    "to. Each stub call gets what --rules says (without --rules: exit status 0\n"
    "and no output). COMMAND starts at the first word that is not an option,\n"
    "or after \"--\" (for a COMMAND that starts with '-').\n"
    "\n"
    "Options of run (each also as --OPTION=VALUE; a short one as -k VALUE or\n"
    "-kVALUE, and flags may be grouped, as -iv):\n"
    "  --transport tcp|unix     bridge transport (default tcp: 127.0.0.1, a port\n"
    "                           the kernel chooses)\n"
    "  --host ADDR              tcp: the address to listen on (an IPv4 or IPv6\n"
    "                           literal; default 127.0.0.1); one that is not\n"
    "                           loopback needs --allow\n"
    "  --allow LIST             tcp: only these peers may connect, a comma-\n"
    "                           separated list of addresses and prefixes\n"
    "                           (127.0.0.1,10.0.0.0/8,::1); default\n"
    "                           $SOCKETBRIDGE_ALLOWLIST when set\n"
    "  --socket PATH|@NAME      unix (implied): the socket at PATH (absolute),\n"
    "                           removed after the run, or the abstract socket\n"
    "                           NAME (no file); a socket file left at PATH that\n"
    "                           nobody listens on is replaced; default: a fresh\n"
    "                           0700 directory of the run's\n"
    "  --socket-mode MODE       the mode of the --socket PATH file (octal,\n"
    "                           default 0600; the owner keeps read and write);\n"
    "                           peers must still be socketbridge's own user\n"
    "  --env NAME=VALUE         add a variable to COMMAND's environment\n"
    "                           (repeatable)\n"
    "  -u, --unset NAME         remove NAME from COMMAND's environment\n"
    "                           (repeatable), as env(1)\n"
    "  -i, --ignore-environment\n"
    "                           COMMAND starts from an empty environment (then\n"
    "                           --env and the bridge variables), as env(1)\n"
    "  -C, --chdir DIR          run COMMAND in DIR, as env(1) (the files of\n"
    "                           other options are opened from socketbridge's own\n"
    "                           directory)\n"
    "  --stdin FILE             COMMAND's stdin reads FILE, each run from its\n"
    "                           start (default: inherited)\n"
    "  --stdout FILE            COMMAND's stdout goes to FILE, created or\n"
    "                           emptied once the checks pass: restarts append\n"
    "                           (default: inherited); - is socketbridge's own\n"
    "                           stdout\n"
    "  --stderr FILE            the same for stderr\n"
    "  --events FILE            write every event to FILE, created or truncated,\n"
    "                           as JSON Lines: one object per line, written as it\n"
    "                           happens, with \"event\" (spawn, exit, stop,\n"
    "                           timeout, restart, backoff, give_up, stub_connect,\n"
    "                           stub_reject, stub_exit, accept_paused,\n"
    "                           accept_resumed), \"ts\" (seconds since\n"
    "                           the epoch) and what applies (pid, status or\n"
    "                           signal, restarts, delay_ms...); - is socketbridge's\n"
    "                           stdout; a reader 4 MiB behind loses lines, counted\n"
    "                           in a {\"dropped\": N} line\n"
    "  --timeout DURATION       stop COMMAND after DURATION: seconds, or a\n"
    "                           number with a unit s, m, h or d, decimals allowed\n"
    "                           (0.5, 90s, 1.5m; 0: no timeout, the default): one\n"
    "                           deadline for the whole run from the first start,\n"
    "                           restarts and backoffs included, as timeout(1)\n"
    "  -k, --kill-after DURATION\n"
    "                           grace between the stop signal and SIGKILL\n"
    "                           (default 5s; 0: SIGKILL right away)\n"
    "  -s, --stop-signal SIG    the stop signal: TERM, INT, HUP, ... (SIG prefix\n"
    "                           optional) or a number (default TERM)\n"
    "  --preserve-status        when --timeout fires, exit as COMMAND did (not\n"
    "                           124 or 137), as timeout(1)\n"
    "  --restart no|on-failure|always\n"
    "                           run COMMAND again when it ends: never (the\n"
    "                           default), after a non-zero exit or a death by a\n"
    "                           signal, or always; never after a stop\n"
    "  --max-restarts N         at most N restarts in a row (default 5; 0: never);\n"
    "                           a run that stays up 10 s starts the count and the\n"
    "                           backoff over\n"
    "  --backoff MIN_MS:MAX_MS  delay before each restart in a row: MIN_MS, then\n"
    "                           doubling up to MAX_MS, each with jitter down to\n"
    "                           half of it (never below MIN_MS) (default\n"
    "                           100:30000)\n"
    "  --shim NAME              put a link NAME -> the stub first on COMMAND's\n"
    "                           PATH, in a directory of this run's (repeatable):\n"
    "                           every process of the tree that runs NAME runs\n"
    "                           the stub\n"
    "  --shim-dir DIR           put the --shim links in DIR (made if needed) and\n"
    "                           keep them after the run, so paths a build\n"
    "                           configured under it (cmake's compiler) stay\n"
    "                           valid\n"
    "  --rules FILE             what each stub call gets: JSON, the first rule\n"
    "                           whose match accepts the call wins, else the\n"
    "                           default, else exit 127 with one line on its\n"
    "                           stderr (format below); re-read when it changes\n"
    "  --record FILE            write one JSON line per stub call to FILE when\n"
    "                           the call ends: ts, pid, ppid, argv, cwd, env,\n"
    "                           action, rule, stdin/stdout/stderr ({bytes, data};\n"
    "                           data up to 64 KiB, {\"base64\": ...} when not\n"
    "                           UTF-8), exit or signal, duration_ms,\n"
    "                           close_reason, error; - and a slow reader as for\n"
    "                           --events\n"
    "  -v, --verbose            a live trace on stderr, one line per event and\n"
    "                           stub call as it happens: the time, the pid, the\n"
    "                           argv, the rule and action taken, the exit and\n"
    "                           the duration (JSON: --events, --record)\n"
    "  --no-tty                 COMMAND in a session of its own, without the\n"
    "                           terminal (see Terminal below)\n"
    "  --max-bytes N            the bridge's frame bound, 4096..268435456 bytes\n"
    "                           (default 1048576); children get it as\n"
    "                           SOCKETBRIDGE_MAX_BYTES. A hello (argv and\n"
    "                           environment) is not bound by it\n"
    "  --max-connections N      refuse stub connections beyond N at once as\n"
    "                           busy (default: no bound; when fds run out, stubs\n"
    "                           wait until some are freed)\n"
    "  -h, --help               this text\n"
    "\n"
    "Terminal: when socketbridge runs in the foreground of a terminal, COMMAND\n"
    "gets it as a shell's job does: a process group of its own, made the\n"
    "terminal's foreground group (given back after), so /dev/tty works (git,\n"
    "ssh and sudo can prompt) and ^C, ^Z and window size changes reach it;\n"
    "^C ends run as COMMAND ended (130), ^Z stops COMMAND and run with it.\n"
    "Otherwise, or with --no-tty, COMMAND runs in a session of its own,\n"
    "without a controlling terminal.\n"
    "\n"
    "Files: /dev/stdout, /dev/stderr, /dev/fd/N and socketbridge's own stdout\n"
    "or stderr file are appended to, never emptied; a FIFO nobody reads is an\n"
    "error (exit 125), never a wait; --rules and stdout_file must be regular\n"
    "files.\n"
    "\n"
    "Stopping: COMMAND runs in a process group of its own. When\n"
    "--timeout fires, or socketbridge receives SIGINT, SIGTERM or SIGHUP, the\n"
    "stop signal goes to COMMAND's whole process group, then SIGKILL after the\n"
    "grace; no restart follows. A second SIGINT, SIGTERM or SIGHUP sends SIGKILL\n"
    "at once.\n"
    "\n"
    "Environment of COMMAND: socketbridge's own (none with -i, less each -u),\n"
    "then each --env, then:\n"
    "  SOCKETBRIDGE_TOKEN       a fresh secret for this child; never printed\n"
    "  SOCKETBRIDGE_HOST, SOCKETBRIDGE_PORT\n"
    "                           the bridge (tcp), or\n"
    "  SOCKETBRIDGE_SOCKET      the bridge's socket path, or @NAME (unix)\n"
    "  SOCKETBRIDGE_STUB        the stub's absolute path (see stub-path), to\n"
    "                           point a tool at: GIT_EDITOR=\"$SOCKETBRIDGE_STUB\"\n"
    "These names cannot be given with --env. With --shim, PATH starts with the\n"
    "shim directory, and SOCKETBRIDGE_SHIMS (which program lookups skip) names\n"
    "it.\n"
    "\n"
    "Exit status of run:\n"
    "  N        COMMAND exited with N (its last run, after restarts)\n"
    "  128+N    COMMAND was killed by signal N\n"
    "  124      --timeout fired; 137 when the stop then needed SIGKILL, as\n"
    "           timeout -k (--preserve-status: COMMAND's own status instead)\n"
    "  125      socketbridge itself failed (a bad option, a file it could not\n"
    "           open...), with one line on stderr\n"
    "  126      COMMAND was found but could not be run\n"
    "  127      COMMAND was not found\n"
    "\n"
    "Rules file (--rules):\n"
    "  {\"rules\": [\n"
    "     {\"match\": {\"argv0\": \"git\", \"args\": [\"commit\", \"**\"]},\n"
    "      \"respond\": {\"stdout\": \"ok\\n\", \"exit\": 3}},\n"
    "     {\"match\": {\"argv0\": \"ssh\"}, \"delegate\": {\"argv\": [\"sh\", \"-c\", "
    "\"{-1}\"]}},\n"
    "     {\"match\": {\"argv0\": \"cc\"}, \"exec\": {\"argv\": [\"cc\", \"{@}\"]}},\n"
    "     {\"match\": {\"argv0\": \"make\"}, \"run\": {\"argv\": [\"make\", \"{@}\"], "
    "\"tee\": true}}],\n"
    "   \"default\": {\"respond\": {\"exit\": 127, \"stderr\": \"unexpected "
    "call\\n\"}}}\n"
    "  match: argv0 (glob on the basename of argv[0]), args (a glob per argument;\n"
    "  \"**\" matches any number of them), cwd (glob), env (NAME: glob); globs are\n"
    "  fnmatch(3)'s. respond: stdout, stderr, stdout_file, exit or signal,\n"
    "  delay_ms: the supervisor answers, at once (\"stdin\": true: once the call's\n"
    "  stdin has ended, a terminal's excepted). delegate: the supervisor runs argv and\n"
    "  splices it to the call. exec: the call becomes argv. run: the call runs\n"
    "  argv and relays its output here (tee: also to its own). delegate, exec and\n"
    "  run also take cwd, env (NAME: value) and unset (names); argv[0] is looked\n"
    "  up in the call's PATH without the shim directories. In argv, cwd and env\n"
    "  values: {@} all the arguments, {N} argument N, {-1} the last, {0} argv[0],\n"
    "  {cwd} the call's cwd, {{ and }} literal braces. A rule with \"times\": N\n"
    "  answers N calls, then the next matching rule answers. A bad rules file:\n"
    "  exit 125 with FILE:LINE: reason.\n"
    "\n" SHIM_HELP "\n" STUB_PATH_HELP "\n"
    "compile-db: runs BUILD under run, every C or C++ compiler call it makes\n"
    "recorded and then exec'd in place, and writes compile_commands.json\n"
    "(--output FILE) with Bear's entries; --append keeps FILE's entries,\n"
    "--record FILE keeps every call's record, --from-record FILE converts one\n"
    "and runs nothing (socketbridge compile-db --help, docs/compile-db.md).\n"
    "\n"
    "serve: the supervisor driven by a controller program over a control\n"
    "channel (its stdin and stdout, or the socket fd N): every stub call, its\n"
    "stdin and its answer, tickets, shims, supervised commands, events,\n"
    "side-band messages and status. docs/control.md is the protocol. Runs\n"
    "until the channel ends; exit 0, or 125 when it cannot start or the\n"
    "channel breaks.\n"
    "\n"
    "send: sends one JSON message (an object with a string \"type\") to the\n"
    "supervisor this process runs under and prints its JSON reply on one\n"
    "line. {\"type\":\"ping\"} and {\"type\":\"status\"} are answered by the\n"
    "supervisor; other types by its controller. Exit 0; 1 when the reply is\n"
    "an error ({\"type\":\"error\"}, e.g. no_handler), said on stderr; 125\n"
    "when no reply came (no supervisor, bad JSON, rejected, --timeout, default\n"
    "60 s).\n"
    "\n"
    "socketbridge writes nothing of its own to stdout, except --help, --version\n"
    "and stub-path; its errors are one line on stderr.\n";

void cli_error(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  int n = snprintf(line, sizeof line, "socketbridge: ");
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One write, so the line is not interleaved with a child's stderr. */
  fprintf(stderr, "%s\n", line);
}

static int print_stdout(const char *text) {
  fputs(text, stdout);
  return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
}

static int run(int argc, char **argv) {
  char err[CLI_ERR_MAX];
  cli_options o;
  int r = cli_parse_run(argc, argv, environ, &o, err);
  if (r < 0) {
    fprintf(stderr, "%s\n", err);
    return CLI_EXIT_FAILURE;
  }
  if (r > 0)
    return print_stdout(help_text);
  r = cli_run(&o);
  cli_options_free(&o);
  return r;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : NULL;

  if (cmd == NULL) {
    cli_error("missing a subcommand: run, shim, stub-path (see socketbridge --help)");
    return CLI_EXIT_FAILURE;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    if (argc != 2) {
      cli_error("%s takes no argument", cmd);
      return CLI_EXIT_FAILURE;
    }
    return print_stdout(help_text);
  }
  if (strcmp(cmd, "--version") == 0) {
    if (argc != 2) {
      cli_error("--version takes no argument");
      return CLI_EXIT_FAILURE;
    }
    printf("socketbridge %s\n", sb_version_string());
    return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
  }
  for (size_t i = 0; i < sizeof sub_help / sizeof sub_help[0]; i++)
    if (argc == 3 && strcmp(cmd, sub_help[i].name) == 0 &&
        (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
      return print_stdout(sub_help[i].usage) == 0 ? print_stdout(sub_help[i].text)
                                                  : CLI_EXIT_FAILURE;
  if (strcmp(cmd, "run") == 0)
    return run(argc - 1, argv + 1);
  if (strcmp(cmd, "shim") == 0)
    return cli_shim(argc - 1, argv + 1);
  if (strcmp(cmd, "compile-db") == 0)
    return cli_compile_db(argc - 1, argv + 1);
  if (strcmp(cmd, "serve") == 0)
    return cli_serve(argc - 1, argv + 1);
  if (strcmp(cmd, "send") == 0)
    return cli_send(argc - 1, argv + 1);
  if (strcmp(cmd, "stub-path") == 0) {
    if (argc != 2) {
      cli_error("stub-path takes no argument");
      return CLI_EXIT_FAILURE;
    }
    return cli_stub_path();
  }
  cli_error("%s: unknown subcommand (see socketbridge --help)", cmd);
  return CLI_EXIT_FAILURE;
}
