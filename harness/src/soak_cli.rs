//! The `soak` subcommand's arguments and output (a module of the binary,
//! not the library): it selects the variants, runs [`netboot_harness::soak`]
//! under its own artifact root, writes the JSON report, prints the table and
//! exits non-zero when a run failed (the flake budget is 0). The repetition
//! and statistics are the library's.

use anyhow::{bail, Context, Result};
use netboot_harness::runner::Harness;
use netboot_harness::soak::{self, SoakPlan};
use std::path::PathBuf;

/// Arguments of `soak`.
#[derive(clap::Args)]
pub struct SoakArgs {
    /// Scenario files or directories (default: the default suite, slow
    /// scenarios excluded).
    pub scenarios: Vec<PathBuf>,
    /// Only these variants (`<file stem>` for the first network mode,
    /// `<file stem>.<mode>` for the others); repeatable.
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Runs per variant.
    #[arg(long, default_value_t = 10, conflicts_with = "runs")]
    pub repeat: usize,
    /// Runs in all instead: the variants in order, the list repeated until
    /// this many runs (`--runs` alone: 200). With `--parallel 1` they run
    /// strictly one after another.
    #[arg(long, num_args = 0..=1, default_missing_value = "200", value_name = "N")]
    pub runs: Option<usize>,
    /// Leak budget: fail when RSS grew by more than this many MiB after
    /// warm-up, or file descriptors or threads grew at all (default: report
    /// only).
    #[arg(long, value_name = "MIB")]
    pub max_rss_growth_mib: Option<u64>,
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Take a resource sample after every this many runs.
    #[arg(long, default_value_t = 10)]
    pub sample_every: usize,
    /// Where the repeats' artifact directories go (failed ones are kept;
    /// default: `soak/` in the harness's artifact root).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// JSON output file.
    #[arg(long, default_value = "target/bench/netboot-soak.json")]
    pub json: PathBuf,
}

/// Runs `soak`.
pub fn main(a: &SoakArgs) -> Result<()> {
    if a.repeat == 0 || a.parallel == 0 || a.runs == Some(0) {
        bail!("--repeat, --runs and --parallel must be at least 1");
    }
    let scenarios = soak::select(&a.scenarios, &a.variants)?;
    if scenarios.is_empty() {
        bail!("no scenario variants to run");
    }
    let runs = a.runs.unwrap_or(a.repeat * scenarios.len());
    let mut h = Harness::new()?;
    // Absolute: dnsmasq, started in a network namespace, is handed paths
    // inside the artifact directory and does not share this cwd's meaning.
    let root = match &a.artifacts {
        Some(dir) => {
            std::path::absolute(dir).with_context(|| format!("--artifacts {}", dir.display()))?
        }
        None => h.artifacts_root.join("soak"),
    };
    h.artifacts_root = root;
    eprintln!(
        "soak: {} variant(s), {runs} runs at parallelism {}; artifacts of failed runs kept under {}",
        scenarios.len(),
        a.parallel,
        h.artifacts_root.display()
    );
    let report = soak::run(
        &h,
        &SoakPlan {
            scenarios,
            runs,
            parallelism: a.parallel,
            sample_every: a.sample_every,
        },
    );
    if let Some(dir) = a.json.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", a.json.display()))?;
    print!("{}", soak::table(&report));
    println!("json: {}", a.json.display());
    if !report.failures.is_empty() {
        bail!(
            "{} of {} runs failed (budget 0)",
            report.failures.len(),
            report.runs
        );
    }
    if let Some(mib) = a.max_rss_growth_mib {
        let Some(g) = &report.growth else {
            bail!(
                "leak budget: no sample after the {} warm-up runs to compare",
                soak::WARM_UP_RUNS
            );
        };
        if g.rss_kib > (mib * 1024) as i64 || g.fds > 0 || g.threads > 0 {
            bail!(
                "leak budget exceeded from run {} to run {}: RSS {:+} KiB (budget {mib} MiB), fds {:+}, threads {:+} (budget 0)",
                g.from_runs,
                g.to_runs,
                g.rss_kib,
                g.fds,
                g.threads
            );
        }
    }
    Ok(())
}
