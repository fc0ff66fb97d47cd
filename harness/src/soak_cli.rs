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
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
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
    if a.repeat == 0 || a.parallel == 0 {
        bail!("--repeat and --parallel must be at least 1");
    }
    let scenarios = soak::select(&a.scenarios, &a.variants)?;
    if scenarios.is_empty() {
        bail!("no scenario variants to run");
    }
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
        "soak: {} variant(s) x {} at parallelism {}; artifacts of failed runs kept under {}",
        scenarios.len(),
        a.repeat,
        a.parallel,
        h.artifacts_root.display()
    );
    let report = soak::run(
        &h,
        &SoakPlan {
            scenarios,
            repeats: a.repeat,
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
    Ok(())
}
