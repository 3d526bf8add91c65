//! One stress thread: random malloc / calloc / realloc / posix_memalign / aligned_alloc / memalign /
//! free through the C symbols (so `LD_PRELOAD` decides who answers), every block checked on arrival
//! (alignment, usable size, no overlap via the registry), filled with its address pattern, and checked
//! again before realloc and before free. A share of frees is done by another thread.

use crate::pattern;
use crate::registry::Registry;
use std::sync::Mutex;
use std::time::Instant;

/// A live block as the stress knows it. `key` is the address its pattern is keyed by.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub ptr: usize,
    pub request: usize,
    pub usable: usize,
    pub key: usize,
}

/// What all workers share: the overlap registry and one inbox per thread for remote frees.
pub struct Shared {
    pub registry: Registry,
    pub inboxes: Vec<Mutex<Vec<Block>>>,
}

pub struct Config {
    pub ops: u64,
    pub deadline: Option<Instant>,
    pub max_live: usize,
    pub remote_percent: u64,
    pub seed: u64,
    pub inject_corruption: bool,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    pub ops: u64,
    pub allocs: u64,
    pub frees: u64,
    pub remote_frees: u64,
    pub reallocs: u64,
    pub failed_allocs: u64,
    pub bytes_checked: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.ops += o.ops;
        self.allocs += o.allocs;
        self.frees += o.frees;
        self.remote_frees += o.remote_frees;
        self.reallocs += o.reallocs;
        self.failed_allocs += o.failed_allocs;
        self.bytes_checked += o.bytes_checked;
    }
}

/// Reports a failed check and ends the process at once: the heap may be corrupt, so no unwinding,
/// no atexit handlers, no further allocation than the message needs.
pub fn fail(check: &str, detail: std::fmt::Arguments) -> ! {
    eprintln!("hz3-stress: FAIL {check}: {detail}");
    // SAFETY: _exit only ends the process.
    unsafe { libc::_exit(1) }
}

/// xorshift64*, one per thread, seeded from --seed and the thread index.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng(
            (seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                | 1,
        )
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The workload's 16..2048 B mostly; some tiny, medium and (rarely) multi-MiB blocks.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0..=1 => (1 << 20) + rng.below(3 << 20) as usize,
        2..=60 => 2049 + rng.below(128 << 10) as usize,
        61..=90 => rng.below(16) as usize,
        _ => 16 + rng.below(2033) as usize,
    }
}

fn random_align(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=89 => 8 << rng.below(6),    // 8..256
        90..=98 => 512 << rng.below(7), // 512..32 KiB
        _ => 1 << (16 + rng.below(6)),  // 64 KiB..2 MiB
    }
}

/// The alignment C promises for a plain malloc of `n` bytes (at most max_align_t's 16).
fn fundamental_align(n: usize) -> usize {
    let mut a = 1;
    while a < 16 && a * 2 <= n {
        a *= 2;
    }
    a
}

fn usable_size(ptr: usize) -> usize {
    // SAFETY: `ptr` is a live block from this process's malloc.
    unsafe { libc::malloc_usable_size(ptr as *mut libc::c_void) }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub struct Worker<'a> {
    index: usize,
    shared: &'a Shared,
    cfg: &'a Config,
    rng: Rng,
    live: Vec<Block>,
    pub counts: Counts,
}

impl<'a> Worker<'a> {
    pub fn new(index: usize, shared: &'a Shared, cfg: &'a Config) -> Worker<'a> {
        Worker {
            index,
            shared,
            cfg,
            rng: Rng::new(cfg.seed, index as u64),
            live: Vec::with_capacity(cfg.max_live + 1),
            counts: Counts::default(),
        }
    }

    /// Checks a block just returned by `op` (alignment, usable size) and enters it in the registry.
    fn accept(&mut self, op: &str, ptr: usize, request: usize, align: usize) -> Block {
        if !ptr.is_multiple_of(align) {
            fail(
                "alignment",
                format_args!("{op}({request}) = {ptr:#x}, not aligned to {align}"),
            );
        }
        let usable = usable_size(ptr);
        if usable < request {
            fail(
                "usable_size",
                format_args!("{op}({request}) = {ptr:#x}: malloc_usable_size = {usable}"),
            );
        }
        if let Err(o) = self.shared.registry.register(ptr, ptr + usable) {
            fail(
                "overlap",
                format_args!(
                    "{op}({request}) = [{:#x}, {:#x}) overlaps live block [{:#x}, {:#x})",
                    o.new.0, o.new.1, o.live.0, o.live.1
                ),
            );
        }
        self.counts.allocs += 1;
        Block {
            ptr,
            request,
            usable,
            key: ptr,
        }
    }

    /// Fills the whole usable size: writing past the request is allowed, and a usable size that lies
    /// shows up as a neighbour's broken pattern.
    fn fill(&mut self, block: &mut Block) {
        block.key = block.ptr;
        // SAFETY: the block is live, owned by this thread, and `usable` bytes long.
        unsafe { pattern::fill(block.ptr as *mut u8, block.usable, block.key) };
    }

    fn verify(&mut self, block: &Block, len: usize, when: &str) {
        // SAFETY: the block is live and owned by this thread; len <= usable.
        if let Some(at) = unsafe { pattern::first_mismatch(block.ptr as *const u8, len, block.key) }
        {
            fail(
                "pattern",
                format_args!(
                    "{when}: block {:#x} (request {}, usable {}) byte {at} changed while live (thread {}, op {})",
                    block.ptr, block.request, block.usable, self.index, self.counts.ops
                ),
            );
        }
        self.counts.bytes_checked += len as u64;
    }

    /// Checks, unregisters and frees a block (on whichever thread holds it now).
    fn release(&mut self, block: Block, when: &str) {
        self.verify(&block, block.usable, when);
        if !self
            .shared
            .registry
            .unregister(block.ptr, block.ptr + block.usable)
        {
            fail(
                "registry",
                format_args!("block {:#x} was not registered", block.ptr),
            );
        }
        // SAFETY: the block came from this process's malloc and is freed exactly once.
        unsafe { libc::free(block.ptr as *mut libc::c_void) };
        self.counts.frees += 1;
    }

    fn keep(&mut self, mut block: Block) {
        self.fill(&mut block);
        self.live.push(block);
    }

    fn take_random(&mut self) -> Option<Block> {
        if self.live.is_empty() {
            return None;
        }
        let i = self.rng.below(self.live.len() as u64) as usize;
        Some(self.live.swap_remove(i))
    }

    fn op_malloc(&mut self) {
        let n = random_size(&mut self.rng);
        // SAFETY: plain malloc.
        let p = unsafe { libc::malloc(n) } as usize;
        if p == 0 {
            return self.alloc_failed("malloc", n);
        }
        let b = self.accept("malloc", p, n, fundamental_align(n));
        self.keep(b);
    }

    fn op_calloc(&mut self) {
        let n = random_size(&mut self.rng);
        let (count, each) = if n >= 16 && n.is_multiple_of(8) {
            (n / 8, 8)
        } else {
            (1, n)
        };
        // SAFETY: plain calloc; count * each == n cannot overflow.
        let p = unsafe { libc::calloc(count, each) } as usize;
        if p == 0 {
            return self.alloc_failed("calloc", n);
        }
        let b = self.accept("calloc", p, n, fundamental_align(n));
        // SAFETY: the block is at least n bytes and ours.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
        if let Some(at) = bytes.iter().position(|&x| x != 0) {
            fail(
                "calloc_zero",
                format_args!(
                    "calloc({count}, {each}) = {p:#x}: byte {at} is {:#x}",
                    bytes[at]
                ),
            );
        }
        self.counts.bytes_checked += n as u64;
        self.keep(b);
    }

    fn op_aligned(&mut self) {
        let n = random_size(&mut self.rng);
        let align = random_align(&mut self.rng);
        let kind = self.rng.below(3);
        let (op, p) = match kind {
            0 => {
                if self.rng.below(50) == 0 {
                    return self.check_bad_alignment(n);
                }
                let mut out: *mut libc::c_void = std::ptr::null_mut();
                // SAFETY: `align` is a power of two multiple of sizeof(void*).
                let rc = unsafe { libc::posix_memalign(&mut out, align, n) };
                if rc != 0 {
                    return self.alloc_failed("posix_memalign", n);
                }
                ("posix_memalign", out as usize)
            }
            // SAFETY: power-of-two alignment; glibc semantics accept any size.
            1 => ("aligned_alloc", unsafe { libc::aligned_alloc(align, n) }
                as usize),
            // SAFETY: as above; memalign is the legacy spelling.
            _ => ("memalign", unsafe { libc::memalign(align, n) } as usize),
        };
        if p == 0 {
            return self.alloc_failed(op, n);
        }
        let b = self.accept(op, p, n, align);
        self.keep(b);
    }

    fn check_bad_alignment(&mut self, n: usize) {
        let bad = [0usize, 4, 24, 48, 3 << 10][self.rng.below(5) as usize];
        let mut out: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: a bad alignment must be refused without touching `out`'s target.
        let rc = unsafe { libc::posix_memalign(&mut out, bad, n) };
        if rc != libc::EINVAL {
            fail(
                "posix_memalign_einval",
                format_args!("posix_memalign(align {bad}, {n}) = {rc}, want EINVAL"),
            );
        }
    }

    fn op_realloc(&mut self) {
        let Some(old) = self.take_random() else {
            return self.op_malloc();
        };
        self.verify(&old, old.usable, "before realloc");
        let n = random_size(&mut self.rng).max(1);
        // The old block stops being ours the moment realloc is called: the result may overlap it.
        self.shared
            .registry
            .unregister(old.ptr, old.ptr + old.usable);
        // SAFETY: `old.ptr` is live and ours; n > 0, so realloc never frees without returning.
        let p = unsafe { libc::realloc(old.ptr as *mut libc::c_void, n) } as usize;
        if p == 0 {
            if self
                .shared
                .registry
                .register(old.ptr, old.ptr + old.usable)
                .is_err()
            {
                fail(
                    "overlap",
                    format_args!("failed realloc: old block {:#x} now overlaps", old.ptr),
                );
            }
            self.live.push(old);
            return self.alloc_failed("realloc", n);
        }
        self.counts.reallocs += 1;
        let mut b = self.accept("realloc", p, n, fundamental_align(n));
        // The contents moved with the block but still carry the old address's pattern.
        b.key = old.key;
        let kept = old.request.min(n);
        self.verify(&Block { usable: kept, ..b }, kept, "after realloc");
        self.keep(b);
    }

    fn op_free(&mut self) {
        let Some(block) = self.take_random() else {
            return;
        };
        let others = self.shared.inboxes.len();
        if others > 1 && self.rng.below(100) < self.cfg.remote_percent {
            let mut to = self.rng.below(others as u64 - 1) as usize;
            if to >= self.index {
                to += 1;
            }
            self.shared.inboxes[to]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(block);
        } else {
            self.release(block, "before free");
        }
    }

    /// Frees what other threads sent here.
    pub fn drain_inbox(&mut self) {
        let parcels = std::mem::take(
            &mut *self.shared.inboxes[self.index]
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for block in parcels {
            self.release(block, "before remote free");
            self.counts.remote_frees += 1;
        }
    }

    fn alloc_failed(&mut self, op: &str, n: usize) {
        // Nothing here should exhaust memory; a NULL must at least come with ENOMEM.
        let e = errno();
        if e != libc::ENOMEM && op != "posix_memalign" {
            fail(
                "enomem",
                format_args!("{op}({n}) returned NULL with errno {e}"),
            );
        }
        self.counts.failed_allocs += 1;
    }

    /// Flips one byte of a live block, to prove the checks catch corruption (--inject-corruption).
    fn corrupt_one(&mut self) {
        if let Some(b) = self.live.first() {
            // SAFETY: a byte inside a live block we own.
            unsafe { *(b.ptr as *mut u8) ^= 0x5A };
            // Check it now, as a free of it would.
            let b = *b;
            self.verify(&b, b.usable, "after injected corruption");
        }
    }

    fn done(&self) -> bool {
        match self.cfg.deadline {
            Some(deadline) => self.counts.ops.is_multiple_of(256) && Instant::now() >= deadline,
            None => self.counts.ops >= self.cfg.ops,
        }
    }

    /// The main loop; returns the blocks still live, for another thread to check and free.
    pub fn run(mut self) -> (Counts, Vec<Block>) {
        while !self.done() {
            if self.cfg.inject_corruption && self.index == 0 && self.counts.ops == 1000 {
                self.corrupt_one();
            }
            let roll = self.rng.below(100);
            if self.live.len() >= self.cfg.max_live || roll < 30 {
                self.op_free();
            } else if roll < 42 {
                self.op_realloc();
            } else if roll < 54 {
                self.op_calloc();
            } else if roll < 64 {
                self.op_aligned();
            } else {
                self.op_malloc();
            }
            if self.counts.ops.is_multiple_of(64) {
                self.drain_inbox();
            }
            self.counts.ops += 1;
        }
        self.drain_inbox();
        let live = std::mem::take(&mut self.live);
        (self.counts, live)
    }

    /// Frees blocks some other (possibly exited) thread left live.
    pub fn adopt(&mut self, blocks: Vec<Block>) {
        for block in blocks {
            self.release(block, "before free of a block left by an exited thread");
            self.counts.remote_frees += 1;
        }
    }
}
