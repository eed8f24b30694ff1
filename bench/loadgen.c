/* Load generator for coffred: C client threads, each with one HTTP/1.1 keep-alive connection to
 * the daemon's Unix socket.
 *
 *   loadgen -s SOCKET -m create|store|fetch|list -c CLIENTS -i TARGETS [-t SECONDS] [-n COUNT]
 *           [-b BYTES] [-o OUT]
 *
 * TARGETS has one line per target, fields separated by spaces:
 *   create, store, list:  INS TOKEN          (TOKEN: a signed actor assertion for that patient)
 *   fetch:                INS TOKEN DOCID
 * create: POST /v1/patients/INS/dossier, once per line. store: POST .../documents with BYTES
 * (default 32768) of random content; for a time, client k uses the lines k, k+CLIENTS, ...; with
 * COUNT, request i goes to line i mod LINES. The new documents are appended to OUT as
 * "INS TOKEN DOCID". fetch: GET .../documents/DOCID/content of
 * random lines. list: GET .../documents of random lines.
 * Runs for SECONDS, or until COUNT requests in all (whichever is given; COUNT wins).
 * Prints {"clients": C, "mode": M, "ops": …, "errors": …, "ops_per_s": …, "p50_ms": …, "p99_ms": …}.
 * A request answered with an unexpected status counts as an error (the first few are shown on stderr).
 *
 * Build: cc -O2 loadgen.c -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stats.h"

struct target { char *ins, *token, *doc; };

static const char *socket_path, *mode, *out_path;
static struct target *targets;
static size_t ntargets;
static int clients = 1;
static double seconds = 0;
static long count = 0;
static size_t body_bytes = 32768;
static unsigned char *body;
static atomic_long issued;
static atomic_long shown_errors;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;

static void die(const char *what) { perror(what); exit(1); }

static int connect_socket(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (fd < 0) die("socket");
    strncpy(addr.sun_path, socket_path, sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    return fd;
}

static void send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; die("send"); }
        p += w; n -= (size_t)w;
    }
}

/* A connection's receive buffer; a response body is kept only up to `keep` bytes. */
struct conn {
    int fd;
    char buf[256 * 1024];
    size_t start, end;
};

static int fill(struct conn *c) {
    if (c->start == c->end) c->start = c->end = 0;
    if (c->end == sizeof c->buf) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    ssize_t n = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
    if (n < 0 && errno == EINTR) return fill(c);
    if (n <= 0) return -1;
    c->end += (size_t)n;
    return 0;
}

/* Reads a line ending in CRLF into line (NUL-terminated). */
static int read_line(struct conn *c, char *line, size_t size) {
    for (;;) {
        char *nl = memmem(c->buf + c->start, c->end - c->start, "\r\n", 2);
        if (nl) {
            size_t len = (size_t)(nl - (c->buf + c->start));
            if (len >= size) len = size - 1;
            memcpy(line, c->buf + c->start, len);
            line[len] = 0;
            c->start = (size_t)(nl - c->buf) + 2;
            return 0;
        }
        if (fill(c) != 0) return -1;
    }
}

/* Consumes n body bytes, copying the first ones into keep (up to keep_size - 1). */
static int read_body(struct conn *c, size_t n, char *keep, size_t keep_size, size_t *kept) {
    while (n > 0) {
        if (c->start == c->end && fill(c) != 0) return -1;
        size_t take = c->end - c->start < n ? c->end - c->start : n;
        if (keep && *kept + 1 < keep_size) {
            size_t room = keep_size - 1 - *kept;
            size_t copy = take < room ? take : room;
            memcpy(keep + *kept, c->buf + c->start, copy);
            *kept += copy;
            keep[*kept] = 0;
        }
        c->start += take;
        n -= take;
    }
    return 0;
}

/* Reads one response; returns its status, or -1 if the connection failed. */
static int read_response(struct conn *c, char *keep, size_t keep_size) {
    char line[8192];
    int status = -1, chunked = 0;
    long length = -1;
    size_t kept = 0;
    if (keep) keep[0] = 0;
    if (read_line(c, line, sizeof line) != 0 || sscanf(line, "HTTP/1.1 %d", &status) != 1) return -1;
    for (;;) {
        if (read_line(c, line, sizeof line) != 0) return -1;
        if (line[0] == 0) break;
        if (strncasecmp(line, "content-length:", 15) == 0) length = atol(line + 15);
        if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strcasestr(line, "chunked")) chunked = 1;
    }
    if (chunked) {
        for (;;) {
            if (read_line(c, line, sizeof line) != 0) return -1;
            long size = strtol(line, NULL, 16);
            if (size == 0) { read_line(c, line, sizeof line); break; }
            if (read_body(c, (size_t)size, keep, keep_size, &kept) != 0 || read_line(c, line, sizeof line) != 0) return -1;
        }
    } else if (length > 0 && read_body(c, (size_t)length, keep, keep_size, &kept) != 0) {
        return -1;
    }
    return status;
}

struct client {
    pthread_t thread;
    int index;
    struct samples lat;
};

/* With COUNT: the next request number, or -1 once COUNT were issued. Without: 0. */
static long take_ticket(void) {
    if (count <= 0) return 0;
    long ticket = atomic_fetch_add(&issued, 1);
    return ticket < count ? ticket : -1;
}

static void report_error(int status, const char *body_text) {
    if (atomic_fetch_add(&shown_errors, 1) < 5) fprintf(stderr, "loadgen %s: status %d %.300s\n", mode, status, body_text);
}

static void *run_client(void *arg) {
    struct client *me = arg;
    struct conn *c = malloc(sizeof *c);
    char request[8192], answer[4096];
    unsigned seed = (unsigned)me->index * 2654435761u + 17;
    size_t next = (size_t)me->index;
    double deadline = now_seconds() + seconds;
    c->fd = connect_socket();
    c->start = c->end = 0;
    for (;;) {
        long ticket = take_ticket();
        if (ticket < 0 || (count <= 0 && now_seconds() >= deadline)) break;
        struct target *t;
        int expected, len;
        const void *payload = NULL;
        size_t payload_len = 0;
        if (count > 0 && (strcmp(mode, "store") == 0 || strcmp(mode, "create") == 0)) {
            t = &targets[(size_t)ticket % ntargets];  /* with COUNT: every line in turn, across clients */
        } else if (strcmp(mode, "store") == 0) {
            t = &targets[next % ntargets];           /* for a time: client k on lines k, k+CLIENTS, ... */
            next += (size_t)clients;
        } else {
            t = &targets[(size_t)rand_r(&seed) % ntargets];
        }
        if (strcmp(mode, "create") == 0) {
            len = snprintf(request, sizeof request,
                           "POST /v1/patients/%s/dossier HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n"
                           "Content-Length: 0\r\n\r\n", t->ins, t->token);
            expected = 201;
        } else if (strcmp(mode, "store") == 0) {
            len = snprintf(request, sizeof request,
                           "POST /v1/patients/%s/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n"
                           "Coffre-Class: BIOLOGIE\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                           t->ins, t->token, body_bytes);
            payload = body;
            payload_len = body_bytes;
            expected = 201;
        } else if (strcmp(mode, "fetch") == 0) {
            len = snprintf(request, sizeof request,
                           "GET /v1/patients/%s/documents/%s/content HTTP/1.1\r\nHost: localhost\r\n"
                           "Authorization: Coffre-Assertion %s\r\n\r\n", t->ins, t->doc, t->token);
            expected = 200;
        } else {
            len = snprintf(request, sizeof request,
                           "GET /v1/patients/%s/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n\r\n",
                           t->ins, t->token);
            expected = 200;
        }
        double t0 = now_seconds();
        send_all(c->fd, request, (size_t)len);
        if (payload_len) send_all(c->fd, payload, payload_len);
        int status = read_response(c, answer, sizeof answer);
        double elapsed = now_seconds() - t0;
        if (status < 0) {  /* the daemon closed the connection: reconnect, count an error */
            close(c->fd);
            c->fd = connect_socket();
            c->start = c->end = 0;
            me->lat.errors++;
            report_error(status, "connection closed");
            continue;
        }
        if (status != expected) {
            me->lat.errors++;
            report_error(status, answer);
            continue;
        }
        samples_add(&me->lat, elapsed);
        if (strcmp(mode, "store") == 0 && out) {
            /* The document's id: the "id" whose value is 32 hex digits (the author has an "id" too). */
            for (char *id = strstr(answer, "\"id\":\""); id; id = strstr(id + 1, "\"id\":\"")) {
                char *value = id + 6;
                if (strspn(value, "0123456789abcdef") == 32 && value[32] == '"') {
                    pthread_mutex_lock(&out_lock);
                    fprintf(out, "%s %s %.32s\n", t->ins, t->token, value);
                    pthread_mutex_unlock(&out_lock);
                    break;
                }
            }
        }
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void load_targets(const char *path) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, allocated = 0;
    if (!f) die(path);
    while (getline(&line, &cap, f) > 0) {
        char *save = NULL, *ins = strtok_r(line, " \n", &save), *token = strtok_r(NULL, " \n", &save);
        char *doc = strtok_r(NULL, " \n", &save);
        if (!ins || !token) continue;
        if (ntargets == allocated) {
            allocated = allocated ? allocated * 2 : 1024;
            targets = realloc(targets, allocated * sizeof *targets);
        }
        targets[ntargets++] = (struct target){strdup(ins), strdup(token), doc ? strdup(doc) : NULL};
    }
    free(line);
    fclose(f);
    if (ntargets == 0) { fprintf(stderr, "no targets in %s\n", path); exit(1); }
}

int main(int argc, char **argv) {
    const char *targets_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:m:c:i:t:n:b:o:")) != -1) {
        switch (opt) {
        case 's': socket_path = optarg; break;
        case 'm': mode = optarg; break;
        case 'c': clients = atoi(optarg); break;
        case 'i': targets_path = optarg; break;
        case 't': seconds = atof(optarg); break;
        case 'n': count = atol(optarg); break;
        case 'b': body_bytes = (size_t)atol(optarg); break;
        case 'o': out_path = optarg; break;
        default: return 64;
        }
    }
    if (!socket_path || !mode || !targets_path || clients < 1 || (seconds <= 0 && count <= 0)) {
        fprintf(stderr, "usage: loadgen -s SOCKET -m create|store|fetch|list -c CLIENTS -i TARGETS [-t SECONDS] [-n COUNT] [-b BYTES] [-o OUT]\n");
        return 64;
    }
    load_targets(targets_path);
    if (strcmp(mode, "create") == 0 && count <= 0) count = (long)ntargets;
    body = malloc(body_bytes ? body_bytes : 1);
    FILE *random = fopen("/dev/urandom", "r");
    if (!random || fread(body, 1, body_bytes, random) != body_bytes) die("/dev/urandom");
    fclose(random);
    if (out_path && !(out = fopen(out_path, "a"))) die(out_path);

    struct client *all = calloc((size_t)clients, sizeof *all);
    double start = now_seconds();
    for (int i = 0; i < clients; i++) {
        all[i].index = i;
        if (pthread_create(&all[i].thread, NULL, run_client, &all[i]) != 0) die("pthread_create");
    }
    struct samples merged = {0};
    for (int i = 0; i < clients; i++) {
        pthread_join(all[i].thread, NULL);
        samples_merge(&merged, &all[i].lat);
    }
    double elapsed = now_seconds() - start;
    if (out) fclose(out);
    printf("{\"clients\": %d, \"mode\": \"%s\", \"result\": ", clients, mode);
    samples_print_json(&merged, elapsed);
    printf("}\n");
    return 0;
}
