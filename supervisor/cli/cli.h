/* cli.h - the parts of the socketbridge command, one file each. */
#ifndef SB_CLI_H
#define SB_CLI_H

#include "options.h"

/* Prints "socketbridge: " and the message as one line on stderr. */
__attribute__((format(printf, 1, 2))) void cli_error(const char *fmt, ...);

/* run.c: runs the command under supervision; returns the exit status. */
int cli_run(const cli_options *o);

/* stubpath.c: the socketbridge-stub next to the running executable
 * (malloc'd, absolute), or NULL when there is none there, meaning the
 * library's default. */
char *cli_stub_sibling(void);
/* `socketbridge stub-path`: prints what run would use; the exit status. */
int cli_stub_path(void);

#endif
