//! `teams`: the Adaptive Card layout of a notice for a Microsoft Teams Workflows webhook (the
//! retired Office 365 connectors' replacement), the same content as Slack's, and `Action.OpenUrl`
//! to the transition's page (cards posted this way cannot submit anything). Posted by
//! `chat::ChatNotifier`.

use serde_json::{Value, json};

use super::message::Message;

/// `message` as an Adaptive Card 1.4 in the envelope Teams workflows take.
pub fn card(message: &Message) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({
            "type": "FactSet",
            "facts": message.facts.iter().map(|(title, value)| json!({"title": title, "value": value})).collect::<Vec<_>>(),
        }),
    ];
    if let Some(next) = &message.next {
        body.push(json!({"type": "TextBlock", "text": format!("**Next:** {next}"), "wrap": true}));
    }
    let actions: Vec<Value> = message
        .link
        .iter()
        .map(|link| json!({"type": "Action.OpenUrl", "title": "Open the transition", "url": link}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adaptive_card_with_the_facts_the_next_person_and_an_open_url() {
        let notice = super::super::message::tests::notice();
        let body = card(&Message::of(&notice, Some("https://opsgate.example/t/")));
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][0]["text"], "'Runbook' was submitted by Tess");
        assert_eq!(card["body"][1]["facts"][0]["value"], "payroll 2.0");
        assert_eq!(
            card["body"][2]["text"],
            "**Next:** Olga: review 'Runbook' by Fri 4 Dec"
        );
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            card["actions"][0]["url"],
            "https://opsgate.example/t/0190aaaa-0000-7000-8000-000000000001"
        );
    }
}
