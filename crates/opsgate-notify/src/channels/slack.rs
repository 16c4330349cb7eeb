//! `slack`: the Block Kit layout of a notice, read at a glance: what happened, the service and
//! version, the facts, who must act next and by when, and a button to the transition's page (a
//! link: acting happens on the page, never in a GET). Posted by `chat::ChatNotifier`.

use serde_json::{Value, json};

use super::message::{Message, slack_escape};

/// Slack's limit on a header block's text.
const HEADER_MAX: usize = 150;

/// `message` in Block Kit, with `text` as the notification's fallback.
pub fn blocks(message: &Message) -> Value {
    let mut blocks = Vec::new();
    if message.title.chars().count() <= HEADER_MAX {
        blocks.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": message.title, "emoji": false},
        }));
    } else {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("*{}*", slack_escape(&message.title))},
        }));
    }
    // A section holds at most 10 fields.
    let fields: Vec<Value> = message
        .facts
        .iter()
        .take(10)
        .map(|(label, value)| {
            json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", slack_escape(value))})
        })
        .collect();
    blocks.push(json!({"type": "section", "fields": fields}));
    if let Some(next) = &message.next {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!(":point_right: *Next:* {}", slack_escape(next))},
        }));
    }
    if let Some(link) = &message.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the transition"},
                "url": link,
            }],
        }));
    }
    json!({"text": message.title, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_kit_says_what_happened_who_acts_next_and_links_the_transition() {
        let notice = super::super::message::tests::notice();
        let m = Message::of(&notice, Some("https://opsgate.example/transitions/"));
        let body = blocks(&m);
        assert_eq!(body["text"], "'Runbook' was submitted by Tess");
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[1]["fields"][0]["text"], "*Service*\npayroll 2.0");
        assert_eq!(
            blocks[2]["text"]["text"],
            ":point_right: *Next:* Olga: review 'Runbook' by Fri 4 Dec"
        );
        assert_eq!(
            blocks[3]["elements"][0]["url"],
            "https://opsgate.example/transitions/0190aaaa-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn a_long_title_goes_in_a_section_and_text_is_escaped() {
        let mut notice = super::super::message::tests::notice();
        notice.headline = format!(
            "Olga asked for changes to 'Runbook': <b>{}</b>",
            "x".repeat(200)
        );
        let body = blocks(&Message::of(&notice, None));
        let first = &body["blocks"][0];
        assert_eq!(first["type"], "section");
        assert!(
            first["text"]["text"]
                .as_str()
                .unwrap()
                .contains("&lt;b&gt;")
        );
        // No link without a base URL: no button.
        assert!(
            body["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "actions")
        );
    }
}
