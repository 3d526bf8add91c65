/* ABI checker for an LD_PRELOAD malloc: every exported entry point with glibc's semantics.
 * Usage: abi_check <lane>   (lane = fast | scale; "glibc" checks the semantics without hz3)
 * Prints "ok <check>" per passed check; on the first failure prints "FAIL <check>: <why>" and exits 1.
 * Compiled with -fno-builtin so every call reaches the preloaded library. */
#define _GNU_SOURCE
/* mallinfo is deprecated but still exported and still checked; the use-after-free warnings point at
 * deliberate reads of a block that a failing realloc must have left intact. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#include <errno.h>
#include <malloc.h>

#include "check.h"

/* Sizes are laundered through a volatile so nothing is decided at compile time. */
static volatile size_t launder_sink;
static size_t launder(size_t n) { launder_sink = n; return launder_sink; }

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 131u);
}
static int filled(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 131u)) return 0;
    return 1;
}
static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* The alignment C asks of malloc(n): enough for any object that fits in n bytes, at most max_align_t's
 * 16. glibc gives 16 always; jemalloc, tcmalloc and mimalloc give 8 to blocks of 8 bytes or less. */
static size_t fundamental_align(size_t n) {
    size_t a = 1;
    while (a < 16 && a * 2 <= n) a *= 2;
    return a;
}

/* A fresh allocation must be writable over its whole usable size and at least as large as asked. */
static void check_block(void *p, size_t request, size_t align, const char *what) {
    CHECK(p != NULL, "%s(%zu) returned NULL", what, request);
    CHECK(aligned(p, align), "%s(%zu) = %p not aligned to %zu", what, request, p, align);
    size_t usable = malloc_usable_size(p);
    CHECK(usable >= request, "%s(%zu): malloc_usable_size = %zu < request", what, request, usable);
    /* A huge alignment may come with a huge usable size: touch its request and its last page only. */
    size_t head = usable <= (4u << 20) ? usable : request;
    unsigned char *bytes = p;
    fill(bytes, head, (unsigned)request);
    size_t tail = usable - head < 4096 ? usable - head : 4096;
    fill(bytes + usable - tail, tail, (unsigned)request + 1);
    CHECK(filled(bytes, head, (unsigned)request), "%s(%zu): contents not kept", what, request);
}

static void expect_enomem(void *p, const char *call) {
    CHECK(p == NULL, "%s should fail but returned %p", call, p);
    CHECK(errno == ENOMEM, "%s: errno = %d (%s), want ENOMEM", call, errno, strerror(errno));
}

/* Proof that hz3 answers: the lane symbol resolves and every malloc entry point comes from libhz3. */
static void check_identity(const char *lane) {
    require_lane(lane);
    pass();

    static const char *const entry_points[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
        "valloc", "pvalloc", "malloc_usable_size", "malloc_trim", "mallopt", "mallinfo", "mallinfo2",
        "malloc_stats",
    };
    begin("identity.entry_points_from_hz3");
    for (size_t i = 0; i < sizeof entry_points / sizeof *entry_points; i++) {
        void *sym = need_symbol(entry_points[i]);
        Dl_info info;
        CHECK(dladdr(sym, &info) != 0 && info.dli_fname != NULL, "dladdr(%s) failed", entry_points[i]);
        CHECK(strstr(info.dli_fname, "libhz3_") != NULL, "%s resolves to %s, not hz3", entry_points[i], info.dli_fname);
    }
    pass();
}

static void check_malloc_free(void) {
    begin("free.null");
    free(NULL);
    pass();

    begin("malloc.zero");
    void *a = malloc(launder(0)), *b = malloc(launder(0));
    CHECK(a != NULL && b != NULL, "malloc(0) returned NULL (glibc returns a unique pointer)");
    CHECK(a != b, "two live malloc(0) share the address %p", a);
    CHECK(aligned(a, 8) && aligned(b, 8), "malloc(0) not 8-aligned");
    free(a);
    free(b);
    pass();

    begin("malloc.sizes");
    static void *live[4200];
    size_t n = 0;
    for (size_t size = 1; size <= 4096; size++) {
        live[n] = malloc(launder(size));
        check_block(live[n], size, fundamental_align(size), "malloc");
        n++;
    }
    static const size_t big[] = {4097, 8191, 65536, 65537, 262144, 1 << 20, (1 << 20) + 1, 16u << 20, 64u << 20};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        live[n] = malloc(launder(big[i]));
        check_block(live[n], big[i], 16, "malloc");
        n++;
    }
    /* Every block was filled over its usable size: a block overlapping another now shows the wrong bytes. */
    for (size_t i = 0; i < n; i++) {
        size_t request = i < 4096 ? i + 1 : big[i - 4096];
        CHECK(filled(live[i], request, (unsigned)request), "block of %zu overwritten: blocks overlap",
              request);
    }
    for (size_t i = 0; i < n; i++) free(live[i]);
    pass();

    begin("malloc.too_big");
    errno = 0;
    expect_enomem(malloc(launder(SIZE_MAX)), "malloc(SIZE_MAX)");
    errno = 0;
    expect_enomem(malloc(launder(SIZE_MAX - 4096)), "malloc(SIZE_MAX - 4096)");
    errno = 0;
    expect_enomem(malloc(launder((size_t)PTRDIFF_MAX + 1)), "malloc(PTRDIFF_MAX + 1)");
    pass();
}

static void check_calloc(void) {
    begin("calloc.zeroed");
    for (size_t size = 1; size <= 1 << 20; size = size * 3 + 1) {
        /* Dirty a block of the same size first so a recycled block must really be cleared. */
        unsigned char *dirty = malloc(launder(size));
        CHECK(dirty != NULL, "malloc(%zu) = NULL", size);
        memset(dirty, 0xA5, size);
        free(dirty);
        unsigned char *p = calloc(launder(1), launder(size));
        CHECK(p != NULL, "calloc(1, %zu) = NULL", size);
        CHECK(aligned(p, fundamental_align(size)), "calloc(1, %zu) under-aligned", size);
        for (size_t i = 0; i < size; i++) CHECK(p[i] == 0, "calloc(1, %zu): byte %zu = %#x", size, i, p[i]);
        free(p);
    }
    unsigned char *p = calloc(launder(1000), launder(33));
    CHECK(p != NULL, "calloc(1000, 33) = NULL");
    for (size_t i = 0; i < 33000; i++) CHECK(p[i] == 0, "calloc(1000, 33): byte %zu = %#x", i, p[i]);
    free(p);
    pass();

    begin("calloc.zero");
    p = calloc(launder(0), launder(16));
    CHECK(p != NULL, "calloc(0, 16) returned NULL (glibc returns a unique pointer)");
    free(p);
    pass();

    begin("calloc.overflow");
    errno = 0;
    expect_enomem(calloc(launder(SIZE_MAX / 2 + 1), launder(2)), "calloc(SIZE_MAX/2+1, 2)");
    errno = 0;
    expect_enomem(calloc(launder((size_t)1 << 33), launder((size_t)1 << 31)), "calloc(2^33, 2^31)");
    errno = 0;
    expect_enomem(calloc(launder(1), launder(SIZE_MAX)), "calloc(1, SIZE_MAX)");
    errno = 0;
    expect_enomem(calloc(launder(SIZE_MAX), launder(1)), "calloc(SIZE_MAX, 1)");
    errno = 0;
    expect_enomem(calloc(launder(1), launder(SIZE_MAX - 64)), "calloc(1, SIZE_MAX - 64)");
    pass();
}

static void check_realloc(void) {
    begin("realloc.null_is_malloc");
    unsigned char *p = realloc(NULL, launder(100));
    check_block(p, 100, 16, "realloc(NULL)");
    free(p);
    pass();

    begin("realloc.zero_frees");
    p = malloc(launder(100));
    CHECK(p != NULL, "malloc(100) = NULL");
    errno = 0;
    void *r = realloc(p, launder(0));
    CHECK(r == NULL, "realloc(p, 0) = %p, glibc frees p and returns NULL", r);
    pass();

    begin("realloc.preserves_contents");
    /* Walk up through small, medium and large sizes and back down: each move keeps the common prefix. */
    static const size_t steps[] = {1, 15, 16, 17, 100, 1000, 2048, 2049, 5000, 70000, 1 << 20, 8u << 20, 300000,
                                   3000, 200, 24, 8, 1};
    size_t old = 0;
    p = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        size_t size = steps[i];
        unsigned char *q = realloc(p, launder(size));
        CHECK(q != NULL, "realloc(%p, %zu) = NULL", (void *)p, size);
        CHECK(aligned(q, fundamental_align(size)), "realloc(.., %zu) under-aligned", size);
        CHECK(malloc_usable_size(q) >= size, "realloc(.., %zu): usable %zu", size, malloc_usable_size(q));
        size_t keep = old < size ? old : size;
        CHECK(filled(q, keep, (unsigned)old), "realloc %zu -> %zu lost the first %zu bytes", old, size, keep);
        fill(q, size, (unsigned)size);
        p = q;
        old = size;
    }
    free(p);
    pass();

    begin("realloc.too_big_keeps_block");
    p = malloc(launder(64));
    CHECK(p != NULL, "malloc(64) = NULL");
    fill(p, 64, 7);
    errno = 0;
    expect_enomem(realloc(p, launder(SIZE_MAX - 8)), "realloc(p, SIZE_MAX - 8)");
    CHECK(filled(p, 64, 7), "failed realloc damaged the original block");
    free(p);
    pass();

    begin("reallocarray");
    p = reallocarray(NULL, launder(10), launder(10));
    check_block(p, 100, 16, "reallocarray(NULL)");
    fill(p, 100, 3);
    unsigned char *q = reallocarray(p, launder(100), launder(100));
    CHECK(q != NULL, "reallocarray(p, 100, 100) = NULL");
    CHECK(filled(q, 100, 3), "reallocarray lost contents");
    errno = 0;
    expect_enomem(reallocarray(q, launder(SIZE_MAX / 4), launder(8)), "reallocarray(p, SIZE_MAX/4, 8)");
    CHECK(filled(q, 100, 3), "failed reallocarray damaged the original block");
    free(q);
    pass();
}

static void check_aligned(void) {
    begin("posix_memalign.bad_alignment");
    static const size_t bad[] = {0, 1, 2, 4, 12, 24, 48, 100, 4097, (size_t)1 << 63 | 8};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *p = (void *)0x1;
        int rc = posix_memalign(&p, launder(bad[i]), launder(64));
        CHECK(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
    }
    pass();

    begin("posix_memalign.alignments_to_1GiB");
    for (size_t align = sizeof(void *); align <= ((size_t)1 << 30); align <<= 1) {
        static const size_t sizes[] = {1, 16, 100, 4096, 100000};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            void *p = NULL;
            int rc = posix_memalign(&p, launder(align), launder(sizes[i]));
            CHECK(rc == 0, "posix_memalign(align %zu, %zu) = %d", align, sizes[i], rc);
            check_block(p, sizes[i], align, "posix_memalign");
            free(p);
        }
    }
    pass();

    begin("posix_memalign.too_big");
    void *p = (void *)0x1;
    int rc = posix_memalign(&p, launder(64), launder(SIZE_MAX - 32));
    CHECK(rc == ENOMEM, "posix_memalign(64, SIZE_MAX - 32) = %d, want ENOMEM", rc);
    pass();

    begin("aligned_alloc");
    for (size_t align = 1; align <= (1u << 21); align <<= 1) {
        /* 100 is not a multiple of most of these alignments: glibc accepts it anyway. */
        void *q = aligned_alloc(launder(align), launder(100));
        check_block(q, 100, align, "aligned_alloc");
        free(q);
        q = aligned_alloc(launder(align), launder(align * 3));
        check_block(q, align * 3, align, "aligned_alloc");
        free(q);
    }
    errno = 0;
    expect_enomem(aligned_alloc(launder(64), launder(SIZE_MAX - 32)), "aligned_alloc(64, SIZE_MAX - 32)");
    pass();

    begin("memalign");
    for (size_t align = 1; align <= (1u << 20); align <<= 1) {
        void *q = memalign(launder(align), launder(1000));
        check_block(q, 1000, align, "memalign");
        free(q);
    }
    /* glibc rounds an alignment that is not a power of two up to the next one. */
    void *q = memalign(launder(48), launder(100));
    check_block(q, 100, 64, "memalign(48)");
    free(q);
    errno = 0;
    expect_enomem(memalign(launder(64), launder(SIZE_MAX - 32)), "memalign(64, SIZE_MAX - 32)");
    pass();

    begin("aligned.zero_size");
    /* glibc hands out a minimal block for a zero size from every aligned entry point. */
    void *z = NULL;
    CHECK(posix_memalign(&z, launder(64), launder(0)) == 0 && z != NULL && aligned(z, 64), "posix_memalign(64, 0)");
    free(z);
    z = aligned_alloc(launder(4096), launder(0));
    CHECK(z != NULL && aligned(z, 4096), "aligned_alloc(4096, 0) = %p", z);
    free(z);
    z = memalign(launder(256), launder(0));
    CHECK(z != NULL && aligned(z, 256), "memalign(256, 0) = %p", z);
    free(z);
    z = valloc(launder(0));
    CHECK(z != NULL && aligned(z, (size_t)sysconf(_SC_PAGESIZE)), "valloc(0) = %p", z);
    free(z);
    z = calloc(launder(0), launder(0));
    CHECK(z != NULL, "calloc(0, 0) = NULL");
    free(z);
    pass();

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    begin("valloc");
    for (size_t size = 1; size <= 3 * page; size += page / 2 + 1) {
        void *v = valloc(launder(size));
        check_block(v, size, page, "valloc");
        free(v);
    }
    pass();

    begin("pvalloc.rounds_to_pages");
    for (size_t size = 1; size <= 3 * page; size += page / 2 + 1) {
        void *v = pvalloc(launder(size));
        size_t rounded = (size + page - 1) / page * page;
        check_block(v, rounded, page, "pvalloc");
        free(v);
    }
    pass();
}

static void check_introspection(const char *lane) {
    begin("malloc_usable_size.null");
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
    pass();

    begin("malloc_trim");
    void *keep = malloc(launder(1000));
    int t = malloc_trim(launder(0));
    CHECK(t == 0 || t == 1, "malloc_trim(0) = %d, want 0 or 1", t);
    CHECK(keep != NULL, "malloc(1000) = NULL");
    memset(keep, 1, 1000);
    free(keep);
    pass();

    begin("mallopt");
    int m = mallopt(M_ARENA_MAX, 2);
    CHECK(m == 0 || m == 1, "mallopt(M_ARENA_MAX, 2) = %d, want 0 or 1", m);
    m = mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    CHECK(m == 0 || m == 1, "mallopt(M_TRIM_THRESHOLD) = %d, want 0 or 1", m);
    pass();

    begin("mallinfo");
    void *hold = malloc(launder(5000));
    struct mallinfo2 mi2 = mallinfo2();
    struct mallinfo mi = mallinfo();
    /* Values are the allocator's business; the calls must work and report nothing absurd. */
    CHECK(mi2.uordblks <= ((size_t)1 << 46), "mallinfo2().uordblks = %zu is absurd", mi2.uordblks);
    (void)mi;
    free(hold);
    pass();

    begin("malloc_stats.names_hz3_and_lane");
    fflush(stderr);
    FILE *capture = tmpfile();
    CHECK(capture != NULL, "tmpfile() failed");
    int saved = dup(2);
    CHECK(saved >= 0 && dup2(fileno(capture), 2) >= 0, "cannot redirect stderr");
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char text[4096] = {0};
    rewind(capture);
    size_t len = fread(text, 1, sizeof text - 1, capture);
    fclose(capture);
    CHECK(len > 0, "malloc_stats printed nothing on stderr");
    CHECK(strstr(text, "hz3") != NULL, "malloc_stats output does not name hz3: %s", text);
    CHECK(strstr(text, lane) != NULL, "malloc_stats output does not name the lane %s: %s", lane, text);
    pass();
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <fast|scale|glibc>\n", argv[0]);
        return 2;
    }
    const char *lane = argv[1];
    int is_hz3 = strcmp(lane, "glibc") != 0;
    if (is_hz3) check_identity(lane);
    check_malloc_free();
    check_calloc();
    check_realloc();
    check_aligned();
    if (is_hz3) check_introspection(lane);
    printf("all checks passed\n");
    return 0;
}
