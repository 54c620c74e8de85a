/* SPDX-License-Identifier: MIT */
/* proto.h - the wire protocol's internals, shared by the stub and the
 * supervisor: frames, control messages, the environment's configuration,
 * program lookup and the helpers of lib/. Not installed and not exported
 * (the library is built with hidden visibility): the wire structs may
 * change without an ABI break. The protocol's public names (errors, reject
 * reasons, signal names, environment variables) are in socketbridge.h.
 *
 * docs/protocol.md is the byte-level specification; this header is its C
 * face. Conventions, as in libuv:
 * - Functions that can fail return 0 or a negative errno value (SB_E*
 *   names the ones this layer produces); sb_strerror() describes one.
 * - Where the cause of an error is worth more than its code (which field of
 *   which message, which environment variable), the function also fills an
 *   sb_diag the caller passes (may be NULL). The diag never contains a token.
 * - Nothing here writes to stdout or stderr.
 * - Names of lib/'s own helpers, used only between its files, start sb__.
 */
#ifndef SB_PROTO_H
#define SB_PROTO_H

#include "socketbridge.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- names of values ----------------------------------------------------- */

/* A value and its name: a row of the table an SB_*_MAP(X) list makes with
 * SB__NAMED_ROW, which the name functions (sb_reason_name...) read. */
typedef struct sb__named {
  int value;
  const char *name;
} sb__named;
#define SB__NAMED_ROW(id, value, name) {id, name},
#define SB__NROWS(table) (sizeof(table) / sizeof((table)[0]))

/* The name of value in table (n rows), or NULL. */
static inline const char *sb__name_of(const sb__named *table, size_t n, int value) {
  for (size_t i = 0; i < n; i++)
    if (table[i].value == value)
      return table[i].name;
  return NULL;
}

/* The value of name (NULL: none) in table, or 0. */
static inline int sb__value_of(const sb__named *table, size_t n, const char *name) {
  for (size_t i = 0; name != NULL && i < n; i++)
    if (strcmp(table[i].name, name) == 0)
      return table[i].value;
  return 0;
}

#define SB_FRAME_HEADER 5 /* u32 length + u8 kind */
/* The bound of the control frames that carry a command line: hello (argv,
 * env) and exec/run. max_bytes does not bound them: what execve(2) accepts
 * (argv + env up to 6 MiB, 3/4 of the kernel's 8 MiB stack cap, each byte up
 * to 6 in JSON) must pass. A receiver buffers it only from a peer it trusts
 * (docs/protocol.md section 1). */
#define SB_CTL_MAX_BYTES (64u * 1024u * 1024u)
/* The prefix a hello longer than max_bytes begins with, token excluded:
 * {"type":"hello","token":"<64 hex digits>" */
#define SB_HELLO_PREFIX "{\"type\":\"hello\",\"token\":\""
#define SB_HELLO_PREFIX_LEN (sizeof SB_HELLO_PREFIX - 1 + SB_TOKEN_HEX + 1)

/* ---- frames ------------------------------------------------------------ */

/* A frame is: u32 length (big-endian; the bytes that follow it, kind
 * included, so length >= 1) | u8 kind | payload (length - 1 bytes).
 * length must not exceed max_bytes. */
#define SB_KIND_MAP(X)                                                                   \
  X(SB_KIND_CONTROL, 1, "control") /* payload: one UTF-8 JSON object */                  \
  X(SB_KIND_STDIN, 2, "stdin")     /* payload: raw bytes; empty closes the stream */     \
  X(SB_KIND_STDOUT, 3, "stdout")                                                         \
  X(SB_KIND_STDERR, 4, "stderr")
typedef enum sb_kind { SB_KIND_MAP(SB__ENUM_ENTRY) } sb_kind;

/* Stream index of a data kind (stdin 0, stdout 1, stderr 2), or -1. */
int sb_kind_stream(int kind);
/* Data kind of a stream index 0..2, or 0. */
int sb_stream_kind(int stream);
/* "control", "stdin", "stdout", "stderr" or "unknown". */
const char *sb_kind_name(int kind);

/* Writes the 5-byte header of a frame whose payload has payload_len bytes.
 * The caller sends header and payload together (writev), so data is never
 * copied to be framed. */
void sb_frame_header(uint8_t out[SB_FRAME_HEADER], sb_kind kind, uint32_t payload_len);

/* What the decoder hands out. Control frames are always whole. Data frames
 * are handed out as they arrive, in one or more pieces that never copy
 * where the input holds them already: every piece of a non-empty data frame
 * has len > 0, and the frame's last piece has `end` set. An empty data frame
 * (end of that stream) is one event with len == 0 and end set. So splitting
 * the input differently changes only how a data frame is cut into pieces,
 * never the frames: concatenating pieces up to `end` gives the frame. */
typedef struct sb_frame {
  sb_kind kind;
  const uint8_t *data; /* valid until the next sb_decoder_* call */
  size_t len;
  bool end; /* this piece ends the frame */
} sb_frame;

typedef struct sb_decoder {
  uint32_t max_bytes;
  uint32_t ctl_max; /* control frames' bound: max_bytes unless raised */
  /* Private. */
  uint8_t hdr[SB_FRAME_HEADER];
  size_t hdr_have;
  uint8_t kind;
  uint32_t body_left; /* payload bytes of the current frame still to come */
  bool in_body;
  uint8_t *ctl; /* buffer of a control frame being assembled */
  size_t ctl_len, ctl_cap;
  bool failed;
} sb_decoder;

/* max_bytes 0 means SB_DEFAULT_MAX_BYTES. */
void sb_decoder_init(sb_decoder *d, uint32_t max_bytes);
/* Bounds control frames by ctl_max instead of max_bytes (0: max_bytes
 * again), for the frames that follow; a frame whose header is in already
 * keeps the bound it was checked against. Data frames keep max_bytes: a
 * length is checked against both once the kind byte is in. */
void sb_decoder_set_ctl_max(sb_decoder *d, uint32_t ctl_max);
/* Bytes the decoder holds now (its control buffer). Reading k more bytes
 * grows it by at most SB_DECODER_GROWTH(k). */
size_t sb_decoder_held(const sb_decoder *d);
#define SB_DECODER_GROWTH(k) (2 * (size_t)(k) + 65536)
/* Frees what the decoder holds; it may be initialised again. */
void sb_decoder_free(sb_decoder *d);

/* Takes bytes from *buf and *len (advancing both past what it used) and
 * produces at most one event in *out. Returns 1 when *out holds an event,
 * 0 when every input byte has been used and more are needed, or an error:
 * SB_EMSGSIZE (a length over its bound, found before any byte of its body is
 * buffered), SB_EBADMSG (length 0, unknown kind), SB_ENOMEM. After an error
 * the decoder stays failed and returns the same error. Call it in a loop
 * until it returns 0: `while ((r = sb_decoder_next(&d, &p, &n, &f)) > 0)`. */
int sb_decoder_next(sb_decoder *d, const uint8_t **buf, size_t *len, sb_frame *out,
                    sb_diag *diag);

/* True when no frame is partly received: a peer that closes now has not
 * cut a frame short. */
bool sb_decoder_idle(const sb_decoder *d);

/* ---- control messages -------------------------------------------------- */

/* Every control message is a JSON object with a "type" string. The types: */
#define SB_MSG_TYPE_MAP(X)                                                               \
  X(SB_MSG_HELLO, 1, "hello")     /* stub -> supervisor: who am I */                     \
  X(SB_MSG_WELCOME, 2, "welcome") /* supervisor -> stub: accepted, version chosen */     \
  X(SB_MSG_REJECT, 3, "reject")   /* supervisor -> stub: refused, with a reason */       \
  X(SB_MSG_EXIT, 4, "exit")       /* supervisor -> stub: exit with a code or a signal */ \
  X(SB_MSG_SIGNAL, 5, "signal")   /* stub -> supervisor: the stub received a signal */   \
  /* stub -> supervisor: writing stdout/stderr failed */                                 \
  X(SB_MSG_STREAM_ERROR, 6, "stream_error")                                              \
  X(SB_MSG_EXEC, 7, "exec")     /* supervisor -> stub: execve a program in place */      \
  X(SB_MSG_RUN, 8, "run")       /* supervisor -> stub: spawn a program, relay its I/O */ \
  X(SB_MSG_EXITED, 9, "exited") /* stub -> supervisor: the program of `run` ended */     \
  /* stub -> supervisor: its terminal was resized (after pty) */                         \
  X(SB_MSG_WINSIZE, 10, "winsize")                                                       \
  X(SB_MSG_PTY, 11, "pty") /* supervisor -> stub: the call runs on a pty; go raw */
typedef enum sb_msg_type { SB_MSG_TYPE_MAP(SB__ENUM_ENTRY) } sb_msg_type;

/* The wire name of a type ("hello"), or NULL. */
const char *sb_msg_type_name(sb_msg_type t);

/* A NULL-terminated list of NUL-terminated byte strings (argv, env).
 * Strings are bytes, as on POSIX: they need not be UTF-8. */
typedef struct sb_strv {
  char **v; /* v[n] == NULL */
  size_t n;
} sb_strv;

typedef struct sb_hello {
  int version;     /* highest protocol version the stub speaks */
  int min_version; /* lowest; absent on the wire means == version */
  char token[SB_TOKEN_HEX + 1];
  int64_t pid, ppid;
  sb_strv argv; /* at least argv[0]... may be empty if the stub ran with none */
  sb_strv env;  /* "NAME=VALUE" entries, SOCKETBRIDGE_TOKEN left out */
  char *cwd;    /* NULL when the stub could not tell (deleted directory) */
  char *exe;    /* the stub's executable path, NULL when unknown */
  unsigned tty; /* SB_TTY_* */
  /* The size of the stub's terminal (the first of fds 0, 1, 2 that is
   * one), wire: "winsize", absent when none is. Its presence also says the
   * stub understands `pty` and then reports resizes. */
  bool has_winsize;
  sb_winsize winsize;
} sb_hello;

/* How a process ended or must end: a code 0..255, or a signal. */
typedef struct sb_status {
  int code;   /* valid when signal == 0 */
  int signal; /* a signal number, 0 for none */
} sb_status;

/* exec and run: what program to start and how. The program's environment
 * is the stub's own (SOCKETBRIDGE_TOKEN included, so stubs further down
 * still connect), less `unset`, plus `set`. */
typedef struct sb_launch {
  sb_strv argv;  /* argv[0] is looked up as sb_path_find() says, unless path is set */
  char *path;    /* NULL: look argv[0] up */
  char *cwd;     /* NULL: the stub's own cwd */
  sb_strv set;   /* "NAME=VALUE": set or replaced (wire: "env") */
  sb_strv unset; /* "NAME": removed before `set` applies (wire: "unset") */
  bool tee;      /* run: also write the program's output to the stub's own fds */
} sb_launch;

typedef struct sb_msg {
  sb_msg_type type;
  union {
    sb_hello hello; /* SB_MSG_HELLO */
    struct {
      int version;
      /* The stub must leave its stdin alone (wire: "stdin": false): an
       * exec or run follows, and the program gets the stdin whole. */
      bool hold_stdin;
    } welcome; /* SB_MSG_WELCOME */
    struct {
      sb_reason reason;
      char *message;
    } reject;       /* SB_MSG_REJECT */
    sb_status exit; /* SB_MSG_EXIT, SB_MSG_EXITED */
    struct {
      int signal;
    } signal; /* SB_MSG_SIGNAL */
    struct {
      int stream;
      int err;
      char *message;
    } stream_error;     /* err: negative errno */
    sb_launch launch;   /* SB_MSG_EXEC, SB_MSG_RUN */
    sb_winsize winsize; /* SB_MSG_WINSIZE; SB_MSG_PTY has no member */
  } u;
} sb_msg;

/* Parses one control payload. Validates everything: the payload is UTF-8
 * with no NUL escape, a JSON object, with a known type, every required field
 * present, of its type and range; unknown fields are ignored (so later
 * versions can add some). On success *out owns its memory: release it with
 * sb_msg_free(). On error *out is left empty (safe to free) and diag says
 * which field was wrong and why. Returns 0, SB_EBADMSG or SB_ENOMEM. */
int sb_msg_parse(const uint8_t *payload, size_t len, sb_msg *out, sb_diag *diag);

/* Frees what a parsed or built message owns; leaves it zeroed. */
void sb_msg_free(sb_msg *m);

/* Encodes a message as one whole control frame, header included, into a
 * fresh malloc'd buffer (*frame, *frame_len; the caller frees it), ready for
 * one write. Returns 0, SB_EINVAL (a field out of range), SB_EMSGSIZE (the
 * frame would exceed max_bytes; 0 means the default) or SB_ENOMEM. */
int sb_msg_encode(const sb_msg *m, uint32_t max_bytes, uint8_t **frame,
                  size_t *frame_len);

/* ---- token ------------------------------------------------------------- */

/* True when s is a well-formed token (SB_TOKEN_HEX lowercase hex digits). */
bool sb_token_valid(const char *s);

/* ---- configuration from the environment -------------------------------- */

/* The bridge settings a stub (or anything in a child's tree) finds in its
 * environment. */
typedef struct sb_config {
  char token[SB_TOKEN_HEX + 1]; /* "" when SOCKETBRIDGE_TOKEN is unset */
  char host[64];                /* SOCKETBRIDGE_HOST, default "127.0.0.1" */
  uint16_t port;                /* SOCKETBRIDGE_PORT, 0 when unset */
  /* SOCKETBRIDGE_SOCKET, "" when unset; wins over host/port. An absolute
   * path, or "@name" for a Linux abstract socket (see sb_unix_address). */
  char socket_path[108];
  uint32_t max_bytes; /* SOCKETBRIDGE_MAX_BYTES, default SB_DEFAULT_MAX_BYTES */
  /* SOCKETBRIDGE_ALLOWLIST is the supervisor's (socketbridge run reads
   * it): a stub has no use for it, and a malformed one never stops it. */
} sb_config;

/* Reads the SOCKETBRIDGE_* variables from envp ("NAME=VALUE" strings,
 * NULL-terminated; NULL means the process environment). A variable that is
 * set but malformed is an error that names it and says what is wrong with
 * the value (never echoing a token): SB_EINVAL. A missing token or address is
 * not an error here (the caller decides, see sb_config_require). Free with
 * sb_config_free. */
int sb_config_from_env(char *const *envp, sb_config *out, sb_diag *diag);
/* SB_ENOENT with a diag naming what is missing when cfg has no token or no
 * address; 0 otherwise. */
int sb_config_require(const sb_config *cfg, sb_diag *diag);
void sb_config_free(sb_config *cfg);

struct sockaddr_un;
/* The address of a Unix socket named as SOCKETBRIDGE_SOCKET names it: a
 * path, or "@name" for the abstract socket "name" (sun_path[0] is NUL and
 * the length, not a NUL, ends the name, so both ends must use this). Fills
 * *sa and *len. Returns 0, or SB_EINVAL when name is empty or "@", or
 * -ENAMETOOLONG when it does not fit sun_path. */
int sb_unix_address(const char *name, struct sockaddr_un *sa, uint32_t *len);

/* ---- program lookup ------------------------------------------------------ */
/* argv[1] of a stub the supervisor starts as a trampoline for a delegated
 * program: `stub --socketbridge-die-with PPID FILE ARGV0 [ARG...]` sets
 * PR_SET_PDEATHSIG (SIGKILL), checks its parent is PPID, and execs FILE
 * (stub/trampoline.c). */
#define SB_TRAMPOLINE_ARG "--socketbridge-die-with"

/* The PATH a lookup uses where none is set. */
#define SB_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Finds the program `name` as execvp(3) would in `path` (a PATH value; NULL
 * or "" means SB_DEFAULT_PATH), skipping
 * every directory listed in `skip_dirs` (a SOCKETBRIDGE_SHIMS value, may be
 * NULL) and every candidate that is the same file (st_dev and st_ino) as
 * `skip_file` (the stub's own executable, may be NULL): the recursion guard.
 * A name containing '/' is taken as it is, unless it is the stub (a file in
 * one of `skip_dirs`, or the same file as `skip_file`): then its last
 * component is looked up as above. Writes the path found to out.
 * Returns 0, -ENOENT (nothing found), -EACCES (found, but none executable),
 * -ENAMETOOLONG. */
int sb_path_find(const char *name, const char *path, const char *skip_dirs,
                 const char *skip_file, char *out, size_t outsz);

/* ---- small helpers both sides use -------------------------------------- */

/* Formats into diag (printf-style); returns err so callers can write
 * `return sb_diag_set(diag, SB_EBADMSG, "...")`. diag may be NULL. */
int sb_diag_set(sb_diag *diag, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees every string of a strv and the vector; leaves it empty. */
void sb_strv_free(sb_strv *s);
/* Deep copy of a NULL-terminated vector (src may be NULL: empty result). */
int sb_strv_copy(sb_strv *dst, char *const *src);
/* The same for a bare NULL-terminated vector (argv, env), as one malloc'd
 * array of malloc'd strings: *out is NULL when src is. Returns 0 or
 * SB_ENOMEM (*out NULL). */
int sb__vec_dup(char *const *src, char ***out);
/* Frees every string of v and v itself; v may be NULL. */
void sb__vec_free(char **v);

/* ---- environments ------------------------------------------------------ */
/* An environment is a vector of "NAME=VALUE" strings (a bare "NAME" is
 * allowed by execve(2) and names no value). A name is never empty and never
 * holds '=': such a name has no value in any environment. */

/* True when entry is "NAME=..." for this very name: "PATH=x" is PATH, and
 * neither "PATHX=x" nor a bare "PATH". The SOCKETBRIDGE_TOKEN filter is
 * sb__env_is(entry, SB_ENV_TOKEN). */
bool sb__env_is(const char *entry, const char *name);
/* True when entry holds '=' ("NAME=VALUE", "=x" included), not a bare
 * name. */
bool sb__env_has_value(const char *entry);
/* Which entry counts where a name occurs more than once. */
#define SB__ENV_FIRST 0 /* the first, as getenv(3): a process's environment */
#define SB__ENV_LAST 1  /* the last: settings, each overriding those before */
/* The value of name in env (which may be NULL; it ends at its first NULL
 * entry, or after n entries), or NULL when no entry sets it. The value
 * points into the entry. */
const char *sb__env_value_n(char *const *env, size_t n, const char *name, int which);
/* The same in a NULL-terminated env, the first entry winning (getenv). */
const char *sb__env_value(char *const *env, const char *name);

/* The bridge variable (one a ticket decides: SOCKETBRIDGE_TOKEN, _PORT,
 * _HOST, _SOCKET, _MAX_BYTES, _STUB) whose name is name[0..len), or NULL.
 * A child never inherits one, nor may a user set or unset one. */
const char *sb__bridge_var(const char *name, size_t len);

/* base less the variables named in unset ("NAME", or "NAME=..."), plus
 * set ("NAME=VALUE"), as execve(2) wants it: a name that set gives replaces
 * base's, and of two set entries for one name the last wins and only it is
 * kept. Any of the three may be NULL (empty). The strings are borrowed:
 * only the array is allocated (*out, NULL-terminated, freed with free()).
 * Returns 0 or SB_ENOMEM (*out NULL). */
int sb__env_apply(char *const *base, char *const *unset, char *const *set, char ***out);

/* ---- numbers ----------------------------------------------------------- */

/* Reads s as a decimal number: digits only (no sign, no space, no "0x";
 * leading zeros are fine) and at least one, at most max. Returns false,
 * *out untouched, for anything else, overflow included. */
bool sb__parse_uint(const char *s, uint64_t max, uint64_t *out);

/* ---- helpers between the files of lib/ --------------------------------- */

#include <stdarg.h>

/* Length of the valid UTF-8 sequence starting at p (at most left bytes are
 * readable), or 0 when the bytes there are not one. */
size_t sb__utf8_seq(const uint8_t *p, size_t left);

/* Base64 (RFC 4648, standard alphabet, padded). */
size_t sb__b64_encoded_len(size_t n); /* without the NUL */
/* Writes sb__b64_encoded_len(n) characters and a NUL into out. */
void sb__b64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decoding: the length is a multiple of 4, only alphabet characters
 * and trailing padding, and unused bits zero (one spelling per byte string).
 * out must hold len / 4 * 3 bytes. Returns the decoded length or -1. */
ptrdiff_t sb__b64_decode(const char *in, size_t len, uint8_t *out);

/* Allocates room for n strings plus the terminating NULL (all NULL). */
int sb__strv_alloc(sb_strv *s, size_t n);

/* Signal name lookup for the wire: exact names only ("TERM"), or 0. */
int sb__signal_from_wire(const char *name);

/* Writes src into dst (size bytes) quoted for a message: printable ASCII as
 * is, other bytes as \xNN, cut with "..." when too long, and any run of 16
 * or more hex digits as <hex digits> (a token must not reach a log, even
 * from a field it was not meant for). */
void sb__quote(char *dst, size_t size, const char *src);

/* The value of a hex digit, or -1. */
static inline int sb__hex_value(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  uint8_t lower = (uint8_t)(c | 0x20);
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

/* stub/fmt.c, in the stub's copy of lib/ only: snprintf and vsnprintf for
 * the conversions the stub's messages use (stub/fmt.c lists them), so that
 * a static stub links no printf. SB_VSNPRINTF is the one lib/ formats with. */
int sb__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int sb__snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef SB_STUB_LIB
#define SB_VSNPRINTF sb__vsnprintf
#else
#define SB_VSNPRINTF vsnprintf
#endif

/* The type whose wire name is name ("hello"), or 0. */
sb_msg_type sb__msg_type_from_name(const char *name);

/* ---- JSON: one reader (json_read.c), one writer (json_write.c) --------
 *
 * Both sides read and write control messages with these, without a tree:
 * the stub links no JSON library (its process start is the stub cycle's
 * cost; see docs/performance.md), and events, records and the control
 * channel's replies are written by the same writer. The grammar the reader
 * accepts is docs/protocol.md section 2. */

/* A byte a JSON string holds as it is, with nothing to check or escape:
 * 0x20..0x7f, not '"' nor '\\'. */
static inline bool sb__json_plain(uint8_t c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The same for each of the 8 bytes of x. (x - ONES * n) & ~x has a high
 * bit set where a byte is below n, when x has none of its own: the usual
 * word-at-a-time test, so that the ASCII of argv and env costs about a
 * cycle per byte. */
static inline bool sb__json_plain8(uint64_t x) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  uint64_t special = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
  return ((special | x) & high) == 0;
}

/* A JSON text being written (json_write.c): compact, commas placed by the
 * writer, bounded. The text begins at buf + start (room kept for a frame
 * header); the buffer grows up to start + max bytes, the NUL that ends the
 * text included, and a text that would pass that fails with SB_EMSGSIZE.
 * The first error (SB_EMSGSIZE, SB_ENOMEM, SB_EINVAL for a string that is
 * not UTF-8) sticks: every call after it does nothing, and sb_jw_end
 * returns it, so a writer checks once, at the end. */
typedef struct sb_jw {
  uint8_t *buf;
  size_t len, cap, max, start;
  int err;
} sb_jw;

/* Allocates cap bytes of room (at most max) after start. Returns 0 or
 * SB_ENOMEM (also kept in w->err: sb_jw_end frees and returns it). */
int sb_jw_init(sb_jw *w, size_t start, size_t cap, size_t max);
/* Ends the text with a NUL and hands the buffer over: *text (the caller
 * frees it; the JSON starts at *text + start), *len (without the NUL).
 * Returns 0 or the first error, after freeing the buffer. */
int sb_jw_end(sb_jw *w, char **text, size_t *len);
/* Values. A value after another one in the same container gets its comma. */
void sb_jw_open(sb_jw *w, char bracket); /* '{' or '[' */
void sb_jw_close(sb_jw *w, char bracket);
/* "name": before a member's value; name is plain ASCII, written as it is. */
void sb_jw_key(sb_jw *w, const char *name);
/* Text for humans: must be UTF-8, else w->err = SB_EINVAL. NULL is "". */
void sb_jw_str(sb_jw *w, const char *s);
/* A byte string (argv, env, paths): a string when it is UTF-8, else
 * {"base64": "..."} (RFC 4648, padded); NULL is null. */
void sb_jw_bytes(sb_jw *w, const char *s);
/* The same for s[0..n), which may hold NUL bytes (then base64 too). */
void sb_jw_bytes_n(sb_jw *w, const void *s, size_t n);
void sb_jw_int(sb_jw *w, int64_t v);
/* v / 10^scale with digits decimals, cut, never rounded, exact (a double
 * would print rounding noise): (ns, 9, 6) is seconds to the microsecond.
 * digits <= scale <= 18. */
void sb_jw_fixed(sb_jw *w, uint64_t v, unsigned scale, unsigned digits);
void sb_jw_bool(sb_jw *w, bool v);
void sb_jw_null(sb_jw *w);
/* p[0..n): JSON the reader has checked, copied without its whitespace. */
void sb_jw_json(sb_jw *w, const uint8_t *p, size_t n);
/* Members, key and value in one call: sb_jw_key then the value's writer
 * above (add_bytes_v: an array of n byte strings). */
void sb_jw_add_int(sb_jw *w, const char *name, int64_t v);
void sb_jw_add_bool(sb_jw *w, const char *name, bool v);
void sb_jw_add_str(sb_jw *w, const char *name, const char *s);
void sb_jw_add_bytes(sb_jw *w, const char *name, const char *s);
void sb_jw_add_bytes_v(sb_jw *w, const char *name, char *const *v, size_t n);
/* Bytes as they are, for the caller's own punctuation. */
void sb_jw_raw(sb_jw *w, const void *s, size_t n);

/* json_read.c: a JSON text, read in place. Offsets are into p. */
typedef struct sb_jr {
  const uint8_t *p;
  size_t len;
  sb_diag *diag;
} sb_jr;

/* The JSON kind of the value at an offset, by its first byte. */
typedef enum sb_jr_kind {
  SB_JR_BAD = 0,
  SB_JR_OBJECT,
  SB_JR_ARRAY,
  SB_JR_STRING,
  SB_JR_NUMBER,
  SB_JR_TRUE,
  SB_JR_FALSE,
  SB_JR_NULL,
} sb_jr_kind;

/* The most names an object reader looks for (every member name of every
 * message type). */
#define SB_JR_MAX_NAMES 24

/* Where the members an object reader knows are: for each of names[], the
 * offset of the first value given under it and how many times it is given.
 * Other members are checked as JSON and skipped. */
typedef struct sb_jr_index {
  const char *const *names;
  size_t n;
  size_t at[SB_JR_MAX_NAMES];
  unsigned count[SB_JR_MAX_NAMES];
} sb_jr_index;

sb_jr_kind sb_jr_kind_at(const sb_jr *j, size_t at);
/* Checks the whole payload against the grammar of docs/protocol.md section
 * 2 (one JSON object, whitespace around it, nested at most 1000 deep, every
 * string valid UTF-8 without control characters or \u0000), and indexes
 * its members (top). Returns 0 or SB_EBADMSG with diag set. */
int sb_jr_document(const sb_jr *j, sb_jr_index *top);
/* Indexes the members of the (already checked) object at offset at. */
int sb_jr_object_index(const sb_jr *j, size_t at, sb_jr_index *ix);
/* Decodes the string at offset at into a fresh C string. Returns 0,
 * SB_EBADMSG or SB_ENOMEM. The string must have been checked by
 * sb_jr_document: one without escapes is copied as it is. */
int sb_jr_string(const sb_jr *j, size_t at, char **out);
/* The (checked) number at offset at as an integer in lo..hi: an integer
 * as written (no fraction, no exponent). Returns 0 with *out set,
 * SB_JR_INT_RANGE (outside lo..hi), SB_JR_INT_FRACTION (not an integer),
 * or SB_EBADMSG for a number not checked by sb_jr_document. lo and hi must
 * lie within +-(2^32 - 1). */
#define SB_JR_INT_RANGE 1
#define SB_JR_INT_FRACTION 2
int sb_jr_int(const sb_jr *j, size_t at, int64_t lo, int64_t hi, int64_t *out);
/* The elements of the (checked) array at offset *at: the first call (with
 * *at at the '[') and each next one set *elem to the next element's offset
 * and return 1; 0 after the last; a negative error only for an array not
 * checked by sb_jr_document. */
int sb_jr_array_next(const sb_jr *j, size_t *at, size_t *elem);
/* Moves *at past the (checked) value there. Returns 0. */
int sb_jr_skip(const sb_jr *j, size_t *at);

#endif
