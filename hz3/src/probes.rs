//! Probes glue: per-thread event counters, their merge, and the one-shot dump.
//!
//! Off (no `probes` feature): `Counters` is a zero-sized type and every `add` is an empty inline
//! function, so the plain `.so` holds no counter storage and no probe symbol.
//! On: each heap carries its own counters, bumped with a relaxed load + store by the owning thread
//! only (no RMW, no shared cache line); code without a heap (torn-down threads) uses one shared
//! table with fetch_add. Heaps merge into the exited book at thread exit; `snapshot` merges the
//! live ones at dump time. The JSON/CSV writer is the probes crate's.

pub use ::probes::{Event, LockSite, LockStat};
// `#[cfg(feature = "probes")]` rather than `if config::PROBES` below: the counter storage must not
// exist at all in a plain build (a zero-sized `Counters`, no symbols), so the items themselves differ.
#[cfg(feature = "probes")]
use ::probes::{lock_slot, LOCK_SLOTS};
#[cfg(feature = "probes")]
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub struct Counters {
    #[cfg(feature = "probes")]
    events: [AtomicU64; Event::COUNT],
    #[cfg(feature = "probes")]
    locks: [AtomicU64; LOCK_SLOTS],
    /// Written by several threads (the heap-less fallback): needs fetch_add.
    #[cfg(feature = "probes")]
    shared: bool,
}

#[cfg(feature = "probes")]
static SHARED: Counters = Counters {
    events: [const { AtomicU64::new(0) }; Event::COUNT],
    locks: [const { AtomicU64::new(0) }; LOCK_SLOTS],
    shared: true,
};
#[cfg(not(feature = "probes"))]
static SHARED: Counters = Counters {};

impl Counters {
    /// The table for code running without a heap.
    #[inline(always)]
    pub fn shared() -> &'static Counters {
        &SHARED
    }

    #[inline(always)]
    pub fn add(&self, event: Event, n: u64) {
        #[cfg(feature = "probes")]
        self.bump(&self.events[event.index()], n);
        #[cfg(not(feature = "probes"))]
        let _ = (event, n);
    }

    /// As `add`, for a heap's own counters on its thread's hot path: they are never the shared
    /// table, so the `shared` test (a load and a branch per event) is skipped.
    #[inline(always)]
    pub fn add_own(&self, event: Event, n: u64) {
        #[cfg(feature = "probes")]
        bump_unshared(&self.events[event.index()], n);
        #[cfg(not(feature = "probes"))]
        let _ = (event, n);
    }

    #[inline(always)]
    pub fn add_lock(&self, site: LockSite, stat: LockStat, n: u64) {
        #[cfg(feature = "probes")]
        self.bump(&self.locks[lock_slot(site, stat)], n);
        #[cfg(not(feature = "probes"))]
        let _ = (site, stat, n);
    }

    #[cfg(feature = "probes")]
    #[inline(always)]
    fn bump(&self, slot: &AtomicU64, n: u64) {
        if self.shared {
            slot.fetch_add(n, Ordering::Relaxed);
        } else {
            bump_unshared(slot, n);
        }
    }
}

/// A counter only its own thread writes: a relaxed load and store, no read-modify-write.
#[cfg(feature = "probes")]
#[inline(always)]
fn bump_unshared(slot: &AtomicU64, n: u64) {
    slot.store(
        slot.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Runs `f` on the calling thread's counters (its heap's, or the shared table). Compiled out when off.
#[inline(always)]
pub fn here(f: impl FnOnce(&Counters)) {
    #[cfg(feature = "probes")]
    match crate::lifecycle::current_heap() {
        // SAFETY: the calling thread's heap stays mapped and attached while it runs.
        Some(heap) => f(unsafe { &(*heap).counters }),
        None => f(Counters::shared()),
    }
    #[cfg(not(feature = "probes"))]
    let _ = f;
}

#[inline(always)]
pub fn lock_stat(site: LockSite, stat: LockStat, n: u64) {
    here(|c| c.add_lock(site, stat, n));
}

#[cfg(feature = "probes")]
pub use on::*;

#[cfg(feature = "probes")]
mod on {
    use super::*;
    use crate::heap::Heap;
    use crate::lock::Mutex;
    use ::probes::{Sink, Snapshot, ThreadRow};
    use core::ffi::CStr;

    /// Exited threads that keep their own row in the dump; later ones only reach the totals.
    const EXITED_ROWS: usize = 256;
    /// Rows in one dump: exited rows plus live threads up to this bound.
    const DUMP_ROWS: usize = 512;
    const EMPTY_ROW: ThreadRow = ThreadRow {
        tid: 0,
        events: [0; Event::COUNT],
        locks: [0; LOCK_SLOTS],
    };

    struct Book {
        exited: ThreadRow,
        exited_rows: [ThreadRow; EXITED_ROWS],
        exited_len: usize,
        scratch: [ThreadRow; DUMP_ROWS],
        totals: ThreadRow,
    }

    static BOOK: Mutex<Book> = Mutex::new(
        None,
        Book {
            exited: EMPTY_ROW,
            exited_rows: [EMPTY_ROW; EXITED_ROWS],
            exited_len: 0,
            scratch: [EMPTY_ROW; DUMP_ROWS],
            totals: EMPTY_ROW,
        },
    );

    fn read_into(c: &Counters, row: &mut ThreadRow) {
        for (dst, src) in row.events.iter_mut().zip(c.events.iter()) {
            *dst = src.load(Ordering::Relaxed);
        }
        for (dst, src) in row.locks.iter_mut().zip(c.locks.iter()) {
            *dst = src.load(Ordering::Relaxed);
        }
    }

    fn add_into(total: &mut ThreadRow, row: &ThreadRow) {
        for (t, v) in total.events.iter_mut().zip(row.events.iter()) {
            *t = t.wrapping_add(*v);
        }
        for (t, v) in total.locks.iter_mut().zip(row.locks.iter()) {
            *t = t.wrapping_add(*v);
        }
    }

    fn zero(c: &Counters) {
        c.events
            .iter()
            .chain(c.locks.iter())
            .for_each(|a| a.store(0, Ordering::Relaxed));
    }

    /// Thread exit: moves a heap's counts into the exited book and zeroes them for its next owner.
    pub fn retire(heap: &Heap) {
        let mut row = EMPTY_ROW;
        row.tid = heap.tid;
        read_into(&heap.counters, &mut row);
        zero(&heap.counters);
        let mut book = BOOK.lock();
        add_into(&mut book.exited, &row);
        if book.exited_len < EXITED_ROWS {
            let i = book.exited_len;
            book.exited_rows[i] = row;
            book.exited_len += 1;
        }
    }

    /// Calls `f` with every count so far (live threads, exited ones, heap-less code). Nothing is
    /// allocated; `f` runs under the probes lock, so it must not call `snapshot` itself.
    pub fn snapshot<R>(f: impl FnOnce(&Snapshot) -> R) -> R {
        let mut guard = BOOK.lock();
        let book = &mut *guard;
        let mut rows = 0;
        book.totals = book.exited;
        let mut shared = EMPTY_ROW;
        read_into(Counters::shared(), &mut shared);
        add_into(&mut book.totals, &shared);
        for row in &book.exited_rows[..book.exited_len] {
            book.scratch[rows] = *row;
            rows += 1;
        }
        crate::lifecycle::for_each_live_heap(|heap| {
            let mut row = EMPTY_ROW;
            row.tid = heap.tid;
            read_into(&heap.counters, &mut row);
            add_into(&mut book.totals, &row);
            if rows < DUMP_ROWS {
                book.scratch[rows] = row;
                rows += 1;
            }
        });
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime and getpid only write the local / return a value.
        let pid = unsafe {
            libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
            libc::getpid() as u32
        };
        let snap = Snapshot {
            lane: crate::LANE,
            pid,
            wall_ns: ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
            totals: &book.totals.events,
            lock_totals: &book.totals.locks,
            threads: &book.scratch[..rows],
        };
        f(&snap)
    }

    /// Zeroes every counter (live heaps, the shared table, the exited book).
    pub fn reset() {
        let mut book = BOOK.lock();
        book.exited = EMPTY_ROW;
        book.exited_len = 0;
        zero(Counters::shared());
        crate::lifecycle::for_each_live_heap(|heap| zero(&heap.counters));
    }

    /// Writes through a fixed buffer to a file descriptor.
    struct FdSink {
        fd: i32,
        buf: [u8; 4096],
        len: usize,
        failed: bool,
    }

    impl FdSink {
        fn flush(&mut self) {
            let mut done = 0;
            while done < self.len && !self.failed {
                // SAFETY: writes initialised bytes of our own buffer.
                let n = unsafe {
                    libc::write(self.fd, self.buf[done..].as_ptr().cast(), self.len - done)
                };
                if n <= 0 {
                    self.failed = true;
                } else {
                    done += n as usize;
                }
            }
            self.len = 0;
        }
    }

    impl Sink for FdSink {
        fn put(&mut self, mut bytes: &[u8]) {
            while !bytes.is_empty() {
                if self.len == self.buf.len() {
                    self.flush();
                }
                let n = bytes.len().min(self.buf.len() - self.len);
                self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
                self.len += n;
                bytes = &bytes[n..];
            }
        }
    }

    /// Writes one dump: `path` ending in `.csv` gets CSV, `stderr` goes to fd 2, anything else JSON.
    /// True on success.
    pub fn dump(path: &CStr) -> bool {
        write_dump(path, path.to_bytes().ends_with(b".csv"))
    }

    fn write_dump(path: &CStr, csv: bool) -> bool {
        let bytes = path.to_bytes();
        let fd = if bytes == b"stderr" {
            2
        } else {
            // SAFETY: `path` is NUL-terminated; open does not retain it.
            unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                )
            }
        };
        if fd < 0 {
            return false;
        }
        let mut sink = FdSink {
            fd,
            buf: [0; 4096],
            len: 0,
            failed: false,
        };
        snapshot(|snap| {
            if csv {
                ::probes::dump::write_csv(&mut sink, snap);
            } else {
                ::probes::dump::write_json(&mut sink, snap);
            }
        });
        sink.flush();
        if fd != 2 {
            // SAFETY: closes the descriptor opened above.
            unsafe { libc::close(fd) };
        }
        !sink.failed
    }

    /// Where a dump goes by default: `HZ3_PROBES_OUT`, or stderr.
    pub fn default_target() -> &'static CStr {
        // SAFETY: getenv returns null or a NUL-terminated string that lives as long as the environment.
        unsafe {
            let p = libc::getenv(c"HZ3_PROBES_OUT".as_ptr());
            if p.is_null() {
                c"stderr"
            } else {
                CStr::from_ptr(p)
            }
        }
    }

    /// The process that registered the exit dump; a forked child inherits the registration.
    static DUMPER_PID: AtomicU32 = AtomicU32::new(0);

    /// Registers the exit-time dump (once per process, from lifecycle's init).
    pub fn register_exit_dump() {
        // SAFETY: getpid has no preconditions; atexit takes a plain extern "C" function.
        unsafe {
            DUMPER_PID.store(libc::getpid() as u32, Ordering::Relaxed);
            libc::atexit(dump_at_exit);
        }
    }

    /// atexit hook: one dump when HZ3_PROBES_OUT is set. The process that registered it writes
    /// the path itself; a forked child that calls exit() writes `<path>.<pid>` in the path's
    /// format instead, so the parent's dump is never truncated by a child.
    extern "C" fn dump_at_exit() {
        // SAFETY: as in default_target.
        if unsafe { libc::getenv(c"HZ3_PROBES_OUT".as_ptr()) }.is_null() {
            return;
        }
        let target = default_target();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        if pid == DUMPER_PID.load(Ordering::Relaxed) || target.to_bytes() == b"stderr" {
            dump(target);
            return;
        }
        let mut name = [0u8; libc::PATH_MAX as usize];
        let mut digits = [0u8; 20];
        let parts = [
            target.to_bytes(),
            b".",
            ::probes::dump::decimal(pid as u64, &mut digits),
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len >= name.len() {
            return; // no room for the child's name: skip its dump rather than clobber the parent's
        }
        let mut at = 0;
        for part in parts {
            name[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        if let Ok(child_path) = CStr::from_bytes_until_nul(&name) {
            write_dump(child_path, target.to_bytes().ends_with(b".csv"));
        }
    }

    pub fn fork_acquire() {
        BOOK.fork_acquire();
    }
    pub fn fork_release() {
        BOOK.fork_release();
    }
    pub fn fork_reset() {
        BOOK.fork_reset();
    }
}

#[cfg(not(feature = "probes"))]
pub fn fork_acquire() {}
#[cfg(not(feature = "probes"))]
pub fn fork_release() {}
#[cfg(not(feature = "probes"))]
pub fn fork_reset() {}
