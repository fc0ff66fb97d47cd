//! Runs one scenario end to end, in three steps: [`prepare`] (artifact
//! directory and TFTP tree, disks and direct-boot files, network attachment
//! and HTTP server, giving a [`Prepared`] machine, which `boot` also uses),
//! `drive` (QEMU launch, the ordered console steps, each with its own
//! deadline inside the scenario's total deadline, keys sent after a match,
//! built-in and scenario forbidden patterns, clean shutdown) and `finish`
//! (per-phase timings, `result.txt`, the reports, and the failure report:
//! the failed expectation, the last 40 console lines, where the artifacts
//! are). It owns no QEMU or console mechanics (see [`crate::qemu`],
//! [`crate::console`]) and prints nothing: callers decide what to show.

use crate::artifacts::{self, ArtifactDir};
use crate::console::{ExpectFailure, Forbidden};
use crate::markers;
use crate::network::{NetContext, Network};
use crate::payload::Payloads;
use crate::qemu::{DirectBoot, Machine, MachineLogs, MachineSpec, QemuBinary};
use crate::scenario::Scenario;
use crate::HarnessError;
use regex::bytes::Regex;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Console lines shown in a failure report.
pub const TAIL_LINES: usize = 40;

/// Patterns that fail every scenario, unless a step's pattern contains the
/// literal marker (so a scenario that expects the rescue shell may see it).
pub const BUILTIN_FORBIDDEN: &[(&str, &str)] = &[
    ("kernel panic", markers::KERNEL_PANIC),
    ("rescue shell", markers::GUEST_RESCUE),
    ("firmware gave up", markers::FIRMWARE_GAVE_UP),
    ("root-disk initrd error", markers::ROOTFS_INITRD_ERROR),
];

/// Shared, read-only state for many runs.
pub struct Harness {
    /// The QEMU in use.
    pub qemu: QemuBinary,
    /// Payload builder and cache.
    pub payloads: Payloads,
    /// Where artifact directories go.
    pub artifacts_root: PathBuf,
    /// The accelerator every run uses (`NETBOOT_ACCEL` resolved against the host).
    pub accel: crate::accel::Accel,
    /// How much nicer than the harness every QEMU runs (`NETBOOT_QEMU_NICE`).
    pub qemu_nice: i32,
}

impl Harness {
    /// Finds QEMU and the fixtures.
    pub fn new() -> Result<Harness, HarnessError> {
        crate::timeout_scale_from_env()?;
        Ok(Harness {
            qemu: QemuBinary::find()?,
            payloads: Payloads::new()?,
            artifacts_root: artifacts::artifacts_root(),
            accel: crate::accel::from_env()?,
            qemu_nice: crate::qemu::nice_increment_from_env()?,
        })
    }
}

/// What a successful run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Wall time of the whole run, preparation included.
    pub total: Duration,
    /// Time spent preparing payloads and the TFTP tree.
    pub prepare: Duration,
    /// Console time at which each step matched.
    pub steps: Vec<(String, Duration)>,
    /// Console time of each phase marker seen.
    pub phases: Vec<(&'static str, Duration)>,
    /// The artifact directory.
    pub artifacts: PathBuf,
}

/// A failed run: everything needed to understand it without rerunning.
#[derive(Debug)]
pub struct ScenarioFailure {
    /// Scenario name.
    pub scenario: String,
    /// What failed (names the expectation).
    pub message: String,
    /// Last console lines (timestamped).
    pub tail: String,
    /// The artifact directory, when one was created.
    pub artifacts: Option<PathBuf>,
    /// QEMU's command line, when it was started.
    pub command_line: Option<String>,
    /// QEMU's own output, when there was any.
    pub qemu_output: String,
}

impl std::fmt::Display for ScenarioFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scenario {}: {}", self.scenario, self.message)?;
        if !self.tail.is_empty() {
            writeln!(f, "--- last {TAIL_LINES} console lines ---")?;
            write!(f, "{}", self.tail)?;
            writeln!(f, "--- end of console ---")?;
        }
        if !self.qemu_output.trim().is_empty() {
            writeln!(f, "QEMU output:\n{}", self.qemu_output.trim_end())?;
        }
        if let Some(a) = &self.artifacts {
            writeln!(
                f,
                "artifacts: {} ({})",
                a.display(),
                ArtifactDir::FIRST_LOOK
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioFailure {}

impl ScenarioFailure {
    fn setup(scenario: &Scenario, artifacts: Option<PathBuf>, e: HarnessError) -> Self {
        ScenarioFailure {
            scenario: scenario.name.clone(),
            message: e.to_string(),
            tail: String::new(),
            artifacts,
            command_line: None,
            qemu_output: String::new(),
        }
    }
}

/// Options for one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Copy the console to stdout as it arrives.
    pub echo: bool,
}

/// Runs `scenario` on a fresh current-thread tokio runtime.
pub fn run_blocking(
    h: &Harness,
    scenario: &Scenario,
    opts: &RunOptions,
) -> Result<RunReport, Box<ScenarioFailure>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Box::new(ScenarioFailure::setup(
                scenario,
                None,
                HarnessError::io("starting tokio", "", e),
            ))
        })?;
    rt.block_on(run(h, scenario, opts))
}

fn build_forbidden(scenario: &Scenario) -> Vec<Forbidden> {
    let mut v = Vec::new();
    for (name, literal) in BUILTIN_FORBIDDEN {
        if scenario.steps.iter().any(|s| s.pattern.contains(literal)) {
            continue;
        }
        if let Ok(regex) = Regex::new(&regex::escape(literal)) {
            v.push(Forbidden {
                name: (*name).to_string(),
                regex,
            });
        }
    }
    for (pattern, regex) in &scenario.forbid {
        v.push(Forbidden {
            name: format!("forbidden pattern /{pattern}/"),
            regex: regex.clone(),
        });
    }
    v
}

/// Concatenates initrds, each padded to 4 KiB, into `out`.
fn concat_initrds(parts: &[PathBuf], out: &std::path::Path) -> Result<(), HarnessError> {
    let mut data = Vec::new();
    for p in parts {
        let bytes = std::fs::read(p).map_err(|e| HarnessError::io("reading initrd", p, e))?;
        data.extend_from_slice(&bytes);
        data.resize(data.len().div_ceil(4096) * 4096, 0);
    }
    std::fs::write(out, data).map_err(|e| HarnessError::io("writing", out, e))
}

/// Writes the run's `report.html` and rebuilds the index. A report that
/// cannot be written is logged, never a failed run: the verdict is the
/// console's.
fn write_reports(
    h: &Harness,
    dir: &std::path::Path,
    record: &crate::report::RunRecord,
    console: &[(Duration, String)],
) {
    if let Err(e) = crate::report::write_run(dir, record, console) {
        tracing::warn!(dir = %dir.display(), error = %e, "report.html not written");
    }
    if let Err(e) = crate::report::write_index(&h.artifacts_root) {
        tracing::warn!(root = %h.artifacts_root.display(), error = %e, "index.html not written");
    }
}

/// A machine ready to launch: its spec, where its logs go, and the
/// guards of the services it needs (network, HTTP server), which stop them
/// when it is dropped. [`prepare`] makes one for a scenario; `boot` makes
/// one for a user's tree.
pub struct Prepared {
    /// What QEMU is started with.
    pub spec: MachineSpec,
    /// Where its console, output, QMP transcript and command line go.
    pub logs: MachineLogs,
    /// Where the network's own captures and logs go.
    artifacts: ArtifactDir,
    guards: Vec<Box<dyn Send>>,
}

impl Prepared {
    /// A machine `spec` whose files go into `dir`.
    pub fn new(dir: &ArtifactDir, spec: MachineSpec) -> Prepared {
        Prepared {
            spec,
            logs: MachineLogs {
                console: Some(dir.console_log()),
                qemu_output: Some(dir.qemu_log()),
                qmp: Some(dir.qmp_log()),
                cmdline: Some(dir.qemu_cmdline()),
            },
            artifacts: dir.unlocked(),
            guards: Vec::new(),
        }
    }

    /// Attaches `network` serving `tftp_root` (`http_backend`: the run's
    /// HTTP server on loopback, if any): its QEMU arguments and namespace
    /// go into the spec, its guard lives as long as this value.
    pub fn attach(
        &mut self,
        network: &dyn Network,
        tftp_root: &Path,
        mac: Option<&str>,
        http_backend: Option<std::net::SocketAddr>,
    ) -> Result<(), HarnessError> {
        let att = network.attach(&NetContext {
            tftp_root,
            mac,
            artifacts: &self.artifacts,
            http_backend,
        })?;
        self.spec.net_args = att.qemu_args;
        self.spec.netns = att.netns;
        self.guards.extend(att.guard);
        Ok(())
    }

    /// Keeps `guard` alive as long as this value.
    pub fn keep(&mut self, guard: Box<dyn Send>) {
        self.guards.push(guard);
    }

    /// Starts QEMU.
    pub async fn launch(&self, qemu: &QemuBinary) -> Result<Machine, HarnessError> {
        Machine::launch(qemu, &self.spec, &self.logs).await
    }
}

/// Everything before QEMU starts: the run's HTTP and FTP servers are
/// planned (the tree's text names their URLs, `${http}`, `${ftp}`), the
/// payloads and the TFTP tree, the disks and the direct-boot files, the
/// network and the HTTP and FTP servers. Returns the scenario as it runs
/// (`${http}` and `${ftp}` replaced).
pub fn prepare(
    h: &Harness,
    scenario: &Scenario,
    dir: &ArtifactDir,
) -> Result<(Prepared, Scenario), HarnessError> {
    let http_plan = match (&scenario.http, &scenario.network) {
        (Some(_), Some(network)) => Some(crate::http::Plan::for_network(network.as_ref())?),
        _ => None,
    };
    let scenario = match &http_plan {
        Some(plan) => scenario.with_http_url(&plan.base_url),
        None => scenario.clone(),
    };
    let ftp_plan = match (&scenario.ftp, &scenario.network) {
        (Some(_), Some(network)) => Some(crate::ftp::Plan::for_network(network.as_ref())?),
        _ => None,
    };
    let scenario = match &ftp_plan {
        Some(plan) => scenario.with_ftp_url(&plan.base_url),
        None => scenario,
    };
    // Payloads and the TFTP tree (builds are blocking work).
    crate::tree::write_tftp_tree(dir, &scenario, &h.payloads)?;
    let mut spec = MachineSpec {
        memory_mb: scenario.memory_mb,
        uuid: scenario.uuid.clone(),
        tcg_tb_size_mb: scenario.tb_size_mb,
        accel: h.accel,
        nice_increment: h.qemu_nice,
        ..MachineSpec::default()
    };
    for (i, d) in scenario.disks.iter().enumerate() {
        spec.disks.push(crate::tree::source_file(
            d,
            &scenario,
            &h.payloads,
            &dir.disk(i),
        )?);
    }
    if let Some(d) = &scenario.direct {
        spec.direct = Some(direct_boot(h, &scenario, d, dir)?);
    }
    let mut prepared = Prepared::new(dir, spec);
    if let Some(network) = &scenario.network {
        prepared.attach(
            network.as_ref(),
            &dir.tftp_root(),
            scenario.mac.as_deref(),
            http_plan.as_ref().and_then(|p| p.loopback()),
        )?;
    }
    if let (Some(plan), Some(settings)) = (http_plan, &scenario.http) {
        let path = dir.http_log();
        let log = crate::inprocess::log::EventLog::create(&path, std::time::Instant::now())
            .map_err(|e| HarnessError::io("creating", &path, e))?;
        let server = plan.start(
            &dir.tftp_root(),
            prepared.spec.netns.as_deref(),
            settings,
            log,
        )?;
        prepared.keep(Box::new(server));
    }
    if let Some(plan) = ftp_plan {
        let path = dir.ftp_log();
        let log = crate::inprocess::log::EventLog::create(&path, std::time::Instant::now())
            .map_err(|e| HarnessError::io("creating", &path, e))?;
        let server = plan.start(&dir.tftp_root(), prepared.spec.netns.as_deref(), log)?;
        prepared.keep(Box::new(server));
    }
    Ok((prepared, scenario))
}

/// The direct-boot kernel, the initrds concatenated, the command line.
fn direct_boot(
    h: &Harness,
    scenario: &Scenario,
    d: &crate::scenario::Direct,
    dir: &ArtifactDir,
) -> Result<DirectBoot, HarnessError> {
    let kernel = crate::tree::source_file(&d.kernel, scenario, &h.payloads, &dir.direct_kernel())?;
    let mut parts = Vec::new();
    for (i, s) in d.initrd.iter().enumerate() {
        parts.push(crate::tree::source_file(
            s,
            scenario,
            &h.payloads,
            &dir.direct_initrd_part(i),
        )?);
    }
    let initrd = if parts.is_empty() {
        None
    } else {
        let p = dir.direct_initrd();
        concat_initrds(&parts, &p)?;
        Some(p)
    };
    Ok(DirectBoot {
        kernel,
        initrd,
        append: d.append.clone(),
    })
}

/// What the console showed against the scenario's steps.
struct Driven {
    /// Pattern and console time of each step that matched.
    steps: Vec<(String, Duration)>,
    /// The console line of each step that matched.
    step_lines: Vec<usize>,
    /// Why the run failed, if it did.
    failure: Option<String>,
}

/// Matches the steps in order on `m`'s console (each within its own
/// deadline and the scenario's), sends their keys, then stops QEMU.
async fn drive(m: &mut Machine, scenario: &Scenario) -> (Driven, Option<std::process::ExitStatus>) {
    let forbidden = build_forbidden(scenario);
    let total_deadline = Instant::now() + crate::scaled(scenario.total_timeout);
    let mut steps = Vec::new();
    let mut step_lines = Vec::new();
    let n = scenario.steps.len();
    let mut failure: Option<String> = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        let step_timeout = crate::scaled(step.timeout);
        let step_deadline = Instant::now() + step_timeout;
        let deadline = step_deadline.min(total_deadline);
        let waited = Instant::now();
        match m.console.expect(&step.regex, deadline, &forbidden).await {
            Ok(found) => {
                tracing::debug!(scenario = %scenario.name, step = i + 1, at = ?found.at, "matched");
                steps.push((step.pattern.clone(), found.at));
                step_lines.push(found.line);
                if let Some(keys) = &step.send {
                    if let Err(e) = m.console.send(keys.as_bytes()).await {
                        failure = Some(format!(
                            "{}step {}/{n}: sending {keys:?} after /{}/ failed: {e}",
                            scenario.step_location(i),
                            i + 1,
                            step.pattern
                        ));
                        break;
                    }
                }
            }
            Err(f) => {
                let what = format!(
                    "{}step {}/{n} expecting /{}/",
                    scenario.step_location(i),
                    i + 1,
                    step.pattern
                );
                let msg = match f {
                    ExpectFailure::Timeout => {
                        let total_hit = step_deadline > total_deadline;
                        format!(
                            "{what}: timed out after {:.1} s ({})",
                            waited.elapsed().as_secs_f64(),
                            if total_hit {
                                format!(
                                    "scenario total_timeout {:.0} s reached",
                                    crate::scaled(scenario.total_timeout).as_secs_f64()
                                )
                            } else {
                                format!("step timeout {:.0} s", step_timeout.as_secs_f64())
                            }
                        )
                    }
                    ExpectFailure::Forbidden { name, line, at } => {
                        format!("{what}: {name} at {:.3} s: {line:?}", at.as_secs_f64())
                    }
                    ExpectFailure::Closed => {
                        let status = m.wait_exit(Duration::from_secs(5)).await;
                        format!(
                            "{what}: QEMU exited early ({}){}",
                            status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "console closed, QEMU still running".into()),
                            if m.guest_panicked() {
                                "; QMP reported GUEST_PANICKED"
                            } else {
                                ""
                            }
                        )
                    }
                };
                failure = Some(msg);
                break;
            }
        }
    }
    // Give a guest that powers off right after the last marker a moment to
    // do so (a clean exit), then quit through QMP, then kill.
    if failure.is_none() {
        let _ = m.wait_exit(Duration::from_millis(100)).await;
    }
    let status = m.shutdown().await;
    let _ = m.console.wait_closed(Duration::from_secs(2)).await;
    (
        Driven {
            steps,
            step_lines,
            failure,
        },
        status,
    )
}

/// Runs `scenario` (must be called inside a tokio runtime): [`prepare`],
/// launch, `drive`, `finish`.
pub async fn run(
    h: &Harness,
    scenario: &Scenario,
    opts: &RunOptions,
) -> Result<RunReport, Box<ScenarioFailure>> {
    let scenario = &scenario.with_env_overrides();
    let t0 = Instant::now();
    let dir = ArtifactDir::fresh(&h.artifacts_root, &scenario.name)
        .map_err(|e| Box::new(ScenarioFailure::setup(scenario, None, e)))?;
    let fail_setup = |e| Box::new(ScenarioFailure::setup(scenario, Some(dir.dir.clone()), e));
    let (prepared, scenario) = prepare(h, scenario, &dir).map_err(fail_setup)?;
    let scenario = &scenario;
    let prepare = t0.elapsed();
    let mut m = prepared.launch(&h.qemu).await.map_err(fail_setup)?;
    m.console.set_echo(opts.echo);
    let (driven, status) = drive(&mut m, scenario).await;
    drop(prepared);
    finish(h, scenario, &dir, &m, driven, status, t0, prepare)
}

/// After the run: the phases, `result.txt`, the reports, the verdict.
#[allow(clippy::too_many_arguments)]
fn finish(
    h: &Harness,
    scenario: &Scenario,
    dir: &ArtifactDir,
    m: &Machine,
    driven: Driven,
    status: Option<std::process::ExitStatus>,
    t0: Instant,
    prepare: Duration,
) -> Result<RunReport, Box<ScenarioFailure>> {
    let Driven {
        steps,
        step_lines,
        failure,
    } = driven;
    let phases: Vec<(&'static str, Duration)> = markers::PHASES
        .iter()
        .filter_map(|(name, pat, last)| {
            let re = Regex::new(pat).ok()?;
            let t = if *last {
                m.console.last_time(&re)
            } else {
                m.console.first_time(&re)
            }?;
            Some((*name, t))
        })
        .collect();
    let mut result = String::new();
    match &failure {
        None => result.push_str("PASS\n"),
        Some(f) => result.push_str(&format!("FAIL: {f}\n")),
    }
    result.push_str(&format!(
        "kernels: pxelinux {} target {}{}\n",
        scenario.pxelinux_kernel,
        scenario.target_kernel,
        scenario
            .tb_size_mb
            .map(|t| format!(", TCG tb-size {t} MiB"))
            .unwrap_or_default()
    ));
    result.push_str(&format!(
        "qemu exit: {}\n",
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into())
    ));
    for (p, t) in &steps {
        result.push_str(&format!("step {:>9.3} s  /{p}/\n", t.as_secs_f64()));
    }
    for (p, t) in &phases {
        result.push_str(&format!("phase {:>8.3} s  {p}\n", t.as_secs_f64()));
    }
    let _ = std::fs::write(dir.result(), &result);
    write_reports(
        h,
        &dir.dir,
        &crate::report::RunRecord {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            passed: failure.is_none(),
            failure: failure.clone(),
            duration_s: t0.elapsed().as_secs_f64(),
            qemu_exit: status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            accel: h.accel.name().to_string(),
            steps: scenario
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| crate::report::StepRecord {
                    pattern: s.pattern.clone(),
                    at_s: steps.get(i).map(|(_, t)| t.as_secs_f64()),
                    line: step_lines.get(i).copied(),
                })
                .collect(),
            phases: phases
                .iter()
                .map(|(p, t)| (p.to_string(), t.as_secs_f64()))
                .collect(),
            finished_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        },
        &m.console.lines(),
    );

    match failure {
        None => Ok(RunReport {
            scenario: scenario.name.clone(),
            total: t0.elapsed(),
            prepare,
            steps,
            phases,
            artifacts: dir.dir.clone(),
        }),
        Some(message) => Err(Box::new(ScenarioFailure {
            scenario: scenario.name.clone(),
            message,
            tail: m.console.tail(TAIL_LINES),
            artifacts: Some(dir.dir.clone()),
            command_line: Some(m.command_line.clone()),
            qemu_output: m.qemu_output(),
        })),
    }
}
