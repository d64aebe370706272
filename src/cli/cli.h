/*
 * Entry points of the `runnel` subcommands.  Each takes the arguments
 * after the subcommand name (argv[0] is the subcommand), prints errors as
 * one line on stderr ("runnel topic: unknown topic 'x'") and returns the
 * process exit status (0 ok, 1 failure, 2 usage error).
 */
#ifndef RUNNEL_CLI_H
#define RUNNEL_CLI_H

int cmd_broker(int argc, char **argv);   /* app/broker_main.c */
int cmd_topic(int argc, char **argv);    /* cli/topic.c */
int cmd_produce(int argc, char **argv);  /* cli/produce.c */
int cmd_consume(int argc, char **argv);  /* cli/consume.c */
int cmd_dump_log(int argc, char **argv); /* cli/dump_log.c */
int cmd_group(int argc, char **argv);    /* cli/group.c */
int cmd_dlq(int argc, char **argv);      /* cli/dlq.c */
int cmd_status(int argc, char **argv);   /* cli/status.c */
int cmd_message(int argc, char **argv);  /* cli/message.c */
int cmd_delayed(int argc, char **argv);  /* cli/delayed.c */
int cmd_cluster(int argc, char **argv);  /* cli/cluster.c */

#endif
