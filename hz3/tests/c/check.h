/* Shared report plumbing of the C checkers in this directory (included as "check.h", found next to the
 * including file, so the compile line needs no -I).
 *
 * Protocol the Rust tests parse: one "ok <check>" line per passed check; on the first failure one line
 * "FAIL <check>: <why>" on stdout and exit status 1. A checker names the running check with begin(),
 * asserts with CHECK(cond, printf-format, ...) and reports success with pass(); run_checker() is the
 * whole main() of a checker that takes `<mode> [lane]`.
 *
 * Helpers not every checker uses are `static inline` so that -Wall does not flag them as unused. */
#ifndef HZ3_TESTS_CHECK_H
#define HZ3_TESTS_CHECK_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *current_check = "start";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* _exit, not exit: a failing multi-thread checker must not run exit handlers (the allocator's among them)
 * while its other threads are still inside malloc. stdout is flushed by hand for the same reason. */
static void fail(const char *fmt, ...) {
    va_list ap;
    printf("FAIL %s: ", current_check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    _exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static inline void begin(const char *name) { current_check = name; }

/* Flushed so the line survives a later crash or an _exit from another thread. */
static inline void pass(void) {
    printf("ok %s\n", current_check);
    fflush(stdout);
}

/* xorshift64: deterministic object sizes and seeds without touching libc's rand() state. */
static inline uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A symbol the preloaded library must export; failing here means hz3 is not the library answering. */
static inline void *need_symbol(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    CHECK(p != NULL, "dlsym(%s) = NULL: hz3 is not preloaded", name);
    return p;
}

/* Proof that hz3 answers: begins the check "identity.hz3_lane" and fails it unless hz3_lane() names
 * `lane`. Leaves reporting the pass to the caller, which may add detail to the "ok" line. */
static inline void require_lane(const char *lane) {
    begin("identity.hz3_lane");
    const char *(*lane_fn)(void) = (const char *(*)(void))need_symbol("hz3_lane");
    const char *got = lane_fn();
    CHECK(got != NULL && strcmp(got, lane) == 0, "hz3_lane() = \"%s\", want \"%s\"", got ? got : "(null)", lane);
}

/* A checker mode: its command-line name and the function that runs its checks. */
struct check_mode {
    const char *name;
    void (*run)(void);
};

/* The whole main() of a checker used as `checker <mode> [lane]`: stdout unbuffered (an "ok" line must
 * survive a later crash), the lane proof when a lane is given, then the named mode. Returns the exit
 * status: 0, or 2 with a usage line on stderr for a wrong argument count or an unknown mode. */
static inline int run_checker(int argc, char **argv, const struct check_mode *modes, size_t count) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s <", argv[0]);
        for (size_t i = 0; i < count; i++) fprintf(stderr, "%s%s", i ? "|" : "", modes[i].name);
        fprintf(stderr, "> [lane]\n");
        return 2;
    }
    if (argc == 3) {
        require_lane(argv[2]);
        pass();
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(argv[1], modes[i].name) == 0) {
            modes[i].run();
            return 0;
        }
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}

#endif
