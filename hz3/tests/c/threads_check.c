/* Multi-thread behaviour of an LD_PRELOAD malloc.
 * Usage: threads_check <xthread|orphans|fork|tls-dtor> [lane]
 *   xthread: every thread allocates and pushes to one shared queue, pops others' objects, checks and frees
 *            them (mostly cross-thread frees).
 *   orphans: threads allocate and exit while their objects stay live; later threads check and free them
 *            while allocating anew.
 *   fork:    fork() while other threads allocate; each child allocates, starts a thread, exits 0.
 *   tls-dtor: pthread key destructors free, allocate and re-arm at thread exit (possibly after the
 *            allocator's own per-thread teardown, whose order among keys is unspecified).
 * With a lane argument, first checks hz3_lane() names it (proof that hz3 answers).
 * Prints "ok <check>"; on failure "FAIL <check>: <why>" and exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"

/* Mostly the workload's 16..2048 B, with a few medium and large blocks. */
static size_t random_size(uint64_t *rng) {
    uint64_t r = next_random(rng);
    if (r % 64 == 0) return 2049 + (r >> 8) % 65536;
    if (r % 1024 == 1) return (1u << 20) + (r >> 8) % (1u << 20);
    return 16 + (r >> 8) % 2033;
}

/* Every object carries its size and a seed in its first 8 bytes and a pattern derived from both after:
 * a block handed out twice, or freed early and reused, shows up as a wrong header or pattern. */
struct header { uint32_t size, seed; };

static void *make_object(size_t size, uint32_t seed) {
    unsigned char *p = malloc(size);
    CHECK(p != NULL, "malloc(%zu) = NULL", size);
    CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", size, (void *)p);
    CHECK(malloc_usable_size(p) >= size, "malloc_usable_size = %zu < %zu", malloc_usable_size(p), size);
    struct header h = {(uint32_t)size, seed};
    memcpy(p, &h, sizeof h);
    for (size_t i = sizeof h; i < size; i++) p[i] = (unsigned char)(seed * 7u + i);
    return p;
}

static void check_object(const void *obj, const char *who) {
    const unsigned char *p = obj;
    struct header h;
    memcpy(&h, p, sizeof h);
    CHECK(h.size >= 16 && h.size <= (4u << 20), "%s: object %p has a corrupt header (size %u)", who, obj, h.size);
    for (size_t i = sizeof h; i < h.size; i++)
        CHECK(p[i] == (unsigned char)(h.seed * 7u + i), "%s: object %p (size %u) byte %zu corrupted", who, obj,
              h.size, i);
}

static void free_object(void *obj, const char *who) {
    check_object(obj, who);
    /* Poison the header so a second hand-out of this object while another still holds it is caught. */
    memset(obj, 0xEE, sizeof(struct header));
    free(obj);
}

static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    CHECK(rc == 0, "pthread_create: %s", strerror(rc));
    return t;
}

/* ---- xthread: one shared queue, most frees remote ---- */

enum { XTHREADS = 8, XOPS = 40000, QUEUE_CAP = 4096, QUEUE_HIGH = 1024 };
static void *queue[QUEUE_CAP];
static size_t queue_head, queue_len;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

static void *pop_locked(void) {
    void *obj = queue[queue_head];
    queue_head = (queue_head + 1) % QUEUE_CAP;
    queue_len--;
    return obj;
}

static void *xthread_worker(void *arg) {
    uint64_t rng = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
    for (int op = 0; op < XOPS; op++) {
        void *mine = make_object(random_size(&rng), (uint32_t)next_random(&rng));
        void *theirs = NULL;
        pthread_mutex_lock(&queue_lock);
        queue[(queue_head + queue_len) % QUEUE_CAP] = mine;
        queue_len++;
        if (queue_len > QUEUE_HIGH || next_random(&rng) % 2) theirs = pop_locked();
        pthread_mutex_unlock(&queue_lock);
        if (theirs) free_object(theirs, "xthread consumer");
    }
    return NULL;
}

static void run_xthread(void) {
    begin("xthread.cross_thread_frees");
    pthread_t threads[XTHREADS];
    for (uintptr_t i = 0; i < XTHREADS; i++) threads[i] = spawn(xthread_worker, (void *)i);
    for (int i = 0; i < XTHREADS; i++) pthread_join(threads[i], NULL);
    while (queue_len) free_object(pop_locked(), "xthread drain");
    pass();
}

/* ---- orphans: objects outlive the threads that allocated them ---- */

enum { ORPHAN_ROUNDS = 6, ORPHAN_THREADS = 6, ORPHANS_PER_THREAD = 3000 };
static void *orphans[ORPHAN_THREADS][ORPHANS_PER_THREAD];

static void *orphan_maker(void *arg) {
    uintptr_t slot = (uintptr_t)arg;
    uint64_t rng = 0xD1B54A32D192ED03ull ^ (slot * 0x100000001B3ull + 1);
    for (int i = 0; i < ORPHANS_PER_THREAD; i++)
        orphans[slot][i] = make_object(random_size(&rng), (uint32_t)next_random(&rng));
    /* Touch the allocator once more right before exit so its per-thread state is warm when it dies. */
    free(make_object(64, 1));
    return NULL;
}

/* Frees every orphan of one exited thread while allocating and checking its own objects. */
static void *orphan_adopter(void *arg) {
    uintptr_t slot = (uintptr_t)arg;
    uint64_t rng = 0xA0761D6478BD642Full ^ (slot + 1);
    static __thread void *own[512];
    for (int i = 0; i < ORPHANS_PER_THREAD; i++) {
        free_object(orphans[slot][i], "orphan adopter");
        orphans[slot][i] = NULL;
        int j = i % 512;
        if (own[j]) free_object(own[j], "adopter own");
        own[j] = make_object(random_size(&rng), (uint32_t)next_random(&rng));
    }
    for (int j = 0; j < 512; j++) {
        if (own[j]) free_object(own[j], "adopter own");
        own[j] = NULL;
    }
    return NULL;
}

static void run_orphans(void) {
    begin("orphans.freed_after_owner_exit");
    for (int round = 0; round < ORPHAN_ROUNDS; round++) {
        pthread_t threads[ORPHAN_THREADS];
        for (uintptr_t i = 0; i < ORPHAN_THREADS; i++) threads[i] = spawn(orphan_maker, (void *)i);
        for (int i = 0; i < ORPHAN_THREADS; i++) pthread_join(threads[i], NULL);
        /* All makers are gone; their objects must be intact. Half the slots go to new threads, half to main. */
        for (int t = 0; t < ORPHAN_THREADS; t++)
            for (int i = 0; i < ORPHANS_PER_THREAD; i++) check_object(orphans[t][i], "orphan after exit");
        for (uintptr_t i = 0; i < ORPHAN_THREADS / 2; i++) threads[i] = spawn(orphan_adopter, (void *)i);
        for (int t = ORPHAN_THREADS / 2; t < ORPHAN_THREADS; t++)
            for (int i = 0; i < ORPHANS_PER_THREAD; i++) free_object(orphans[t][i], "main adopter");
        for (int i = 0; i < ORPHAN_THREADS / 2; i++) pthread_join(threads[i], NULL);
    }
    pass();
}

/* ---- fork: children of a process whose other threads are inside malloc ---- */

enum { FORK_WORKERS = 4, FORKS = 20 };
static volatile int stop_workers;

static void *fork_background(void *arg) {
    uint64_t rng = 0x2545F4914F6CDD1Dull * ((uintptr_t)arg + 3);
    void *slots[64] = {0};
    while (!stop_workers) {
        int j = next_random(&rng) % 64;
        if (slots[j]) free_object(slots[j], "fork background");
        slots[j] = make_object(random_size(&rng), (uint32_t)next_random(&rng));
    }
    for (int j = 0; j < 64; j++)
        if (slots[j]) free_object(slots[j], "fork background");
    return NULL;
}

static void *child_thread(void *arg) {
    uint64_t rng = (uintptr_t)arg | 1;
    for (int i = 0; i < 2000; i++) free_object(make_object(random_size(&rng), i), "child thread");
    return NULL;
}

static void child_body(int n) {
    /* A deadlock on a lock some other parent thread held at fork time must fail, not hang the suite. */
    alarm(20);
    uint64_t rng = 0x1234567ull + n;
    static void *held[1500];
    for (int i = 0; i < 1500; i++) held[i] = make_object(random_size(&rng), i);
    pthread_t t = spawn(child_thread, (void *)(uintptr_t)n);
    for (int i = 0; i < 1500; i++) free_object(held[i], "child");
    pthread_join(t, NULL);
    _exit(0);
}

static void run_fork(void) {
    begin("fork.child_allocates");
    pthread_t threads[FORK_WORKERS];
    for (uintptr_t i = 0; i < FORK_WORKERS; i++) threads[i] = spawn(fork_background, (void *)i);
    for (int n = 0; n < FORKS; n++) {
        usleep(2000 + (n % 7) * 500);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) child_body(n);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        CHECK(!WIFSIGNALED(status), "child %d killed by signal %d%s", n, WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? " (deadlock in the child)" : "");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d exit status %d", n, WEXITSTATUS(status));
    }
    stop_workers = 1;
    for (int i = 0; i < FORK_WORKERS; i++) pthread_join(threads[i], NULL);
    pass();
}

/* ---- tls-dtor: allocation inside thread-exit destructors ---- */

enum { DTOR_THREADS = 400 };
static pthread_key_t dtor_key;
static void *dtor_handoff[DTOR_THREADS];

static void dtor(void *value) {
    /* Runs during thread exit, in an unspecified order relative to the allocator's own key. */
    int round = ((struct header *)value)->seed & 0xff;
    uint64_t rng = (uintptr_t)value | 1;
    free_object(value, "tls destructor");
    for (int i = 0; i < 50; i++) free_object(make_object(random_size(&rng), i), "tls destructor churn");
    /* Re-arm twice: glibc calls destructors again while values remain (PTHREAD_DESTRUCTOR_ITERATIONS). */
    if (round < 2) pthread_setspecific(dtor_key, make_object(64, (uint32_t)(round + 1)));
}

static void *dtor_thread(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    pthread_setspecific(dtor_key, make_object(100, 0));
    /* An object allocated here, freed by main after this thread and its destructors are gone. */
    dtor_handoff[i] = make_object(200 + i, (uint32_t)i);
    return NULL;
}

static void run_tls_dtor(void) {
    begin("tls_dtor.allocate_at_thread_exit");
    CHECK(pthread_key_create(&dtor_key, dtor) == 0, "pthread_key_create");
    for (uintptr_t i = 0; i < DTOR_THREADS; i += 8) {
        pthread_t t[8];
        for (uintptr_t j = 0; j < 8; j++) t[j] = spawn(dtor_thread, (void *)(i + j));
        for (int j = 0; j < 8; j++) pthread_join(t[j], NULL);
    }
    for (int i = 0; i < DTOR_THREADS; i++) free_object(dtor_handoff[i], "main after tls destructors");
    pass();
}

int main(int argc, char **argv) {
    static const struct check_mode modes[] = {
        {"xthread", run_xthread}, {"orphans", run_orphans}, {"fork", run_fork}, {"tls-dtor", run_tls_dtor},
    };
    return run_checker(argc, argv, modes, sizeof modes / sizeof *modes);
}
