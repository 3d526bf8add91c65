//! Which allocator is answering `malloc` in this process, from the symbols it exports.
//!
//! Lets `hz3-analyze matrix` check that each row measured the allocator it claims (an `LD_PRELOAD`
//! that silently failed would otherwise be reported as that allocator's numbers).
use std::ffi::{c_char, CStr};

/// A name per allocator family: "hz3-<lane>", "ceiling", "tcmalloc", "jemalloc", "mimalloc",
/// "snmalloc", or "glibc" when none of their marker symbols is present.
pub fn answering_allocator() -> String {
    if let Some(lane) = symbol(c"hz3_lane") {
        // SAFETY: hz3's preload .so exports `const char *hz3_lane(void)` returning a static
        // NUL-terminated string (the allocator's published C ABI).
        let lane_fn: extern "C" fn() -> *const c_char = unsafe { std::mem::transmute(lane) };
        let name = lane_fn();
        if name.is_null() {
            return "hz3-unknown".into();
        }
        // SAFETY: non-null and NUL-terminated per the contract above.
        return format!("hz3-{}", unsafe { CStr::from_ptr(name) }.to_string_lossy());
    }
    let markers: [(&CStr, &str); 5] = [
        (c"ceiling_marker", "ceiling"),
        (c"tc_version", "tcmalloc"),
        (c"mallctl", "jemalloc"),
        (c"mi_version", "mimalloc"),
        // snmalloc's LD_PRELOAD shim exports it (the end of an object, for bounds checks).
        (c"__malloc_end_pointer", "snmalloc"),
    ];
    for (sym, name) in markers {
        if symbol(sym).is_some() {
            return name.into();
        }
    }
    "glibc".into()
}

fn symbol(name: &CStr) -> Option<*mut libc::c_void> {
    // SAFETY: RTLD_DEFAULT searches the global scope (preloads first); name is NUL-terminated.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_test_process_is_glibc() {
        // cargo test runs without LD_PRELOAD, and none of the marker symbols is linked in.
        if std::env::var_os("LD_PRELOAD").is_none() {
            assert_eq!(super::answering_allocator(), "glibc");
        }
    }
}
