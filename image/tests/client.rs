//! Client tests: the real guest scripts (busybox ash + awk, with stub tftp,
//! wget, kexec, udhcpc, …) against the host model `pxelinux::resolve`, on the
//! corpus in `tests/client/corpus.toml` and on generated malformed configs.

#[path = "client/support.rs"]
mod support;

use support::{check, corpus, generated};

fn run_all(cases: &[support::Case]) {
    let failures: Vec<String> = cases.iter().map(check).filter(|r| !r.is_empty()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_guest_matches_model() {
    run_all(&corpus());
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

const CFG: &str = "boot/pxelinux.cfg/default";

#[test]
fn malformed_generated_configs() {
    let mut labels = String::from("DEFAULT l9999\n");
    for i in 0..10_000 {
        labels.push_str(&format!("LABEL l{i}\n  KERNEL k{i}\n  APPEND n={i}\n"));
    }
    let mut big = String::new();
    while big.len() < 1 << 20 {
        big.push_str("# padding comment line to make the file one megabyte large\nSAY x\n");
    }
    big.push_str("LABEL a\nKERNEL k\n");
    let mut random_then_valid = noise(64 * 1024, 42);
    random_then_valid.extend_from_slice(b"\nLABEL a\nKERNEL k\n");
    let huge_line = format!(
        "LABEL a\nKERNEL k\nAPPEND {}\nAPPEND short\nSAY {}\n",
        "x".repeat(1 << 20),
        "y".repeat(4096 - 4)
    );
    let mut chain: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("boot/inc{i}.cfg"),
                format!("INCLUDE inc{}.cfg\nSAY depth {i}\n", i + 1).into_bytes(),
            )
        })
        .collect();
    chain.push((
        CFG.to_string(),
        b"INCLUDE inc0.cfg\nLABEL a\nKERNEL k\n".to_vec(),
    ));
    let k = ("boot/k", b"K".to_vec());
    let mut cases = vec![
        generated("random_bytes", vec![(CFG, noise(256 * 1024, 7))]),
        generated(
            "random_bytes_then_valid",
            vec![(CFG, random_then_valid), k.clone()],
        ),
        generated(
            "nul_bytes",
            vec![
                (
                    CFG,
                    b"LABEL a\nKERNEL k\0evil\nKERNEL k\nAPPEND \0\n".to_vec(),
                ),
                k.clone(),
            ],
        ),
        generated(
            "ten_thousand_labels",
            vec![(CFG, labels.into_bytes()), ("boot/k9999", b"K".to_vec())],
        ),
        generated(
            "one_megabyte_config",
            vec![(CFG, big.into_bytes()), k.clone()],
        ),
        generated("huge_lines", vec![(CFG, huge_line.into_bytes()), k.clone()]),
    ];
    let chain_refs: Vec<(&str, Vec<u8>)> = chain
        .iter()
        .map(|(p, c)| (p.as_str(), c.clone()))
        .chain([k])
        .collect();
    cases.push(generated("include_depth_limit", chain_refs));
    let outcomes = ["rescue", "boot", "boot", "boot", "boot", "boot", "boot"];
    for (c, o) in cases.iter_mut().zip(outcomes) {
        c.expect.outcome = Some(o.to_string());
    }
    cases[3].expect.cmdline = Some("n=9999".to_string());
    cases[5].expect.cmdline = Some("short".to_string());
    cases[6].expect.includes = Some(
        (0..17)
            .map(|i| {
                format!(
                    "boot/inc{i}.cfg ... {}",
                    if i < 16 { "found" } else { "too deep" }
                )
            })
            .collect(),
    );
    run_all(&cases);
}
