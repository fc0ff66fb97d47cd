//! Where the guest looks: the boot server and path prefix derived from the
//! DHCP lease, the resolution of a PXELINUX file name (`tftp://`, `http://`,
//! `ftp://` URLs, `host::path`, `::path`, everything else relative to the
//! prefix) into a [`Location`], and the ordered list of configuration file
//! candidates (option 209, then UUID, `01-<mac>`, hexadecimal IP 8..1
//! digits, `default`).
//!
//! The rules are syslinux 6's: `core/fs/pxe/urlparse.c` (`parse_url`,
//! `url_type`, `url_unescape`), `core/fs/pxe/pxe.c` (`get_prefix`,
//! `__pxe_searchdir`, `pxe_open_config`) and `core/fs/pxe/tftp.c`
//! (`tftp_open`); `image/guest/README.md` cites them rule by rule.
//!
//! This module mirrors `image/guest/common.sh` (`pxe_resolve`, `pxe_prefix`)
//! and `image/guest/boot` (`candidates`). It owns only pure string
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

/// The TFTP port a `host::path` name and a `tftp://` URL without a port use.
pub const TFTP_PORT: u16 = 69;

/// How a transfer is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// TFTP. `server` is `None` for the boot server from the lease.
    Tftp {
        /// Another server named in the name, or `None` for the boot server.
        server: Option<String>,
        /// UDP port (69 unless a `tftp://host:port/` URL says otherwise).
        port: u16,
        /// Path sent to the server: `%XX` decoded for a `tftp://` URL,
        /// leading slashes removed.
        path: String,
    },
    /// An `http://` or `ftp://` URL, fetched with busybox wget (the URL
    /// without its `#fragment`).
    Url(String),
    /// A URL with a scheme PXELINUX has no handler for (`https://`,
    /// `TFTP://`, …): never found.
    Unsupported(String),
}

/// A resolved file name: what is fetched and how the guest prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The form printed on the console: the path for the boot server,
    /// `host::path` for another TFTP server, the URL itself for a URL.
    pub display: String,
    /// The transfer.
    pub target: Target,
}

impl Location {
    /// Whether the guest refuses to fetch this location: an empty TFTP path or
    /// one with a `..` component (both sides treat it as "not found"), and
    /// URLs of a scheme PXELINUX does not know.
    pub fn refused(&self) -> bool {
        match &self.target {
            Target::Tftp { path, .. } => path.is_empty() || path.split('/').any(|c| c == ".."),
            Target::Url(_) => false,
            Target::Unsupported(_) => true,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// `parse_url`'s classification of a name (`urlparse.c` `url_type`), decided
/// by the first `:` of the whole string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlType {
    /// `scheme://…`: the first `:` is followed by `//`.
    Normal,
    /// `host::path` or `::path`: the first `:` is followed by `:`.
    OldTftp,
    /// Anything else (no `:`, or a first `:` followed by something else):
    /// the current directory (the prefix) is prepended.
    Suffix,
}

/// Classifies a name like `urlparse.c` `url_type`.
pub fn url_type(s: &str) -> UrlType {
    match s.find(':') {
        None => UrlType::Suffix,
        Some(i) => {
            let rest = &s[i + 1..];
            if rest.starts_with("//") {
                UrlType::Normal
            } else if rest.starts_with(':') {
                UrlType::OldTftp
            } else {
                UrlType::Suffix
            }
        }
    }
}

/// `urlparse.c` `url_unescape(path, ';')`: the path ends at the first
/// unescaped `;` (a TFTP URL's `;mode=`), and every `%XX` (two hexadecimal
/// digits) is decoded; `%00` ends the path, as the C string ends there.
/// Decoded bytes that are not UTF-8 become U+FFFD (the guest keeps the bytes).
pub fn tftp_unescape(path: &str) -> String {
    let path = path.split(';').next().unwrap_or("");
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                let v = (h * 16 + l) as u8;
                if v == 0 {
                    break;
                }
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The port of a `tftp://host:port/` URL: the leading digits, when they make
/// a port number (1..=65535); else `None` (port 69, as `tftp_open` uses
/// for port 0).
fn port_number(text: &str) -> Option<u16> {
    let digits = &text[..text.bytes().take_while(u8::is_ascii_digit).count()];
    let digits = digits.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    digits.parse::<u16>().ok().filter(|p| *p != 0)
}

/// The current directory a relative name is appended to (`pxe.c`
/// `get_prefix`): a prefix that is not itself a URL or `host::` name becomes
/// `::prefix`, a path on the boot server.
pub fn working_directory(prefix: &str) -> String {
    if url_type(prefix) == UrlType::Suffix {
        format!("::{prefix}")
    } else {
        prefix.to_string()
    }
}

fn tftp_location(server: Option<String>, port: u16, path: &str, display: String) -> Location {
    Location {
        display,
        target: Target::Tftp {
            server,
            port,
            path: path.trim_start_matches('/').to_string(),
        },
    }
}

/// Resolves a file name from a config file, a DHCP option or a candidate
/// name against `prefix` (`pxe.c` `__pxe_searchdir` with `urlparse.c`
/// `parse_url`):
/// 1. a name whose first `:` is followed by `//` is a URL: `tftp://host[:port]/path`
///    (path `%XX` decoded, cut at `;`), `http://…` and `ftp://…` (wget);
///    other schemes are never found;
/// 2. a name whose first `:` is followed by `:` is `host::path` on that TFTP
///    server (empty host: the boot server), prefix bypassed;
/// 3. anything else, a leading `/` included, is appended to the working
///    directory ([`working_directory`]) and the result classified again.
///
/// Leading slashes are removed from every TFTP path; URLs keep theirs.
pub fn resolve_path(spec: &str, prefix: &str) -> Location {
    let full = if url_type(spec) == UrlType::Suffix {
        format!("{}{spec}", working_directory(prefix))
    } else {
        spec.to_string()
    };
    match url_type(&full) {
        UrlType::OldTftp => {
            let (host, path) = full.split_once("::").unwrap_or(("", ""));
            let path_shown = path.trim_start_matches('/');
            let display = if host.is_empty() {
                path_shown.to_string()
            } else {
                format!("{host}::{path_shown}")
            };
            tftp_location(
                (!host.is_empty()).then(|| host.to_string()),
                TFTP_PORT,
                path,
                display,
            )
        }
        UrlType::Normal => {
            let (scheme, rest) = full.split_once("://").unwrap_or(("", ""));
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let path = path.split('#').next().unwrap_or("");
            match scheme {
                "tftp" => {
                    let hostport = authority.split_once('@').map_or(authority, |(_, h)| h);
                    let (host, port) = match hostport.split_once(':') {
                        Some((h, p)) => (h, port_number(p)),
                        None => (hostport, None),
                    };
                    tftp_location(
                        (!host.is_empty()).then(|| host.to_string()),
                        port.unwrap_or(TFTP_PORT),
                        &tftp_unescape(path),
                        full.clone(),
                    )
                }
                "http" | "ftp" => Location {
                    target: Target::Url(full.split('#').next().unwrap_or("").to_string()),
                    display: full,
                },
                _ => Location {
                    target: Target::Unsupported(scheme.to_string()),
                    display: full,
                },
            }
        }
        // Unreachable: the working directory always has a `:`; kept total.
        UrlType::Suffix => tftp_location(None, TFTP_PORT, &full, full.clone()),
    }
}

/// The boot file's directory as `pxe.c` `get_prefix` derives it: everything
/// up to and including the last character that is not a letter, digit, `.`
/// or `-` (so `boot/s390x/pxelinux.0` gives `boot/s390x/`, and a name
/// without such a character gives the empty prefix).
pub fn bootfile_prefix(bootfile: &str) -> &str {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    match bootfile.char_indices().rev().find(|(_, c)| !keep(*c)) {
        Some((i, c)) => &bootfile[..i + c.len_utf8()],
        None => "",
    }
}

/// The path prefix: option 210 if non-empty (a `/` appended when missing:
/// our choice, see the guest README), else [`bootfile_prefix`] of the boot
/// file.
pub fn path_prefix(opt210: Option<&str>, bootfile: Option<&str>) -> String {
    match opt210.filter(|p| !p.is_empty()) {
        Some(p) if p.ends_with('/') => p.to_string(),
        Some(p) => format!("{p}/"),
        None => bootfile_prefix(bootfile.unwrap_or("")).to_string(),
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

/// Whether syslinux counts a (well-formed, lower-case) UUID as valid
/// (`core/sysappend.c` `is_valid_uuid`): its version nibble, the first digit
/// of the third group, is neither 0 nor f. The nil UUID is not valid.
pub fn uuid_valid(uuid: &str) -> bool {
    !matches!(
        uuid.split('-').nth(2).and_then(|g| g.chars().next()),
        Some('0' | 'f') | None
    )
}

/// The client IP as 8 upper-case hexadecimal digits (`10.0.2.15` → `0A00020F`).
pub fn ip_hex(ip: Ipv4Addr) -> String {
    ip.octets().iter().map(|o| format!("{o:02X}")).collect()
}

/// The configuration file names tried, in order, before resolution against
/// the prefix (`pxe.c` `pxe_open_config`): option 209 first when given;
/// then `pxelinux.cfg/<uuid>` (when valid), `pxelinux.cfg/01-<mac>`, the hex
/// IP shortened from 8 to 1 digits, `pxelinux.cfg/default`. A missing
/// option-209 file falls back to the search.
pub fn candidates(
    opt209: Option<&str>,
    uuid: Option<&str>,
    mac_dashed: &str,
    ip: Ipv4Addr,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = opt209.filter(|c| !c.is_empty()) {
        out.push(c.to_string());
    }
    if let Some(u) = uuid.filter(|u| uuid_valid(u)) {
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

    fn tftp(server: Option<&str>, path: &str) -> Target {
        Target::Tftp {
            server: server.map(str::to_string),
            port: TFTP_PORT,
            path: path.to_string(),
        }
    }

    fn both(spec: &str, prefix: &str) -> (String, Target) {
        let l = resolve_path(spec, prefix);
        (l.display, l.target)
    }

    #[test]
    fn classification_is_by_the_first_colon() {
        assert_eq!(url_type("vmlinuz"), UrlType::Suffix);
        assert_eq!(url_type("/vmlinuz"), UrlType::Suffix);
        assert_eq!(url_type("::k"), UrlType::OldTftp);
        assert_eq!(url_type("10.1.1.1::k"), UrlType::OldTftp);
        assert_eq!(url_type("tftp://h/k"), UrlType::Normal);
        assert_eq!(url_type("weird://h/k"), UrlType::Normal);
        assert_eq!(url_type("a:b::c"), UrlType::Suffix);
        assert_eq!(url_type("http:/k"), UrlType::Suffix);
        assert_eq!(url_type("c:/dir"), UrlType::Suffix);
    }

    #[test]
    fn path_forms() {
        assert_eq!(
            both("vmlinuz", "boot/"),
            ("boot/vmlinuz".into(), tftp(None, "boot/vmlinuz"))
        );
        // A leading slash is not special: the prefix is prepended.
        assert_eq!(
            both("/vmlinuz", "boot/"),
            ("boot//vmlinuz".into(), tftp(None, "boot//vmlinuz"))
        );
        assert_eq!(
            both("/vmlinuz", ""),
            ("vmlinuz".into(), tftp(None, "vmlinuz"))
        );
        assert_eq!(
            both("::k/vmlinuz", "boot/"),
            ("k/vmlinuz".into(), tftp(None, "k/vmlinuz"))
        );
        assert_eq!(both("::/k", "boot/"), ("k".into(), tftp(None, "k")));
        assert_eq!(
            both("10.1.1.1::k", "boot/"),
            ("10.1.1.1::k".into(), tftp(Some("10.1.1.1"), "k"))
        );
        assert_eq!(
            both("a:b::c", "boot/"),
            ("boot/a:b::c".into(), tftp(None, "boot/a:b::c"))
        );
        assert_eq!(
            both("http://h/k#frag", "boot/"),
            ("http://h/k#frag".into(), Target::Url("http://h/k".into()))
        );
        assert_eq!(
            both("k", "http://h/d/"),
            ("http://h/d/k".into(), Target::Url("http://h/d/k".into()))
        );
        assert_eq!(
            both("/k", "http://h:8080/d/"),
            (
                "http://h:8080/d//k".into(),
                Target::Url("http://h:8080/d//k".into())
            )
        );
        assert_eq!(
            both("k", "srv::d/"),
            ("srv::d/k".into(), tftp(Some("srv"), "d/k"))
        );
        assert!(resolve_path("../etc/passwd", "").refused());
        assert!(resolve_path("a/../b", "").refused());
        assert!(!resolve_path("a/..b", "").refused());
        assert!(resolve_path("/", "").refused());
        assert!(resolve_path("https://h/k", "").refused());
        assert!(resolve_path("TFTP://h/k", "").refused());
    }

    #[test]
    fn tftp_urls() {
        let t = |server: &str, port: u16, path: &str| Target::Tftp {
            server: Some(server.into()),
            port,
            path: path.into(),
        };
        assert_eq!(
            both("tftp://10.0.2.2/boot/k", ""),
            ("tftp://10.0.2.2/boot/k".into(), t("10.0.2.2", 69, "boot/k"))
        );
        assert_eq!(
            resolve_path("tftp://u:p@h:6969/a%20b;mode=octet", "").target,
            t("h", 6969, "a b")
        );
        assert_eq!(resolve_path("tftp://h//abs", "").target, t("h", 69, "abs"));
        assert_eq!(resolve_path("tftp://h/x%00y", "").target, t("h", 69, "x"));
        assert_eq!(
            resolve_path("tftp://h/%2e%2e/x", "").target,
            t("h", 69, "../x")
        );
        assert!(resolve_path("tftp://h/%2e%2e/x", "").refused());
        assert!(resolve_path("tftp://h", "").refused());
        // a tftp:// prefix makes relative names TFTP URLs
        assert_eq!(
            both("pxelinux.cfg/default", "tftp://h/s390x/"),
            (
                "tftp://h/s390x/pxelinux.cfg/default".into(),
                t("h", 69, "s390x/pxelinux.cfg/default")
            )
        );
        assert_eq!(tftp_unescape("a%4"), "a%4");
        assert_eq!(tftp_unescape("%41%zz;x"), "A%zz");
    }

    #[test]
    fn prefix_rules() {
        assert_eq!(path_prefix(Some("x/y"), Some("a/pxelinux.0")), "x/y/");
        assert_eq!(path_prefix(Some(""), Some("a/b/pxelinux.0")), "a/b/");
        assert_eq!(path_prefix(None, Some("pxelinux.0")), "");
        assert_eq!(path_prefix(None, None), "");
        assert_eq!(bootfile_prefix("boot/s390x/pxelinux.0"), "boot/s390x/");
        assert_eq!(bootfile_prefix("s390x_pxelinux.0"), "s390x_");
        assert_eq!(
            bootfile_prefix("http://h:80/d/lpxelinux.0"),
            "http://h:80/d/"
        );
        assert_eq!(bootfile_prefix("h::pxe/p.0"), "h::pxe/");
        assert_eq!(working_directory("boot/"), "::boot/");
        assert_eq!(working_directory(""), "::");
        assert_eq!(working_directory("http://h/"), "http://h/");
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
        let c = candidates(Some("my.cfg"), None, &mac, Ipv4Addr::LOCALHOST);
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], "my.cfg");
        assert_eq!(c[1], "pxelinux.cfg/01-52-54-00-ab-cd-01");
        let nil = "00000000-0000-0000-0000-000000000000";
        assert!(!uuid_valid(nil));
        assert!(!uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
        assert_eq!(
            candidates(None, Some(nil), &mac, Ipv4Addr::LOCALHOST).len(),
            10
        );
        assert!(mac_dashed("52:54:00:ab:cd").is_err());
        assert!(uuid_lower("550E8400-E29B-11D4-A716-446655441234").is_ok());
        assert!(uuid_lower("550e8400e29b11d4a716446655441234").is_err());
    }

    #[test]
    fn tftp_url_ports() {
        let port = |url: &str| match resolve_path(url, "").target {
            Target::Tftp { port, .. } => port,
            t => panic!("{url}: {t:?}"),
        };
        // five digits are a port when they fit 1..=65535
        assert_eq!(port("tftp://h:65535/k"), 65535);
        assert_eq!(port("tftp://h:10000/k"), 10000);
        assert_eq!(port("tftp://h:0000080/k"), 80);
        assert_eq!(port("tftp://h:99x/k"), 99);
        // anything else is port 69
        assert_eq!(port("tftp://h:65536/k"), TFTP_PORT);
        assert_eq!(port("tftp://h:123456/k"), TFTP_PORT);
        assert_eq!(port("tftp://h:0/k"), TFTP_PORT);
        assert_eq!(port("tftp://h:/k"), TFTP_PORT);
    }

    #[test]
    fn identities_are_checked_whole() {
        assert_eq!(
            mac_dashed("52-54-00-AB-CD-01").as_deref(),
            Ok("52-54-00-ab-cd-01")
        );
        // every octet two hexadecimal digits, exactly six of them
        for bad in [
            "52:54:00:ab:cd:0g",
            "52:54:00:ab:cd:001",
            "52:54:00:ab:cd:1",
            "52:54:00:ab:cd:01:02",
            "",
        ] {
            assert_eq!(
                mac_dashed(bad),
                Err(IdentityError::Mac(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(
            uuid_lower(" 550E8400-E29B-11D4-A716-446655441234\n").as_deref(),
            Ok("550e8400-e29b-11d4-a716-446655441234")
        );
        for bad in [
            "550e8400-e29b-11d4-a716-44665544123g",
            "550e8400-e29b-11d4-a716-4466554412345",
            "550e8400-e29b-11d4a716-446655441234",
        ] {
            assert_eq!(
                uuid_lower(bad),
                Err(IdentityError::Uuid(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn option_210_with_its_slash_and_an_empty_option_209() {
        assert_eq!(path_prefix(Some("x/y/"), Some("a/pxelinux.0")), "x/y/");
        assert_eq!(path_prefix(Some("/"), None), "/");
        // an empty option 209 names no file: the search starts at the UUID
        let mac = "52-54-00-ab-cd-01";
        let c = candidates(Some(""), None, mac, Ipv4Addr::LOCALHOST);
        assert_eq!(c.len(), 10);
        assert_eq!(c[0], "pxelinux.cfg/01-52-54-00-ab-cd-01");
        assert_eq!(c[1], "pxelinux.cfg/7F000001");
    }
}
