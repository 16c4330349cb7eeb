//! Every unknown field and every missing required field of a workflow file at once, located, with a
//! "did you mean": the document tree is walked against the JSON Schema derived from the serde
//! structs, so the two cannot drift apart. The schema is compiled once into plain field sets.
//!
//! A missing required field would stop serde at the first one and hide every other problem of the
//! file. So each is reported here and the tree gets a placeholder in its place ([`placeholder`]):
//! a value that passes every check, so that the semantic checks still run on the rest. Problems
//! that name a placeholder are dropped afterwards ([`names_placeholder`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::parse::{Problems, did_you_mean};
use super::raw::json_schema;
use super::yaml::{Kind, Node};

/// What every placeholder id or name contains, so that problems naming one can be dropped.
const PLACEHOLDER_MARK: &str = "-missing-";

/// A value for a missing required `key` of a mapping at `line:col` that passes every check:
/// unique ids and names (marked), the built-in project manager as owner, plain words elsewhere.
fn placeholder<'a>(key: &str, line: u32, col: u32) -> Kind<'a> {
    let text = match key {
        "id" | "name" => format!("x{PLACEHOLDER_MARK}{key}-{line}-{col}"),
        "owner" => super::PROJECT_MANAGER_ROLE.to_owned(),
        "kind" => "text".to_owned(),
        "duration" => "1d".to_owned(),
        _ => format!("(no {key})"),
    };
    Kind::Scalar(std::borrow::Cow::Owned(text), false)
}

/// Whether a problem message names a placeholder (and so repeats a missing-field problem).
pub(super) fn names_placeholder(message: &str) -> bool {
    message.contains(PLACEHOLDER_MARK)
}

/// Reports every missing required field, located at its mapping, and fills each with a
/// placeholder (a missing mapping, like `end:`, gets its own required fields filled in turn).
pub(super) fn fill_required_fields(tree: &mut Node<'_>, p: &mut Problems) {
    fill(tree, compiled(), 0, "the workflow", p);
}

/// How a mapping under `key` is named in a message: one item of a list, in the singular.
fn item_name(key: &str) -> String {
    match key {
        "deliverables" => "the deliverable".to_owned(),
        "milestones" => "the milestone".to_owned(),
        "contacts" => "the contact".to_owned(),
        "evidence" => "the evidence entry".to_owned(),
        "the workflow" => key.to_owned(),
        other => format!("`{other}:`"),
    }
}

fn fill(tree: &mut Node<'_>, shapes: &Compiled, shape: usize, context: &str, p: &mut Problems) {
    let Some(s) = shapes.0.get(shape) else { return };
    let (line, col) = (tree.line, tree.col);
    match &mut tree.kind {
        Kind::Scalar(..) => {}
        Kind::Seq(items) => {
            if let Some(item_shape) = s.items {
                for item in items {
                    fill(item, shapes, item_shape, context, p);
                }
            }
        }
        Kind::Map(entries) => {
            let named = entries
                .iter()
                .find(|(k, _)| matches!(k.text(), Some("id" | "name")))
                .and_then(|(_, v)| v.text())
                .map(|id| format!(" '{id}'"))
                .unwrap_or_default();
            for key in &s.required {
                if entries.iter().any(|(k, _)| k.text() == Some(key.as_str())) {
                    continue;
                }
                // A placeholder mapping (`context` empty) is filled without a word: its own
                // absence was reported.
                if !context.is_empty() {
                    p.at_pos(
                        (line, col),
                        format!("{}{named} needs `{key}:`", item_name(context)),
                    );
                }
                let child = s.fields.as_ref().and_then(|f| f.get(key)).copied();
                let value = match child.and_then(|c| shapes.0.get(c)) {
                    Some(c) if c.fields.is_some() => Kind::Map(Vec::new()),
                    _ => placeholder(key, line, col),
                };
                let node = |kind| Node { kind, line, col };
                entries.push((
                    node(Kind::Scalar(std::borrow::Cow::Owned(key.clone()), false)),
                    node(value),
                ));
            }
            for (key, value) in entries.iter_mut() {
                let name = key.text().unwrap_or_default().to_owned();
                let placed = matches!(&value.kind, Kind::Map(m) if m.is_empty())
                    && (value.line, value.col) == (line, col);
                if let Some(&child) = s.fields.as_ref().and_then(|f| f.get(&name)) {
                    let context = if placed { "" } else { name.as_str() };
                    fill(value, shapes, child, context, p);
                } else if let Some(values) = s.values {
                    fill(value, shapes, values, &name, p);
                }
            }
        }
    }
}

/// What a value may be, reduced to what the walk needs.
#[derive(Debug, Default)]
struct Shape {
    /// Known keys of a mapping and the shape of each value.
    fields: Option<BTreeMap<String, usize>>,
    /// A mapping of free keys (like `roles:`) whose values have this shape.
    values: Option<usize>,
    /// A list whose items have this shape.
    items: Option<usize>,
    /// Keys a mapping must have.
    required: Vec<String>,
}

/// Shapes by index; index 0 is the workflow file itself.
struct Compiled(Vec<Shape>);

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .map_or(node, |target| resolve(root, target)),
        None => node,
    }
}

impl Compiled {
    fn compile(root: &Value) -> Self {
        let mut compiled = Compiled(Vec::new());
        let mut defs: BTreeMap<String, usize> = BTreeMap::new();
        compiled.add(root, root, &mut defs);
        compiled
    }

    /// Adds the shape of `node` (following `$ref`, merging `anyOf` alternatives) and returns its index.
    fn add(&mut self, root: &Value, node: &Value, defs: &mut BTreeMap<String, usize>) -> usize {
        if let Some(name) = node.get("$ref").and_then(Value::as_str) {
            if let Some(&i) = defs.get(name) {
                return i;
            }
            let i = self.0.len();
            self.0.push(Shape::default());
            defs.insert(name.to_owned(), i);
            let target = resolve(root, node);
            let shape = self.shape(root, target, defs);
            self.0[i] = shape;
            return i;
        }
        // Reserve the slot first, so that the root is index 0 and parents precede children.
        let i = self.0.len();
        self.0.push(Shape::default());
        let shape = self.shape(root, node, defs);
        self.0[i] = shape;
        i
    }

    fn shape(&mut self, root: &Value, node: &Value, defs: &mut BTreeMap<String, usize>) -> Shape {
        let mut shape = Shape::default();
        let alternatives: Vec<&Value> = match node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array)
        {
            Some(alts) => alts.iter().collect(),
            None => vec![node],
        };
        for alt in alternatives {
            let alt = resolve(root, alt);
            if let Some(props) = alt.get("properties").and_then(Value::as_object) {
                let mut fields = BTreeMap::new();
                for (name, schema) in props {
                    fields.insert(name.clone(), self.add(root, schema, defs));
                }
                shape.fields = Some(fields);
            }
            if let Some(extra @ Value::Object(_)) = alt.get("additionalProperties") {
                shape.values = Some(self.add(root, extra, defs));
            }
            if let Some(items) = alt.get("items") {
                shape.items = Some(self.add(root, items, defs));
            }
            if let Some(required) = alt.get("required").and_then(Value::as_array) {
                shape.required = required
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
            }
        }
        shape
    }
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled::compile(&json_schema()))
}

/// Reports every mapping key the schema does not allow.
pub(super) fn check_unknown_fields(tree: &Node<'_>, p: &mut Problems) {
    let shapes = compiled();
    walk(tree, shapes, 0, "the workflow", p);
}

fn walk(tree: &Node<'_>, shapes: &Compiled, shape: usize, context: &str, p: &mut Problems) {
    let Some(s) = shapes.0.get(shape) else { return };
    match &tree.kind {
        Kind::Scalar(..) => {}
        Kind::Seq(items) => {
            if let Some(item_shape) = s.items {
                for item in items {
                    walk(item, shapes, item_shape, context, p);
                }
            }
        }
        Kind::Map(entries) => {
            for (key, value) in entries {
                let name = key.text().unwrap_or_default();
                if let Some(&child) = s.fields.as_ref().and_then(|f| f.get(name)) {
                    walk(value, shapes, child, name, p);
                } else if let Some(values) = s.values {
                    walk(value, shapes, values, name, p);
                } else if let Some(fields) = &s.fields {
                    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                    let hint = did_you_mean(name, names.iter().copied());
                    p.at_pos(
                        (key.line, key.col),
                        format!(
                            "unknown field '{name}' in {context}{hint}; allowed here: {}",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }
}
