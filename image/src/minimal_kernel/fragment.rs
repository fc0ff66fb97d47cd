//! The minimal kernel's Kconfig fragment (`image/minimal-kernel/fragment.config`):
//! parsing its `CONFIG_X=v` and `# CONFIG_X is not set` lines and checking
//! that every one of them survived into a final `.config` (Kconfig silently
//! drops an option whose dependencies are unmet). Pure text: it must not run
//! make or touch files.

/// The fragment committed with the project, embedded so an installed binary
/// builds the same kernel.
pub const FRAGMENT: &str = include_str!("../../minimal-kernel/fragment.config");

/// One option the fragment sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Line of the fragment (1-based).
    pub line: usize,
    /// Option name with its `CONFIG_` prefix.
    pub name: String,
    /// The value (`y`, `"text"`, a number), or `None` for "is not set".
    pub value: Option<String>,
}

/// An option whose final value differs from the fragment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// What the fragment asked for.
    pub wanted: Setting,
    /// What `.config` has (`None`: unset or absent).
    pub found: Option<String>,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(v) => format!("={v}"),
            None => " unset".to_string(),
        };
        write!(
            f,
            "{} (fragment line {}: wanted{}, final .config has it{})",
            self.wanted.name,
            self.wanted.line,
            show(&self.wanted.value),
            show(&self.found)
        )
    }
}

/// Parses `text` in `.config` syntax. Lines that are neither settings nor
/// comments are errors naming their line.
pub fn parse(text: &str) -> Result<Vec<Setting>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                if name.starts_with("CONFIG_") && !name.contains(' ') {
                    out.push(Setting {
                        line: lineno,
                        name: name.to_string(),
                        value: None,
                    });
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) if name.starts_with("CONFIG_") && !value.is_empty() => {
                out.push(Setting {
                    line: lineno,
                    name: name.to_string(),
                    value: Some(value.to_string()),
                })
            }
            _ => return Err((lineno, format!("not a Kconfig setting: {raw:?}"))),
        }
    }
    Ok(out)
}

/// The value `config` (a final `.config`) gives `name`; `None` when unset or absent.
fn value_in(config: &str, name: &str) -> Option<String> {
    config.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_string)
    })
}

/// Every setting of `fragment` that `config` does not carry as asked.
pub fn dropped(fragment: &[Setting], config: &str) -> Vec<Dropped> {
    fragment
        .iter()
        .filter_map(|s| {
            let found = value_in(config, &s.name);
            let same = match (&s.value, &found) {
                (None, None) => true,
                // `=n` is how a fragment may also spell "not set".
                (Some(w), None) => w == "n",
                (Some(w), Some(f)) => w == f,
                (None, Some(f)) => f == "n",
            };
            (!same).then(|| Dropped {
                wanted: s.clone(),
                found,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_fragment_parses_and_asks_for_kexec_without_modules() {
        let s = parse(FRAGMENT).expect("fragment parses");
        let get = |n: &str| s.iter().find(|x| x.name == n).map(|x| x.value.clone());
        assert_eq!(get("CONFIG_KEXEC"), Some(Some("y".into())));
        assert_eq!(get("CONFIG_MODULES"), Some(None));
        assert_eq!(get("CONFIG_MEMORY_HOTPLUG"), Some(Some("y".into())));
        assert_eq!(
            get("CONFIG_LOCALVERSION"),
            Some(Some("\"-s390-pxelinux-minimal\"".into()))
        );
    }

    #[test]
    fn a_line_that_is_no_setting_is_an_error_naming_its_line() {
        let e = parse("CONFIG_A=y\nnonsense\n").unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("nonsense"), "{}", e.1);
    }

    #[test]
    fn dropped_names_options_kconfig_removed_or_changed() {
        let frag =
            parse("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\nCONFIG_D=y\n").unwrap();
        let config = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=\"z\"\n# CONFIG_D is not set\n";
        let d = dropped(&frag, config);
        let names: Vec<&str> = d.iter().map(|d| d.wanted.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_C", "CONFIG_D"]);
        assert_eq!(d[2].found, None);
        assert_eq!(
            d[2].to_string(),
            "CONFIG_D (fragment line 4: wanted=y, final .config has it unset)"
        );
        assert!(dropped(&frag, "CONFIG_A=y\nCONFIG_C=\"x\"\nCONFIG_D=y\n").is_empty());
    }

    #[test]
    fn a_prefix_of_another_option_is_not_confused_with_it() {
        let frag = parse("CONFIG_RD=y\n").unwrap();
        assert_eq!(dropped(&frag, "CONFIG_RD_GZIP=y\n").len(), 1);
    }
}
