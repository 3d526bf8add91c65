//! Statistics: the always-on figures a production user reads (`hz3::stats()`, `mallinfo2`,
//! `malloc_stats`, `malloc_info`, `HZ3_STATS=1`), as opposed to the probes (event counts for
//! diagnosis, compiled out unless asked for).
//!
//! Counted only where hz3 already touches shared state (the central pool, the transfer cache, a
//! thread cache's refill and spill, the page source, the large box, the OS boundary), with relaxed
//! atomics in static arrays; never on the thread-cache hit path, which would cost every malloc.
//!
//! What is exact and what is an estimate:
//! * exact: objects out of the central pool per class (`central_out - central_in`, counted under
//!   its lock), objects in the transfer cache, runs in service / cached / returned, large objects,
//!   mapped address space;
//! * estimate: objects in thread caches. Each thread publishes a class's cache count when it
//!   refills or spills that class (and all of them when it flushes); malloc and free hits in
//!   between move objects between the cache and the program unseen. The calling thread publishes
//!   all its counts before a snapshot, so its own cache is exact; another thread's class can be
//!   off by up to that class's cache bound (`heap::CLASS_BYTES`, 64 KiB, at most 4 batches).

use crate::page_map::RUN_SIZE;
use crate::size_class::{self, NUM_CLASSES};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// One class's counters, alone on a cache line: classes are refilled by different threads.
#[repr(align(64))]
struct ClassCounters {
    /// Objects handed out by the central pool minus objects filed back (exact).
    out: AtomicUsize,
    /// Objects waiting in the transfer cache (exact).
    transfer: AtomicUsize,
    /// Sum of the thread caches' published counts (wrapping: a thread adds its count's change).
    cached: AtomicUsize,
}

static CLASSES: [ClassCounters; NUM_CLASSES] = [const {
    ClassCounters {
        out: AtomicUsize::new(0),
        transfer: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
    }
}; NUM_CLASSES];

/// Page-level counters: changed under the page source's lock or around a system call.
#[repr(align(64))]
struct PageCounters {
    runs_in_service: AtomicUsize,
    runs_cached: AtomicUsize,
    runs_returned: AtomicUsize,
    large_count: AtomicUsize,
    large_bytes: AtomicUsize,
    /// Free large extents still committed (the large box's dirty bytes).
    large_dirty: AtomicUsize,
    mapped: AtomicUsize,
    mapped_peak: AtomicUsize,
    resident_peak: AtomicUsize,
}

static PAGES: PageCounters = PageCounters {
    runs_in_service: AtomicUsize::new(0),
    runs_cached: AtomicUsize::new(0),
    runs_returned: AtomicUsize::new(0),
    large_count: AtomicUsize::new(0),
    large_bytes: AtomicUsize::new(0),
    large_dirty: AtomicUsize::new(0),
    mapped: AtomicUsize::new(0),
    mapped_peak: AtomicUsize::new(0),
    resident_peak: AtomicUsize::new(0),
};

/// `class`'s counters without a bounds check (the preload `.so` has no panicking call on an
/// allocation path).
#[inline(always)]
fn counters_of(class: usize) -> &'static ClassCounters {
    // SAFETY: callers pass classes from `class_of` or a run tag, both < NUM_CLASSES.
    unsafe { CLASSES.get_unchecked(class) }
}

// ---- The touch points: one call each from the box that already holds the shared state. ----

/// The central pool handed `n` objects of `class` out.
#[inline]
pub fn central_out(class: usize, n: u32) {
    counters_of(class).out.fetch_add(n as usize, Relaxed);
}

/// `n` objects of `class` were filed back into the central pool.
#[inline]
pub fn central_in(class: usize, n: u64) {
    counters_of(class).out.fetch_sub(n as usize, Relaxed);
}

/// The transfer cache took a batch of `n` objects (`n` < 0: gave one out).
#[inline]
pub fn transfer(class: usize, n: isize) {
    counters_of(class).transfer.fetch_add(n as usize, Relaxed);
}

/// One thread cache's counts as last published, per class (a field of its heap, all zero when
/// mapped).
#[repr(C)]
pub struct CacheSeen([u32; NUM_CLASSES]);

impl CacheSeen {
    /// Publishes a cache's count for `class`, `now` (after a refill, a spill, a flush).
    #[inline]
    pub fn publish(&mut self, class: usize, now: u32) {
        // SAFETY: as in `counters_of`.
        let seen = unsafe { self.0.get_unchecked_mut(class) };
        if now != *seen {
            let change = (now as usize).wrapping_sub(*seen as usize);
            counters_of(class).cached.fetch_add(change, Relaxed);
            *seen = now;
        }
    }
}

/// Where the page source found a run it hands out.
pub enum RunFrom {
    /// Its committed cache of empty runs.
    Cached,
    /// Its decommitted empty runs.
    Returned,
    /// Fresh address space.
    Fresh,
}

/// The page source handed a run out (to the central pool).
pub fn run_taken(from: RunFrom) {
    match from {
        RunFrom::Cached => PAGES.runs_cached.fetch_sub(1, Relaxed),
        RunFrom::Returned => PAGES.runs_returned.fetch_sub(1, Relaxed),
        RunFrom::Fresh => 0,
    };
    PAGES.runs_in_service.fetch_add(1, Relaxed);
    note_resident_peak();
}

/// An empty run came back to the page source, kept committed (`decommitted` false) or not.
pub fn run_given(decommitted: bool) {
    PAGES.runs_in_service.fetch_sub(1, Relaxed);
    if decommitted {
        PAGES.runs_returned.fetch_add(1, Relaxed)
    } else {
        PAGES.runs_cached.fetch_add(1, Relaxed)
    };
}

/// `n` cached runs were decommitted (malloc_trim).
pub fn runs_decommitted(n: usize) {
    PAGES.runs_cached.fetch_sub(n, Relaxed);
    PAGES.runs_returned.fetch_add(n, Relaxed);
}

/// Empty runs were unmapped (address space given back); `cached` committed and `returned`
/// decommitted ones are left (a munmap the kernel refused keeps the rest). Caller holds the page
/// source lock.
pub fn free_runs_left(cached: usize, returned: usize) {
    PAGES.runs_cached.store(cached, Relaxed);
    PAGES.runs_returned.store(returned, Relaxed);
}

/// A large object of `len` mapped bytes was handed out (`freed`: given back).
pub fn large(len: usize, freed: bool) {
    if freed {
        PAGES.large_count.fetch_sub(1, Relaxed);
        PAGES.large_bytes.fetch_sub(len, Relaxed);
    } else {
        PAGES.large_count.fetch_add(1, Relaxed);
        PAGES.large_bytes.fetch_add(len, Relaxed);
        note_resident_peak();
    }
}

/// The large box's free extents now hold `bytes` committed (set under its lock whenever it changes).
pub fn large_dirty(bytes: usize) {
    PAGES.large_dirty.store(bytes, Relaxed);
}

/// `len` bytes of address space were mapped (the OS boundary).
pub fn mapped(len: usize) {
    let now = PAGES.mapped.fetch_add(len, Relaxed) + len;
    PAGES.mapped_peak.fetch_max(now, Relaxed);
}

/// `len` bytes of address space were unmapped.
pub fn unmapped(len: usize) {
    PAGES.mapped.fetch_sub(len, Relaxed);
}

fn resident_now() -> usize {
    (PAGES.runs_in_service.load(Relaxed) + PAGES.runs_cached.load(Relaxed)) * RUN_SIZE
        + PAGES.large_bytes.load(Relaxed)
        + PAGES.large_dirty.load(Relaxed)
}

fn note_resident_peak() {
    PAGES.resident_peak.fetch_max(resident_now(), Relaxed);
}

// ---- The snapshot. ----

/// One size class's figures (objects, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClassStats {
    /// Object size of the class in bytes (what `usable_size` answers).
    pub size: usize,
    /// Objects held by the program (estimate; see [`Stats`]).
    pub live: usize,
    /// Free objects in thread caches (estimate).
    pub thread_cached: usize,
    /// Free objects in the transfer cache (exact; 0 in the `fast` lane).
    pub transfer_cached: usize,
}

/// A snapshot of hz3's memory, from [`crate::stats`]. Byte counts are usable sizes: a small
/// object counts its class size, a large one the whole 64 KiB runs it holds.
///
/// Exact: `large_*`, `active`, `resident`, `retained`, `returned`, `mapped*`, `transfer_cached`.
/// Estimates: `thread_cached` and so `allocated` and `small_allocated`: thread caches are counted
/// when they refill or spill a class, not on every malloc and free. The calling thread's own
/// cache is exact; each other thread's can be off by up to one class's cache bound (64 KiB) per
/// class it used since its last refill or spill of that class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// Live bytes held by the program: `small_allocated + large_allocated`.
    pub allocated: usize,
    /// Live bytes in small objects (class sizes): objects out of the central pool, less those
    /// in thread caches and the transfer cache.
    pub small_allocated: usize,
    /// Bytes in large objects (each whole 64 KiB runs, what `usable_size` answers).
    pub large_allocated: usize,
    /// Number of large objects.
    pub large_count: usize,
    /// Bytes of the runs in service (64 KiB each, holding small objects, cached or live) plus
    /// the large objects.
    pub active: usize,
    /// `active` plus `retained`: memory hz3 has not given back. An upper bound on the resident
    /// set of hz3's object memory (a run in service counts whole, touched or not); the page map
    /// and the thread heaps are in `mapped` only.
    pub resident: usize,
    /// The highest `resident` seen.
    pub resident_peak: usize,
    /// Empty runs and free large extents kept committed for reuse: what `trim` gives back to the
    /// kernel.
    pub retained: usize,
    /// Empty runs already given back to the kernel (decommitted), their address space kept.
    pub returned: usize,
    /// All address space hz3 has mapped: runs, their side memory, large objects, the page map,
    /// thread heaps, metadata.
    pub mapped: usize,
    /// The highest `mapped` seen.
    pub mapped_peak: usize,
    /// Bytes of free small objects in thread caches (estimate).
    pub thread_cached: usize,
    /// Bytes of free small objects in the transfer cache.
    pub transfer_cached: usize,
    /// Per size class, indexed by class (smallest first).
    #[cfg_attr(feature = "serde", serde(serialize_with = "serialize_classes"))]
    pub classes: [ClassStats; NUM_CLASSES],
}

#[cfg(feature = "serde")]
fn serialize_classes<S: serde::Serializer>(
    classes: &[ClassStats; NUM_CLASSES],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(classes.iter())
}

/// Reads every counter. Callers publish their own thread's cache first
/// (`lifecycle::current_stats`), which makes that part exact.
pub fn snapshot() -> Stats {
    let mut classes = [ClassStats::default(); NUM_CLASSES];
    let (mut small, mut thread_cached, mut transfer_cached) = (0, 0, 0);
    for (class, (figures, counters)) in classes.iter_mut().zip(CLASSES.iter()).enumerate() {
        let size = size_class::size_of(class);
        let out = counters.out.load(Relaxed) as isize;
        let transfer = (counters.transfer.load(Relaxed) as isize).max(0) as usize;
        let cached = (counters.cached.load(Relaxed) as isize).max(0) as usize;
        // Relaxed counters read one after another may disagree for a moment: clamp at zero.
        let live = (out - transfer as isize - cached as isize).max(0) as usize;
        *figures = ClassStats {
            size,
            live,
            thread_cached: cached,
            transfer_cached: transfer,
        };
        small += live * size;
        thread_cached += cached * size;
        transfer_cached += transfer * size;
    }
    let large_bytes = PAGES.large_bytes.load(Relaxed);
    let in_service = PAGES.runs_in_service.load(Relaxed) * RUN_SIZE;
    let retained = PAGES.runs_cached.load(Relaxed) * RUN_SIZE + PAGES.large_dirty.load(Relaxed);
    let resident = in_service + retained + large_bytes;
    Stats {
        allocated: small + large_bytes,
        small_allocated: small,
        large_allocated: large_bytes,
        large_count: PAGES.large_count.load(Relaxed),
        active: in_service + large_bytes,
        resident,
        resident_peak: PAGES.resident_peak.load(Relaxed).max(resident),
        retained,
        returned: PAGES.runs_returned.load(Relaxed) * RUN_SIZE,
        mapped: PAGES.mapped.load(Relaxed),
        mapped_peak: PAGES.mapped_peak.load(Relaxed),
        thread_cached,
        transfer_cached,
        classes,
    }
}

// ---- Writers: into a stack buffer, out through write(2) or fwrite; never through malloc, and
// without core::fmt (the preload `.so` links none of it: `tests/preload_no_std.rs`). ----

/// Where a report goes.
#[derive(Clone, Copy)]
pub enum Sink {
    Fd(libc::c_int),
    #[cfg_attr(not(feature = "preload"), allow(dead_code))]
    File(*mut libc::FILE),
}

/// A buffered writer that allocates nothing (fwrite may allocate the FILE's own buffer, through
/// malloc, which is fine: no hz3 lock is held while writing). Every index is checked with `get`,
/// so nothing here can panic.
struct Out {
    sink: Sink,
    buf: [u8; 1024],
    len: usize,
    failed: bool,
}

impl Out {
    fn new(sink: Sink) -> Out {
        Out {
            sink,
            buf: [0; 1024],
            len: 0,
            failed: false,
        }
    }

    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len && !self.failed {
            let rest = self.buf.get(done..self.len).unwrap_or(&[]);
            // SAFETY: writes initialised bytes of our buffer to a descriptor or FILE the caller gave.
            let n = unsafe {
                match self.sink {
                    Sink::Fd(fd) => libc::write(fd, rest.as_ptr().cast(), rest.len()),
                    Sink::File(f) => libc::fwrite(rest.as_ptr().cast(), 1, rest.len(), f) as isize,
                }
            };
            if n <= 0 {
                // EINTR on a descriptor is retried; anything else ends the report.
                let interrupted = matches!(self.sink, Sink::Fd(_))
                    && n < 0
                    // SAFETY: reads this thread's errno.
                    && unsafe { *libc::__errno_location() } == libc::EINTR;
                self.failed |= !interrupted;
            } else {
                done += n as usize;
            }
        }
        self.len = 0;
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// `s`, then spaces up to `width`.
    fn left(&mut self, s: &str, width: usize) {
        self.str(s);
        self.spaces(width.saturating_sub(s.len()));
    }

    fn spaces(&mut self, n: usize) {
        for _ in 0..n {
            self.bytes(b" ");
        }
    }

    fn num(&mut self, n: usize) {
        self.right(n, 0);
    }

    /// `n` in decimal, right-aligned in `width` columns.
    fn right(&mut self, n: usize, width: usize) {
        let mut digits = [0u8; 20];
        let digits = ::probes::dump::decimal(n as u64, &mut digits);
        self.spaces(width.saturating_sub(digits.len()));
        self.bytes(digits);
    }

    /// `bytes` in MiB with one decimal, right-aligned in `width` columns.
    fn mib(&mut self, bytes: usize, width: usize) {
        const MIB: usize = 1 << 20;
        let tenths = bytes / MIB * 10 + bytes % MIB * 10 / MIB;
        let mut digits = [0u8; 20];
        let whole = ::probes::dump::decimal((tenths / 10) as u64, &mut digits);
        self.spaces(width.saturating_sub(whole.len() + 2));
        self.bytes(whole);
        self.bytes(&[b'.', b'0' + (tenths % 10) as u8]);
    }

    /// ` name="n"` (malloc_info's XML).
    #[cfg_attr(not(feature = "preload"), allow(dead_code))]
    fn attr(&mut self, name: &str, n: usize) {
        self.str(" ");
        self.str(name);
        self.str("=\"");
        self.num(n);
        self.str("\"");
    }

    fn finish(mut self) -> bool {
        self.flush();
        !self.failed
    }
}

/// The readable summary (`malloc_stats`, `HZ3_STATS=1`); false if the sink refused it.
pub fn write_summary(s: &Stats, sink: Sink) -> bool {
    let mut out = Out::new(sink);
    out.str("hz3 allocator, lane ");
    out.str(crate::LANE);
    out.str(": statistics\n");
    let rows: [(&str, usize, &str); 10] = [
        (
            "allocated",
            s.allocated,
            "live bytes held by the program (small part estimated)",
        ),
        ("  small", s.small_allocated, "in size classes"),
        ("  large", s.large_allocated, "in large objects"),
        ("active", s.active, "runs in service + large objects"),
        ("resident", s.resident, "active + retained (an upper bound)"),
        (
            "retained",
            s.retained,
            "empty runs and free large extents kept committed (malloc_trim returns them)",
        ),
        (
            "returned",
            s.returned,
            "empty runs decommitted, address space kept",
        ),
        ("mapped", s.mapped, "all address space hz3 holds"),
        (
            "thread caches",
            s.thread_cached,
            "free objects cached per thread (estimate)",
        ),
        (
            "transfer cache",
            s.transfer_cached,
            "free objects in whole batches",
        ),
    ];
    for (name, bytes, meaning) in rows {
        out.str("  ");
        out.left(name, 15);
        out.right(bytes, 15);
        out.str(" B ");
        out.mib(bytes, 10);
        out.str(" MiB  ");
        out.str(meaning);
        out.str("\n");
    }
    out.str("  peaks          resident ");
    out.num(s.resident_peak);
    out.str(" B, mapped ");
    out.num(s.mapped_peak);
    out.str(" B; ");
    out.num(s.large_count);
    out.str(" large objects\n");
    out.str("  class   size        live  thread-cached  transfer-cached\n");
    for (class, c) in s.classes.iter().enumerate() {
        if c.live + c.thread_cached + c.transfer_cached > 0 {
            out.str("  ");
            out.right(class, 5);
            out.right(c.size, 7);
            out.right(c.live, 12);
            out.right(c.thread_cached, 15);
            out.right(c.transfer_cached, 17);
            out.str("\n");
        }
    }
    out.finish()
}

/// glibc's `malloc_info` XML shape: one `<heap>` (hz3's size classes) whose `<sizes>` lists the
/// free objects cached per class, then the totals; the mmap total is the large objects.
#[cfg(feature = "preload")]
pub fn write_xml(s: &Stats, sink: Sink) -> bool {
    let m = mallinfo(s);
    let mut out = Out::new(sink);
    out.str("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    let mut from = 1;
    for c in s.classes.iter() {
        let count = c.thread_cached + c.transfer_cached;
        if count > 0 {
            out.str("  <size");
            out.attr("from", from);
            out.attr("to", c.size);
            out.attr("total", count * c.size);
            out.attr("count", count);
            out.str("/>\n");
        }
        from = c.size + 1;
    }
    out.str("</sizes>\n");
    let totals = |out: &mut Out, mmap: bool, current: usize| {
        let rows: [(&str, &str, usize, usize); 3] = [
            ("fast", "total", m.smblks, m.fsmblks),
            ("rest", "total", m.ordblks, s.retained + s.returned),
            ("mmap", "total", m.hblks, m.hblkhd),
        ];
        for (kind, tag, count, size) in rows {
            if kind != "mmap" || mmap {
                out.str("<");
                out.str(tag);
                out.str(" type=\"");
                out.str(kind);
                out.str("\"");
                out.attr("count", count);
                out.attr("size", size);
                out.str("/>\n");
            }
        }
        let sizes: [(&str, &str, usize); 4] = [
            ("system", "current", current),
            ("system", "max", s.resident_peak),
            ("aspace", "total", s.mapped),
            ("aspace", "mprotect", s.mapped),
        ];
        for (tag, kind, size) in sizes {
            out.str("<");
            out.str(tag);
            out.str(" type=\"");
            out.str(kind);
            out.str("\"");
            out.attr("size", size);
            out.str("/>\n");
        }
    };
    totals(&mut out, false, m.arena);
    out.str("</heap>\n");
    totals(&mut out, true, s.resident);
    out.str("</malloc>\n");
    out.finish()
}

/// glibc's `mallinfo2` fields, with hz3's meanings (see `c_abi::mallinfo2`).
#[cfg(feature = "preload")]
pub struct MallInfoFigures {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

#[cfg(feature = "preload")]
pub fn mallinfo(s: &Stats) -> MallInfoFigures {
    let arena = s.resident - s.large_allocated;
    MallInfoFigures {
        arena,
        ordblks: (s.retained + s.returned) / RUN_SIZE,
        smblks: s
            .classes
            .iter()
            .map(|c| c.thread_cached + c.transfer_cached)
            .sum(),
        hblks: s.large_count,
        hblkhd: s.large_allocated,
        fsmblks: s.thread_cached + s.transfer_cached,
        uordblks: s.small_allocated,
        fordblks: arena.saturating_sub(s.small_allocated),
        keepcost: s.retained,
    }
}

// ---- HZ3_STATS: the summary at exit. ----

/// Reads `HZ3_STATS` (once, at load): true for "1" (print the summary on stderr at exit);
/// false for "0" or unset, and for anything else after one warning line.
pub fn wanted_at_exit() -> bool {
    // SAFETY: getenv returns null or a NUL-terminated string that lives as long as the environment.
    let value = unsafe { libc::getenv(c"HZ3_STATS".as_ptr()) };
    if value.is_null() {
        return false;
    }
    // SAFETY: non-null, NUL-terminated (above).
    match unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes() {
        b"1" => true,
        b"0" => false,
        other => {
            warn_bad_value(other);
            false
        }
    }
}

/// `hz3: HZ3_STATS="<value>" ignored: expected 1 or 0`, the value cut to 40 bytes, control
/// characters shown as '?', so the warning stays one line.
fn warn_bad_value(value: &[u8]) {
    let mut out = Out::new(Sink::Fd(2));
    out.str("hz3: HZ3_STATS=\"");
    for &b in value.iter().take(40) {
        let shown = if b.is_ascii_graphic() || b == b' ' {
            b
        } else {
            b'?'
        };
        out.bytes(&[shown]);
    }
    if value.len() > 40 {
        out.str("...");
    }
    out.str("\" ignored: expected 1 (print statistics at exit) or 0\n");
    out.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_each_figure_and_the_used_classes() {
        let mut s = snapshot();
        s.allocated = 3 << 20;
        s.classes[6].live = 7;
        let mut pipe = [0 as libc::c_int; 2];
        // SAFETY: pipe writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        assert!(write_summary(&s, Sink::Fd(pipe[1])));
        // SAFETY: closes our own write end, then reads into a local buffer.
        let text = unsafe {
            libc::close(pipe[1]);
            let mut buf = std::vec![0u8; 64 * 1024];
            let n = libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len());
            libc::close(pipe[0]);
            buf.truncate(n.max(0) as usize);
            std::string::String::from_utf8(buf).unwrap()
        };
        assert!(text.starts_with("hz3 allocator, lane "), "{text}");
        assert!(
            text.contains("  allocated              3145728 B        3.0 MiB  live"),
            "{text}"
        );
        assert!(text.contains("\n      6    112           7"), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.contains(" MiB ")).count(),
            10,
            "{text}"
        );
    }
}
