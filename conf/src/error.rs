//! [`ConfigError`] and the mapping from byte offsets and toml/serde errors
//! to `file:line:col: key `path`: message`.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// One configuration error, pointing at the offending value (or key).
///
/// Displayed on one line as `FILE:LINE:COL: key `KEY`: MESSAGE`. `line` and
/// `column` are 1-based (the column counts characters). An error that has
/// no key (only I/O errors, and syntax errors outside any key) is displayed
/// as `FILE:LINE:COL: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key path with array indices, e.g. `ports[0].addresses[1]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The text being parsed and its name, to turn byte offsets into errors.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

impl Source<'_> {
    /// An error at byte `offset` of the text.
    pub fn error(
        &self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_col(self.text, offset);
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: clip(&key.into()),
            // One line, always, and short enough to read.
            message: clip(&one_line(&message.into())),
        }
    }

    /// An error at the start of `value`.
    pub fn at<T>(
        &self,
        value: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(value.span().start, key, message)
    }

    /// Where the value of top-level `key` starts, if the text has one.
    pub fn top_level_value_start(&self, key: &str) -> Option<usize> {
        let tree = toml::from_str::<SNode>(self.text).ok()?;
        let Node::Table(entries) = tree.node else {
            return None;
        };
        let (_, value) = entries.into_iter().find(|(k, _)| k.name == key)?;
        value.span.map(|s| s.start)
    }

    /// Translates a toml (syntax or serde) error.
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let raw = one_line(err.message());
        let tree = toml::from_str::<SNode>(self.text).ok();
        let Some(tree) = tree else {
            // Not even generic TOML: a syntax error. Recover the key from
            // the text around it.
            return self.error(span.start, guess_key(self.text, span.start), raw);
        };
        let kind = if raw.starts_with("invalid type: sequence") {
            Some(Kind::Array)
        } else if raw.starts_with("invalid type: map")
            || raw.starts_with("unknown field")
            || raw.starts_with("missing field")
        {
            Some(Kind::Table)
        } else {
            None
        };
        if let Some(rest) = raw.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or_default();
            // The span is the key's: find that key, or else the table
            // holding a key of that name around it.
            let key = find_key(&tree, &span, Some(name))
                .unwrap_or_else(|| join(&locate(&tree, &span, kind, Some(name)).path, name));
            let msg = format!("unknown key `{rest}");
            return self.error(span.start, key, msg);
        }
        if raw.starts_with("invalid type: string \"")
            && raw.ends_with("\", expected a borrowed string")
        {
            // toml::Spanned met a table made only of dotted keys
            // (`name.x = 1`); the span is the inner key's.
            let inner = find_key(&tree, &span, None).unwrap_or_default();
            let outer = inner.rsplit_once('.').map_or("", |(parent, _)| parent);
            return self.error(
                span.start,
                outer,
                "invalid type: table, expected a plain value",
            );
        }
        // A dotted-key table where a value belongs: toml points at the key.
        let located = match find_key(&tree, &span, None) {
            Some(path) => Located {
                path,
                is_datetime: false,
            },
            None => locate(&tree, &span, kind, None),
        };
        if let Some(rest) = raw.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            return self.error(
                span.start,
                join(&located.path, name),
                "missing required key",
            );
        }
        let msg = friendly_type_error(&raw, located.is_datetime);
        self.error(span.start, located.path, msg)
    }
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..]
        .trim_start_matches('\u{feff}')
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Longest message or key an error shows, in characters. Messages quote
/// the offending value (toml's own do too), and a value can be megabytes
/// long: its middle goes, so both the start of the value and the words
/// after it (what was expected) stay.
pub(crate) const SHOWN_MAX: usize = 1000;

pub(crate) fn clip(s: &str) -> String {
    let n = s.chars().count();
    if n <= SHOWN_MAX {
        return s.to_string();
    }
    let keep = SHOWN_MAX / 2;
    let head: String = s.chars().take(keep).collect();
    let tail_start = s.char_indices().nth(n - keep).map_or(s.len(), |(i, _)| i);
    let tail = &s[tail_start..];
    let elided = s.len() - head.len() - tail.len();
    format!("{head}[... {elided} bytes ...]{tail}")
}

fn one_line(s: &str) -> String {
    s.trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Rewords serde's Rust-flavoured type names into TOML ones.
fn friendly_type_error(msg: &str, is_datetime: bool) -> String {
    if let Some(rest) = msg.strip_prefix("invalid length ") {
        // A struct fed an array: serde reports the array's length.
        if let Some((_, expected)) = rest.split_once(", expected ") {
            return format!("invalid type: array, expected {expected}");
        }
    }
    let found = if is_datetime {
        "invalid type: datetime"
    } else {
        "invalid type: table"
    };
    msg.replace("invalid type: map", found)
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("floating point", "float")
}

/// A position-only view of any TOML document, used to find the key path
/// of the value a serde error points at.
struct SNode {
    /// `None` for a table that only exists through dotted keys or deeper
    /// headers: toml has no span for it.
    span: Option<Range<usize>>,
    node: Node,
}

enum Node {
    Table(Vec<(SKey, SNode)>),
    Array(Vec<SNode>),
    Datetime,
    Scalar,
}

/// Key toml uses to smuggle datetimes through serde.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

/// The private struct name and field names through which toml hands out
/// spans, read off [`toml::Spanned`]'s own `Deserialize` impl rather than
/// copied. They let [`SNode`] accept both spanned values and the unspanned
/// implicit tables on which `toml::Spanned` itself fails.
fn spanned_protocol() -> Option<(&'static str, &'static [&'static str])> {
    use serde::de::Error as _;
    type E = serde::de::value::Error;
    struct Recorder<'a>(&'a mut Option<(&'static str, &'static [&'static str])>);
    impl<'de> Deserializer<'de> for Recorder<'_> {
        type Error = E;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, E> {
            Err(E::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, E> {
            *self.0 = Some((name, fields));
            Err(E::custom("recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut out = None;
    let _ = Spanned::<()>::deserialize(Recorder(&mut out));
    out.filter(|(_, fields)| fields.len() == 3)
}

impl<'de> Deserialize<'de> for SNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SNode, D::Error> {
        use serde::de::Error as _;
        let (name, fields) =
            spanned_protocol().ok_or_else(|| D::Error::custom("toml spans unavailable"))?;
        d.deserialize_struct(
            name,
            fields,
            SNodeVisitor {
                start_key: fields[0],
            },
        )
    }
}

/// Accepts `{start, end, value}` from toml's span protocol, or a plain map:
/// the unspanned table.
struct SNodeVisitor {
    start_key: &'static str,
}

impl<'de> Visitor<'de> for SNodeVisitor {
    type Value = SNode;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SNode, A::Error> {
        let Some(first) = map.next_key::<SKey>()? else {
            return Ok(SNode {
                span: None,
                node: Node::Table(Vec::new()),
            });
        };
        if first.span.is_none() && first.name == self.start_key {
            let start: usize = map.next_value()?;
            map.next_key::<String>()?;
            let end: usize = map.next_value()?;
            map.next_key::<String>()?;
            let node: Node = map.next_value()?;
            return Ok(SNode {
                span: Some(start..end),
                node,
            });
        }
        let node = table_entries(first, map)?;
        Ok(SNode { span: None, node })
    }
}

/// A table key and, when toml knows it, its span.
struct SKey {
    name: String,
    span: Option<Range<usize>>,
}

impl<'de> Deserialize<'de> for SKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SKey, D::Error> {
        use serde::de::Error as _;
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = SKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, s: &str) -> Result<SKey, E> {
                Ok(SKey {
                    name: s.to_string(),
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SKey, A::Error> {
                map.next_key::<String>()?;
                let start: usize = map.next_value()?;
                map.next_key::<String>()?;
                let end: usize = map.next_value()?;
                map.next_key::<String>()?;
                let name: String = map.next_value()?;
                Ok(SKey {
                    name,
                    span: Some(start..end),
                })
            }
        }
        let (name, fields) =
            spanned_protocol().ok_or_else(|| D::Error::custom("toml spans unavailable"))?;
        d.deserialize_struct(name, fields, KeyVisitor)
    }
}

/// The rest of a map whose first key has been read.
fn table_entries<'de, A: MapAccess<'de>>(first: SKey, mut map: A) -> Result<Node, A::Error> {
    if first.name == TOML_DATETIME_KEY {
        map.next_value::<serde::de::IgnoredAny>()?;
        return Ok(Node::Datetime);
    }
    let mut entries = vec![(first, map.next_value::<SNode>()?)];
    while let Some(key) = map.next_key::<SKey>()? {
        let value = map.next_value::<SNode>()?;
        entries.push((key, value));
    }
    Ok(Node::Table(entries))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<SNode>()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                match map.next_key::<SKey>()? {
                    None => Ok(Node::Table(Vec::new())),
                    Some(first) => table_entries(first, map),
                }
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Array,
}

impl Node {
    fn kind(&self) -> Option<Kind> {
        match self {
            Node::Table(_) => Some(Kind::Table),
            Node::Array(_) => Some(Kind::Array),
            Node::Datetime | Node::Scalar => None,
        }
    }
}

struct Located {
    path: String,
    is_datetime: bool,
}

/// The key path of the smallest value whose span contains `span`. On ties
/// (`[[ports]]` spans both the array and its element) a node of the `kind`
/// the error talks about wins, then the deepest. Tables written as
/// `[headers]` do not nest textually inside their parents, hence the search
/// over every node rather than a descent. With `holding`, only tables that
/// have a key of that name qualify (the root always does).
fn locate(root: &SNode, span: &Range<usize>, kind: Option<Kind>, holding: Option<&str>) -> Located {
    let mut best = Located {
        path: String::new(),
        is_datetime: false,
    };
    let mut best_len = usize::MAX;
    let mut best_rank = (false, 0);
    let mut stack: Vec<(String, usize, &SNode)> = vec![(String::new(), 0, root)];
    while let Some((path, depth, node)) = stack.pop() {
        let holds = |key: &str| matches!(&node.node, Node::Table(e) if e.iter().any(|(k, _)| k.name == key));
        let contains = |s: &Range<usize>| s.start <= span.start && span.end <= s.end;
        if let Some(s) = node
            .span
            .as_ref()
            .filter(|s| depth > 0 && contains(s) && holding.is_none_or(holds))
        {
            let len = s.end - s.start;
            let rank = (kind.is_some() && node.node.kind() == kind, depth);
            if len < best_len || (len == best_len && rank > best_rank) {
                best_len = len;
                best_rank = rank;
                best = Located {
                    path: path.clone(),
                    is_datetime: matches!(node.node, Node::Datetime),
                };
            }
        }
        match &node.node {
            Node::Table(entries) => {
                for (key, value) in entries {
                    stack.push((join(&path, &key.name), depth + 1, value));
                }
            }
            Node::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}[{i}]"), depth + 1, item));
                }
            }
            Node::Datetime | Node::Scalar => {}
        }
    }
    best
}

/// The path of the key (named `name`, if given) written exactly at `span`.
fn find_key(root: &SNode, span: &Range<usize>, name: Option<&str>) -> Option<String> {
    let mut stack: Vec<(String, &SNode)> = vec![(String::new(), root)];
    while let Some((path, node)) = stack.pop() {
        match &node.node {
            Node::Table(entries) => {
                for (key, value) in entries {
                    let here = join(&path, &key.name);
                    if name.is_none_or(|n| n == key.name) && key.span.as_ref() == Some(span) {
                        return Some(here);
                    }
                    stack.push((here, value));
                }
            }
            Node::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}[{i}]"), item));
                }
            }
            Node::Datetime | Node::Scalar => {}
        }
    }
    None
}

/// Best-effort key path for a syntax error at `offset`: the last table
/// header before it (with array-of-tables indices) plus the key of the
/// nearest `key = ...` line at or above it.
pub(crate) fn guess_key(text: &str, offset: usize) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut header = String::new();
    let mut key: Option<String> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if line_start > offset {
            break;
        }
        line_start += line.len();
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split(']').next()) {
            let name = normalise_dotted(name);
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name.clone(), 1)),
            }
            header = indexed_path(&name, &counts);
            key = None;
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            header = indexed_path(&normalise_dotted(name), &counts);
            key = None;
        } else if let Some((k, _)) = t.split_once('=') {
            let k = k.trim();
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
            {
                key = Some(normalise_dotted(k));
            }
        }
    }
    match key {
        Some(k) => join(&header, &k),
        None => header,
    }
}

fn normalise_dotted(s: &str) -> String {
    s.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

fn indexed_path(name: &str, counts: &[(String, usize)]) -> String {
    let mut out = String::new();
    let mut prefix = String::new();
    for seg in name.split('.') {
        prefix = join(&prefix, seg);
        out = join(&out, seg);
        if let Some((_, c)) = counts.iter().find(|(n, _)| *n == prefix) {
            out = format!("{out}[{}]", c - 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based_and_counts_chars() {
        let t = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, t.find("\"x").unwrap()), (2, 6));
        assert_eq!(line_col(t, 10_000), (3, 1));
    }

    #[test]
    fn long_messages_and_keys_lose_their_middle() {
        let long = format!("bad \"{}\" (expected x)", "é".repeat(1 << 20));
        let c = clip(&long);
        assert_eq!(
            c.chars().count(),
            SHOWN_MAX + "[... 2095190 bytes ...]".len()
        );
        assert!(c.starts_with("bad \"ééé"), "{c}");
        assert!(c.ends_with("éé\" (expected x)"), "{c}");
        assert!(c.contains("[... 2095190 bytes ...]"), "{c}");
        let short = "a".repeat(SHOWN_MAX);
        assert_eq!(clip(&short), short);
    }

    #[test]
    fn display_with_and_without_key() {
        let mut e = ConfigError {
            file: "f.toml".into(),
            line: 3,
            column: 7,
            key: "ports[0].mtu".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "f.toml:3:7: key `ports[0].mtu`: bad");
        e.key.clear();
        assert_eq!(e.to_string(), "f.toml:3:7: bad");
    }

    #[test]
    fn toml_span_protocol_is_found() {
        let (name, fields) = spanned_protocol().expect("toml::Spanned uses deserialize_struct");
        assert!(!name.is_empty());
        assert_eq!(fields.len(), 3);
    }

    #[test]
    fn guess_key_follows_headers() {
        let t = "[eal]\nmain_lcore = 1\n[[ports]]\nname = \"a\"\n[[ports]]\nname = \"b\n[ports.exception]\n";
        assert_eq!(guess_key(t, t.find("\"b").unwrap()), "ports[1].name");
        assert_eq!(guess_key(t, t.find("main").unwrap()), "eal.main_lcore");
        assert_eq!(guess_key(t, t.len() - 2), "ports[1].exception");
        assert_eq!(guess_key("x", 0), "");
        assert_eq!(guess_key("[[ports]\n", 3), "ports[0]");
    }
}
