//! The bounded single-producer single-consumer ring that carries remote frees to the next thread.
//!
//! The producer keeps a private copy of the consumer's position, so a push touches the shared
//! consumer cache line only when the ring looks full; a drain reads the producer's position once and
//! frees everything published so far. Both are the same few instructions under every allocator.
//!
//! Each object travels with its requested size, so the thread that frees it can count the bytes
//! it no longer holds ([`crate::live`]). The sizes sit in an array of their own (4 bytes a slot,
//! allocated with the pointers' array at construction; both count as the bench's live bytes).
use crate::live::Padded;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct Ring {
    slots: Box<[UnsafeCell<*mut u8>]>,
    sizes: Box<[UnsafeCell<u32>]>,
    mask: usize,
    /// Next slot the consumer reads; written only by the consumer.
    head: Padded<AtomicUsize>,
    /// Next slot the producer writes; written only by the producer.
    tail: Padded<AtomicUsize>,
    /// Set by the producer after its last push (matched mode waits for it).
    producer_done: Padded<AtomicBool>,
}

// SAFETY: a slot (its pointer and its size) is written by the producer only while it is outside head..tail and read by the
// consumer only while it is inside; the Release store of `tail` / Acquire load in `drain` (and the
// mirror pair on `head`) order those accesses, so no slot is ever accessed by both at once.
unsafe impl Sync for Ring {}

/// The producer's side: its cached view of the consumer position.
pub struct Producer<'a> {
    ring: &'a Ring,
    cached_head: usize,
}

impl Ring {
    /// `capacity` must be a power of two (the command line checks it).
    pub fn new(capacity: usize) -> Ring {
        assert!(
            capacity.is_power_of_two(),
            "ring capacity {capacity} is not a power of two"
        );
        Ring {
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(std::ptr::null_mut()))
                .collect(),
            sizes: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            mask: capacity - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            producer_done: Padded(AtomicBool::new(false)),
        }
    }

    /// The heap bytes a ring of `capacity` slots holds (its pointers and sizes): counted live by
    /// the workloads, so the overhead figure is the allocator's, not the bench's.
    pub fn heap_bytes(capacity: usize) -> usize {
        capacity * (std::mem::size_of::<*mut u8>() + std::mem::size_of::<u32>())
    }

    /// The producer handle; exactly one thread may hold it.
    pub fn producer(&self) -> Producer<'_> {
        Producer {
            ring: self,
            cached_head: self.head.0.load(Ordering::Acquire),
        }
    }

    /// Hands every published object and its size to `free` and returns how many there were.
    /// Consumer only.
    #[inline]
    pub fn drain(&self, mut free: impl FnMut(*mut u8, usize)) -> u64 {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        if head == tail {
            return 0;
        }
        for pos in head..tail {
            // SAFETY: head..tail was published by the producer (Acquire above) and is ours until
            // the Release store below hands the slots back.
            let (object, size) = unsafe {
                (
                    *self.slots[pos & self.mask].get(),
                    *self.sizes[pos & self.mask].get(),
                )
            };
            free(object, size as usize);
        }
        self.head.0.store(tail, Ordering::Release);
        (tail - head) as u64
    }

    pub fn producer_done(&self) -> bool {
        self.producer_done.0.load(Ordering::Acquire)
    }
}

impl Producer<'_> {
    /// Publishes `object` of `size` bytes (at most 4 GiB); false when the ring is full (the caller
    /// frees it locally).
    #[inline]
    pub fn push(&mut self, object: *mut u8, size: usize) -> bool {
        let ring = self.ring;
        let tail = ring.tail.0.load(Ordering::Relaxed);
        if tail - self.cached_head > ring.mask {
            self.cached_head = ring.head.0.load(Ordering::Acquire);
            if tail - self.cached_head > ring.mask {
                return false;
            }
        }
        // SAFETY: tail - head <= mask, so this slot is outside head..tail: the consumer is done
        // with it (its Release on head, our Acquire above) and will not read it before our Release.
        unsafe {
            *ring.slots[tail & ring.mask].get() = object;
            *ring.sizes[tail & ring.mask].get() = size as u32;
        }
        ring.tail.0.store(tail + 1, Ordering::Release);
        true
    }

    /// Tells the consumer no more pushes will come.
    pub fn finish(&self) {
        self.ring.producer_done.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ring_refuses_then_accepts_after_drain() {
        let ring = Ring::new(4);
        let mut producer = ring.producer();
        for i in 1..=4usize {
            assert!(producer.push(i as *mut u8, i));
        }
        assert!(
            !producer.push(5 as *mut u8, 5),
            "a 4-slot ring accepted a 5th object"
        );
        let mut got = Vec::new();
        assert_eq!(ring.drain(|p, size| got.push((p as usize, size))), 4);
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
        assert!(producer.push(6 as *mut u8, 60));
        assert_eq!(ring.drain(|p, size| got.push((p as usize, size))), 1);
        assert_eq!(got.last(), Some(&(6, 60)));
    }

    #[test]
    fn concurrent_transfer_delivers_everything_once_in_order() {
        let ring = Ring::new(8);
        let total = 100_000usize;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut producer = ring.producer();
                for i in 1..=total {
                    while !producer.push(i as *mut u8, i) {
                        std::hint::spin_loop();
                    }
                }
                producer.finish();
            });
            let mut expected = 1usize;
            loop {
                let done = ring.producer_done();
                let n = ring.drain(|p, size| {
                    assert_eq!((p as usize, size), (expected, expected));
                    expected += 1;
                });
                if n == 0 && done {
                    break;
                }
            }
            assert_eq!(expected, total + 1);
        });
    }
}
