//! The host-side model of the guest's PXELINUX client (`image/guest/`):
//! given a TFTP tree and a client identity it computes every config path the
//! guest tries, the config it chooses (with INCLUDE spliced), and the entry it
//! would boot — kernel, initrd list and final command line — or the error,
//! ONERROR, rescue or reboot outcome. `s390-pxelinux resolve` prints this, and
//! the client tests compare it with what the real guest scripts do.
//!
//! Submodules: [`lookup`] (server, prefix, path forms, candidate names) and
//! [`config`] (the configuration language). This module owns the sequence of
//! steps and the transfer model ([`Source`]); it must not print anything and
//! must not make network requests: every server and URL is served from one
//! local tree.

pub mod config;
pub mod lookup;

use config::{BootEntry, Choice, Config, Directive, Keyword, NetInfo};
use lookup::{IdentityError, Location, Target};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// How every console line of the guest client begins (`say` in
/// `image/guest/common.sh`, e.g. `S390-PXELINUX: lease …`): the prefix of
/// the markers the harness and the client tests read.
pub const MARKER_PREFIX: &str = "S390-PXELINUX: ";

/// INCLUDE nesting limit: a file at this depth cannot include further.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Errors that prevent modelling at all (bad identity on the command line).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Invalid MAC or UUID.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What the transfer model can answer: the content of a location, or `None`
/// when the guest's fetch would fail.
pub trait Source {
    /// Reads a location completely.
    fn read(&self, loc: &Location) -> Option<Vec<u8>>;
    /// Whether a location can be fetched (default: [`Source::read`] succeeds).
    fn exists(&self, loc: &Location) -> bool {
        self.read(loc).is_some()
    }
}

/// A local directory serving every server: TFTP path `p` (on any host and
/// port) is `ROOT/p`; URL `scheme://host/p?query` is `ROOT/p` too. Refused
/// locations (an empty path, a `..` component, an unknown URL scheme) never
/// exist.
#[derive(Debug, Clone)]
pub struct TreeSource {
    /// The tree's root directory.
    pub root: PathBuf,
}

impl TreeSource {
    fn file(&self, loc: &Location) -> Option<PathBuf> {
        if loc.refused() {
            return None;
        }
        let rel = match &loc.target {
            Target::Tftp { path, .. } => path.as_str(),
            Target::Url(u) => {
                let after_scheme = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
                let path = after_scheme.split_once('/').map(|(_, p)| p).unwrap_or("");
                path.split(['?', '#']).next().unwrap_or("")
            }
            Target::Unsupported(_) => return None,
        };
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            return None;
        }
        let p = self.root.join(rel.trim_start_matches('/'));
        p.is_file().then_some(p)
    }
}

impl Source for TreeSource {
    fn read(&self, loc: &Location) -> Option<Vec<u8>> {
        std::fs::read(self.file(loc)?).ok()
    }
    fn exists(&self, loc: &Location) -> bool {
        self.file(loc).is_some()
    }
}

/// The client's view of the lease and the console answer.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// MAC address of the booting interface (`:` or `-` separated).
    pub mac: String,
    /// Client IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Client UUID (as in /proc/sysinfo), if any; used only when valid
    /// ([`lookup::uuid_valid`]).
    pub uuid: Option<String>,
    /// Boot file name (option 67, else the header `file` field).
    pub bootfile: Option<String>,
    /// Option 209 (config file, tried first; missing: the normal search).
    pub opt209: Option<String>,
    /// Option 210 (path prefix).
    pub opt210: Option<String>,
    /// Option 211 (reboot time in seconds).
    pub opt211: Option<u32>,
    /// Boot server (option 66, else siaddr, else server identifier).
    pub server: String,
    /// Default gateway.
    pub gateway: String,
    /// Netmask (dotted).
    pub netmask: String,
    /// The line typed at a PROMPT; `None` = nobody types (timeout).
    pub answer: Option<String>,
}

/// One fetch attempt and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Location as printed by the guest.
    pub path: String,
    /// `found`, `not found`, `loop` or `too deep`.
    pub result: String,
}

/// The final kernel and initrds, as locations the guest fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootTarget {
    /// Label booted (empty for a bare kernel command line).
    pub label: String,
    /// Kernel location as printed.
    pub kernel: String,
    /// Initrd locations as printed, in order.
    pub initrd: Vec<String>,
    /// Final kernel command line.
    pub cmdline: String,
    /// Whether this entry came from ONERROR.
    pub via_onerror: bool,
}

/// How the guest ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `kexec -l` then `kexec -e` with this entry.
    Boot(BootTarget),
    /// Rescue shell with this reason.
    Rescue {
        /// The reason printed with the RESCUE marker.
        reason: String,
    },
    /// Reboot after option 211 seconds (no config found).
    Reboot {
        /// Seconds.
        after_seconds: u32,
    },
}

/// The prompt the guest shows (PROMPT ≠ 0, or a menu).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptInfo {
    /// Labels listed (MENU HIDE excluded).
    pub labels: Vec<String>,
    /// Wait in tenths of a second, `None` = forever.
    pub timeout_tenths: Option<u32>,
    /// Whether a typed answer was modelled (else: timeout).
    pub answered: bool,
}

/// Everything the guest would do and print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Boot server.
    pub server: String,
    /// Path prefix.
    pub prefix: String,
    /// Config lookup attempts in order (one round).
    pub tried: Vec<Attempt>,
    /// The chosen config file.
    pub config: Option<String>,
    /// INCLUDE attempts in order.
    pub includes: Vec<Attempt>,
    /// SAY texts in order.
    pub say: Vec<String>,
    /// The prompt, if PROMPT is non-zero.
    pub prompt: Option<PromptInfo>,
    /// Kernel and initrd locations fetched successfully, in order.
    pub fetched: Vec<String>,
    /// ERROR reasons in order.
    pub errors: Vec<String>,
    /// Parser warnings (not printed by the guest unless `pxe.debug`).
    pub warnings: Vec<String>,
    /// The end.
    pub outcome: Outcome,
}

struct Flattener<'a> {
    source: &'a dyn Source,
    prefix: &'a str,
    includes: Vec<Attempt>,
    warnings: Vec<String>,
}

impl Flattener<'_> {
    /// Normalises `bytes` (the file `name`, at `stack.len() - 1` depth) and
    /// splices its INCLUDEs: paths resolved like any other, missing files,
    /// loops (a file already open) and nesting beyond [`MAX_INCLUDE_DEPTH`]
    /// skipped.
    fn flatten(
        &mut self,
        name: &str,
        bytes: &[u8],
        stack: &mut Vec<String>,
        out: &mut Vec<Directive>,
    ) {
        for d in config::normalize(name, bytes, &mut self.warnings) {
            if d.keyword != Keyword::Include {
                out.push(d);
                continue;
            }
            let loc = lookup::resolve_path(&d.arg, self.prefix);
            let path = loc.to_string();
            let content = if stack.contains(&path) {
                Err("loop")
            } else if stack.len() > MAX_INCLUDE_DEPTH {
                Err("too deep")
            } else {
                self.source.read(&loc).ok_or("not found")
            };
            self.includes.push(Attempt {
                path: path.clone(),
                result: match &content {
                    Ok(_) => "found".to_string(),
                    Err(e) => (*e).to_string(),
                },
            });
            if let Ok(bytes) = content {
                stack.push(path.clone());
                self.flatten(&path, &bytes, stack, out);
                stack.pop();
            }
        }
    }
}

/// Models the guest's whole PXELINUX run for one request.
pub fn resolve(source: &dyn Source, req: &Request) -> Result<Resolution, ResolveError> {
    let mac = lookup::mac_dashed(&req.mac)?;
    let uuid = req
        .uuid
        .as_deref()
        .map(lookup::uuid_lower)
        .transpose()?
        .filter(|u| lookup::uuid_valid(u));
    let ip = req.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut warnings = Vec::new();
    let bootfile = dhcp_string("boot file", req.bootfile.as_deref(), &mut warnings);
    let opt209 = dhcp_string("option 209", req.opt209.as_deref(), &mut warnings);
    let opt210 = dhcp_string("option 210", req.opt210.as_deref(), &mut warnings);
    let prefix = lookup::path_prefix(opt210, bootfile);
    let net = NetInfo {
        ip: ip.to_string(),
        server: req.server.clone(),
        gateway: req.gateway.clone(),
        netmask: req.netmask.clone(),
        mac_dashed: mac.clone(),
        uuid: uuid.clone(),
    };
    let mut res = Resolution {
        server: req.server.clone(),
        prefix: prefix.clone(),
        tried: Vec::new(),
        config: None,
        includes: Vec::new(),
        say: Vec::new(),
        prompt: None,
        fetched: Vec::new(),
        errors: Vec::new(),
        warnings,
        outcome: Outcome::Rescue {
            reason: String::new(),
        },
    };
    let mut found = None;
    for name in lookup::candidates(opt209, uuid.as_deref(), &mac, ip) {
        let loc = lookup::resolve_path(&name, &prefix);
        let bytes = if loc.refused() {
            None
        } else {
            source.read(&loc)
        };
        res.tried.push(Attempt {
            path: loc.to_string(),
            result: if bytes.is_some() {
                "found"
            } else {
                "not found"
            }
            .to_string(),
        });
        if let Some(b) = bytes {
            found = Some((loc.to_string(), b));
            break;
        }
    }
    let Some((cfg_path, bytes)) = found else {
        let reason = "no config file found".to_string();
        res.errors.push(reason.clone());
        res.outcome = match req.opt211 {
            Some(n) if n > 0 => Outcome::Reboot { after_seconds: n },
            _ => Outcome::Rescue { reason },
        };
        return Ok(res);
    };
    let mut fl = Flattener {
        source,
        prefix: &prefix,
        includes: Vec::new(),
        warnings: Vec::new(),
    };
    let mut directives = Vec::new();
    fl.flatten(
        &cfg_path,
        &bytes,
        &mut vec![cfg_path.clone()],
        &mut directives,
    );
    res.includes = fl.includes;
    res.warnings.extend(fl.warnings);
    let cfg = Config::evaluate(&directives, &mut res.warnings);
    res.config = Some(cfg_path);
    res.say = cfg.say.clone();
    let mut choice = if cfg.prompts() {
        res.prompt = Some(PromptInfo {
            labels: cfg.visible_labels().map(|l| l.name.clone()).collect(),
            timeout_tenths: cfg.prompt_tenths(),
            answered: req.answer.is_some(),
        });
        match &req.answer {
            Some(a) => cfg.typed_choice(a),
            None => cfg.timeout_choice(),
        }
    } else {
        cfg.default_choice()
    };
    let mut via_onerror = false;
    loop {
        match boot(source, &cfg, &choice, &net, &prefix, &mut res.fetched) {
            Ok(mut t) => {
                t.via_onerror = via_onerror;
                res.outcome = Outcome::Boot(t);
                return Ok(res);
            }
            Err(reason) => {
                res.errors.push(reason.clone());
                match (&cfg.onerror, via_onerror) {
                    (Some(cmd), false) => {
                        via_onerror = true;
                        choice = Choice::OnError(cmd.clone());
                    }
                    _ => {
                        res.outcome = Outcome::Rescue { reason };
                        return Ok(res);
                    }
                }
            }
        }
    }
}

/// A DHCP string value as the guest keeps it: whole, or (when it holds a
/// control byte, which would end a line of its lease file or of a console
/// marker) not at all, with a warning; the guest says `ignoring DHCP values
/// with a control byte: …`.
fn dhcp_string<'a>(
    what: &str,
    value: Option<&'a str>,
    warnings: &mut Vec<String>,
) -> Option<&'a str> {
    let v = value?;
    if v.bytes().any(|b| b < 0x20 || b == 0x7f) {
        warnings.push(format!("ignoring {what} {v:?}: it holds a control byte"));
        return None;
    }
    Some(v)
}

/// Selects and "fetches" one entry; the error is the reason the guest prints.
fn boot(
    source: &dyn Source,
    cfg: &Config,
    choice: &Choice,
    net: &NetInfo,
    prefix: &str,
    fetched: &mut Vec<String>,
) -> Result<BootTarget, String> {
    let BootEntry {
        label,
        kernel,
        initrd,
        cmdline,
    } = config::select(cfg, choice, net)?;
    let fetch = |what: &str, p: &str, fetched: &mut Vec<String>| {
        let loc = lookup::resolve_path(p, prefix);
        if source.exists(&loc) {
            fetched.push(loc.to_string());
            Ok(loc.to_string())
        } else {
            Err(format!("cannot fetch {what} {loc}"))
        }
    };
    let kernel = fetch("kernel", &kernel, fetched)?;
    let initrd = initrd
        .iter()
        .map(|i| fetch("initrd", i, fetched))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BootTarget {
        label,
        kernel,
        initrd,
        cmdline,
        via_onerror: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Mem(BTreeMap<String, String>);

    impl Source for Mem {
        fn read(&self, loc: &Location) -> Option<Vec<u8>> {
            self.0.get(&loc.to_string()).map(|s| s.as_bytes().to_vec())
        }
    }

    fn req() -> Request {
        Request {
            mac: "52:54:00:12:34:56".into(),
            ip: Some(Ipv4Addr::new(10, 0, 2, 15)),
            bootfile: Some("boot/pxelinux.0".into()),
            server: "10.0.2.2".into(),
            netmask: "255.255.255.0".into(),
            ..Request::default()
        }
    }

    #[test]
    fn tree_source_serves_regular_files_under_its_root_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("tree");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/f"), b"F").expect("write");
        std::fs::write(tmp.path().join("outside"), b"O").expect("write");
        let src = TreeSource { root };
        let get = |spec: &str| src.read(&lookup::resolve_path(spec, ""));
        assert_eq!(get("d/f"), Some(b"F".to_vec()));
        assert!(src.exists(&lookup::resolve_path("/d/f", "")));
        assert_eq!(get("10.0.2.9::d/f"), Some(b"F".to_vec()), "any TFTP host");
        assert_eq!(
            get("http://10.0.2.2:8080/d/f?q=1#frag"),
            Some(b"F".to_vec())
        );
        for refused in [
            "../outside",
            "http://10.0.2.2/../outside",
            "http://10.0.2.2",
            "d",
            "missing",
            "gopher://10.0.2.2/d/f",
        ] {
            assert_eq!(get(refused), None, "{refused}");
            assert!(!src.exists(&lookup::resolve_path(refused, "")), "{refused}");
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect())
    }

    #[test]
    fn ip_file_found_with_include_and_loop() {
        let m = mem(&[
            (
                "boot/pxelinux.cfg/0A00",
                "include common.cfg\nLABEL x\nKERNEL k\nINITRD i1,i2\n",
            ),
            (
                "boot/common.cfg",
                "include common.cfg\nDEFAULT x\nSAY hello\n",
            ),
            ("boot/k", "K"),
            ("boot/i1", "1"),
            ("boot/i2", "2"),
        ]);
        let r = resolve(&m, &req()).unwrap();
        assert_eq!(r.tried.len(), 6);
        assert_eq!(r.tried[5].path, "boot/pxelinux.cfg/0A00");
        assert_eq!(r.config.as_deref(), Some("boot/pxelinux.cfg/0A00"));
        assert_eq!(r.includes[1].result, "loop");
        assert_eq!(r.say, vec!["hello"]);
        let Outcome::Boot(t) = r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert_eq!(t.kernel, "boot/k");
        assert_eq!(t.initrd, vec!["boot/i1", "boot/i2"]);
    }

    #[test]
    fn onerror_then_rescue() {
        let m = mem(&[
            (
                "boot/pxelinux.cfg/default",
                "DEFAULT a\nONERROR b\nLABEL a\nKERNEL missing\nLABEL b\nKERNEL k\n",
            ),
            ("boot/k", "K"),
        ]);
        let r = resolve(&m, &req()).unwrap();
        assert_eq!(r.errors, vec!["cannot fetch kernel boot/missing"]);
        assert!(matches!(&r.outcome, Outcome::Boot(t) if t.via_onerror && t.label == "b"));
        let m = mem(&[(
            "boot/pxelinux.cfg/default",
            "DEFAULT nothing\nONERROR alsonothing\n",
        )]);
        let r = resolve(&m, &req()).unwrap();
        assert_eq!(r.errors.len(), 2);
        assert_eq!(
            r.outcome,
            Outcome::Rescue {
                reason: "cannot fetch kernel boot/alsonothing".into()
            }
        );
    }

    #[test]
    fn dhcp_strings_with_control_bytes_are_left_out() {
        let m = mem(&[
            (
                "boot/pxelinux.cfg/default",
                "DEFAULT k\nLABEL k\nKERNEL k\n",
            ),
            ("boot/k", "K"),
        ]);
        let r = resolve(
            &m,
            &Request {
                opt209: Some("evil\ncfg".into()),
                opt210: Some("x\ry/".into()),
                ..req()
            },
        )
        .unwrap();
        assert_eq!(r.prefix, "boot/");
        assert_eq!(r.tried[0].path, "boot/pxelinux.cfg/01-52-54-00-12-34-56");
        assert_eq!(r.config.as_deref(), Some("boot/pxelinux.cfg/default"));
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }

    #[test]
    fn no_config_reboots_with_211() {
        let r = resolve(
            &mem(&[]),
            &Request {
                opt211: Some(30),
                ..req()
            },
        )
        .unwrap();
        assert_eq!(r.tried.len(), 10);
        assert_eq!(r.outcome, Outcome::Reboot { after_seconds: 30 });
    }
}
