//! Totals per box: on-CPU time by the rules, and off-CPU time by where user code was when its
//! thread left the CPU.
//!
//! Off-CPU stacks are classified on their user-space part only (frames before the first kernel
//! frame): the kernel side of a sleep is nearly always the futex path, whoever asked for it, so
//! the user side tells a glibc arena lock (`__lll_lock_wait_private`, box `mutex`) from the bench's
//! finish-line barrier (box `bench`). Sleep under a lock box (mutex or spin kind: a spin lock that
//! gives up and sleeps) is the lock **wait**.
//!
//! A libc string function (memset…) that perf could not unwind past has no caller in its stack
//! ([`CALLER_UNKNOWN`]); its time is spread over the boxes of its callers (the box at the caller's
//! frame, not the whole stack's: a page fault under a memset stays the fault's) in the stacks
//! that did unwind (or, when that function never unwound, any charged-to-caller function),
//! in proportion; when no stack unwound through one at all, to the box its thread's `[[thread]]`
//! rule names. Only when none does either does `caller_unknown` stay a box.
use crate::fold::{Folded, KERNEL_MARK};
use crate::profile::OFFCPU_PREEMPTED;
use crate::rules::{Classifier, LockKind, Rules, CALLER_UNKNOWN, OTHER};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct BoxTotal {
    pub name: String,
    pub lock: Option<LockKind>,
    /// On-CPU weight (the profile's unit, e.g. ns).
    pub cpu: f64,
    /// Off-CPU time asleep (not runnable) with user code in this box.
    pub asleep: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// Every box of the rules in order, zeros included, then the boxes met in the stacks
    /// (`<lib>.api` of allocators without rules), `other` last.
    pub boxes: Vec<BoxTotal>,
    /// Off-CPU time while runnable: preempted or yielded, waiting for a CPU.
    pub preempted: f64,
}

impl Attribution {
    /// `value` summed over the boxes `keep` selects.
    fn sum(&self, keep: impl Fn(&BoxTotal) -> bool, value: fn(&BoxTotal) -> f64) -> f64 {
        self.boxes.iter().filter(|b| keep(b)).map(value).sum()
    }

    pub fn cpu_total(&self) -> f64 {
        self.sum(|_| true, |b| b.cpu)
    }

    /// On-CPU time of the boxes of one lock kind.
    pub fn lock_cpu(&self, kind: LockKind) -> f64 {
        self.sum(|b| b.lock == Some(kind), |b| b.cpu)
    }

    pub fn cpu_of(&self, name: &str) -> f64 {
        self.sum(|b| b.name == name, |b| b.cpu)
    }

    /// Sleep under a lock box of either kind: the lock **wait**.
    pub fn wait(&self) -> f64 {
        self.sum(|b| b.lock.is_some(), |b| b.asleep)
    }

    /// Sleep anywhere else (the bench's barriers and joins, I/O, page-in...).
    pub fn asleep_elsewhere(&self) -> f64 {
        self.sum(|b| b.lock.is_none(), |b| b.asleep)
    }
}

/// The stack up to (not including) its first kernel frame.
fn user_part(stack: &str) -> &str {
    let mut end = stack.len();
    let mut at = 0usize;
    for frame in stack.split(';') {
        if frame.ends_with(KERNEL_MARK) {
            end = at.saturating_sub(1);
            break;
        }
        at += frame.len() + 1;
    }
    &stack[..end.min(stack.len())]
}

/// The innermost charged-to-caller frame of a stack (memset…) and the box its caller put it in
/// (not the whole stack's box: a memset that faults a page in is the page fault's, but the memset
/// itself is its caller's), if any.
fn charged_leaf<'s>(classifier: &mut Classifier, stack: &'s str) -> Option<(&'s str, usize)> {
    let frames: Vec<&str> = stack.split(';').collect();
    let at = frames
        .iter()
        .rposition(|f| classifier.is_charged_to_caller(f))?;
    Some((frames[at], classifier.prefix_boxes(stack)[at]))
}

/// Where the known callers of each charged-to-caller function put their time: weight per box,
/// per function and over all of them.
#[derive(Default)]
struct CallerShares {
    by_function: HashMap<String, HashMap<usize, f64>>,
    any: HashMap<usize, f64>,
}

impl CallerShares {
    fn add(&mut self, function: &str, box_index: usize, w: f64) {
        *self
            .by_function
            .entry(function.to_string())
            .or_default()
            .entry(box_index)
            .or_insert(0.0) += w;
        *self.any.entry(box_index).or_insert(0.0) += w;
    }

    /// Spreads `w` of `function` with no caller over `into` (indexed by box) as that function's own
    /// known callers share its time; false when it has none.
    fn spread_own(&self, function: &str, w: f64, into: &mut [f64]) -> bool {
        match self.by_function.get(function) {
            Some(shares) => Self::spread(shares, w, into),
            None => false,
        }
    }

    /// Spreads `w` as the known callers of every such function share theirs: the last resort, since
    /// another function's callers (an allocator's own memcpy, say) may have nothing to do with it.
    fn spread_any(&self, w: f64, into: &mut [f64]) -> bool {
        Self::spread(&self.any, w, into)
    }

    fn spread(shares: &HashMap<usize, f64>, w: f64, into: &mut [f64]) -> bool {
        let total: f64 = shares.values().sum();
        if total <= 0.0 {
            return false;
        }
        for (&b, &sw) in shares {
            into[b] += w * sw / total;
        }
        true
    }
}

/// Charges every on-CPU stack to its box, and every off-CPU stack to preemption or to the box
/// its user-space part was in.
pub fn attribute(cpu: &Folded, offcpu: &Folded, rules: &Rules) -> Attribution {
    let mut classifier = Classifier::new(rules);
    let mut cpu_boxes: Vec<(usize, &str, f64)> = Vec::new();
    let mut callers = CallerShares::default();
    for (stack, w) in &cpu.stacks {
        let b = classifier.box_of_stack(stack);
        cpu_boxes.push((b, stack, *w));
    }
    let unknown = classifier.names().iter().position(|n| n == CALLER_UNKNOWN);
    for &(_, stack, w) in &cpu_boxes {
        if let Some((f, caller)) = charged_leaf(&mut classifier, stack) {
            if Some(caller) != unknown {
                callers.add(f, caller, w);
            }
        }
    }
    let mut preempted = 0.0;
    let mut off_boxes: Vec<(usize, &str, f64)> = Vec::new();
    for (stack, w) in &offcpu.stacks {
        if stack.starts_with(OFFCPU_PREEMPTED) {
            preempted += w;
        } else {
            let user = user_part(stack);
            off_boxes.push((classifier.box_of_stack(user), user, *w));
        }
    }
    let names = classifier.names().to_vec();
    let unknown = names.iter().position(|n| n == CALLER_UNKNOWN);
    let mut weights = vec![0.0; names.len()];
    let mut asleep = vec![0.0; names.len()];
    for (list, into) in [(&cpu_boxes, &mut weights), (&off_boxes, &mut asleep)] {
        for &(b, stack, w) in list {
            // A caller-less string function goes, in order, to its own known callers, to its
            // thread's `[[thread]]` box, to the known callers of any such function; else it stays.
            let leaf = (Some(b) == unknown)
                .then(|| charged_leaf(&mut classifier, stack))
                .flatten();
            if leaf.is_some_and(|(f, _)| callers.spread_own(f, w, into)) {
                continue;
            }
            let comm = stack.split(';').next().unwrap_or_default();
            let owner = match rules.thread_box(comm) {
                Some(name) if leaf.is_some() => names.iter().position(|n| n == name),
                _ => None,
            };
            if let Some(owner) = owner {
                into[owner] += w;
            } else if !(leaf.is_some() && callers.spread_any(w, into)) {
                into[b] += w;
            }
        }
    }
    // The rules' boxes, those met in stacks, then `other`; `caller_unknown` only if it kept time.
    let other = classifier.other();
    let order = (0..names.len())
        .filter(|&i| i != other)
        .filter(|&i| Some(i) != unknown || weights[i] > 0.0 || asleep[i] > 0.0)
        .chain([other]);
    let boxes = order
        .map(|i| BoxTotal {
            name: names[i].clone(),
            lock: rules.lock_kind(&names[i]),
            cpu: weights[i],
            asleep: asleep[i],
        })
        .collect();
    debug_assert_eq!(names[other], OTHER);
    Attribution { boxes, preempted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_part_stops_before_the_kernel() {
        assert_eq!(user_part("a;b;entry_[k];futex_[k]"), "a;b");
        assert_eq!(user_part("a;b"), "a;b");
        assert_eq!(user_part("entry_[k]"), "");
    }

    #[test]
    fn unwound_less_string_time_goes_to_the_known_callers_in_proportion() {
        let (rules, _) = Rules::parse(
            "charged_to_caller = [\"memset\", \"memcpy\"]\n\
             [[box]]\nname = \"bench\"\nframes = [\"work\"]\n\
             [[box]]\nname = \"alloc\"\nframes = [\"my_malloc\"]\n\
             [[box]]\nname = \"fault\"\nframes = [\"page_fault\"]\nabsorb = true\n\
             [[thread]]\ncomm = \"w-*\"\nbox = \"alloc\"\n",
            "t",
        )
        .unwrap();
        let cpu = Folded::from_text(
            "b;work;memset 3\nb;work;my_malloc;memset 1\nb;memset 8\n\
             b;work;memcpy 2\nb;memcpy 4\nb;work;memset;page_fault 4\n",
        )
        .unwrap();
        let a = attribute(&cpu, &Folded::default(), &rules);
        // memset's 8 split 7:1 as its known callers (the faulting memset was called by `work`,
        // though the fault is the kernel's); memcpy's 4 all to the bench.
        assert_eq!(
            (a.cpu_of("bench"), a.cpu_of("alloc"), a.cpu_of("fault")),
            (3.0 + 7.0 + 2.0 + 4.0, 1.0 + 1.0, 4.0)
        );
        assert_eq!(a.cpu_of(OTHER), 0.0);
        assert!(!a.boxes.iter().any(|b| b.name == CALLER_UNKNOWN));
        assert_eq!(a.cpu_total(), 22.0);

        // No stack ever unwound through one: the thread's rule names the owner, else the time
        // stays visible as caller_unknown.
        let cpu = Folded::from_text("b;memset 5\nb;work 1\nw-1;memset 2\n").unwrap();
        let a = attribute(&cpu, &Folded::default(), &rules);
        assert_eq!((a.cpu_of(CALLER_UNKNOWN), a.cpu_of("alloc")), (5.0, 2.0));
        assert_eq!(a.boxes.last().unwrap().name, OTHER);

        // memset never unwound, but memcpy did (from the bench): the thread's rule wins over
        // memcpy's callers, which only take what no thread rule names.
        let cpu = Folded::from_text("b;work;memcpy 2\nw-1;memset 6\nb;memset 3\n").unwrap();
        let a = attribute(&cpu, &Folded::default(), &rules);
        assert_eq!((a.cpu_of("alloc"), a.cpu_of("bench")), (6.0, 2.0 + 3.0));
        assert_eq!(a.cpu_of(CALLER_UNKNOWN), 0.0);
    }

    #[test]
    fn cpu_by_box_and_offcpu_by_user_side() {
        let (rules, _) = Rules::parse(
            "[[box]]\nname = \"futex\"\nframes = [\"futex_wait\"]\nlock = \"mutex\"\nabsorb = true\n\
             [[box]]\nname = \"mutex\"\nframes = [\"__lll_lock_wait\"]\nlock = \"mutex\"\n\
             [[box]]\nname = \"spin\"\nframes = [\"*SpinLoop*\"]\nlock = \"spin\"\n\
             [[box]]\nname = \"bench\"\nframes = [\"work\"]\n",
            "t",
        )
        .unwrap();
        let cpu = Folded::from_text(
            "b;main 10\nb;work;SpinLock::SpinLoop 5\nb;work;futex_wait;schedule 2\n",
        )
        .unwrap();
        let off = Folded::from_text(
            "off-cpu-blocked;work;__lll_lock_wait;futex_wait_[k];schedule_[k] 7\n\
             off-cpu-blocked;work;futex_wait_[k];schedule_[k] 3\n\
             off-cpu-blocked;main;read_[k] 1\n\
             off-cpu-preempted;work 4\n",
        )
        .unwrap();
        let a = attribute(&cpu, &off, &rules);
        assert_eq!(
            (a.cpu_of("futex"), a.cpu_of("spin"), a.cpu_of("other")),
            (2.0, 5.0, 10.0)
        );
        assert_eq!(a.cpu_total(), 17.0);
        assert_eq!(
            (a.lock_cpu(LockKind::Mutex), a.lock_cpu(LockKind::Spin)),
            (2.0, 5.0)
        );
        // The barrier-like sleep from `work` is the bench's, not a lock wait.
        assert_eq!(
            (a.wait(), a.asleep_elsewhere(), a.preempted),
            (7.0, 4.0, 4.0)
        );
        let asleep = |n: &str| a.boxes.iter().find(|b| b.name == n).unwrap().asleep;
        assert_eq!(
            (asleep("mutex"), asleep("bench"), asleep("other")),
            (7.0, 3.0, 1.0)
        );
    }
}
