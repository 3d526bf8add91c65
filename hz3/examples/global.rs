//! hz3 as the Rust global allocator: every Box/Vec/String/thread below is served by hz3.
//! Run: `cargo run -p hz3 --example global` (or `--no-default-features --features fast`).
//! Threads exchange boxes so that many frees are remote, then the program checks every value.

use std::collections::HashMap;
use std::sync::mpsc;

#[global_allocator]
static ALLOC: hz3::Hz3 = hz3::Hz3;

fn main() {
    let threads = 8;
    let per_thread = 20_000;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| mpsc::channel::<Box<[u64]>>()).unzip();
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let next = senders[(i + 1) % threads].clone();
            std::thread::spawn(move || {
                let mut checked = 0u64;
                for n in 0..per_thread {
                    let len = 1 + (n * 7 + i) % 300;
                    let block: Box<[u64]> = (0..len as u64).map(|v| v ^ i as u64).collect();
                    next.send(block).expect("next thread is alive");
                    while let Ok(got) = rx.try_recv() {
                        checked += verify(&got);
                    }
                }
                // Our receiver lives until the previous thread hangs up, so no send above can fail.
                drop(next);
                for got in rx {
                    checked += verify(&got);
                }
                checked
            })
        })
        .collect();
    drop(senders);
    let checked: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();

    let mut map: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..50_000u32 {
        map.insert(format!("key-{i}"), vec![i as u8; (i % 5000) as usize]);
    }
    assert!(map
        .iter()
        .all(|(k, v)| k.starts_with("key-")
            && v.iter().all(|&b| b == v.first().copied().unwrap_or(0))));
    let big = vec![7u8; 10 << 20];
    assert!(hz3::usable_size(big.as_ptr() as *mut u8) >= big.len());
    println!(
        "hz3 lane {}: {checked} blocks checked across threads (of {}), {} map entries",
        hz3::LANE,
        threads * per_thread,
        map.len()
    );
    assert_eq!(
        checked as usize,
        threads * per_thread,
        "every block sent must be received"
    );
}

/// Each block holds `v ^ sender` for v = 0..len: recover the sender from the first word and check the rest.
fn verify(block: &[u64]) -> u64 {
    let sender = block[0];
    for (v, &x) in block.iter().enumerate() {
        assert_eq!(x, v as u64 ^ sender, "block corrupted");
    }
    1
}
