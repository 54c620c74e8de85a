/* SPDX-License-Identifier: MIT */
/* compdb.h - compile_commands.json from a build's records (compdb.c). */
#ifndef SB_CLI_COMPDB_H
#define SB_CLI_COMPDB_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Appends to entries (a cJSON array) an entry per source file each record
 * of a --record file compiles; *skipped counts records
 * whose argv, env or cwd are not UTF-8 text. 0, or -1 after the error. */
int cli_compdb_add_records(cJSON *entries, const char *path, size_t *skipped);
/* Appends the entries of an existing compile_commands.json (none when it
 * does not exist). 0, or -1 after the error. */
int cli_compdb_load(cJSON *entries, const char *path);
/* Writes entries to path, through a new file renamed over it. 0, or -1
 * after the error. */
int cli_compdb_write(const cJSON *entries, const char *path);

#endif
