/* SPDX-License-Identifier: MIT */
/* control.h - the control channel of `socketbridge serve` (docs/control.md):
 * frames in and out over the controller's fds, on the loop. This file knows
 * the framing (section 2) and nothing of what the messages mean. */
#ifndef SB_CLI_CONTROL_H
#define SB_CLI_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define CTL_MAX_FRAME (16u * 1024u * 1024u) /* a frame's length field, at most */
#define CTL_ID_BYTES 8                      /* u64 BE id heading a data frame */

/* The frame kinds, both directions. */
typedef enum ctl_kind {
  CTL_JSON = 1,        /* one JSON object */
  CTL_STDIN = 2,       /* sup -> ctl: a call's stdin */
  CTL_STDOUT = 3,      /* ctl -> sup: to a call's stdout; sup -> ctl: its program's */
  CTL_STDERR = 4,      /* the same for stderr */
  CTL_PROC_STDOUT = 5, /* sup -> ctl: a proc's captured stdout */
  CTL_PROC_STDERR = 6, /* sup -> ctl: its captured stderr */
} ctl_kind;

typedef struct ctl_chan ctl_chan;

typedef struct ctl_chan_cbs {
  /* A whole JSON frame: len bytes, not NUL-terminated. */
  void (*on_json)(ctl_chan *ch, const char *buf, size_t len);
  /* A piece of a data frame of kind CTL_STDOUT or CTL_STDERR for id; end:
   * the frame held the id alone, the end of that stream (len is 0). */
  void (*on_data)(ctl_chan *ch, ctl_kind kind, uint64_t id, const char *buf, size_t len,
                  bool end);
  /* Reading is over: err 0 at EOF, else negative, with why (a broken frame,
   * a read error) for the one-line error. Nothing is read after it. */
  void (*on_end)(ctl_chan *ch, int err, const char *why);
  /* The bytes written and not yet taken fell to or below the low-water mark
   * given to ctl_chan_open, after having passed the high one. */
  void (*on_drain)(ctl_chan *ch);
  /* Writing failed (the controller went away): err, negative. Once. */
  void (*on_write_error)(ctl_chan *ch, int err);
} ctl_chan_cbs;

/* Opens the channel on in_fd (read) and out_fd (write; may be in_fd, a
 * socket). high/low: write-queue marks for ctl_chan_congested/on_drain.
 * Returns 0 or a negative errno; the fds stay the caller's on error. */
int ctl_chan_open(uv_loop_t *loop, int in_fd, int out_fd, size_t high, size_t low,
                  const ctl_chan_cbs *cbs, void *data, ctl_chan **out);
void *ctl_chan_data(const ctl_chan *ch);

/* Queue a frame (copied). A channel that failed or is closing drops it. */
void ctl_chan_send_json(ctl_chan *ch, const char *json, size_t len);
/* A data frame of kind for id; len 0 is the end of that stream. */
void ctl_chan_send_data(ctl_chan *ch, ctl_kind kind, uint64_t id, const void *buf,
                        size_t len);
/* More than the high-water mark is written and not yet taken. */
bool ctl_chan_congested(const ctl_chan *ch);

/* Stop and resume reading (backpressure on the controller). */
void ctl_chan_pause(ctl_chan *ch);
void ctl_chan_resume(ctl_chan *ch);

/* Stops reading, lets what is queued be written (or fail), then closes the
 * handles and frees the channel; cb(data) runs after. */
void ctl_chan_close(ctl_chan *ch, void (*cb)(void *data));

#endif
