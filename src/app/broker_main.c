/*
 * `runnel broker`: start, serve, shut down cleanly.
 *
 * Start: settings (defaults < --config file < --set), the data
 * directory's lock (two brokers on one directory would corrupt it), the
 * ZooKeeper session when zookeeper.connect is set (cluster/), the topics
 * (recovering the logs when the last shutdown was not clean), the
 * cluster id check and the broker's registration, the flusher, the
 * network threads, the admin HTTP server.  The main thread
 * then waits for SIGTERM or SIGINT and runs the periodic work
 * (retention, time-based flush) in between.
 *
 * Clean shutdown: stop the admin API, the network (pending produces
 * finish first), leave the cluster (closing the session removes the
 * broker's znodes at once), the flusher, flush and close every log, then write the
 * clean-shutdown marker that lets the next start skip recovery.  Marker file:
 * <log.dirs>/.runnel-clean-shutdown, empty; its presence is the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "app/replication.h"
#include "broker/compaction.h"
#include "broker/config.h"
#include "broker/flusher.h"
#include "broker/keyindexer.h"
#include "broker/topics.h"
#include "cli/cli.h"
#include "cluster/cluster.h"
#include "common/clock.h"
#include "common/rlog.h"
#include "delivery/delivery.h"
#include "group/group.h"
#include "kafka/request.h"
#include "net/server.h"

#define CLEAN_MARKER ".runnel-clean-shutdown"

static void usage(FILE *f)
{
    fprintf(f, "usage: runnel broker [--config FILE] [--set key=value]...\n"
               "  Starts a broker.  Settings use Kafka's names, e.g.\n"
               "    --set listeners=PLAINTEXT://127.0.0.1:9092 --set log.dirs=/var/lib/runnel\n"
               "  See the README for every setting.\n");
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

static int parse_args(struct broker_config *cfg, int argc, char **argv)
{
    char err[512];
    /* The file first, whatever its position, so --set always wins. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "runnel broker: --config needs a file\n");
                return 2;
            }
            if (config_load_file(cfg, argv[i + 1], err, sizeof err)) {
                fprintf(stderr, "runnel broker: %s\n", err);
                return 1;
            }
        }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) {
            i++;
        } else if (!strcmp(argv[i], "--set") || !strcmp(argv[i], "-s")) {
            char *kv = i + 1 < argc ? argv[++i] : NULL;
            char *eq = kv ? strchr(kv, '=') : NULL;
            if (!eq) {
                fprintf(stderr, "runnel broker: --set needs key=value\n");
                return 2;
            }
            *eq = 0;
            int rc = config_set(cfg, kv, eq + 1, err, sizeof err);
            *eq = '=';
            if (rc) {
                fprintf(stderr, "runnel broker: %s\n", err);
                return 1;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "runnel broker: unknown option '%s' (see runnel broker --help)\n",
                    argv[i]);
            return 2;
        }
    }
    if (config_finish(cfg, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        return 1;
    }
    return 0;
}

int cmd_broker(int argc, char **argv)
{
    rlog_init_from_env();
    struct broker_config cfg;
    if (config_init(&cfg)) {
        fprintf(stderr, "runnel broker: out of memory\n");
        return 1;
    }
    int rc = parse_args(&cfg, argc, argv);
    if (rc) {
        config_free(&cfg);
        return rc < 0 ? 0 : rc;
    }
    if (mkdir_p(cfg.log_dir)) {
        fprintf(stderr, "runnel broker: cannot create data directory %s: %s\n", cfg.log_dir,
                strerror(errno));
        config_free(&cfg);
        return 1;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/.lock", cfg.log_dir);
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "runnel broker: data directory %s is in use by another broker\n",
                cfg.log_dir);
        config_free(&cfg);
        return 1;
    }
    /* A new directory has nothing to recover. */
    snprintf(path, sizeof path, "%s/meta.properties", cfg.log_dir);
    bool fresh = access(path, F_OK) != 0;
    snprintf(path, sizeof path, "%s/%s", cfg.log_dir, CLEAN_MARKER);
    bool clean = fresh || access(path, F_OK) == 0;

    /* Signals are taken by the main thread only (sigtimedwait below);
     * every thread created from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    /* Before the logs load, so a wrong zookeeper.connect fails fast;
     * after the signal mask, which the client's threads inherit. */
    if (cluster_open(&cfg, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    int64_t t0 = clock_mono_ms();
    if (topics_open(&cfg, clean, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        topics_close(false);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    char zk_cluster_id[64];
    int idrc = cluster_sync_cluster_id(topics_cluster_id(), fresh, zk_cluster_id,
                                       sizeof zk_cluster_id, err, sizeof err);
    if (idrc > 0)
        idrc = topics_adopt_cluster_id(zk_cluster_id, err, sizeof err);
    if (idrc) {
        fprintf(stderr, "runnel broker: %s\n", err);
        topics_close(false);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    if (groups_open(&cfg, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        groups_close();
        topics_close(false);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    /* From here on a crash must recover again. */
    if (clean)
        unlink(path);
    rlog_info("loaded the logs in %lld ms (%s)", (long long)(clock_mono_ms() - t0),
              fresh   ? "new data directory"
              : clean ? "clean shutdown before"
                      : "recovered after an unclean shutdown");
    if (delivery_start(&cfg, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        groups_close();
        topics_close(true);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    /* The Kafka listener, in net/'s terms. */
    struct net_params listen = {
        .host = cfg.listen_host,
        .port = cfg.listen_port,
        .what = "listeners",
        .threads = cfg.num_network_threads,
        .max_frame = cfg.socket_request_max_bytes,
    };
    err[0] = 0;
    /* Registered (and the election run) before clients can connect, so
     * the first Metadata already lists the cluster. */
    if (cluster_enabled()) {
        /* Replication is ready before the first partition states come
         * (cluster_join applies them before it returns). */
        if (replication_start(&cfg, err, sizeof err)) {
            fprintf(stderr, "runnel broker: %s\n", err);
            delivery_stop();
            groups_close();
            topics_close(true);
            cluster_close();
            config_free(&cfg);
            return 1;
        }
        struct cluster_callbacks cb = {.on_partition_state = replication_on_partition_state};
        cluster_set_callbacks(&cb);
        topics_set_create_hook(cluster_create_topic, NULL);
        topics_set_partitions_hook(cluster_add_partitions, NULL);
    }
    if (cluster_join(err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        delivery_stop();
        groups_close();
        replication_stop();
        topics_close(true);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    if (flusher_start() ||
        compaction_start(config_long(&cfg, "log.cleaner.backoff.ms"),
                         config_long(&cfg, "log.cleaner.dedupe.buffer.size")) ||
        keyindexer_start() || server_start(&listen, &kafka_net_handlers, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err[0] ? err : "cannot start threads");
        keyindexer_stop();
        compaction_stop();
        flusher_stop();
        delivery_stop();
        groups_close();
        replication_stop();
        topics_close(true);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    /* Before the "listening on" line, which tells scripts the broker is
     * ready: by then the admin port is bound and logged too. */
    if (admin_start(&cfg, err, sizeof err)) {
        fprintf(stderr, "runnel broker: %s\n", err);
        server_stop();
        keyindexer_stop();
        compaction_stop();
        flusher_stop();
        groups_close();
        replication_stop();
        topics_close(true);
        cluster_close();
        config_free(&cfg);
        return 1;
    }
    rlog_info("runnel broker listening on %s:%d (data in %s, %d network threads)", cfg.listen_host,
              server_port(), cfg.log_dir, cfg.num_network_threads);

    int64_t next_retention = clock_mono_ms() + cfg.retention_check_interval_ms;
    for (;;) {
        struct timespec tick = {0, 100 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            rlog_info("shutting down (signal %d)", sig);
            break;
        }
        int64_t now = clock_mono_ms();
        bool retention = now >= next_retention;
        if (retention)
            next_retention = now + cfg.retention_check_interval_ms;
        topics_housekeep(clock_wall_ms(), retention);
        groups_tick();
    }
    /* The admin handlers read topics and groups: stop them first. */
    admin_stop();
    keyindexer_stop();
    compaction_stop();
    flusher_stop();
    server_stop();
    /* Fetchers end before the session closes (which moves leadership
     * away at once) and before the logs close. */
    replication_stop();
    cluster_close();
    delivery_stop();
    groups_close();
    topics_close(true);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    close(lock_fd);
    rlog_info("stopped cleanly");
    config_free(&cfg);
    return 0;
}
