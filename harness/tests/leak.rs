//! `cargo test --test leak`: one process boots real scenarios one after
//! another, and after every run its open file descriptors and threads are
//! back at their count after the first (warm-up) run, and its RSS stays
//! within a bound after warm-up. Only this process is measured
//! (`/proc/self`), never the QEMU children. The one test in this binary, so
//! no other test's threads or files move the counts.
//!
//! `NETBOOT_LEAK_RUNS` (default 4) sets the runs, `NETBOOT_LEAK_VARIANTS`
//! (comma-separated variant names; default `http-kernel-initrds.inprocess`:
//! in-process DHCP and TFTP on async-tftp's reactor thread, the run's HTTP
//! server on its own runtime, pcap, console) the scenarios, cycled in order.
//! The nightly's 200-run check is `netboot-harness soak --runs 200` with a
//! leak budget (ci/nightly leak).

use netboot_harness::resources::{self, ResourceSample};
use netboot_harness::runner::{self, Harness, RunOptions};
use netboot_harness::scenario::Scenario;
use netboot_harness::soak;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// RSS growth allowed from the end of the first run to the end of the
/// last, KiB. The measurement (docs/performance.md, "Leaks"): one variant
/// repeated in one process is flat to within one allocator step after its
/// first runs (`default-fallback.inprocess` ×40: the same 21 060 KiB from
/// run 5 to run 40); whole-suite growth comes from new variants, not
/// repeats. 8 MiB is a few such steps and far below what a per-run leak
/// of a buffer, a payload or a runtime would add over the runs.
const RSS_BOUND_KIB: i64 = 8 * 1024;

/// How long exited threads and closed files may take to leave `/proc`.
const SETTLE: Duration = Duration::from_secs(3);

#[test]
fn sequential_boots_return_fds_and_threads_to_baseline_and_keep_rss_flat() {
    let runs: usize = std::env::var("NETBOOT_LEAK_RUNS")
        .ok()
        .map(|s| s.parse().expect("NETBOOT_LEAK_RUNS: a number of runs"))
        .unwrap_or(4);
    assert!(runs >= 2, "NETBOOT_LEAK_RUNS: at least 2 (warm-up + 1)");
    let names: Vec<String> = std::env::var("NETBOOT_LEAK_VARIANTS")
        .unwrap_or_else(|_| "http-kernel-initrds.inprocess".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let variants: Vec<Scenario> =
        soak::select(&[dir], &names).unwrap_or_else(|e| panic!("NETBOOT_LEAK_VARIANTS: {e}"));
    let mut h = Harness::new().expect("harness");
    h.artifacts_root = h.artifacts_root.join("leak");

    let start = resources::sample(0);
    eprintln!("leak: start {}", row(&start));
    let mut baseline: Option<ResourceSample> = None;
    for i in 0..runs {
        let base = &variants[i % variants.len()];
        let sc = Scenario {
            name: soak::repeat_name(&base.name, i),
            ..base.clone()
        };
        let t = Instant::now();
        let report = runner::run_blocking(&h, &sc, &RunOptions { echo: false })
            .unwrap_or_else(|f| panic!("run {i} ({}) failed: {f}", base.name));
        soak::remove_run_dir(&h.artifacts_root, &report.artifacts, &sc.name);
        let after = match &baseline {
            None => {
                // Let the first run's exiting threads leave /proc.
                std::thread::sleep(Duration::from_secs(1));
                resources::sample(i + 1)
            }
            Some(b) => settled(i + 1, b),
        };
        eprintln!(
            "leak: run {:>3} {:<40} {:>5.1} s  {}",
            i + 1,
            base.name,
            t.elapsed().as_secs_f64(),
            row(&after)
        );
        let Some(b) = &baseline else {
            baseline = Some(after);
            continue;
        };
        assert!(
            after.fds <= b.fds && after.threads <= b.threads,
            "run {} ({}): fds {} and threads {} up to {} s after the run, {} and {} after the warm-up run; /proc/self/fd: {}",
            i + 1,
            base.name,
            after.fds,
            after.threads,
            SETTLE.as_secs(),
            b.fds,
            b.threads,
            fd_targets()
        );
        let grew = after.rss_kib as i64 - b.rss_kib as i64;
        assert!(
            grew <= RSS_BOUND_KIB,
            "run {} ({}): RSS grew {grew} KiB since the warm-up run (bound {RSS_BOUND_KIB} KiB): {after:?}",
            i + 1,
            base.name
        );
    }
    // The reactor async-tftp runs on is one thread for the whole process.
    if let Some(b) = &baseline {
        assert!(b.async_io_threads <= 1, "{b:?}");
    }
    // What of the RSS is memory glibc merely keeps (freed, not returned).
    if resources::trim_heap() {
        eprintln!(
            "leak: after malloc_trim(0) {}",
            row(&resources::sample(runs))
        );
    }
}

/// A sample once fds and threads are back at `b`'s counts, or after
/// [`SETTLE`] (a finished thread can stay listed while the kernel reaps it).
fn settled(runs_done: usize, b: &ResourceSample) -> ResourceSample {
    let until = Instant::now() + SETTLE;
    loop {
        let s = resources::sample(runs_done);
        if (s.fds <= b.fds && s.threads <= b.threads) || Instant::now() >= until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn row(s: &ResourceSample) -> String {
    format!(
        "RSS {} KiB (anon {}, file {}), heap in use {:?} KiB, free {:?} KiB, fds {}, threads {} (async-io {})",
        s.rss_kib,
        s.rss_anon_kib,
        s.rss_file_kib,
        s.heap_in_use_kib,
        s.heap_free_kib,
        s.fds,
        s.threads,
        s.async_io_threads
    )
}

/// What this process's descriptors point at, for a failure message.
fn fd_targets() -> String {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let target = std::fs::read_link(e.path())
                        .map_or("?".into(), |t| t.display().to_string());
                    format!("{}→{target}", e.file_name().to_string_lossy())
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
