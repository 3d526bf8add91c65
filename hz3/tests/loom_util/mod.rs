//! Shared by the loom model tests: runs one model under explicit bounds, reports its size, and
//! checks that the interleavings the model exists for were really explored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Preemptions explored per execution unless `LOOM_MAX_PREEMPTIONS` says otherwise: bounded so
/// that scripts/loom stays within minutes on two cores; most real interleaving bugs need 2.
const DEFAULT_PREEMPTIONS: usize = 3;

/// Runs `model` under loom, exhaustively up to the preemption bound, prints how many executions
/// that took (visible with `--nocapture`), then fails unless every event in `must_see` was
/// recorded in some execution.
///
/// loom's search can silently skip interleavings (tokio-rs/loom#392: a thread whose pending
/// operation is a plain load, as the Treiber push's first is, is not explored against a racing
/// load that came first), so a model that passes proves little unless it shows it got there.
pub fn check<F>(name: &str, must_see: &[&'static str], model: F)
where
    F: Fn(&Arc<Witness>) + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    let bound = builder.preemption_bound;
    let witness = Arc::new(Witness::default());
    let executions = Arc::new(AtomicUsize::new(0));
    let (w, counter) = (witness.clone(), executions.clone());
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model(&w);
    });
    let seen = witness.seen.lock().unwrap().clone();
    println!(
        "loom model {name}: {} executions, preemption bound {:?}, {:.1} s, seen {:?}",
        executions.load(Ordering::Relaxed),
        bound,
        start.elapsed().as_secs_f64(),
        seen
    );
    for event in must_see {
        assert!(
            seen.contains_key(event),
            "loom model {name}: no execution reached `{event}`, so the model did not test it"
        );
    }
}

/// Events executions reached, counted across the whole search.
#[derive(Default)]
pub struct Witness {
    seen: Mutex<BTreeMap<&'static str, usize>>,
}

impl Witness {
    pub fn hit(&self, event: &'static str) {
        *self.seen.lock().unwrap().entry(event).or_default() += 1;
    }
}
