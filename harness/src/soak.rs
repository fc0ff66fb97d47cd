//! `netboot-harness soak`: repeats scenario runs to find flakes and leaks.
//! The selected scenario variants run in order, over and over until N runs
//! in all (every variant the same number of times, or a fixed total such as
//! 200 runs of the whole suite), at a given parallelism, in this one
//! process; each repeat gets its own artifact directory
//! (`<root>/<variant>~<repeat>`), removed when the run passes and kept when
//! it fails. The report gives every failure (its cause — the failing step and
//! why —, the kept directory and the load average at that moment), the spread
//! of run durations per variant (min, median, p90, max), and samples of this
//! process's resources ([`crate::resources`]: RSS, heap, open file
//! descriptors, threads, and whether the process-wide `async-io` reactor
//! thread that async-tftp starts is alive) taken as runs complete, with the
//! growth and per-run slope after warm-up and the RSS left once the allocator
//! has returned its free memory. It owns the repetition and the statistics;
//! how one scenario runs is [`crate::runner`]'s, and it must not change it.

use crate::resources::{self, ResourceSample};
use crate::runner::{self, Harness, RunOptions};
use crate::scenario::{self, Scenario};
use crate::HarnessError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Runs completed before the leak slope starts: the first runs build
/// payload caches and start process-wide threads (async-io's reactor).
pub const WARM_UP_RUNS: usize = 10;

/// What to repeat, and how.
pub struct SoakPlan {
    /// The scenario variants, run in this order, the list repeated until
    /// `runs` runs.
    pub scenarios: Vec<Scenario>,
    /// Runs in all (a multiple of the variants' number runs each variant
    /// equally often).
    pub runs: usize,
    /// Runs at once.
    pub parallelism: usize,
    /// Take a resource sample after every this many completed runs (and
    /// always at the start, after [`WARM_UP_RUNS`] and at the end).
    pub sample_every: usize,
}

/// One failed run.
#[derive(Debug, Clone, Serialize)]
pub struct SoakFailure {
    /// Variant name.
    pub scenario: String,
    /// Which repeat (0-based).
    pub repeat: usize,
    /// The failing step and why (the runner's message).
    pub cause: String,
    /// The kept artifact directory.
    pub artifacts: Option<PathBuf>,
    /// 1-minute load average when the failure was seen.
    pub load1: Option<f64>,
    /// Seconds since the soak started.
    pub at_s: f64,
}

/// Duration spread of one variant's runs (passed and failed), seconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// Variant name.
    pub scenario: String,
    /// Runs.
    pub runs: usize,
    /// Failed runs.
    pub failed: usize,
    /// Shortest run.
    pub min_s: f64,
    /// Median run.
    pub median_s: f64,
    /// 90th percentile (nearest rank).
    pub p90_s: f64,
    /// Longest run.
    pub max_s: f64,
}

/// Least-squares slope per completed run of each resource, from
/// [`WARM_UP_RUNS`] on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slopes {
    /// RSS, KiB per run.
    pub rss_kib_per_run: f64,
    /// File descriptors per run.
    pub fds_per_run: f64,
    /// Threads per run.
    pub threads_per_run: f64,
}

/// How much each resource grew from the first sample after warm-up to the
/// last (the one taken with no run in flight).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Growth {
    /// Runs completed at the first sample after warm-up.
    pub from_runs: usize,
    /// Runs completed at the last sample.
    pub to_runs: usize,
    /// RSS, KiB.
    pub rss_kib: i64,
    /// Anonymous RSS, KiB.
    pub rss_anon_kib: i64,
    /// File-backed RSS, KiB.
    pub rss_file_kib: i64,
    /// Heap in use, KiB (None off glibc).
    pub heap_in_use_kib: Option<i64>,
    /// Heap held free by the allocator, KiB (None off glibc).
    pub heap_free_kib: Option<i64>,
    /// File descriptors.
    pub fds: i64,
    /// Threads.
    pub threads: i64,
}

/// Everything a soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Variants in the list.
    pub variants: usize,
    /// Runs at once.
    pub parallelism: usize,
    /// Runs in all.
    pub runs: usize,
    /// Wall time, seconds.
    pub wall_s: f64,
    /// Highest 1-minute load average seen in the samples and failures.
    pub max_load1: Option<f64>,
    /// Per-variant duration spread.
    pub spreads: Vec<Spread>,
    /// Every failure, in the order seen.
    pub failures: Vec<SoakFailure>,
    /// Resource samples, in order.
    pub samples: Vec<ResourceSample>,
    /// Slopes after warm-up (None with fewer than two samples there).
    pub slopes: Option<Slopes>,
    /// Growth after warm-up (None when the soak ended before it).
    pub growth: Option<Growth>,
    /// A sample after the last, once `malloc_trim(0)` has handed the heap's
    /// free memory back (None off glibc).
    pub trimmed: Option<ResourceSample>,
}

/// The variants to soak: those of the scenario files (or directories of
/// them) in `paths`, or of the default suite (slow ones excluded) when
/// `paths` is empty; only the variants named in `only` when it is not empty
/// (a name that matches none is an error naming it).
pub fn select(paths: &[PathBuf], only: &[String]) -> Result<Vec<Scenario>, SelectError> {
    let mut files = Vec::new();
    if paths.is_empty() {
        files = scenario::discover(&scenario::scenario_dirs())?;
    }
    for p in paths {
        if p.is_dir() {
            files.extend(scenario::discover(std::slice::from_ref(p))?);
        } else {
            files.push(p.clone());
        }
    }
    let mut variants = Vec::new();
    for f in &files {
        variants.extend(
            Scenario::load(f)?
                .variants()
                .into_iter()
                .filter(|s| !paths.is_empty() || !s.slow),
        );
    }
    if only.is_empty() {
        return Ok(variants);
    }
    if let Some(missing) = only
        .iter()
        .find(|n| !variants.iter().any(|v| &v.name == *n))
    {
        return Err(SelectError::NoSuchVariant {
            name: missing.clone(),
            known: variants.iter().map(|v| v.name.clone()).collect(),
        });
    }
    Ok(variants
        .into_iter()
        .filter(|v| only.contains(&v.name))
        .collect())
}

/// Why [`select`] found nothing to run.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A scenario file or directory could not be read or parsed.
    #[error(transparent)]
    Scenario(#[from] HarnessError),
    /// `--variant` named a variant none of the files has.
    #[error("no scenario variant named {name:?} (known: {})", known.join(", "))]
    NoSuchVariant {
        /// The name asked for.
        name: String,
        /// The variants there are.
        known: Vec<String>,
    },
}

/// One repeat's artifact directory name: the variant's name and the repeat,
/// so parallel repeats of one variant never share (or wait for) a directory.
pub fn repeat_name(variant: &str, repeat: usize) -> String {
    format!("{variant}~{repeat:04}")
}

/// Runs the plan. `h.artifacts_root` is where the repeats' directories go.
pub fn run(h: &Harness, plan: &SoakPlan) -> SoakReport {
    let n = plan.scenarios.len().max(1);
    let mut queue: Vec<(usize, usize)> = (0..plan.runs).map(|i| (i % n, i / n)).collect();
    if plan.scenarios.is_empty() {
        queue.clear();
    }
    queue.reverse();
    let total = queue.len();
    let queue = Mutex::new(queue);
    let started = Instant::now();
    let state = Mutex::new(State {
        durations: vec![Vec::new(); plan.scenarios.len()],
        failed: vec![0; plan.scenarios.len()],
        failures: Vec::new(),
        samples: vec![resources::sample(0)],
        done: 0,
    });
    let sample_every = plan.sample_every.max(1);
    std::thread::scope(|s| {
        for _ in 0..plan.parallelism.max(1) {
            s.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some((si, repeat)) = next else { break };
                let base = &plan.scenarios[si];
                let sc = Scenario {
                    name: repeat_name(&base.name, repeat),
                    ..base.clone()
                };
                let t = Instant::now();
                let outcome = runner::run_blocking(h, &sc, &RunOptions { echo: false });
                let seconds = t.elapsed().as_secs_f64();
                let failure = match outcome {
                    Ok(r) => {
                        remove_run_dir(&h.artifacts_root, &r.artifacts, &sc.name);
                        None
                    }
                    Err(f) => Some(SoakFailure {
                        scenario: base.name.clone(),
                        repeat,
                        cause: f.message.clone(),
                        artifacts: f.artifacts.clone(),
                        load1: resources::load1(),
                        at_s: started.elapsed().as_secs_f64(),
                    }),
                };
                let Ok(mut st) = state.lock() else { break };
                st.durations[si].push(seconds);
                st.done += 1;
                if let Some(f) = failure {
                    tracing::warn!(scenario = %f.scenario, repeat, cause = %f.cause, "soak run failed");
                    eprintln!(
                        "soak: FAIL {} #{repeat}: {} (load {})",
                        f.scenario,
                        f.cause,
                        f.load1.map_or("?".into(), |l| format!("{l:.2}"))
                    );
                    st.failed[si] += 1;
                    st.failures.push(f);
                }
                let done = st.done;
                if done % sample_every == 0 || done == WARM_UP_RUNS || done == total {
                    let x = resources::sample(done);
                    // As it goes, so a long soak stopped early still shows them.
                    eprint!("soak: resources {}", sample_row(&done.to_string(), &x));
                    st.samples.push(x);
                }
                if done % 10 == 0 || done == total {
                    eprintln!(
                        "soak: {done}/{total} runs, {} failed, {:.0} s",
                        st.failures.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let wall_s = started.elapsed().as_secs_f64();
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    let spreads = plan
        .scenarios
        .iter()
        .zip(&st.durations)
        .zip(&st.failed)
        .filter_map(|((sc, d), failed)| spread(&sc.name, d, *failed))
        .collect();
    let max_load1 = st
        .samples
        .iter()
        .filter_map(|s| s.load1)
        .chain(st.failures.iter().filter_map(|f| f.load1))
        .reduce(f64::max);
    let trimmed = resources::trim_heap().then(|| resources::sample(total));
    SoakReport {
        variants: plan.scenarios.len(),
        parallelism: plan.parallelism.max(1),
        runs: total,
        wall_s,
        max_load1,
        spreads,
        slopes: slopes(&st.samples),
        growth: growth(&st.samples),
        trimmed,
        failures: st.failures,
        samples: st.samples,
    }
}

struct State {
    durations: Vec<Vec<f64>>,
    failed: Vec<usize>,
    failures: Vec<SoakFailure>,
    samples: Vec<ResourceSample>,
    done: usize,
}

/// Removes a passed repeat's directory and its lock file (a soak of 200
/// runs would otherwise leave 200 TFTP trees and pcaps behind).
pub fn remove_run_dir(root: &Path, dir: &Path, name: &str) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "removing a passed run's artifacts");
    }
    let _ = std::fs::remove_file(root.join(format!(".{name}.lock")));
}

/// The spread of `durations`; None when there are none.
pub fn spread(scenario: &str, durations: &[f64], failed: usize) -> Option<Spread> {
    let mut d = durations.to_vec();
    d.sort_by(f64::total_cmp);
    let n = d.len();
    if n == 0 {
        return None;
    }
    // Nearest rank: the smallest value with at least 90 % at or below it.
    let p90 = d[(n * 9).div_ceil(10).max(1) - 1];
    Some(Spread {
        scenario: scenario.to_string(),
        runs: n,
        failed,
        min_s: d[0],
        median_s: crate::bench::median(&d),
        p90_s: p90,
        max_s: d[n - 1],
    })
}

/// Least-squares slope of `y` over `x`; None with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// The per-run slopes of the samples taken from [`WARM_UP_RUNS`] on.
pub fn slopes(samples: &[ResourceSample]) -> Option<Slopes> {
    let after: Vec<&ResourceSample> = samples
        .iter()
        .filter(|s| s.runs_done >= WARM_UP_RUNS)
        .collect();
    let of = |f: &dyn Fn(&ResourceSample) -> f64| {
        slope(
            &after
                .iter()
                .map(|s| (s.runs_done as f64, f(s)))
                .collect::<Vec<_>>(),
        )
    };
    Some(Slopes {
        rss_kib_per_run: of(&|s| s.rss_kib as f64)?,
        fds_per_run: of(&|s| s.fds as f64)?,
        threads_per_run: of(&|s| s.threads as f64)?,
    })
}

/// The growth from the first sample at or after [`WARM_UP_RUNS`] to the
/// last sample; None when no sample was taken after warm-up or the last one
/// is the warm-up sample itself.
pub fn growth(samples: &[ResourceSample]) -> Option<Growth> {
    let from = samples.iter().find(|s| s.runs_done >= WARM_UP_RUNS)?;
    let to = samples.last()?;
    if to.runs_done <= from.runs_done {
        return None;
    }
    let d = |a: u64, b: u64| b as i64 - a as i64;
    let opt = |a: Option<u64>, b: Option<u64>| Some(d(a?, b?));
    Some(Growth {
        from_runs: from.runs_done,
        to_runs: to.runs_done,
        rss_kib: d(from.rss_kib, to.rss_kib),
        rss_anon_kib: d(from.rss_anon_kib, to.rss_anon_kib),
        rss_file_kib: d(from.rss_file_kib, to.rss_file_kib),
        heap_in_use_kib: opt(from.heap_in_use_kib, to.heap_in_use_kib),
        heap_free_kib: opt(from.heap_free_kib, to.heap_free_kib),
        fds: d(from.fds as u64, to.fds as u64),
        threads: d(from.threads as u64, to.threads as u64),
    })
}

/// The report as text: spreads, failures (cause, directory, load), samples
/// and slopes.
pub fn table(r: &SoakReport) -> String {
    let mut s = format!(
        "soak: {} runs of {} variant(s) at parallelism {} in {:.1} s; {} failed; max load {}\n",
        r.runs,
        r.variants,
        r.parallelism,
        r.wall_s,
        r.failures.len(),
        r.max_load1.map_or("?".into(), |l| format!("{l:.2}"))
    );
    s.push_str(&format!(
        "{:<40} {:>5} {:>6} {:>7} {:>7} {:>7} {:>7}\n",
        "variant", "runs", "failed", "min s", "median", "p90", "max s"
    ));
    for sp in &r.spreads {
        s.push_str(&format!(
            "{:<40} {:>5} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>7.2}\n",
            sp.scenario, sp.runs, sp.failed, sp.min_s, sp.median_s, sp.p90_s, sp.max_s
        ));
    }
    for f in &r.failures {
        s.push_str(&format!(
            "FAIL {} #{} at {:.0} s (load {}): {}\n  artifacts: {}\n",
            f.scenario,
            f.repeat,
            f.at_s,
            f.load1.map_or("?".into(), |l| format!("{l:.2}")),
            f.cause,
            f.artifacts
                .as_ref()
                .map_or("none".into(), |a| a.display().to_string())
        ));
    }
    s.push_str(
        "resources (KiB; heap = glibc's in use / held free):\n   runs      RSS     anon     file  heap used  heap free   fds thr aio  load\n",
    );
    for x in &r.samples {
        s.push_str(&sample_row(&x.runs_done.to_string(), x));
    }
    if let Some(t) = &r.trimmed {
        s.push_str(&sample_row("trim", t));
    }
    match &r.slopes {
        Some(sl) => s.push_str(&format!(
            "slope after {WARM_UP_RUNS} runs: RSS {:+.2} KiB/run, fds {:+.4}/run, threads {:+.4}/run\n",
            sl.rss_kib_per_run, sl.fds_per_run, sl.threads_per_run
        )),
        None => s.push_str(&format!(
            "slope: too few samples after {WARM_UP_RUNS} runs\n"
        )),
    }
    let kib = |k: Option<i64>| k.map_or("?".into(), |k| format!("{k:+}"));
    match &r.growth {
        Some(g) => s.push_str(&format!(
            "growth from run {} to run {}: RSS {:+} KiB (anon {:+}, file {:+}; heap in use {}, held free {}), fds {:+}, threads {:+}\n",
            g.from_runs,
            g.to_runs,
            g.rss_kib,
            g.rss_anon_kib,
            g.rss_file_kib,
            kib(g.heap_in_use_kib),
            kib(g.heap_free_kib),
            g.fds,
            g.threads
        )),
        None => s.push_str(&format!("growth: no sample after {WARM_UP_RUNS} runs\n")),
    }
    s
}

/// One line of the resource table.
fn sample_row(label: &str, x: &ResourceSample) -> String {
    let opt = |k: Option<u64>| k.map_or("?".into(), |k| k.to_string());
    format!(
        "  {label:>5} {:>8} {:>8} {:>8} {:>10} {:>10} {:>5} {:>3} {:>3}  {}\n",
        x.rss_kib,
        x.rss_anon_kib,
        x.rss_file_kib,
        opt(x.heap_in_use_kib),
        opt(x.heap_free_kib),
        x.fds,
        x.threads,
        x.async_io_threads,
        x.load1.map_or("?".into(), |l| format!("{l:.2}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_min_median_nearest_rank_p90_and_max() {
        let d: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = spread("x", &d, 1).unwrap();
        assert_eq!(
            (s.runs, s.failed, s.min_s, s.median_s, s.p90_s, s.max_s),
            (10, 1, 1.0, 5.5, 9.0, 10.0)
        );
        let one = spread("x", &[3.0], 0).unwrap();
        assert_eq!((one.median_s, one.p90_s), (3.0, 3.0));
        assert!(spread("x", &[], 0).is_none());
    }

    #[test]
    fn slopes_skip_the_warm_up_and_fit_a_line() {
        let mk = |runs_done, rss_kib, fds| sample_of(runs_done, rss_kib, fds);
        // A jump during warm-up does not count; then +2 KiB per run.
        let samples = vec![
            mk(0, 1000, 5),
            mk(10, 5000, 9),
            mk(20, 5020, 9),
            mk(30, 5040, 9),
        ];
        let s = slopes(&samples).unwrap();
        assert!((s.rss_kib_per_run - 2.0).abs() < 1e-9, "{s:?}");
        assert_eq!((s.fds_per_run, s.threads_per_run), (0.0, 0.0));
        assert!(slopes(&samples[..2]).is_none());
    }

    fn sample_of(runs_done: usize, rss_kib: u64, fds: usize) -> ResourceSample {
        ResourceSample {
            runs_done,
            rss_kib,
            rss_anon_kib: rss_kib / 2,
            rss_file_kib: rss_kib / 4,
            heap_in_use_kib: Some(100),
            heap_free_kib: None,
            fds,
            threads: 3,
            async_io_threads: 1,
            load1: None,
        }
    }

    #[test]
    fn growth_runs_from_the_first_sample_after_warm_up_to_the_last() {
        let samples = vec![
            sample_of(0, 1000, 5),
            sample_of(7, 3000, 9),
            sample_of(12, 5000, 9),
            sample_of(40, 5400, 8),
        ];
        let g = growth(&samples).unwrap();
        assert_eq!(
            (
                g.from_runs,
                g.to_runs,
                g.rss_kib,
                g.rss_anon_kib,
                g.rss_file_kib
            ),
            (12, 40, 400, 200, 100)
        );
        assert_eq!(
            (g.heap_in_use_kib, g.heap_free_kib, g.fds, g.threads),
            (Some(0), None, -1, 0)
        );
        // Ended during warm-up, or at the warm-up sample: nothing to say.
        assert!(growth(&samples[..2]).is_none());
        assert!(growth(&samples[..3]).is_none());
    }

    #[test]
    fn variants_are_selected_by_name_and_an_unknown_name_is_an_error() {
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/default-fallback.toml");
        let all = select(std::slice::from_ref(&file), &[]).unwrap();
        assert!(
            all.len() > 1,
            "{:?}",
            all.iter().map(|v| &v.name).collect::<Vec<_>>()
        );
        let one = select(
            std::slice::from_ref(&file),
            &["default-fallback.inprocess".into()],
        )
        .unwrap();
        assert_eq!(
            one.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["default-fallback.inprocess"]
        );
        match select(
            std::slice::from_ref(&file),
            &["default-fallback.nope".into()],
        ) {
            Err(SelectError::NoSuchVariant { name, known }) => {
                assert_eq!(name, "default-fallback.nope");
                assert!(known.contains(&"default-fallback".to_string()), "{known:?}");
            }
            other => panic!("expected NoSuchVariant, got {:?}", other.map(|v| v.len())),
        }
    }

    #[test]
    fn repeats_get_distinct_directory_names() {
        assert_eq!(repeat_name("default-fallback", 7), "default-fallback~0007");
        assert_ne!(repeat_name("a", 1), repeat_name("a", 2));
    }
}
