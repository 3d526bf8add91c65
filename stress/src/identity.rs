//! Which allocator answers this process: hz3 exports `hz3_lane()`, anything else does not.

use std::ffi::CStr;

/// `Some(lane)` when hz3 is loaded (preloaded or linked), `None` otherwise.
pub fn hz3_lane() -> Option<String> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"hz3_lane".as_ptr()) };
    if sym.is_null() {
        return None;
    }
    // SAFETY: hz3 exports `const char *hz3_lane(void)`, returning a static NUL-terminated string.
    let lane_fn: extern "C" fn() -> *const libc::c_char = unsafe { std::mem::transmute(sym) };
    let name = lane_fn();
    if name.is_null() {
        return Some(String::from("(null)"));
    }
    // SAFETY: non-null static C string from hz3.
    Some(
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
    )
}
