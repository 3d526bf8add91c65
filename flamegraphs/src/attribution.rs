//! Totals per box: on-CPU time by the rules, and off-CPU time split into lock wait, other
//! blocking and preemption.
use crate::fold::Folded;
use crate::profile::{OFFCPU_BLOCKED, OFFCPU_PREEMPTED};
use crate::rules::{Classifier, LockKind, Rules};

#[derive(Debug, Clone, PartialEq)]
pub struct BoxTotal {
    pub name: String,
    pub lock: Option<LockKind>,
    /// On-CPU weight (the profile's unit, e.g. ns).
    pub cpu: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// Every box of the rules in order, zeros included, `other` last.
    pub boxes: Vec<BoxTotal>,
    /// Off-CPU time asleep inside a mutex-kind box (the futex path): the lock **wait**.
    pub wait: f64,
    /// Off-CPU time asleep anywhere else (I/O, page-in, join, condition variables...).
    pub blocked_other: f64,
    /// Off-CPU time while runnable: preempted or yielded, waiting for a CPU.
    pub preempted: f64,
}

impl Attribution {
    pub fn cpu_total(&self) -> f64 {
        self.boxes.iter().map(|b| b.cpu).sum()
    }

    /// On-CPU time of the boxes of one lock kind.
    pub fn lock_cpu(&self, kind: LockKind) -> f64 {
        self.boxes
            .iter()
            .filter(|b| b.lock == Some(kind))
            .map(|b| b.cpu)
            .sum()
    }

    pub fn cpu_of(&self, name: &str) -> f64 {
        self.boxes
            .iter()
            .filter(|b| b.name == name)
            .map(|b| b.cpu)
            .sum()
    }
}

/// Charges every on-CPU stack to its box, and every off-CPU stack to wait / blocked / preempted.
pub fn attribute(cpu: &Folded, offcpu: &Folded, rules: &Rules) -> Attribution {
    let mut classifier = Classifier::new(rules);
    let names = classifier.names().to_vec();
    let mut weights = vec![0.0; names.len()];
    for (stack, w) in &cpu.stacks {
        weights[classifier.box_of_stack(stack)] += w;
    }
    let (mut wait, mut blocked_other, mut preempted) = (0.0, 0.0, 0.0);
    for (stack, w) in &offcpu.stacks {
        if stack.starts_with(OFFCPU_PREEMPTED) {
            preempted += w;
            continue;
        }
        let b = classifier.box_of_stack(stack);
        if stack.starts_with(OFFCPU_BLOCKED) && rules.lock_kind(&names[b]) == Some(LockKind::Mutex)
        {
            wait += w;
        } else {
            blocked_other += w;
        }
    }
    let boxes = names
        .iter()
        .zip(weights)
        .map(|(name, cpu)| BoxTotal {
            name: name.clone(),
            lock: rules.lock_kind(name),
            cpu,
        })
        .collect();
    Attribution {
        boxes,
        wait,
        blocked_other,
        preempted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_by_box_and_offcpu_split() {
        let (rules, _) = Rules::parse(
            "[[box]]\nname = \"futex\"\nframes = [\"futex_wait\"]\nlock = \"mutex\"\nabsorb = true\n\
             [[box]]\nname = \"spin\"\nframes = [\"*SpinLoop*\"]\nlock = \"spin\"\n",
            "t",
        )
        .unwrap();
        let cpu = Folded::from_text(
            "b;work 10\nb;work;SpinLock::SpinLoop 5\nb;work;futex_wait;schedule 2\n",
        )
        .unwrap();
        let off = Folded::from_text(
            "off-cpu-blocked;work;futex_wait;schedule 7\noff-cpu-blocked;work;read 3\noff-cpu-preempted;work 4\n",
        )
        .unwrap();
        let a = attribute(&cpu, &off, &rules);
        assert_eq!(a.cpu_of("futex"), 2.0);
        assert_eq!(a.cpu_of("spin"), 5.0);
        assert_eq!(a.cpu_of("other"), 10.0);
        assert_eq!(a.cpu_total(), 17.0);
        assert_eq!(
            (a.lock_cpu(LockKind::Mutex), a.lock_cpu(LockKind::Spin)),
            (2.0, 5.0)
        );
        assert_eq!((a.wait, a.blocked_other, a.preempted), (7.0, 3.0, 4.0));
    }
}
