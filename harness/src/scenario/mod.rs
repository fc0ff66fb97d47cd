//! Scenario files: one TOML file per scenario (format documented in
//! `scenarios/README.md`). This module owns the validated [`Scenario`] and
//! what it is made of, payload references (`@name`), per-run variants and
//! discovery of scenario files in directories. The file as written is
//! `raw`'s (serde, unknown keys rejected), the checks are `validate`'s,
//! and where a key or step sits in the file is `location`'s: errors give
//! the file, line and column of the key they name and show that line, and
//! each step keeps its line. It must not build anything or start QEMU.

mod location;
mod raw;
mod validate;

pub use crate::payload::Payload;
pub use location::{Invalid, Key};

use crate::network::Network;
use crate::HarnessError;
use regex::bytes::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Where the content of a TFTP file (or disk, or direct-boot file) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Inline text.
    Text(String),
    /// A host file, relative to the scenario file's directory.
    File(PathBuf),
    /// A built payload (`@name`).
    Payload(Payload),
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
    /// The 1-based line of the step in its scenario file, when known.
    pub line: Option<usize>,
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
    pub network: Option<Arc<dyn Network>>,
    /// More network modes the same scenario runs in (`mode = [..]`); see
    /// [`Scenario::variants`].
    pub other_networks: Vec<Arc<dyn Network>>,
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
    /// `[ftp]`: an FTP server serves the tree during the run
    /// ([`crate::ftp`]); its URL replaces `${ftp}`.
    pub ftp: Option<crate::ftp::FtpSettings>,
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
        let at = location::Locator::new(path, text);
        let raw: raw::RawScenario =
            toml::from_str(text).map_err(|e| at.serde(&e, raw::UNTAGGED_SOURCE_MESSAGE))?;
        validate::scenario(raw, path, &at).map_err(|e| at.invalid(e))
    }
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
    /// every `${http}` ([`crate::network::HTTP_PLACEHOLDER`]): in inline tree text
    /// and in the network's served options 209/210
    /// ([`Network::with_http_url`]).
    pub fn with_http_url(&self, base: &str) -> Scenario {
        let p = crate::network::HTTP_PLACEHOLDER;
        let mut s = self.clone();
        for src in s.tftp.values_mut() {
            if let Source::Text(t) = src {
                *t = t.replace(p, base);
            }
        }
        s.network = s.network.map(|n| n.with_http_url(base));
        s
    }

    /// The same scenario with the run's FTP server URL `base` in place of
    /// every `${ftp}` ([`crate::ftp::PLACEHOLDER`]) in inline tree text.
    pub fn with_ftp_url(&self, base: &str) -> Scenario {
        let p = crate::ftp::PLACEHOLDER;
        let mut s = self.clone();
        for src in s.tftp.values_mut() {
            if let Source::Text(t) = src {
                *t = t.replace(p, base);
            }
        }
        s
    }

    /// `FILE:LINE: ` of step `i` (0-based), the prefix of a message about
    /// it; empty when the line is not known.
    pub fn step_location(&self, i: usize) -> String {
        match self.steps.get(i).and_then(|s| s.line) {
            Some(line) => format!("{}:{line}: ", self.path.display()),
            None => String::new(),
        }
    }

    /// The settings `@payloads` are built with.
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
mod ftp_tests {
    use super::*;

    const HEAD: &str = "description = \"d\"\n[[step]]\nexpect = 'x'\n";

    fn parse(body: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{HEAD}{body}"), Path::new("s/ftp.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_ftp_placeholder_needs_an_ftp_section_a_network_that_carries_it_and_tree_text() {
        let tree = "[tftp]\n\"pxelinux.cfg/default\" = \"KERNEL ${ftp}/k\"\n";
        let e = parse(&format!("[network]\nmode = \"slirp\"\n{tree}")).unwrap_err();
        assert!(
            e.contains("tftp.\"pxelinux.cfg/default\": uses ${ftp}, which needs an [ftp] section"),
            "{e}"
        );
        let e = parse(
            "[network]\nmode = \"dnsmasq\"\n[network.dnsmasq]\nopt210 = \"${ftp}/s390x/\"\n[ftp]\n",
        )
        .unwrap_err();
        assert!(e.contains("opt210 \"${ftp}/s390x/\""), "{e}");
        let e = parse(
            "[network]\nmode = \"inprocess\"\n[network.inprocess]\nopt210 = \"${ftp}/s390x/\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains(
                "network.inprocess.opt210: uses ${ftp}, which is replaced in tree text only"
            ),
            "{e}"
        );
        let e = parse("[ftp]\n[direct]\nkernel = \"@target-kernel\"\n").unwrap_err();
        assert!(e.contains("ftp: needs a [network]"), "{e}");
        let e = parse("[network]\nmode = \"inprocess\"\n[ftp]\n").unwrap_err();
        assert!(
            e.contains("ftp: the inprocess mode has no FTP server"),
            "{e}"
        );
        let e = parse("[network]\nmode = \"slirp\"\n[ftp]\nport = 21\n").unwrap_err();
        assert!(e.contains("port"), "{e}");

        let s = parse(&format!(
            "[network]\nmode = [\"slirp\", \"dnsmasq\"]\n[ftp]\n{tree}"
        ))
        .expect("valid");
        let d = s.variants()[1].with_ftp_url("ftp://10.0.2.2");
        assert_eq!(
            d.tftp.get("pxelinux.cfg/default"),
            Some(&Source::Text("KERNEL ftp://10.0.2.2/k".into()))
        );
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
        let options = |s: &Scenario| {
            let n = s.network.as_ref().expect("a network");
            let o: Vec<(&str, String)> = n
                .http_options()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            (n.name(), o)
        };
        assert_eq!(
            options(&d),
            ("dnsmasq", vec![("opt210", "http://10.0.2.2/s390x/".into())])
        );
        assert_eq!(
            options(&v[1].with_http_url("http://10.0.2.2")),
            (
                "inprocess",
                vec![("opt209", "http://10.0.2.2/c.cfg".into())]
            )
        );
    }
}
