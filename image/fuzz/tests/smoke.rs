//! Fuzz smoke run (seconds): every target over its seeds, every past crash
//! in `regressions/`, and a few thousand deterministic mutations of the
//! seeds. The long coverage-guided runs are `ci/nightly fuzz TARGET`.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("pxelinux_config", s390_pxelinux_fuzz::pxelinux_config),
    ("inspect", s390_pxelinux_fuzz::inspect),
    ("newc_roundtrip", s390_pxelinux_fuzz::newc_roundtrip),
    ("network_packets", s390_pxelinux_fuzz::network_packets),
];

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    std::fs::read(e.path())
                        .ok()
                        .map(|b| (e.path().display().to_string(), b))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(8) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.truncate(i);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let b = [b'\n', b'\0', b'=', b'/', b',', b' ', b'\r', 0xff][rng.below(8)];
                v[i] = b;
            }
            _ => v.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        }
    }
    v
}

#[test]
fn every_target_survives_seeds_regressions_and_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in TARGETS {
        let seeds = inputs(&root.join("seeds").join(name));
        assert!(!seeds.is_empty(), "{name}: no seeds in seeds/{name}");
        for (path, data) in seeds
            .iter()
            .chain(inputs(&root.join("regressions").join(name)).iter())
        {
            let result = std::panic::catch_unwind(|| target(data));
            assert!(result.is_ok(), "{name}: {path} panics");
        }
        let mut rng = Rng(0x5390_f022 ^ name.len() as u64);
        for i in 0..20_000 {
            let (path, seed) = &seeds[i % seeds.len()];
            let input = mutate(&mut rng, seed);
            let result = std::panic::catch_unwind(|| target(&input));
            assert!(
                result.is_ok(),
                "{name}: mutation {i} of {path} panics; input {:02x?}",
                &input[..input.len().min(256)]
            );
        }
    }
}
