//! Lifecycle: the thread's heap pointer, lazy init, thread attach/exit, heap adoption, and fork.
//!
//! TLS is one pointer slot (initial-exec `.tbss` symbol on x86-64, else the value of the
//! thread-exit pthread key), so touching it never allocates or registers a destructor.
//! Thread exit is caught with a pthread key destructor; after it ran the slot holds `TORN_DOWN`
//! and the thread is served without a cache. An exiting thread returns its cache and leaves its
//! heap "abandoned"; the next new thread adopts it, so heavy thread churn reuses a bounded set of
//! heaps.

use crate::heap::Heap;
use crate::lock::Mutex;
use crate::os;
use crate::probes::{self, Event};
use crate::slow_alloc;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// The thread's heap slot. On x86-64 it is a `.tbss` symbol read with the initial-exec TLS model
/// (one `fs:`-relative load): std's `thread_local!` in a shared object uses the general-dynamic
/// model, a call to `__tls_get_addr` on every malloc and free (13% of a local-only run). The
/// `.so` is loaded at startup by LD_PRELOAD (or linked into the program), where static TLS is
/// always available.
#[cfg(all(target_arch = "x86_64", not(feature = "portable-fallbacks")))]
mod tls_slot {
    use super::Heap;

    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl hz3_tls_heap",
        ".hidden hz3_tls_heap",
        ".type hz3_tls_heap, @object",
        ".size hz3_tls_heap, 8",
        "hz3_tls_heap:",
        ".zero 8",
        ".popsection",
    );

    /// Static TLS needs no set-up.
    #[inline(always)]
    pub fn ready() -> bool {
        true
    }

    #[inline(always)]
    pub fn get() -> *mut Heap {
        let value: *mut Heap;
        // SAFETY: reads this thread's 8-byte slot at its initial-exec offset from the fs base.
        unsafe {
            core::arch::asm!(
                "mov {off}, qword ptr [rip + hz3_tls_heap@GOTTPOFF]",
                "mov {value}, qword ptr fs:[{off}]",
                off = out(reg) _,
                value = out(reg) value,
                options(nostack, preserves_flags, readonly),
            );
        }
        value
    }

    #[inline(always)]
    pub fn set(heap: *mut Heap) {
        // SAFETY: writes this thread's 8-byte slot, as in `get`.
        unsafe {
            core::arch::asm!(
                "mov {off}, qword ptr [rip + hz3_tls_heap@GOTTPOFF]",
                "mov qword ptr fs:[{off}], {heap}",
                off = out(reg) _,
                heap = in(reg) heap,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// Elsewhere (and on x86-64 with `portable-fallbacks`, which tests this path): the slot is the
/// value of the thread-exit key, which needs neither std nor an unstable `#[thread_local]`.
/// The key is made by the process's first malloc (under LD_PRELOAD, during libc's start-up,
/// before any program key), so it is one of the first 32 keys, whose values live in the thread
/// descriptor: pthread_setspecific on it never allocates. glibc clears a key's value before
/// calling its destructor; `on_thread_exit` puts the heap back while it flushes and leaves
/// `TORN_DOWN` behind.
#[cfg(not(all(target_arch = "x86_64", not(feature = "portable-fallbacks"))))]
mod tls_slot {
    use super::{Heap, EXIT_KEY, EXIT_KEY_OK};
    use core::ptr;
    use core::sync::atomic::Ordering;

    /// False until the key exists (or when creating it failed: threads then run uncached).
    #[inline(always)]
    pub fn ready() -> bool {
        EXIT_KEY_OK.load(Ordering::Acquire) == 1
    }

    #[inline(always)]
    pub fn get() -> *mut Heap {
        if !ready() {
            return ptr::null_mut();
        }
        // SAFETY: the key was created (ready); getspecific only reads this thread's value.
        unsafe { libc::pthread_getspecific(EXIT_KEY).cast() }
    }

    pub fn set(heap: *mut Heap) {
        if ready() {
            // SAFETY: as in `get`; a low key's value needs no allocation (module note).
            unsafe { libc::pthread_setspecific(EXIT_KEY, heap.cast()) };
        }
    }
}

/// Cell value after the thread's exit destructor ran.
const TORN_DOWN: usize = 1;
/// Heap pointers at or below this are "no heap" (null or torn down).
pub const NO_HEAP_MAX: usize = TORN_DOWN;

const STATE_ACTIVE: u32 = 1;
const STATE_ABANDONED: u32 = 2;
/// A heap whose thread vanished in a fork: its cache may be mid-update, so it is never adopted.
const STATE_DEAD: u32 = 3;

struct Registry {
    all: *mut Heap,
    abandoned: *mut Heap,
}

// SAFETY: heaps are never unmapped; the mutex serialises list edits.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(
    None,
    Registry {
        all: ptr::null_mut(),
        abandoned: ptr::null_mut(),
    },
);

const INIT_NONE: u8 = 0;
const INIT_RUNNING: u8 = 1;
const INIT_DONE: u8 = 2;
static INIT: AtomicU8 = AtomicU8::new(INIT_NONE);
static ATFORK_REGISTERED: AtomicU8 = AtomicU8::new(0);
static mut EXIT_KEY: libc::pthread_key_t = 0;
static EXIT_KEY_OK: AtomicU32 = AtomicU32::new(0);

/// The calling thread's heap pointer, raw: null, `TORN_DOWN`, or a heap.
#[inline(always)]
pub fn current_raw() -> *mut Heap {
    tls_slot::get()
}

/// The calling thread's heap, if it has one.
#[inline(always)]
pub fn current_heap() -> Option<*mut Heap> {
    let h = current_raw();
    if h as usize > NO_HEAP_MAX {
        Some(h)
    } else {
        None
    }
}

/// True once the calling thread's exit destructor has run.
#[inline]
pub fn torn_down() -> bool {
    current_raw() as usize == TORN_DOWN
}

/// Process-wide one-time setup that must not allocate: the thread-exit key and (unless the ELF
/// constructor already did it) the fork handlers. Re-entrant calls during setup return at once.
#[cold]
fn ensure_init() {
    if INIT.load(Ordering::Acquire) == INIT_DONE {
        return;
    }
    if INIT
        .compare_exchange(INIT_NONE, INIT_RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    // SAFETY: pthread_key_create writes the key, once, before any reader checks EXIT_KEY_OK.
    unsafe {
        if libc::pthread_key_create(ptr::addr_of_mut!(EXIT_KEY), Some(on_thread_exit)) == 0 {
            EXIT_KEY_OK.store(1, Ordering::Release);
        }
    }
    register_atfork();
    #[cfg(feature = "probes")]
    probes::register_exit_dump();
    INIT.store(INIT_DONE, Ordering::Release);
}

/// Registers the fork handlers once (from the ELF constructor, or lazily from init).
pub fn register_atfork() {
    if ATFORK_REGISTERED.swap(1, Ordering::AcqRel) == 0 {
        // SAFETY: the handlers are plain extern "C" functions valid for the process lifetime.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    }
}

/// Gives the calling thread a heap (adopting an abandoned one if any). None when the thread is
/// torn down or memory is exhausted: the caller then serves it without a cache.
#[cold]
#[inline(never)]
pub fn attach() -> Option<*mut Heap> {
    if let Some(h) = current_heap() {
        return Some(h);
    }
    if torn_down() {
        return None;
    }
    ensure_init();
    // Init may have called malloc (pthread_atfork), which may have attached us already.
    if let Some(h) = current_heap() {
        return Some(h);
    }
    if !tls_slot::ready() {
        // No slot to remember a heap in: attaching would take a new heap on every call.
        return None;
    }
    let heap = {
        let mut reg = REGISTRY.lock();
        let adopted = reg.abandoned;
        if !adopted.is_null() {
            // SAFETY: listed heaps are mapped and owned by the registry while abandoned.
            reg.abandoned = unsafe { (*adopted).free_next };
            adopted
        } else {
            let fresh = os::map(core::mem::size_of::<Heap>(), false).cast::<Heap>();
            if fresh.is_null() {
                return None;
            }
            // SAFETY: fresh zeroed mapping, page aligned and big enough for a Heap; all-zero is a
            // valid empty heap apart from the caps set here.
            unsafe {
                (*fresh).init_caps();
                (*fresh).all_next = reg.all;
            }
            reg.all = fresh;
            fresh
        }
    };
    // SAFETY: the heap is ours now (fresh, or taken off the abandoned list).
    unsafe {
        (*heap).tid = libc::gettid() as u64;
        (*heap).state.store(STATE_ACTIVE, Ordering::Release);
    }
    tls_slot::set(heap);
    // pthread_setspecific may itself allocate (a second-level key block); our TLS is already set,
    // so that allocation is served from this heap instead of recursing here.
    if EXIT_KEY_OK.load(Ordering::Acquire) == 1 {
        // SAFETY: the key was created by ensure_init.
        unsafe { libc::pthread_setspecific(EXIT_KEY, heap.cast()) };
    }
    // SAFETY: the heap is attached to this thread.
    unsafe { (*heap).counters.add(Event::ThreadInit, 1) };
    Some(heap)
}

extern "C" fn on_thread_exit(arg: *mut libc::c_void) {
    let heap = arg.cast::<Heap>();
    if heap as usize <= NO_HEAP_MAX {
        // A later destructor round of the key-slot fallback (glibc cleared the value again).
        tls_slot::set(TORN_DOWN as *mut Heap);
        return;
    }
    // The key-slot fallback's value was cleared before this call: the flush runs with the heap.
    tls_slot::set(heap);
    // SAFETY: the key's value is the heap this thread attached; from here the thread runs without it.
    unsafe {
        (*heap).counters.add(Event::ThreadExit, 1);
        slow_alloc::flush_heap(&mut *heap);
        tls_slot::set(TORN_DOWN as *mut Heap);
        #[cfg(feature = "probes")]
        probes::retire(&*heap);
        let mut reg = REGISTRY.lock();
        (*heap).state.store(STATE_ABANDONED, Ordering::Release);
        (*heap).free_next = reg.abandoned;
        reg.abandoned = heap;
    }
    // Its cache's objects may have emptied runs: the decay beat, with no lock held.
    crate::decay::tick();
}

/// Calls `f` on every heap that belongs to a running thread (probes dump).
#[allow(dead_code)]
pub fn for_each_live_heap(mut f: impl FnMut(&Heap)) {
    let reg = REGISTRY.lock();
    let mut h = reg.all;
    while !h.is_null() {
        // SAFETY: registered heaps are never unmapped.
        unsafe {
            if (*h).state.load(Ordering::Acquire) == STATE_ACTIVE {
                f(&*h);
            }
            h = (*h).all_next;
        }
    }
}

/// Returns the calling thread's cache to the shared pools (malloc_trim).
pub fn flush_current() {
    if let Some(h) = current_heap() {
        // SAFETY: our own attached heap.
        slow_alloc::flush_heap(unsafe { &mut *h });
    }
}

/// The statistics, after publishing the calling thread's own cache counts so that they are exact.
pub fn current_stats() -> crate::stats::Stats {
    if let Some(h) = current_heap() {
        // SAFETY: our own attached heap.
        unsafe { (*h).publish_all_stats() };
    }
    crate::stats::snapshot()
}

/// `HZ3_STATS=1`: the summary on stderr at exit.
extern "C" fn print_stats_at_exit() {
    crate::stats::write_summary(&current_stats(), crate::stats::Sink::Fd(2));
}

// Fork: take every lock in one fixed order (the order they nest in at run time), so the child
// inherits consistent pools; the child then resets them, alone.
extern "C" fn fork_prepare() {
    probes::fork_acquire();
    REGISTRY.fork_acquire();
    if crate::config::SCALE {
        crate::transfer::fork_acquire();
    }
    crate::central::fork_acquire();
    crate::page_source::fork_acquire();
    crate::large::fork_acquire();
}

extern "C" fn fork_parent() {
    crate::large::fork_release();
    crate::page_source::fork_release();
    crate::central::fork_release();
    if crate::config::SCALE {
        crate::transfer::fork_release();
    }
    REGISTRY.fork_release();
    probes::fork_release();
}

extern "C" fn fork_child() {
    crate::large::fork_reset();
    crate::page_source::fork_reset();
    crate::central::fork_reset();
    if crate::config::SCALE {
        crate::transfer::fork_reset();
    }
    REGISTRY.fork_reset();
    probes::fork_reset();
    let me = current_raw();
    // SAFETY: the child has one thread, so the registry is ours without locking.
    unsafe {
        let reg = REGISTRY.get_unlocked();
        let mut h = reg.all;
        while !h.is_null() {
            if h != me && (*h).state.load(Ordering::Relaxed) == STATE_ACTIVE {
                (*h).state.store(STATE_DEAD, Ordering::Relaxed);
            }
            h = (*h).all_next;
        }
        if me as usize > NO_HEAP_MAX {
            (*me).tid = libc::gettid() as u64;
        }
    }
}

/// ELF constructor: registers the fork handlers before main, outside any malloc call (glibc's
/// pthread_atfork may allocate).
#[used]
#[link_section = ".init_array"]
static REGISTER_AT_LOAD: extern "C" fn() = {
    extern "C" fn at_load() {
        register_atfork();
        if crate::stats::wanted_at_exit() {
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { libc::atexit(print_stats_at_exit) };
        }
    }
    at_load
};
