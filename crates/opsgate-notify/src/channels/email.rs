//! `email`: one message per notice over SMTP (lettre, async; `smtps://` for TLS, `smtp://...?tls=
//! required` for STARTTLS), plain text and HTML with the same content as the chat messages. The
//! `Message-ID` is derived from the delivery id, the same on every attempt, so a mail system that
//! got a message twice can tell.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::{Message, html_escape};
use crate::{Attempt, Notice, Notifier, Outcome, Recipient};

/// Longest wait for the SMTP server, per command.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One SMTP relay and the addresses every message of the channel goes to.
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Where the relay is, without credentials (for errors).
    relay: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    link_base: Option<String>,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// A notifier sending through the relay `smtp_url` (`smtp://`, `smtps://`; user and password
    /// in the URL) from `from` to every address of `to` (none: it reaches people only, each at
    /// their own address).
    pub fn new(
        smtp_url: &str,
        from: &str,
        to: &[String],
        link_base: Option<String>,
    ) -> Result<Self, String> {
        let parsed =
            url::Url::parse(smtp_url).map_err(|e| format!("the SMTP URL is not a URL: {e}"))?;
        if parsed.host_str().is_none() {
            return Err("the SMTP URL names no host".to_owned());
        }
        // Without user and password.
        let relay = super::http::redacted(&parsed);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("the SMTP URL {relay}...: {e}"))?
            .timeout(Some(TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("from '{from}' is not an address: {e}"))?;
        let to = to
            .iter()
            .map(|a| {
                a.parse::<Mailbox>()
                    .map_err(|e| format!("to '{a}' is not an address: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            transport,
            relay,
            from,
            to,
            link_base,
        })
    }

    /// The message for `notice`, delivery `id`, to the channel's addresses.
    pub fn message(&self, id: &str, notice: &Notice) -> Result<lettre::Message, String> {
        self.message_to(id, notice, &self.to)
    }

    /// The message for `notice`, delivery `id`, to `to`.
    fn message_to(
        &self,
        id: &str,
        notice: &Notice,
        to: &[Mailbox],
    ) -> Result<lettre::Message, String> {
        let message = Message::of(notice, self.link_base.as_deref());
        let subject = format!(
            "[opsgate] {} {}: {}",
            notice.service_name, notice.service_version, message.title
        );
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{id}@opsgate>")));
        for to in to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                message.text(),
                html(&message),
            ))
            .map_err(|e| format!("the message could not be built: {e}"))
    }
}

/// `message` as a small HTML document (every text escaped).
pub fn html(message: &Message) -> String {
    let mut out = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><table>",
        html_escape(&message.title)
    );
    for (label, value) in &message.facts {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            html_escape(label),
            html_escape(value)
        ));
    }
    out.push_str("</table>");
    if let Some(next) = &message.next {
        out.push_str(&format!(
            "<p><strong>Next:</strong> {}</p>",
            html_escape(next)
        ));
    }
    if let Some(link) = &message.link {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open the transition</a></p>",
            html_escape(link)
        ));
    }
    out.push_str("</body></html>");
    out
}

impl EmailNotifier {
    /// Sends `message` (or says why it could not be built) and classifies the answer.
    async fn send(&self, message: Result<lettre::Message, String>) -> Outcome {
        let message = match message {
            Ok(m) => m,
            Err(reason) => return Outcome::Undeliverable { reason },
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            // Permanent refusals (a 5xx) are retried too: the schedule ends in the dead-letter
            // list, where the SMO sees the relay's words; one bad address must not disable the
            // channel for everyone else.
            Err(e) => Outcome::Retry {
                reason: format!("{}: {e}", self.relay),
                after: None,
            },
        }
    }
}

impl Notifier for EmailNotifier {
    fn deliver<'a>(&'a self, id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move {
            if self.to.is_empty() {
                return Outcome::Undeliverable {
                    reason: "this email channel has no `to` addresses: it reaches people only \
                             (a route with to = \"people\")"
                        .to_owned(),
                };
            }
            self.send(self.message(id, notice)).await
        })
    }

    fn deliver_to<'a>(&'a self, id: &'a str, notice: &'a Notice, to: &'a Recipient) -> Attempt<'a> {
        Box::pin(async move {
            let name = &to.name;
            let Some(address) = &to.contact.email else {
                return Outcome::Undeliverable {
                    reason: format!(
                        "{name} has no email address: opsgate person set \"{name}\" --email ADDRESS"
                    ),
                };
            };
            let mailbox = match address.parse::<lettre::Address>() {
                Ok(a) => Mailbox::new(Some(name.clone()), a),
                Err(e) => {
                    return Outcome::Undeliverable {
                        reason: format!("{name}'s email address '{address}' is not valid: {e}"),
                    };
                }
            };
            self.send(self.message_to(id, notice, std::slice::from_ref(&mailbox)))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The relay's connection pool runs on the runtime.
    #[tokio::test]
    async fn plain_and_html_say_the_same_with_a_stable_message_id() {
        let notice = super::super::message::tests::notice();
        let email = EmailNotifier::new(
            "smtp://127.0.0.1:2525",
            "opsgate <opsgate@example.org>",
            &["ops@example.org".to_owned()],
            Some("https://opsgate.example/transitions/".to_owned()),
        )
        .unwrap();
        let raw = String::from_utf8(email.message("42", &notice).unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <42@opsgate>"), "{raw}");
        assert!(
            raw.contains("Subject: [opsgate] payroll 2.0: 'Runbook' was submitted by Tess"),
            "{raw}"
        );
        assert!(raw.contains("text/plain"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        let html = html(&Message::of(&notice, None));
        assert!(html.contains("<strong>Next:</strong> Olga: review &#39;Runbook&#39;"));
        assert!(
            EmailNotifier::new("smtp://127.0.0.1:2525", "not an address", &[], None)
                .unwrap_err()
                .contains("from 'not an address' is not an address")
        );
    }
}
