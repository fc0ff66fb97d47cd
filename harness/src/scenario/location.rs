//! Where things are in a scenario file. A [`Key`] is a key path as data
//! (`step`, 2nd element, `expect`); a [`Locator`] holds the file's text and
//! its parsed document and turns a key into a byte span, a line, and a
//! [`HarnessError::Scenario`] with line, column and the offending line
//! under a marker. serde's own errors come with a span, and the key path
//! is read off the document at that span ([`Locator::key_at`]). Nothing
//! here reads a message to find out where it points; this module must not
//! validate anything.

use crate::HarnessError;
use std::ops::Range;
use std::path::Path;

type DeTable<'i> = toml::de::DeTable<'i>;
type DeValue<'i> = toml::de::DeValue<'i>;

/// One segment of a [`Key`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A table key.
    Name(String),
    /// An array element, 0-based.
    Index(usize),
}

/// A key path in a scenario document (`machine.mac`, `step` element 1
/// `expect`, `tftp."a b"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<Segment>);

impl Key {
    /// The top-level key `name`.
    pub fn new(name: &str) -> Key {
        Key(vec![Segment::Name(name.to_string())])
    }

    /// This key's table key `name`.
    pub fn name(mut self, name: &str) -> Key {
        self.0.push(Segment::Name(name.to_string()));
        self
    }

    /// This key's array element `i` (0-based).
    pub fn index(mut self, i: usize) -> Key {
        self.0.push(Segment::Index(i));
        self
    }
}

/// A key as messages write it: bare if it can be, else quoted.
fn key_text(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Messages name keys as `machine.mac`, `step 2 expect`, `tftp."a b"`:
/// array elements numbered from 1 after a space, the key after an element
/// after a space too.
impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut after_index = false;
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Name(n) => {
                    if i > 0 {
                        f.write_str(if after_index { " " } else { "." })?;
                    }
                    f.write_str(&key_text(n))?;
                    after_index = false;
                }
                Segment::Index(n) => {
                    write!(f, " {}", n + 1)?;
                    after_index = true;
                }
            }
        }
        Ok(())
    }
}

/// A scenario that does not validate: what is wrong, and the key it is
/// about (`None`: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key the message is about.
    pub key: Option<Key>,
    /// What is wrong (names the key for the reader).
    pub message: String,
}

impl Invalid {
    /// A problem with `key`.
    pub fn at(key: Key, message: impl Into<String>) -> Invalid {
        Invalid {
            key: Some(key),
            message: message.into(),
        }
    }

    /// A problem with the file as a whole.
    pub fn file(message: impl Into<String>) -> Invalid {
        Invalid {
            key: None,
            message: message.into(),
        }
    }
}

/// A scenario file's text, its parsed document (when it parses as TOML)
/// and its path, for turning keys into places.
pub struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    doc: Option<toml::Spanned<DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    /// Parses `text` as TOML (a syntax error leaves keys unlocated; serde
    /// reports it with its own span).
    pub fn new(path: &'a Path, text: &'a str) -> Locator<'a> {
        Locator {
            path,
            text,
            doc: DeTable::parse(text).ok(),
        }
    }

    /// The span of `key`'s value; for a key that is absent, the span of
    /// its longest present prefix (the table it is missing from).
    pub fn span(&self, key: &Key) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
        let mut table = Some(doc.get_ref());
        let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
        for seg in &key.0 {
            let next = match seg {
                Segment::Index(i) => array.and_then(|a| a.get(*i)),
                Segment::Name(n) => table.and_then(|t| t.get(n.as_str())),
            };
            let Some(next) = next else { break };
            current = Some(next);
            table = next.get_ref().as_table();
            array = next.get_ref().as_array().map(|a| &a[..]);
        }
        current.map(|v| v.span())
    }

    /// The 1-based line `key` is on.
    pub fn line(&self, key: &Key) -> Option<usize> {
        let span = self.span(key)?;
        let start = span.start.min(self.text.len());
        Some(self.text[..start].matches('\n').count() + 1)
    }

    /// The key path (`step 2 timeout`, `machine.mac`, `tftp."a b"`) of the
    /// innermost key or value at byte `offset`, as [`Key`] displays it.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        /// Appends the path to `offset` inside `v` (after `path`) if it is there.
        fn in_value(v: &DeValue<'_>, offset: usize, path: &mut String, sep: char) -> bool {
            let entries: Vec<(String, &toml::Spanned<DeValue<'_>>, _)> = match v {
                DeValue::Table(t) => t
                    .iter()
                    .map(|(k, v)| (key_text(k.get_ref()), v, Some(k.span())))
                    .collect(),
                DeValue::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1).to_string(), v, None))
                    .collect(),
                _ => return false,
            };
            // After an array element the next key follows a space (`step 2
            // expect`), after a table key a dot (`machine.mac`).
            let index = matches!(v, DeValue::Array(_));
            entries.into_iter().any(|(name, value, key_span)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push(if index { ' ' } else { sep });
                }
                path.push_str(&name);
                let next_sep = if index { ' ' } else { '.' };
                let found = key_span.is_some_and(|k| k.contains(&offset))
                    || in_value(value.get_ref(), offset, path, next_sep)
                    || value.span().contains(&offset);
                if !found {
                    path.truncate(len);
                }
                found
            })
        }
        let doc = self.doc.as_ref()?;
        let mut path = String::new();
        let root = DeValue::Table(doc.get_ref().clone());
        in_value(&root, offset, &mut path, '.').then_some(path)
    }

    /// A validation error, at its key.
    pub fn invalid(&self, e: Invalid) -> HarnessError {
        let span = e.key.as_ref().and_then(|k| self.span(k));
        self.error(span, e.message)
    }

    /// serde's error (a type, an unknown key, a syntax error) at its span,
    /// prefixed with the key found there; `replace` rewrites a message
    /// serde words for the deserializer rather than for the reader.
    pub fn serde(&self, e: &toml::de::Error, replace: (&str, &str)) -> HarnessError {
        let span = e.span();
        let message = e.message().trim().replace(replace.0, replace.1);
        let message = match span.as_ref().and_then(|s| self.key_at(s.start)) {
            Some(k) => format!("{k}: {message}"),
            None => message,
        };
        self.error(span, message)
    }

    /// A scenario error at `span` (if known): line and column, and the
    /// offending line with a marker under the span.
    fn error(&self, span: Option<Range<usize>>, message: String) -> HarnessError {
        let text = self.text;
        let Some(span) = span.filter(|s| s.start <= text.len()) else {
            return HarnessError::Scenario {
                path: self.path.to_path_buf(),
                at: None,
                message,
            };
        };
        let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_no = text[..span.start].matches('\n').count() + 1;
        let column = text[line_start..span.start].chars().count() + 1;
        let line = text[line_start..].lines().next().unwrap_or("");
        let width = text
            .get(span.start..span.end.min(line_start + line.len()).max(span.start))
            .map_or(1, |s| s.chars().count().max(1));
        let gutter = line_no.to_string().len();
        HarnessError::Scenario {
            path: self.path.to_path_buf(),
            at: Some((line_no, column)),
            message: format!(
                "{message}\n {line_no} | {line}\n {:gutter$} | {:>column$}",
                "",
                "^".repeat(width),
                column = column - 1 + width,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "description = 'd'\n[machine]\nmac = 'x'\n[tftp]\n\"a b\" = 'y'\n\
                        [[step]]\nexpect = 'one'\n[[step]]\nexpect = 'two'\ntimeout = 0\n";

    #[test]
    fn keys_display_as_messages_name_them() {
        assert_eq!(Key::new("machine").name("mac").to_string(), "machine.mac");
        assert_eq!(
            Key::new("step").index(1).name("timeout").to_string(),
            "step 2 timeout"
        );
        assert_eq!(Key::new("tftp").name("a b").to_string(), "tftp.\"a b\"");
        assert_eq!(Key::new("disk").index(0).to_string(), "disk 1");
    }

    #[test]
    fn keys_find_their_line_and_an_absent_key_its_table() {
        let l = Locator::new(Path::new("s.toml"), TEXT);
        assert_eq!(l.line(&Key::new("machine").name("mac")), Some(3));
        assert_eq!(l.line(&Key::new("tftp").name("a b")), Some(5));
        assert_eq!(l.line(&Key::new("step").index(1).name("timeout")), Some(10));
        assert_eq!(l.line(&Key::new("step").index(1).name("send")), Some(8));
        assert_eq!(l.line(&Key::new("nowhere")), None);
        let offset = TEXT.find("0\n").expect("timeout value");
        assert_eq!(l.key_at(offset).as_deref(), Some("step 2 timeout"));
    }
}
