//! Every unknown field of a workflow file at once, located, with a "did you mean": the document is
//! walked against the JSON Schema derived from the serde structs, so the two cannot drift apart.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use super::parse::{Problems, did_you_mean};

/// The document's shape with the location of every mapping key.
pub(super) enum Tree {
    Map(Vec<(Spanned<String>, Tree)>),
    Seq(Vec<Tree>),
    Scalar,
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<Tree>()?));
        }
        Ok(Tree::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
}

/// Reports every mapping key the schema does not allow.
pub(super) fn check_unknown_fields(tree: &Tree, schema: &Value, p: &mut Problems) {
    walk(tree, schema, schema, "the workflow", p);
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .map_or(node, |target| resolve(root, target)),
        None => node,
    }
}

/// For `anyOf`/`oneOf` (options, untagged enums), the alternative that fits the node's kind.
fn pick<'a>(root: &'a Value, node: &'a Value, want: &str) -> Option<&'a Value> {
    let node = resolve(root, node);
    let alternatives = node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))
        .and_then(Value::as_array);
    let Some(alternatives) = alternatives else {
        return Some(node);
    };
    alternatives
        .iter()
        .map(|a| resolve(root, a))
        .find(|a| match a.get("type") {
            Some(Value::String(t)) => t == want,
            Some(Value::Array(ts)) => ts.iter().any(|t| t == want),
            None => a.get("properties").is_some() && want == "object",
            _ => false,
        })
}

fn walk(tree: &Tree, root: &Value, schema: &Value, context: &str, p: &mut Problems) {
    match tree {
        Tree::Scalar => {}
        Tree::Seq(items) => {
            if let Some(items_schema) = pick(root, schema, "array").and_then(|s| s.get("items")) {
                for item in items {
                    walk(item, root, items_schema, context, p);
                }
            }
        }
        Tree::Map(entries) => {
            let Some(object) = pick(root, schema, "object") else {
                return;
            };
            let properties = object.get("properties").and_then(Value::as_object);
            let additional = object.get("additionalProperties");
            for (key, value) in entries {
                if let Some(child) = properties.and_then(|props| props.get(&key.value)) {
                    walk(value, root, child, &key.value, p);
                } else if let Some(extra @ Value::Object(_)) = additional {
                    // A map of free keys (like `roles:`): check the values.
                    walk(value, root, extra, &key.value, p);
                } else if let Some(props) = properties {
                    let names: Vec<&str> = props.keys().map(String::as_str).collect();
                    let hint = did_you_mean(&key.value, names.iter().copied());
                    p.at(
                        key,
                        format!(
                            "unknown field '{}' in {context}{hint}; allowed here: {}",
                            key.value,
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }
}
