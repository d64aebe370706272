/*
 * zk: a small wrapper over the ZooKeeper C client (zookeeper_mt).
 *
 * The client runs two threads of its own per session: an I/O thread
 * (socket, pings, reconnects to another server of the ensemble) and a
 * completion thread that runs the watcher.  The calls below are the
 * client's synchronous ones: they block the calling thread until the
 * server answers (or the session is lost), so they must never be called
 * from the watch callback, which runs on the completion thread, nor
 * from a network thread of the broker.
 *
 * Paths are relative to the chroot of the connect string: the client
 * adds it to every request and strips it from every watch event.
 *
 * Session expiry: the callback gets ZK_EV_EXPIRED; the handle is dead
 * from then on and zk_reconnect() opens a new session with the same
 * settings.  Ephemeral znodes and watches of the old session are gone;
 * the owner re-creates and re-sets them.
 */
#ifndef RUNNEL_ZK_H
#define RUNNEL_ZK_H

#ifndef THREADED
#define THREADED /* zookeeper.h declares the synchronous API only then */
#endif
#include <zookeeper/zookeeper.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum zk_event {
    ZK_EV_CONNECTED,    /* the session is (again) connected to a server */
    ZK_EV_DISCONNECTED, /* lost the server; the client is reconnecting */
    ZK_EV_EXPIRED,      /* the session is gone: zk_reconnect() */
    ZK_EV_CREATED,      /* a watched znode was created (exists watch) */
    ZK_EV_DELETED,      /* a watched znode was deleted */
    ZK_EV_CHANGED,      /* a watched znode's data changed */
    ZK_EV_CHILD,        /* a watched znode's children changed */
};

/* Runs on the client's completion thread: record and return. */
typedef void (*zk_event_fn)(void *ctx, enum zk_event ev, const char *path);

struct zk;

/*
 * "host:port[,host:port...][/chroot]" into the host list and the chroot
 * ("" when none; "/" counts as none).  Kafka's rules for the chroot: it
 * starts with '/', has no empty, "." or ".." component and no trailing
 * '/'.  0, or -1 with a message.
 */
int zk_parse_connect(const char *connect, char *hosts, size_t hostslen, char *chroot,
                     size_t chrootlen, char *err, size_t errlen);

/*
 * Opens a session and waits for it up to connection_timeout_ms.  A
 * chroot that does not exist is created first (persistent znodes),
 * through a short session without the chroot.  NULL with a message when
 * the string is bad or no server answered in time.
 */
struct zk *zk_connect(const char *connect, int session_timeout_ms, int connection_timeout_ms,
                      zk_event_fn fn, void *ctx, char *err, size_t errlen);
/* Replaces an expired session with a new one (same settings). */
int zk_reconnect(struct zk *z, char *err, size_t errlen);
/* Closes the session at once: the server deletes its ephemeral znodes. */
void zk_close(struct zk *z);

int64_t zk_session_id(struct zk *z);
const char *zk_chroot(const struct zk *z);

/* Each returns a ZooKeeper code: ZOK, ZNONODE, ZNODEEXISTS, ZBADVERSION,
 * ZCONNECTIONLOSS, ... (zerror() names it).  `watch` sets a one-shot
 * watch reported to the event callback. */
int zk_create(struct zk *z, const char *path, const char *data, int len, bool ephemeral);
/* Creates path and its missing parents (persistent, empty); ZOK when it
 * exists already. */
int zk_create_parents(struct zk *z, const char *path);
/* *data: malloc'd, NUL-terminated (len excludes the NUL); NULL for a
 * znode without data. */
int zk_get(struct zk *z, const char *path, bool watch, char **data, int *len, struct Stat *st);
int zk_set(struct zk *z, const char *path, const char *data, int len, int version, struct Stat *st);
int zk_delete(struct zk *z, const char *path, int version);
/* With watch: set even when the znode does not exist (fires on create). */
int zk_exists(struct zk *z, const char *path, bool watch, struct Stat *st);
/* *names: malloc'd array of malloc'd names; zk_free_names(). */
int zk_children(struct zk *z, const char *path, bool watch, char ***names, int *n);
void zk_free_names(char **names, int n);
/* All or nothing (zoo_op_t from zoo_create_op_init etc.); results[i].err
 * says which op failed. */
int zk_multi(struct zk *z, int n, const zoo_op_t *ops, zoo_op_result_t *results);

/* A transient failure worth retrying on the same session. */
static inline bool zk_retriable(int rc)
{
    return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZINVALIDSTATE ||
           rc == ZSESSIONMOVED;
}

#endif
