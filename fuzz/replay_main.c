/*
 * replay: runs a libFuzzer target over files, without libFuzzer. The Bazel
 * tests //fuzz:NAME_replay link it with NAME_fuzz.c and replay the seed
 * corpus, so every target builds with the project's compiler and flags and
 * its seeds pass under `bazel test --config=asan` too. Reproduce a crash
 * file from tools/fuzz.sh the same way: bazel-bin/fuzz/NAME_replay FILE.
 *
 *   NAME_replay FILE...   exit 0 when every input ran; 2 on a usage or I/O
 *                         error, or when no input was given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole file into a malloc'd buffer of exactly its size (so ASan
 * sees a read past the end); returns NULL on error. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(n ? (size_t)n : 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        uint8_t *buf = slurp(argv[i], &len);
        if (buf == NULL) {
            perror(argv[i]);
            return 2;
        }
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
    }
    printf("replayed %d input(s)\n", argc - 1);
    return 0;
}
