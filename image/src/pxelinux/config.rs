//! The PXELINUX configuration language: line normalisation (the same rules as
//! the guest's `config.awk` `normalize` mode), evaluation of the flattened
//! directive list into a [`Config`], the default / timeout / typed choices,
//! and the selection of a boot entry with its final command line
//! ([`select`]).
//!
//! The semantics are syslinux 6's `com32/elflink/ldlinux/readconfig.c`
//! (`parse_config_file`, `record`, `find_label`), `ldlinux.c` (`load_kernel`,
//! `parse_image_type`), `execute.c`, `kernel.c` (`new_linux_kernel`) and the
//! menu module's `com32/menu/readconfig.c` / `menumain.c`; the guest README
//! cites them rule by rule and lists where we choose differently.
//!
//! This module owns the language semantics only. It must not fetch anything:
//! INCLUDE is spliced by the caller ([`super::resolve`]), which also decides
//! what happens when a fetch fails.

use serde::Serialize;

/// Lines longer than this many bytes (after the cut at the first CR) are
/// ignored with a warning.
pub const MAX_LINE: usize = 4096;

/// Decimal numbers (PROMPT, TIMEOUT, TOTALTIMEOUT, IMPLICIT, ALLOWOPTIONS)
/// are clamped to ± this.
pub const MAX_NUMBER: i64 = 999_999_999;

/// What a LABEL's image is, from the keyword that named it (`readconfig.c`
/// `kernel_types`): `KERNEL` leaves it to the file name's extension
/// ([`image_type`]), `LINUX` forces a Linux kernel, the others name image
/// kinds that do not exist on s390x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelType {
    /// `KERNEL image` (type from the extension).
    Kernel,
    /// `LINUX image`.
    Linux,
    /// `LOCALBOOT type`.
    LocalBoot,
    /// `BOOT image` (boot sector).
    Boot,
    /// `BSS image`.
    Bss,
    /// `PXE image` (network bootstrap program).
    Pxe,
    /// `FDIMAGE image` (floppy image).
    FdImage,
    /// `COMBOOT image`.
    ComBoot,
    /// `COM32 image` (a syslinux module).
    Com32,
    /// `CONFIG file` (restart with another configuration).
    Config,
    /// `NONE`.
    None,
}

impl KernelType {
    const ALL: [(&'static str, KernelType); 11] = [
        ("none", KernelType::None),
        ("localboot", KernelType::LocalBoot),
        ("kernel", KernelType::Kernel),
        ("linux", KernelType::Linux),
        ("boot", KernelType::Boot),
        ("bss", KernelType::Bss),
        ("pxe", KernelType::Pxe),
        ("fdimage", KernelType::FdImage),
        ("comboot", KernelType::ComBoot),
        ("com32", KernelType::Com32),
        ("config", KernelType::Config),
    ];

    /// The keyword, lower case (also the guest's `k.<type>` directive).
    pub fn keyword(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("kernel", |(k, _)| k)
    }

    fn from_keyword(word: &str) -> Option<KernelType> {
        Self::ALL.iter().find(|(k, _)| *k == word).map(|(_, t)| *t)
    }
}

/// What an image file is by its name (`ldlinux.c` `parse_image_type`,
/// extensions compared case-sensitively): `.c32` a COM32 module, `.0` a PXE
/// bootstrap program, `.bss`/`.bs`/`.bin` boot sectors, anything else
/// (`.img` included: `execute.c` boots it with `new_linux_kernel`) Linux.
pub fn image_type(kernel: &str) -> KernelType {
    if kernel.ends_with(".c32") {
        KernelType::Com32
    } else if kernel.ends_with(".bss") {
        KernelType::Bss
    } else if kernel.ends_with(".bin") || kernel.ends_with(".bs") {
        KernelType::Boot
    } else if kernel.ends_with(".0") {
        KernelType::Pxe
    } else {
        KernelType::Linux
    }
}

/// A directive the client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `DEFAULT <command line>`
    Default,
    /// `UI <module> [options]`
    Ui,
    /// `LABEL <name>` (the first word only)
    Label,
    /// `KERNEL`/`LINUX`/`LOCALBOOT`/`COM32`/`CONFIG`/… `<image> [options]`
    Kernel(KernelType),
    /// `INITRD <path>[,<path>…]`
    Initrd,
    /// `APPEND <options>` or `APPEND -`
    Append,
    /// `IPAPPEND <bits>` or `SYSAPPEND <bits>`
    Ipappend,
    /// `PROMPT <n>`
    Prompt,
    /// `TIMEOUT <tenths of a second>`
    Timeout,
    /// `TOTALTIMEOUT <tenths of a second>`
    TotalTimeout,
    /// `ONTIMEOUT <command line>`
    OnTimeout,
    /// `ONERROR <command line>` (also `MENU ONERROR`)
    OnError,
    /// `INCLUDE <file> [tag]` / `MENU INCLUDE <file> [tag]` (file only)
    Include,
    /// `SAY <text>`
    Say,
    /// `IMPLICIT <n>`
    Implicit,
    /// `ALLOWOPTIONS <n>`
    AllowOptions,
    /// `MENU LABEL <text>`
    MenuLabel,
    /// `MENU DEFAULT`
    MenuDefault,
    /// `MENU HIDE`
    MenuHide,
    /// `MENU BEGIN [tag]` (also around an INCLUDE with a tag)
    MenuBegin,
    /// `MENU END`
    MenuEnd,
    /// `MENU SEPARATOR`
    MenuSeparator,
}

impl Keyword {
    /// The keywords whose argument is the rest of the line, blanks trimmed
    /// (the guest's `config.awk` list). LABEL, SAY, INCLUDE, TEXT and MENU
    /// take their argument differently and are matched in [`normalize`]
    /// before this is asked.
    fn from_word(word: &str) -> Option<Keyword> {
        if let Some(t) = KernelType::from_keyword(word) {
            return Some(Keyword::Kernel(t));
        }
        Some(match word {
            "default" => Keyword::Default,
            "ui" => Keyword::Ui,
            "initrd" => Keyword::Initrd,
            "append" => Keyword::Append,
            "ipappend" | "sysappend" => Keyword::Ipappend,
            "prompt" => Keyword::Prompt,
            "timeout" => Keyword::Timeout,
            "totaltimeout" => Keyword::TotalTimeout,
            "ontimeout" => Keyword::OnTimeout,
            "onerror" => Keyword::OnError,
            "implicit" => Keyword::Implicit,
            "allowoptions" => Keyword::AllowOptions,
            _ => return None,
        })
    }
}

/// One normalised configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The keyword.
    pub keyword: Keyword,
    /// The argument: the rest of the line, blanks around it removed (SAY:
    /// everything after `SAY` and one blank, as written).
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

/// `atoi`: an optional sign and the leading decimal digits of `arg` (0 when
/// there are none), clamped to ±[`MAX_NUMBER`].
pub fn number(arg: &str) -> i64 {
    let (neg, rest) = match arg.as_bytes().first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    let digits = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    let digits = digits.trim_start_matches('0');
    let v = if digits.len() > 9 {
        MAX_NUMBER
    } else {
        digits.parse().unwrap_or(0)
    };
    if neg {
        -v
    } else {
        v
    }
}

/// `strtoul(arg, NULL, 0)` truncated to 32 bits (IPAPPEND/SYSAPPEND): an
/// optional sign, then `0x` hexadecimal, `0` octal or decimal digits; a
/// negative value wraps, an overflow gives all bits.
pub fn bitmask(arg: &str) -> u32 {
    let (neg, rest) = match arg.as_bytes().first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    let b = rest.as_bytes();
    let (radix, digits) = if (rest.starts_with("0x") || rest.starts_with("0X"))
        && b.get(2).is_some_and(u8::is_ascii_hexdigit)
    {
        (16, &rest[2..])
    } else if rest.starts_with('0') {
        (8, rest)
    } else {
        (10, rest)
    };
    let mut v: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v * u64::from(radix) + u64::from(d);
        if v > u64::from(u32::MAX) {
            return u32::MAX;
        }
    }
    let v = v as u32;
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// A control byte: refused in a line (TAB is a blank; LF ends the line; CR
/// ends the line's text).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// `looking_at(line, "endtext")` after leading blanks: the word, in any
/// case, followed by a blank, a control byte or the end of the line.
fn is_endtext(line: &[u8]) -> bool {
    let start = line
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(line.len());
    let l = &line[start..];
    l.len() >= 7
        && l[..7].eq_ignore_ascii_case(b"endtext")
        && l.get(7).is_none_or(|&c| c <= b' ' || c == 0x7f)
}

/// Normalises one configuration file. Per line (split at LF): the text ends
/// at the first CR; lines between `TEXT` and `ENDTEXT` are skipped whole;
/// lines with a control byte, or longer than [`MAX_LINE`], are ignored with
/// a warning; other bytes (UTF-8) are kept (the model decodes them, invalid
/// sequences as U+FFFD); leading blanks skipped; empty lines and lines
/// starting with `#` skipped; the first word lower-cased is the keyword.
/// `MENU LABEL|DEFAULT|HIDE|BEGIN|END|SEPARATOR|INCLUDE|ONERROR` are kept,
/// other MENU lines silently ignored; unknown keywords are ignored with a
/// warning. `name` labels the warnings.
pub fn normalize(name: &str, bytes: &[u8], warnings: &mut Vec<String>) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut in_text = false;
    let d = |keyword: Keyword, arg: &str| Directive {
        keyword,
        arg: arg.to_string(),
    };
    for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let lineno = n + 1;
        let line = match raw.iter().position(|b| *b == b'\r') {
            Some(i) => &raw[..i],
            None => raw,
        };
        if in_text {
            in_text = !is_endtext(line);
            continue;
        }
        if line.iter().any(|&b| is_control(b)) {
            warnings.push(format!("{name}:{lineno}: ignoring line with control bytes"));
            continue;
        }
        if line.len() > MAX_LINE {
            warnings.push(format!(
                "{name}:{lineno}: ignoring line longer than {MAX_LINE} bytes"
            ));
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_start_matches(is_blank);
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (word, rest_raw) = split_word(text);
        let rest = rest_raw.trim_end_matches(is_blank);
        let word = word.to_ascii_lowercase();
        let include = |out: &mut Vec<Directive>, arg: &str| {
            let (file, tag) = split_word(arg);
            if !tag.is_empty() {
                out.push(d(Keyword::MenuBegin, tag));
            }
            out.push(d(Keyword::Include, file));
            if !tag.is_empty() {
                out.push(d(Keyword::MenuEnd, ""));
            }
        };
        match word.as_str() {
            "menu" => {
                let (sub, subarg) = split_word(rest);
                match sub.to_ascii_lowercase().as_str() {
                    "label" => out.push(d(Keyword::MenuLabel, subarg)),
                    "default" => out.push(d(Keyword::MenuDefault, "")),
                    "hide" => out.push(d(Keyword::MenuHide, "")),
                    "begin" => out.push(d(Keyword::MenuBegin, subarg)),
                    "end" => out.push(d(Keyword::MenuEnd, "")),
                    "separator" => out.push(d(Keyword::MenuSeparator, "")),
                    "onerror" => out.push(d(Keyword::OnError, subarg)),
                    "include" => include(&mut out, subarg),
                    _ => {}
                }
            }
            "text" => in_text = true,
            "include" => include(&mut out, rest),
            "say" => out.push(d(Keyword::Say, text.get(4..).unwrap_or(""))),
            "label" => out.push(d(Keyword::Label, split_word(rest).0)),
            w => match Keyword::from_word(w) {
                Some(keyword) => out.push(d(keyword, rest)),
                None => warnings.push(format!("{name}:{lineno}: ignoring unknown keyword {w}")),
            },
        }
    }
    out
}

/// One LABEL entry, as `readconfig.c` `record` leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// The label name: the first word after LABEL (what DEFAULT, ONTIMEOUT
    /// and the prompt refer to; compared case-sensitively).
    pub name: String,
    /// The image and its options: the last KERNEL/LINUX/… argument, else
    /// the label name.
    pub kernel: String,
    /// The keyword that named the image.
    pub kernel_type: KernelType,
    /// INITRD argument (comma list), last wins.
    pub initrd: Option<String>,
    /// The APPEND in effect: the label's own, else the global one when the
    /// entry was recorded (`-` means none).
    pub append: String,
    /// IPAPPEND/SYSAPPEND bits: the label's own, else the global value at
    /// the LABEL line.
    pub ipappend: u32,
    /// MENU LABEL text.
    pub menu_label: Option<String>,
    /// MENU HIDE was given.
    pub hidden: bool,
    /// MENU DEFAULT was given.
    pub menu_default: bool,
    /// Submenu depth (MENU BEGIN … MENU END); 0 is the top menu.
    pub depth: u32,
}

/// A whole evaluated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Labels in file order.
    pub labels: Vec<Label>,
    /// DEFAULT command line (last non-empty one).
    pub default: Option<String>,
    /// UI module command line (last non-empty one).
    pub ui: Option<String>,
    /// Global IPAPPEND/SYSAPPEND bits at the end of the file (bare kernel
    /// command lines use them).
    pub global_ipappend: u32,
    /// PROMPT ≠ 0.
    pub prompt: bool,
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
    /// IMPLICIT ≠ 0 (default): a command line that names no label boots
    /// its first word as a kernel image.
    pub implicit: bool,
    /// ALLOWOPTIONS ≠ 0 (default): a bare kernel command line keeps its
    /// options.
    pub allow_options: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            labels: Vec::new(),
            default: None,
            ui: None,
            global_ipappend: 0,
            prompt: false,
            timeout: 0,
            total_timeout: 0,
            ontimeout: None,
            onerror: None,
            say: Vec::new(),
            implicit: true,
            allow_options: true,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// How the client behaves without input, from DEFAULT and UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A UI directive, or a DEFAULT whose image is a `.c32` module: the menu
    /// decides (shown as the prompt, with the menu's default entry).
    Menu,
    /// DEFAULT is a command line (a label or a kernel image).
    Cli,
    /// Neither DEFAULT nor UI (syslinux waits at `boot:`; we choose).
    NoDefault,
}

impl Config {
    /// Evaluates a flattened directive list (INCLUDE already spliced or
    /// dropped), recording entries as `readconfig.c` does: an entry ends at
    /// the next LABEL, MENU BEGIN, MENU END, MENU SEPARATOR or the end;
    /// between an entry's end and the next LABEL, APPEND and IPAPPEND are
    /// global again, and the other entry keywords are ignored (warning).
    pub fn evaluate(directives: &[Directive], warnings: &mut Vec<String>) -> Config {
        struct Open {
            label: Label,
            own_append: Option<String>,
        }
        let mut c = Config::default();
        let mut cur: Option<Open> = None;
        let mut global_append: Option<String> = None;
        let mut depth: u32 = 0;
        let record = |cur: &mut Option<Open>, global: &Option<String>, labels: &mut Vec<Label>| {
            if let Some(mut o) = cur.take() {
                let a = o.own_append.or_else(|| global.clone()).unwrap_or_default();
                o.label.append = if a == "-" { String::new() } else { a };
                labels.push(o.label);
            }
        };
        for d in directives {
            let arg = d.arg.as_str();
            match d.keyword {
                Keyword::Label => {
                    record(&mut cur, &global_append, &mut c.labels);
                    cur = Some(Open {
                        label: Label {
                            name: arg.to_string(),
                            kernel: arg.to_string(),
                            kernel_type: KernelType::Kernel,
                            initrd: None,
                            append: String::new(),
                            ipappend: c.global_ipappend,
                            menu_label: None,
                            hidden: false,
                            menu_default: false,
                            depth,
                        },
                        own_append: None,
                    });
                }
                Keyword::MenuBegin | Keyword::MenuEnd | Keyword::MenuSeparator => {
                    record(&mut cur, &global_append, &mut c.labels);
                    match d.keyword {
                        Keyword::MenuBegin => depth += 1,
                        Keyword::MenuEnd => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                Keyword::Append => match &mut cur {
                    Some(o) => o.own_append = Some(arg.to_string()),
                    None => global_append = Some(arg.to_string()),
                },
                Keyword::Ipappend => match &mut cur {
                    Some(o) => o.label.ipappend = bitmask(arg),
                    None => c.global_ipappend = bitmask(arg),
                },
                Keyword::Default => c.default = non_empty(arg),
                Keyword::Ui => c.ui = non_empty(arg),
                Keyword::Prompt => c.prompt = number(arg) != 0,
                Keyword::Timeout => c.timeout = number(arg).max(0) as u32,
                Keyword::TotalTimeout => c.total_timeout = number(arg).max(0) as u32,
                Keyword::OnTimeout => c.ontimeout = non_empty(arg),
                Keyword::OnError => c.onerror = non_empty(arg),
                Keyword::Say => c.say.push(arg.to_string()),
                Keyword::Implicit => c.implicit = number(arg) != 0,
                Keyword::AllowOptions => c.allow_options = number(arg) != 0,
                Keyword::Include => {}
                k => match &mut cur {
                    Some(o) => match k {
                        Keyword::Kernel(t) => {
                            o.label.kernel = arg.to_string();
                            o.label.kernel_type = t;
                        }
                        Keyword::Initrd => o.label.initrd = Some(arg.to_string()),
                        Keyword::MenuLabel => o.label.menu_label = Some(arg.to_string()),
                        Keyword::MenuDefault => o.label.menu_default = true,
                        Keyword::MenuHide => o.label.hidden = true,
                        _ => {}
                    },
                    None => {
                        if !matches!(
                            k,
                            Keyword::MenuLabel | Keyword::MenuDefault | Keyword::MenuHide
                        ) {
                            warnings.push(format!("ignoring {k:?} outside a LABEL"));
                        }
                    }
                },
            }
        }
        record(&mut cur, &global_append, &mut c.labels);
        c
    }

    /// The first label named `word` (`readconfig.c` `find_label`: exact,
    /// case-sensitive; the first of duplicates).
    pub fn find_label(&self, word: &str) -> Option<usize> {
        self.labels.iter().position(|l| l.name == word)
    }

    /// Whether a command line's image is a `.c32` module (a UI).
    fn is_module(cmd: &str) -> bool {
        image_type(words(cmd).next().unwrap_or("")) == KernelType::Com32
    }

    /// How the client boots without input: a menu (UI, or a DEFAULT naming a
    /// `.c32` module), the DEFAULT command line, or neither.
    pub fn mode(&self) -> Mode {
        if self.ui.is_some() || self.default.as_deref().is_some_and(Self::is_module) {
            Mode::Menu
        } else if self.default.is_some() {
            Mode::Cli
        } else {
            Mode::NoDefault
        }
    }

    /// The menu's default entry (`com32/menu/readconfig.c` `parse_configs`,
    /// `record`): with a UI directive, the label DEFAULT names (its first
    /// word) unless hidden; else the last MENU DEFAULT of a visible
    /// top-level label; else the first visible top-level label.
    pub fn menu_default(&self) -> Choice {
        if self.ui.is_some() {
            let named = self
                .default
                .as_deref()
                .and_then(|d| self.find_label(words(d).next().unwrap_or("")));
            if let Some(i) = named.filter(|&i| !self.labels[i].hidden) {
                return Choice::Label(i);
            }
        }
        let top = |l: &&Label| l.depth == 0 && !l.hidden;
        let pick = self
            .labels
            .iter()
            .rposition(|l| top(&l) && l.menu_default)
            .or_else(|| self.labels.iter().position(|l| top(&l)));
        pick.map_or(Choice::Nothing, Choice::Label)
    }

    /// What boots without input: in [`Mode::Cli`] the DEFAULT command line,
    /// otherwise [`Config::menu_default`] (for [`Mode::NoDefault`] this is
    /// our choice; syslinux waits at `boot:`).
    pub fn default_choice(&self) -> Choice {
        match (self.mode(), &self.default) {
            (Mode::Cli, Some(d)) => Choice::Command(d.clone()),
            _ => self.menu_default(),
        }
    }

    /// Whether the client prompts: PROMPT ≠ 0, or a menu (which syslinux
    /// shows whatever PROMPT says).
    pub fn prompts(&self) -> bool {
        self.prompt || self.mode() == Mode::Menu
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

    /// The prompt's wait in tenths of a second: the smaller non-zero of
    /// TIMEOUT and TOTALTIMEOUT; `None` = wait forever.
    pub fn prompt_tenths(&self) -> Option<u32> {
        [self.timeout, self.total_timeout]
            .into_iter()
            .filter(|t| *t > 0)
            .min()
    }

    /// Labels listed at the prompt (not MENU HIDE), in file order.
    pub fn visible_labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter().filter(|l| !l.hidden)
    }
}

/// The prompt's wait as the guest prints it: `1.5s`, or `forever`.
pub fn wait_text(tenths: Option<u32>) -> String {
    match tenths {
        Some(t) => format!("{}.{}s", t / 10, t % 10),
        None => "forever".to_string(),
    }
}

/// What to boot, before it is turned into a [`BootEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A label by index.
    Label(usize),
    /// A command line: a label (its first word) plus extra options, or a
    /// kernel image plus options (IMPLICIT permitting).
    Command(String),
    /// The ONERROR command line: like [`Choice::Command`], but IMPLICIT does
    /// not apply (syslinux executes it directly).
    OnError(String),
    /// Nothing configured.
    Nothing,
}

/// The network facts SYSAPPEND needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// Client IP.
    pub ip: String,
    /// Boot server as used for transfers.
    pub server: String,
    /// Default gateway (empty: none).
    pub gateway: String,
    /// Netmask in dotted form (empty: none).
    pub netmask: String,
    /// MAC, lower case, dash separated.
    pub mac_dashed: String,
    /// The system UUID when valid (lower case), for SYSAPPEND 4.
    pub uuid: Option<String>,
}

/// The SYSAPPEND strings of `bits` (`core/sysappend.c`, `pxe.c` `genipopt`,
/// `make_bootif_string`): 1 `ip=<client>:<server>:<gateway>:<netmask>` (a
/// missing address as `0.0.0.0`), 2 `BOOTIF=01-<mac>`, 4 `SYSUUID=<uuid>`
/// (when the UUID is valid). The other bits (CPU, DMI, file system UUID)
/// have no source on s390x and add nothing.
pub fn sysappend(bits: u32, net: &NetInfo) -> Vec<String> {
    let or_zero = |s: &str| {
        if s.is_empty() {
            "0.0.0.0".to_string()
        } else {
            s.to_string()
        }
    };
    let mut out = Vec::new();
    if bits & 1 != 0 {
        out.push(format!(
            "ip={}:{}:{}:{}",
            or_zero(&net.ip),
            or_zero(&net.server),
            or_zero(&net.gateway),
            or_zero(&net.netmask)
        ));
    }
    if bits & 2 != 0 {
        out.push(format!("BOOTIF=01-{}", net.mac_dashed));
    }
    if bits & 4 != 0 {
        if let Some(u) = &net.uuid {
            out.push(format!("SYSUUID={u}"));
        }
    }
    out
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
    /// Final kernel command line (after SYSAPPEND, without `initrd=` words).
    pub cmdline: String,
}

fn initrd_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim_matches(is_blank))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// One word of the command line being built; the INITRD keyword's list
/// stays one item (`record` writes it as one `initrd=` word).
enum Word {
    Plain(String),
    Initrd(String),
}

const NOTHING: &str = "nothing to boot: no DEFAULT and no LABEL";

/// Turns a choice into a boot entry. A label's command line is, in
/// `record`'s order: the options after the image, the APPEND in effect, the
/// INITRD list (as `initrd=…`), its SYSAPPEND strings, then the words typed
/// after the label name. A bare kernel command line (`load_kernel` without a
/// label) keeps its options (unless ALLOWOPTIONS 0), then the global
/// SYSAPPEND strings; the global APPEND does not apply (`execute.c`,
/// `kernel.c` `new_linux_kernel`). The initrds are the first `initrd=` word
/// of that line (`new_linux_kernel`'s `strstr`), so an `initrd=` in APPEND
/// beats INITRD; every `initrd=` word is then removed (our choice). Errors
/// are the reasons the guest prints.
pub fn select(c: &Config, choice: &Choice, net: &NetInfo) -> Result<BootEntry, String> {
    let (label, kernel, mut line) = match choice {
        Choice::Nothing => return Err(NOTHING.to_string()),
        Choice::Label(i) => {
            let l = c.labels.get(*i).ok_or_else(|| NOTHING.to_string())?;
            label_words(l, "", net)?
        }
        Choice::Command(cmd) | Choice::OnError(cmd) => {
            let (first, rest) = split_word(cmd.trim_matches(is_blank));
            if first.is_empty() {
                return Err(NOTHING.to_string());
            }
            if let Some(i) = c.find_label(first) {
                label_words(&c.labels[i], rest, net)?
            } else if !c.implicit && !matches!(choice, Choice::OnError(_)) {
                return Err(format!(
                    "no label {first} (IMPLICIT 0: not booted as a kernel image)"
                ));
            } else {
                let t = image_type(first);
                if t != KernelType::Linux {
                    return Err(format!(
                        "{first}: {} images are not available on s390x",
                        t.keyword().to_ascii_uppercase()
                    ));
                }
                let mut line: Vec<Word> = Vec::new();
                if c.allow_options {
                    line.extend(words(rest).map(|w| Word::Plain(w.to_string())));
                }
                line.extend(
                    sysappend(c.global_ipappend, net)
                        .into_iter()
                        .map(Word::Plain),
                );
                (String::new(), first.to_string(), line)
            }
        }
    };
    let initrd = line
        .iter()
        .find_map(|w| match w {
            Word::Initrd(list) => Some(initrd_list(list)),
            Word::Plain(p) => p.strip_prefix("initrd=").map(initrd_list),
        })
        .unwrap_or_default();
    line.retain(|w| matches!(w, Word::Plain(p) if !p.starts_with("initrd=")));
    let cmdline: Vec<String> = line
        .into_iter()
        .filter_map(|w| match w {
            Word::Plain(p) => Some(p),
            Word::Initrd(_) => None,
        })
        .collect();
    Ok(BootEntry {
        label,
        kernel,
        initrd,
        cmdline: cmdline.join(" "),
    })
}

fn label_words(
    l: &Label,
    extra: &str,
    net: &NetInfo,
) -> Result<(String, String, Vec<Word>), String> {
    let (kernel, options) = split_word(l.kernel.trim_matches(is_blank));
    let t = match l.kernel_type {
        KernelType::Kernel => image_type(kernel),
        t => t,
    };
    match t {
        KernelType::Linux | KernelType::Kernel => {}
        KernelType::LocalBoot => {
            return Err(format!("label {}: LOCALBOOT is not available", l.name))
        }
        t => {
            return Err(format!(
                "label {}: {} images are not available on s390x",
                l.name,
                t.keyword().to_ascii_uppercase()
            ))
        }
    }
    if kernel.is_empty() {
        return Err(format!("label {} has an empty KERNEL", l.name));
    }
    let mut line: Vec<Word> = words(options)
        .chain(words(&l.append))
        .map(|w| Word::Plain(w.to_string()))
        .collect();
    if let Some(i) = &l.initrd {
        line.push(Word::Initrd(i.clone()));
    }
    line.extend(sysappend(l.ipappend, net).into_iter().map(Word::Plain));
    line.extend(words(extra).map(|w| Word::Plain(w.to_string())));
    Ok((l.name.clone(), kernel.to_string(), line))
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
            uuid: Some("550e8400-e29b-11d4-a716-446655441234".into()),
        }
    }

    fn entry(c: &Config, choice: Choice) -> BootEntry {
        select(c, &choice, &net()).unwrap()
    }

    #[test]
    fn normalisation_rules() {
        let mut w = Vec::new();
        let d = normalize(
            "t",
            b"  KeRnEl\t a b  \r\n# c\n\nfoo bar\nx\x01y\nMENU TITLE t\nmenu LABEL Hi there\nappend a\rb\nsay  two  \n",
            &mut w,
        );
        let arg = |k, a: &str| Directive {
            keyword: k,
            arg: a.into(),
        };
        assert_eq!(
            d,
            vec![
                arg(Keyword::Kernel(KernelType::Kernel), "a b"),
                arg(Keyword::MenuLabel, "Hi there"),
                arg(Keyword::Append, "a"),
                arg(Keyword::Say, " two  "),
            ]
        );
        assert_eq!(w.len(), 2, "{w:?}");
        let long = format!("say {}\n", "x".repeat(MAX_LINE));
        assert!(normalize("t", long.as_bytes(), &mut w).is_empty());
        let utf8 = normalize("t", "MENU LABEL Débian ✓\n".as_bytes(), &mut w);
        assert_eq!(utf8[0].arg, "Débian ✓");
    }

    #[test]
    fn text_blocks_are_skipped_whole() {
        let (c, w) = parse(
            "LABEL a\nTEXT HELP\nDefault boots the installer.\n  label b\nEndText\nKERNEL k\ntext\nx\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.labels.len(), 1);
        assert_eq!(c.labels[0].kernel, "k");
        assert_eq!(c.default, None);
    }

    #[test]
    fn numbers() {
        assert_eq!(number("30"), 30);
        assert_eq!(number("3x"), 3);
        assert_eq!(number("x"), 0);
        assert_eq!(number("-1"), -1);
        assert_eq!(number("+7"), 7);
        assert_eq!(number("12345678901"), MAX_NUMBER);
        assert_eq!(number("000000000000005"), 5);
        assert_eq!(bitmask("0x4"), 4);
        assert_eq!(bitmask("010"), 8);
        assert_eq!(bitmask("3abc"), 3);
        assert_eq!(bitmask("0x"), 0);
        assert_eq!(bitmask("-1"), u32::MAX);
        assert_eq!(bitmask("99999999999"), u32::MAX);
    }

    #[test]
    fn label_with_global_append_and_sysappend() {
        let (c, _) = parse("APPEND root=/dev/ram0\nIPAPPEND 7\nDEFAULT linux\nLABEL linux\nKERNEL k opt=1\nINITRD a, b\n");
        let e = entry(&c, c.default_choice());
        assert_eq!(e.kernel, "k");
        assert_eq!(e.initrd, vec!["a", "b"]);
        assert_eq!(
            e.cmdline,
            "opt=1 root=/dev/ram0 ip=10.0.2.15:10.0.2.2:10.0.2.2:255.255.255.0 BOOTIF=01-52-54-00-12-34-56 SYSUUID=550e8400-e29b-11d4-a716-446655441234"
        );
    }

    #[test]
    fn initrd_in_append_wins_and_typed_words_come_last() {
        let (c, _) = parse("APPEND g\nLABEL a\nKERNEL k\nAPPEND -\nLABEL b\nKERNEL k\nINITRD kw.img\nIPAPPEND 2\nAPPEND x initrd=i1 initrd=i2,i3 y\n");
        assert_eq!(entry(&c, Choice::Command("a".into())).cmdline, "");
        let b = entry(&c, Choice::Command("b extra initrd=typed".into()));
        assert_eq!(b.initrd, vec!["i1"]);
        assert_eq!(b.cmdline, "x y BOOTIF=01-52-54-00-12-34-56 extra");
    }

    #[test]
    fn record_semantics() {
        // APPEND after MENU END is global again, for later labels only
        let (c, _) = parse("LABEL a\nMENU BEGIN sub\nLABEL b\nMENU END\nAPPEND late\nLABEL c\n");
        let app: Vec<&str> = c.labels.iter().map(|l| l.append.as_str()).collect();
        assert_eq!(app, ["", "", "late"]);
        assert_eq!(c.labels[1].depth, 1);
        // a label without KERNEL boots the image named like the label
        assert_eq!(entry(&c, Choice::Label(2)).kernel, "c");
        // label names are the first word, compared case-sensitively
        let (c, _) = parse("DEFAULT my label\nLABEL my label\nKERNEL k1\nLABEL My\nKERNEL k2\n");
        assert_eq!(c.labels[0].name, "my");
        let e = entry(&c, c.default_choice());
        assert_eq!((e.label.as_str(), e.cmdline.as_str()), ("my", "label"));
        let e = entry(&c, Choice::Command("MY".into()));
        assert_eq!((e.label.as_str(), e.kernel.as_str()), ("", "MY"));
    }

    #[test]
    fn implicit_and_allowoptions() {
        let (c, _) = parse("APPEND g\nIPAPPEND 2\nDEFAULT vmlinuz a=b\nLABEL x\nKERNEL kx\n");
        let e = entry(&c, c.default_choice());
        assert_eq!(
            (e.label.as_str(), e.kernel.as_str(), e.cmdline.as_str()),
            ("", "vmlinuz", "a=b BOOTIF=01-52-54-00-12-34-56")
        );
        let (c, _) = parse("IMPLICIT 0\nALLOWOPTIONS 0\nDEFAULT vmlinuz a=b\nONERROR vm2 c=d\n");
        assert!(select(&c, &c.default_choice(), &net())
            .unwrap_err()
            .contains("IMPLICIT 0"));
        let e = entry(&c, Choice::OnError("vm2 c=d".into()));
        assert_eq!((e.kernel.as_str(), e.cmdline.as_str()), ("vm2", ""));
        assert!(select(&c, &Choice::Command("menu.c32".into()), &net()).is_err());
    }

    #[test]
    fn default_against_menu_default() {
        // DEFAULT names a label: it wins over MENU DEFAULT (no menu)
        let (c, _) = parse("DEFAULT a\nLABEL a\nKERNEL ka\nLABEL b\nMENU DEFAULT\nKERNEL kb\n");
        assert_eq!(c.mode(), Mode::Cli);
        assert_eq!(entry(&c, c.default_choice()).label, "a");
        assert!(!c.prompts());
        // UI + DEFAULT label: DEFAULT is the menu's default
        let (c, _) =
            parse("UI menu.c32\nDEFAULT a\nLABEL a\nKERNEL ka\nLABEL b\nMENU DEFAULT\nKERNEL kb\n");
        assert_eq!(c.mode(), Mode::Menu);
        assert_eq!(c.default_choice(), Choice::Label(0));
        assert!(c.prompts());
        // DEFAULT names a module: the last top-level visible MENU DEFAULT
        let (c, _) = parse("DEFAULT vesamenu.c32\nLABEL a\nMENU DEFAULT\nLABEL h\nMENU HIDE\nMENU DEFAULT\nLABEL b\nMENU DEFAULT\nMENU BEGIN s\nLABEL s\nMENU DEFAULT\nMENU END\n");
        assert_eq!(c.default_choice(), Choice::Label(2));
        // no DEFAULT: MENU DEFAULT, else the first visible top-level label
        let (c, _) = parse("LABEL h\nMENU HIDE\nLABEL a\nLABEL b\n");
        assert_eq!(c.mode(), Mode::NoDefault);
        assert_eq!(c.default_choice(), Choice::Label(1));
        let (c, _) = parse("TIMEOUT 15\nTOTALTIMEOUT 10\nONTIMEOUT y\nLABEL x\n");
        assert_eq!(c.timeout_choice(), Choice::Command("y".into()));
        assert_eq!(wait_text(c.prompt_tenths()), "1.0s");
        assert_eq!(wait_text(None), "forever");
        let (c, _) = parse("");
        assert!(select(&c, &c.default_choice(), &net()).is_err());
    }

    #[test]
    fn image_types() {
        let (c, _) = parse("LABEL l\nLOCALBOOT 0\nLABEL m\nKERNEL menu.c32\nLABEL n\nLINUX menu.c32\nLABEL cfg\nCONFIG other.cfg\nLABEL img\nKERNEL k.img\n");
        assert!(select(&c, &Choice::Label(0), &net())
            .unwrap_err()
            .contains("LOCALBOOT"));
        assert!(select(&c, &Choice::Label(1), &net())
            .unwrap_err()
            .contains("COM32"));
        assert_eq!(entry(&c, Choice::Label(2)).kernel, "menu.c32");
        assert!(select(&c, &Choice::Label(3), &net())
            .unwrap_err()
            .contains("CONFIG"));
        assert_eq!(entry(&c, Choice::Label(4)).kernel, "k.img");
    }

    #[test]
    fn boot_sector_and_pxe_extensions() {
        // each of `.bs` and `.bin` alone makes a boot sector
        assert_eq!(image_type("x.bs"), KernelType::Boot);
        assert_eq!(image_type("x.bin"), KernelType::Boot);
        assert_eq!(image_type("x.bss"), KernelType::Bss);
        assert_eq!(image_type("x.0"), KernelType::Pxe);
        assert_eq!(image_type("x.b"), KernelType::Linux);
        assert_eq!(image_type("x.BS"), KernelType::Linux);
        let (c, _) = parse("LABEL a\nKERNEL x.bs\nLABEL b\nKERNEL x.bin\nLABEL c\nLINUX x.bs\n");
        let err = |i| select(&c, &Choice::Label(i), &net()).unwrap_err();
        assert_eq!(err(0), "label a: BOOT images are not available on s390x");
        assert_eq!(err(1), "label b: BOOT images are not available on s390x");
        assert_eq!(entry(&c, Choice::Label(2)).kernel, "x.bs");
        assert_eq!(
            select(&c, &Choice::Command("boot.bs".into()), &net()).unwrap_err(),
            "boot.bs: BOOT images are not available on s390x"
        );
    }

    #[test]
    fn number_limits_and_bitmask_signs() {
        // nine digits are still exact; ten or more clamp
        assert_eq!(number("123456789"), 123_456_789);
        assert_eq!(number("-123456789"), -123_456_789);
        assert_eq!(number("1000000000"), MAX_NUMBER);
        assert_eq!(number("-1000000000"), -MAX_NUMBER);
        // strtoul: a leading `+` is accepted
        assert_eq!(bitmask("+7"), 7);
        assert_eq!(bitmask("+0x3"), 3);
        // exactly 2^32-1 is no overflow, so a `-` still negates it
        assert_eq!(bitmask("4294967295"), u32::MAX);
        assert_eq!(bitmask("0xffffffff"), u32::MAX);
        assert_eq!(bitmask("-4294967295"), 1);
        assert_eq!(bitmask("-0xfffffffe"), 2);
        // one more overflows: all bits, whatever the sign
        assert_eq!(bitmask("4294967296"), u32::MAX);
        assert_eq!(bitmask("-4294967296"), u32::MAX);
    }

    #[test]
    fn endtext_must_be_a_whole_word() {
        // ENDTEXT then the end, a blank, a control byte or DEL ends the block
        for end in [
            "ENDTEXT",
            "endtext trailing words",
            "  EndText\tx",
            "endtext\x01",
            "endtext\x7f",
        ] {
            let (c, w) = parse(&format!("TEXT HELP\n{end}\nLABEL a\n"));
            assert!(w.is_empty(), "{end:?}: {w:?}");
            assert_eq!(c.labels.len(), 1, "{end:?} ends the TEXT block");
        }
        // a longer word does not
        for word in [
            "endtextx",
            "ENDTEXT-",
            "endtext~",
            "endtext\u{e9}",
            "endtex",
        ] {
            let (c, _) = parse(&format!("TEXT HELP\n{word}\nLABEL a\n"));
            assert!(c.labels.is_empty(), "{word:?} does not end the TEXT block");
        }
    }

    #[test]
    fn warnings_name_the_file_and_the_line() {
        let mut w = Vec::new();
        let long = format!("say {}", "x".repeat(MAX_LINE));
        let text = format!("LABEL a\nx\x01y\nfoo bar\n{long}\n");
        normalize("pxelinux.cfg/default", text.as_bytes(), &mut w);
        assert_eq!(
            w,
            [
                "pxelinux.cfg/default:2: ignoring line with control bytes".to_string(),
                "pxelinux.cfg/default:3: ignoring unknown keyword foo".to_string(),
                format!("pxelinux.cfg/default:4: ignoring line longer than {MAX_LINE} bytes"),
            ]
        );
    }

    #[test]
    fn menu_separator_onerror_and_include() {
        let mut w = Vec::new();
        let d = normalize(
            "t",
            b"MENU SEPARATOR\nMENU ONERROR rescue x\nMENU INCLUDE sub.cfg Sub Menu\nmenu include plain.cfg\nMENU COLOR x\n",
            &mut w,
        );
        assert!(w.is_empty(), "{w:?}");
        let arg = |k, a: &str| Directive {
            keyword: k,
            arg: a.into(),
        };
        assert_eq!(
            d,
            vec![
                arg(Keyword::MenuSeparator, ""),
                arg(Keyword::OnError, "rescue x"),
                arg(Keyword::MenuBegin, "Sub Menu"),
                arg(Keyword::Include, "sub.cfg"),
                arg(Keyword::MenuEnd, ""),
                arg(Keyword::Include, "plain.cfg"),
            ]
        );
        // MENU SEPARATOR ends the entry: the APPEND after it is global again
        let (c, w) = parse("LABEL a\nMENU SEPARATOR\nAPPEND g\nLABEL b\n");
        assert!(w.is_empty(), "{w:?}");
        let app: Vec<&str> = c.labels.iter().map(|l| l.append.as_str()).collect();
        assert_eq!(app, ["", "g"]);
        // MENU ONERROR is ONERROR
        let (c, _) = parse("LABEL a\nMENU ONERROR rescue x\n");
        assert_eq!(c.onerror.as_deref(), Some("rescue x"));
    }

    #[test]
    fn menu_label_and_entry_keywords_outside_a_label() {
        // entry keywords before any LABEL are ignored, the MENU ones silently
        let (c, w) = parse(
            "INITRD i\nKERNEL k\nMENU LABEL lost\nMENU DEFAULT\nMENU HIDE\nLABEL a\nMENU LABEL ^Install\nLABEL b\n",
        );
        assert_eq!(
            w,
            [
                "ignoring Initrd outside a LABEL",
                "ignoring Kernel(Kernel) outside a LABEL"
            ]
        );
        let menu: Vec<Option<&str>> = c.labels.iter().map(|l| l.menu_label.as_deref()).collect();
        assert_eq!(menu, [Some("^Install"), None]);
        assert!(c.labels.iter().all(|l| !l.hidden && !l.menu_default));
        assert_eq!(c.labels[0].kernel, "a");
        assert_eq!(c.labels[0].initrd, None);
    }
}
