//! The catalogue of hz3's one-shot event counters, kept in one place.
//!
//! The allocator (`hz3`, feature `probes`) counts these per thread and dumps them once; the
//! analyzer reads the dump. Everything here except the `reader` module is `no_std` and never
//! allocates, because it runs inside `malloc`.
#![cfg_attr(not(feature = "reader"), no_std)]

// The unit tests use std collections even when the crate itself is built `no_std`.
#[cfg(all(test, not(feature = "reader")))]
extern crate std;

/// Bumped whenever the dump's layout or the meaning of an existing key changes, or an event joins.
/// Version 2 dropped the owner-routing events ([`RETIRED_EVENT_KEYS`]); versions 2 and 3 added the
/// events in [`ADDED_EVENT_KEYS`].
pub const SCHEMA_VERSION: u32 = 3;

/// Keys of events added after version 1, each with the version that added it: an older dump lacks
/// them and the reader reads them as 0 there; a dump of that version or later must hold them.
/// Version 2 added the realloc and remap counts of the large box, version 3 the transfer cache's
/// foreign refills.
pub const ADDED_EVENT_KEYS: &[(&str, u32)] = &[
    ("large.remap_refused", 2),
    ("realloc.copy", 2),
    ("realloc.copy_bytes", 2),
    ("transfer.foreign", 3),
];

/// The first dump version that holds `event` (1 for the events version 1 had).
pub fn first_version_with(event: Event) -> u32 {
    ADDED_EVENT_KEYS
        .iter()
        .find(|(k, _)| *k == event.key())
        .map_or(1, |(_, v)| *v)
}

/// Keys of events a version-1 dump holds that the allocator no longer counts: the owner-routing
/// A/Bs (`remote-inbox`, `remote-stash`) that counted them were retired (docs/decisions.md, last
/// in commit 0ab615a). The reader accepts them in a version-1 dump, checks their counts and drops
/// them, so old run directories still read.
pub const RETIRED_EVENT_KEYS: &[&str] = &[
    "remote.enqueue",
    "remote.flush",
    "remote.flush_budget_stop",
    "remote.flush_objects",
    "remote.flush_batch_1",
    "remote.flush_batch_2_3",
    "remote.flush_batch_4_7",
    "remote.flush_batch_8_15",
    "remote.flush_batch_16_31",
    "remote.flush_batch_32_63",
    "remote.flush_batch_64_up",
    "remote.drain_calls",
    "remote.drain_objects",
];

macro_rules! catalogue {
    ($(#[$enum_meta:meta])* $enum_name:ident { $( $variant:ident => $key:literal, $meaning:literal; )* }) => {
        $(#[$enum_meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $enum_name { $( $variant, )* }

        impl $enum_name {
            /// Every entry, in dump order.
            pub const ALL: &'static [$enum_name] = &[ $( $enum_name::$variant, )* ];
            pub const COUNT: usize = Self::ALL.len();

            /// Stable key used in the dump files.
            pub const fn key(self) -> &'static str {
                match self { $( $enum_name::$variant => $key, )* }
            }

            /// One line saying what a count of this entry means.
            pub const fn meaning(self) -> &'static str {
                match self { $( $enum_name::$variant => $meaning, )* }
            }

            pub fn from_key(key: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|e| e.key() == key)
            }

            #[inline(always)]
            pub const fn index(self) -> usize { self as usize }
        }
    };
}

catalogue! {
    /// Events counted by the allocator's boxes.
    Event {
        MallocCacheHit => "malloc.cache_hit", "malloc served from the thread cache (the hot path)";
        MallocCacheMiss => "malloc.cache_miss", "malloc found its thread-cache class empty and entered slow alloc";
        FreeLocal => "free.local", "free pushed onto the freeing thread's own cache";
        FreeCacheOverflow => "free.cache_overflow", "free found the thread-cache class over its cap and spilled a batch";
        SlowAllocRefill => "slow_alloc.refill", "slow-alloc refills of a thread-cache class";
        SlowAllocObjects => "slow_alloc.objects", "objects moved into thread caches by slow-alloc refills";
        CentralPushCalls => "central.push_calls", "pushes to the central pool (one lock hold each)";
        CentralPushObjects => "central.push_objects", "objects pushed to the central pool";
        CentralPopCalls => "central.pop_calls", "pops from the central pool (one lock hold each)";
        CentralPopObjects => "central.pop_objects", "objects popped from the central pool";
        RemoteFree => "remote.free", "frees of an object owned by another thread";
        TransferHit => "transfer.hit", "refills served by a whole batch from the transfer cache (scale lane)";
        TransferForeign => "transfer.foreign", "transfer-cache refills that took a batch another thread's cache spilled, or one whose spiller had sunk below the top four (its objects were last written on another core)";
        TransferMiss => "transfer.miss", "refills the transfer cache could not serve";
        TransferPush => "transfer.push", "batches spilled into the transfer cache";
        TransferPushFull => "transfer.push_full", "spills that found the transfer cache full and went to central";
        RunFresh => "page.run_fresh", "fresh runs taken from the page source";
        RunRelease => "page.run_release", "empty runs given back to the page source";
        MmapCalls => "os.mmap_calls", "mmap calls";
        MmapBytes => "os.mmap_bytes", "bytes mapped";
        MunmapCalls => "os.munmap_calls", "munmap calls";
        MunmapBytes => "os.munmap_bytes", "bytes unmapped";
        MadviseCalls => "os.madvise_calls", "madvise(DONTNEED) calls that return memory";
        MadviseBytes => "os.madvise_bytes", "bytes returned by madvise";
        MunmapRefused => "os.munmap_refused", "munmap calls the kernel refused (range kept, its pages returned)";
        MremapCalls => "os.mremap_calls", "mremap calls that moved or grew a large block without copying";
        MremapBytes => "os.mremap_bytes", "bytes of large blocks after an mremap";
        LargeAlloc => "large.alloc", "allocations above the small limit";
        LargeFree => "large.free", "frees of large allocations";
        LargeCacheHit => "large.cache_hit", "large allocations served from the cache of free extents";
        LargeCacheMiss => "large.cache_miss", "large allocations that had to map new memory";
        LargeGrowInPlace => "large.grow_in_place", "large reallocs grown in place (slack or a free neighbour)";
        LargeShrinkInPlace => "large.shrink_in_place", "large reallocs shrunk in place (tail returned to the cache)";
        LargeRemap => "large.remap", "large reallocs moved by mremap instead of a copy";
        LargeHugeFail => "large.huge_fail", "large requests refused without touching the cache (larger than it could ever free)";
        LargeRemapRefused => "large.remap_refused", "mremaps of a large block the kernel refused (the block was copied instead)";
        ReallocCopy => "realloc.copy", "reallocs that moved a block by copying it (small or large)";
        ReallocCopyBytes => "realloc.copy_bytes", "bytes copied by reallocs that moved a block";
        DecayPass => "decay.passes", "decay passes run (at most 4 per decay period, each returning what has expired)";
        DecayPurgeRuns => "decay.purge_runs", "empty runs returned to the kernel by decay";
        DecayPurgeExtents => "decay.purge_extents", "free large extents returned to the kernel by decay or the dirty bound";
        DecayPurgeBytes => "decay.purge_bytes", "bytes returned to the kernel by decay passes";
        ThreadInit => "thread.init", "thread caches created";
        ThreadExit => "thread.exit", "thread caches returned at thread exit";
    }
}

catalogue! {
    /// Places where the allocator takes a lock; each gets its own [`LockStat`] row.
    LockSite {
        Central => "central", "the central pool's lock (one per size class, or one per shard)";
        Transfer => "transfer", "the transfer cache's lock (scale lane)";
        PageSource => "page_source", "the page source's lock (fresh runs, run release)";
        Large => "large", "the large-object box's lock";
    }
}

catalogue! {
    /// What is counted for every lock site: the mutex-versus-spin split this project exists to show.
    LockStat {
        Uncontended => "acquire_uncontended", "acquisitions that got the lock at the first try";
        Spun => "acquire_spun", "acquisitions that got the lock while spinning";
        SpinIters => "spin_iters", "spin-loop iterations, summed";
        Waited => "acquire_waited", "acquisitions that slept in futex wait first";
        WaitNs => "wait_ns", "nanoseconds spent spinning or waiting (clock read only when contended)";
        Wakes => "futex_wakes", "futex wake calls made on unlock";
    }
}

/// Flat index of a lock counter in a `[u64; LOCK_SLOTS]` table.
#[inline(always)]
pub const fn lock_slot(site: LockSite, stat: LockStat) -> usize {
    site.index() * LockStat::COUNT + stat.index()
}

pub const LOCK_SLOTS: usize = LockSite::COUNT * LockStat::COUNT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_round_trip() {
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Event::from_key(e.key()), Some(*e));
            assert!(!e.meaning().is_empty());
        }
        let mut keys: std::vec::Vec<_> = Event::ALL.iter().map(|e| e.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Event::COUNT);
        assert!(RETIRED_EVENT_KEYS
            .iter()
            .all(|k| Event::from_key(k).is_none()));
    }

    #[test]
    fn added_events_are_current_events_of_versions_after_the_first() {
        for (key, version) in ADDED_EVENT_KEYS {
            let event = Event::from_key(key).unwrap_or_else(|| panic!("{key} is not an event"));
            assert!(
                (2..=SCHEMA_VERSION).contains(version),
                "{key}: version {version}"
            );
            assert_eq!(first_version_with(event), *version);
        }
        assert_eq!(first_version_with(Event::MallocCacheHit), 1);
    }

    #[test]
    fn lock_slots_are_dense() {
        let last = lock_slot(LockSite::Large, LockStat::Wakes);
        assert_eq!(last + 1, LOCK_SLOTS);
    }
}

/// One thread's counters as the allocator hands them to the dump writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadRow {
    /// OS thread id (gettid).
    pub tid: u64,
    pub events: [u64; Event::COUNT],
    pub locks: [u64; LOCK_SLOTS],
}

/// Everything one dump carries. Built by the allocator without allocating (borrowed slices).
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// "fast" or "scale".
    pub lane: &'a str,
    pub pid: u32,
    /// Wall-clock time of the dump, nanoseconds since the Unix epoch.
    pub wall_ns: u64,
    /// Sums over every thread, live and exited.
    pub totals: &'a [u64; Event::COUNT],
    pub lock_totals: &'a [u64; LOCK_SLOTS],
    /// Live threads, plus at most a bounded number of exited ones (the rest only in the totals).
    pub threads: &'a [ThreadRow],
}

/// Where the no-allocation writer sends bytes (a file descriptor, a fixed buffer, a Vec in tests).
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

#[cfg(feature = "reader")]
impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

pub mod dump;
#[cfg(feature = "reader")]
pub mod reader;
pub use dump::{write_csv, write_json};
