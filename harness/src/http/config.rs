//! The `[http]` section of a scenario: the run gets an HTTP server serving
//! its tree, and `[[http.fault]]` entries script how that server misbehaves
//! (a status code instead of the file, a connection cut or stalled after N
//! bytes, a lying `Content-Length`, a rate limit), for every request or only
//! for some requests of one path. This module only describes and validates;
//! it must not open sockets or touch files.

use serde::Deserialize;

/// `[http]` as written in a scenario.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `[[http.fault]]`, applied in order (the first that matches a
    /// request decides its status; every matching body fault applies).
    #[serde(default, rename = "fault")]
    pub faults: Vec<RawFault>,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Answer with `status` (and a short text body) instead of the file.
    Status,
    /// Announce the whole file, send `after_bytes` bytes, close the
    /// connection.
    Cut,
    /// Announce the whole file, send `after_bytes` bytes, then send
    /// nothing more and keep the connection open.
    Stall,
    /// Announce `content_length` bytes; send the file up to that length
    /// (a larger value: the file, then the connection is closed short).
    Length,
    /// Send the body at most `bytes_per_second` fast.
    Rate,
}

/// One `[[http.fault]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// What the fault does.
    pub kind: FaultKind,
    /// The path it applies to, as requested (leading `/` removed); absent:
    /// every path.
    pub path: Option<String>,
    /// Which requests (1-based): counted per path when `path` is given,
    /// over the run otherwise; absent: every request.
    pub requests: Option<Vec<u32>>,
    /// `status`: the HTTP status code (100–599).
    pub status: Option<u16>,
    /// `cut`, `stall`: body bytes sent first.
    pub after_bytes: Option<u64>,
    /// `length`: the `Content-Length` announced.
    pub content_length: Option<u64>,
    /// `rate`: the limit.
    pub bytes_per_second: Option<u64>,
}

/// A validated fault's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See [`FaultKind::Status`].
    Status(u16),
    /// See [`FaultKind::Cut`].
    Cut(u64),
    /// See [`FaultKind::Stall`].
    Stall(u64),
    /// See [`FaultKind::Length`].
    Length(u64),
    /// See [`FaultKind::Rate`].
    Rate(u64),
}

/// A validated fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The path it applies to (no leading `/`); `None`: every path.
    pub path: Option<String>,
    /// The request numbers it applies to; empty: every request.
    pub requests: Vec<u32>,
    /// What it does.
    pub action: Action,
}

impl Fault {
    /// Whether this fault applies to request `nth_overall` of the run,
    /// which is request `nth_for_path` of `path`.
    pub fn applies(&self, path: &str, nth_overall: u32, nth_for_path: u32) -> bool {
        let n = match &self.path {
            Some(p) if p != path => return false,
            Some(_) => nth_for_path,
            None => nth_overall,
        };
        self.requests.is_empty() || self.requests.contains(&n)
    }
}

/// A `[[http.fault]]` that does not validate: which one (0-based), the key
/// in it when one is to blame, and the message (which names both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFault {
    /// The fault's index in `[[http.fault]]`, 0-based.
    pub fault: usize,
    /// The key inside the fault, when one is to blame.
    pub key: Option<&'static str>,
    /// What is wrong (`http.fault 2 status: …`).
    pub message: String,
}

impl std::fmt::Display for InvalidFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `[http]` with its faults validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// Faults in scenario order.
    pub faults: Vec<Fault>,
}

impl HttpConfig {
    /// Validates the faults; an error names the fault and key (`http.fault
    /// 2 status: …`), as text and as data.
    pub fn resolve(&self) -> Result<HttpSettings, InvalidFault> {
        let mut faults = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            let key = format!("http.fault {}", i + 1);
            let invalid = |name: Option<&'static str>, message: String| InvalidFault {
                fault: i,
                key: name,
                message,
            };
            let need = |name: &'static str, v: Option<u64>| {
                v.ok_or_else(|| {
                    invalid(
                        Some(name),
                        format!("{key} {name}: required for kind {:?}", f.kind),
                    )
                })
            };
            let action = match f.kind {
                FaultKind::Status => {
                    let s = need("status", f.status.map(u64::from))?;
                    if !(100..=599).contains(&s) {
                        return Err(invalid(
                            Some("status"),
                            format!("{key} status {s}: must be 100..=599"),
                        ));
                    }
                    Action::Status(s as u16)
                }
                FaultKind::Cut => Action::Cut(need("after_bytes", f.after_bytes)?),
                FaultKind::Stall => Action::Stall(need("after_bytes", f.after_bytes)?),
                FaultKind::Length => Action::Length(need("content_length", f.content_length)?),
                FaultKind::Rate => {
                    let r = need("bytes_per_second", f.bytes_per_second)?;
                    if r == 0 {
                        return Err(invalid(
                            Some("bytes_per_second"),
                            format!("{key} bytes_per_second: must be positive"),
                        ));
                    }
                    Action::Rate(r)
                }
            };
            // A key that the kind does not use is a mistake in the file.
            let given = [
                ("status", f.status.is_some(), FaultKind::Status),
                ("after_bytes", f.after_bytes.is_some(), FaultKind::Cut),
                (
                    "content_length",
                    f.content_length.is_some(),
                    FaultKind::Length,
                ),
                (
                    "bytes_per_second",
                    f.bytes_per_second.is_some(),
                    FaultKind::Rate,
                ),
            ];
            for (name, set, owner) in given {
                let used = owner == f.kind || (name == "after_bytes" && f.kind == FaultKind::Stall);
                if set && !used {
                    return Err(invalid(
                        Some(name),
                        format!("{key} {name}: not used by kind {:?}", f.kind),
                    ));
                }
            }
            let path = f
                .path
                .as_ref()
                .map(|p| p.trim_start_matches('/').to_string());
            if path.as_deref() == Some("") {
                return Err(invalid(Some("path"), format!("{key} path: empty")));
            }
            let requests = f.requests.clone().unwrap_or_default();
            if requests.contains(&0) {
                return Err(invalid(
                    Some("requests"),
                    format!("{key} requests: numbers start at 1"),
                ));
            }
            faults.push(Fault {
                path,
                requests,
                action,
            });
        }
        Ok(HttpSettings { faults })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HttpSettings, String> {
        let c: HttpConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn faults_validate_and_name_their_key() {
        let s = parse(
            "[[fault]]\nkind = \"status\"\npath = \"/k\"\nrequests = [1, 2]\nstatus = 500\n\
             [[fault]]\nkind = \"cut\"\nafter_bytes = 10\n",
        )
        .expect("valid");
        assert_eq!(s.faults[0].path.as_deref(), Some("k"));
        assert_eq!(s.faults[0].action, Action::Status(500));
        assert_eq!(s.faults[1].action, Action::Cut(10));
        let e = parse("[[fault]]\nkind = \"status\"\n").unwrap_err();
        assert_eq!(e, "http.fault 1 status: required for kind Status");
        let e =
            parse("[[fault]]\nkind = \"rate\"\nbytes_per_second = 5\nstatus = 1\n").unwrap_err();
        assert_eq!(e, "http.fault 1 status: not used by kind Rate");
        let e = parse("[[fault]]\nkind = \"status\"\nstatus = 99\n").unwrap_err();
        assert!(e.contains("http.fault 1 status 99"), "{e}");
        let e = parse("[[fault]]\nkind = \"cut\"\nafter_bytes = 1\nrequests = [0]\n").unwrap_err();
        assert!(e.contains("requests"), "{e}");
        assert!(parse("[[fault]]\nkind = \"explode\"\n").is_err());
        assert!(parse("[[fault]]\nkind = \"cut\"\nafter_bytes = 1\nbogus = 1\n").is_err());
    }

    #[test]
    fn requests_count_per_path_or_overall() {
        let f = Fault {
            path: Some("k".into()),
            requests: vec![1, 2],
            action: Action::Status(500),
        };
        assert!(f.applies("k", 7, 1));
        assert!(f.applies("k", 8, 2));
        assert!(!f.applies("k", 9, 3));
        assert!(!f.applies("other", 1, 1));
        let every = Fault {
            path: None,
            requests: vec![],
            action: Action::Rate(1),
        };
        assert!(every.applies("x", 5, 5));
        let second = Fault {
            path: None,
            requests: vec![2],
            action: Action::Cut(1),
        };
        assert!(!second.applies("x", 1, 1) && second.applies("y", 2, 1));
    }
}
