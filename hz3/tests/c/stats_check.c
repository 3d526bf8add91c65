/* hz3's statistics through the standard calls (mallinfo2, mallinfo, malloc_info, malloc_stats), checked
 * against allocation patterns whose sizes are known. Run under LD_PRELOAD by hz3/tests/preload_stats.rs
 * as `stats_check <mode> <lane>`:
 *   figures  N live blocks of S bytes -> uordblks grows by N * class size (the caller's own cache is
 *            exact); large blocks -> hblks/hblkhd; free + malloc_trim -> arena, keepcost and RSS fall
 *   threads  T threads hold N blocks each while the main thread reads mallinfo2: within the documented
 *            slack (each other thread's cache is an estimate, off by at most 64 KiB per class)
 *   xml      malloc_info(0, f) copied to stdout between "xml-begin"/"xml-end" lines (the test parses
 *            it), and malloc_info(1, f) == EINVAL
 *   idle     allocates a little and exits (the HZ3_STATS tests read stderr) */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <errno.h>
#include <malloc.h>
#include <pthread.h>

#include "check.h"

static volatile size_t launder_sink;
static size_t launder(size_t n) { launder_sink = n; return launder_sink; }

/* Resident set in bytes, from /proc/self/statm (read with a stack buffer: no stdio allocation). */
static size_t rss_bytes(void) {
    char buf[128] = {0};
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL, "cannot open /proc/self/statm");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    CHECK(n > 0, "empty /proc/self/statm");
    unsigned long size = 0, resident = 0;
    CHECK(sscanf(buf, "%lu %lu", &size, &resident) == 2, "unreadable statm: %s", buf);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

enum { SMALL_N = 1000, SMALL_S = 100, LARGE_N = 10, LARGE_S = 100000, MANY = 20000, MANY_S = 1000 };

static void check_figures(void) {
    begin("mallinfo2.small_blocks");
    static void *blocks[SMALL_N];
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < SMALL_N; i++) {
        blocks[i] = malloc(launder(SMALL_S));
        CHECK(blocks[i] != NULL, "malloc(%d) failed", SMALL_S);
    }
    struct mallinfo2 after = mallinfo2();
    size_t usable = malloc_usable_size(blocks[0]);
    size_t grown = after.uordblks - before.uordblks;
    /* One size class's rounding: each block counts its class size, never less than asked for. */
    CHECK(usable >= SMALL_S && usable < SMALL_S + 16, "malloc_usable_size(%d) = %zu", SMALL_S, usable);
    CHECK(grown == (size_t)SMALL_N * usable, "uordblks grew by %zu for %d blocks of %zu usable bytes",
          grown, SMALL_N, usable);
    CHECK(after.arena >= after.uordblks, "arena %zu < uordblks %zu", after.arena, after.uordblks);
    CHECK(after.fordblks == after.arena - after.uordblks, "fordblks %zu != arena - uordblks", after.fordblks);
    CHECK(after.usmblks == 0, "usmblks = %zu", after.usmblks);
    struct mallinfo mi = mallinfo();
    CHECK((size_t)mi.uordblks == after.uordblks, "mallinfo().uordblks %d != mallinfo2's %zu", mi.uordblks,
          after.uordblks);
    for (int i = 0; i < SMALL_N; i++) free(blocks[i]);
    struct mallinfo2 freed = mallinfo2();
    CHECK(freed.uordblks == before.uordblks, "uordblks %zu after freeing everything, %zu before",
          freed.uordblks, before.uordblks);
    CHECK(freed.fsmblks > 0 && freed.smblks > 0, "fsmblks %zu, smblks %zu: the freed blocks are cached",
          freed.fsmblks, freed.smblks);
    printf("small: %d x %d B -> uordblks +%zu (class %zu B); arena %zu fsmblks %zu\n", SMALL_N, SMALL_S,
           grown, usable, after.arena, freed.fsmblks);
    pass();

    begin("mallinfo2.large_blocks");
    static void *large[LARGE_N];
    before = mallinfo2();
    for (int i = 0; i < LARGE_N; i++) {
        large[i] = malloc(launder(LARGE_S));
        CHECK(large[i] != NULL, "malloc(%d) failed", LARGE_S);
    }
    after = mallinfo2();
    /* A large block holds what malloc_usable_size says (hz3: whole 64 KiB runs). */
    size_t held = 0;
    for (int i = 0; i < LARGE_N; i++) held += malloc_usable_size(large[i]);
    CHECK(held >= (size_t)LARGE_N * LARGE_S, "usable sizes %zu below %d x %d", held, LARGE_N, LARGE_S);
    CHECK(after.hblks - before.hblks == LARGE_N, "hblks grew by %zu for %d large blocks",
          after.hblks - before.hblks, LARGE_N);
    CHECK(after.hblkhd - before.hblkhd == held, "hblkhd grew by %zu, want %zu", after.hblkhd - before.hblkhd,
          held);
    CHECK(after.uordblks == before.uordblks, "large blocks counted in uordblks too");
    for (int i = 0; i < LARGE_N; i++) free(large[i]);
    after = mallinfo2();
    CHECK(after.hblks == before.hblks && after.hblkhd == before.hblkhd, "large blocks still counted after free");
    pass();

    begin("malloc_trim.resident_falls");
    static void *many[MANY];
    for (int i = 0; i < MANY; i++) {
        many[i] = malloc(launder(MANY_S));
        CHECK(many[i] != NULL, "malloc(%d) failed", MANY_S);
        memset(many[i], 0x5a, MANY_S);
    }
    struct mallinfo2 live = mallinfo2();
    size_t rss_live = rss_bytes();
    CHECK(live.uordblks >= (size_t)MANY * MANY_S, "uordblks %zu with %d x %d B live", live.uordblks, MANY,
          MANY_S);
    for (int i = 0; i < MANY; i++) free(many[i]);
    malloc_trim(0);
    struct mallinfo2 trimmed = mallinfo2();
    size_t rss_trimmed = rss_bytes();
    size_t live_bytes = (size_t)MANY * MANY_S;
    CHECK(trimmed.keepcost == 0, "keepcost %zu after malloc_trim", trimmed.keepcost);
    CHECK(trimmed.arena + live_bytes / 2 < live.arena, "arena %zu -> %zu: did not fall by half of %zu",
          live.arena, trimmed.arena, live_bytes);
    CHECK(rss_trimmed + live_bytes / 2 < rss_live, "RSS %zu -> %zu: did not fall by half of %zu", rss_live,
          rss_trimmed, live_bytes);
    printf("trim: arena %zu -> %zu, RSS %zu -> %zu\n", live.arena, trimmed.arena, rss_live, rss_trimmed);
    pass();
}

enum { THREADS = 4, PER_THREAD = 3000, THREAD_S = 200 };
static pthread_barrier_t allocated, measured;

static void *hold_blocks(void *arg) {
    (void)arg;
    static __thread void *mine[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        mine[i] = malloc(launder(THREAD_S));
        if (mine[i] == NULL) return (void *)1;
    }
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&measured);
    for (int i = 0; i < PER_THREAD; i++) free(mine[i]);
    return NULL;
}

static void check_threads(void) {
    begin("mallinfo2.other_threads_within_slack");
    pthread_t t[THREADS];
    pthread_barrier_init(&allocated, NULL, THREADS + 1);
    pthread_barrier_init(&measured, NULL, THREADS + 1);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, hold_blocks, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&allocated);
    struct mallinfo2 during = mallinfo2();
    pthread_barrier_wait(&measured);
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        CHECK(rc == NULL, "a thread's malloc failed");
    }
    void *probe = malloc(launder(THREAD_S));
    size_t usable = malloc_usable_size(probe);
    free(probe);
    size_t exact = (size_t)THREADS * PER_THREAD * usable;
    /* The documented slack: per other thread, its cache of this class as of its last refill. */
    size_t slack = (size_t)THREADS * 64 * 1024;
    size_t grown = during.uordblks - before.uordblks;
    /* Above: pthread_create's own small allocations (a few hundred bytes per thread). */
    CHECK(grown <= exact + 4096 && grown + slack >= exact, "uordblks grew by %zu, want %zu within -%zu", grown,
          exact, slack);
    printf("threads: %d x %d x %d B -> uordblks +%zu (exact %zu, slack %zu)\n", THREADS, PER_THREAD, THREAD_S,
           grown, exact, slack);
    pass();
}

static void check_xml(void) {
    begin("malloc_info.einval");
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile() failed");
    CHECK(malloc_info(1, f) == EINVAL, "malloc_info(1, f) did not return EINVAL");
    pass();

    begin("malloc_info.xml");
    static void *blocks[SMALL_N];
    for (int i = 0; i < SMALL_N; i++) blocks[i] = malloc(launder(SMALL_S));
    void *big = malloc(launder(LARGE_S));
    for (int i = 0; i < SMALL_N; i += 2) free(blocks[i]); /* some free objects to list in <sizes> */
    CHECK(malloc_info(0, f) == 0, "malloc_info(0, f) failed");
    printf("big-usable %zu\n", malloc_usable_size(big));
    fflush(f);
    rewind(f);
    printf("xml-begin\n");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    printf("xml-end\n");
    fclose(f);
    free(big);
    for (int i = 1; i < SMALL_N; i += 2) free(blocks[i]);
    pass();
}

static void idle(void) {
    begin("idle");
    void *p = malloc(launder(100));
    free(p);
    pass();
}

int main(int argc, char **argv) {
    static const struct check_mode modes[] = {
        {"figures", check_figures},
        {"threads", check_threads},
        {"xml", check_xml},
        {"idle", idle},
    };
    int rc = run_checker(argc, argv, modes, sizeof modes / sizeof *modes);
    if (rc == 0) printf("all checks passed\n");
    return rc;
}
