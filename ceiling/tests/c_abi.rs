//! The ceiling's C ABI, exercised by a real C program under `LD_PRELOAD` of libceiling.so: the
//! program checks the marker symbol first (the ceiling answers), then alignment, sizes, realloc,
//! calloc and large blocks, and prints "ok" only if everything held.
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#define CHECK(c) do { if (!(c)) { printf("FAILED line %d: %s\n", __LINE__, #c); return 1; } } while (0)

static void *worker(void *arg) {
    /* A block freed by another thread is reusable there: free must not need the owner. */
    free(arg);
    void *p = malloc(100);
    memset(p, 1, 100);
    return p;
}

int main(void) {
    CHECK(dlsym(RTLD_DEFAULT, "ceiling_marker") != NULL);
    free(NULL);
    for (size_t size = 0; size <= 300000; size = size * 3 / 2 + 1) {
        unsigned char *p = malloc(size);
        CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
        CHECK(malloc_usable_size(p) >= size);
        memset(p, 0xab, size);
        free(p);
    }
    for (size_t align = 16; align <= (1u << 22); align <<= 1) {
        void *p = NULL;
        CHECK(posix_memalign(&p, align, 24) == 0 && ((uintptr_t)p & (align - 1)) == 0);
        memset(p, 0, 24);
        free(p);
        p = aligned_alloc(align, align * 2);
        CHECK(p != NULL && ((uintptr_t)p & (align - 1)) == 0);
        free(p);
        p = memalign(align, 3000);
        CHECK(p != NULL && ((uintptr_t)p & (align - 1)) == 0);
        free(p);
    }
    void *bad = NULL;
    CHECK(posix_memalign(&bad, 24, 8) != 0);
    char *s = malloc(10);
    strcpy(s, "123456789");
    s = realloc(s, 100000);
    CHECK(s != NULL && strcmp(s, "123456789") == 0);
    s = realloc(s, 500000);
    CHECK(s != NULL && strcmp(s, "123456789") == 0 && malloc_usable_size(s) >= 500000);
    s = realloc(s, 5);
    CHECK(s != NULL && memcmp(s, "12345", 5) == 0);
    CHECK(realloc(s, 0) == NULL);
    unsigned char *z = malloc(64);
    memset(z, 0xff, 64);
    free(z);
    z = calloc(8, 8); /* likely the recycled block: must be cleared anyway */
    for (int i = 0; i < 64; i++) CHECK(z[i] == 0);
    free(z);
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL);
    void *v = valloc(10);
    CHECK(v != NULL && ((uintptr_t)v & 4095) == 0);
    free(v);
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, worker, malloc(100)) == 0 && pthread_join(t, &result) == 0);
    free(result);
    printf("ok\n");
    return 0;
}
"#;

fn library() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ceiling/ has a parent");
    let lib = root.join("target/preload/libceiling.so");
    assert!(
        lib.exists(),
        "{} is missing: run scripts/build-ceiling first",
        lib.display()
    );
    lib
}

#[test]
fn c_program_under_preload_sees_a_working_ceiling() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("abi.c");
    let exe = dir.path().join("abi");
    std::fs::write(&src, PROGRAM).unwrap();
    let cc = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .arg("-pthread")
        .output();
    let cc = cc.expect("no C compiler: apt-get install build-essential (scripts/test does)");
    assert!(
        cc.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&cc.stderr)
    );

    let out = Command::new(&exe).env("LD_PRELOAD", &lib).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the preload the marker is absent, so the check above really proves who answered.
    let out = Command::new(&exe)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ceiling_marker"));
}

#[test]
fn a_foreign_pointer_aborts_with_a_message_naming_the_ceiling() {
    let lib = library();
    // python's ctypes hands free() a pointer into the middle of a block.
    let out = Command::new("python3")
        .args(["-c", "import ctypes; l = ctypes.CDLL(None); l.malloc.restype = ctypes.c_void_p; p = l.malloc(400000); l.free(ctypes.c_void_p(p + 4096))"])
        .env("LD_PRELOAD", &lib)
        .output()
        .expect("python3 is installed by scripts/test");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ceiling: free of a pointer the ceiling never returned"),
        "{stderr}"
    );
}
