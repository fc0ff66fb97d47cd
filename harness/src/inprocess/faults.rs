//! Seeded fault decisions for the segment: for every packet of a kind, each
//! probabilistic fault (drop, delay, duplicate) draws from its own PRNG
//! stream seeded from the scenario's seed and the fault's index, so the k-th
//! packet of a kind meets the same fate in every run. It decides only; the
//! segment carries the decisions out. TFTP request errors and truncation are
//! applied by the TFTP handler ([`super::tftp`]), not here.

use super::config::{Fault, PacketKind};
use std::time::Duration;

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    /// Do not deliver it.
    pub drop: bool,
    /// Deliver it after this long.
    pub delay: Duration,
    /// Deliver it this many extra times.
    pub duplicates: u32,
}

struct Rule {
    kind: PacketKind,
    percent: f64,
    effect: Effect,
    rng: fastrand::Rng,
}

enum Effect {
    Drop,
    Delay(Duration),
    Duplicate,
}

/// Counters of applied faults (reported in the logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Packets dropped.
    pub dropped: u64,
    /// Packets delayed.
    pub delayed: u64,
    /// Packets duplicated.
    pub duplicated: u64,
}

/// The probabilistic faults of one run.
pub struct FaultInjector {
    rules: Vec<Rule>,
    /// What has been applied so far.
    pub stats: FaultStats,
}

impl FaultInjector {
    /// Builds the injector for `faults` (non-probabilistic faults are
    /// skipped) with `seed`.
    pub fn new(seed: u64, faults: &[Fault]) -> FaultInjector {
        let mut rules = Vec::new();
        for (i, f) in faults.iter().enumerate() {
            let (kind, percent, effect) = match f {
                Fault::Drop { packets, percent } => (*packets, *percent, Effect::Drop),
                Fault::Delay {
                    packets,
                    percent,
                    delay_ms,
                } => (
                    *packets,
                    *percent,
                    Effect::Delay(Duration::from_millis(*delay_ms)),
                ),
                Fault::Duplicate { packets, percent } => (*packets, *percent, Effect::Duplicate),
                Fault::TftpError { .. } | Fault::Truncate { .. } => continue,
            };
            // One independent stream per rule: splitmix-style spreading of
            // (seed, index) so neighbouring seeds do not share streams.
            let s = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rules.push(Rule {
                kind,
                percent,
                effect,
                rng: fastrand::Rng::with_seed(s),
            });
        }
        FaultInjector {
            rules,
            stats: FaultStats::default(),
        }
    }

    /// Whether any rule can apply to `kind`.
    pub fn affects(&self, kind: PacketKind) -> bool {
        self.rules.iter().any(|r| r.kind == kind)
    }

    /// Decides the fate of the next packet of `kind`.
    pub fn decide(&mut self, kind: PacketKind) -> Action {
        let mut a = Action::default();
        for r in self.rules.iter_mut().filter(|r| r.kind == kind) {
            // Always draw, so one rule's outcome never shifts another's stream.
            let hit = r.rng.f64() * 100.0 < r.percent;
            if !hit {
                continue;
            }
            match r.effect {
                Effect::Drop => a.drop = true,
                Effect::Delay(d) => a.delay = a.delay.saturating_add(d),
                Effect::Duplicate => a.duplicates += 1,
            }
        }
        if a.drop {
            self.stats.dropped += 1;
        } else {
            if !a.delay.is_zero() {
                self.stats.delayed += 1;
            }
            if a.duplicates > 0 {
                self.stats.duplicated += 1;
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> Vec<Fault> {
        vec![
            Fault::Drop {
                packets: PacketKind::TftpData,
                percent: 10.0,
            },
            Fault::Duplicate {
                packets: PacketKind::TftpAck,
                percent: 50.0,
            },
        ]
    }

    fn run(seed: u64) -> Vec<Action> {
        let mut f = FaultInjector::new(seed, &faults());
        (0..2000)
            .map(|i| {
                f.decide(if i % 2 == 0 {
                    PacketKind::TftpData
                } else {
                    PacketKind::TftpAck
                })
            })
            .collect()
    }

    #[test]
    fn same_seed_same_decisions() {
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn rates_are_roughly_the_percentages() {
        let v = run(1);
        let drops = v.iter().step_by(2).filter(|a| a.drop).count();
        let dups = v
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|a| a.duplicates > 0)
            .count();
        assert!((60..=140).contains(&drops), "{drops} drops of 1000");
        assert!((420..=580).contains(&dups), "{dups} duplicates of 1000");
        // Kinds without a rule are never touched.
        let mut f = FaultInjector::new(1, &faults());
        assert!(!f.affects(PacketKind::Dhcp));
        assert_eq!(f.decide(PacketKind::Dhcp), Action::default());
    }
}
