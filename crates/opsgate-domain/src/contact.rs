//! Where to reach a person: an email address, a Slack member id or channel, a Teams webhook.
//! Checked here (bounded, one line, the right shape) so that every way in (RPC, CLI, a future
//! page) refuses the same things with the same words.

use crate::{Error, Result};

/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest Slack member id or channel name.
pub const MAX_SLACK: usize = 80;
/// Longest Teams webhook URL.
pub const MAX_URL: usize = 2048;

/// A person's contact details; `None` where not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub slack: Option<String>,
    pub teams_webhook: Option<String>,
}

impl Contact {
    /// Checks every field, naming the first bad one (`email`, `slack`, `teams_webhook`).
    pub fn check(&self) -> Result<()> {
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        if let Some(slack) = &self.slack {
            check_slack(slack)?;
        }
        if let Some(url) = &self.teams_webhook {
            check_url(url)?;
        }
        Ok(())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field,
        message: message.into(),
    }
}

fn check_email(email: &str) -> Result<()> {
    let shape = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    });
    if email.len() > MAX_EMAIL
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        || email.matches('@').count() != 1
        || !shape
    {
        return Err(invalid(
            "email",
            format!(
                "'{email}' is not an email address (name@example.org, at most {MAX_EMAIL} characters)"
            ),
        ));
    }
    Ok(())
}

fn check_slack(slack: &str) -> Result<()> {
    // A member id (U0123ABCD, W...), a channel id (C...), or a channel name (#transition-payroll).
    let id = slack.len() >= 9
        && slack.starts_with(['U', 'W', 'C', 'G'])
        && slack
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let channel = slack.strip_prefix('#').is_some_and(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
    });
    if slack.len() > MAX_SLACK || !(id || channel) {
        return Err(invalid(
            "slack",
            format!(
                "'{slack}' is neither a Slack member or channel id (U0123ABCD) nor a channel name (#payroll-handover)"
            ),
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<()> {
    if url.len() > MAX_URL
        || !url.starts_with("https://")
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "teams_webhook",
            format!("a Teams webhook is an https:// URL of at most {MAX_URL} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: &Contact) -> Option<&'static str> {
        match c.check() {
            Err(Error::InvalidArgument { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn good_contacts_pass_and_each_bad_field_is_named() {
        let good = Contact {
            email: Some("dana.vos@example.org".into()),
            slack: Some("U0123ABCD".into()),
            teams_webhook: Some("https://prod-01.westeurope.logic.azure.com/workflows/x".into()),
        };
        assert_eq!(good.check(), Ok(()));
        assert_eq!(
            Contact {
                slack: Some("#payroll-handover".into()),
                ..Contact::default()
            }
            .check(),
            Ok(())
        );
        for (bad, name) in [
            (
                Contact {
                    email: Some("dana".into()),
                    ..Contact::default()
                },
                "email",
            ),
            (
                Contact {
                    email: Some("a@b@example.org".into()),
                    ..Contact::default()
                },
                "email",
            ),
            (
                Contact {
                    email: Some("Dana <d@example.org>".into()),
                    ..Contact::default()
                },
                "email",
            ),
            (
                Contact {
                    email: Some(format!("{}@example.org", "x".repeat(250))),
                    ..Contact::default()
                },
                "email",
            ),
            (
                Contact {
                    slack: Some("dana".into()),
                    ..Contact::default()
                },
                "slack",
            ),
            (
                Contact {
                    slack: Some("#Payroll Handover".into()),
                    ..Contact::default()
                },
                "slack",
            ),
            (
                Contact {
                    teams_webhook: Some("http://example.org/hook".into()),
                    ..Contact::default()
                },
                "teams_webhook",
            ),
        ] {
            assert_eq!(field(&bad), Some(name), "{bad:?}");
        }
    }
}
