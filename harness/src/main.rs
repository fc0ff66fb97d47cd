//! `netboot-harness`: the scenario runner outside the test harness.
//!
//! `run SCENARIO...` boots scenario files (or every `*.toml` in a directory)
//! and prints per-phase timings; `boot --tftp-root DIR` network-boots a
//! user's own TFTP tree with the console on the terminal, to try a config
//! before deploying it. This file only parses arguments and prints; the work
//! is done by the `netboot_harness` library.

mod soak_cli;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use netboot_harness::artifacts::ArtifactDir;
use netboot_harness::console::Forbidden;
use netboot_harness::network::{Shared, Slirp};
use netboot_harness::payload::Params;
use netboot_harness::qemu::{MachineSpec, QemuBinary};
use netboot_harness::runner::{self, Harness, Prepared, RunOptions};
use netboot_harness::scenario::{self, Payload, Scenario};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "netboot-harness",
    about = "Boots s390x netboot scenarios in qemu-system-s390x"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (or directories of them) and print per-phase timings.
    Run {
        /// Scenario files or directories.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Copy the console to stdout while it runs.
        #[arg(long)]
        echo: bool,
        /// Also write the results (verdict, phase timings) to this JSON file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also write a JUnit XML report (one testcase per scenario variant)
        /// to this file, for CI systems.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Benchmark: our chain vs QEMU's firmware booting the same config
    /// directly (median and spread per phase, ratio), and the default suite's
    /// wall time at parallelism = cores. Writes JSON and prints a table.
    Bench {
        /// Runs per way.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Skip timing the whole default suite.
        #[arg(long)]
        no_suite: bool,
        /// JSON output file.
        #[arg(long, default_value = "target/bench/netboot-bench.json")]
        json: PathBuf,
    },
    /// Soak: run scenario variants N times each (or the list in order until
    /// `--runs` runs) at a given parallelism in this one process; report
    /// every failure (cause, kept artifacts, load), the spread of durations
    /// and the process's RSS, heap, fds and threads, with their growth after
    /// warm-up.
    Soak(soak_cli::SoakArgs),
    /// Network-boot your own TFTP tree with the console on this terminal
    /// (type at prompts; Ctrl-C ends the run and QEMU).
    Boot(Box<BootArgs>),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETBOOT_LOG")
                // libunftp warns about every refused command, e.g. the
                // 550 an FTP fault scenario asks for; the run's ftp.log
                // records those, so only its errors reach the terminal.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libunftp=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    netboot_harness::reaper::install();
    match Cli::parse().command {
        Command::Run {
            scenarios,
            echo,
            json,
            junit,
        } => run(&scenarios, echo, json.as_deref(), junit.as_deref()),
        Command::Bench {
            runs,
            no_suite,
            json,
        } => bench(runs, !no_suite, &json),
        Command::Soak(args) => soak_cli::main(&args),
        Command::Boot(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let code = rt.block_on(boot(*args))?;
            std::process::exit(code);
        }
    }
}

/// One scenario's result in `run --json`.
#[derive(serde::Serialize)]
struct RunJson {
    scenario: String,
    verdict: &'static str,
    /// Seconds from QEMU's start to the end of the run (PASS only).
    total_s: Option<f64>,
    /// Phase name and seconds since QEMU started, in order (PASS only).
    phases: Vec<(&'static str, f64)>,
    /// Why it failed (FAIL only).
    error: Option<String>,
}

fn run(paths: &[PathBuf], echo: bool, json: Option<&Path>, junit: Option<&Path>) -> Result<()> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(scenario::discover(std::slice::from_ref(p))?);
        } else {
            files.push(p.clone());
        }
    }
    let scenarios = files
        .iter()
        .map(|f| Scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .flat_map(Scenario::variants)
        .collect::<Vec<_>>();
    let h = Harness::new()?;
    let mut results = Vec::new();
    let mut cases = Vec::new();
    let started = std::time::Instant::now();
    for sc in &scenarios {
        eprintln!("== {}: {}", sc.name, sc.description);
        let run_started = std::time::Instant::now();
        let outcome = runner::run_blocking(&h, sc, &RunOptions { echo });
        cases.push(netboot_harness::junit::CaseResult {
            name: sc.name.clone(),
            time: run_started.elapsed(),
            failure: outcome
                .as_ref()
                .err()
                .map(|f| (f.message.clone(), f.to_string())),
        });
        match outcome {
            Ok(r) => {
                println!(
                    "{}: PASS in {:.1} s (payloads and TFTP tree {:.1} s)",
                    r.scenario,
                    r.total.as_secs_f64(),
                    r.prepare.as_secs_f64()
                );
                let mut prev = Duration::ZERO;
                for (name, at) in &r.phases {
                    println!(
                        "  {name:<24} {:>8.3} s  (+{:.3} s)",
                        at.as_secs_f64(),
                        at.saturating_sub(prev).as_secs_f64()
                    );
                    prev = *at;
                }
                println!("  artifacts: {}", r.artifacts.display());
                results.push(RunJson {
                    scenario: sc.name.clone(),
                    verdict: "PASS",
                    total_s: Some(r.total.as_secs_f64()),
                    phases: r
                        .phases
                        .iter()
                        .map(|(n, at)| (*n, at.as_secs_f64()))
                        .collect(),
                    error: None,
                });
            }
            Err(f) => {
                println!("{}: FAIL", sc.name);
                println!("{f}");
                results.push(RunJson {
                    scenario: sc.name.clone(),
                    verdict: "FAIL",
                    total_s: None,
                    phases: Vec::new(),
                    error: Some(f.to_string()),
                });
            }
        }
    }
    if results.len() > 1 {
        println!("\nsummary ({:.1} s):", started.elapsed().as_secs_f64());
        for r in &results {
            match r.total_s {
                Some(t) => println!("  {}  {:<32} {t:>7.1} s", r.verdict, r.scenario),
                None => println!("  {}  {}", r.verdict, r.scenario),
            }
        }
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("json: {}", path.display());
    }
    if let Some(path) = junit {
        let xml = netboot_harness::junit::render(&cases)?;
        s390_pxelinux::atomic::write_atomically(path, |w| w.write_all(xml.as_bytes()))?
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("junit: {}", path.display());
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.verdict == "FAIL")
        .map(|r| r.scenario.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("{} scenario(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn bench(runs: usize, suite: bool, json: &Path) -> Result<()> {
    let h = Harness::new()?;
    let report = netboot_harness::bench::run(&h, runs.max(1), suite)?;
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let svg = json.with_extension("svg");
    std::fs::write(&svg, netboot_harness::bench::chart(&report))
        .with_context(|| format!("writing {}", svg.display()))?;
    print!("{}", netboot_harness::bench::table(&report));
    println!("json: {}", json.display());
    println!("chart: {}", svg.display());
    Ok(())
}

/// Arguments of `boot`.
#[derive(clap::Args)]
struct BootArgs {
    /// Directory served over TFTP (not modified).
    #[arg(long)]
    tftp_root: PathBuf,
    /// pxelinux.0 to serve at the boot file path instead of the tree's
    /// own (default: the tree's, else one built from the fixtures).
    #[arg(long)]
    pxelinux: Option<PathBuf>,
    /// DHCP boot file name, relative to the tree.
    #[arg(long, default_value = "pxelinux.0")]
    bootfile: String,
    /// Guest MAC address.
    #[arg(long)]
    mac: Option<String>,
    /// Guest UUID (`-uuid`).
    #[arg(long)]
    uuid: Option<String>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// Kernel id for a pxelinux.0 built from the fixtures.
    #[arg(long, default_value = scenario::DEFAULT_PXELINUX_KERNEL)]
    pxelinux_kernel: String,
    /// Keep logs (console.log, qemu-cmdline.sh, …) in this directory.
    #[arg(long)]
    artifacts: Option<PathBuf>,
}

/// Mirrors `src` into `dst`: real directories, symlinks to the files (QEMU's
/// TFTP server follows them), so a file can be added without touching `src`.
fn mirror(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if from.is_dir() {
            mirror(&from, &to)?;
        } else {
            std::os::unix::fs::symlink(std::fs::canonicalize(&from)?, &to)?;
        }
    }
    Ok(())
}

async fn boot(a: BootArgs) -> Result<i32> {
    if !a.tftp_root.is_dir() {
        bail!("--tftp-root {}: not a directory", a.tftp_root.display());
    }
    let qemu = QemuBinary::find()?;
    let work = tempfile::Builder::new().prefix("netboot-boot-").tempdir()?;
    let logs_dir = match &a.artifacts {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => work.path().to_path_buf(),
    };
    let tree = work.path().join("tftp");
    mirror(&a.tftp_root, &tree)?;
    let boot_path = tree.join(&a.bootfile);
    let pxelinux = match (&a.pxelinux, boot_path.exists()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => {
            eprintln!(
                "netboot-harness: {} has no {}; serving pxelinux.0 built from the fixtures (kernel {})",
                a.tftp_root.display(),
                a.bootfile,
                a.pxelinux_kernel
            );
            let payloads = netboot_harness::payload::Payloads::new()?;
            Some(payloads.get(
                &Payload::Pxelinux,
                &Params {
                    pxelinux_kernel: &a.pxelinux_kernel,
                    pxelinux_cmdline: s390_pxelinux::build::DEFAULT_CMDLINE,
                    target_kernel: scenario::DEFAULT_TARGET_KERNEL,
                },
            )?)
        }
    };
    if let Some(p) = pxelinux {
        if let Some(parent) = boot_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&boot_path);
        std::os::unix::fs::symlink(std::fs::canonicalize(&p)?, &boot_path)?;
    }
    let net = Slirp::new(
        Shared {
            bootfile: a.bootfile.clone(),
            ..Shared::default()
        },
        if a.artifacts.is_some() {
            netboot_harness::network::PcapMode::from_env()
        } else {
            netboot_harness::network::PcapMode::Off
        },
    );
    let dir = ArtifactDir::existing(&logs_dir)?;
    let spec = MachineSpec {
        memory_mb: a.memory,
        uuid: a.uuid.clone(),
        accel: netboot_harness::accel::from_env()?,
        nice_increment: netboot_harness::qemu::nice_increment_from_env()?,
        ..MachineSpec::default()
    };
    let mut prepared = Prepared::new(&dir, spec);
    prepared.attach(&net, &tree, a.mac.as_deref(), None)?;
    let mut m = prepared.launch(&qemu).await?;
    eprintln!(
        "netboot-harness: QEMU {}.{}.{} pid {} (Ctrl-C quits){}",
        qemu.version.0,
        qemu.version.1,
        qemu.version.2,
        m.pid(),
        a.artifacts
            .as_ref()
            .map(|d| format!("; logs in {}", d.display()))
            .unwrap_or_default()
    );
    // Raw mode while the console is attached: keys reach the guest as they
    // are typed and only the guest echoes them. Restored when `raw` drops
    // (any return below) or by the reaper on a signal.
    let raw = netboot_harness::terminal::RawTerminal::enter()
        .context("setting the terminal to raw mode")?;
    m.console.set_echo(true);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Input>(16);
    std::thread::spawn(move || read_keys(&tx));
    let never = regex::bytes::Regex::new("$^")?;
    let forbidden: Vec<Forbidden> = Vec::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Keys(k)) => m.console.send(&k).await?,
                Some(Input::Interrupt) => {
                    interrupted = true;
                    break;
                }
                None => {
                    // stdin closed: keep running until QEMU exits.
                    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
                    let _ = m.console.expect(&never, far, &forbidden).await;
                    break;
                }
            },
            closed = m.console.wait_closed(Duration::from_secs(3600)) => {
                if closed { break; }
            }
        }
    }
    if interrupted {
        drop(raw);
        eprintln!("\r\nnetboot-harness: Ctrl-C: stopping QEMU");
        let status = m.shutdown().await.context("stopping QEMU")?;
        eprintln!("netboot-harness: QEMU exited ({status})");
        return Ok(130);
    }
    let status = m.wait_exit(Duration::from_secs(5)).await;
    let status = match status {
        Some(s) => s,
        None => m.shutdown().await.context("stopping QEMU")?,
    };
    drop(raw);
    eprintln!("\nnetboot-harness: QEMU exited ({status})");
    Ok(status.code().unwrap_or(1))
}

/// What the keyboard reader hands the console loop.
enum Input {
    /// Bytes for the guest.
    Keys(Vec<u8>),
    /// Ctrl-C typed (raw mode delivers it as a byte): end the run.
    Interrupt,
}

/// Reads standard input as it arrives (a key at a time on a raw terminal)
/// and forwards it; a Ctrl-C byte ends the reading with [`Input::Interrupt`].
fn read_keys(tx: &tokio::sync::mpsc::Sender<Input>) {
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let (keys, ctrl_c) = match chunk
            .iter()
            .position(|&b| b == netboot_harness::terminal::CTRL_C)
        {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        if !keys.is_empty() && tx.blocking_send(Input::Keys(keys.to_vec())).is_err() {
            return;
        }
        if ctrl_c {
            let _ = tx.blocking_send(Input::Interrupt);
            return;
        }
    }
}
