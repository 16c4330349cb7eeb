//! Parse-don't-validate newtypes for the identifiers and names that cross the API.

use std::fmt;

use crate::error::{Error, Result};

/// Longest accepted node id, role name or workflow name.
pub const MAX_ID_LEN: usize = 64;
/// Longest accepted person name (an actor, a participant).
pub const MAX_PERSON_LEN: usize = 200;

/// Most characters of caller input that a message repeats.
pub const MAX_ECHO: usize = 100;

/// `value` as a message may repeat it: at most [`MAX_ECHO`] characters, then an ellipsis. Input
/// echoed whole can make a status too large for a client to read at all.
pub fn clip(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_ECHO) {
        None => std::borrow::Cow::Borrowed(value),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &value[..end])),
    }
}

fn check_slug(field: &'static str, value: &str) -> Result<()> {
    let invalid = |message: String| Err(Error::InvalidArgument { field, message });
    if value.is_empty() {
        return invalid("must not be empty".into());
    }
    if value.len() > MAX_ID_LEN {
        return invalid(format!(
            "'{}' is {} characters long, the limit is {MAX_ID_LEN}",
            clip(value),
            value.len()
        ));
    }
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !(first_ok && rest_ok) {
        return invalid(format!(
            "'{}' must start with a lowercase letter or digit and contain only lowercase letters, digits, '-' and '_'",
            clip(value)
        ));
    }
    Ok(())
}

macro_rules! slug_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and checks the value.
            pub fn parse(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check_slug($field, &value)?;
                Ok(Self(value))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

slug_newtype!(
    /// Id of a node (deliverable, milestone, gate) inside one workflow.
    NodeId,
    "node id"
);
slug_newtype!(
    /// Name of a role declared by a workflow (`service_desk_lead`).
    RoleName,
    "role"
);
slug_newtype!(
    /// Name of a workflow (`standard-transition`).
    WorkflowName,
    "workflow name"
);

/// A person acting on a transition or named in it, as free text (trimmed, non-empty, bounded).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Actor(String);

impl Actor {
    /// Parses a person name for `field`, reporting errors against that field.
    pub fn parse_field(field: &'static str, value: impl AsRef<str>) -> Result<Self> {
        let value = value.as_ref().trim();
        if value.is_empty() {
            return Err(Error::InvalidArgument {
                field,
                message: "must name a person".into(),
            });
        }
        if value.chars().count() > MAX_PERSON_LEN || value.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                field,
                message: format!(
                    "must be at most {MAX_PERSON_LEN} characters without control characters"
                ),
            });
        }
        Ok(Self(value.to_owned()))
    }

    /// Parses the acting person.
    pub fn parse(value: impl AsRef<str>) -> Result<Self> {
        Self::parse_field("actor", value)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Actor {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(value)
    }
}

impl From<Actor> for String {
    fn from(value: Actor) -> String {
        value.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_digits_dash_underscore() {
        assert!(NodeId::parse("knowledge-articles_v2").is_ok());
        assert!(NodeId::parse("2fa-setup").is_ok());
    }

    #[test]
    fn slugs_reject_bad_input_with_the_field_name() {
        for bad in ["", "Upper", "-lead", "has space", &"x".repeat(65)] {
            let err = NodeId::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid node id"), "{err}");
        }
    }

    #[test]
    fn actor_is_trimmed_and_bounded() {
        assert_eq!(
            Actor::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(Actor::parse("   ").is_err());
        assert!(Actor::parse("a\u{7}b").is_err());
        assert!(Actor::parse("x".repeat(201)).is_err());
        assert_eq!(Actor::parse("José Müller").unwrap().as_str(), "José Müller");
    }

    #[test]
    fn echoed_input_is_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(20_000);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_ECHO + 1);
        assert!(clipped.ends_with('…'));
        let err = NodeId::parse("x".repeat(20_000)).unwrap_err().to_string();
        assert!(err.len() < 400, "{err}");
    }
}
