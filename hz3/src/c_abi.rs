//! The C malloc ABI for LD_PRELOAD (feature `preload`), with glibc's semantics for edge cases.
//! Exports are exactly the malloc family, glibc's direct entry points to it (`__libc_*`, `cfree`),
//! plus `hz3_*`.

use crate::api;
use crate::os::{page_size, set_errno};
use core::ffi::{c_char, c_int, c_void};
use core::ptr;

#[inline]
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    api::malloc_enomem(size).cast()
}

#[no_mangle]
pub extern "C" fn free(p: *mut c_void) {
    api::free(p.cast())
}

#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    or_enomem(api::calloc(n, size))
}

#[no_mangle]
pub extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    let q = api::realloc(p.cast(), size);
    if q.is_null() && size != 0 {
        set_errno(libc::ENOMEM);
    }
    q.cast()
}

#[no_mangle]
pub extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => realloc(p, total),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// memalign family core: `align` must already be a power of two.
fn aligned(align: usize, size: usize) -> *mut c_void {
    if align > isize::MAX as usize / 2 + 1 {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    or_enomem(api::aligned_alloc(align, size))
}

/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let p = api::aligned_alloc(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a writable out-pointer.
    unsafe { *out = p.cast() };
    0
}

#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // glibc accepts any size, including one that is not a multiple of the alignment.
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // glibc rounds a non-power-of-two alignment up to the next power of two.
    let align = align.max(1);
    match align.checked_next_power_of_two() {
        Some(a) => aligned(a, size),
        None => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(page_size(), size)
}

#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.checked_add(page - 1) {
        Some(n) => aligned(page, (n & !(page - 1)).max(page)),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// glibc's direct entry points: runtimes and debugger helpers call these by name, bypassing
/// interposition of `malloc`; each must be the same allocator as `malloc`/`free`, or a pointer
/// crosses between two heaps. Plain forwarding functions, not symbol aliases: Rust has no stable
/// alias attribute, and with LTO each compiles to a jump.
#[no_mangle]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc(size)
}

#[no_mangle]
pub extern "C" fn __libc_free(p: *mut c_void) {
    free(p)
}

#[no_mangle]
pub extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    calloc(n, size)
}

#[no_mangle]
pub extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    realloc(p, size)
}

#[no_mangle]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}

#[no_mangle]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc(size)
}

#[no_mangle]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc(size)
}

/// The old SunOS name of `free`, still exported by glibc.
#[no_mangle]
pub extern "C" fn cfree(p: *mut c_void) {
    free(p)
}

#[no_mangle]
pub extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    api::usable_size(p.cast())
}

#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    api::trim() as c_int
}

#[no_mangle]
pub extern "C" fn mallopt(_param: c_int, _value: c_int) -> c_int {
    // Accepted and ignored: hz3 has no run-time knobs; 1 is glibc's "success".
    1
}

/// glibc's `struct mallinfo` (int fields).
#[repr(C)]
#[derive(Default)]
pub struct MallInfo {
    pub arena: c_int,
    pub ordblks: c_int,
    pub smblks: c_int,
    pub hblks: c_int,
    pub hblkhd: c_int,
    pub usmblks: c_int,
    pub fsmblks: c_int,
    pub uordblks: c_int,
    pub fordblks: c_int,
    pub keepcost: c_int,
}

/// glibc's `struct mallinfo2` (size_t fields).
#[repr(C)]
#[derive(Default)]
pub struct MallInfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

/// glibc's fields with hz3's figures (`hz3::Stats` documents each): `arena` the small-object
/// heap not given back (runs in service + retained runs), `ordblks` its empty runs (retained or
/// decommitted), `smblks`/`fsmblks` free objects (count/bytes) in the thread and transfer caches
/// (glibc's fastbins), `hblks`/`hblkhd` large objects (count/bytes: whole runs from the large box's
/// extent cache, standing where glibc counts its mmapped chunks), `usmblks` 0 (as glibc), `uordblks` live bytes in small objects (the
/// thread caches of threads other than the caller are estimates), `fordblks` = `arena` -
/// `uordblks`, `keepcost` what `malloc_trim` would give back.
#[no_mangle]
pub extern "C" fn mallinfo2() -> MallInfo2 {
    let m = crate::stats::mallinfo(&crate::lifecycle::current_stats());
    MallInfo2 {
        arena: m.arena,
        ordblks: m.ordblks,
        smblks: m.smblks,
        hblks: m.hblks,
        hblkhd: m.hblkhd,
        usmblks: 0,
        fsmblks: m.fsmblks,
        uordblks: m.uordblks,
        fordblks: m.fordblks,
        keepcost: m.keepcost,
    }
}

/// `mallinfo2` truncated to int, as glibc's `mallinfo` does (figures past 2 GiB wrap).
#[no_mangle]
pub extern "C" fn mallinfo() -> MallInfo {
    let m = mallinfo2();
    MallInfo {
        arena: m.arena as c_int,
        ordblks: m.ordblks as c_int,
        smblks: m.smblks as c_int,
        hblks: m.hblks as c_int,
        hblkhd: m.hblkhd as c_int,
        usmblks: m.usmblks as c_int,
        fsmblks: m.fsmblks as c_int,
        uordblks: m.uordblks as c_int,
        fordblks: m.fordblks as c_int,
        keepcost: m.keepcost as c_int,
    }
}

/// The statistics summary on stderr (what `HZ3_STATS=1` prints at exit).
#[no_mangle]
pub extern "C" fn malloc_stats() {
    crate::stats::write_summary(
        &crate::lifecycle::current_stats(),
        crate::stats::Sink::Fd(2),
    );
}

/// glibc's XML statistics (`<malloc version="1">`) written to `stream`; 0, or EINVAL when
/// `options` is not 0 (as glibc), or -1 when the stream refused the text.
///
/// # Safety
/// `stream` is an open, writable `FILE*`.
#[no_mangle]
pub unsafe extern "C" fn malloc_info(options: c_int, stream: *mut libc::FILE) -> c_int {
    if options != 0 {
        return libc::EINVAL;
    }
    let stats = crate::lifecycle::current_stats();
    if crate::stats::write_xml(&stats, crate::stats::Sink::File(stream)) {
        0
    } else {
        -1
    }
}

/// "fast" or "scale": lets tests prove which allocator answers.
#[no_mangle]
pub extern "C" fn hz3_lane() -> *const c_char {
    LANE_C.as_ptr().cast()
}

/// `crate::LANE`, NUL-terminated.
const LANE_C: [u8; crate::LANE.len() + 1] = {
    let mut s = [0u8; crate::LANE.len() + 1];
    let mut i = 0;
    while i < crate::LANE.len() {
        s[i] = crate::LANE.as_bytes()[i];
        i += 1;
    }
    s
};

/// Writes a probes dump to `path` (NULL: `HZ3_PROBES_OUT`, else stderr); 0 on success, -1 on error.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[cfg(feature = "probes")]
#[no_mangle]
pub unsafe extern "C" fn hz3_probes_dump(path: *const c_char) -> c_int {
    let target = if path.is_null() {
        crate::probes::default_target()
    } else {
        // SAFETY: per the contract, a NUL-terminated string.
        unsafe { core::ffi::CStr::from_ptr(path) }
    };
    if crate::probes::dump(target) {
        0
    } else {
        -1
    }
}

/// Zeroes every probe counter.
#[cfg(feature = "probes")]
#[no_mangle]
pub extern "C" fn hz3_probes_reset() {
    crate::probes::reset()
}
