//! What a person reads: one notice as a short message (title, the facts that matter, who must act
//! next and by when, a link), shared by the chat and email channels so that each only lays it out.

use crate::Notice;

/// A notice as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What happened, in one line.
    pub title: String,
    /// `(label, value)` pairs: service, deliverable, who acted, due.
    pub facts: Vec<(&'static str, String)>,
    /// The one person who must act next and what to do (`Olga: review 'Runbook'`), if anyone.
    pub next: Option<String>,
    /// The transition's page, when the server knows its web address.
    pub link: Option<String>,
}

impl Message {
    /// The message for `notice`; links are `link_base` followed by the transition id.
    pub fn of(notice: &Notice, link_base: Option<&str>) -> Self {
        let mut facts = vec![(
            "Service",
            format!("{} {}", notice.service_name, notice.service_version),
        )];
        if let Some(title) = &notice.node_title {
            facts.push(("Deliverable", title.clone()));
        }
        facts.push(("By", notice.actor.clone()));
        if let Some(due) = notice.due {
            facts.push(("Due", due.format("%a %-d %b %Y").to_string()));
        }
        facts.push(("Workflow", notice.workflow.clone()));
        let next = notice.act_next.first().map(|who| {
            let mut line = who.clone();
            if let Some(action) = &notice.action {
                line.push_str(": ");
                line.push_str(action);
            }
            if let Some(due) = notice.due {
                line.push_str(&format!(" by {}", due.format("%a %-d %b")));
            }
            line
        });
        Self {
            title: capitalised(&notice.headline),
            facts,
            next,
            link: link_base.map(|base| format!("{base}{}", notice.transition_id)),
        }
    }

    /// The message as plain text (email bodies, chat fallbacks).
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        for (label, value) in &self.facts {
            out.push_str(&format!("{label}: {value}\n"));
        }
        if let Some(next) = &self.next {
            out.push_str(&format!("\nNext: {next}\n"));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("\n{link}\n"));
        }
        out
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some('\'') => text.to_owned(),
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` with the characters HTML gives meaning to escaped.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` with the characters Slack's mrkdwn gives meaning to escaped (`&`, `<`, `>`).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opsgate_domain::notice::NoticeKind;

    pub(crate) fn notice() -> Notice {
        Notice {
            kind: NoticeKind::DeliverableSubmitted,
            transition_id: "0190aaaa-0000-7000-8000-000000000001".into(),
            seq: 4,
            at: "2026-12-01T09:00:00Z".parse().unwrap(),
            service_name: "payroll".into(),
            service_version: "2.0".into(),
            workflow: "standard-transition".into(),
            node_id: Some("runbook".into()),
            node_title: Some("Runbook".into()),
            actor: "Tess".into(),
            headline: "'Runbook' was submitted by Tess".into(),
            act_next: vec!["Olga".into(), "Oscar".into()],
            action: Some("review 'Runbook'".into()),
            due: Some("2026-12-04".parse().unwrap()),
            recipients: vec!["Olga".into(), "Oscar".into()],
            mailboxes: Default::default(),
        }
    }

    #[test]
    fn a_message_names_the_one_who_acts_next_and_by_when() {
        let m = Message::of(&notice(), Some("https://opsgate.example/transitions/"));
        assert_eq!(m.title, "'Runbook' was submitted by Tess");
        assert_eq!(
            m.next.as_deref(),
            Some("Olga: review 'Runbook' by Fri 4 Dec")
        );
        assert_eq!(
            m.link.as_deref(),
            Some("https://opsgate.example/transitions/0190aaaa-0000-7000-8000-000000000001")
        );
        let text = m.text();
        assert!(text.contains("Service: payroll 2.0\n"), "{text}");
        assert!(text.contains("Due: Fri 4 Dec 2026\n"), "{text}");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
