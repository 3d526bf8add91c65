//! The operating-system boundary: every mmap/munmap/madvise/futex the allocator makes goes through
//! here (so the probes see each one), plus the fail-fast abort.

use crate::probes::{self, Event};
use core::ptr;

pub const PAGE: usize = 4096;

/// Prints `hz3 <box>: <what>` to stderr and aborts. Used when corruption or misuse is detected.
#[cold]
#[inline(never)]
pub fn fail(box_name: &str, what: &str) -> ! {
    fail_lines(box_name, what, &[])
}

/// As `fail`, naming the offending address: `hz3 <box>: <what> at 0x<hex>`. Formats by hand so
/// that it allocates nothing and needs no `core::fmt`.
#[cold]
#[inline(never)]
pub fn fail_at(box_name: &str, what: &str, addr: usize) -> ! {
    const DIGITS: usize = usize::BITS as usize / 4;
    let mut hex = [0u8; DIGITS];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(addr >> (4 * (DIGITS - 1 - i))) & 0xf];
    }
    // Leading zeros dropped, as C's %p prints, so a test can match the address its program printed.
    let skip = (addr.leading_zeros() as usize / 4).min(DIGITS - 1);
    fail_lines(box_name, what, &[b" at 0x", &hex[skip..]])
}

// Inlined into both callers so that plain builds (no `fail_at`) keep `fail` as their one symbol.
#[inline(always)]
fn fail_lines(box_name: &str, what: &str, tail: &[&[u8]]) -> ! {
    let mut buf = [0u8; 256];
    let mut n = 0;
    let head = [
        b"hz3 ".as_slice(),
        box_name.as_bytes(),
        b": ",
        what.as_bytes(),
    ];
    for part in head.iter().chain(tail).chain([b"\n".as_slice()].iter()) {
        for &b in *part {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    }
    // SAFETY: writes `n` initialised bytes of a stack buffer to fd 2, then abort() never returns.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::abort()
    }
}

/// Maps `len` bytes of fresh zeroed read-write memory; null on failure. `noreserve` skips the
/// commit charge for tables that are touched sparsely.
pub fn map(len: usize, noreserve: bool) -> *mut u8 {
    let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    if noreserve {
        flags |= libc::MAP_NORESERVE;
    }
    // SAFETY: anonymous private mapping at a kernel-chosen address touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    probes::here(|c| {
        c.add(Event::MmapCalls, 1);
        c.add(Event::MmapBytes, len as u64);
    });
    p.cast()
}

/// Maps `len` bytes whose start is a multiple of `align` (a power of two >= PAGE), trimming the
/// over-mapped head and tail; null on failure.
pub fn map_aligned(len: usize, align: usize, noreserve: bool) -> *mut u8 {
    if align <= PAGE {
        return map(len, noreserve);
    }
    let Some(total) = len.checked_add(align - PAGE) else {
        return ptr::null_mut();
    };
    let raw = map(total, noreserve);
    if raw.is_null() {
        return raw;
    }
    let start = raw as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = total - head - len;
    if head > 0 {
        unmap(raw, head);
    }
    if tail > 0 {
        unmap((aligned + len) as *mut u8, tail);
    }
    aligned as *mut u8
}

pub fn unmap(p: *mut u8, len: usize) {
    // SAFETY: callers pass a range they mapped through `map` and no longer reference.
    let rc = unsafe { libc::munmap(p.cast(), len) };
    if rc != 0 {
        fail("page_source", "munmap failed on a range hz3 mapped");
    }
    probes::here(|c| {
        c.add(Event::MunmapCalls, 1);
        c.add(Event::MunmapBytes, len as u64);
    });
}

/// Gives the physical pages of `[p, p+len)` back to the kernel; the range stays mapped and reads
/// back as zeroes.
pub fn decommit(p: *mut u8, len: usize) {
    // SAFETY: the range is a whole run hz3 mapped and nobody holds objects in it.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) };
    probes::here(|c| {
        c.add(Event::MadviseCalls, 1);
        c.add(Event::MadviseBytes, len as u64);
    });
}

/// Sleeps while `*word == expected` (FUTEX_WAIT_PRIVATE); spurious returns are fine for callers.
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: the futex word is a live AtomicU32; a null timeout waits until woken.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes one waiter on `word`.
pub fn futex_wake_one(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: FUTEX_WAKE only reads the address to find waiters.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Monotonic nanoseconds (vDSO, no syscall on x86-64); used only on contended lock paths with probes on.
#[allow(dead_code)]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
