/* The release, printed by `runnel --version` and the admin API's status. */
#ifndef RUNNEL_VERSION_H
#define RUNNEL_VERSION_H

#define RUNNEL_VERSION "0.1.0"

#endif
