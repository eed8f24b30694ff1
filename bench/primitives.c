/* The speed of the primitives Coffre's large-document path spends its CPU on, on this CPU:
 * libsodium's SHA-256 (Coffre hashes every document), BLAKE2b, and the secretstream
 * (XChaCha20-Poly1305, 64 KiB chunks) that encrypts it. One buffer of 256 MiB, in memory.
 * Prints one JSON object (MB/s, 10^6 bytes per second).
 * Build: cc -O2 primitives.c $(pkg-config --cflags --libs libsodium)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

#define SIZE ((size_t)256 << 20)
#define CHUNK 65536

int main(void) {
    if (sodium_init() < 0) return 1;
    unsigned char *data = malloc(SIZE), *out = malloc(CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES);
    unsigned char hash[32], key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_state st;
    if (!data || !out) return 1;
    randombytes_buf(data, SIZE);
    crypto_secretstream_xchacha20poly1305_keygen(key);

    double t0 = now_seconds();
    crypto_hash_sha256(hash, data, SIZE);
    double sha256 = now_seconds() - t0;

    t0 = now_seconds();
    crypto_generichash(hash, sizeof hash, data, SIZE, NULL, 0);
    double blake2b = now_seconds() - t0;

    t0 = now_seconds();
    crypto_secretstream_xchacha20poly1305_init_push(&st, header, key);
    for (size_t i = 0; i < SIZE; i += CHUNK) {
        unsigned long long n;
        crypto_secretstream_xchacha20poly1305_push(&st, out, &n, data + i, CHUNK, NULL, 0, 0);
    }
    double stream = now_seconds() - t0;

    printf("{\"sha256_mb_s\": %.0f, \"blake2b_mb_s\": %.0f, \"secretstream_mb_s\": %.0f}\n", SIZE / 1e6 / sha256,
           SIZE / 1e6 / blake2b, SIZE / 1e6 / stream);
    return 0;
}
