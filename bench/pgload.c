/* PostgreSQL + pgcrypto peer: client threads, one persistent libpq connection each (as pgbench),
 * over the server's local Unix socket, with the server's durable commits (fsync=on,
 * synchronous_commit=on).
 *
 *   pgload CONNINFO small CLIENTS SECONDS [BYTES]
 *       Store: INSERT INTO doc (data) VALUES (pgp_sym_encrypt_bytea($1, key, 'cipher-algo=aes256'))
 *       with BYTES (default 32768) random bytes sent as a binary parameter, for SECONDS; then
 *       fetch: SELECT pgp_sym_decrypt_bytea(data, key) of random stored rows, for SECONDS.
 *   pgload CONNINFO large FILE OUTFILE
 *       Store FILE in one row the same way, then fetch it into OUTFILE (written, fsync'd).
 *
 * Prints one JSON object. Build: cc -O2 pgload.c -I$(pg_config --includedir) -lpq -lpthread
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"

static const char *conninfo;
static const char *passphrase = "coffre-bench-passphrase";
static const char *insert_sql =
    "INSERT INTO doc (data) VALUES (pgp_sym_encrypt_bytea($1::bytea, $2, 'cipher-algo=aes256')) RETURNING id";
static const char *select_sql = "SELECT pgp_sym_decrypt_bytea(data, $2) FROM doc WHERE id = $1::bigint";

static PGconn *connect_db(void) {
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) { fprintf(stderr, "pgload: %s", PQerrorMessage(db)); exit(1); }
    return db;
}

static PGresult *must(PGconn *db, PGresult *r, ExecStatusType want) {
    if (PQresultStatus(r) != want) { fprintf(stderr, "pgload: %s", PQerrorMessage(db)); exit(1); }
    return r;
}

static long store(PGconn *db, const char *data, int len) {
    const char *values[2] = {data, passphrase};
    int lengths[2] = {len, 0}, formats[2] = {1, 0};
    PGresult *r = must(db, PQexecParams(db, insert_sql, 2, NULL, values, lengths, formats, 0), PGRES_TUPLES_OK);
    long id = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

/* Returns the decrypted content (binary result); caller PQclear()s it. */
static PGresult *fetch(PGconn *db, long id) {
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%ld", id);
    const char *values[2] = {idtext, passphrase};
    return must(db, PQexecParams(db, select_sql, 2, NULL, values, NULL, NULL, 1), PGRES_TUPLES_OK);
}

struct worker {
    pthread_t thread;
    int index;
    int fetching;
    double deadline;
    struct samples lat;
};

static char *payload;
static int payload_len;
static long first_id, last_id;

static void *run_worker(void *arg) {
    struct worker *w = arg;
    PGconn *db = connect_db();
    unsigned seed = (unsigned)w->index * 2654435761u + 3;
    while (now_seconds() < w->deadline) {
        double t0 = now_seconds();
        if (w->fetching) {
            long id = first_id + (long)(rand_r(&seed) % (unsigned)(last_id - first_id + 1));
            PGresult *r = fetch(db, id);
            if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != payload_len) w->lat.errors++;
            PQclear(r);
        } else {
            store(db, payload, payload_len);
        }
        samples_add(&w->lat, now_seconds() - t0);
    }
    PQfinish(db);
    return NULL;
}

static void phase(int clients, int fetching, double seconds) {
    struct worker *workers = calloc((size_t)clients, sizeof *workers);
    double start = now_seconds();
    for (int i = 0; i < clients; i++) {
        workers[i] = (struct worker){.index = i, .fetching = fetching, .deadline = start + seconds};
        pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]);
    }
    struct samples all = {0};
    for (int i = 0; i < clients; i++) {
        pthread_join(workers[i].thread, NULL);
        samples_merge(&all, &workers[i].lat);
        samples_free(&workers[i].lat);
    }
    samples_print_json(&all, now_seconds() - start);
    samples_free(&all);
    free(workers);
}

static long scalar(PGconn *db, const char *sql) {
    PGresult *r = must(db, PQexec(db, sql), PGRES_TUPLES_OK);
    long v = PQgetisnull(r, 0, 0) ? 0 : atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int small(int clients, double seconds, int bytes) {
    payload_len = bytes;
    payload = malloc((size_t)bytes);
    FILE *random = fopen("/dev/urandom", "r");
    if (!random || fread(payload, 1, (size_t)bytes, random) != (size_t)bytes) return 1;
    fclose(random);
    PGconn *db = connect_db();
    first_id = scalar(db, "SELECT coalesce(max(id), 0) + 1 FROM doc");
    printf("{\"clients\": %d, \"store\": ", clients);
    phase(clients, 0, seconds);
    last_id = scalar(db, "SELECT max(id) FROM doc");
    printf(", \"fetch\": ");
    phase(clients, 1, seconds);
    printf("}\n");
    PQfinish(db);
    return 0;
}

static int large(const char *file, const char *outfile) {
    struct stat info;
    if (stat(file, &info) != 0) { perror(file); return 1; }
    char *data = malloc((size_t)info.st_size);
    int fd = open(file, O_RDONLY);
    size_t got = 0;
    while (got < (size_t)info.st_size) {
        ssize_t n = read(fd, data + got, (size_t)info.st_size - got);
        if (n <= 0) { perror("read"); return 1; }
        got += (size_t)n;
    }
    close(fd);
    PGconn *db = connect_db();
    double t0 = now_seconds();
    long id = store(db, data, (int)info.st_size);
    double store_s = now_seconds() - t0;
    free(data);

    t0 = now_seconds();
    PGresult *r = fetch(db, id);
    int out = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *p = PQgetvalue(r, 0, 0);
    size_t left = (size_t)PQgetlength(r, 0, 0);
    while (left > 0) {
        ssize_t n = write(out, p, left);
        if (n <= 0) { perror("write"); return 1; }
        p += n; left -= (size_t)n;
    }
    if (fsync(out) != 0) { perror("fsync"); return 1; }
    close(out);
    PQclear(r);
    double fetch_s = now_seconds() - t0;
    PQfinish(db);
    printf("{\"bytes\": %lld, \"store_s\": %.6f, \"fetch_s\": %.6f}\n", (long long)info.st_size, store_s, fetch_s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[2], "small") == 0) {
        conninfo = argv[1];
        return small(atoi(argv[3]), atof(argv[4]), argc > 5 ? atoi(argv[5]) : 32768);
    }
    if (argc == 5 && strcmp(argv[2], "large") == 0) {
        conninfo = argv[1];
        return large(argv[3], argv[4]);
    }
    fprintf(stderr, "usage: pgload CONNINFO small CLIENTS SECONDS [BYTES] | pgload CONNINFO large FILE OUTFILE\n");
    return 64;
}
