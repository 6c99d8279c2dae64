/*
 * cli.h — the pipebridge command line: shared helpers and command entry points.
 *
 * Each command is a function taking (argc, argv) after the command name and
 * returning the process exit status. Service-style errors are printed the way
 * the AWS CLI prints them and exit with 254, as the AWS CLI does.
 */
#ifndef PB_CLI_H
#define PB_CLI_H

#include "common/pb_error.h"

#include <stddef.h>

#define PB_EXIT_SERVICE_ERROR 254 /* AWS CLI: the service returned an error */
#define PB_EXIT_USAGE 252         /* AWS CLI: bad command line */

/* Reads an argument value: "file://PATH" reads the file (malloc'd, caller
 * frees), anything else is copied. NULL on failure (message printed). */
char *pb_cli_arg_value(const char *arg, size_t *len);

/* Prints "\nAn error occurred (Type) when calling the OP operation: message"
 * to stderr and returns PB_EXIT_SERVICE_ERROR. */
int pb_cli_service_error(const char *operation, const pb_error *err);

int pb_cmd_serve(int argc, char **argv);
int pb_cmd_test_event_pattern(int argc, char **argv);
int pb_cmd_explain_event_pattern(int argc, char **argv);
int pb_cmd_schedule_preview(int argc, char **argv);
int pb_cmd_next_fire_times(int argc, char **argv); /* schedule-preview's older name */
int pb_cmd_dead_letters(int argc, char **argv); /* over HTTP: http_client.h */

#endif
