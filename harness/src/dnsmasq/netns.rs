//! Network namespaces and host tools of the `dnsmasq` network mode: the
//! prerequisites (root, `ip`, `dnsmasq`, `/dev/net/tun`), namespaces named
//! `s390pxe-<pid>-<n>` (created, deleted on drop, and swept when their
//! harness process is gone) and entering one before exec. It must not touch
//! namespaces or processes that are not this mode's, nor know about dnsmasq's
//! configuration.

use crate::HarnessError;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace this mode creates is named `s390pxe-<pid>-<n>`.
pub const NETNS_PREFIX: &str = "s390pxe-";
/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The host tools this mode runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `dnsmasq`.
    pub dnsmasq: PathBuf,
    /// `ip` (iproute2).
    pub ip: PathBuf,
}

fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// True when a missing prerequisite must fail this mode's tests instead of
/// skipping them: under `CI=true` as root, where CI has to run it.
pub fn prerequisites_required() -> bool {
    euid() == 0 && std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Checks what this mode needs: root, `dnsmasq`, `ip` and `/dev/net/tun`.
/// The error says what is missing and how to get it.
pub fn prerequisites() -> Result<Tools, String> {
    let uid = euid();
    if uid != 0 {
        return Err(format!(
            "dnsmasq mode needs root (network namespace, tap device): running as uid {uid}"
        ));
    }
    let dnsmasq = find_tool("dnsmasq").ok_or_else(|| {
        "dnsmasq mode needs the dnsmasq binary: not found on PATH or in /usr/sbin (install dnsmasq-base, ci/install-deps)"
            .to_string()
    })?;
    let ip = find_tool("ip").ok_or_else(|| {
        "dnsmasq mode needs `ip`: not found on PATH or in /usr/sbin (install iproute2, ci/install-deps)"
            .to_string()
    })?;
    if !Path::new("/dev/net/tun").exists() {
        return Err("dnsmasq mode needs /dev/net/tun for the tap device: it does not exist".into());
    }
    Ok(Tools { dnsmasq, ip })
}

/// Runs `ip ARGS`; the error carries its stderr.
pub(super) fn ip(tools: &Tools, args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new(&tools.ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::Tool {
            tool: "ip",
            message: format!("running {} {}: {e}", tools.ip.display(), args.join(" ")),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Tool {
            tool: "ip",
            message: format!(
                "ip {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// The path of namespace `name` (what QEMU and dnsmasq `setns` into).
pub fn namespace_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The names of this mode's namespaces that exist now (`s390pxe-*`).
pub fn our_namespaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .collect();
    v.sort();
    v
}

/// The pid a namespace name carries (`s390pxe-<pid>-<n>`).
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(NETNS_PREFIX)?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

/// Pids of the processes whose network namespace is `ns` (same nsfs inode).
fn processes_in(ns: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(ns) else {
        return Vec::new();
    };
    let want = format!("net:[{}]", meta.ino());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == want)
        })
        .collect()
}

/// Removes the namespaces of harness processes that no longer exist,
/// killing whatever still runs in them (only processes of a dead harness
/// can be there).
pub fn remove_stale_namespaces(tools: &Tools) {
    for name in our_namespaces() {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = namespace_path(&name);
        for p in processes_in(&path) {
            tracing::warn!(namespace = %name, pid = p, "killing a process left in a stale namespace");
            // SAFETY: kill(2) on a process inside our own stale namespace.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        match ip(tools, &["netns", "del", &name]) {
            Ok(()) => tracing::info!(namespace = %name, "removed a stale namespace of pid {pid}"),
            Err(e) => tracing::warn!(namespace = %name, "removing a stale namespace: {e}"),
        }
    }
}

/// A namespace this process created; deleted on drop.
pub(super) struct Namespace {
    /// The namespace's name.
    pub(super) name: String,
    tools: Tools,
}

impl Namespace {
    /// Creates a uniquely named namespace (`ip netns add`).
    pub(super) fn create(tools: &Tools) -> Result<Namespace, HarnessError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        ip(tools, &["netns", "add", &name])?;
        Ok(Namespace {
            name,
            tools: tools.clone(),
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip(&self.tools, &["netns", "del", &self.name]) {
            tracing::warn!(namespace = %self.name, "deleting the namespace: {e}");
        }
    }
}

/// Sets up `cmd` to enter the network namespace open as `ns` and to die
/// with the harness thread that starts it ([`crate::network::child_setup`]).
pub(super) fn enter_namespace(cmd: &mut Command, ns: std::fs::File) {
    // SAFETY: child_setup is async-signal-safe and allocates nothing; `ns`
    // moves into the closure and stays open until exec.
    unsafe {
        cmd.pre_exec(move || crate::network::child_setup(Some(&ns)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_from_name() {
        assert_eq!(owner_pid("s390pxe-1234-7"), Some(1234));
        assert_eq!(owner_pid("s390pxe-x-7"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }
}
