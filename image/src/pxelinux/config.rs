//! The PXELINUX configuration language: line normalisation (the same rules as
//! the guest's `config.awk` `normalize` mode), evaluation of the flattened
//! directive list into a [`Config`], the default / timeout choices, and the
//! selection of a boot entry with its final command line (`select`).
//!
//! This module owns the language semantics only. It must not fetch anything:
//! INCLUDE is spliced by the caller ([`super::resolve`]), which also decides
//! what happens when a fetch fails.

use serde::Serialize;

/// Lines longer than this many bytes (after removing a trailing CR) are
/// ignored with a warning.
pub const MAX_LINE: usize = 4096;

/// Numbers (PROMPT, TIMEOUT, TOTALTIMEOUT, IPAPPEND) are clamped to this.
pub const MAX_NUMBER: u32 = 999_999_999;

/// A keyword understood by the client (SYSAPPEND is an alias of IPAPPEND,
/// LINUX of KERNEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `DEFAULT <command line>`
    Default,
    /// `LABEL <name>`
    Label,
    /// `KERNEL <path> [options]` or `LINUX …`
    Kernel,
    /// `INITRD <path>[,<path>…]`
    Initrd,
    /// `APPEND <options>` or `APPEND -`
    Append,
    /// `IPAPPEND <bits>` or `SYSAPPEND <bits>`
    Ipappend,
    /// `PROMPT <0|1>`
    Prompt,
    /// `TIMEOUT <tenths of a second>`
    Timeout,
    /// `TOTALTIMEOUT <tenths of a second>`
    TotalTimeout,
    /// `ONTIMEOUT <command line>`
    OnTimeout,
    /// `ONERROR <command line>`
    OnError,
    /// `INCLUDE <path>`
    Include,
    /// `SAY <text>`
    Say,
    /// `LOCALBOOT [type]`
    LocalBoot,
    /// `MENU LABEL <text>`
    MenuLabel,
    /// `MENU DEFAULT`
    MenuDefault,
    /// `MENU HIDE`
    MenuHide,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "default" => Keyword::Default,
            "label" => Keyword::Label,
            "kernel" | "linux" => Keyword::Kernel,
            "initrd" => Keyword::Initrd,
            "append" => Keyword::Append,
            "ipappend" | "sysappend" => Keyword::Ipappend,
            "prompt" => Keyword::Prompt,
            "timeout" => Keyword::Timeout,
            "totaltimeout" => Keyword::TotalTimeout,
            "ontimeout" => Keyword::OnTimeout,
            "onerror" => Keyword::OnError,
            "include" => Keyword::Include,
            "say" => Keyword::Say,
            "localboot" => Keyword::LocalBoot,
            _ => return None,
        })
    }
}

/// One normalised configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The keyword.
    pub keyword: Keyword,
    /// The argument: the rest of the line, leading and trailing blanks removed.
    pub arg: String,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits at the first blank: (word, rest with leading blanks removed).
fn split_word(s: &str) -> (&str, &str) {
    match s.find(is_blank) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_blank)),
        None => (s, ""),
    }
}

/// The blank-separated words of `s`.
pub fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_blank).filter(|w| !w.is_empty())
}

/// Parses a number: the leading decimal digits of `arg` (0 when there are
/// none), clamped to [`MAX_NUMBER`] when longer than 9 digits.
pub fn number(arg: &str) -> u32 {
    let digits: &str = &arg[..arg.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.len() > 9 {
        MAX_NUMBER
    } else {
        digits.parse().unwrap_or(0)
    }
}

/// Normalises one configuration file. Per line (split at LF): one trailing
/// CR removed; lines with a byte other than TAB or printable ASCII, or longer
/// than [`MAX_LINE`], ignored with a warning; blanks trimmed; empty lines and
/// lines starting with `#` skipped; the first word lower-cased is the keyword.
/// `MENU LABEL|DEFAULT|HIDE` are kept, other MENU lines silently ignored;
/// unknown keywords are ignored with a warning. `name` labels the warnings.
pub fn normalize(name: &str, bytes: &[u8], warnings: &mut Vec<String>) -> Vec<Directive> {
    let mut out = Vec::new();
    for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let lineno = n + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line
            .iter()
            .any(|&b| b != b'\t' && !(0x20..=0x7e).contains(&b))
        {
            warnings.push(format!(
                "{name}:{lineno}: ignoring line with non-printable bytes"
            ));
            continue;
        }
        if line.len() > MAX_LINE {
            warnings.push(format!(
                "{name}:{lineno}: ignoring line longer than {MAX_LINE} bytes"
            ));
            continue;
        }
        // Printable ASCII only, checked above.
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let text = text.trim_matches(is_blank);
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (word, rest) = split_word(text);
        let word = word.to_ascii_lowercase();
        if word == "menu" {
            let (sub, subarg) = split_word(rest);
            let keyword = match sub.to_ascii_lowercase().as_str() {
                "label" => Keyword::MenuLabel,
                "default" => Keyword::MenuDefault,
                "hide" => Keyword::MenuHide,
                _ => continue,
            };
            out.push(Directive {
                keyword,
                arg: subarg.to_string(),
            });
            continue;
        }
        match Keyword::from_word(&word) {
            Some(keyword) => out.push(Directive {
                keyword,
                arg: rest.to_string(),
            }),
            None => warnings.push(format!("{name}:{lineno}: ignoring unknown keyword {word}")),
        }
    }
    out
}

/// One LABEL block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Label {
    /// The label name (what DEFAULT, ONTIMEOUT and the prompt refer to).
    pub name: String,
    /// KERNEL/LINUX argument (path, then optional kernel options), last wins.
    pub kernel: Option<String>,
    /// INITRD argument (comma list), last wins.
    pub initrd: Option<String>,
    /// Per-label APPEND argument (`-` meaning none), last wins.
    pub append: Option<String>,
    /// Per-label IPAPPEND bits.
    pub ipappend: Option<u32>,
    /// LOCALBOOT was given.
    pub localboot: bool,
    /// MENU LABEL text.
    pub menu_label: Option<String>,
    /// MENU HIDE was given.
    pub hidden: bool,
    /// MENU DEFAULT was given.
    pub menu_default: bool,
}

/// A whole evaluated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Labels in file order.
    pub labels: Vec<Label>,
    /// DEFAULT command line (last non-empty one; an empty DEFAULT unsets it).
    pub default: Option<String>,
    /// Global APPEND (before the first LABEL; `APPEND -` = empty).
    pub global_append: String,
    /// Global IPAPPEND bits.
    pub global_ipappend: u32,
    /// PROMPT value.
    pub prompt: u32,
    /// TIMEOUT in tenths of a second (0 = none).
    pub timeout: u32,
    /// TOTALTIMEOUT in tenths of a second (0 = none).
    pub total_timeout: u32,
    /// ONTIMEOUT command line.
    pub ontimeout: Option<String>,
    /// ONERROR command line.
    pub onerror: Option<String>,
    /// SAY texts in order.
    pub say: Vec<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Config {
    /// Evaluates a flattened directive list (INCLUDE already spliced or
    /// dropped). Per-label keywords before the first LABEL are ignored with a
    /// warning (APPEND and IPAPPEND are global there instead).
    pub fn evaluate(directives: &[Directive], warnings: &mut Vec<String>) -> Config {
        let mut c = Config::default();
        for d in directives {
            let arg = d.arg.as_str();
            let cur = c.labels.last_mut();
            match (d.keyword, cur) {
                (Keyword::Default, _) => c.default = non_empty(arg),
                (Keyword::Label, _) => c.labels.push(Label {
                    name: arg.to_string(),
                    ..Label::default()
                }),
                (Keyword::Kernel, Some(l)) => l.kernel = non_empty(arg),
                (Keyword::Initrd, Some(l)) => l.initrd = Some(arg.to_string()),
                (Keyword::Append, Some(l)) => l.append = Some(arg.to_string()),
                (Keyword::Append, None) => {
                    c.global_append = if arg == "-" {
                        String::new()
                    } else {
                        arg.to_string()
                    }
                }
                (Keyword::Ipappend, Some(l)) => l.ipappend = Some(number(arg)),
                (Keyword::Ipappend, None) => c.global_ipappend = number(arg),
                (Keyword::Prompt, _) => c.prompt = number(arg),
                (Keyword::Timeout, _) => c.timeout = number(arg),
                (Keyword::TotalTimeout, _) => c.total_timeout = number(arg),
                (Keyword::OnTimeout, _) => c.ontimeout = non_empty(arg),
                (Keyword::OnError, _) => c.onerror = non_empty(arg),
                (Keyword::Say, _) => c.say.push(arg.to_string()),
                (Keyword::LocalBoot, Some(l)) => l.localboot = true,
                (Keyword::MenuLabel, Some(l)) => l.menu_label = Some(arg.to_string()),
                (Keyword::MenuDefault, Some(l)) => l.menu_default = true,
                (Keyword::MenuHide, Some(l)) => l.hidden = true,
                (Keyword::MenuLabel | Keyword::MenuDefault | Keyword::MenuHide, None) => {}
                (Keyword::Include, _) => {}
                (k, None) => warnings.push(format!("ignoring {k:?} outside a LABEL")),
            }
        }
        c
    }

    /// What boots without input: the first label with MENU DEFAULT; else the
    /// DEFAULT command line unless its first word names a `.c32` module;
    /// else the first label; else nothing.
    pub fn default_choice(&self) -> Choice {
        if let Some(i) = self.labels.iter().position(|l| l.menu_default) {
            return Choice::Label(i);
        }
        if let Some(d) = &self.default {
            let first = words(d).next().unwrap_or("");
            if !first.to_ascii_lowercase().ends_with(".c32") {
                return Choice::Command(d.clone());
            }
        }
        if self.labels.is_empty() {
            Choice::Nothing
        } else {
            Choice::Label(0)
        }
    }

    /// What boots when the prompt times out (or its input ends): ONTIMEOUT if
    /// set, else [`Config::default_choice`].
    pub fn timeout_choice(&self) -> Choice {
        match &self.ontimeout {
            Some(t) => Choice::Command(t.clone()),
            None => self.default_choice(),
        }
    }

    /// What boots for a line typed at the prompt: an empty line is the
    /// default choice, anything else a command line.
    pub fn typed_choice(&self, line: &str) -> Choice {
        let line = line.trim_matches(is_blank);
        if line.is_empty() {
            self.default_choice()
        } else {
            Choice::Command(line.to_string())
        }
    }

    /// The prompt wait in whole seconds: the smaller non-zero of TIMEOUT and
    /// TOTALTIMEOUT (tenths, rounded up); `None` = wait forever.
    pub fn prompt_seconds(&self) -> Option<u32> {
        let t = [self.timeout, self.total_timeout]
            .into_iter()
            .filter(|t| *t > 0)
            .min()?;
        Some(t.div_ceil(10))
    }

    /// Labels listed at the prompt (not MENU HIDE), in file order.
    pub fn visible_labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter().filter(|l| !l.hidden)
    }
}

/// What to boot, before it is turned into a [`BootEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A label by index.
    Label(usize),
    /// A command line: a label name (whole line, else first word) plus extra
    /// options, or a kernel path plus options.
    Command(String),
    /// Nothing configured.
    Nothing,
}

/// The network facts IPAPPEND needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// Client IP.
    pub ip: String,
    /// Boot server as used for transfers.
    pub server: String,
    /// Default gateway (may be empty).
    pub gateway: String,
    /// Netmask in dotted form.
    pub netmask: String,
    /// MAC, lower case, dash separated.
    pub mac_dashed: String,
}

/// A selected boot entry, paths not yet resolved against the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    /// Label name (empty for a bare kernel command line).
    pub label: String,
    /// Kernel path as written.
    pub kernel: String,
    /// Initrd paths as written, in order.
    pub initrd: Vec<String>,
    /// Final kernel command line (after IPAPPEND, without `initrd=` words).
    pub cmdline: String,
}

fn initrd_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim_matches(is_blank))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Turns a choice into a boot entry. The command line is the kernel options
/// (words after the KERNEL path), then the label APPEND (or the global one
/// when the label has none; `APPEND -` = none), then extra words typed after
/// the label name, then `ip=client:server:gw:netmask` (IPAPPEND bit 1) and
/// `BOOTIF=01-<mac>` (bit 2). Initrds: the INITRD list, else the last
/// `initrd=` word of that command line; `initrd=` words are always dropped.
/// Errors are the reasons the guest prints.
pub fn select(c: &Config, choice: &Choice, net: &NetInfo) -> Result<BootEntry, String> {
    let (label, kernel_arg, initrd, append, ipappend, extra): (
        String,
        String,
        Option<&str>,
        &str,
        u32,
        Vec<&str>,
    ) = match choice {
        Choice::Nothing => return Err("nothing to boot: no DEFAULT and no LABEL".to_string()),
        Choice::Label(i) => {
            let l = c
                .labels
                .get(*i)
                .ok_or_else(|| "nothing to boot: no DEFAULT and no LABEL".to_string())?;
            label_parts(c, l, Vec::new())?
        }
        Choice::Command(line) => {
            let line = line.trim_matches(is_blank);
            let whole = c.labels.iter().find(|l| l.name == line);
            let mut ws = words(line);
            let first = ws.next().unwrap_or("");
            let rest: Vec<&str> = ws.collect();
            if let Some(l) = whole {
                label_parts(c, l, Vec::new())?
            } else if let Some(l) = c.labels.iter().find(|l| l.name == first) {
                label_parts(c, l, rest)?
            } else if first.is_empty() {
                return Err("nothing to boot: no DEFAULT and no LABEL".to_string());
            } else {
                (
                    String::new(),
                    first.to_string(),
                    None,
                    c.global_append.as_str(),
                    c.global_ipappend,
                    rest,
                )
            }
        }
    };
    let mut kw = words(&kernel_arg);
    let kernel = kw.next().unwrap_or("").to_string();
    let mut cmd: Vec<String> = kw.map(str::to_string).collect();
    cmd.extend(words(append).map(str::to_string));
    cmd.extend(extra.iter().map(|s| s.to_string()));
    let mut initrds = initrd.map(initrd_list).unwrap_or_default();
    if initrds.is_empty() {
        if let Some(w) = cmd.iter().rev().find(|w| w.starts_with("initrd=")) {
            initrds = initrd_list(&w["initrd=".len()..]);
        }
    }
    cmd.retain(|w| !w.starts_with("initrd="));
    if ipappend & 1 != 0 {
        cmd.push(format!(
            "ip={}:{}:{}:{}",
            net.ip, net.server, net.gateway, net.netmask
        ));
    }
    if ipappend & 2 != 0 {
        cmd.push(format!("BOOTIF=01-{}", net.mac_dashed));
    }
    Ok(BootEntry {
        label,
        kernel,
        initrd: initrds,
        cmdline: cmd.join(" "),
    })
}

type Parts<'a> = (String, String, Option<&'a str>, &'a str, u32, Vec<&'a str>);

fn label_parts<'a>(c: &'a Config, l: &'a Label, extra: Vec<&'a str>) -> Result<Parts<'a>, String> {
    if l.localboot {
        return Err(format!("label {}: LOCALBOOT is not available", l.name));
    }
    let Some(kernel) = &l.kernel else {
        return Err(format!("label {} has no KERNEL", l.name));
    };
    let append = match l.append.as_deref() {
        Some("-") => "",
        Some(a) => a,
        None => c.global_append.as_str(),
    };
    Ok((
        l.name.clone(),
        kernel.clone(),
        l.initrd.as_deref(),
        append,
        l.ipappend.unwrap_or(c.global_ipappend),
        extra,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<String>) {
        let mut w = Vec::new();
        let d = normalize("t", text.as_bytes(), &mut w);
        (Config::evaluate(&d, &mut w), w)
    }

    fn net() -> NetInfo {
        NetInfo {
            ip: "10.0.2.15".into(),
            server: "10.0.2.2".into(),
            gateway: "10.0.2.2".into(),
            netmask: "255.255.255.0".into(),
            mac_dashed: "52-54-00-12-34-56".into(),
        }
    }

    #[test]
    fn normalisation_rules() {
        let mut w = Vec::new();
        let d = normalize(
            "t",
            b"  KeRnEl\t a b  \r\n# c\n\nfoo bar\nx\x01y\nMENU TITLE t\nmenu LABEL Hi there\n",
            &mut w,
        );
        assert_eq!(
            d,
            vec![
                Directive {
                    keyword: Keyword::Kernel,
                    arg: "a b".into()
                },
                Directive {
                    keyword: Keyword::MenuLabel,
                    arg: "Hi there".into()
                },
            ]
        );
        assert_eq!(w.len(), 2, "{w:?}");
        let long = format!("say {}\n", "x".repeat(MAX_LINE));
        assert!(normalize("t", long.as_bytes(), &mut w).is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(number("30"), 30);
        assert_eq!(number("3x"), 3);
        assert_eq!(number("x"), 0);
        assert_eq!(number("12345678901"), MAX_NUMBER);
    }

    #[test]
    fn label_with_global_append_and_ipappend() {
        let (c, _) = parse("APPEND root=/dev/ram0\nIPAPPEND 3\nDEFAULT linux\nLABEL linux\nKERNEL k opt=1\nINITRD a, b\n");
        let e = select(&c, &c.default_choice(), &net()).unwrap();
        assert_eq!(e.kernel, "k");
        assert_eq!(e.initrd, vec!["a", "b"]);
        assert_eq!(
            e.cmdline,
            "opt=1 root=/dev/ram0 ip=10.0.2.15:10.0.2.2:10.0.2.2:255.255.255.0 BOOTIF=01-52-54-00-12-34-56"
        );
    }

    #[test]
    fn append_dash_and_initrd_in_append() {
        let (c, _) = parse("APPEND g\nLABEL a\nKERNEL k\nAPPEND -\nLABEL b\nKERNEL k\nAPPEND x initrd=i1 initrd=i2,i3 y\n");
        assert_eq!(
            select(&c, &Choice::Command("a".into()), &net())
                .unwrap()
                .cmdline,
            ""
        );
        let b = select(&c, &Choice::Command("b extra".into()), &net()).unwrap();
        assert_eq!(b.initrd, vec!["i2", "i3"]);
        assert_eq!(b.cmdline, "x y extra");
    }

    #[test]
    fn choices() {
        let (c, _) = parse("DEFAULT vmlinuz a=b\nLABEL x\nKERNEL kx\n");
        let e = select(&c, &c.default_choice(), &net()).unwrap();
        assert_eq!(
            (e.label.as_str(), e.kernel.as_str(), e.cmdline.as_str()),
            ("", "vmlinuz", "a=b")
        );
        let (c, _) = parse("DEFAULT menu.c32\nPROMPT 1\nTIMEOUT 15\nONTIMEOUT y\nLABEL x\nKERNEL kx\nLABEL y\nMENU DEFAULT\nKERNEL ky\n");
        assert_eq!(c.default_choice(), Choice::Label(1));
        assert_eq!(c.timeout_choice(), Choice::Command("y".into()));
        assert_eq!(c.prompt_seconds(), Some(2));
        assert_eq!(c.typed_choice(" "), Choice::Label(1));
        let (c, _) = parse("");
        assert!(select(&c, &c.default_choice(), &net()).is_err());
        let (c, _) = parse("LABEL l\nLOCALBOOT 0\nLABEL n\n");
        assert!(select(&c, &Choice::Label(0), &net())
            .unwrap_err()
            .contains("LOCALBOOT"));
        assert!(select(&c, &Choice::Label(1), &net())
            .unwrap_err()
            .contains("no KERNEL"));
    }
}
