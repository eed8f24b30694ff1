/* The physical limit: what this machine can do with Coffre's stream encryption and durability,
 * with no daemon, no socket, no index.
 *
 *   limit large FILE DIR
 *       Store: encrypt FILE with crypto_secretstream_xchacha20poly1305 in 64 KiB chunks to
 *       DIR/tmp, fsync, rename into DIR, fsync DIR. Fetch: read it back, decrypt, write the
 *       plaintext to DIR/tmp, fsync, rename, fsync DIR (what `coffre doc get -o` does).
 *   limit small DIR THREADS SECONDS
 *       THREADS threads each store 32 KiB documents for SECONDS (tmp + fsync + rename + fsync of
 *       the shard directory), then fetch random stored ones (read + decrypt) for SECONDS.
 *
 * Prints one JSON object on stdout. Build: cc -O2 limit.c $(pkg-config --cflags --libs libsodium) -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"

#define CHUNK (64 * 1024)
#define RECORD (CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)
#define BATCH (256 * 1024) /* bytes handed to write() at once, as Coffre batches them */
#define SMALL (32 * 1024)

static unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];

static void die(const char *what) { perror(what); exit(1); }

static void write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        p += w; n -= (size_t)w;
    }
}

static size_t read_full(int fd, unsigned char *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) { if (errno == EINTR) continue; die("read"); }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) die("fsync dir");
    close(fd);
}

/* Durable publish: fsync the temporary, rename it into place, fsync the directory. */
static void publish(int fd, const char *tmp, const char *final, const char *dir) {
    if (fsync(fd) != 0) die("fsync");
    if (close(fd) != 0) die("close");
    if (rename(tmp, final) != 0) die("rename");
    sync_dir(dir);
}

/* Encrypts `in` (read with read()) into `out`, batching records into BATCH-sized writes. */
static void encrypt_stream(int in, int out, const unsigned char *ad, size_t adlen) {
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    static unsigned char plain[CHUNK];
    static unsigned char batch[BATCH + RECORD];
    size_t used = 0;
    crypto_secretstream_xchacha20poly1305_init_push(&st, header, key);
    write_all(out, header, sizeof header);
    for (;;) {
        size_t n = read_full(in, plain, CHUNK);
        unsigned char tag = n < CHUNK ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
        unsigned long long clen;
        crypto_secretstream_xchacha20poly1305_push(&st, batch + used, &clen, plain, n, ad, adlen, tag);
        used += (size_t)clen;
        if (used >= BATCH || tag) { write_all(out, batch, used); used = 0; }
        if (tag) break;
    }
}

static void decrypt_stream(int in, int out, const unsigned char *ad, size_t adlen) {
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    static unsigned char record[RECORD];
    static unsigned char batch[BATCH + CHUNK];
    size_t used = 0;
    if (read_full(in, header, sizeof header) != sizeof header) die("short header");
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key) != 0) die("bad header");
    for (;;) {
        size_t n = read_full(in, record, RECORD);
        unsigned long long mlen;
        unsigned char tag;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, batch + used, &mlen, &tag, record, n, ad, adlen) != 0) {
            fprintf(stderr, "authentication failed\n");
            exit(1);
        }
        used += (size_t)mlen;
        int last = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
        if (used >= BATCH || last) { write_all(out, batch, used); used = 0; }
        if (last) break;
        if (n < RECORD) { fprintf(stderr, "truncated\n"); exit(1); }
    }
}

static int large(const char *file, const char *dir) {
    char tmp[4096], enc[4096], dec[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    snprintf(enc, sizeof enc, "%s/doc.enc", dir);
    snprintf(dec, sizeof dec, "%s/doc.out", dir);
    const unsigned char ad[] = "document-id";
    struct stat info;
    if (stat(file, &info) != 0) die(file);

    double t0 = now_seconds();
    int in = open(file, O_RDONLY);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) die("open");
    encrypt_stream(in, out, ad, sizeof ad);
    close(in);
    publish(out, tmp, enc, dir);
    double store = now_seconds() - t0;

    t0 = now_seconds();
    in = open(enc, O_RDONLY);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) die("open");
    decrypt_stream(in, out, ad, sizeof ad);
    close(in);
    publish(out, tmp, dec, dir);
    double fetch = now_seconds() - t0;

    printf("{\"bytes\": %lld, \"store_s\": %.6f, \"fetch_s\": %.6f}\n", (long long)info.st_size, store, fetch);
    return 0;
}

/* ---- small documents ---- */

struct worker {
    pthread_t thread;
    int index;
    const char *dir;
    double deadline;
    int fetch;           /* 0: store, 1: fetch */
    long stored;         /* documents this worker stored (its files are w<index>-<n>) */
    struct samples lat;
};

static unsigned char payload[SMALL];

static void store_one(struct worker *w, long n) {
    char tmp[8400], final[8400], shard[4200];
    unsigned char ad[32];
    snprintf(shard, sizeof shard, "%s/%02x", w->dir, (unsigned)(n & 0xff));
    snprintf(tmp, sizeof tmp, "%s/tmp/w%d-%ld", w->dir, w->index, n);
    snprintf(final, sizeof final, "%s/w%d-%ld", shard, w->index, n);
    int len = snprintf((char *)ad, sizeof ad, "w%d-%ld", w->index, n);

    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char out[crypto_secretstream_xchacha20poly1305_HEADERBYTES + SMALL + crypto_secretstream_xchacha20poly1305_ABYTES];
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_init_push(&st, out, key);
    crypto_secretstream_xchacha20poly1305_push(&st, out + crypto_secretstream_xchacha20poly1305_HEADERBYTES, &clen, payload,
                                               SMALL, ad, (unsigned long long)len, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) die("open small");
    write_all(fd, out, crypto_secretstream_xchacha20poly1305_HEADERBYTES + (size_t)clen);
    publish(fd, tmp, final, shard);
}

static void fetch_one(struct worker *w, int owner, long n) {
    char path[4096];
    unsigned char ad[32];
    snprintf(path, sizeof path, "%s/%02x/w%d-%ld", w->dir, (unsigned)(n & 0xff), owner, n);
    int len = snprintf((char *)ad, sizeof ad, "w%d-%ld", owner, n);
    unsigned char in[crypto_secretstream_xchacha20poly1305_HEADERBYTES + SMALL + crypto_secretstream_xchacha20poly1305_ABYTES];
    unsigned char plain[SMALL];
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    size_t got = read_full(fd, in, sizeof in);
    close(fd);
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned long long mlen;
    unsigned char tag;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, in, key) != 0 ||
        crypto_secretstream_xchacha20poly1305_pull(&st, plain, &mlen, &tag, in + crypto_secretstream_xchacha20poly1305_HEADERBYTES,
                                                   got - crypto_secretstream_xchacha20poly1305_HEADERBYTES, ad,
                                                   (unsigned long long)len) != 0) {
        fprintf(stderr, "authentication failed\n");
        exit(1);
    }
}

static struct worker *workers;
static int nworkers;

static void *run_worker(void *arg) {
    struct worker *w = arg;
    unsigned seed = (unsigned)w->index * 7919u + 1;
    while (now_seconds() < w->deadline) {
        double t0 = now_seconds();
        if (w->fetch) {
            int owner;
            do { owner = (int)(rand_r(&seed) % (unsigned)nworkers); } while (workers[owner].stored == 0);
            fetch_one(w, owner, (long)(rand_r(&seed) % (unsigned)workers[owner].stored));
        } else {
            store_one(w, w->stored++);
        }
        samples_add(&w->lat, now_seconds() - t0);
    }
    return NULL;
}

static void phase(int fetch, double seconds) {
    double start = now_seconds();
    for (int i = 0; i < nworkers; i++) {
        workers[i].fetch = fetch;
        workers[i].deadline = start + seconds;
        samples_reset(&workers[i].lat);
        if (pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]) != 0) die("pthread_create");
    }
    struct samples all = {0};
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        samples_merge(&all, &workers[i].lat);
    }
    samples_print_json(&all, now_seconds() - start);
    samples_free(&all);
}

static int small(const char *dir, int threads, double seconds) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", dir);
    mkdir(path, 0700);
    for (int s = 0; s < 256; s++) {
        snprintf(path, sizeof path, "%s/%02x", dir, s);
        mkdir(path, 0700);
    }
    randombytes_buf(payload, sizeof payload);
    nworkers = threads;
    workers = calloc((size_t)threads, sizeof *workers);
    for (int i = 0; i < threads; i++) { workers[i].index = i; workers[i].dir = dir; }
    printf("{\"threads\": %d, \"store\": ", threads);
    phase(0, seconds);
    printf(", \"fetch\": ");
    phase(1, seconds);
    printf("}\n");
    return 0;
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    if (argc == 4 && strcmp(argv[1], "large") == 0) return large(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "small") == 0) return small(argv[2], atoi(argv[3]), atof(argv[4]));
    fprintf(stderr, "usage: limit large FILE DIR | limit small DIR THREADS SECONDS\n");
    return 64;
}
