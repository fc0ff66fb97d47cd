//! From a scenario as written ([`super::raw`]) to a [`Scenario`]: defaults
//! filled in, `@name` references and sources resolved, the network modes
//! resolved through their own settings types, regexes compiled, and every
//! check. Each error is an [`Invalid`] carrying the key it is about as data
//! ([`Key`]); [`super::location`] turns that into a file position. This
//! module must not read files or build anything.

use super::location::{Invalid, Key, Locator};
use super::raw::{RawScenario, RawSource};
use super::{
    known_kernel_ids, Direct, Payload, Scenario, Source, Step, DEFAULT_PXELINUX_KERNEL,
    DEFAULT_STEP_TIMEOUT, DEFAULT_TARGET_KERNEL, DEFAULT_TB_SIZE_MB, DEFAULT_TOTAL_TIMEOUT,
};
use crate::network::Network;
use regex::bytes::Regex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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

/// A source as written at `key`; `file` sources are relative to `base`.
fn source(base: &Path, key: Key, raw: RawSource) -> Result<Source, Invalid> {
    match raw {
        RawSource::Plain(s) => match Payload::parse(&s) {
            Some(Ok(a)) => Ok(Source::Payload(a)),
            Some(Err(e)) => Err(Invalid::at(key.clone(), format!("{key}: {e}"))),
            None => Ok(Source::Text(s)),
        },
        RawSource::Table(t) => match (t.text, t.file, t.payload) {
            (Some(s), None, None) => Ok(Source::Text(s)),
            (None, Some(f), None) => Ok(Source::File(base.join(f))),
            (None, None, Some(a)) => {
                let a = if a.starts_with('@') {
                    a
                } else {
                    format!("@{a}")
                };
                match Payload::parse(&a) {
                    Some(Ok(a)) => Ok(Source::Payload(a)),
                    Some(Err(e)) => Err(Invalid::at(key.clone(), format!("{key}: {e}"))),
                    None => Err(Invalid::at(key.clone(), format!("{key}: bad payload"))),
                }
            }
            _ => Err(Invalid::at(
                key.clone(),
                format!("{key}: a table source needs exactly one of `text`, `file`, `payload`"),
            )),
        },
    }
}

/// The scenario `raw` (read from `path`, whose stem names it) describes;
/// `at` finds each step's line.
pub(super) fn scenario(
    raw: RawScenario,
    path: &Path,
    at: &Locator<'_>,
) -> Result<Scenario, Invalid> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| Invalid::file("file name is not valid UTF-8"))?
        .to_string();
    let base = path.parent().unwrap_or(Path::new("."));

    let step_default = raw.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
    if step_default <= 0.0 {
        return Err(Invalid::at(
            Key::new("timeout"),
            "timeout: must be positive",
        ));
    }
    let total_timeout = raw.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT);
    if total_timeout <= 0.0 {
        return Err(Invalid::at(
            Key::new("total_timeout"),
            "total_timeout: must be positive",
        ));
    }
    for (field, id) in [
        ("pxelinux", &raw.kernels.pxelinux),
        ("target", &raw.kernels.target),
    ] {
        if let Some(id) = id {
            let known = known_kernel_ids();
            if !known.contains(id) {
                let key = Key::new("kernels").name(field);
                return Err(Invalid::at(
                    key.clone(),
                    format!(
                        "{key} {id:?}: unknown kernel id (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(m) = &raw.machine.mac {
        if !valid_mac(m) {
            return Err(Invalid::at(
                Key::new("machine").name("mac"),
                format!("machine.mac {m:?}: expected six colon-separated hex bytes"),
            ));
        }
    }
    if let Some(u) = &raw.machine.uuid {
        if !valid_uuid(u) {
            return Err(Invalid::at(
                Key::new("machine").name("uuid"),
                format!("machine.uuid {u:?}: expected 8-4-4-4-12 hex digits"),
            ));
        }
    }
    let networks = match &raw.network {
        None => Vec::new(),
        Some(n) => n.networks().map_err(|e| {
            let key = Key::new("network");
            Invalid::at(e.key.map_or(key.clone(), |k| key.name(k)), e.message)
        })?,
    };
    let mut networks = networks.into_iter();
    let network = networks.next();
    let other_networks: Vec<Arc<dyn Network>> = networks.collect();
    let mut tftp = BTreeMap::new();
    for (p, s) in raw.tftp {
        let key = Key::new("tftp").name(&p);
        if !valid_tftp_path(&p) {
            return Err(Invalid::at(
                key,
                format!("tftp.{p:?}: paths are relative, without `.`/`..` or empty components"),
            ));
        }
        let src = source(base, key.clone(), s)?;
        if matches!(src, Source::Payload(Payload::RootfsDisk)) {
            return Err(Invalid::at(
                key,
                format!("tftp.{p:?}: @rootfs-disk is a disk image; list it under [[disk]]"),
            ));
        }
        tftp.insert(p, src);
    }
    let disks = raw
        .disk
        .into_iter()
        .enumerate()
        .map(|(i, d)| source(base, Key::new("disk").index(i), d))
        .collect::<Result<Vec<_>, _>>()?;
    let direct = match raw.direct {
        None => None,
        Some(d) => Some(Direct {
            kernel: source(base, Key::new("direct").name("kernel"), d.kernel)?,
            initrd: d
                .initrd
                .into_iter()
                .enumerate()
                .map(|(i, s)| source(base, Key::new("direct").name("initrd").index(i), s))
                .collect::<Result<_, _>>()?,
            append: d.append,
        }),
    };
    if direct.is_none() && network.is_none() {
        return Err(Invalid::file(
            "nothing to boot: give a [network] section (netboot) or a [direct] section",
        ));
    }
    if raw.step.is_empty() {
        return Err(Invalid::file(
            "no [[step]]: a scenario must expect something",
        ));
    }
    let mut steps = Vec::new();
    for (i, s) in raw.step.into_iter().enumerate() {
        let key = Key::new("step").index(i);
        let regex = Regex::new(&format!("(?m){}", s.expect)).map_err(|e| {
            Invalid::at(
                key.clone().name("expect"),
                format!("step {} expect: {e}", i + 1),
            )
        })?;
        let timeout = s.timeout.unwrap_or(step_default);
        if timeout <= 0.0 {
            return Err(Invalid::at(
                key.name("timeout"),
                format!("step {} timeout: must be positive", i + 1),
            ));
        }
        steps.push(Step {
            pattern: s.expect,
            regex,
            timeout,
            send: s.send,
            line: at.line(&key),
        });
    }
    let forbid = raw
        .forbid
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            Regex::new(&f).map(|r| (f.clone(), r)).map_err(|e| {
                Invalid::at(
                    Key::new("forbid").index(i),
                    format!("forbid {}: {e}", i + 1),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target_kernel = raw
        .kernels
        .target
        .unwrap_or_else(|| DEFAULT_TARGET_KERNEL.into());
    let tb_size_mb = tb_size_mb(raw.machine.tb_size);
    let http = raw.http.map(|h| h.resolve()).transpose().map_err(|e| {
        let key = Key::new("http").name("fault").index(e.fault);
        let key = match e.key {
            Some(k) => key.name(k),
            None => key,
        };
        Invalid::at(key, e.to_string())
    })?;
    check_http_placeholders(http.is_some(), &tftp, network.iter().chain(&other_networks))?;
    let ftp = raw.ftp.map(|f| f.resolve());
    check_ftp(ftp.is_some(), &tftp, network.iter().chain(&other_networks))?;
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
        ftp,
    })
}

/// `${ftp}` needs an `[ftp]` section and is replaced in tree text only
/// (in DHCP options it is an error here, or earlier in the dnsmasq mode's
/// own check of opt209/opt210); `[ftp]` needs a network that can carry FTP in every
/// mode the scenario runs in ([`crate::ftp::unsupported`]).
fn check_ftp<'a>(
    has_ftp: bool,
    tftp: &BTreeMap<String, Source>,
    networks: impl Iterator<Item = &'a Arc<dyn Network>>,
) -> Result<(), Invalid> {
    let p = crate::ftp::PLACEHOLDER;
    let networks: Vec<&Arc<dyn Network>> = networks.collect();
    for n in &networks {
        for (k, v) in n.http_options() {
            if v.contains(p) {
                let mode = n.name();
                return Err(Invalid::at(
                    Key::new("network").name(mode).name(k),
                    format!(
                        "network.{mode}.{k}: uses {p}, which is replaced in tree text only, \
                         not in DHCP options"
                    ),
                ));
            }
        }
    }
    if has_ftp {
        if networks.is_empty() {
            return Err(Invalid::at(Key::new("ftp"), "ftp: needs a [network]"));
        }
        for n in networks {
            if let Some(why) = crate::ftp::unsupported(n.as_ref()) {
                return Err(Invalid::at(Key::new("ftp"), why));
            }
        }
        return Ok(());
    }
    for (path, src) in tftp {
        if matches!(src, Source::Text(t) if t.contains(p)) {
            return Err(Invalid::at(
                Key::new("tftp").name(path),
                format!("tftp.{path:?}: uses {p}, which needs an [ftp] section"),
            ));
        }
    }
    Ok(())
}

/// `${http}` needs an `[http]` section, and `[http]` a network.
fn check_http_placeholders<'a>(
    has_http: bool,
    tftp: &BTreeMap<String, Source>,
    networks: impl Iterator<Item = &'a Arc<dyn Network>>,
) -> Result<(), Invalid> {
    let p = crate::network::HTTP_PLACEHOLDER;
    let networks: Vec<&Arc<dyn Network>> = networks.collect();
    if has_http {
        if networks.is_empty() {
            return Err(Invalid::at(Key::new("http"), "http: needs a [network]"));
        }
        return Ok(());
    }
    for (path, src) in tftp {
        if matches!(src, Source::Text(t) if t.contains(p)) {
            return Err(Invalid::at(
                Key::new("tftp").name(path),
                format!("tftp.{path:?}: uses {p}, which needs an [http] section"),
            ));
        }
    }
    for n in networks {
        for (k, v) in n.http_options() {
            if v.contains(p) {
                let mode = n.name();
                let key = k.split('.').fold(Key::new("network").name(mode), Key::name);
                return Err(Invalid::at(
                    key,
                    format!("network.{mode}.{k}: uses {p}, which needs an [http] section"),
                ));
            }
        }
    }
    Ok(())
}
