//! `cargo test --test boot`: one libtest-mimic trial per scenario file in
//! `scenarios/` and in every directory of `BOOT_SCENARIOS`. Slow scenarios
//! are ignored unless `--ignored`/`--include-ignored` is given. Trials run in
//! parallel up to `--test-threads` (default: the number of cores). Trials in
//! the `dnsmasq` network mode are ignored, with the reason on stderr, when
//! its prerequisites (root, dnsmasq, ip, /dev/net/tun) are missing, except
//! under `CI=true` as root, where a missing tool fails them.

use libtest_mimic::{Arguments, Failed, Trial};
use netboot_harness::dnsmasq;
use netboot_harness::runner::{self, Harness, RunOptions};
use netboot_harness::scenario::{self, Scenario};
use std::sync::{Arc, OnceLock};

fn main() {
    let args = Arguments::from_args();
    let harness: Arc<OnceLock<Result<Harness, String>>> = Arc::new(OnceLock::new());
    let trials = match scenario::discover(&scenario::scenario_dirs()) {
        Ok(files) => files
            .into_iter()
            .flat_map(|path| trials(path, harness.clone()))
            .collect(),
        Err(e) => vec![Trial::test("discover-scenarios", move || {
            Err(Failed::from(e.to_string()))
        })],
    };
    let conclusion = libtest_mimic::run(&args, trials);
    // Every trial stops its QEMU; prove none is left before exiting.
    let left: Vec<u32> = netboot_harness::reaper::registered()
        .into_iter()
        .filter(|&pid| netboot_harness::reaper::process_alive(pid))
        .collect();
    if !left.is_empty() {
        eprintln!("boot: QEMU process(es) {left:?} still running after the suite");
        std::process::exit(101);
    }
    conclusion.exit();
}

/// One trial per network mode of the scenario file (`mode = [..]`).
fn trials(path: std::path::PathBuf, harness: Arc<OnceLock<Result<Harness, String>>>) -> Vec<Trial> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match Scenario::load(&path) {
        Err(e) => vec![Trial::test(name, move || Err(Failed::from(e.to_string())))],
        Ok(sc) => sc
            .variants()
            .into_iter()
            .map(|sc| trial(sc, harness.clone()))
            .collect(),
    }
}

/// Whether a `dnsmasq` trial can run here: `Ok`, `Err(reason)` to skip, or
/// a failure when CI (as root) is missing a tool. Checked once.
fn dnsmasq_gate() -> &'static Result<(), (String, bool)> {
    static GATE: OnceLock<Result<(), (String, bool)>> = OnceLock::new();
    GATE.get_or_init(|| match dnsmasq::prerequisites() {
        Ok(_) => Ok(()),
        Err(reason) => {
            let fail = dnsmasq::prerequisites_required();
            eprintln!(
                "boot: dnsmasq-mode trials {}: {reason}",
                if fail {
                    "FAIL (CI=true and root: the prerequisites must be installed)"
                } else {
                    "skipped"
                }
            );
            Err((reason, fail))
        }
    })
}

fn trial(sc: Scenario, harness: Arc<OnceLock<Result<Harness, String>>>) -> Trial {
    let name = sc.name.clone();
    let mut skip = sc.slow;
    if sc.network.as_ref().is_some_and(|n| n.name() == "dnsmasq") {
        match dnsmasq_gate() {
            Ok(()) => {}
            Err((reason, true)) => {
                let reason = reason.clone();
                return Trial::test(name, move || Err(Failed::from(reason)));
            }
            Err((_, false)) => skip = true,
        }
    }
    Trial::test(name, move || {
        let h = harness
            .get_or_init(|| Harness::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Failed::from(e.clone()))?;
        runner::run_blocking(h, &sc, &RunOptions::default())
            .map(|_| ())
            .map_err(|f| Failed::from(f.to_string()))
    })
    .with_ignored_flag(skip)
}
