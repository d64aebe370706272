/*
 * runnel: one binary for the broker and its admin commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/version.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"broker", cmd_broker, "run a broker"},
    {"topic", cmd_topic, "create, list, describe, alter or delete topics"},
    {"produce", cmd_produce, "produce lines of stdin to a topic"},
    {"consume", cmd_consume, "print records of a topic"},
    {"group", cmd_group, "list, describe, reset or delete consumer groups"},
    {"delayed", cmd_delayed, "count or list held-back records, from the admin API"},
    {"dlq", cmd_dlq, "list or re-drive a consumer group's dead letters"},
    {"status", cmd_status, "the broker's status, from its admin API"},
    {"message", cmd_message, "read one record by offset or by time, from the admin API"},
    {"cluster", cmd_cluster, "the cluster id, controller and live brokers"},
    {"dump-log", cmd_dump_log, "print the batches, records and indexes of segment files"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: runnel <command> [options]   (runnel <command> --help for its options)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("runnel %s\n", RUNNEL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "runnel: unknown command '%s' (see runnel --help)\n", argv[1]);
    return 2;
}
