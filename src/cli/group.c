/* `runnel group`: placeholder until the group commands land. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_group(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "runnel group: not available in this build\n");
    return 1;
}
