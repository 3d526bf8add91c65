/* Misuse and corruption cases for hz3's failfast builds (libhz3_{fast,scale}_failfast.so).
 * Usage: failfast_check <mode> [lane]
 *   With a lane, first checks hz3_lane() names it (proof that hz3 answers), then:
 *   clean:              a normal multi-thread workload (remote frees, realloc, calloc, aligned and
 *                       large blocks, threads exiting with objects still in flight) must run to the end:
 *                       prints "ok clean" and exits 0.
 *   Every other mode prints "addr 0x..." (the pointer the misuse is about) and then misbehaves; under
 *   failfast the allocator must abort. Reaching the end prints "survived" and exits 3.
 *   double-free:        free(p) twice.
 *   interior:           free(p + 16) of a 64-byte block.
 *   aligned-interior:   free(p + 16) of a 256-byte block aligned to 256.
 *   foreign:            free() of a pointer into a mapping hz3 never saw.
 *   write-after-free:   free(p), write its first word, malloc the same size again.
 *   corrupt-link:       another thread frees two of this thread's blocks (adoption caches them in
 *                       that thread, which then exits), the second one's first word is overwritten with the
 *                       address of a global buffer, then this thread mallocs that size until the block
 *                       would come back; prints "redirected" (exit 4) if malloc returns the buffer.
 *   realloc-freed:      realloc() of a freed block to a size it still fits.
 *   large-double-free:  free(p) twice of a 1 MiB block.
 *   large-interior:     free(p + 4096) of a 1 MiB block.
 *   canary:             prints "free-word 0x... addr 0x..." (the first word of a freed block, read
 *                       back, and the block's address), then exits 0. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"

static void announce(void *p) {
    printf("addr %p\n", p);
    fflush(stdout);
}

/* Reached only when the allocator let the misuse through. */
static void survived(void) {
    printf("survived\n");
    fflush(stdout);
    _exit(3);
}

/* ---- clean: threads pass blocks round a ring, so most frees are remote ---- */

enum { THREADS = 4, SLOTS = 256, ROUNDS = 200000 };
static void *_Atomic mailbox[THREADS][SLOTS];

struct worker { int id; uint64_t seed; };

static void fill(unsigned char *p, size_t n, unsigned char v) { memset(p, v, n); }

static void check_fill(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++) CHECK(p[i] == v, "block contents changed while live");
}

static void *clean_worker(void *arg) {
    struct worker *w = arg;
    void *local[64] = {0};
    size_t filled[64] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t x = next_random(&w->seed);
        size_t size = 16 + x % 2033;
        int k = (int)((x >> 16) % 64);
        switch ((x >> 24) % 8) {
        case 0: { /* realloc a local block up or down, contents kept */
            size_t old = filled[k];
            unsigned char *q = realloc(local[k], size);
            CHECK(q != NULL, "realloc returned NULL");
            CHECK(malloc_usable_size(q) >= size, "malloc_usable_size below the request");
            check_fill(q, old < size ? old : size, (unsigned char)k);
            fill(q, size, (unsigned char)k);
            local[k] = q;
            filled[k] = size;
            break;
        }
        case 1: { /* aligned blocks, freed at once */
            void *q = NULL;
            size_t align = (size_t)16 << (x >> 32) % 8;
            CHECK(posix_memalign(&q, align, size) == 0, "posix_memalign failed");
            CHECK((uintptr_t)q % align == 0, "posix_memalign misaligned");
            fill(q, size, 0x5a);
            free(q);
            break;
        }
        case 2: { /* calloc must see zeroes even where a canary sat */
            unsigned char *q = calloc(1, size);
            CHECK(q != NULL, "calloc returned NULL");
            check_fill(q, size, 0);
            free(q);
            break;
        }
        case 3:
            if (r % 64 == 0) { /* now and then a large block */
                unsigned char *q = malloc(100000 + size);
                CHECK(q != NULL, "large malloc returned NULL");
                fill(q, 100000 + size, 1);
                free(q);
            }
            break;
        default: { /* hand a block to the next thread; free whatever was waiting in the slot */
            unsigned char *q = malloc(size);
            CHECK(q != NULL, "malloc returned NULL");
            q[0] = 1;
            q[size - 1] = 2;
            int slot = (int)((x >> 40) % SLOTS);
            void *old = atomic_exchange(&mailbox[(w->id + 1) % THREADS][slot], q);
            free(old);
            old = atomic_exchange(&mailbox[w->id][slot], NULL);
            free(old);
        }
        }
    }
    for (int k = 0; k < 64; k++) free(local[k]);
    return NULL;
}

static void run_clean(void) {
    /* Two generations: threads of the second are born while blocks of the first are still in the
     * mailboxes, so some owners have exited (late remote frees) or exit with an inbox to return. */
    for (int gen = 0; gen < 2; gen++) {
        pthread_t t[THREADS];
        struct worker w[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i].id = i;
            w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1 + gen * THREADS);
            CHECK(pthread_create(&t[i], NULL, clean_worker, &w[i]) == 0, "pthread_create");
        }
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    }
    for (int i = 0; i < THREADS; i++)
        for (int s = 0; s < SLOTS; s++) free(atomic_exchange(&mailbox[i][s], NULL));
}

/* ---- corrupt-link ---- */

static void *victims[2];
static _Alignas(64) char redirect_target[256];

static void *free_victims(void *arg) {
    (void)arg;
    free(victims[0]);
    free(victims[1]);
    return NULL;
}

static void run_corrupt_link(void) {
    victims[0] = malloc(64);
    victims[1] = malloc(64);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_victims, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    announce(victims[1]);
    /* One overwrite of the freed block's first word: where a plain linked free list keeps "next". */
    *(void **)victims[1] = redirect_target;
    /* Read back through a volatile: malloc's declaration says its result aliases nothing, so a
     * direct comparison with a global's address would be folded to false. */
    void *volatile target = redirect_target;
    for (int i = 0; i < 100000; i++) {
        void *q = malloc(64);
        if (q == target) {
            printf("redirected\n");
            fflush(stdout);
            _exit(4);
        }
    }
    survived();
}

/* ---- misuse: each prints the address it is about, misbehaves, and must not come back ---- */

static void run_canary(void) {
    void **p = malloc(64);
    *p = NULL;
    free(p);
    /* Reading a freed block is the program's own fault; here it shows what hz3 left there. */
    printf("free-word %p addr %p\n", *(void *volatile *)p, (void *)p);
}

static void run_double_free(void) {
    char *p = malloc(64);
    announce(p);
    free(p);
    free(p);
    survived();
}

static void run_interior(void) {
    char *p = malloc(64);
    announce(p + 16);
    free(p + 16);
    survived();
}

static void run_aligned_interior(void) {
    void *p = NULL;
    CHECK(posix_memalign(&p, 256, 256) == 0, "posix_memalign failed");
    announce((char *)p + 16);
    free((char *)p + 16);
    survived();
}

static void run_foreign(void) {
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap failed");
    announce(m + 64);
    free(m + 64);
    survived();
}

static void run_write_after_free(void) {
    char *p = malloc(64);
    announce(p);
    free(p);
    memset(p, 'A', 8);
    char *q = malloc(64);
    printf("malloc after the write returned %p\n", (void *)q);
    survived();
}

static void run_realloc_freed(void) {
    char *p = malloc(64);
    announce(p);
    free(p);
    p = realloc(p, 60);
    survived();
}

static void run_large_double_free(void) {
    char *p = malloc(1 << 20);
    announce(p);
    free(p);
    free(p);
    survived();
}

static void run_large_interior(void) {
    char *p = malloc(1 << 20);
    announce(p + 4096);
    free(p + 4096);
    survived();
}

static void run_clean_checked(void) {
    begin("clean");
    run_clean();
    pass();
}

int main(int argc, char **argv) {
    static const struct check_mode modes[] = {
        {"clean", run_clean_checked},
        {"canary", run_canary},
        {"double-free", run_double_free},
        {"interior", run_interior},
        {"aligned-interior", run_aligned_interior},
        {"foreign", run_foreign},
        {"write-after-free", run_write_after_free},
        {"corrupt-link", run_corrupt_link},
        {"realloc-freed", run_realloc_freed},
        {"large-double-free", run_large_double_free},
        {"large-interior", run_large_interior},
    };
    return run_checker(argc, argv, modes, sizeof modes / sizeof modes[0]);
}
