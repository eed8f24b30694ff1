/* Load generator for coffred: C client threads, each with one HTTP/1.1 keep-alive connection to
 * the daemon's Unix socket.
 *
 *   loadgen -s SOCKET -m create|store|fetch|list -c CLIENTS -i TARGETS -k SEEDFILE [-I ISSUER]
 *           [-t SECONDS] [-n COUNT] [-b BYTES] [-o OUT]
 *   loadgen -m mint -i TARGETS -k SEEDFILE [-I ISSUER] -n COUNT [-o OUT]
 *
 * TARGETS has one line per target, fields separated by spaces:
 *   create, store, list:  INS
 *   fetch:                INS DOCID
 * Every request carries an actor assertion minted for it, as real software must (assertions are
 * single-use): claims {exp, iat, iss, jti, mode normal, role patient, software coffre-bench, sub
 * INS}, iat now, exp iat + 300 s, jti 16 random bytes in hex, signed with Ed25519 by ISSUER
 * (default "dev") whose 32-byte secret seed is in SEEDFILE, in hex (the development daemon writes
 * it as STATE/dev-issuer.key). The format is SignedAssertion's: v1.<claims>.<signature>, both
 * base64url without padding, the signature over "coffre-assertion.v1." + the encoded claims.
 * create: POST /v1/patients/INS/dossier, once per line. store: POST .../documents with BYTES
 * (default 32768) of random content; for a time, client k uses the lines k, k+CLIENTS, ...; with
 * COUNT, request i goes to line i mod LINES. The new documents are appended to OUT as
 * "INS DOCID". fetch: GET .../documents/DOCID/content of random lines. list: GET .../documents
 * of random lines. mint: no daemon; mints COUNT assertions in one thread (for line i mod LINES),
 * writes them to OUT, one per line, and prints what one costs.
 * Runs for SECONDS, or until COUNT requests in all (whichever is given; COUNT wins).
 * Prints {"clients": C, "mode": M, "result": {"ops": …, "errors": …, "ops_per_s": …, "p50_ms": …,
 * "p99_ms": …}, "mint_us_per_op": …}; latencies exclude minting, mint_us_per_op is its mean cost.
 * A request answered with an unexpected status counts as an error (the first few are shown on stderr).
 *
 * Build: cc -O2 loadgen.c -lsodium -lpthread
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

#include <sodium.h>

#include "stats.h"

struct target { char *ins, *doc; };

static const char *socket_path, *mode, *out_path;
static const char *issuer = "dev";
static unsigned char signing_key[crypto_sign_SECRETKEYBYTES];
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

/* -- actor assertions ------------------------------------------------------------------------ */

#define ASSERTION_LIFETIME 300
#define SIGNING_LABEL "coffre-assertion.v1."
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* Longest INS or issuer id accepted, so every claims text fits its buffer. */
#define MAX_NAME 64
#define MAX_CLAIMS 512
#define MAX_ASSERTION (3 + 4 * MAX_CLAIMS / 3 + 4 + 1 + 88)

/* Letters, digits and "-_." (what an issuer id may hold, and more than an INS needs): nothing to
 * escape in JSON or in a URL path. */
static int is_plain_name(const char *s) {
    size_t n = strlen(s);
    return n >= 1 && n <= MAX_NAME && s[0] != '.' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static void load_signing_key(const char *path) {
    char text[256];
    unsigned char seed[crypto_sign_SEEDBYTES], public_key[crypto_sign_PUBLICKEYBYTES];
    size_t seed_len = 0;
    const char *end = NULL;
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    if (sodium_hex2bin(seed, sizeof seed, text, n, " \t\r\n", &seed_len, &end) != 0 || seed_len != sizeof seed ||
        end[strspn(end, " \t\r\n")] != 0) {
        fprintf(stderr, "%s: expected a 32-byte Ed25519 seed in hex\n", path);
        exit(1);
    }
    crypto_sign_seed_keypair(public_key, signing_key, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(text, sizeof text);
}

/* Mints a fresh assertion for patient `ins` into out (MAX_ASSERTION bytes): claims with sorted
 * keys (as the Swift and Python signers write them), a new random jti, a five-minute lifetime. */
static void mint(const char *ins, char *out) {
    unsigned char nonce[16], signature[crypto_sign_BYTES];
    char jti[2 * sizeof nonce + 1], claims[MAX_CLAIMS], message[sizeof SIGNING_LABEL + 4 * MAX_CLAIMS / 3 + 4];
    randombytes_buf(nonce, sizeof nonce);
    sodium_bin2hex(jti, sizeof jti, nonce, sizeof nonce);
    long long iat = (long long)time(NULL);
    int n = snprintf(claims, sizeof claims,
                     "{\"exp\":%lld,\"iat\":%lld,\"iss\":\"%s\",\"jti\":\"%s\",\"mode\":\"normal\",\"role\":\"patient\","
                     "\"software\":\"coffre-bench\",\"sub\":\"%s\"}",
                     iat + ASSERTION_LIFETIME, iat, issuer, jti, ins);
    if (n <= 0 || (size_t)n >= sizeof claims) { fprintf(stderr, "claims too long\n"); exit(1); }
    /* message = label + base64url(claims): what is signed; the token carries the part after the label. */
    memcpy(message, SIGNING_LABEL, sizeof SIGNING_LABEL - 1);
    char *payload = message + sizeof SIGNING_LABEL - 1;
    sodium_bin2base64(payload, sizeof message - (sizeof SIGNING_LABEL - 1), (const unsigned char *)claims, (size_t)n, B64);
    size_t payload_len = strlen(payload);
    crypto_sign_detached(signature, NULL, (const unsigned char *)message, sizeof SIGNING_LABEL - 1 + payload_len, signing_key);
    memcpy(out, "v1.", 3);
    memcpy(out + 3, payload, payload_len);
    out[3 + payload_len] = '.';
    sodium_bin2base64(out + 4 + payload_len, MAX_ASSERTION - 4 - payload_len, signature, sizeof signature, B64);
}

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
    double mint_seconds;
    long minted;
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
    char request[8192], answer[4096], token[MAX_ASSERTION];
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
        double m0 = now_seconds();
        mint(t->ins, token);
        me->mint_seconds += now_seconds() - m0;
        me->minted++;
        if (strcmp(mode, "create") == 0) {
            len = snprintf(request, sizeof request,
                           "POST /v1/patients/%s/dossier HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n"
                           "Content-Length: 0\r\n\r\n", t->ins, token);
            expected = 201;
        } else if (strcmp(mode, "store") == 0) {
            len = snprintf(request, sizeof request,
                           "POST /v1/patients/%s/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n"
                           "Coffre-Class: BIOLOGIE\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                           t->ins, token, body_bytes);
            payload = body;
            payload_len = body_bytes;
            expected = 201;
        } else if (strcmp(mode, "fetch") == 0) {
            len = snprintf(request, sizeof request,
                           "GET /v1/patients/%s/documents/%s/content HTTP/1.1\r\nHost: localhost\r\n"
                           "Authorization: Coffre-Assertion %s\r\n\r\n", t->ins, t->doc, token);
            expected = 200;
        } else {
            len = snprintf(request, sizeof request,
                           "GET /v1/patients/%s/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Coffre-Assertion %s\r\n\r\n",
                           t->ins, token);
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
                    fprintf(out, "%s %.32s\n", t->ins, value);
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
        char *save = NULL, *ins = strtok_r(line, " \n", &save), *doc = strtok_r(NULL, " \n", &save);
        if (!ins) continue;
        if (strtok_r(NULL, " \n", &save) || !is_plain_name(ins)) {
            fprintf(stderr, "%s: a line is INS [DOCID] (assertions are minted per request), not: %s\n", path, ins);
            exit(1);
        }
        if (ntargets == allocated) {
            allocated = allocated ? allocated * 2 : 1024;
            targets = realloc(targets, allocated * sizeof *targets);
        }
        targets[ntargets++] = (struct target){strdup(ins), doc ? strdup(doc) : NULL};
    }
    free(line);
    fclose(f);
    if (ntargets == 0) { fprintf(stderr, "no targets in %s\n", path); exit(1); }
    if (strcmp(mode, "fetch") == 0)
        for (size_t i = 0; i < ntargets; i++)
            if (!targets[i].doc) { fprintf(stderr, "%s: fetch needs INS DOCID on every line\n", path); exit(1); }
}

/* mode mint: COUNT assertions in one thread, written to OUT; what one costs. */
static int mint_only(void) {
    char token[MAX_ASSERTION];
    FILE *f = out_path ? fopen(out_path, "w") : NULL;
    if (out_path && !f) die(out_path);
    double start = now_seconds();
    for (long i = 0; i < count; i++) {
        mint(targets[(size_t)i % ntargets].ins, token);
        if (f) fprintf(f, "%s\n", token);
    }
    double elapsed = now_seconds() - start;
    if (f) fclose(f);
    printf("{\"mode\": \"mint\", \"assertions\": %ld, \"seconds\": %.3f, \"mint_us_per_op\": %.2f}\n", count, elapsed,
           elapsed * 1e6 / (double)count);
    return 0;
}

int main(int argc, char **argv) {
    const char *targets_path = NULL;
    int opt;
    const char *seed_path = NULL;
    while ((opt = getopt(argc, argv, "s:m:c:i:t:n:b:o:k:I:")) != -1) {
        switch (opt) {
        case 's': socket_path = optarg; break;
        case 'm': mode = optarg; break;
        case 'c': clients = atoi(optarg); break;
        case 'i': targets_path = optarg; break;
        case 't': seconds = atof(optarg); break;
        case 'n': count = atol(optarg); break;
        case 'b': body_bytes = (size_t)atol(optarg); break;
        case 'o': out_path = optarg; break;
        case 'k': seed_path = optarg; break;
        case 'I': issuer = optarg; break;
        default: return 64;
        }
    }
    int minting = mode && strcmp(mode, "mint") == 0;
    if ((!socket_path && !minting) || !mode || !targets_path || !seed_path || clients < 1 || (seconds <= 0 && count <= 0) ||
        (minting && count <= 0)) {
        fprintf(stderr, "usage: loadgen -s SOCKET -m create|store|fetch|list -c CLIENTS -i TARGETS -k SEEDFILE [-I ISSUER]\n"
                        "               [-t SECONDS] [-n COUNT] [-b BYTES] [-o OUT]\n"
                        "       loadgen -m mint -i TARGETS -k SEEDFILE [-I ISSUER] -n COUNT [-o OUT]\n");
        return 64;
    }
    if (!is_plain_name(issuer)) { fprintf(stderr, "issuer id: letters, digits, -_. only, at most %d\n", MAX_NAME); return 64; }
    if (sodium_init() < 0) { fprintf(stderr, "sodium_init failed\n"); return 1; }
    load_signing_key(seed_path);
    load_targets(targets_path);
    if (minting) return mint_only();
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
    double mint_seconds = 0;
    long minted = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(all[i].thread, NULL);
        samples_merge(&merged, &all[i].lat);
        mint_seconds += all[i].mint_seconds;
        minted += all[i].minted;
    }
    double elapsed = now_seconds() - start;
    if (out) fclose(out);
    printf("{\"clients\": %d, \"mode\": \"%s\", \"result\": ", clients, mode);
    samples_print_json(&merged, elapsed);
    printf(", \"mint_us_per_op\": %.2f}\n", minted ? mint_seconds * 1e6 / (double)minted : 0.0);
    return 0;
}
