/*
 * faultinject.so: an LD_PRELOAD library that makes the blob store's system calls fail on demand,
 * for drills/faults.py. Only the blob files coffred writes are touched: descriptors opened on a
 * path containing "/blobs/tmp/" (new blobs), directories under "/blobs/" (the shard
 * directories it fsyncs), and the index's WAL opened read-only (the trace syncer's
 * descriptor). SQLite's own descriptors, sockets and logs are left alone.
 *
 * What fails is read from the file named by $COFFRE_FAULT_CONTROL when a blob is opened (and,
 * for link, when it is called), one line:
 *     off
 *     write ENOSPC [AFTER]   write(2) fails once AFTER bytes (default 0) went to this blob
 *     fsync EIO              fsync(2)/fdatasync(2) of the blob fails
 *     link EIO               link(2) of a blob out of tmp/ into its shard fails
 *     dirfsync EIO           fsync(2) of a shard directory fails (the blob is already linked)
 *     walsync EIO            fdatasync(2) of the index's WAL through a read-only descriptor
 *                            fails: the trace syncer's (SQLite's own read-write one is left
 *                            alone); read at each sync, not at open
 * The error is any of ENOSPC, EDQUOT, EIO, EROFS. Each injected failure appends a line to
 * $COFFRE_FAULT_CONTROL.log.
 *
 * Build: cc -shared -fPIC -O2 -o faultinject.so faultinject.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 65536

enum kind { NONE = 0, BLOB = 1, SHARD = 2, WAL = 3 };
struct tracked {
    unsigned char kind;
    char op[16];
    int err;
    long long after;
    long long written;
};
static struct tracked table[MAX_FD];

struct fault {
    char op[16];
    int err;
    long long after;
};

static void read_fault(struct fault *f) {
    memset(f, 0, sizeof *f);
    const char *path = getenv("COFFRE_FAULT_CONTROL");
    if (!path) return;
    int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
    ssize_t (*real_read)(int, void *, size_t) = dlsym(RTLD_NEXT, "read");
    int (*real_close)(int) = dlsym(RTLD_NEXT, "close");
    int fd = real_open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char line[128] = {0};
    ssize_t n = real_read(fd, line, sizeof line - 1);
    real_close(fd);
    if (n <= 0) return;
    char op[16] = {0}, err[16] = {0};
    long long after = 0;
    if (sscanf(line, "%15s %15s %lld", op, err, &after) < 2) return;
    if (strcmp(op, "off") == 0) return;
    strcpy(f->op, op);
    f->after = after;
    f->err = strcmp(err, "ENOSPC") == 0 ? ENOSPC : strcmp(err, "EDQUOT") == 0 ? EDQUOT
           : strcmp(err, "EROFS") == 0 ? EROFS : EIO;
}

static void note(const char *what, int fd) {
    const char *path = getenv("COFFRE_FAULT_CONTROL");
    if (!path) return;
    char log[4096];
    snprintf(log, sizeof log, "%s.log", path);
    FILE *f = fopen(log, "a");
    if (!f) return;
    fprintf(f, "%s fd=%d\n", what, fd);
    fclose(f);
}

static void track(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= MAX_FD || !path) return;
    memset(&table[fd], 0, sizeof table[fd]);
    enum kind kind = NONE;
    size_t length = strlen(path);
    if (strstr(path, "/blobs/tmp/")) kind = BLOB;
    else if ((flags & O_DIRECTORY) && strstr(path, "/blobs/")) kind = SHARD;
    else if ((flags & O_ACCMODE) == O_RDONLY && length > 4 && strcmp(path + length - 4, "-wal") == 0) kind = WAL;
    if (kind == NONE) return;
    if (kind == WAL) {  /* its fault is read at each sync */
        table[fd].kind = kind;
        return;
    }
    struct fault f;
    read_fault(&f);
    table[fd].kind = kind;
    strcpy(table[fd].op, f.op);
    table[fd].err = f.err;
    table[fd].after = f.after;
}

#define OPEN_LIKE(name)                                                              \
    int name(const char *path, int flags, ...) {                                     \
        static int (*real)(const char *, int, ...);                                  \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                   \
        mode_t mode = 0;                                                             \
        if (flags & (O_CREAT | O_TMPFILE)) {                                         \
            va_list ap; va_start(ap, flags); mode = va_arg(ap, int); va_end(ap);     \
        }                                                                            \
        int fd = real(path, flags, mode);                                            \
        track(fd, path, flags);                                                      \
        return fd;                                                                   \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)                                                            \
    int name(int dirfd, const char *path, int flags, ...) {                          \
        static int (*real)(int, const char *, int, ...);                             \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                   \
        mode_t mode = 0;                                                             \
        if (flags & (O_CREAT | O_TMPFILE)) {                                         \
            va_list ap; va_start(ap, flags); mode = va_arg(ap, int); va_end(ap);     \
        }                                                                            \
        int fd = real(dirfd, path, flags, mode);                                     \
        track(fd, path, flags);                                                      \
        return fd;                                                                   \
    }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (fd >= 0 && fd < MAX_FD && table[fd].kind == BLOB && strcmp(table[fd].op, "write") == 0) {
        struct tracked *t = &table[fd];
        if (t->written >= t->after) {
            note("write failed", fd);
            errno = t->err;
            return -1;
        }
        if ((long long)count > t->after - t->written) count = (size_t)(t->after - t->written);  /* a short write first */
    }
    ssize_t n = real(fd, buf, count);
    if (n > 0 && fd >= 0 && fd < MAX_FD && table[fd].kind == BLOB) table[fd].written += n;
    return n;
}

static int fsync_fault(int fd) {
    if (fd < 0 || fd >= MAX_FD) return 0;
    struct tracked *t = &table[fd];
    if (t->kind == WAL) {
        struct fault f;
        read_fault(&f);
        if (strcmp(f.op, "walsync") != 0) return 0;
        note("WAL sync failed", fd);
        errno = f.err;
        return -1;
    }
    if ((t->kind == BLOB && strcmp(t->op, "fsync") == 0) || (t->kind == SHARD && strcmp(t->op, "dirfsync") == 0)) {
        note(t->kind == BLOB ? "fsync failed" : "directory fsync failed", fd);
        errno = t->err;
        return -1;
    }
    return 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    if (fsync_fault(fd) < 0) return -1;
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
    if (fsync_fault(fd) < 0) return -1;
    return real(fd);
}

int link(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "link");
    if (from && strstr(from, "/blobs/tmp/")) {
        struct fault f;
        read_fault(&f);
        if (strcmp(f.op, "link") == 0) {
            note("link failed", -1);
            errno = f.err;
            return -1;
        }
    }
    return real(from, to);
}

int close(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && fd < MAX_FD) table[fd].kind = NONE;
    return real(fd);
}
