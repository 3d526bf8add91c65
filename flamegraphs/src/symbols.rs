//! Frame names as the boxes see them: demangled, and the C allocation entry points tagged with
//! the library that answered them.
//!
//! perf usually demangles, but not always (a perf built without the demangler, `--no-demangle`,
//! symbols from a JIT map), so mangled Rust (legacy and v0) and Itanium C++ names are demangled
//! here too. `malloc` and `free` are ambiguous on their own: glibc, hz3 and jemalloc all export
//! them, and which allocator a sample landed in is the whole point; so those entry points carry
//! their library's file name, e.g. `malloc [libhz3_scale.so]`.

/// The C ABI names every allocator exports, and C++'s allocation operators (which C++ allocators
/// replace); a frame with one of them is tagged with its DSO.
const C_ENTRY_POINTS: &[&str] = &[
    "operator new",
    "operator new[]",
    "operator delete",
    "operator delete[]",
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "cfree",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    // glibc's direct entry points: every malloc replacement exports them too, and a linker that
    // folds identical functions leaves perf to pick one name of two for hz3's `malloc`.
    "__libc_malloc",
    "__libc_free",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
];

/// Demangles `sym` if it is a mangled Rust or C++ name; otherwise returns it unchanged.
pub fn demangle(sym: &str) -> String {
    if sym.starts_with("_R") || sym.starts_with("_ZN") {
        if let Ok(d) = rustc_demangle::try_demangle(sym) {
            // `{:#}` drops the legacy `::h0123…` hash, which differs between builds of the same code.
            let text = format!("{d:#}");
            if !text.is_empty() {
                return text;
            }
        }
    }
    if sym.starts_with("_Z") {
        if let Ok(parsed) = cpp_demangle::Symbol::new(sym) {
            let options = cpp_demangle::DemangleOptions::new()
                .no_params()
                .no_return_type();
            if let Ok(text) = parsed.demangle(&options) {
                return text;
            }
        }
    }
    sym.to_string()
}

/// The name a frame gets in folded stacks: demangled, entry points tagged with their library.
pub fn frame_name(sym: &str, dso: &str) -> String {
    let name = demangle(sym);
    if C_ENTRY_POINTS.contains(&name.as_str()) {
        let lib = dso.rsplit('/').next().unwrap_or(dso);
        return format!("{name} [{lib}]");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_rust_legacy_v0_and_cpp() {
        assert_eq!(
            demangle("_ZN3hz37central7Central3pop17h0123456789abcdefE"),
            "hz3::central::Central::pop"
        );
        assert_eq!(
            demangle("_RNvNtCs1234_3hz36remote5flush"),
            "hz3::remote::flush"
        );
        assert_eq!(
            demangle("_ZN8tcmalloc11ThreadCache21FetchFromCentralCacheEjjPFPvmE"),
            "tcmalloc::ThreadCache::FetchFromCentralCache"
        );
        assert_eq!(demangle("_int_malloc"), "_int_malloc");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[test]
    fn entry_points_carry_their_library() {
        assert_eq!(
            frame_name("malloc", "/x/target/preload/libhz3_scale.so"),
            "malloc [libhz3_scale.so]"
        );
        assert_eq!(
            frame_name("mallocx", "/usr/lib/libjemalloc.so.2"),
            "mallocx"
        );
        assert_eq!(
            frame_name("_Znwm", "/usr/lib/libsnmallocshim.so"),
            "operator new [libsnmallocshim.so]"
        );
        assert_eq!(
            frame_name("_ZdlPvm", "/usr/lib/libstdc++.so.6"),
            "operator delete [libstdc++.so.6]"
        );
        assert_eq!(
            frame_name("__libc_malloc", "/x/target/preload/libhz3_scale.so"),
            "__libc_malloc [libhz3_scale.so]"
        );
    }
}
