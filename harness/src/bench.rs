//! `netboot-harness bench`: the performance benchmark. Runs the reference
//! config (Debian 6.12 target, TFTP) every way in one run — our pxelinux.0
//! chain (`harness/bench/chain.toml`) once per loader flavour (Debian's 6.1
//! kernel, the minimal kernel), the minimal-loader chain with the kernel and
//! initrd over HTTP (`chain-http.toml`), and QEMU's firmware booting the same
//! pxelinux.cfg directly (`harness/bench/firmware-direct.toml`) —
//! round-robin, N times each; summarises every phase (median, min, max), the
//! ratio chain / firmware-direct of the time to `TARGET-UP` for each chain
//! and its ramfs phase; then times the whole default scenario suite at
//! parallelism = cores. It owns the statistics and the report; it must not
//! change how a scenario runs.

use crate::runner::{self, Harness, RunOptions, RunReport};
use crate::scenario::{self, Scenario};
use crate::HarnessError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Median, spread and sample count of one phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseStats {
    /// Phase name (see [`crate::markers::PHASES`]).
    pub phase: String,
    /// Median console time of the phase marker, seconds since QEMU start.
    pub median_s: f64,
    /// Smallest observed time.
    pub min_s: f64,
    /// Largest observed time.
    pub max_s: f64,
    /// Runs that reached the phase.
    pub runs: usize,
}

/// One way of booting, measured N times.
#[derive(Debug, Clone, Serialize)]
pub struct WayReport {
    /// Scenario file.
    pub scenario: String,
    /// Per-phase statistics, in boot order.
    pub phases: Vec<PhaseStats>,
    /// Runs that failed (their messages).
    pub failures: Vec<String>,
}

/// The default suite run at parallelism = cores.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// Scenario variants run (slow ones excluded).
    pub scenarios: usize,
    /// Parallel runs.
    pub parallelism: usize,
    /// Wall time of the whole suite, seconds.
    pub wall_s: f64,
    /// Names of failed variants.
    pub failed: Vec<String>,
    /// Every variant's own wall time, longest first: where the suite's time
    /// goes.
    pub runs: Vec<SuiteRun>,
}

/// One variant of the suite run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRun {
    /// Variant name (`<file stem>[.<mode>]`).
    pub scenario: String,
    /// Its wall time, seconds.
    pub seconds: f64,
    /// Whether it passed.
    pub passed: bool,
}

/// One flavour of our chain, measured N times.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// Flavour name (`debian-loader`, `minimal-loader`, …).
    pub flavour: String,
    /// Loader kernel id of the flavour.
    pub loader: String,
    /// The runs.
    pub way: WayReport,
    /// Median time to `TARGET-UP`, this chain / firmware-direct.
    pub ratio: Option<f64>,
    /// Median ramfs phase: first kernel at /init → `kexec -e`, seconds.
    pub ramfs_s: Option<f64>,
}

/// Everything `bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `qemu-system-s390x --version` first line.
    pub qemu: String,
    /// Runs per way.
    pub runs: usize,
    /// Our pxelinux.0 chain, one entry per flavour.
    pub chains: Vec<ChainReport>,
    /// QEMU's firmware booting the config directly.
    pub firmware_direct: WayReport,
    /// The default suite, when timed.
    pub suite: Option<SuiteReport>,
}

/// A flavour of the chain: a name and the scenario that runs it.
pub struct Flavour {
    /// Name in the report.
    pub name: &'static str,
    /// Scenario file (relative to the workspace) for the report.
    pub file: &'static str,
    /// The scenario.
    pub scenario: Scenario,
}

/// The chain flavours: the reference chain with each loader kernel.
pub fn flavours(dir: &Path) -> Result<Vec<Flavour>, HarnessError> {
    let chain = Scenario::load(&dir.join("chain.toml"))?;
    Ok(vec![
        Flavour {
            name: "debian-loader",
            file: "harness/bench/chain.toml",
            scenario: chain.with_loader_kernel(s390_pxelinux::build::DEFAULT_LOADER_KERNEL),
        },
        Flavour {
            name: "minimal-loader",
            file: "harness/bench/chain.toml",
            scenario: chain.with_loader_kernel(s390_pxelinux::minimal_kernel::KERNEL_ID),
        },
        Flavour {
            name: "minimal-loader-http",
            file: "harness/bench/chain-http.toml",
            scenario: Scenario::load(&dir.join("chain-http.toml"))?
                .with_loader_kernel(s390_pxelinux::minimal_kernel::KERNEL_ID),
        },
    ])
}

/// The median of an ascending slice (0 for an empty one); bench and soak
/// share it.
pub(crate) fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Summarises the phases of several runs of one scenario.
pub fn summarize(reports: &[RunReport]) -> Vec<PhaseStats> {
    let mut out = Vec::new();
    for (name, _, _) in crate::markers::PHASES {
        let mut times: Vec<f64> = reports
            .iter()
            .filter_map(|r| r.phases.iter().find(|(n, _)| n == name))
            .map(|(_, t)| t.as_secs_f64())
            .collect();
        if times.is_empty() {
            continue;
        }
        times.sort_by(f64::total_cmp);
        out.push(PhaseStats {
            phase: name.to_string(),
            median_s: median(&times),
            min_s: times[0],
            max_s: times[times.len() - 1],
            runs: times.len(),
        });
    }
    out
}

fn phase(stats: &[PhaseStats], name: &str) -> Option<f64> {
    stats.iter().find(|p| p.phase == name).map(|p| p.median_s)
}

/// Ratio of the medians of `TARGET-UP`.
pub fn ratio(chain: &[PhaseStats], direct: &[PhaseStats]) -> Option<f64> {
    let (c, d) = (phase(chain, "target up")?, phase(direct, "target up")?);
    (d > 0.0).then(|| c / d)
}

/// Median ramfs phase (init start → kexec -e) of the chain.
pub fn ramfs(chain: &[PhaseStats]) -> Option<f64> {
    Some(phase(chain, "kexec")? - phase(chain, "first kernel at /init")?)
}

/// The directory holding the two reference scenarios.
pub fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

/// Runs the comparison `runs` times each way (round-robin, so load changes
/// hit every way alike) and, when `suite` is set, the default suite.
pub fn run(h: &Harness, runs: usize, suite: bool) -> Result<BenchReport, HarnessError> {
    let dir = bench_dir();
    let flavours = flavours(&dir)?;
    let direct = Scenario::load(&dir.join("firmware-direct.toml"))?;
    let opts = RunOptions { echo: false };
    // One (reports, failures) pair per way: the chains in order, then direct.
    let ways: Vec<(&str, &Scenario)> = flavours
        .iter()
        .map(|f| (f.name, &f.scenario))
        .chain(std::iter::once(("firmware-direct", &direct)))
        .collect();
    let mut results: Vec<(Vec<RunReport>, Vec<String>)> =
        ways.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for i in 0..runs {
        for (k, (name, sc)) in ways.iter().enumerate() {
            eprintln!("bench: {name} run {}/{runs}", i + 1);
            match runner::run_blocking(h, sc, &opts) {
                Ok(r) => results[k].0.push(r),
                Err(f) => results[k].1.push(f.message.clone()),
            }
        }
    }
    let (direct_runs, direct_fail) = results.pop().unwrap_or_default();
    let direct_stats = summarize(&direct_runs);
    let chains = flavours
        .iter()
        .zip(results)
        .map(|(f, (ok, failures))| {
            let phases = summarize(&ok);
            ChainReport {
                flavour: f.name.to_string(),
                loader: f.scenario.pxelinux_kernel.clone(),
                ratio: ratio(&phases, &direct_stats),
                ramfs_s: ramfs(&phases),
                way: WayReport {
                    scenario: f.file.into(),
                    phases,
                    failures,
                },
            }
        })
        .collect();
    let suite = if suite { Some(run_suite(h)?) } else { None };
    Ok(BenchReport {
        qemu: format!(
            "qemu-system-s390x {}.{}.{}",
            h.qemu.version.0, h.qemu.version.1, h.qemu.version.2
        ),
        runs,
        chains,
        firmware_direct: WayReport {
            scenario: "harness/bench/firmware-direct.toml".into(),
            phases: direct_stats,
            failures: direct_fail,
        },
        suite,
    })
}

/// Runs every non-slow scenario variant of the default directories with one
/// worker thread per core, and times the whole.
pub fn run_suite(h: &Harness) -> Result<SuiteReport, HarnessError> {
    let files = scenario::discover(&scenario::scenario_dirs())?;
    let mut variants = Vec::new();
    for f in &files {
        variants.extend(
            Scenario::load(f)?
                .variants()
                .into_iter()
                .filter(|s| !s.slow),
        );
    }
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let queue = std::sync::Mutex::new(variants.iter().collect::<Vec<_>>());
    let runs = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parallelism {
            s.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(sc) = next else { break };
                let t = Instant::now();
                let passed = runner::run_blocking(h, sc, &RunOptions { echo: false }).is_ok();
                if let Ok(mut r) = runs.lock() {
                    r.push(SuiteRun {
                        scenario: sc.name.clone(),
                        seconds: t.elapsed().as_secs_f64(),
                        passed,
                    });
                }
            });
        }
    });
    let wall_s = started.elapsed().as_secs_f64();
    let mut runs = runs.into_inner().unwrap_or_default();
    runs.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Ok(SuiteReport {
        scenarios: variants.len(),
        parallelism,
        wall_s,
        failed: runs
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.scenario.clone())
            .collect(),
        runs,
    })
}

/// The SVG chart of a bench run: stacked phase bars (medians) for each
/// chain flavour and for firmware-direct.
pub fn chart(r: &BenchReport) -> String {
    use crate::report::chart::{bench_chart, BenchFlavour};
    let flavour = |name: &str, w: &WayReport| BenchFlavour {
        name: name.to_string(),
        phases: w
            .phases
            .iter()
            .map(|p| (p.phase.clone(), p.median_s))
            .collect(),
    };
    let mut all: Vec<BenchFlavour> = r
        .chains
        .iter()
        .map(|c| flavour(&c.flavour, &c.way))
        .collect();
    all.push(flavour("firmware-direct", &r.firmware_direct));
    bench_chart(&all)
}

/// The short table printed after a bench run.
pub fn table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — {} run(s) each way; seconds since QEMU start, median [min–max]",
        r.qemu, r.runs
    );
    let mut header = format!("{:<24}", "phase");
    for c in &r.chains {
        let _ = write!(header, " {:>22}", c.flavour);
    }
    let _ = write!(header, " {:>22}", "firmware-direct");
    let _ = writeln!(s, "{}", header.trim_end());
    for (name, _, _) in crate::markers::PHASES {
        let cell = |st: &[PhaseStats]| {
            st.iter()
                .find(|p| p.phase == *name)
                .map(|p| format!("{:.2} [{:.2}–{:.2}]", p.median_s, p.min_s, p.max_s))
                .unwrap_or_else(|| "-".into())
        };
        let cells: Vec<String> = r
            .chains
            .iter()
            .map(|c| cell(&c.way.phases))
            .chain(std::iter::once(cell(&r.firmware_direct.phases)))
            .collect();
        if cells.iter().any(|c| c != "-") {
            let mut line = format!("{name:<24}");
            for c in &cells {
                let _ = write!(line, " {c:>22}");
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
    }
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    for c in &r.chains {
        let _ = writeln!(
            s,
            "{}: ratio to firmware-direct (target up) {}, ramfs phase (init → kexec -e) {} s",
            c.flavour,
            opt(c.ratio),
            opt(c.ramfs_s)
        );
    }
    for (way, w) in r
        .chains
        .iter()
        .map(|c| (c.flavour.as_str(), &c.way))
        .chain(std::iter::once(("firmware-direct", &r.firmware_direct)))
    {
        for f in &w.failures {
            let _ = writeln!(s, "FAILED {way} run: {}", f.lines().next().unwrap_or(""));
        }
    }
    if let Some(su) = &r.suite {
        let _ = writeln!(
            s,
            "default suite: {} scenario runs at parallelism {} in {:.1} s wall; failed: {}",
            su.scenarios,
            su.parallelism,
            su.wall_s,
            if su.failed.is_empty() {
                "none".to_string()
            } else {
                su.failed.join(", ")
            }
        );
        let total: f64 = su.runs.iter().map(|r| r.seconds).sum();
        let longest: Vec<String> = su
            .runs
            .iter()
            .take(5)
            .map(|r| format!("{} {:.1} s", r.scenario, r.seconds))
            .collect();
        let _ = writeln!(
            s,
            "  sum of the runs {total:.0} s; longest: {}",
            longest.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(phases: &[(&'static str, f64)]) -> RunReport {
        RunReport {
            scenario: "x".into(),
            total: Duration::ZERO,
            prepare: Duration::ZERO,
            steps: Vec::new(),
            phases: phases
                .iter()
                .map(|(n, t)| (*n, Duration::from_secs_f64(*t)))
                .collect(),
            artifacts: PathBuf::new(),
        }
    }

    #[test]
    fn phases_are_summarised_by_median_and_spread() {
        let runs = [
            report(&[
                ("first kernel at /init", 5.0),
                ("kexec", 12.0),
                ("target up", 18.0),
            ]),
            report(&[
                ("first kernel at /init", 6.0),
                ("kexec", 13.0),
                ("target up", 20.0),
            ]),
            report(&[
                ("first kernel at /init", 4.0),
                ("kexec", 11.0),
                ("target up", 30.0),
            ]),
        ];
        let s = summarize(&runs);
        let up = s
            .iter()
            .find(|p| p.phase == "target up")
            .expect("target up");
        assert_eq!(
            (up.median_s, up.min_s, up.max_s, up.runs),
            (20.0, 18.0, 30.0, 3)
        );
        assert_eq!(ramfs(&s), Some(7.0));
        let direct = summarize(&[
            report(&[("target up", 8.0)]),
            report(&[("target up", 12.0)]),
        ]);
        assert_eq!(ratio(&s, &direct), Some(2.0));
        assert_eq!(
            s.iter().map(|p| p.phase.as_str()).collect::<Vec<_>>(),
            ["first kernel at /init", "kexec", "target up"]
        );
    }

    #[test]
    fn table_names_the_suite_failures_and_its_longest_runs() {
        let way = |name: &str| WayReport {
            scenario: name.into(),
            phases: Vec::new(),
            failures: Vec::new(),
        };
        let run = |name: &str, seconds: f64, passed: bool| SuiteRun {
            scenario: name.into(),
            seconds,
            passed,
        };
        let r = BenchReport {
            qemu: "qemu-system-s390x 10.0.2".into(),
            runs: 1,
            chains: vec![ChainReport {
                flavour: "minimal-loader".into(),
                loader: "minimal".into(),
                way: way("chain"),
                ratio: Some(2.25),
                ramfs_s: None,
            }],
            firmware_direct: way("firmware-direct"),
            suite: Some(SuiteReport {
                scenarios: 3,
                parallelism: 2,
                wall_s: 21.5,
                failed: vec!["b".into()],
                runs: vec![
                    run("c", 20.0, true),
                    run("b", 9.0, false),
                    run("a", 1.26, true),
                ],
            }),
        };
        let t = table(&r);
        assert!(
            t.contains(
                "default suite: 3 scenario runs at parallelism 2 in 21.5 s wall; failed: b\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("  sum of the runs 30 s; longest: c 20.0 s, b 9.0 s, a 1.3 s\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "minimal-loader: ratio to firmware-direct (target up) 2.25, ramfs phase (init → kexec -e) - s\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn reference_scenarios_parse_and_share_one_config() {
        let c = Scenario::load(&bench_dir().join("chain.toml")).expect("chain");
        let d = Scenario::load(&bench_dir().join("firmware-direct.toml")).expect("direct");
        assert_eq!(c.name, "chain");
        assert_eq!(d.name, "firmware-direct");
        let text = |f: &str| std::fs::read_to_string(bench_dir().join(f)).expect("read");
        let cfg = |t: String| {
            t.split("\"pxelinux.cfg/default\" = \"\"\"")
                .nth(1)
                .map(|s| s.split("\"\"\"").next().unwrap_or("").to_string())
        };
        assert_eq!(cfg(text("chain.toml")), cfg(text("firmware-direct.toml")));
        // Today's reference: the Debian 6.12 target, both ways.
        assert_eq!(
            (c.target_kernel.as_str(), d.target_kernel.as_str()),
            ("6.12", "6.12")
        );
        let f = flavours(&bench_dir()).expect("flavours");
        let loaders: Vec<&str> = f
            .iter()
            .map(|f| f.scenario.pxelinux_kernel.as_str())
            .collect();
        assert_eq!(loaders, ["6.1", "minimal", "minimal"]);
        // The HTTP chain is the same config with `${http}/` paths.
        assert_eq!(
            cfg(text("chain-http.toml")).map(|c| c.replace("${http}/", "")),
            cfg(text("chain.toml"))
        );
        assert_eq!(f[2].scenario.target_kernel, "6.12");
    }
}
