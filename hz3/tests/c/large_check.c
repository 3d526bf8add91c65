/* Large blocks (above the small limit) under LD_PRELOAD: reuse, realloc, alignment, decay, failures.
 * Usage: large_check <mode> [lane]
 *   loop64k:         20 000 rounds of malloc(64 KiB), write it all, check, free.
 *   realloc-growth:  one buffer grown by realloc in 8 KiB steps to 64 MiB, each step's new bytes written;
 *                    every byte checked at the end.
 *   buffers:         two threads each grow 40 buffers one at a time by realloc in 8 KiB steps from
 *                    8 KiB to 1-6 MiB (as strings and vectors grow), each step's bytes written and
 *                    checked after the next realloc, the whole buffer checked before its free.
 *   realloc-content: 300 reallocs of one block between 33 KiB and 4 MiB (shrinking and growing); the
 *                    common prefix must survive each one.
 *   aligned:         posix_memalign / aligned_alloc of 64 KiB .. 8 MiB alignments and sizes around
 *                    them, interleaved with frees: every block aligned, usable and writable.
 *   huge:            with large blocks cached, malloc(1<<46) (and its posix_memalign, calloc, realloc
 *                    forms) fail with ENOMEM; live blocks are intact and normal work goes on.
 *   maplimit:        mappings of the process driven to vm.max_map_count (filler mappings), with
 *                    80 000 live malloc(40000) and every other one freed, then more large and small
 *                    work and malloc_trim(0) at the limit: a NULL only with ENOMEM, nothing aborts, live
 *                    blocks intact, and everything works again once the fillers are gone.
 *   decay:           a thread allocates and writes 16 MiB of small objects and 256 MiB of large
 *                    blocks (64 KiB .. 4 MiB), frees them and exits; main then waits DECAY_WAIT_MS doing
 *                    one large malloc/free every 100 ms (the allocator's decay is driven by its own slow
 *                    operations); anonymous RSS (RssAnon: the allocator's memory, not the program's
 *                    code pages, which grow as new libc paths run) must then be within 10% of its
 *                    value at the start, plus 1/256 of the peak for page-map descriptors (64 B per
 *                    64 KiB run, touched where blocks started; hz3 never returns them).
 *   decay-remote:    a thread allocates and writes 9 MiB of 720-byte objects; a second thread frees
 *                    them all (a burst of remote frees: 400 batches spilled at once, which the transfer
 *                    cache holds whole) and stays alive; main then waits DECAY_WAIT_MS churning small
 *                    objects of another size every 100 ms, no large block at all; RssAnon must give
 *                    back 90% of what the burst added (the freer's cache pins a few runs).
 * With LARGE_CHECK_DUMP=<path> and a probes build, the counters are reset before the measured part and
 * dumped to <path> after it (hz3_probes_reset / hz3_probes_dump). Each mode prints its elapsed time. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "check.h"

/* Longer than hz3's decay period (1 s) plus one purge pass. */
#define DECAY_WAIT_MS 2500

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double measured_since;

static void measure_begin(void) {
    void (*reset)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "hz3_probes_reset");
    if (getenv("LARGE_CHECK_DUMP") && reset) reset();
    measured_since = now_s();
}

static void measure_end(void) {
    printf("elapsed %s %.3f s\n", current_check, now_s() - measured_since);
    const char *path = getenv("LARGE_CHECK_DUMP");
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "hz3_probes_dump");
    if (path && dump) CHECK(dump(path) == 0, "hz3_probes_dump(%s) failed", path);
}

static size_t status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL, "open /proc/self/status");
    char line[256];
    size_t len = strlen(field), kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') kib = strtoull(line + len + 1, NULL, 10);
    fclose(f);
    return kib;
}

static unsigned char pattern(size_t offset, unsigned seed) { return (unsigned char)(offset * 131 + seed * 7 + 1); }

static void fill(unsigned char *p, size_t from, size_t to, unsigned seed) {
    for (size_t i = from; i < to; i++) p[i] = pattern(i, seed);
}

static void expect(const unsigned char *p, size_t from, size_t to, unsigned seed, const char *what) {
    for (size_t i = from; i < to; i++)
        CHECK(p[i] == pattern(i, seed), "%s: byte %zu of %p is %u, want %u", what, i, (void *)p, p[i],
              pattern(i, seed));
}

static void run_loop64k(void) {
    begin("large.loop64k");
    const size_t size = 64 << 10;
    measure_begin();
    for (int i = 0; i < 20000; i++) {
        unsigned char *p = malloc(size);
        CHECK(p != NULL, "malloc(64 KiB) failed in round %d", i);
        memset(p, i, size);
        CHECK(p[0] == (unsigned char)i && p[size - 1] == (unsigned char)i, "64 KiB block lost its bytes");
        free(p);
    }
    measure_end();
    pass();
}

static void run_realloc_growth(void) {
    begin("large.realloc_growth");
    const size_t step = 8 << 10, max = (size_t)64 << 20;
    unsigned char *p = NULL;
    measure_begin();
    for (size_t size = step; size <= max; size += step) {
        unsigned char *q = realloc(p, size);
        CHECK(q != NULL, "realloc to %zu failed", size);
        p = q;
        if (size > step) expect(p, size - 2 * step, size - step, 1, "previous step after realloc");
        fill(p, size - step, size, 1);
    }
    measure_end();
    expect(p, 0, max, 1, "grown buffer");
    free(p);
    pass();
}

enum { BUFFERS_PER_THREAD = 40 };

static void *buffers_worker(void *arg) {
    uint64_t rng = 0x51ed270b27a3c1d5ull ^ (uintptr_t)arg;
    const size_t step = 8 << 10;
    for (int b = 0; b < BUFFERS_PER_THREAD; b++) {
        size_t target = (1u << 20) + next_random(&rng) % (5u << 20);
        unsigned seed = (unsigned)((uintptr_t)arg * 1000 + b);
        unsigned char *p = NULL;
        for (size_t size = step; size < target + step; size += step) {
            unsigned char *q = realloc(p, size);
            CHECK(q != NULL, "realloc to %zu failed", size);
            p = q;
            if (size > step) expect(p, size - 2 * step, size - step, seed, "previous step after realloc");
            fill(p, size - step, size, seed);
        }
        size_t grown = (target + step - 1) / step * step;
        expect(p, 0, grown, seed, "grown buffer");
        free(p);
    }
    return NULL;
}

static void run_buffers(void) {
    begin("large.buffers");
    pthread_t threads[2];
    measure_begin();
    for (uintptr_t i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, buffers_worker, (void *)(i + 1)) == 0, "pthread_create");
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    measure_end();
    pass();
}

static void run_realloc_content(void) {
    begin("large.realloc_content");
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    size_t size = 40000;
    unsigned char *p = malloc(size);
    CHECK(p != NULL, "malloc(%zu)", size);
    fill(p, 0, size, 3);
    /* A neighbour allocated and freed now and then, so some growth finds free space after the block. */
    void *other = NULL;
    measure_begin();
    for (int i = 0; i < 300; i++) {
        size_t next = 33 * 1024 + next_random(&rng) % (4u << 20);
        if (i % 5 == 0) {
            free(other);
            other = malloc(33 * 1024 + next_random(&rng) % (1u << 20));
            CHECK(other != NULL, "neighbour malloc");
        }
        unsigned char *q = realloc(p, next);
        CHECK(q != NULL, "realloc(%zu -> %zu) failed", size, next);
        size_t keep = size < next ? size : next;
        expect(q, 0, keep, 3, "prefix after realloc");
        CHECK(malloc_usable_size(q) >= next, "usable size %zu < %zu", malloc_usable_size(q), next);
        fill(q, keep, next, 3);
        p = q;
        size = next;
    }
    measure_end();
    free(other);
    free(p);
    pass();
}

static void run_aligned(void) {
    begin("large.aligned");
    static const size_t aligns[] = {64 << 10, 128 << 10, 1 << 20, 4 << 20, 8 << 20};
    static const size_t sizes[] = {40000, 65536, 100000, 1 << 20, 3 << 20};
    void *keep[64] = {0};
    int nkeep = 0;
    measure_begin();
    for (int round = 0; round < 4; round++) {
        for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                void *p = NULL;
                int rc = 0;
                if ((a + s + round) % 2) {
                    rc = posix_memalign(&p, aligns[a], sizes[s]);
                } else {
                    p = aligned_alloc(aligns[a], sizes[s]);
                }
                CHECK(rc == 0 && p != NULL, "aligned allocation of %zu at %zu failed (%d)", sizes[s], aligns[a], rc);
                CHECK((uintptr_t)p % aligns[a] == 0, "%p not aligned to %zu", p, aligns[a]);
                CHECK(malloc_usable_size(p) >= sizes[s], "usable %zu < %zu", malloc_usable_size(p), sizes[s]);
                fill(p, 0, sizes[s], (unsigned)(a + s));
                expect(p, 0, sizes[s], (unsigned)(a + s), "aligned block");
                if ((a * 7 + s + round) % 3 == 0 && nkeep < 64) {
                    keep[nkeep++] = p;
                } else {
                    free(p);
                }
            }
        }
    }
    measure_end();
    for (int i = 0; i < nkeep; i++) free(keep[i]);
    pass();
}

static void run_huge(void) {
    begin("large.huge_fails_alone");
    enum { N = 64 };
    unsigned char *blocks[N];
    const size_t mib = 1 << 20;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(mib);
        CHECK(blocks[i] != NULL, "malloc(1 MiB)");
        fill(blocks[i], 0, mib, i);
    }
    for (int i = 0; i < N; i += 2) free(blocks[i]);
    measure_begin();
    errno = 0;
    void *p = malloc((size_t)1 << 46);
    CHECK(p == NULL && errno == ENOMEM, "malloc(1<<46) = %p, errno %d", p, errno);
    void *a = NULL;
    int rc = posix_memalign(&a, 1 << 20, (size_t)1 << 46);
    CHECK(rc == ENOMEM, "posix_memalign(1 MiB, 1<<46) = %d", rc);
    errno = 0;
    void *c = calloc((size_t)1 << 23, (size_t)1 << 23);
    CHECK(c == NULL && errno == ENOMEM, "calloc(1<<23, 1<<23) = %p, errno %d", c, errno);
    errno = 0;
    void *r = realloc(blocks[1], (size_t)1 << 46);
    CHECK(r == NULL && errno == ENOMEM, "realloc(p, 1<<46) = %p, errno %d", r, errno);
    for (int i = 1; i < N; i += 2) expect(blocks[i], 0, mib, i, "live block after the huge requests");
    for (int i = 0; i < N; i += 2) {
        blocks[i] = malloc(mib);
        CHECK(blocks[i] != NULL, "malloc(1 MiB) after the huge requests");
        fill(blocks[i], 0, mib, i);
    }
    measure_end();
    for (int i = 0; i < N; i++) {
        expect(blocks[i], 0, mib, i, "block after the huge requests");
        free(blocks[i]);
    }
    pass();
}

static size_t map_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL, "open /proc/self/maps");
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

/* Filler mappings: one region whose pages alternate PROT_READ / PROT_NONE, so each page is its own
 * mapping entry. Adds `entries` entries (about); returns how many it managed before the kernel refused. */
static size_t add_fillers(size_t entries) {
    size_t pages = entries | 1;
    char *region = mmap(NULL, pages * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return 0;
    size_t added = 1;
    for (size_t i = 1; i < pages; i += 2) {
        if (mprotect(region + i * 4096, 4096, PROT_NONE) != 0) break;
        added += 2;
    }
    return added;
}

static void run_maplimit(void) {
    begin("large.map_limit");
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    CHECK(f != NULL, "open max_map_count");
    size_t limit = 0;
    CHECK(fscanf(f, "%zu", &limit) == 1, "read max_map_count");
    fclose(f);
    enum { N = 80000 };
    static unsigned char *blocks[N];
    const size_t size = 40000, slack = 3000;
    size_t before = map_count();
    if (limit > before + slack) add_fillers(limit - before - slack);
    printf("max_map_count %zu, mappings %zu before, %zu with fillers\n", limit, before, map_count());
    measure_begin();
    size_t failed = 0;
    for (int i = 0; i < N; i++) {
        errno = 0;
        blocks[i] = malloc(size);
        if (!blocks[i]) {
            CHECK(errno == ENOMEM, "malloc(40000) failed with errno %d, want ENOMEM", errno);
            failed++;
            continue;
        }
        blocks[i][0] = (unsigned char)i;
        blocks[i][size - 1] = (unsigned char)(i >> 8);
    }
    /* Now to the limit itself: from here on any new mapping entry is refused. */
    while (add_fillers(64) > 1) {
    }
    printf("mappings at the limit: %zu; malloc(40000) failures with slack %zu: %zu\n", map_count(), slack, failed);
    for (int i = 0; i < N; i += 2) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    malloc_trim(0);
    size_t null_large = 0, null_small = 0;
    void *more[256];
    for (int i = 0; i < 256; i++) {
        size_t sz = i % 2 ? (size_t)(1 + i % 7) << 20 : size;
        errno = 0;
        more[i] = malloc(sz);
        if (!more[i]) {
            CHECK(errno == ENOMEM, "malloc(%zu) at the limit failed with errno %d", sz, errno);
            null_large++;
        } else {
            memset(more[i], 0x5a, sz);
        }
        errno = 0;
        void *s = malloc(100 + i);
        if (!s) {
            CHECK(errno == ENOMEM, "malloc(%d) at the limit failed with errno %d", 100 + i, errno);
            null_small++;
        }
        free(s);
    }
    for (int i = 0; i < 256; i++) free(more[i]);
    malloc_trim(0);
    for (int i = 1; i < N; i += 2)
        if (blocks[i])
            CHECK(blocks[i][0] == (unsigned char)i && blocks[i][size - 1] == (unsigned char)(i >> 8),
                  "live block %d lost its bytes", i);
    for (int i = 1; i < N; i += 2) free(blocks[i]);
    measure_end();
    printf("at the limit: %zu large and %zu small requests got ENOMEM\n", null_large, null_small);
    pass();
}

struct decay_work {
    size_t large_bytes, small_bytes;
};

static void *decay_worker(void *arg) {
    struct decay_work *w = arg;
    enum { MAX_BLOCKS = 1 << 16 };
    /* The pointer table is the checker's own memory: mapped and unmapped here, not counted. */
    void **blocks = mmap(NULL, MAX_BLOCKS * sizeof *blocks, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks != MAP_FAILED, "mmap of the pointer table");
    size_t n = 0, total = 0;
    uint64_t rng = 12345;
    while (total < w->large_bytes && n < MAX_BLOCKS) {
        size_t sz = (64 << 10) + next_random(&rng) % (4u << 20);
        blocks[n] = malloc(sz);
        CHECK(blocks[n] != NULL, "malloc(%zu)", sz);
        memset(blocks[n++], 1, sz);
        total += sz;
    }
    for (size_t t = 0; t < w->small_bytes && n < MAX_BLOCKS; n++) {
        size_t sz = 16 + next_random(&rng) % 1024;
        blocks[n] = malloc(sz);
        CHECK(blocks[n] != NULL, "malloc(%zu)", sz);
        memset(blocks[n], 2, sz);
        t += sz;
    }
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    munmap(blocks, MAX_BLOCKS * sizeof *blocks);
    return NULL;
}

static void *nothing(void *arg) { return arg; }

/* What a decay check's start must already hold: a first thread's stack stays in glibc's cache, and
 * the allocator's first small block maps its first run. */
static void settle_before_start(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, nothing, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    free(malloc(100));
}

static void run_decay(void) {
    begin("large.decay_returns_memory");
    settle_before_start();
    pthread_t t;
    free(malloc(100000));
    size_t start = status_kib("RssAnon");
    measure_begin();
    struct decay_work w = {(size_t)256 << 20, (size_t)16 << 20};
    CHECK(pthread_create(&t, NULL, decay_worker, &w) == 0, "pthread_create");
    pthread_join(t, NULL);
    size_t freed = status_kib("RssAnon");
    struct timespec tick = {0, 100 * 1000000L};
    for (int ms = 0; ms < DECAY_WAIT_MS; ms += 100) {
        nanosleep(&tick, NULL);
        free(malloc(100000));
    }
    size_t after = status_kib("RssAnon"), peak = status_kib("VmHWM");
    measure_end();
    printf("RssAnon KiB: start %zu, after freeing %zu, after %d ms of triggers %zu (VmHWM %zu)\n", start, freed,
           DECAY_WAIT_MS, after, peak);
    CHECK(after * 10 <= start * 11 + peak * 10 / 256,
          "RSS %zu KiB after the decay period is not within 10%% of the start %zu KiB (+ %zu KiB page map)", after,
          start, peak / 256);
    pass();
}

static pthread_barrier_t burst_done, check_done;
static void **burst_blocks;
static size_t burst_count;

static void *burst_allocate(void *arg) {
    (void)arg;
    for (size_t i = 0; i < burst_count; i++) {
        burst_blocks[i] = malloc(720);
        CHECK(burst_blocks[i] != NULL, "malloc(720)");
        memset(burst_blocks[i], 3, 720);
    }
    return NULL;
}

/* Frees another thread's objects, then stays alive until main has measured: its exit would hand
 * its cache back and drive a decay pass itself. */
static void *burst_free(void *arg) {
    (void)arg;
    for (size_t i = 0; i < burst_count; i++) free(burst_blocks[i]);
    pthread_barrier_wait(&burst_done);
    pthread_barrier_wait(&check_done);
    return NULL;
}

/* Small objects of another size than the burst's, all freed: enough to overflow a thread cache
 * (the spill path is where small-object traffic drives decay). Run once before the start is read,
 * so the start holds what this churn keeps. */
static void churn_small(void) {
    enum { CHURN = 4096 };
    static void *churn[CHURN];
    for (int i = 0; i < CHURN; i++) CHECK((churn[i] = malloc(100)) != NULL, "malloc(100)");
    for (int i = 0; i < CHURN; i++) free(churn[i]);
}

static void run_decay_remote(void) {
    begin("large.decay_returns_remote_bursts");
    settle_before_start();
    pthread_t t;
    burst_count = 400 * 32;
    /* The pointer table is the checker's own memory: mapped before the start is read. */
    burst_blocks = mmap(NULL, burst_count * sizeof *burst_blocks, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(burst_blocks != MAP_FAILED, "mmap of the pointer table");
    memset(burst_blocks, 0, burst_count * sizeof *burst_blocks);
    churn_small();
    size_t start = status_kib("RssAnon");
    measure_begin();
    CHECK(pthread_create(&t, NULL, burst_allocate, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(pthread_barrier_init(&burst_done, NULL, 2) == 0 && pthread_barrier_init(&check_done, NULL, 2) == 0,
          "pthread_barrier_init");
    pthread_t freer;
    CHECK(pthread_create(&freer, NULL, burst_free, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&burst_done);
    size_t freed = status_kib("RssAnon");
    struct timespec tick = {0, 100 * 1000000L};
    for (int ms = 0; ms < DECAY_WAIT_MS; ms += 100) {
        nanosleep(&tick, NULL);
        churn_small();
    }
    size_t after = status_kib("RssAnon"), peak = status_kib("VmHWM");
    measure_end();
    pthread_barrier_wait(&check_done);
    pthread_join(freer, NULL);
    munmap(burst_blocks, burst_count * sizeof *burst_blocks);
    printf("RssAnon KiB: start %zu, after the remote burst %zu, after %d ms of small churn %zu (VmHWM %zu)\n",
           start, freed, DECAY_WAIT_MS, after, peak);
    /* The freer's own cache still pins a few runs (thread caches do not decay): judged on what the
     * burst added, not on the start alone. */
    CHECK(after <= start || (after - start) * 10 <= (freed - start) + peak * 10 / 256,
          "RSS %zu KiB after the decay period kept more than 10%% of the %zu KiB the burst added to the start "
          "%zu KiB (+ %zu KiB page map)",
          after, freed - start, start, peak / 256);
    pass();
}

int main(int argc, char **argv) {
    static const struct check_mode modes[] = {
        {"loop64k", run_loop64k},
        {"realloc-growth", run_realloc_growth},
        {"buffers", run_buffers},
        {"realloc-content", run_realloc_content},
        {"aligned", run_aligned},
        {"huge", run_huge},
        {"maplimit", run_maplimit},
        {"decay", run_decay},
        {"decay-remote", run_decay_remote},
    };
    return run_checker(argc, argv, modes, sizeof modes / sizeof *modes);
}
