//! The bench's ceiling: a malloc with no synchronization and no bookkeeping. NOT a usable allocator.
//!
//! `free` pushes the block onto the *freeing* thread's LIFO list for its size class; `malloc` pops
//! from the calling thread's list or bumps from the thread's own region; nothing is ever returned to
//! the system. Under a producer/consumer pattern memory grows without bound, but no real allocator
//! can do much less work per operation on `hz3-bench`, so its throughput shows how much room is left.
//!
//! Layout: one virtual reservation, split into a fixed grid of spans, one per (thread, class). The
//! class of a small block is therefore its address range: no header. A thread takes its grid row on
//! its first malloc or free (the only atomic read-modify-write, once per thread lifetime); the row's
//! last span holds the thread's free stacks (feature `outline`, default), so the allocator itself
//! never writes into a block. Blocks above the largest class, or with an alignment no class provides,
//! get their own mapping with a header.
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

mod classes;
mod freelist;
mod tls;
use classes::{class_of, class_size, CLASSES, MAX_SMALL};
use freelist::FreeLists;

/// Exported so a process can tell the ceiling is the allocator answering (`dlsym`).
#[cfg_attr(not(test), no_mangle)]
#[used]
#[allow(non_upper_case_globals)] // the exported C symbol's name
pub static ceiling_marker: [u8; 8] = *b"ceiling\0";

const SPAN_SHIFT: u32 = 30; // 1 GiB of address space per (thread, class)
const SPAN: usize = 1 << SPAN_SHIFT;
const SPANS_PER_THREAD: usize = 64; // >= CLASSES, a power of two so the class is a mask
const MAX_THREADS: usize = 512;
const REGION_LEN: usize = MAX_THREADS * SPANS_PER_THREAD * SPAN; // 32 TiB, reserved, never committed
const LARGE_MAGIC: usize = 0xce11_1a26_e0b1_0c4a;
const LARGE_HEADER: usize = 32;
const MIN_ALIGN: usize = 16;

/// The span of each thread row that holds the out-of-line free stacks (never handed out as blocks).
const STACK_SPAN: usize = SPANS_PER_THREAD - 1;

const _: () = assert!(CLASSES < STACK_SPAN && MAX_SMALL < SPAN);
const _: () = assert!(CLASSES * FreeLists::STACK_BYTES_PER_CLASS <= SPAN);

/// Start of the reservation (0 until the first thread sets it up).
static REGION: AtomicUsize = AtomicUsize::new(0);
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

struct ThreadHeap {
    free: FreeLists,
    bump: [usize; CLASSES],
    /// Where the fast path must stop bumping: the span's end, or with `populate` the end of the
    /// part already faulted in.
    end: [usize; CLASSES],
    /// The end of the thread's span for the class.
    limit: [usize; CLASSES],
    /// This thread's grid row; usize::MAX until its first malloc or free.
    row: usize,
}

thread_local! {
    // Const-initialized and without Drop: a plain TLS slot, usable during thread exit, never allocating.
    static HEAP: UnsafeCell<ThreadHeap> = const {
        UnsafeCell::new(ThreadHeap {
            free: FreeLists::EMPTY,
            bump: [0; CLASSES],
            end: [0; CLASSES],
            limit: [0; CLASSES],
            row: usize::MAX,
        })
    };
}

#[cold]
fn fail(msg: &str) -> ! {
    // SAFETY: write(2) on a valid buffer; abort never returns.
    unsafe {
        libc::write(2, msg.as_ptr() as *const c_void, msg.len());
        libc::abort()
    }
}

fn set_enomem() {
    // SAFETY: errno is this thread's own int.
    unsafe { *libc::__errno_location() = libc::ENOMEM };
}

#[inline(always)]
fn with_heap<R>(f: impl FnOnce(&mut ThreadHeap) -> R) -> R {
    let mut heap = tls::get() as *mut ThreadHeap;
    if heap.is_null() {
        heap = heap_slow();
    }
    // SAFETY: the heap is this thread's own (its TLS block lives as long as the thread) and
    // nothing re-enters it: the code paths below neither call malloc nor hand out a second reference.
    f(unsafe { &mut *heap })
}

/// The thread's first access: find its heap through std's TLS and cache the pointer.
#[cold]
fn heap_slow() -> *mut ThreadHeap {
    let heap = HEAP.with(UnsafeCell::get);
    tls::set(heap as *mut c_void);
    heap
}

/// The class a small pointer belongs to, or None when it is not inside the reservation.
#[inline(always)]
fn small_class(p: usize) -> Option<usize> {
    let base = REGION.load(Ordering::Acquire);
    let offset = p.wrapping_sub(base);
    (base != 0 && offset < REGION_LEN).then_some((offset >> SPAN_SHIFT) & (SPANS_PER_THREAD - 1))
}

#[inline(always)]
fn alloc_class(class: usize) -> *mut c_void {
    with_heap(|heap| {
        let recycled = heap.free.pop(class);
        if !recycled.is_null() {
            return recycled;
        }
        // SAFETY (all get_unchecked below): class < CLASSES, checked by every caller.
        let size = class_size(class);
        let bump = unsafe { *heap.bump.get_unchecked(class) };
        // An untouched class has bump == end == 0, so it falls through to refill.
        if bump + size <= unsafe { *heap.end.get_unchecked(class) } {
            unsafe { *heap.bump.get_unchecked_mut(class) = bump + size };
            return bump as *mut c_void;
        }
        refill(heap, class)
    })
}

#[cold]
fn refill(heap: &mut ThreadHeap, class: usize) -> *mut c_void {
    let size = class_size(class);
    if heap.bump[class] == 0 {
        let start = region() + (row(heap) * SPANS_PER_THREAD + class) * SPAN;
        heap.bump[class] = start;
        heap.end[class] = start;
        heap.limit[class] = start + SPAN;
    }
    let block = heap.bump[class];
    if block + size > heap.limit[class] {
        fail("ceiling: a thread's size-class span (1 GiB) is exhausted\n");
    }
    heap.end[class] = extend_end(heap.end[class], block + size, heap.limit[class]);
    heap.bump[class] = block + size;
    block as *mut c_void
}

/// This thread's grid row, taken on first need.
fn row(heap: &mut ThreadHeap) -> usize {
    if heap.row == usize::MAX {
        heap.row = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        if heap.row >= MAX_THREADS {
            fail("ceiling: more than 512 threads have allocated\n");
        }
    }
    heap.row
}

/// The free lists' first push on this thread (they get the thread's last span), or a full stack.
#[cold]
fn push_slow(heap: &mut ThreadHeap, class: usize, p: *mut c_void) {
    if heap.free.needs_stack() {
        let start = region() + (row(heap) * SPANS_PER_THREAD + STACK_SPAN) * SPAN;
        heap.free.set_stack_area(start);
        if heap.free.push(class, p) {
            return;
        }
    }
    fail("ceiling: a thread's free stack for one size class is full (2 Mi blocks)\n");
}

/// Without `populate`: the fast path may bump to the span's end, pages fault one by one.
#[cfg(not(feature = "populate"))]
fn extend_end(_end: usize, _needed: usize, limit: usize) -> usize {
    limit
}

/// With `populate`: fault in the next chunk with one madvise, so thousands of 4 KiB faults become a
/// few calls (the T32 presets keep ~2 GB in flight in the rings).
#[cfg(feature = "populate")]
const MADV_POPULATE_WRITE: libc::c_int = 23; // Linux 5.14+, not yet in the libc crate

#[cfg(feature = "populate")]
fn extend_end(end: usize, needed: usize, limit: usize) -> usize {
    const CHUNK: usize = 256 * 1024;
    let new_end = (needed.max(end + CHUNK) + 4095) & !4095;
    let new_end = new_end.min(limit);
    // SAFETY: [end, new_end) is inside our reservation and page-aligned (spans are, and every end
    // is rounded to a page); a kernel without MADV_POPULATE_WRITE just leaves the pages to fault.
    unsafe { libc::madvise(end as *mut c_void, new_end - end, MADV_POPULATE_WRITE) };
    new_end
}

/// The reservation, made by the first thread that needs it (a racing loser unmaps its copy).
#[cold]
fn region() -> usize {
    let current = REGION.load(Ordering::Acquire);
    if current != 0 {
        return current;
    }
    let len = REGION_LEN + SPAN;
    // SAFETY: a fresh anonymous mapping; NORESERVE because only touched pages are ever committed.
    let raw = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        fail("ceiling: cannot reserve 32 TiB of address space\n");
    }
    // Span-aligned so blocks of a power-of-two class are aligned to their size (memalign needs it).
    let aligned = (raw as usize + SPAN - 1) & !(SPAN - 1);
    #[cfg(feature = "hugepages")]
    // SAFETY: advice on our own fresh mapping; failure (THP off) only loses the speed-up.
    unsafe {
        libc::madvise(aligned as *mut c_void, REGION_LEN, libc::MADV_HUGEPAGE)
    };
    match REGION.compare_exchange(0, aligned, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => aligned,
        Err(winner) => {
            // SAFETY: our own mapping, unused.
            unsafe { libc::munmap(raw, len) };
            winner
        }
    }
}

/// A block with its own mapping: header {magic, mapping start, mapping length, usable size} right
/// below the returned pointer.
#[cold]
fn alloc_large(size: usize, align: usize) -> *mut c_void {
    let align = align.max(64);
    let Some(len) = size
        .checked_add(align + LARGE_HEADER + 4095)
        .map(|n| n & !4095)
    else {
        set_enomem();
        return null_mut();
    };
    // SAFETY: a fresh anonymous mapping.
    let raw = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        set_enomem();
        return null_mut();
    }
    let user = (raw as usize + LARGE_HEADER + align - 1) & !(align - 1);
    let header = (user - LARGE_HEADER) as *mut usize;
    // SAFETY: user - LARGE_HEADER >= raw, and the header lies inside the fresh mapping.
    unsafe {
        header.cast::<[usize; 4]>().write([
            LARGE_MAGIC,
            raw as usize,
            len,
            raw as usize + len - user,
        ])
    };
    user as *mut c_void
}

/// The header of a large block; aborts when `p` is neither small nor large (a foreign pointer).
fn large_header(p: *mut c_void) -> [usize; 4] {
    // SAFETY: every non-small pointer we returned has a header right below it; for a foreign
    // pointer this read is the fail-fast check and may fault, which is as loud as the abort.
    let header = unsafe { ((p as usize - LARGE_HEADER) as *const [usize; 4]).read() };
    if header[0] != LARGE_MAGIC {
        fail("ceiling: free of a pointer the ceiling never returned\n");
    }
    header
}

fn alloc(size: usize) -> *mut c_void {
    if size <= MAX_SMALL {
        alloc_class(class_of(size))
    } else {
        alloc_large(size, MIN_ALIGN)
    }
}

fn alloc_aligned(align: usize, size: usize) -> *mut c_void {
    if align <= MIN_ALIGN {
        return alloc(size);
    }
    let want = size.max(align);
    if want <= MAX_SMALL {
        // A class whose size is a multiple of `align` places every block on an `align` boundary.
        if let Some(class) =
            (class_of(want)..CLASSES).find(|&c| class_size(c).is_multiple_of(align))
        {
            return alloc_class(class);
        }
    }
    alloc_large(size, align)
}

fn usable_size(p: *mut c_void) -> usize {
    match small_class(p as usize) {
        Some(class) if class < CLASSES => class_size(class),
        Some(_) => fail("ceiling: size query of a pointer inside the ceiling's own bookkeeping\n"),
        None => large_header(p)[3],
    }
}

/// # Safety
/// C `malloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    alloc(size)
}

/// # Safety
/// C `free`: `p` is null or a live block from this allocator.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    match small_class(p as usize) {
        Some(class) if class < CLASSES => with_heap(|heap| {
            if !heap.free.push(class, p) {
                push_slow(heap, class, p);
            }
        }),
        Some(_) => fail("ceiling: free of a pointer inside the ceiling's own bookkeeping\n"),
        None => {
            let [_, start, len, _] = large_header(p);
            // SAFETY: the mapping recorded in the block's own header.
            unsafe { libc::munmap(start as *mut c_void, len) };
        }
    }
}

/// # Safety
/// C `calloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_enomem();
        return null_mut();
    };
    let p = alloc(total);
    if !p.is_null() {
        // SAFETY: p has at least `total` bytes (recycled blocks hold old data, so always clear).
        unsafe { std::ptr::write_bytes(p as *mut u8, 0, total) };
    }
    p
}

/// # Safety
/// C `realloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return alloc(size);
    }
    if size == 0 {
        // SAFETY: glibc semantics: realloc(p, 0) frees p and returns NULL.
        unsafe { free(p) };
        return null_mut();
    }
    let old = usable_size(p);
    if size <= old
        && (size > MAX_SMALL || class_of(size) == small_class(p as usize).unwrap_or(usize::MAX))
    {
        return p;
    }
    let q = alloc(size);
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; we copy what both can hold.
        unsafe {
            std::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, old.min(size));
            free(p);
        }
    }
    q
}

/// # Safety
/// C `reallocarray`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_enomem();
            null_mut()
        }
    }
}

/// # Safety
/// C `posix_memalign`: `out` is writable.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> libc::c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    let p = alloc_aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's out-pointer.
    unsafe { *out = p };
    0
}

/// # Safety
/// C `aligned_alloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        // SAFETY: errno is ours.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        return null_mut();
    }
    alloc_aligned(align, size)
}

/// # Safety
/// C `memalign` (glibc rounds a non-power-of-two alignment up).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    alloc_aligned(
        align.checked_next_power_of_two().unwrap_or(usize::MAX),
        size,
    )
}

/// # Safety
/// C `valloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    alloc_aligned(4096, size)
}

/// # Safety
/// C `pvalloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    alloc_aligned(4096, size.saturating_add(4095) & !4095)
}

/// # Safety
/// C `malloc_usable_size`: `p` is null or a live block from this allocator.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        usable_size(p)
    }
}
