/*
 * cli_share.h - where the command line finds what it ships besides the
 * binary: the busted harness (lua/sio/testing.lua and the engine sources),
 * the workflow schema (schema/), the type definitions (types/) and the
 * templates of `new` (scaffold/).
 *
 * An installed binary (E = the folder of the executable) has them under
 * E/../share/sio-orchestrator; a build that was not installed uses the
 * source tree it was built from (SIO_SOURCE_DIR, compiled in).  Both
 * folders have the same layout.
 */
#ifndef SIO_CLI_SHARE_H
#define SIO_CLI_SHARE_H

#include <stddef.h>

/* Writes the absolute path of this executable into exe and its folder into
 * dir (each of size n).  Returns 0, or -1 with a message on stderr. */
int sio_cli_exe_path(char *exe, char *dir, size_t n);

/* Writes the share folder into out (size n).  Returns 0, or -1 after
 * printing on stderr, prefixed with `who`, the places it looked. */
int sio_cli_share_dir(const char *who, char *out, size_t n);

#endif
