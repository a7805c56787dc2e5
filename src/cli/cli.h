/*
 * cli.h - the subcommands of sio-orchestrator.  Each takes its own argv
 * (argv[0] = the subcommand's name) and the environment, and returns the
 * process exit code: 0 success, 1 failure, 2 usage or configuration error.
 */
#ifndef SIO_CLI_H
#define SIO_CLI_H

int sio_cli_run(int argc, char **argv, char **envp);
int sio_cli_validate(int argc, char **argv, char **envp);
int sio_cli_serve(int argc, char **argv, char **envp);
int sio_cli_send(int argc, char **argv, char **envp);
int sio_cli_tail(int argc, char **argv, char **envp);
int sio_cli_topics(int argc, char **argv, char **envp);
int sio_cli_offsets(int argc, char **argv, char **envp);
int sio_cli_test(int argc, char **argv, char **envp);
int sio_cli_new(int argc, char **argv, char **envp);

#endif
