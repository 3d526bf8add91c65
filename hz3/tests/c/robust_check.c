/* Robustness checker for an LD_PRELOAD malloc (issue 12): glibc's direct entry points, errno across free
 * and malloc under lock contention, the probes exit dump in a forked child, the immediate double free.
 * Usage: robust_check <mode> [lane]   (no lane: the glibc baseline, which validates the checker)
 *   libc-entries   __libc_malloc/__libc_free/... and cfree, each crossed with malloc/free both ways
 *   errno          16 threads free each other's small objects; errno preset, checked after every call
 *   fork-exit      a forked child that outlives the parent calls exit(); prints "pids <parent> <child>"
 *   double-free    free(p); free(p); (expected to abort under a build with the check)
 * Prints "ok <check>" per passed check; on the first failure "FAIL <check>: <why>" and exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static int under_hz3;

/* A direct entry point by name: from libhz3 under hz3; from glibc (or absent: `cfree` is a compat-only
 * symbol there) on the baseline. */
static void *entry(const char *name, int required) {
    void *sym = dlsym(RTLD_DEFAULT, name);
    if (!under_hz3) {
        CHECK(sym != NULL || !required, "glibc lacks %s", name);
        return sym;
    }
    CHECK(sym != NULL, "dlsym(%s) = NULL: hz3 does not export it", name);
    Dl_info info;
    CHECK(dladdr(sym, &info) != 0 && info.dli_fname != NULL, "dladdr(%s) failed", name);
    CHECK(strstr(info.dli_fname, "libhz3_") != NULL, "%s resolves to %s, not hz3", name, info.dli_fname);
    return sym;
}

static void touch(void *p, size_t n, const char *what) {
    CHECK(p != NULL, "%s returned NULL", what);
    memset(p, 0xa5, n);
    /* The block belongs to the allocator that answers malloc_usable_size: hz3 aborts on a foreign one. */
    CHECK(malloc_usable_size(p) >= n, "%s: malloc_usable_size %zu < %zu", what, malloc_usable_size(p), n);
}

/* Writes the block, proves whose it is, and hands it to `release` (the other family's free). */
static void use_and_release(void *p, size_t n, const char *what, void (*release)(void *)) {
    touch(p, n, what);
    release(p);
}

static void check_libc_entries(void) {
    void *(*libc_malloc)(size_t) = entry("__libc_malloc", 1);
    void (*libc_free)(void *) = entry("__libc_free", 1);
    void *(*libc_calloc)(size_t, size_t) = entry("__libc_calloc", 1);
    void *(*libc_realloc)(void *, size_t) = entry("__libc_realloc", 1);
    void *(*libc_memalign)(size_t, size_t) = entry("__libc_memalign", 1);
    void *(*libc_valloc)(size_t) = entry("__libc_valloc", 1);
    void *(*libc_pvalloc)(size_t) = entry("__libc_pvalloc", 1);
    void (*cfree_fn)(void *) = entry("cfree", 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    begin("libc_entries.libc_alloc_then_free");
    use_and_release(libc_malloc(32), 32, "__libc_malloc(32)", free);
    use_and_release(libc_calloc(4, 8), 32, "__libc_calloc(4, 8)", free);
    void *p = libc_realloc(NULL, 48);
    touch(p, 48, "__libc_realloc(NULL, 48)");
    use_and_release(realloc(p, 4000), 4000, "realloc of a __libc_realloc block", free);
    p = libc_memalign(256, 100);
    CHECK(((uintptr_t)p & 255) == 0, "__libc_memalign(256) = %p", p);
    use_and_release(p, 100, "__libc_memalign(256, 100)", free);
    p = libc_valloc(10);
    CHECK(((uintptr_t)p & (page - 1)) == 0, "__libc_valloc = %p not page aligned", p);
    use_and_release(p, 10, "__libc_valloc(10)", free);
    use_and_release(libc_pvalloc(page + 1), 2 * page, "__libc_pvalloc(page + 1)", free);
    pass();

    begin("libc_entries.alloc_then_libc_free");
    use_and_release(malloc(32), 32, "malloc(32)", libc_free);
    use_and_release(malloc(100000), 100000, "malloc(100000)", libc_free);
    p = malloc(24);
    touch(p, 24, "malloc(24)");
    use_and_release(libc_realloc(p, 64), 64, "__libc_realloc of a malloc block", libc_free);
    use_and_release(calloc(1, 40), 40, "calloc(1, 40)", libc_free);
    pass();

    begin("libc_entries.cfree");
    if (cfree_fn != NULL) {
        use_and_release(malloc(32), 32, "malloc(32)", cfree_fn);
        use_and_release(libc_malloc(64), 64, "__libc_malloc(64)", cfree_fn);
    }
    pass();
}

/* errno: free must leave it alone (POSIX.1-2024, glibc >= 2.33), and so must a malloc that succeeds. */
#define ERRNO_THREADS 16
#define ERRNO_OBJECTS 100000 /* per thread: made by the even one, freed by the odd one */
#define ERRNO_BATCH 64
#define SENTINEL 12345

static void *_Atomic handoff[ERRNO_THREADS / 2][ERRNO_BATCH];
static atomic_long changed_by_free, changed_by_malloc;

static void *checked_malloc(size_t size) {
    errno = SENTINEL;
    void *p = malloc(size);
    if (p == NULL) fail("malloc(%zu) failed", size);
    if (errno != SENTINEL) atomic_fetch_add(&changed_by_malloc, 1);
    *(volatile char *)p = 1;
    return p;
}

static void checked_free(void *p) {
    errno = SENTINEL;
    free(p);
    if (errno != SENTINEL) atomic_fetch_add(&changed_by_free, 1);
}

/* Threads in pairs over one row of slots: the even one only allocates (its cache refills from the
 * shared pools), the odd one frees what it finds (its cache spills to them). Every free crosses
 * threads, and the refills and spills of 16 threads meet on the same few class locks, so some
 * acquisitions sleep in futex wait, where the kernel answers EAGAIN or EINTR. */
static void *errno_worker(void *arg) {
    long me = (long)arg;
    void *_Atomic *row = handoff[me / 2];
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(me + 1);
    long moved = 0, idle = 0;
    for (int i = 0; moved < ERRNO_OBJECTS; i = (i + 1) % ERRNO_BATCH) {
        if (me % 2 == 0) {
            /* One-way traffic: only the partner frees, so no object returns to this cache. */
            if (atomic_load(&row[i]) == NULL) {
                atomic_store(&row[i], checked_malloc(1024 * (1 + next_random(&rng) % 4)));
                moved++;
                idle = 0;
            } else if (++idle % ERRNO_BATCH == 0) {
                sched_yield();
            }
        } else {
            void *theirs = atomic_exchange(&row[i], NULL);
            if (theirs != NULL) {
                checked_free(theirs);
                moved++;
                idle = 0;
            } else if (++idle % ERRNO_BATCH == 0) {
                sched_yield();
            }
        }
    }
    return NULL;
}

static void check_errno(void) {
    begin("errno.free_and_malloc_keep_it");
    pthread_t threads[ERRNO_THREADS];
    for (long t = 0; t < ERRNO_THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, errno_worker, (void *)t) == 0, "pthread_create");
    }
    for (int t = 0; t < ERRNO_THREADS; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < ERRNO_THREADS / 2; t++)
        for (int i = 0; i < ERRNO_BATCH; i++) free(atomic_exchange(&handoff[t][i], NULL));
    CHECK(changed_by_free == 0 && changed_by_malloc == 0, "errno changed by %ld frees and %ld successful mallocs",
          (long)changed_by_free, (long)changed_by_malloc);
    pass();
}

/* fork-exit: the child outlives the parent: it waits for the parent to be gone (EOF on a pipe whose
 * write end only the parent holds, closed when the parent's process ends, after its exit handlers), then
 * allocates and leaves through exit(), running the exit handlers it inherited. The child keeps stdout
 * open, so whoever reads this process's output until EOF has waited for the child too. */
static void check_fork_exit(void) {
    begin("fork_exit.child_exits_after_parent");
    void *before = malloc(100);
    CHECK(before != NULL, "malloc before fork");
    int gone[2];
    CHECK(pipe(gone) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork failed");
    if (child == 0) {
        close(gone[1]);
        char byte;
        while (read(gone[0], &byte, 1) > 0) {
        }
        for (int i = 0; i < 100; i++) free(malloc(64));
        exit(0);
    }
    close(gone[0]);
    for (int i = 0; i < 1000; i++) free(malloc(64));
    free(before);
    printf("pids %d %d\n", (int)getpid(), (int)child);
    pass();
}

static void check_double_free(void) {
    begin("double_free.immediate");
    void *p = malloc(64);
    CHECK(p != NULL, "malloc(64)");
    printf("block %p\n", p);
    free(p);
    free(p);
    /* Only reached where the allocator does not catch it: show what the second free did. */
    void *a = malloc(64), *b = malloc(64);
    printf("after double free: %p %p%s\n", a, b, a == b ? " (same block twice)" : "");
    pass();
}

static const struct check_mode MODES[] = {
    {"libc-entries", check_libc_entries},
    {"errno", check_errno},
    {"fork-exit", check_fork_exit},
    {"double-free", check_double_free},
};

int main(int argc, char **argv) {
    under_hz3 = argc == 3;
    return run_checker(argc, argv, MODES, sizeof MODES / sizeof *MODES);
}
