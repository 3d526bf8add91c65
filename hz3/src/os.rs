//! The operating-system boundary: every mmap/munmap/madvise/futex the allocator makes goes through
//! here (so the probes see each one), plus the fail-fast abort.

use crate::probes::{self, Event};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The kernel's page size, read at the first call (4 KiB on x86-64; 16 or 64 KiB on some arm64
/// and POWER kernels). hz3's own granules (runs of `page_map::RUN_SIZE` = 64 KiB) are design
/// constants and a multiple of every Linux page size up to 64 KiB.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

#[inline]
pub fn page_size() -> usize {
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => read_page_size(),
        known => known,
    }
}

#[cold]
fn read_page_size() -> usize {
    // getauxval sets errno when the entry is missing; malloc must not leave errno changed.
    // SAFETY: getauxval and sysconf only read process state.
    let size = keep_errno(|| unsafe {
        match libc::getauxval(libc::AT_PAGESZ) as usize {
            0 => libc::sysconf(libc::_SC_PAGESIZE).max(0) as usize,
            found => found,
        }
    });
    // A nonsense answer would break every length computed from it; 4 KiB is the Linux minimum.
    let size = if size.is_power_of_two() && size >= 4096 {
        size
    } else {
        4096
    };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Sets this thread's errno (the C ABI's failures).
#[inline]
pub fn set_errno(code: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() = code };
}

/// Runs `f` (which calls libc) and puts the thread's errno back as it was: `free` and a
/// successful `malloc` leave errno unchanged (POSIX.1-2024, glibc >= 2.33).
#[inline]
pub fn keep_errno<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *slot };
    let r = f();
    // SAFETY: as above.
    unsafe { *slot = saved };
    r
}

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

// Inlined into its callers so that plain builds (no `fail_at`) keep `fail` as their one symbol.
#[inline(always)]
pub(crate) fn fail_lines(box_name: &str, what: &str, tail: &[&[u8]]) -> ! {
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
    let flags = if noreserve { libc::MAP_NORESERVE } else { 0 };
    // A refused mapping may be retried (after unmapping cached runs) and succeed: errno stays.
    let p = mmap_anon(ptr::null_mut(), len, flags);
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    crate::stats::mapped(len);
    probes::here(|c| {
        c.add(Event::MmapCalls, 1);
        c.add(Event::MmapBytes, len as u64);
    });
    p.cast()
}

/// A read-write private anonymous mapping of `len` bytes at `hint` (null: the kernel chooses);
/// errno is kept. `flags` adds to MAP_PRIVATE | MAP_ANONYMOUS; none may be MAP_FIXED, which would
/// replace whatever is mapped at `hint`.
fn mmap_anon(hint: *mut u8, len: usize, flags: libc::c_int) -> *mut libc::c_void {
    debug_assert!(flags & libc::MAP_FIXED == 0);
    // SAFETY: without MAP_FIXED an anonymous mapping only fills free address space (with
    // MAP_FIXED_NOREPLACE it fails rather than replace), so it touches no existing memory.
    keep_errno(|| unsafe {
        libc::mmap(
            hint.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    })
}

/// Maps `len` bytes (a multiple of the page size) whose start is a multiple of `align` (a power
/// of two), trimming the over-mapped head and tail; null on failure. A trim the kernel refuses
/// (the mapping-count limit) leaves that piece mapped and untouched: address space only, never
/// handed out.
pub fn map_aligned(len: usize, align: usize, noreserve: bool) -> *mut u8 {
    let page = page_size();
    if align <= page {
        return map(len, noreserve);
    }
    let Some(total) = len.checked_add(align - page) else {
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
    // A refused trim keeps the piece mapped; it is never touched, so it costs address space only.
    if head > 0 {
        let _ = unmap(raw, head);
    }
    if tail > 0 {
        let _ = unmap((aligned + len) as *mut u8, tail);
    }
    aligned as *mut u8
}

/// Unmaps `[p, p+len)`; false if the kernel refused (typically ENOMEM: splitting a mapping would
/// pass `vm.max_map_count`). A refusal is not corruption: the caller keeps the range (see
/// `decommit`) and may reuse it.
#[must_use = "a refused munmap leaves the range mapped: keep it or decommit it"]
pub fn unmap(p: *mut u8, len: usize) -> bool {
    // SAFETY: callers pass a range they mapped through `map` and no longer reference.
    let rc = keep_errno(|| unsafe { libc::munmap(p.cast(), len) });
    if rc != 0 {
        probes::here(|c| c.add(Event::MunmapRefused, 1));
        return false;
    }
    crate::stats::unmapped(len);
    probes::here(|c| {
        c.add(Event::MunmapCalls, 1);
        c.add(Event::MunmapBytes, len as u64);
    });
    true
}

/// Unmaps `[p, p+len)`, or if the kernel refuses, gives its pages back and leaves it mapped.
/// True if it was unmapped.
pub fn unmap_or_decommit(p: *mut u8, len: usize) -> bool {
    if unmap(p, len) {
        return true;
    }
    decommit(p, len);
    false
}

/// What became of a refused `remap`'s target range.
pub enum RemapRefused {
    /// `[to, to+new_len)` is this process's fresh anonymous mapping again (it reads as zeroes).
    TargetKept,
    /// The range could not be taken back (another mapping sits there now, or the kernel refused
    /// again): the caller must forget it.
    TargetLost,
}

/// Moves (or grows in place) the mapping at `[old, old+old_len)` onto `[to, to+new_len)`, which the
/// caller mapped and gives up: the pages move with their page tables, nothing is copied. On a
/// refusal `old` is as it was, but MREMAP_FIXED may already have unmapped `to` (the kernel unmaps
/// the target before it checks the source), so the range is mapped again without replacing
/// anything, or reported lost.
pub fn remap(
    old: *mut u8,
    old_len: usize,
    new_len: usize,
    to: *mut u8,
) -> Result<(), RemapRefused> {
    // SAFETY: both ranges are hz3's mappings; MREMAP_FIXED replaces only `to`'s range, which the
    // caller owns and has not handed out.
    let q = keep_errno(|| unsafe {
        libc::mremap(
            old.cast(),
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to.cast::<libc::c_void>(),
        )
    });
    if q == libc::MAP_FAILED {
        let back = mmap_anon(to, new_len, libc::MAP_FIXED_NOREPLACE);
        if back == to.cast() {
            return Err(RemapRefused::TargetKept);
        }
        if back != libc::MAP_FAILED {
            // A kernel without MAP_FIXED_NOREPLACE placed it elsewhere: not the range we lost, and
            // never counted as mapped, so it goes back without `unmap`'s bookkeeping.
            // SAFETY: the mapping was made just now and nothing refers to it.
            keep_errno(|| unsafe { libc::munmap(back, new_len) });
        }
        // EEXIST: something is mapped at `to` — still ours if the kernel refused before unmapping
        // it, but that cannot be told apart from a mapping another thread made in the hole.
        crate::stats::unmapped(new_len);
        return Err(RemapRefused::TargetLost);
    }
    // The target's range was counted when it was mapped; the source's is gone.
    crate::stats::unmapped(old_len);
    probes::here(|c| {
        c.add(Event::MremapCalls, 1);
        c.add(Event::MremapBytes, new_len as u64);
    });
    Ok(())
}

/// Gives the physical pages of `[p, p+len)` back to the kernel; the range stays mapped and reads
/// back as zeroes.
pub fn decommit(p: *mut u8, len: usize) {
    // SAFETY: the range is a whole run hz3 mapped and nobody holds objects in it.
    keep_errno(|| unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) });
    probes::here(|c| {
        c.add(Event::MadviseCalls, 1);
        c.add(Event::MadviseBytes, len as u64);
    });
}

/// Sleeps while `*word == expected` (FUTEX_WAIT_PRIVATE); spurious returns are fine for callers.
/// The kernel's EAGAIN or EINTR never reaches errno (see `futex`).
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: the futex word is a live AtomicU32; a null timeout waits until woken.
    unsafe { futex(word, libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, expected) };
}

/// Wakes one waiter on `word`.
pub fn futex_wake_one(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: FUTEX_WAKE only reads the address to find waiters.
    unsafe { futex(word, libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1) };
}

/// futex(word, op, val, NULL) as a raw system call: libc's `syscall()` writes the kernel's error
/// (EAGAIN when the word already changed, EINTR) into errno, and `free` must leave errno alone.
///
/// # Safety
/// `word` must be a live futex word; `op` an operation that reads no further arguments.
#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "portable-fallbacks")
))]
#[inline]
unsafe fn futex(word: &core::sync::atomic::AtomicU32, op: i32, val: u32) {
    // SAFETY: the Linux x86-64 system-call convention: number in rax, arguments in rdi, rsi, rdx,
    // r10; the kernel clobbers rcx and r11 and returns in rax. No stack, no errno.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_futex => _,
            in("rdi") word.as_ptr(),
            in("rsi") op,
            in("rdx") val,
            in("r10") 0usize,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

/// Elsewhere (and with `portable-fallbacks`, which tests this path on x86-64): libc's `syscall()`, with
/// errno saved and restored around it.
///
/// # Safety
/// As the raw variant above.
#[cfg(not(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "portable-fallbacks")
)))]
#[inline]
unsafe fn futex(word: &core::sync::atomic::AtomicU32, op: i32, val: u32) {
    // SAFETY: per the contract; a null timeout for FUTEX_WAIT, ignored by FUTEX_WAKE.
    keep_errno(|| unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            val,
            ptr::null::<libc::timespec>(),
        )
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU32;

    fn errno() -> i32 {
        // SAFETY: this thread's errno slot.
        unsafe { *libc::__errno_location() }
    }

    fn set_errno(v: i32) {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = v };
    }

    /// A futex wait on a word that no longer holds the expected value returns at once with the
    /// kernel's EAGAIN: the case a contended lock meets when the holder releases just before the
    /// waiter sleeps. errno must not see it (with `portable-fallbacks`: the libc path, restored).
    #[test]
    fn futex_leaves_errno_alone() {
        let word = AtomicU32::new(7);
        set_errno(12345);
        futex_wait(&word, 8);
        assert_eq!(errno(), 12345, "futex_wait changed errno");
        futex_wake_one(&word);
        assert_eq!(errno(), 12345, "futex_wake_one changed errno");
    }

    #[test]
    fn mapping_calls_leave_errno_alone() {
        set_errno(12345);
        assert!(
            map(usize::MAX & !(page_size() - 1), false).is_null(),
            "an impossible mapping"
        );
        assert_eq!(errno(), 12345, "a refused mmap changed errno");
        let p = map(page_size(), false);
        assert!(!p.is_null());
        decommit(p, page_size());
        assert!(unmap(p, page_size()));
        assert_eq!(errno(), 12345);
        // A refused munmap (here: a misaligned start, EINVAL) and mremap keep it too.
        let odd = p.wrapping_add(1);
        assert!(!unmap(odd, page_size()));
        assert!(remap(odd, page_size(), page_size(), odd).is_err());
        assert_eq!(errno(), 12345);
    }

    #[test]
    fn page_size_is_the_kernels() {
        // SAFETY: sysconf only reads.
        let kernel = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert_eq!(page_size(), kernel);
    }
}
