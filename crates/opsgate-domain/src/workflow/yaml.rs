//! YAML for workflow files: one pass of saphyr-parser events into a tree that knows where every
//! value came from, and a serde `Deserializer` over that tree, so the typed structs carry
//! locations ([`Located`]) and unknown keys can be found in the same tree.
//!
//! Hostile input is bounded: nesting depth, the number of nodes (aliases count as copies), and
//! one document per file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};

use super::Problem;

/// Deepest nesting of mappings and sequences accepted.
const MAX_DEPTH: usize = 64;
/// Most nodes one file may expand to, aliases included.
const MAX_TREE_NODES: usize = 1_000_000;

/// A value with the 1-based line and column it starts at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Located<T> {
    pub value: T,
    pub line: u32,
    pub col: u32,
}

/// One node of the document.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    pub kind: Kind<'a>,
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone)]
pub(super) enum Kind<'a> {
    Map(Vec<(Node<'a>, Node<'a>)>),
    Seq(Vec<Node<'a>>),
    /// Text, and whether it was written plain (unquoted), which is when `true`, `12` or `~` mean more than text.
    Scalar(Cow<'a, str>, bool),
}

impl Node<'_> {
    /// The text of a scalar key or value.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, true) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }

    fn what(&self) -> &'static str {
        match &self.kind {
            Kind::Map(_) => "a mapping",
            Kind::Seq(_) => "a list",
            Kind::Scalar(..) if self.is_null() => "nothing",
            Kind::Scalar(..) => "a scalar",
        }
    }
}

fn position(span: &Span) -> (u32, u32) {
    let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX).max(1);
    let col = u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX);
    (line, col)
}

fn problem((line, col): (u32, u32), message: impl Into<String>) -> Problem {
    Problem {
        line,
        col,
        message: message.into(),
    }
}

enum Frame<'a> {
    Map {
        at: (u32, u32),
        anchor: usize,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
    },
    Seq {
        at: (u32, u32),
        anchor: usize,
        items: Vec<Node<'a>>,
    },
}

/// Parses one YAML document into a tree. A syntax error ends parsing (`Err`); duplicate keys are
/// reported in the returned list and the first value is kept.
pub(super) fn load(source: &str) -> Result<(Node<'_>, Vec<Problem>), Problem> {
    let mut problems = Vec::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut anchors: HashMap<usize, Node<'_>> = HashMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for item in Parser::new_from_str(source) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            problem(
                (
                    u32::try_from(m.line()).unwrap_or(u32::MAX).max(1),
                    u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
                ),
                e.info().to_owned(),
            )
        })?;
        let at = position(&span);
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(problem(
                        at,
                        "a workflow file holds one YAML document; remove the second `---`",
                    ));
                }
                None
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(problem(
                        at,
                        format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        at,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                } else {
                    Frame::Seq {
                        at,
                        anchor,
                        items: Vec::new(),
                    }
                });
                None
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(Frame::Map {
                    at,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        kind: Kind::Map(entries),
                        line: at.0,
                        col: at.1,
                    },
                    anchor,
                )),
                Some(Frame::Seq { at, anchor, items }) => Some((
                    Node {
                        kind: Kind::Seq(items),
                        line: at.0,
                        col: at.1,
                    },
                    anchor,
                )),
                None => None,
            },
            Event::Scalar(text, style, anchor, _) => Some((
                Node {
                    kind: Kind::Scalar(text, style == ScalarStyle::Plain),
                    line: at.0,
                    col: at.1,
                },
                anchor,
            )),
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => {
                    nodes += count(node);
                    let mut copy = node.clone();
                    copy.line = at.0;
                    copy.col = at.1;
                    Some((copy, 0))
                }
                None => return Err(problem(at, "alias to an unknown anchor")),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = done else { continue };
        nodes += 1;
        if nodes > MAX_TREE_NODES {
            return Err(problem(
                at,
                format!("the document expands to more than {MAX_TREE_NODES} values"),
            ));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let text = k.text().unwrap_or_default();
                    if !text.is_empty() && entries.iter().any(|(e, _)| e.text() == Some(text)) {
                        problems.push(problem((k.line, k.col), format!("duplicate key '{text}'")));
                    } else {
                        // A mapping is located at its key (`approval:`), where a person looks for
                        // it, rather than at its first entry on the next line.
                        let mut node = node;
                        if matches!(node.kind, Kind::Map(_)) {
                            (node.line, node.col) = (k.line, k.col);
                        }
                        entries.push((k, node));
                    }
                }
            },
        }
    }
    let root = root.unwrap_or(Node {
        kind: Kind::Scalar(Cow::Borrowed(""), true),
        line: 1,
        col: 1,
    });
    Ok((root, problems))
}

fn count(node: &Node<'_>) -> usize {
    match &node.kind {
        Kind::Map(entries) => {
            entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
                + 1
        }
        Kind::Seq(items) => items.iter().map(count).sum::<usize>() + 1,
        Kind::Scalar(..) => 1,
    }
}

/// A deserialization error, located once a node is known.
#[derive(Debug)]
pub(super) struct DeError {
    pub message: String,
    pub at: Option<(u32, u32)>,
}

impl DeError {
    fn at(self, node: &Node<'_>) -> Self {
        Self {
            at: self.at.or(Some((node.line, node.col))),
            ..self
        }
    }

    pub fn into_problem(self) -> Problem {
        problem(self.at.unwrap_or((1, 1)), self.message)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            at: None,
        }
    }
}

const LOCATED: &str = "$opsgate::Located";
const LOCATED_FIELDS: &[&str] = &["$line", "$col", "$value"];

/// The keys `Located<T>` is fed, read without allocating.
enum LocatedField {
    Line,
    Col,
    Value,
}

impl<'de> Deserialize<'de> for LocatedField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = LocatedField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("$line, $col or $value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LocatedField, E> {
                Ok(match v {
                    "$line" => LocatedField::Line,
                    "$col" => LocatedField::Col,
                    _ => LocatedField::Value,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
                let mut line = 0;
                let mut col = 0;
                let mut value = None;
                while let Some(key) = map.next_key::<LocatedField>()? {
                    match key {
                        LocatedField::Line => line = map.next_value()?,
                        LocatedField::Col => col = map.next_value()?,
                        LocatedField::Value => value = Some(map.next_value()?),
                    }
                }
                let value =
                    value.ok_or_else(|| de::Error::custom("located value without a value"))?;
                Ok(Located { value, line, col })
            }
        }
        deserializer.deserialize_struct(
            LOCATED,
            LOCATED_FIELDS,
            LocatedVisitor(std::marker::PhantomData),
        )
    }
}

/// Deserializes typed values out of a [`Node`].
pub(super) struct NodeDeserializer<'a, 'src>(pub &'a Node<'src>);

impl<'a> NodeDeserializer<'a, '_> {
    fn scalar(&self) -> Result<&'a str, DeError> {
        match &self.0.kind {
            Kind::Scalar(s, _) => Ok(s),
            _ => Err(de::Error::custom(format!(
                "expected a single value, found {}",
                self.0.what()
            ))),
        }
    }

    fn number<N: std::str::FromStr>(&self, what: &str) -> Result<N, DeError> {
        let text = self.scalar()?;
        text.trim()
            .replace('_', "")
            .parse()
            .map_err(|_| de::Error::custom(format!("expected {what}, found '{text}'")))
    }
}

macro_rules! numbers {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.number($what).map_err(|e| e.at(self.0))?;
            visitor.$visit::<DeError>(n).map_err(|e| e.at(self.0))
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDeserializer<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Map(entries) => visitor.visit_map(Entries {
                entries,
                next: 0,
                value: None,
            }),
            Kind::Seq(items) => visitor.visit_seq(Items { items, next: 0 }),
            Kind::Scalar(_, true) if node.is_null() => visitor.visit_unit(),
            Kind::Scalar(s, true) => match s.as_ref() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                _ => match (s.parse::<u64>(), s.parse::<i64>()) {
                    (Ok(n), _) => visitor.visit_u64(n),
                    (_, Ok(n)) => visitor.visit_i64(n),
                    _ => visitor.visit_str(s),
                },
            },
            Kind::Scalar(s, false) => visitor.visit_str(s),
        };
        result.map_err(|e| e.at(node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = match self.scalar().map_err(|e| e.at(self.0))? {
            "true" | "True" | "TRUE" => true,
            "false" | "False" | "FALSE" => false,
            other => {
                return Err(<DeError as de::Error>::custom(format!(
                    "expected true or false, found '{other}'"
                ))
                .at(self.0));
            }
        };
        visitor
            .visit_bool::<DeError>(value)
            .map_err(|e| e.at(self.0))
    }

    numbers! {
        deserialize_u8 => visit_u8: u8, "a whole number";
        deserialize_u16 => visit_u16: u16, "a whole number";
        deserialize_u32 => visit_u32: u32, "a whole number";
        deserialize_u64 => visit_u64: u64, "a whole number";
        deserialize_i8 => visit_i8: i8, "a whole number";
        deserialize_i16 => visit_i16: i16, "a whole number";
        deserialize_i32 => visit_i32: i32, "a whole number";
        deserialize_i64 => visit_i64: i64, "a whole number";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.scalar().map_err(|e| e.at(self.0))?;
        visitor.visit_str::<DeError>(text).map_err(|e| e.at(self.0))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Seq(items) => visitor.visit_seq(Items { items, next: 0 }),
            _ if node.is_null() => visitor.visit_seq(Items {
                items: &[],
                next: 0,
            }),
            _ => Err(<DeError as de::Error>::custom(format!(
                "expected a list, found {}",
                node.what()
            ))),
        };
        result.map_err(|e| e.at(node))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Map(entries) => visitor.visit_map(Entries {
                entries,
                next: 0,
                value: None,
            }),
            _ if node.is_null() => visitor.visit_map(Entries {
                entries: &[],
                next: 0,
                value: None,
            }),
            _ => Err(<DeError as de::Error>::custom(format!(
                "expected a mapping, found {}",
                node.what()
            ))),
        };
        result.map_err(|e| e.at(node))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == LOCATED {
            return visitor.visit_map(LocatedAccess {
                node: self.0,
                step: 0,
            });
        }
        let _ = fields;
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let text = self.scalar().map_err(|e| e.at(self.0))?;
        visitor
            .visit_enum(text.into_deserializer())
            .map_err(|e: DeError| e.at(self.0))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! { char bytes byte_buf unit unit_struct tuple tuple_struct i128 u128 }
}

struct Items<'a, 'src> {
    items: &'a [Node<'src>],
    next: usize,
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(NodeDeserializer(item)).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

struct Entries<'a, 'src> {
    entries: &'a [(Node<'src>, Node<'src>)],
    next: usize,
    value: Option<&'a Node<'src>>,
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        self.value = Some(value);
        seed.deserialize(NodeDeserializer(key)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(NodeDeserializer(value))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

/// Feeds `Located<T>`'s visitor the node's line, column and value.
struct LocatedAccess<'a, 'src> {
    node: &'a Node<'src>,
    step: usize,
}

impl<'de> MapAccess<'de> for LocatedAccess<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(&key) = LOCATED_FIELDS.get(self.step) else {
            return Ok(None);
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(self.node.line.into_deserializer()),
            1 => seed.deserialize(self.node.col.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer(self.node)),
        }
    }
}
