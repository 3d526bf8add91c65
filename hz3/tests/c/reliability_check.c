/* Reliability of an LD_PRELOAD malloc under pressure.
 * Usage: reliability_check <oom|oom-threads|churn|trim|trim-remote> [lane]
 *   oom:         under RLIMIT_AS (set here, relative to the current address space), allocations fail with
 *                NULL/ENOMEM and the process keeps working; memory freed after the failure is reusable.
 *   oom-threads: four threads fill memory under RLIMIT_AS until ENOMEM, free each other's objects, refill.
 *   churn:       20 000 short-lived threads allocate, hand objects to others and exit; fork()s in between;
 *                peak RSS stays under 256 MiB.
 *   trim:        after a peak of 1 GiB of small objects is freed, RSS drops under 10% of the peak after
 *                malloc_trim(0).
 *   trim-remote: the same, but the objects are freed by another thread than the one that allocated them.
 * With a lane argument, first checks hz3_lane() names it. Prints "ok <check>" lines and measurements;
 * on failure "FAIL <check>: <why>" and exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"

/* A field of /proc/self/status in KiB (VmRSS, VmHWM, VmSize). */
static size_t status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL, "cannot open /proc/self/status");
    char line[256];
    size_t value = 0, len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') value = strtoull(line + len + 1, NULL, 10);
    fclose(f);
    CHECK(value > 0, "%s not found in /proc/self/status", field);
    return value;
}

/* Objects are chained through their first word, so holding millions of them needs no other memory. */
struct node { struct node *next; size_t size; };

static struct node *push(struct node *head, void *p, size_t size) {
    struct node *n = p;
    n->next = head;
    n->size = size;
    return n;
}

static size_t free_list(struct node *head) {
    size_t count = 0;
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
        count++;
    }
    return count;
}

/* ---- oom ---- */

/* Allocates blocks of `size` until malloc fails; the failure must come as NULL with ENOMEM. */
static struct node *fill_until_enomem(size_t size, size_t *count) {
    struct node *head = NULL;
    *count = 0;
    for (;;) {
        errno = 0;
        void *p = malloc(size);
        if (!p) break;
        head = push(head, p, size);
        (*count)++;
    }
    CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d (%s), want ENOMEM", size, errno, strerror(errno));
    return head;
}

static void run_oom(void) {
    begin("oom.limit");
    free(malloc(100)); /* the allocator is initialised before the limit, as in any real process */
    size_t vm_kib = status_kib("VmSize");
    size_t headroom = (size_t)256 << 20;
    struct rlimit lim = {vm_kib * 1024 + headroom, vm_kib * 1024 + headroom};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit: %s", strerror(errno));
    printf("RLIMIT_AS = VmSize %zu KiB + %zu MiB\n", vm_kib, headroom >> 20);
    pass();

    begin("oom.large_blocks_fail_with_enomem");
    size_t big_count;
    struct node *big = fill_until_enomem((size_t)1 << 20, &big_count);
    CHECK(big_count >= 64, "only %zu MiB blocks fit in 256 MiB of headroom", big_count);
    printf("1 MiB blocks before ENOMEM: %zu\n", big_count);
    pass();

    begin("oom.small_blocks_fail_with_enomem");
    /* Half the large blocks go back; small objects must then fill the space until they fail too. */
    struct node *kept = NULL;
    size_t released = 0;
    while (big) {
        struct node *next = big->next;
        if (released % 2 == 0) free(big);
        else kept = push(kept, big, big->size);
        released++;
        big = next;
    }
    size_t small_count;
    struct node *small = fill_until_enomem(100, &small_count);
    printf("100 B blocks before ENOMEM: %zu\n", small_count);
    CHECK(small_count >= 10000, "only %zu small blocks fit after freeing %zu MiB", small_count, released / 2);
    pass();

    begin("oom.calls_fail_cleanly");
    void *p = malloc(64);
    int rc;
    /* Memory may be exhausted here: a NULL is fine, but only with ENOMEM, and nothing may crash. */
    if (p) {
        memset(p, 0x5A, 64);
        errno = 0;
        void *r = realloc(p, (size_t)1 << 30);
        CHECK(r == NULL && errno == ENOMEM, "realloc(p, 1 GiB) under the limit = %p, errno %d", r, errno);
        for (int i = 0; i < 64; i++) CHECK(((unsigned char *)p)[i] == 0x5A, "failed realloc damaged the block");
        free(p);
    }
    errno = 0;
    void *c = calloc((size_t)1 << 20, 1024);
    CHECK(c == NULL && errno == ENOMEM, "calloc(1 GiB) under the limit = %p, errno %d", c, errno);
    void *a = NULL;
    rc = posix_memalign(&a, 4096, (size_t)1 << 30);
    CHECK(rc == ENOMEM, "posix_memalign(4096, 1 GiB) under the limit = %d", rc);
    errno = 0;
    a = aligned_alloc(1 << 20, (size_t)1 << 30);
    CHECK(a == NULL && errno == ENOMEM, "aligned_alloc(1 MiB, 1 GiB) under the limit = %p, errno %d", a, errno);
    pass();

    begin("oom.recovers_after_free");
    free_list(small);
    free_list(kept);
    for (int i = 0; i < 10000; i++) {
        size_t size = 16 + (size_t)(i * 37) % 2033;
        void *q = malloc(size);
        CHECK(q != NULL, "malloc(%zu) failed after everything was freed", size);
        memset(q, i, size);
        free(q);
    }
    size_t again;
    struct node *refill = fill_until_enomem((size_t)1 << 20, &again);
    printf("1 MiB blocks after freeing everything: %zu (first time %zu)\n", again, big_count);
    CHECK(again * 2 >= big_count, "only %zu of the first %zu MiB blocks fit again: freed memory not reusable",
          again, big_count);
    free_list(refill);
    pass();
}

/* ---- oom-threads: exhaustion while other threads allocate and free remotely ---- */

enum { OOM_THREADS = 4 };
static pthread_barrier_t oom_barrier;
static struct node *oom_lists[OOM_THREADS];
static size_t oom_counts[OOM_THREADS][2];

/* Mixed sizes until ENOMEM; a NULL must always come with ENOMEM, whichever thread hits it. */
static struct node *fill_mixed_until_enomem(uint64_t *rng, size_t *count) {
    struct node *head = NULL;
    *count = 0;
    for (;;) {
        uint64_t r = next_random(rng);
        size_t size = r % 16 == 0 ? 4096 + (r >> 8) % (256u << 10) : 16 + (r >> 8) % 2033;
        errno = 0;
        void *p = malloc(size);
        if (!p) {
            CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d, want ENOMEM", size, errno);
            return head;
        }
        head = push(head, p, size);
        (*count)++;
    }
}

static void *oom_worker(void *arg) {
    uintptr_t me = (uintptr_t)arg;
    uint64_t rng = 0x51ED270B27E3A6A5ull * (me + 1);
    pthread_barrier_wait(&oom_barrier); /* the limit is set */
    oom_lists[me] = fill_mixed_until_enomem(&rng, &oom_counts[me][0]);
    pthread_barrier_wait(&oom_barrier); /* everyone is out of memory */
    free_list(oom_lists[(me + 1) % OOM_THREADS]); /* remote frees */
    pthread_barrier_wait(&oom_barrier);
    oom_lists[me] = fill_mixed_until_enomem(&rng, &oom_counts[me][1]);
    pthread_barrier_wait(&oom_barrier);
    free_list(oom_lists[(me + 2) % OOM_THREADS]);
    return NULL;
}

static void run_oom_threads(void) {
    begin("oom_threads.enomem_and_remote_recovery");
    /* Threads (and their stacks) exist before the limit; they start allocating once it is set. */
    CHECK(pthread_barrier_init(&oom_barrier, NULL, OOM_THREADS + 1) == 0, "pthread_barrier_init");
    pthread_t threads[OOM_THREADS];
    for (uintptr_t i = 0; i < OOM_THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, oom_worker, (void *)i) == 0, "pthread_create");
    free(malloc(100));
    size_t vm_kib = status_kib("VmSize");
    size_t headroom = (size_t)256 << 20;
    struct rlimit lim = {vm_kib * 1024 + headroom, vm_kib * 1024 + headroom};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit: %s", strerror(errno));
    for (int phase = 0; phase < 4; phase++) pthread_barrier_wait(&oom_barrier);
    for (int i = 0; i < OOM_THREADS; i++) pthread_join(threads[i], NULL);
    size_t first = 0, second = 0;
    for (int i = 0; i < OOM_THREADS; i++) {
        first += oom_counts[i][0];
        second += oom_counts[i][1];
    }
    printf("objects before ENOMEM: %zu, after remote frees: %zu\n", first, second);
    CHECK(first >= 10000, "only %zu objects fit in 256 MiB", first);
    CHECK(second * 2 >= first, "after freeing everything remotely only %zu of %zu objects fit again", second, first);
    for (int i = 0; i < 1000; i++) {
        void *p = malloc(16 + (size_t)i);
        CHECK(p != NULL, "malloc after recovery failed");
        free(p);
    }
    pass();
}

/* ---- churn ---- */

enum { CHURN_THREADS = 20000, CHURN_WAVE = 16, CHURN_OBJECTS = 48, MAILBOX = 8192 };
static void *mailbox[MAILBOX];
static size_t mailbox_len;
static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;

static void fill_pattern(unsigned char *p, size_t size) {
    memcpy(p, &size, sizeof size);
    for (size_t i = sizeof size; i < size; i++) p[i] = (unsigned char)(size + i);
}

static void check_and_free(unsigned char *p) {
    size_t size;
    memcpy(&size, p, sizeof size);
    CHECK(size >= 16 && size <= 2048, "object %p has a corrupt size %zu", (void *)p, size);
    for (size_t i = sizeof size; i < size; i++)
        CHECK(p[i] == (unsigned char)(size + i), "object %p (size %zu) corrupted at %zu", (void *)p, size, i);
    free(p);
}

static void *churn_thread(void *arg) {
    uint64_t rng = (uintptr_t)arg * 0x9E3779B97F4A7C15ull | 1;
    void *mine[CHURN_OBJECTS];
    for (int i = 0; i < CHURN_OBJECTS; i++) {
        size_t size = 16 + next_random(&rng) % 2033;
        mine[i] = malloc(size);
        CHECK(mine[i] != NULL, "malloc(%zu) = NULL", size);
        fill_pattern(mine[i], size);
    }
    /* Take up to half as many objects as we give: some of others' objects outlive their threads. */
    void *theirs[CHURN_OBJECTS / 2];
    int taken = 0, given = 0;
    pthread_mutex_lock(&mailbox_lock);
    while (taken < CHURN_OBJECTS / 2 && mailbox_len > 0) theirs[taken++] = mailbox[--mailbox_len];
    while (given < CHURN_OBJECTS && mailbox_len < MAILBOX) mailbox[mailbox_len++] = mine[given++];
    pthread_mutex_unlock(&mailbox_lock);
    for (int i = 0; i < taken; i++) check_and_free(theirs[i]);
    for (int i = given; i < CHURN_OBJECTS; i++) check_and_free(mine[i]);
    return NULL;
}

static void run_churn(void) {
    begin("churn.threads");
    for (int started = 0; started < CHURN_THREADS; started += CHURN_WAVE) {
        pthread_t wave[CHURN_WAVE];
        for (int i = 0; i < CHURN_WAVE; i++) {
            int rc = pthread_create(&wave[i], NULL, churn_thread, (void *)(uintptr_t)(started + i + 1));
            CHECK(rc == 0, "pthread_create #%d: %s", started + i, strerror(rc));
        }
        /* Now and then fork while the wave is allocating: the child must be able to allocate and exit. */
        if (started % 2000 == 0) {
            pid_t pid = fork();
            CHECK(pid >= 0, "fork: %s", strerror(errno));
            if (pid == 0) {
                alarm(20);
                for (int i = 0; i < 1000; i++) {
                    void *p = malloc(16 + i);
                    if (!p) _exit(3);
                    fill_pattern(p, 16 + (size_t)i % 2000);
                    free(p);
                }
                _exit(0);
            }
            int status;
            CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child failed (status %#x%s)", status,
                  WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ", deadlock" : "");
        }
        for (int i = 0; i < CHURN_WAVE; i++) pthread_join(wave[i], NULL);
    }
    while (mailbox_len > 0) check_and_free(mailbox[--mailbox_len]);
    pass();

    begin("churn.rss_bounded");
    size_t hwm = status_kib("VmHWM"), rss = status_kib("VmRSS");
    printf("after %d threads: VmHWM %zu KiB, VmRSS %zu KiB\n", CHURN_THREADS, hwm, rss);
    CHECK(hwm < 256 * 1024, "peak RSS %zu KiB >= 256 MiB: memory of exited threads not reused", hwm);
    pass();
}

/* ---- trim ---- */

static const size_t PEAK_BYTES = (size_t)1 << 30;

/* Small objects of the workload's sizes until their requested sizes add up to 1 GiB. */
static struct node *allocate_peak(void) {
    uint64_t rng = 42;
    struct node *head = NULL;
    for (size_t total = 0; total < PEAK_BYTES;) {
        size_t size = 16 + next_random(&rng) % 2033;
        void *p = malloc(size);
        CHECK(p != NULL, "malloc(%zu) = NULL after %zu MiB", size, total >> 20);
        memset(p, 0xAB, size); /* resident for real */
        head = push(head, p, size);
        total += size;
    }
    return head;
}

static size_t peak_rss_kib;

static void *allocate_peak_thread(void *out) {
    *(struct node **)out = allocate_peak();
    peak_rss_kib = status_kib("VmRSS");
    return NULL;
}

static void *free_list_thread(void *list) {
    free_list(list);
    return NULL;
}

static void run_trim(int remote) {
    begin(remote ? "trim.remote_freed_memory_returns" : "trim.freed_memory_returns");
    size_t before = status_kib("VmRSS");
    struct node *list = NULL;
    if (remote) {
        /* One thread allocates, another frees, both exit before the trim. */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, allocate_peak_thread, &list) == 0, "pthread_create");
        pthread_join(t, NULL);
        CHECK(pthread_create(&t, NULL, free_list_thread, list) == 0, "pthread_create");
        pthread_join(t, NULL);
    } else {
        list = allocate_peak();
        peak_rss_kib = status_kib("VmRSS");
        free_list(list);
    }
    size_t freed = status_kib("VmRSS");
    int trimmed = malloc_trim(0);
    size_t after = status_kib("VmRSS");
    printf("VmRSS KiB: start %zu, peak %zu, freed %zu, after malloc_trim(0) = %d: %zu\n", before, peak_rss_kib,
           freed, trimmed, after);
    CHECK(peak_rss_kib >= 1024 * 1024, "peak RSS %zu KiB is below the 1 GiB allocated", peak_rss_kib);
    CHECK(after * 10 < peak_rss_kib, "RSS after trim %zu KiB is not under 10%% of the peak %zu KiB", after,
          peak_rss_kib);
    /* The allocator must still work after giving memory back. */
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(16 + (size_t)i % 2033);
        CHECK(p != NULL, "malloc after trim failed");
        memset(p, 1, 16);
        free(p);
    }
    pass();
}

static void run_trim_local(void) { run_trim(0); }
static void run_trim_remote(void) { run_trim(1); }

int main(int argc, char **argv) {
    static const struct check_mode modes[] = {
        {"oom", run_oom}, {"oom-threads", run_oom_threads}, {"churn", run_churn},
        {"trim", run_trim_local}, {"trim-remote", run_trim_remote},
    };
    return run_checker(argc, argv, modes, sizeof modes / sizeof *modes);
}
