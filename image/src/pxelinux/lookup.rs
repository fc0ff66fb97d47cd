//! Where the guest looks: the boot server and path prefix derived from the
//! DHCP lease, the resolution of a PXELINUX path (`host::path`, `::path`,
//! `/path`, `http://`, `ftp://`, relative) into a [`Location`], and the
//! ordered list of configuration file candidates (option 209, or UUID,
//! `01-<mac>`, hexadecimal IP 8..1 digits, `default`).
//!
//! This module mirrors `image/guest/common.sh` (`pxe_resolve`) and
//! `image/guest/boot` (`lookup`) rule for rule. It owns only pure string
//! computations: it must not touch the file system or the network.

use std::fmt;
use std::net::Ipv4Addr;

/// Errors from parsing the client identity given on the command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The MAC address is not six hexadecimal octets separated by `:` or `-`.
    #[error("invalid MAC address {0:?} (expected aa:bb:cc:dd:ee:ff)")]
    Mac(String),
    /// The UUID is not 32 hexadecimal digits in 8-4-4-4-12 form.
    #[error("invalid UUID {0:?} (expected 8-4-4-4-12 hexadecimal digits)")]
    Uuid(String),
}

/// A resolved transfer target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A TFTP path (never starting with `/`); `server` is `None` for the
    /// boot server from the lease, `Some(host)` for a `host::path` spec.
    Tftp {
        /// Another server named in the path, or `None` for the boot server.
        server: Option<String>,
        /// Path sent to the server, leading slashes removed.
        path: String,
    },
    /// An `http://` or `ftp://` URL, fetched with busybox wget.
    Url(String),
}

impl Location {
    /// Whether the guest refuses to fetch this location: an empty TFTP path or
    /// one with a `..` component (both sides treat it as "not found").
    pub fn refused(&self) -> bool {
        match self {
            Location::Tftp { path, .. } => path.is_empty() || path.split('/').any(|c| c == ".."),
            Location::Url(_) => false,
        }
    }
}

impl fmt::Display for Location {
    /// The form printed on the console: `path` for the boot server,
    /// `host::path` for another server, the URL itself otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Tftp { server: None, path } => f.write_str(path),
            Location::Tftp {
                server: Some(h),
                path,
            } => write!(f, "{h}::{path}"),
            Location::Url(u) => f.write_str(u),
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("ftp://")
}

/// Splits `host::path` (host may be empty) into a TFTP location.
fn split_host(s: &str) -> Option<Location> {
    let (host, path) = s.split_once("::")?;
    Some(Location::Tftp {
        server: (!host.is_empty()).then(|| host.to_string()),
        path: path.trim_start_matches('/').to_string(),
    })
}

/// Resolves a path from a config file, option 209 or a candidate name
/// against `prefix` (which ends in `/` or is empty):
/// 1. `http://…` / `ftp://…` → URL;
/// 2. contains `::` → `host::path` on that host (empty host: boot server),
///    prefix bypassed;
/// 3. starts with `/` → boot server, prefix bypassed;
/// 4. otherwise `prefix + path`, itself checked for a URL or `host::`.
///
/// Leading slashes are removed from every TFTP path.
pub fn resolve_path(spec: &str, prefix: &str) -> Location {
    if is_url(spec) {
        return Location::Url(spec.to_string());
    }
    if let Some(loc) = split_host(spec) {
        return loc;
    }
    let joined = if spec.starts_with('/') {
        spec.to_string()
    } else {
        format!("{prefix}{spec}")
    };
    if is_url(&joined) {
        return Location::Url(joined);
    }
    if let Some(loc) = split_host(&joined) {
        return loc;
    }
    Location::Tftp {
        server: None,
        path: joined.trim_start_matches('/').to_string(),
    }
}

/// The path prefix: option 210 (a `/` appended when missing) if non-empty,
/// else the boot file name up to and including its last `/` (empty when the
/// boot file has no `/`).
pub fn path_prefix(opt210: Option<&str>, bootfile: Option<&str>) -> String {
    match opt210.filter(|p| !p.is_empty()) {
        Some(p) if p.ends_with('/') => p.to_string(),
        Some(p) => format!("{p}/"),
        None => match bootfile.and_then(|b| b.rfind('/').map(|i| &b[..=i])) {
            Some(dir) => dir.to_string(),
            None => String::new(),
        },
    }
}

/// Normalises a MAC address to lower case, dash separated (`aa-bb-cc-dd-ee-ff`).
pub fn mac_dashed(mac: &str) -> Result<String, IdentityError> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(IdentityError::Mac(mac.to_string()));
    }
    Ok(parts.join("-").to_ascii_lowercase())
}

/// Normalises a UUID to lower case 8-4-4-4-12 form.
pub fn uuid_lower(uuid: &str) -> Result<String, IdentityError> {
    let u = uuid.trim().to_ascii_lowercase();
    let lens: Vec<usize> = u.split('-').map(str::len).collect();
    if lens != [8, 4, 4, 4, 12] || !u.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()) {
        return Err(IdentityError::Uuid(uuid.to_string()));
    }
    Ok(u)
}

/// The client IP as 8 upper-case hexadecimal digits (`10.0.2.15` → `0A00020F`).
pub fn ip_hex(ip: Ipv4Addr) -> String {
    ip.octets().iter().map(|o| format!("{o:02X}")).collect()
}

/// The configuration file names tried, in order, before resolution against
/// the prefix: option 209 alone when given; else `pxelinux.cfg/<uuid>` (when
/// known), `pxelinux.cfg/01-<mac>`, the hex IP shortened from 8 to 1 digits,
/// `pxelinux.cfg/default`.
pub fn candidates(
    opt209: Option<&str>,
    uuid: Option<&str>,
    mac_dashed: &str,
    ip: Ipv4Addr,
) -> Vec<String> {
    if let Some(c) = opt209.filter(|c| !c.is_empty()) {
        return vec![c.to_string()];
    }
    let mut out = Vec::new();
    if let Some(u) = uuid {
        out.push(format!("pxelinux.cfg/{u}"));
    }
    out.push(format!("pxelinux.cfg/01-{mac_dashed}"));
    let hex = ip_hex(ip);
    for n in (1..=8).rev() {
        out.push(format!("pxelinux.cfg/{}", &hex[..n]));
    }
    out.push("pxelinux.cfg/default".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tftp(server: Option<&str>, path: &str) -> Location {
        Location::Tftp {
            server: server.map(str::to_string),
            path: path.to_string(),
        }
    }

    #[test]
    fn path_forms() {
        assert_eq!(resolve_path("vmlinuz", "boot/"), tftp(None, "boot/vmlinuz"));
        assert_eq!(resolve_path("/vmlinuz", "boot/"), tftp(None, "vmlinuz"));
        assert_eq!(
            resolve_path("::k/vmlinuz", "boot/"),
            tftp(None, "k/vmlinuz")
        );
        assert_eq!(resolve_path("::/k", "boot/"), tftp(None, "k"));
        assert_eq!(
            resolve_path("10.1.1.1::k", "boot/"),
            tftp(Some("10.1.1.1"), "k")
        );
        assert_eq!(
            resolve_path("http://h/k", "boot/"),
            Location::Url("http://h/k".into())
        );
        assert_eq!(
            resolve_path("k", "http://h/d/"),
            Location::Url("http://h/d/k".into())
        );
        assert_eq!(resolve_path("k", "srv::d/"), tftp(Some("srv"), "d/k"));
        assert_eq!(tftp(Some("srv"), "d/k").to_string(), "srv::d/k");
        assert!(resolve_path("../etc/passwd", "").refused());
        assert!(resolve_path("a/../b", "").refused());
        assert!(!resolve_path("a/..b", "").refused());
        assert!(resolve_path("/", "").refused());
    }

    #[test]
    fn prefix_rules() {
        assert_eq!(path_prefix(Some("x/y"), Some("a/pxelinux.0")), "x/y/");
        assert_eq!(path_prefix(Some(""), Some("a/b/pxelinux.0")), "a/b/");
        assert_eq!(path_prefix(None, Some("pxelinux.0")), "");
        assert_eq!(path_prefix(None, None), "");
    }

    #[test]
    fn candidate_order() {
        let mac = mac_dashed("52:54:00:AB:cd:01").unwrap();
        assert_eq!(mac, "52-54-00-ab-cd-01");
        let c = candidates(
            None,
            Some("550e8400-e29b-11d4-a716-446655441234"),
            &mac,
            Ipv4Addr::new(10, 0, 2, 15),
        );
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], "pxelinux.cfg/550e8400-e29b-11d4-a716-446655441234");
        assert_eq!(c[1], "pxelinux.cfg/01-52-54-00-ab-cd-01");
        assert_eq!(c[2], "pxelinux.cfg/0A00020F");
        assert_eq!(c[9], "pxelinux.cfg/0");
        assert_eq!(c[10], "pxelinux.cfg/default");
        assert_eq!(
            candidates(Some("my.cfg"), None, &mac, Ipv4Addr::LOCALHOST),
            vec!["my.cfg"]
        );
        assert!(mac_dashed("52:54:00:ab:cd").is_err());
        assert!(uuid_lower("550E8400-E29B-11D4-A716-446655441234").is_ok());
        assert!(uuid_lower("550e8400e29b11d4a716446655441234").is_err());
    }
}
