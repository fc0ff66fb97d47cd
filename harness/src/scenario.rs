//! Scenario files: one TOML file per scenario (format documented in
//! `scenarios/README.md`). Owns parsing with unknown keys rejected,
//! validation (every error names the key), artifact references (`@name`),
//! regex compilation and discovery of scenario files in directories. Errors
//! give the file, line and column of the key they name and show that line.
//! It must not build anything or start QEMU.

use crate::HarnessError;
use regex::bytes::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default per-step timeout in seconds (before scaling).
pub const DEFAULT_STEP_TIMEOUT: f64 = 120.0;
/// Default whole-scenario timeout in seconds (before scaling).
pub const DEFAULT_TOTAL_TIMEOUT: f64 = 420.0;
/// TCG translation-buffer size (MiB) used unless a scenario sets
/// `machine.tb_size`: without it a 6.1 target kernel stalls 45-90 s after
/// kexec under TCG (ARCHITECTURE.md), and a 6.12 target comes up ~0.5 s
/// sooner with it (2.55 s instead of 3.1 s after `kexec -e`).
pub const DEFAULT_TB_SIZE_MB: u32 = 32;
/// Environment variable overriding every scenario's target kernel.
pub const TARGET_KERNEL_ENV: &str = "NETBOOT_TARGET_KERNEL";
/// Environment variable overriding every scenario's loader kernel
/// (`kernels.pxelinux`).
pub const LOADER_KERNEL_ENV: &str = "NETBOOT_LOADER_KERNEL";
/// Kernel id pxelinux.0 is built with unless the scenario says otherwise:
/// the minimal kernel (built from Debian's kernel source, `/init` in under
/// a second), not `s390-pxelinux build`'s default (Debian's 6.1, which
/// needs no compiler).
pub const DEFAULT_PXELINUX_KERNEL: &str = s390_pxelinux::minimal_kernel::KERNEL_ID;
/// Kernel id the target kernel comes from unless the scenario says otherwise.
pub const DEFAULT_TARGET_KERNEL: &str = s390_pxelinux::minimal_kernel::KERNEL_ID;

/// A built artifact a scenario can refer to with `@name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Artifact {
    /// `@pxelinux`: pxelinux.0 built with the scenario's pxelinux kernel.
    Pxelinux,
    /// `@target-kernel`: the scenario's target kernel image.
    TargetKernel,
    /// `@target-initrd`: busybox initrd whose /init prints the target markers.
    TargetInitrd,
    /// `@target-initrd:NAME`: an initrd fragment adding marker NAME.
    TargetFragment(String),
    /// `@rootfs-initrd`: initrd that mounts the virtio-blk root disk and
    /// switch_roots into it (modules of the target kernel).
    RootfsInitrd,
    /// `@rootfs-disk`: ext4 disk image whose /sbin/init prints `ROOTFS-UP`.
    RootfsDisk,
}

impl Artifact {
    /// Parses `@name[:arg]`; `None` if `s` does not start with `@`.
    pub fn parse(s: &str) -> Option<Result<Artifact, String>> {
        let name = s.strip_prefix('@')?;
        Some(match name.split_once(':') {
            None => match name {
                "pxelinux" => Ok(Artifact::Pxelinux),
                "target-kernel" => Ok(Artifact::TargetKernel),
                "target-initrd" => Ok(Artifact::TargetInitrd),
                "rootfs-initrd" => Ok(Artifact::RootfsInitrd),
                "rootfs-disk" => Ok(Artifact::RootfsDisk),
                other => Err(format!(
                    "unknown artifact @{other} (known: @pxelinux, @target-kernel, @target-initrd, \
                     @target-initrd:NAME, @rootfs-initrd, @rootfs-disk)"
                )),
            },
            Some(("target-initrd", frag)) => {
                if !frag.is_empty()
                    && frag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && frag != "target"
                {
                    Ok(Artifact::TargetFragment(frag.to_string()))
                } else {
                    Err(format!(
                        "@target-initrd:{frag}: the fragment name must be letters, digits, - or _ (and not `target`)"
                    ))
                }
            }
            Some((other, _)) => Err(format!("unknown artifact @{other}:…")),
        })
    }
}

impl std::fmt::Display for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Artifact::Pxelinux => write!(f, "@pxelinux"),
            Artifact::TargetKernel => write!(f, "@target-kernel"),
            Artifact::TargetInitrd => write!(f, "@target-initrd"),
            Artifact::TargetFragment(n) => write!(f, "@target-initrd:{n}"),
            Artifact::RootfsInitrd => write!(f, "@rootfs-initrd"),
            Artifact::RootfsDisk => write!(f, "@rootfs-disk"),
        }
    }
}

/// Where the content of a TFTP file (or disk, or direct-boot file) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Inline text.
    Text(String),
    /// A host file, relative to the scenario file's directory.
    File(PathBuf),
    /// A built artifact.
    Artifact(Artifact),
}

/// Network settings.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkMode {
    /// QEMU user networking.
    Slirp {
        /// DHCP boot file name.
        bootfile: String,
        /// DHCP option 66.
        tftp_server_name: Option<String>,
        /// Guest network CIDR.
        net: Option<String>,
        /// First DHCP address.
        dhcpstart: Option<String>,
    },
    /// The harness's own DHCP/TFTP on a virtual segment
    /// ([`crate::inprocess`]), settings resolved.
    InProcess(Box<crate::inprocess::config::Resolved>),
    /// The host's dnsmasq in a network namespace ([`crate::dnsmasq`]),
    /// settings resolved.
    Dnsmasq(crate::dnsmasq::Settings),
}

impl NetworkMode {
    /// The mode's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            NetworkMode::Slirp { .. } => "slirp",
            NetworkMode::InProcess(_) => "inprocess",
            NetworkMode::Dnsmasq(_) => "dnsmasq",
        }
    }
}

/// One expected console step.
#[derive(Debug, Clone)]
pub struct Step {
    /// The regex as written.
    pub pattern: String,
    /// Compiled (multi-line mode: `^`/`$` match at line boundaries).
    pub regex: Regex,
    /// Timeout in seconds (unscaled).
    pub timeout: f64,
    /// Keys sent once the pattern matched.
    pub send: Option<String>,
}

/// Direct kernel boot (`-kernel/-initrd/-append`), bypassing the firmware.
#[derive(Debug, Clone)]
pub struct Direct {
    /// Kernel.
    pub kernel: Source,
    /// Initrds, concatenated in order.
    pub initrd: Vec<Source>,
    /// Command line.
    pub append: String,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name (the file stem); also the test name and artifact directory name.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// One-line description.
    pub description: String,
    /// Only run with `--ignored` / `--include-ignored`.
    pub slow: bool,
    /// Kernel id for pxelinux.0.
    pub pxelinux_kernel: String,
    /// Kernel id for `@target-kernel` and `@rootfs-initrd`.
    pub target_kernel: String,
    /// Command line built into `@pxelinux`.
    pub pxelinux_cmdline: String,
    /// Guest MAC.
    pub mac: Option<String>,
    /// Guest UUID (`-uuid`).
    pub uuid: Option<String>,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// TCG translation-buffer size in MiB; None = QEMU's default.
    pub tb_size_mb: Option<u32>,
    /// Network (None: no NIC).
    pub network: Option<NetworkMode>,
    /// More network modes the same scenario runs in (`mode = [..]`); see
    /// [`Scenario::variants`].
    pub other_networks: Vec<NetworkMode>,
    /// Direct kernel boot instead of netboot.
    pub direct: Option<Direct>,
    /// TFTP tree: relative path → content.
    pub tftp: BTreeMap<String, Source>,
    /// Disks (virtio-blk-ccw, in order: vda, vdb, …).
    pub disks: Vec<Source>,
    /// Expected steps, in order.
    pub steps: Vec<Step>,
    /// Scenario-specific forbidden patterns.
    pub forbid: Vec<(String, Regex)>,
    /// Whole-scenario timeout in seconds (unscaled).
    pub total_timeout: f64,
    /// `[http]`: an HTTP server serves the tree during the run
    /// ([`crate::http`]); its URL replaces `${http}`.
    pub http: Option<crate::http::HttpSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: String,
    #[serde(default)]
    slow: bool,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    total_timeout: Option<f64>,
    #[serde(default)]
    kernels: RawKernels,
    #[serde(default)]
    machine: RawMachine,
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default)]
    direct: Option<RawDirect>,
    #[serde(default)]
    tftp: BTreeMap<String, RawSource>,
    #[serde(default)]
    disk: Vec<RawSource>,
    #[serde(default)]
    step: Vec<RawStep>,
    #[serde(default)]
    forbid: Vec<String>,
    #[serde(default)]
    http: Option<crate::http::HttpConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKernels {
    pxelinux: Option<String>,
    pxelinux_cmdline: Option<String>,
    target: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    mac: Option<String>,
    uuid: Option<String>,
    memory: Option<u32>,
    tb_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    mode: RawModes,
    bootfile: Option<String>,
    tftp_server_name: Option<String>,
    net: Option<String>,
    dhcpstart: Option<String>,
    inprocess: Option<crate::inprocess::InProcessConfig>,
    dnsmasq: Option<crate::dnsmasq::DnsmasqConfig>,
}

/// `mode = "slirp"` or `mode = ["slirp", "inprocess"]` (one run per mode).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawModes {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirect {
    kernel: RawSource,
    #[serde(default)]
    initrd: Vec<RawSource>,
    #[serde(default)]
    append: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Plain(String),
    Table(RawSourceTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceTable {
    text: Option<String>,
    file: Option<PathBuf>,
    artifact: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    expect: String,
    timeout: Option<f64>,
    send: Option<String>,
}

/// TCG translation-buffer size to use: `machine.tb_size` if set (0 = QEMU's
/// default), else [`DEFAULT_TB_SIZE_MB`] whatever the target kernel.
fn tb_size_mb(configured: Option<u32>) -> Option<u32> {
    match configured {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(DEFAULT_TB_SIZE_MB),
    }
}

fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_uuid(u: &str) -> bool {
    let lens = [8, 4, 4, 4, 12];
    let parts: Vec<&str> = u.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, l)| p.len() == l && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_tftp_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.ends_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A key path segment in a parsed scenario document.
type DeTable<'i> = toml::de::DeTable<'i>;
/// A value in a parsed scenario document.
type DeValue<'i> = toml::de::DeValue<'i>;

/// A key as messages write it: bare if it can be, else quoted.
fn key_text(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// The key path (`step 2 timeout`, `machine.mac`, `tftp."a b"`) of the
/// innermost key or value at byte `offset`, in the style errors name keys:
/// array elements are numbered from 1.
fn key_at(doc: &DeTable<'_>, offset: usize) -> Option<String> {
    /// Appends the path to `offset` inside `v` (after `path`) if it is there.
    fn in_value(v: &DeValue<'_>, offset: usize, path: &mut String, sep: char) -> bool {
        let entries: Vec<(String, &toml::Spanned<DeValue<'_>>, _)> = match v {
            DeValue::Table(t) => t
                .iter()
                .map(|(k, v)| (key_text(k.get_ref()), v, Some(k.span())))
                .collect(),
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1).to_string(), v, None))
                .collect(),
            _ => return false,
        };
        // After an array element the next key follows a space (`step 2
        // expect`), after a table key a dot (`machine.mac`).
        let index = matches!(v, DeValue::Array(_));
        entries.into_iter().any(|(name, value, key_span)| {
            let len = path.len();
            if !path.is_empty() {
                path.push(if index { ' ' } else { sep });
            }
            path.push_str(&name);
            let next_sep = if index { ' ' } else { '.' };
            let found = key_span.is_some_and(|k| k.contains(&offset))
                || in_value(value.get_ref(), offset, path, next_sep)
                || value.span().contains(&offset);
            if !found {
                path.truncate(len);
            }
            found
        })
    }
    let mut path = String::new();
    let root = DeValue::Table(doc.clone());
    in_value(&root, offset, &mut path, '.').then_some(path)
}

/// Where the key a validation message starts with sits in the document.
/// Messages name keys as `machine.mac`, `step 2 expect`, `tftp."path"`,
/// `direct.initrd 1`; the longest prefix of that path found in the document
/// gives the span (of the value, so the column points at what is wrong).
fn key_span(doc: &DeTable<'_>, message: &str) -> Option<std::ops::Range<usize>> {
    let mut rest = message;
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    let mut table = Some(doc);
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    loop {
        let (seg, tail) = if let Some(q) = rest.strip_prefix('"') {
            // A quoted key, as `{:?}` writes it (no escapes in practice).
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if seg.is_empty() {
            break;
        }
        let next = match (seg.parse::<usize>(), array, table) {
            (Ok(n), Some(a), _) if n >= 1 => a.get(n - 1),
            (_, _, Some(t)) => t.get(seg),
            _ => None,
        };
        let Some(next) = next else { break };
        current = Some(next);
        table = next.get_ref().as_table();
        array = next.get_ref().as_array().map(|a| &a[..]);
        rest = match tail.strip_prefix('.').or_else(|| tail.strip_prefix(' ')) {
            Some(t) => t,
            None => break,
        };
    }
    current.map(|v| v.span())
}

/// A scenario error at `span` of `text` (if known): line and column, and
/// the offending line with a marker under the span.
fn located(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    message: String,
) -> HarnessError {
    let Some(span) = span.filter(|s| s.start <= text.len()) else {
        return HarnessError::Scenario {
            path: path.to_path_buf(),
            at: None,
            message,
        };
    };
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..span.start].matches('\n').count() + 1;
    let column = text[line_start..span.start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let width = text
        .get(span.start..span.end.min(line_start + line.len()).max(span.start))
        .map_or(1, |s| s.chars().count().max(1));
    let gutter = line_no.to_string().len();
    HarnessError::Scenario {
        path: path.to_path_buf(),
        at: Some((line_no, column)),
        message: format!(
            "{message}\n {line_no} | {line}\n {:gutter$} | {:>column$}",
            "",
            "^".repeat(width),
            column = column - 1 + width,
        ),
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, HarnessError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HarnessError::io("reading scenario", path, e))?;
        Scenario::parse(&text, path)
    }

    /// Parses scenario text; `path` gives the name and the base directory
    /// of `file` sources.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, HarnessError> {
        let doc = toml::de::DeTable::parse(text).ok();
        // Every message starts with the key it names: point at that key.
        let err = |message: String| {
            let span = doc.as_ref().and_then(|d| key_span(d.get_ref(), &message));
            located(path, text, span, message)
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let key = match (&doc, &span) {
                (Some(d), Some(s)) => key_at(d.get_ref(), s.start),
                _ => None,
            };
            let message = e.message().trim().replace(
                "data did not match any variant of untagged enum RawSource",
                "expected a string or a table with one of `text`, `file`, `artifact`",
            );
            let message = match key {
                Some(k) => format!("{k}: {message}"),
                None => message,
            };
            located(path, text, span, message)
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| err("file name is not valid UTF-8".into()))?
            .to_string();
        let base = path.parent().unwrap_or(Path::new("."));
        let source = |key: &str, raw: RawSource| -> Result<Source, HarnessError> {
            match raw {
                RawSource::Plain(s) => match Artifact::parse(&s) {
                    Some(Ok(a)) => Ok(Source::Artifact(a)),
                    Some(Err(e)) => Err(err(format!("{key}: {e}"))),
                    None => Ok(Source::Text(s)),
                },
                RawSource::Table(t) => match (t.text, t.file, t.artifact) {
                    (Some(s), None, None) => Ok(Source::Text(s)),
                    (None, Some(f), None) => Ok(Source::File(base.join(f))),
                    (None, None, Some(a)) => {
                        let a = if a.starts_with('@') {
                            a
                        } else {
                            format!("@{a}")
                        };
                        match Artifact::parse(&a) {
                            Some(Ok(a)) => Ok(Source::Artifact(a)),
                            Some(Err(e)) => Err(err(format!("{key}: {e}"))),
                            None => Err(err(format!("{key}: bad artifact"))),
                        }
                    }
                    _ => Err(err(format!(
                        "{key}: a table source needs exactly one of `text`, `file`, `artifact`"
                    ))),
                },
            }
        };

        let step_default = raw.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
        if step_default <= 0.0 {
            return Err(err("timeout: must be positive".into()));
        }
        let total_timeout = raw.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT);
        if total_timeout <= 0.0 {
            return Err(err("total_timeout: must be positive".into()));
        }
        for (key, id) in [
            ("kernels.pxelinux", &raw.kernels.pxelinux),
            ("kernels.target", &raw.kernels.target),
        ] {
            if let Some(id) = id {
                let known = known_kernel_ids();
                if !known.contains(id) {
                    return Err(err(format!(
                        "{key} {id:?}: unknown kernel id (known: {})",
                        known.join(", ")
                    )));
                }
            }
        }
        if let Some(m) = &raw.machine.mac {
            if !valid_mac(m) {
                return Err(err(format!(
                    "machine.mac {m:?}: expected six colon-separated hex bytes"
                )));
            }
        }
        if let Some(u) = &raw.machine.uuid {
            if !valid_uuid(u) {
                return Err(err(format!(
                    "machine.uuid {u:?}: expected 8-4-4-4-12 hex digits"
                )));
            }
        }
        let mut networks = Vec::new();
        if let Some(n) = raw.network {
            let modes = match n.mode {
                RawModes::One(m) => vec![m],
                RawModes::Many(v) => v,
            };
            if modes.is_empty() {
                return Err(err("network.mode: an empty list".into()));
            }
            let bootfile = n.bootfile.unwrap_or_else(|| "pxelinux.0".into());
            if n.inprocess.is_some() && !modes.iter().any(|m| m == "inprocess") {
                return Err(err(
                    "network.inprocess: only meaningful with mode \"inprocess\"".into(),
                ));
            }
            if n.dnsmasq.is_some() && !modes.iter().any(|m| m == "dnsmasq") {
                return Err(err(
                    "network.dnsmasq: only meaningful with mode \"dnsmasq\"".into(),
                ));
            }
            for m in &modes {
                let mode = match m.as_str() {
                    "slirp" => NetworkMode::Slirp {
                        bootfile: bootfile.clone(),
                        tftp_server_name: n.tftp_server_name.clone(),
                        net: n.net.clone(),
                        dhcpstart: n.dhcpstart.clone(),
                    },
                    "inprocess" => {
                        let common = crate::inprocess::config::Common {
                            bootfile: Some(&bootfile),
                            tftp_server_name: n.tftp_server_name.as_deref(),
                            net: n.net.as_deref(),
                            dhcpstart: n.dhcpstart.as_deref(),
                        };
                        let resolved = n
                            .inprocess
                            .clone()
                            .unwrap_or_default()
                            .resolve(&common)
                            .map_err(|e| err(format!("network.inprocess: {e}")))?;
                        NetworkMode::InProcess(Box::new(resolved))
                    }
                    "dnsmasq" => {
                        if let Some(t) = &n.tftp_server_name {
                            return Err(err(format!(
                                "network.tftp_server_name {t:?}: not supported in mode \"dnsmasq\" (its TFTP server is the DHCP server)"
                            )));
                        }
                        let settings = n
                            .dnsmasq
                            .clone()
                            .unwrap_or_default()
                            .resolve(&bootfile, n.net.as_deref(), n.dhcpstart.as_deref())
                            .map_err(|e| err(format!("network: {e}")))?;
                        NetworkMode::Dnsmasq(settings)
                    }
                    other => {
                        return Err(err(format!(
                            "network.mode {other:?}: unknown (supported: \"slirp\", \"inprocess\", \"dnsmasq\")"
                        )))
                    }
                };
                if networks
                    .iter()
                    .any(|x: &NetworkMode| x.name() == mode.name())
                {
                    return Err(err(format!("network.mode: {m:?} listed twice")));
                }
                networks.push(mode);
            }
        }
        let mut networks = networks.into_iter();
        let network = networks.next();
        let other_networks: Vec<NetworkMode> = networks.collect();
        let mut tftp = BTreeMap::new();
        for (p, s) in raw.tftp {
            if !valid_tftp_path(&p) {
                return Err(err(format!(
                    "tftp.{p:?}: paths are relative, without `.`/`..` or empty components"
                )));
            }
            let src = source(&format!("tftp.{p:?}"), s)?;
            if matches!(src, Source::Artifact(Artifact::RootfsDisk)) {
                return Err(err(format!(
                    "tftp.{p:?}: @rootfs-disk is a disk image; list it under [[disk]]"
                )));
            }
            tftp.insert(p, src);
        }
        let disks = raw
            .disk
            .into_iter()
            .enumerate()
            .map(|(i, d)| source(&format!("disk {}", i + 1), d))
            .collect::<Result<Vec<_>, _>>()?;
        let direct = match raw.direct {
            None => None,
            Some(d) => Some(Direct {
                kernel: source("direct.kernel", d.kernel)?,
                initrd: d
                    .initrd
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| source(&format!("direct.initrd {}", i + 1), s))
                    .collect::<Result<_, _>>()?,
                append: d.append,
            }),
        };
        if direct.is_none() && network.is_none() {
            return Err(err(
                "nothing to boot: give a [network] section (netboot) or a [direct] section".into(),
            ));
        }
        if raw.step.is_empty() {
            return Err(err("no [[step]]: a scenario must expect something".into()));
        }
        let mut steps = Vec::new();
        for (i, s) in raw.step.into_iter().enumerate() {
            let regex = Regex::new(&format!("(?m){}", s.expect))
                .map_err(|e| err(format!("step {} expect: {e}", i + 1)))?;
            let timeout = s.timeout.unwrap_or(step_default);
            if timeout <= 0.0 {
                return Err(err(format!("step {} timeout: must be positive", i + 1)));
            }
            steps.push(Step {
                pattern: s.expect,
                regex,
                timeout,
                send: s.send,
            });
        }
        let forbid = raw
            .forbid
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                Regex::new(&f)
                    .map(|r| (f.clone(), r))
                    .map_err(|e| err(format!("forbid {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target_kernel = raw
            .kernels
            .target
            .unwrap_or_else(|| DEFAULT_TARGET_KERNEL.into());
        let tb_size_mb = tb_size_mb(raw.machine.tb_size);
        let http = raw.http.map(|h| h.resolve()).transpose().map_err(&err)?;
        check_http_placeholders(http.is_some(), &tftp, network.iter().chain(&other_networks))
            .map_err(err)?;
        Ok(Scenario {
            name,
            path: path.to_path_buf(),
            description: raw.description,
            slow: raw.slow,
            pxelinux_kernel: raw
                .kernels
                .pxelinux
                .unwrap_or_else(|| DEFAULT_PXELINUX_KERNEL.into()),
            target_kernel,
            pxelinux_cmdline: raw
                .kernels
                .pxelinux_cmdline
                .unwrap_or_else(|| s390_pxelinux::build::DEFAULT_CMDLINE.into()),
            mac: raw.machine.mac,
            uuid: raw.machine.uuid,
            memory_mb: raw.machine.memory.unwrap_or(512),
            tb_size_mb,
            network,
            other_networks,
            direct,
            tftp,
            disks,
            steps,
            forbid,
            total_timeout,
            http,
        })
    }
}

/// `${http}` needs an `[http]` section, and `[http]` a network; errors
/// name the key.
fn check_http_placeholders<'a>(
    has_http: bool,
    tftp: &BTreeMap<String, Source>,
    networks: impl Iterator<Item = &'a NetworkMode>,
) -> Result<(), String> {
    let p = crate::http::PLACEHOLDER;
    let networks: Vec<&NetworkMode> = networks.collect();
    if has_http {
        if networks.is_empty() {
            return Err("http: needs a [network]".into());
        }
        return Ok(());
    }
    for (path, src) in tftp {
        if matches!(src, Source::Text(t) if t.contains(p)) {
            return Err(format!(
                "tftp.{path:?}: uses {p}, which needs an [http] section"
            ));
        }
    }
    for n in networks {
        let (mode, options) = match n {
            NetworkMode::Dnsmasq(s) => ("dnsmasq", [&s.opt209, &s.opt210]),
            NetworkMode::InProcess(c) => ("inprocess", [&c.opt209, &c.opt210]),
            NetworkMode::Slirp { .. } => continue,
        };
        for (k, v) in ["opt209", "opt210"].into_iter().zip(options) {
            if v.as_deref().is_some_and(|v| v.contains(p)) {
                return Err(format!(
                    "network.{mode}.{k}: uses {p}, which needs an [http] section"
                ));
            }
        }
    }
    Ok(())
}

impl Scenario {
    /// One scenario per network mode: this one (first mode, its own name)
    /// followed by one per other mode, named `<name>.<mode>`.
    pub fn variants(&self) -> Vec<Scenario> {
        let mut v = vec![Scenario {
            other_networks: Vec::new(),
            ..self.clone()
        }];
        for n in &self.other_networks {
            v.push(Scenario {
                name: format!("{}.{}", self.name, n.name()),
                network: Some(n.clone()),
                other_networks: Vec::new(),
                ..self.clone()
            });
        }
        v
    }

    /// The same scenario with another target kernel (the tb-size, which
    /// does not depend on the kernel, is kept).
    pub fn with_target_kernel(&self, id: &str) -> Scenario {
        let mut s = self.clone();
        s.target_kernel = id.to_string();
        s
    }

    /// The same scenario with another loader kernel (`kernels.pxelinux`).
    pub fn with_loader_kernel(&self, id: &str) -> Scenario {
        let mut s = self.clone();
        s.pxelinux_kernel = id.to_string();
        s
    }

    /// Applies `NETBOOT_TARGET_KERNEL` and `NETBOOT_LOADER_KERNEL` (kernel
    /// ids such as `6.1` or `minimal`), which override every scenario's
    /// target and loader kernel (the nightly matrix uses them).
    pub fn with_env_overrides(&self) -> Scenario {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut s = self.clone();
        if let Some(k) = env(TARGET_KERNEL_ENV) {
            s = s.with_target_kernel(&k);
        }
        if let Some(k) = env(LOADER_KERNEL_ENV) {
            s = s.with_loader_kernel(&k);
        }
        s
    }

    /// The same scenario with the run's HTTP server URL `base` in place of
    /// every `${http}` ([`crate::http::PLACEHOLDER`]): in inline tree text
    /// and in the dnsmasq and inprocess modes' options 209/210.
    pub fn with_http_url(&self, base: &str) -> Scenario {
        let p = crate::http::PLACEHOLDER;
        let mut s = self.clone();
        for src in s.tftp.values_mut() {
            if let Source::Text(t) = src {
                *t = t.replace(p, base);
            }
        }
        let options = match &mut s.network {
            Some(NetworkMode::Dnsmasq(d)) => [&mut d.opt209, &mut d.opt210],
            Some(NetworkMode::InProcess(c)) => [&mut c.opt209, &mut c.opt210],
            _ => return s,
        };
        for v in options.into_iter().flatten() {
            *v = v.replace(p, base);
        }
        s
    }

    /// The settings `@artifacts` are built with.
    pub fn payload_params(&self) -> crate::payload::Params<'_> {
        crate::payload::Params {
            pxelinux_kernel: &self.pxelinux_kernel,
            pxelinux_cmdline: &self.pxelinux_cmdline,
            target_kernel: &self.target_kernel,
        }
    }
}

/// The kernel ids a scenario may name: the minimal kernel (built from
/// source) and every kernel the fixtures lock pins.
pub fn known_kernel_ids() -> Vec<String> {
    let mut ids = vec![s390_pxelinux::minimal_kernel::KERNEL_ID.to_string()];
    if let Ok(lock) = s390_pxelinux::fixtures::lock::Lock::embedded() {
        ids.extend(
            lock.packages
                .iter()
                .filter_map(|p| p.role.kernel_id().map(str::to_string)),
        );
    }
    ids
}

/// The directories scenarios are read from: the repository's `scenarios/`
/// plus every directory in `BOOT_SCENARIOS` (colon-separated).
pub fn scenario_dirs() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![manifest.parent().unwrap_or(manifest).join("scenarios")];
    if let Some(extra) = std::env::var_os("BOOT_SCENARIOS") {
        dirs.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// Every `*.toml` file in `dirs` (not recursive), sorted by name within each
/// directory.
pub fn discover(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, HarnessError> {
    let mut all = Vec::new();
    for d in dirs {
        let entries =
            std::fs::read_dir(d).map_err(|e| HarnessError::io("listing scenarios in", d, e))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        all.extend(files);
    }
    // Each name is also the name of the scenario's artifact directory and
    // lock: two files with one name would overwrite each other's results.
    let mut seen: std::collections::BTreeMap<String, &PathBuf> = Default::default();
    for f in &all {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(first) = seen.insert(stem.clone(), f) {
            return Err(HarnessError::Scenario {
                path: f.clone(),
                at: None,
                message: format!(
                    "scenario name {stem:?} is already used by {} (names must be unique \
                     across scenarios/ and BOOT_SCENARIOS: each names an artifact directory)",
                    first.display()
                ),
            });
        }
    }
    Ok(all)
}

#[cfg(test)]
mod discover_tests {
    use super::*;

    #[test]
    fn the_same_name_in_two_directories_is_refused_naming_both_files() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        for d in [&a, &b] {
            std::fs::write(d.path().join("same.toml"), "").expect("write");
        }
        std::fs::write(a.path().join("other.toml"), "").expect("write");
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        let e = discover(&dirs).expect_err("duplicate").to_string();
        assert!(
            e.contains(&b.path().join("same.toml").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&a.path().join("same.toml").display().to_string()),
            "{e}"
        );
        assert!(e.contains("\"same\" is already used"), "{e}");
        assert_eq!(discover(&dirs[..1]).expect("one dir").len(), 2);
    }
}

#[cfg(test)]
mod http_tests {
    use super::*;

    const HEAD: &str = "description = \"d\"\n[[step]]\nexpect = 'x'\n";

    fn parse(body: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{HEAD}{body}"), Path::new("s/http.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_http_placeholder_needs_an_http_section_and_is_replaced_per_run() {
        let tree = "[tftp]\n\"pxelinux.cfg/default\" = \"KERNEL ${http}/k\"\n";
        let e = parse(&format!("[network]\nmode = \"slirp\"\n{tree}")).unwrap_err();
        assert!(
            e.contains(
                "tftp.\"pxelinux.cfg/default\": uses ${http}, which needs an [http] section"
            ),
            "{e}"
        );
        let e = parse(
            "[network]\nmode = \"dnsmasq\"\n[network.dnsmasq]\nopt210 = \"${http}/s390x/\"\n",
        )
        .unwrap_err();
        assert!(e.contains("network.dnsmasq.opt210: uses ${http}"), "{e}");
        let e = parse("[http]\n[direct]\nkernel = \"@target-kernel\"\n").unwrap_err();
        assert!(e.contains("http: needs a [network]"), "{e}");
        let e = parse("[network]\nmode = \"slirp\"\n[http]\n[[http.fault]]\nkind = \"cut\"\n")
            .unwrap_err();
        assert!(e.contains("http.fault 1 after_bytes: required"), "{e}");

        let s = parse(&format!(
            "[network]\nmode = [\"dnsmasq\", \"inprocess\"]\n\
             [network.dnsmasq]\nopt210 = \"${{http}}/s390x/\"\n\
             [network.inprocess]\nopt209 = \"${{http}}/c.cfg\"\n[http]\n{tree}"
        ))
        .expect("valid");
        let v = s.variants();
        let d = v[0].with_http_url("http://10.0.2.2");
        assert_eq!(
            d.tftp.get("pxelinux.cfg/default"),
            Some(&Source::Text("KERNEL http://10.0.2.2/k".into()))
        );
        match &d.network {
            Some(NetworkMode::Dnsmasq(s)) => {
                assert_eq!(s.opt210.as_deref(), Some("http://10.0.2.2/s390x/"))
            }
            other => panic!("{other:?}"),
        }
        match &v[1].with_http_url("http://10.0.2.2").network {
            Some(NetworkMode::InProcess(c)) => {
                assert_eq!(c.opt209.as_deref(), Some("http://10.0.2.2/c.cfg"))
            }
            other => panic!("{other:?}"),
        }
    }
}
