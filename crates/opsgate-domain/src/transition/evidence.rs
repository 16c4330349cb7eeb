//! Evidence a submitter attaches to a deliverable, and the bounds every piece of free text keeps.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::clip;
use crate::workflow::{EvidenceKind, Workflow};

/// Most links (or attachments) one submission may carry.
pub const MAX_LINKS: usize = 50;
/// Longest link accepted.
pub const MAX_LINK_LEN: usize = 2048;
/// Longest free text (evidence text, comment, reason) accepted.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// A document given by reference, with the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub uri: String,
    pub sha256: String,
}

/// What a submitter attaches to a deliverable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub links: Vec<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl Evidence {
    /// Checks bounds. Evidence may be empty: where a workflow asks for none, the submission itself
    /// is the claim ([`check_evidence`] enforces what a deliverable requires).
    pub fn parse(links: Vec<String>, text: String) -> Result<Self> {
        Self::parse_with_attachments(links, text, Vec::new())
    }

    /// Checks bounds, with attachments (a uri and the hex SHA-256 of the document each).
    pub fn parse_with_attachments(
        links: Vec<String>,
        text: String,
        attachments: Vec<Attachment>,
    ) -> Result<Self> {
        let invalid = |message: String| Error::InvalidArgument {
            field: "evidence",
            message,
        };
        let links: Vec<String> = links.into_iter().map(|l| l.trim().to_owned()).collect();
        let text = text.trim().to_owned();
        if links.len() > MAX_LINKS || attachments.len() > MAX_LINKS {
            return Err(invalid(format!(
                "{} links and {} attachments, the limit is {MAX_LINKS} each",
                links.len(),
                attachments.len()
            )));
        }
        if let Some(bad) = links.iter().find(|l| !is_web_link(l)) {
            return Err(invalid(format!(
                "link '{}' must be an http:// or https:// address with a host, without spaces, \
                 at most {MAX_LINK_LEN} characters",
                clip(bad)
            )));
        }
        let mut checked = Vec::with_capacity(attachments.len());
        for a in attachments {
            let uri = a.uri.trim().to_owned();
            let sha256 = a.sha256.trim().to_ascii_lowercase();
            let hex_ok = sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !is_document_uri(&uri) || !hex_ok {
                return Err(invalid(format!(
                    "attachment '{}' needs a uri (such as https://... or s3://...; not javascript: \
                     or data:) of at most {MAX_LINK_LEN} characters, and the 64 hex digits of its SHA-256",
                    clip(&uri)
                )));
            }
            checked.push(Attachment { uri, sha256 });
        }
        check_text("evidence", &text)?;
        Ok(Self {
            links,
            text,
            attachments: checked,
        })
    }

    fn has(&self, kind: EvidenceKind) -> bool {
        match kind {
            EvidenceKind::Link => !self.links.is_empty(),
            EvidenceKind::Text => !self.text.is_empty(),
            EvidenceKind::Attachment => !self.attachments.is_empty(),
        }
    }
}

/// An `http://` or `https://` address with a host, no whitespace, bounded.
fn is_web_link(link: &str) -> bool {
    let lower = link.get(..8).unwrap_or(link).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &link[8..]
    } else if lower.starts_with("http://") {
        &link[7..]
    } else {
        return false;
    };
    link.len() <= MAX_LINK_LEN
        && !link.chars().any(|c| c.is_whitespace() || c.is_control())
        && rest
            .split(['/', '?', '#'])
            .next()
            .is_some_and(|host| !host.is_empty())
}

/// A document reference: `scheme:rest`, bounded, never a script or an inline document.
fn is_document_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let scheme = scheme.to_ascii_lowercase();
    scheme_ok
        && !rest.is_empty()
        && uri.len() <= MAX_LINK_LEN
        && !matches!(scheme.as_str(), "javascript" | "vbscript" | "data")
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub(crate) fn check_text(field: &'static str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::InvalidArgument {
            field,
            message: format!("{} bytes, the limit is {MAX_TEXT_LEN}", text.len()),
        });
    }
    Ok(())
}

/// A submission must carry every kind of evidence its deliverable requires.
pub(crate) fn check_evidence(workflow: &Workflow, i: usize, evidence: &Evidence) -> Result<()> {
    let node = workflow.node(i);
    let Some(d) = node.deliverable() else {
        return Ok(());
    };
    let missing: Vec<String> = d
        .evidence
        .iter()
        .filter(|req| !evidence.has(req.kind))
        .map(|req| {
            let kind = match req.kind {
                EvidenceKind::Link => "a link",
                EvidenceKind::Text => "text",
                EvidenceKind::Attachment => "an attachment",
            };
            if req.description.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind} ({})", req.description)
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        field: "evidence",
        message: format!(
            "deliverable '{}' needs evidence: {}",
            node.id,
            missing.join("; ")
        ),
    })
}
