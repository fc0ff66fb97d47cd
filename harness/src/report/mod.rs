//! The reports people look at: `report.html` in each run's artifact
//! directory (verdict and failure reason on top, the phase timeline as SVG,
//! the steps with their times, links to the logs, the console with each
//! matched step highlighted) and `target/boot-artifacts/index.html` (the
//! last run of every scenario: verdict, duration, phases as small bars,
//! sortable). Each run also leaves `report.json`, the [`RunRecord`] the
//! index is rebuilt from. Every file is written whole or not at all
//! (temporary file + rename), so parallel runs never see half an index.
//!
//! HTML comes from askama templates (`harness/templates/`), checked at
//! compile time and HTML-escaped by default; SVG from [`chart`]. This module
//! only renders what the runner measured: it must not run anything or
//! decide a verdict.

pub mod chart;

use crate::HarnessError;
use askama::Template;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file each run writes next to `result.txt`.
pub const REPORT_HTML: &str = "report.html";
/// The machine-readable record the index is built from.
pub const REPORT_JSON: &str = "report.json";
/// The index in the artifacts root.
pub const INDEX_HTML: &str = "index.html";

/// One run, as reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Scenario (variant) name = artifact directory name.
    pub scenario: String,
    /// The scenario's description.
    pub description: String,
    /// True when every step matched.
    pub passed: bool,
    /// Why it failed (None when it passed).
    pub failure: Option<String>,
    /// Wall time of the run, seconds (preparation included).
    pub duration_s: f64,
    /// QEMU's exit status as text.
    pub qemu_exit: String,
    /// The accelerator (`tcg`, `kvm`).
    pub accel: String,
    /// Every step of the scenario, matched or not.
    pub steps: Vec<StepRecord>,
    /// Phase markers seen: (name, seconds since QEMU started), in order.
    pub phases: Vec<(String, f64)>,
    /// When the run ended, seconds since the Unix epoch.
    pub finished_unix_s: u64,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    /// The step's regex.
    pub pattern: String,
    /// When it matched (seconds since QEMU started); None if it did not.
    pub at_s: Option<f64>,
    /// The console line (0-based index) where the match starts.
    pub line: Option<usize>,
}

/// A failure to write a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing or reading a file failed.
    #[error(transparent)]
    Io(#[from] HarnessError),
    /// A template failed to render.
    #[error("rendering {file}: {source}")]
    Render {
        /// The file being rendered.
        file: &'static str,
        /// The template error.
        source: askama::Error,
    },
    /// The atomic write (temporary file, rename) failed.
    #[error(transparent)]
    Atomic(#[from] s390_pxelinux::atomic::AtomicWriteError),
    /// `report.json` could not be (de)serialised.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },
}

/// A console line as shown in `report.html`.
struct ConsoleLine {
    /// `L<index>`, the anchor.
    id: String,
    /// `[   1.234]`.
    time: String,
    text: String,
    /// `step N @ T s` when a step matched on this line.
    steps: Vec<String>,
}

/// A row of the phase table.
struct PhaseRow {
    name: String,
    /// Its colour in the timeline.
    colour: &'static str,
    at: String,
    delta: String,
}

/// A row of the step table.
struct StepRow {
    number: usize,
    pattern: String,
    /// `1.234` or empty when not reached.
    at: String,
    /// `#L12` or empty.
    anchor: String,
}

/// A link to a file of the artifact directory.
struct Link {
    name: String,
    bytes: u64,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    r: &'a RunRecord,
    duration: String,
    timeline_svg: String,
    phases: Vec<PhaseRow>,
    steps: Vec<StepRow>,
    links: Vec<Link>,
    console: Vec<ConsoleLine>,
}

/// An index row.
struct IndexRow {
    scenario: String,
    passed: bool,
    failure: String,
    duration: String,
    phases_svg: String,
    finished_unix_s: u64,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    rows: Vec<IndexRow>,
    /// (phase name, colour) for the legend.
    legend: Vec<(&'static str, &'static str)>,
    passed: usize,
    failed: usize,
}

/// Formats seconds as the runner's `result.txt` does (`{:.3}`).
pub fn seconds(s: f64) -> String {
    format!("{s:.3}")
}

/// A console line without its control characters (the firmware draws its
/// progress with backspaces), tabs kept.
fn visible(line: &str) -> String {
    line.chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

/// Files of `dir` worth linking (logs, pcap, command line, result), sorted;
/// directories (the TFTP tree) and the reports themselves are left out.
fn links(dir: &Path) -> Vec<Link> {
    let mut v: Vec<Link> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            let name = e.file_name().into_string().ok()?;
            let keep = meta.is_file()
                && name != REPORT_HTML
                && name != REPORT_JSON
                && !name.starts_with('.')
                && !name.ends_with(".img")
                && !name.starts_with("direct-");
            keep.then_some(Link {
                name,
                bytes: meta.len(),
            })
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Writes `report.json` and `report.html` into `dir` (the run's artifact
/// directory). `console` is the transcript as [`crate::console::Console::lines`]
/// returns it.
pub fn write_run(
    dir: &Path,
    record: &RunRecord,
    console: &[(Duration, String)],
) -> Result<(), ReportError> {
    let json_path = dir.join(REPORT_JSON);
    let json = serde_json::to_vec_pretty(record).map_err(|source| ReportError::Json {
        path: json_path.clone(),
        source,
    })?;
    let mut lines: Vec<ConsoleLine> = console
        .iter()
        .enumerate()
        .map(|(i, (at, text))| ConsoleLine {
            id: format!("L{i}"),
            time: format!("[{:>9.3}]", at.as_secs_f64()),
            text: visible(text),
            steps: Vec::new(),
        })
        .collect();
    let mut steps = Vec::new();
    for (i, s) in record.steps.iter().enumerate() {
        let at = s.at_s.map(seconds).unwrap_or_default();
        let anchor = match s.line.and_then(|l| lines.get_mut(l).map(|cl| (l, cl))) {
            Some((l, cl)) => {
                cl.steps.push(format!("step {} @ {at} s", i + 1));
                format!("#L{l}")
            }
            None => String::new(),
        };
        steps.push(StepRow {
            number: i + 1,
            pattern: s.pattern.clone(),
            at,
            anchor,
        });
    }
    let mut prev = 0.0;
    let phases = record
        .phases
        .iter()
        .map(|(name, at)| {
            let row = PhaseRow {
                name: name.clone(),
                colour: chart::phase_colour(name),
                at: seconds(*at),
                delta: format!("+{}", seconds(at - prev)),
            };
            prev = *at;
            row
        })
        .collect();
    let console_end = console.last().map(|(t, _)| t.as_secs_f64()).unwrap_or(0.0);
    let page = ReportPage {
        r: record,
        duration: format!("{:.1}", record.duration_s),
        timeline_svg: chart::timeline(&record.phases, console_end),
        phases,
        steps,
        links: links(dir),
        console: lines,
    };
    let html = page.render().map_err(|source| ReportError::Render {
        file: REPORT_HTML,
        source,
    })?;
    write_atomic(&json_path, &json)?;
    write_atomic(&dir.join(REPORT_HTML), html.as_bytes())?;
    Ok(())
}

/// Reads every `<root>/*/report.json` (the last finished run of each
/// scenario), sorted by scenario name. Unreadable records are skipped with
/// a warning: one broken directory must not hide the others.
pub fn read_records(root: &Path) -> Vec<RunRecord> {
    let mut v: Vec<RunRecord> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path().join(REPORT_JSON);
            let bytes = std::fs::read(&path).ok()?;
            match serde_json::from_slice(&bytes) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable run record");
                    None
                }
            }
        })
        .collect();
    v.sort_by(|a: &RunRecord, b| a.scenario.cmp(&b.scenario));
    v
}

/// Rebuilds `<root>/index.html` from the run records under `root`.
pub fn write_index(root: &Path) -> Result<PathBuf, ReportError> {
    let records = read_records(root);
    let scale = records.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    let rows = records
        .iter()
        .map(|r| IndexRow {
            scenario: r.scenario.clone(),
            passed: r.passed,
            failure: r.failure.clone().unwrap_or_default(),
            duration: format!("{:.1}", r.duration_s),
            phases_svg: chart::mini_bar(&r.phases, r.duration_s, scale),
            finished_unix_s: r.finished_unix_s,
        })
        .collect::<Vec<_>>();
    let passed = rows.iter().filter(|r| r.passed).count();
    let page = IndexPage {
        legend: crate::markers::PHASES
            .iter()
            .map(|(name, _, _)| (*name, chart::phase_colour(name)))
            .collect(),
        failed: rows.len() - passed,
        passed,
        rows,
    };
    let html = page.render().map_err(|source| ReportError::Render {
        file: INDEX_HTML,
        source,
    })?;
    let path = root.join(INDEX_HTML);
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename (the builder's atomic writer, which also sweeps temporaries
/// of dead writers).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    s390_pxelinux::atomic::write_atomically(path, |w| w.write_all(bytes))?
        .map_err(|e| ReportError::Io(HarnessError::io("writing", path, e)))
}
