/* Deterministic workloads for hz3's probe counters, run under LD_PRELOAD of libhz3_<lane>_probes.so.
 * Usage: probes_check <lane> refill  SIZE N OUT       one thread mallocs N objects of SIZE bytes
 *        probes_check <lane> remote  SIZE N OUT       main mallocs N objects; a second thread frees them;
 *                                                     main mallocs N more
 *        probes_check <lane> orphan  SIZE N OUT       a thread mallocs N objects and exits; main frees
 *                                                     them (their owner is gone), then mallocs one: it
 *                                                     must get one of them back (none was lost)
 *        probes_check <lane> handback SIZE N M OUT   main and a second thread each malloc N objects of
 *                                                     SIZE and free them, main first (so the other's
 *                                                     spilled batches lie on top of main's); then main
 *                                                     mallocs M and prints how many came from its own N
 *                                                     ("handback own K of M")
 *        probes_check <lane> contend SIZE THREADS ROUNDS OUT
 *                                                     THREADS threads (1 = main alone) each do ROUNDS of
 *                                                     "malloc 4 caches' worth of SIZE, free them all"
 * First proves hz3 answers (hz3_lane() names the lane, the probe entry points are exported), then
 * zeroes the counters with hz3_probes_reset() right before the measured part and writes one dump to OUT
 * with hz3_probes_dump() right after it. Prints "ok identity.hz3_lane" and "ok <mode>"; on failure
 * "FAIL <mode>: <why>" and exit 1. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"

#define MAX_OBJECTS (1 << 16)
#define CONTEND_OBJECTS 1024

static void *objects[MAX_OBJECTS];

static void (*probes_reset)(void);
static int (*probes_dump)(const char *path);

static void prove_hz3(const char *lane) {
    require_lane(lane);
    probes_reset = (void (*)(void))need_symbol("hz3_probes_reset");
    probes_dump = (int (*)(const char *))need_symbol("hz3_probes_dump");
    /* The lane on the "ok" line tells the test which build answered. */
    printf("ok %s %s\n", current_check, lane);
}

static size_t parse_count(const char *text, size_t max) {
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v == 0 || v > max) fail("bad number: %s", text);
    return v;
}

/* into[0..n) = n fresh blocks of `size` bytes. */
static void allocate_into(void **into, size_t size, size_t n) {
    for (size_t i = 0; i < n; i++) {
        into[i] = malloc(size);
        CHECK(into[i] != NULL, "malloc(%zu) returned NULL", size);
    }
}

/* objects[0..n) = n fresh blocks of `size` bytes. */
static void allocate_objects(size_t size, size_t n) { allocate_into(objects, size, n); }

static void mode_refill(size_t size, size_t n, const char *out) {
    probes_reset();
    allocate_objects(size, n);
    probes_dump(out);
    for (size_t i = 0; i < n; i++) free(objects[i]);
}

static size_t remote_count;

static void *free_all(void *arg) {
    (void)arg;
    for (size_t i = 0; i < remote_count; i++) free(objects[i]);
    return NULL;
}

static void mode_remote(size_t size, size_t n, const char *out) {
    allocate_objects(size, n);
    remote_count = n;
    pthread_t freer;
    probes_reset();
    if (pthread_create(&freer, NULL, free_all, NULL) != 0) fail("pthread_create failed");
    if (pthread_join(freer, NULL) != 0) fail("pthread_join failed");
    /* The owner allocates as many again: the freer kept the objects, so its cache runs dry. */
    allocate_objects(size, n);
    probes_dump(out);
    for (size_t i = 0; i < n; i++) free(objects[i]);
}

static void *other_objects[MAX_OBJECTS];
static size_t handback_size, handback_count;
static pthread_barrier_t handback_steps;

static void *allocate_then_free_second(void *arg) {
    (void)arg;
    allocate_into(other_objects, handback_size, handback_count);
    pthread_barrier_wait(&handback_steps); /* both sets allocated */
    pthread_barrier_wait(&handback_steps); /* main has freed its set */
    for (size_t i = 0; i < handback_count; i++) free(other_objects[i]);
    pthread_barrier_wait(&handback_steps); /* this set freed: its batches lie on top */
    pthread_barrier_wait(&handback_steps); /* main has measured: stay alive until then */
    return NULL;
}

static int is_own(void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (objects[i] == p) return 1;
    return 0;
}

static void mode_handback(size_t size, size_t n, size_t m, const char *out) {
    CHECK(m <= MAX_OBJECTS - n, "M too large");
    handback_size = size;
    handback_count = n;
    if (pthread_barrier_init(&handback_steps, NULL, 2) != 0) fail("pthread_barrier_init failed");
    pthread_t other;
    if (pthread_create(&other, NULL, allocate_then_free_second, NULL) != 0) fail("pthread_create failed");
    allocate_objects(size, n);
    pthread_barrier_wait(&handback_steps);
    for (size_t i = 0; i < n; i++) free(objects[i]);
    pthread_barrier_wait(&handback_steps);
    pthread_barrier_wait(&handback_steps);
    probes_reset();
    void **again = objects + n;
    size_t own = 0;
    allocate_into(again, size, m);
    for (size_t i = 0; i < m; i++) own += is_own(again[i], n);
    probes_dump(out);
    printf("handback own %zu of %zu\n", own, m);
    pthread_barrier_wait(&handback_steps);
    if (pthread_join(other, NULL) != 0) fail("pthread_join failed");
    for (size_t i = 0; i < m; i++) free(again[i]);
    pthread_barrier_destroy(&handback_steps);
}

static size_t orphan_size, orphan_count;

static void *allocate_orphans(void *arg) {
    (void)arg;
    allocate_objects(orphan_size, orphan_count);
    return NULL;
}

/* The objects of an exited owner stay with the thread that frees them: its next malloc of the
 * class must be served from them. */
static void mode_orphan(size_t size, size_t n, const char *out) {
    orphan_size = size;
    orphan_count = n;
    pthread_t owner;
    if (pthread_create(&owner, NULL, allocate_orphans, NULL) != 0) fail("pthread_create failed");
    if (pthread_join(owner, NULL) != 0) fail("pthread_join failed");
    probes_reset();
    for (size_t i = 0; i < n; i++) free(objects[i]);
    void *p = malloc(size);
    CHECK(p != NULL, "malloc(%zu) failed", size);
    int found = 0;
    for (size_t i = 0; i < n; i++) found |= objects[i] == p;
    probes_dump(out);
    CHECK(found, "malloc(%zu) after freeing an exited thread's %zu objects returned %p, none of them", size, n, p);
    free(p);
}

static size_t contend_size, contend_rounds;
static pthread_barrier_t start_line;

static void *churn(void *arg) {
    void *mine[CONTEND_OBJECTS];
    (void)arg;
    if (arg) pthread_barrier_wait(&start_line);
    for (size_t r = 0; r < contend_rounds; r++) {
        for (size_t i = 0; i < CONTEND_OBJECTS; i++) {
            mine[i] = malloc(contend_size);
            if (!mine[i]) fail("malloc returned NULL");
            *(volatile char *)mine[i] = (char)i;
        }
        for (size_t i = 0; i < CONTEND_OBJECTS; i++) free(mine[i]);
    }
    return NULL;
}

static void mode_contend(size_t size, size_t threads, size_t rounds, const char *out) {
    contend_size = size;
    contend_rounds = rounds;
    pthread_t workers[64];
    if (threads > 1 && pthread_barrier_init(&start_line, NULL, (unsigned)threads) != 0) fail("barrier");
    probes_reset();
    if (threads == 1) {
        churn(NULL);
    } else {
        for (size_t t = 0; t < threads; t++)
            if (pthread_create(&workers[t], NULL, churn, &start_line) != 0) fail("pthread_create failed");
        for (size_t t = 0; t < threads; t++) pthread_join(workers[t], NULL);
    }
    probes_dump(out);
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: probes_check <lane> <refill|remote|orphan|handback|contend> ...");
    prove_hz3(argv[1]);
    const char *mode = argv[2];
    begin(mode);
    if (strcmp(mode, "refill") == 0 && argc == 6) {
        mode_refill(parse_count(argv[3], 1 << 20), parse_count(argv[4], MAX_OBJECTS), argv[5]);
    } else if (strcmp(mode, "remote") == 0 && argc == 6) {
        mode_remote(parse_count(argv[3], 1 << 20), parse_count(argv[4], MAX_OBJECTS), argv[5]);
    } else if (strcmp(mode, "orphan") == 0 && argc == 6) {
        mode_orphan(parse_count(argv[3], 1 << 20), parse_count(argv[4], MAX_OBJECTS), argv[5]);
    } else if (strcmp(mode, "handback") == 0 && argc == 7) {
        mode_handback(parse_count(argv[3], 1 << 20), parse_count(argv[4], MAX_OBJECTS / 2),
                      parse_count(argv[5], MAX_OBJECTS / 2), argv[6]);
    } else if (strcmp(mode, "contend") == 0 && argc == 7) {
        mode_contend(parse_count(argv[3], 1 << 20), parse_count(argv[4], 64), parse_count(argv[5], 1 << 30),
                     argv[6]);
    } else {
        fail("unknown mode or wrong argument count");
    }
    pass();
    return 0;
}
