/* Start and stop of the group coordinator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "group/group_int.h"

int groups_open(const struct broker_config *cfg, char *err, size_t errlen)
{
    gc.cfg = cfg;
    gc.min_session_ms = (int32_t)config_long(cfg, "group.min.session.timeout.ms");
    gc.max_session_ms = (int32_t)config_long(cfg, "group.max.session.timeout.ms");
    gc.initial_delay_ms = (int32_t)config_long(cfg, "group.initial.rebalance.delay.ms");
    gc.metadata_max = (int32_t)config_long(cfg, "offset.metadata.max.bytes");
    gc.retention_ms = config_long(cfg, "offsets.retention.minutes") * 60000;
    if (store_open(err, errlen))
        return -1;
    pthread_mutex_lock(&gc.mu);
    int rc = store_load();
    pthread_mutex_unlock(&gc.mu);
    if (rc)
        snprintf(err, errlen, "cannot read %s", GROUP_OFFSETS_TOPIC);
    return rc;
}

void groups_close(void)
{
    pthread_mutex_lock(&gc.mu);
    while (gc.n > 0)
        group_remove(gc.g[gc.n - 1]);
    free(gc.g);
    gc.g = NULL;
    gc.cap = 0;
    store_close();
    pthread_mutex_unlock(&gc.mu);
}
