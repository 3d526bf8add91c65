//! `hz3::Hz3` as `#[global_allocator]`, driven by seeded random operation sequences and checked against
//! a shadow model of the live blocks: alignment, no overlap between live blocks, zeroed memory from
//! `alloc_zeroed`, contents preserved by `realloc` and intact until `dealloc`. Everything else this test
//! binary allocates (the model's own `BTreeMap`, the harness, threads) also goes through hz3.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

/// xorshift64*: deterministic per seed, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn percent(&mut self) -> u64 {
        self.below(100)
    }
}

/// Mostly the workload's small sizes, some medium, a few large ones that take the large-object path.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0..=2 => 65_536 + rng.below(4 << 20) as usize,
        3..=199 => 2_049 + rng.below(63_488) as usize,
        _ => 1 + rng.below(2_048) as usize,
    }
}

fn random_align(rng: &mut Rng) -> usize {
    match rng.percent() {
        0..=69 => 1 << rng.below(5),   // 1..16: what plain Box/Vec ask for
        70..=97 => 1 << rng.below(13), // up to a page
        _ => 1 << (13 + rng.below(9)), // 8 KiB .. 2 MiB
    }
}

fn pattern_byte(seed: u64, offset: usize) -> u8 {
    (seed as usize).wrapping_add(offset.wrapping_mul(131)) as u8 ^ (seed >> 32) as u8
}

fn fill(ptr: *mut u8, len: usize, seed: u64) {
    // SAFETY: callers pass a live block of at least `len` bytes that this thread owns.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = pattern_byte(seed, i);
    }
}

/// Offset of the first byte that differs from the pattern, if any.
fn first_mismatch(ptr: *const u8, len: usize, seed: u64) -> Option<usize> {
    // SAFETY: callers pass a live block of at least `len` bytes that this thread owns.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern_byte(seed, i))
}

/// A live block as the model knows it.
#[derive(Clone, Copy, Debug)]
struct Block {
    layout: Layout,
    seed: u64,
}

/// The shadow model: live blocks by start address.
#[derive(Default)]
struct Shadow {
    live: BTreeMap<usize, Block>,
}

impl Shadow {
    /// Records a block just returned by the allocator after checking it against every live block.
    fn insert(&mut self, ptr: *mut u8, block: Block, op: &str) {
        let start = ptr as usize;
        assert!(!ptr.is_null(), "{op}({:?}) returned null", block.layout);
        assert_eq!(
            start % block.layout.align(),
            0,
            "{op}({:?}) = {ptr:p} is misaligned",
            block.layout
        );
        let end = start + block.layout.size();
        if let Some((&prev, prev_block)) = self.live.range(..=start).next_back() {
            assert!(
                prev + prev_block.layout.size() <= start,
                "{op}({:?}) = {start:#x} overlaps live block {prev:#x} ({:?})",
                block.layout,
                prev_block.layout
            );
        }
        if let Some((&next, next_block)) = self.live.range(start..).next() {
            assert!(
                end <= next,
                "{op}({:?}) = {start:#x} overlaps live block {next:#x} ({:?})",
                block.layout,
                next_block.layout
            );
        }
        self.live.insert(start, block);
    }

    /// Picks a live block at random (by address rank), removing it from the model.
    fn take_random(&mut self, rng: &mut Rng) -> Option<(*mut u8, Block)> {
        if self.live.is_empty() {
            return None;
        }
        let pick = rng.below(self.live.len() as u64) as usize;
        let start = *self.live.keys().nth(pick)?;
        let block = self.live.remove(&start)?;
        Some((start as *mut u8, block))
    }
}

fn check_contents(ptr: *mut u8, block: &Block, what: &str) {
    if let Some(at) = first_mismatch(ptr, block.layout.size(), block.seed) {
        panic!(
            "{what}: block {ptr:p} ({:?}) corrupted at byte {at}",
            block.layout
        );
    }
}

/// Checks and frees a block (ownership moves into this call).
fn free_block(ptr: *mut u8, block: Block, what: &str) {
    check_contents(ptr, &block, what);
    // SAFETY: `ptr` came from the global allocator with exactly this layout and is freed once.
    unsafe { dealloc(ptr, block.layout) };
}

/// Runs `ops` random operations, keeping at most `max_live` blocks; returns the still-live blocks.
fn run_model(seed: u64, ops: usize, max_live: usize) -> Shadow {
    let mut rng = Rng::new(seed);
    let mut shadow = Shadow::default();
    for _ in 0..ops {
        let roll = rng.percent();
        let must_free = shadow.live.len() >= max_live;
        if must_free || roll < 30 {
            if let Some((ptr, block)) = shadow.take_random(&mut rng) {
                free_block(ptr, block, "dealloc");
            }
        } else if roll < 50 {
            let Some((ptr, block)) = shadow.take_random(&mut rng) else {
                continue;
            };
            check_contents(ptr, &block, "before realloc");
            let new_size = random_size(&mut rng);
            // SAFETY: `ptr` is live with `block.layout`; the new size is non-zero and, rounded to the
            // alignment, far below isize::MAX.
            let new_ptr = unsafe { realloc(ptr, block.layout, new_size) };
            let layout =
                Layout::from_size_align(new_size, block.layout.align()).expect("valid layout");
            let kept = block.layout.size().min(new_size);
            assert!(!new_ptr.is_null(), "realloc to {new_size} returned null");
            if let Some(at) = first_mismatch(new_ptr, kept, block.seed) {
                panic!(
                    "realloc {} -> {new_size}: byte {at} of the kept {kept} lost",
                    block.layout.size()
                );
            }
            let moved = Block {
                layout,
                seed: rng.next(),
            };
            fill(new_ptr, new_size, moved.seed);
            shadow.insert(new_ptr, moved, "realloc");
        } else {
            let layout = Layout::from_size_align(random_size(&mut rng), random_align(&mut rng))
                .expect("layout");
            let zeroed = roll >= 88;
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe {
                if zeroed {
                    alloc_zeroed(layout)
                } else {
                    alloc(layout)
                }
            };
            assert!(!ptr.is_null(), "alloc({layout:?}) returned null");
            if zeroed {
                // SAFETY: a fresh block of `layout.size()` bytes.
                let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
                if let Some(at) = bytes.iter().position(|&b| b != 0) {
                    panic!(
                        "alloc_zeroed({layout:?}) = {ptr:p}: byte {at} is {:#x}",
                        bytes[at]
                    );
                }
            }
            let block = Block {
                layout,
                seed: rng.next(),
            };
            fill(ptr, layout.size(), block.seed);
            shadow.insert(ptr, block, if zeroed { "alloc_zeroed" } else { "alloc" });
        }
    }
    shadow
}

fn free_all(shadow: Shadow, what: &str) {
    for (start, block) in shadow.live {
        free_block(start as *mut u8, block, what);
    }
}

#[test]
#[should_panic(expected = "overlaps live block")]
fn shadow_model_rejects_an_overlap() {
    // The model itself must be able to fail: two blocks sharing bytes are refused (no memory is touched).
    let layout = Layout::from_size_align(64, 16).expect("layout");
    let mut shadow = Shadow::default();
    shadow.insert(0x10_000 as *mut u8, Block { layout, seed: 1 }, "first");
    shadow.insert(0x10_020 as *mut u8, Block { layout, seed: 2 }, "second");
}

#[test]
fn random_ops_match_the_shadow_model() {
    for seed in 1..=6 {
        let shadow = run_model(seed, 60_000, 3_000);
        free_all(shadow, "final dealloc");
    }
}

/// A raw block moving between threads; ownership travels with it.
struct Parcel(*mut u8, Block);
// SAFETY: a parcel is owned by exactly one thread at a time; the sender forgets it once sent.
unsafe impl Send for Parcel {}

#[test]
fn threads_free_each_others_blocks() {
    const THREADS: usize = 6;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Parcel>()).unzip();
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, inbox)| {
            let next = senders[(i + 1) % THREADS].clone();
            std::thread::spawn(move || {
                let mut shadow = run_model(100 + i as u64, 20_000, 2_000);
                // Hand half of the survivors to the next thread, free what the previous one sends.
                let mut rng = Rng::new(7 + i as u64);
                while let Some((ptr, block)) = shadow.take_random(&mut rng) {
                    if shadow.live.len().is_multiple_of(2) {
                        next.send(Parcel(ptr, block)).expect("next thread alive");
                    } else {
                        free_block(ptr, block, "local dealloc");
                    }
                }
                drop(next);
                let mut remote = 0usize;
                while let Ok(Parcel(ptr, block)) = inbox.recv() {
                    free_block(ptr, block, "remote dealloc");
                    remote += 1;
                }
                remote
            })
        })
        .collect();
    drop(senders);
    let remote: usize = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();
    assert!(remote > 0, "no block crossed threads");
}

#[test]
fn blocks_outlive_the_thread_that_allocated_them() {
    for round in 0..8u64 {
        let orphans: Vec<Shadow> = (0..4)
            .map(|t| std::thread::spawn(move || run_model(round * 16 + t, 5_000, 1_500)))
            .map(|h| h.join().expect("allocating thread panicked"))
            .collect();
        // The allocating threads are gone: their blocks must be intact, then freed here and in new threads.
        let mut orphans = orphans.into_iter();
        let main_share = orphans.next().expect("four shadows");
        let adopters: Vec<_> = orphans
            .map(|shadow| {
                let parcels: Vec<Parcel> = shadow
                    .live
                    .into_iter()
                    .map(|(s, b)| Parcel(s as *mut u8, b))
                    .collect();
                std::thread::spawn(move || {
                    let fresh = run_model(round + 1_000, 2_000, 500);
                    for Parcel(ptr, block) in parcels {
                        free_block(ptr, block, "adopted dealloc");
                    }
                    free_all(fresh, "adopter's own dealloc");
                })
            })
            .collect();
        free_all(main_share, "main dealloc of orphans");
        for a in adopters {
            a.join().expect("adopter panicked");
        }
    }
}

/// Allocates and frees in its destructor, which runs at thread exit: possibly after hz3's own
/// per-thread teardown, whose order among thread-local destructors is not specified.
struct AllocatesOnDrop(Vec<String>);

impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        let joined: String = self.0.iter().map(String::as_str).collect();
        let copies: Vec<Vec<u8>> = (0..32)
            .map(|i| joined.as_bytes()[..i * 3].to_vec())
            .collect();
        assert!(copies
            .iter()
            .enumerate()
            .all(|(i, c)| c.len() == i * 3 && c.iter().all(|&b| b == b'x')));
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<AllocatesOnDrop>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn thread_local_destructors_allocate() {
    for wave in 0..25 {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    let strings = (0..64)
                        .map(|i| "x".repeat(1 + (i + t + wave) % 7))
                        .collect();
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(AllocatesOnDrop(strings)));
                    // A block that outlives this thread and its destructors.
                    vec![t as u8; 100 + t]
                })
            })
            .collect();
        for (t, h) in threads.into_iter().enumerate() {
            let survivor = h.join().expect("thread panicked (in a destructor?)");
            assert!(
                survivor.len() == 100 + t && survivor.iter().all(|&b| b == t as u8),
                "survivor corrupted"
            );
        }
    }
}

#[test]
fn std_collections_across_threads() {
    // Ordinary Rust code: growing maps, strings and vectors built in one thread and dropped in another.
    let (tx, rx) = mpsc::channel::<HashMap<String, Vec<u64>>>();
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for round in 0..20u64 {
                    let map: HashMap<String, Vec<u64>> = (0..500)
                        .map(|k| (format!("t{t}-r{round}-k{k}"), (0..k % 50).collect()))
                        .collect();
                    tx.send(map).expect("receiver alive");
                }
            })
        })
        .collect();
    drop(tx);
    let mut maps = 0;
    for map in rx {
        assert_eq!(map.len(), 500);
        for (key, values) in &map {
            let k: u64 = key
                .rsplit('k')
                .next()
                .and_then(|k| k.parse().ok())
                .expect("key ends in k<n>");
            assert_eq!(values.len() as u64, k % 50, "{key}");
            assert!(
                values.iter().copied().eq(0..k % 50),
                "{key}: values corrupted"
            );
        }
        maps += 1;
    }
    for p in producers {
        p.join().expect("producer panicked");
    }
    assert_eq!(maps, 80);
}
