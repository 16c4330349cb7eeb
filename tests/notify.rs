//! Notifications to real receivers on loopback: a webhook receiver that checks every Standard
//! Webhooks signature and fails half of the calls at random (at most five in a row for one
//! notice) gets every one of 1,000 notices
//! exactly once (retries keep their `webhook-id`); an endpoint answering 410 is disabled, its
//! deliveries dead-lettered, listed and retried (SQLite and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opsgate_notify::signature::{Secret, verify};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::notification_service_client::NotificationServiceClient;
use opsgate_server::Config;
use opsgate_server::config::{ChannelConfig, NotifySection, RouteConfig, RouteTo};
use opsgate_tests::{ONE, TestDb, TestServer, acting, start_one};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Per webhook-id: calls answered 2xx, calls failed on purpose.
    ok: HashMap<String, u32>,
    failed: HashMap<String, u32>,
    bad_signatures: u32,
    kinds: HashMap<String, u32>,
    /// The last event body delivered, per type.
    last: HashMap<String, serde_json::Value>,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    /// Answer every call with this status (410 for a gone endpoint, 2xx for one that never
    /// fails) instead of failing half of them.
    always: Option<StatusCode>,
    rng: Arc<Mutex<u64>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    // A failing status answers at once; a success is counted like any delivered call.
    if let Some(status) = r.always.filter(|s| !s.is_success()) {
        return status;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let timestamp: i64 = timestamp.parse().unwrap_or(0);
    let fresh = (chrono::Utc::now().timestamp() - timestamp).abs() <= 300;
    let signed = [SECRET, OLD_SECRET].iter().all(|s| {
        verify(
            &Secret::parse(s).unwrap(),
            &signature,
            &id,
            timestamp,
            &body,
        )
    });
    let mut seen = r.seen.lock().unwrap();
    if !fresh || !signed || id.is_empty() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    // Unless told to succeed, half of the calls fail, at random; never more than five in a row
    // for one notice (ten failures would spend the whole retry schedule: that is the dead-letter
    // test's business).
    let fail = r.always.is_none() && seen.failed.get(&id).copied().unwrap_or(0) < 5 && {
        let mut x = r.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x % 2 == 0
    };
    if fail {
        *seen.failed.entry(id).or_default() += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let kind = value["type"].as_str().unwrap_or("").to_owned();
    *seen.kinds.entry(kind.clone()).or_default() += 1;
    seen.last.insert(kind, value);
    *seen.ok.entry(id).or_default() += 1;
    r.always.unwrap_or(StatusCode::NO_CONTENT)
}

async fn start_receiver(always: Option<StatusCode>) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Receiver {
        seen: seen.clone(),
        always,
        rng: Arc::new(Mutex::new(0x9e37_79b9_7f4a_7c15)),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn webhook(name: &str, url: &str) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: "webhook".into(),
        url: Some(url.into()),
        url_env: None,
        from: None,
        to: Vec::new(),
        subject: None,
        jetstream: false,
        secrets: vec![SECRET.into(), OLD_SECRET.into()],
        cloudevents: false,
        token: None,
        token_env: None,
        api_url: None,
        channel: None,
        concurrency: Some(16),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notice_reaches_a_flaky_receiver_once_and_a_gone_endpoint_is_disabled() {
    for db in TestDb::all().await {
        let (flaky_url, flaky) = start_receiver(None).await;
        let (gone_url, _) = start_receiver(Some(StatusCode::GONE)).await;
        let (server, _dir) = notifying(
            &db,
            NotifySection {
                base_url: Some("https://opsgate.example.org".into()),
                allow_loopback: true,
                // The three-day schedule in about three seconds.
                retry_scale: Some(0.000_01),
                channels: vec![webhook("flaky", &flaky_url), webhook("gone", &gone_url)],
                routes: vec![
                    RouteConfig {
                        events: vec!["*".into()],
                        channels: vec!["flaky".into()],
                        ..RouteConfig::default()
                    },
                    RouteConfig {
                        events: vec!["handover_accepted".into()],
                        channels: vec!["gone".into()],
                        ..RouteConfig::default()
                    },
                ],
                ..NotifySection::default()
            },
        )
        .await;
        let mut c = server.clients().await;
        let transitions = 250;
        let mut ids = Vec::new();
        for n in 0..transitions {
            let t = start_one(&mut c, "svc", &format!("{n}")).await;
            ids.push(t.id);
        }
        for id in &ids {
            opsgate_tests::submit(&mut c, id, "d", "Pat").await.unwrap();
            opsgate_tests::review(&mut c, id, "d", pb::ReviewDecision::Approve, "ok", "Dana")
                .await
                .unwrap();
            c.transitions
                .accept_handover(acting(
                    "Sam",
                    pb::AcceptHandoverRequest {
                        transition_id: id.clone(),
                        comment: String::new(),
                    },
                ))
                .await
                .unwrap();
        }
        let expected = 4 * transitions;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let delivered = flaky.lock().unwrap().ok.len();
            if delivered >= expected || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        {
            let seen = flaky.lock().unwrap();
            assert_eq!(seen.bad_signatures, 0, "{}", db.backend);
            assert_eq!(
                seen.ok.len(),
                expected,
                "every notice delivered ({})",
                db.backend
            );
            assert!(seen.ok.values().all(|&n| n == 1), "each exactly once");
            // Half the calls failed; each was retried with its webhook-id until it got through.
            let retried = seen
                .failed
                .keys()
                .filter(|id| seen.ok.contains_key(*id))
                .count();
            assert!(retried > expected / 4, "{retried} retried");
            assert_eq!(
                seen.failed
                    .keys()
                    .filter(|id| !seen.ok.contains_key(*id))
                    .count(),
                0
            );
            for kind in [
                "deliverable_unlocked",
                "deliverable_submitted",
                "gate_open",
                "handover_accepted",
            ] {
                assert_eq!(seen.kinds.get(kind), Some(&(transitions as u32)), "{kind}");
            }
        }

        // The endpoint that answered 410: disabled after its first delivery, every delivery of
        // it dead-lettered, none attempted more than once.
        let mut notifications = NotificationServiceClient::connect(server.url.clone())
            .await
            .unwrap();
        let failed = loop {
            let failed = notifications
                .list_failed_deliveries(acting(
                    "smo",
                    pb::ListFailedDeliveriesRequest { limit: 1000 },
                ))
                .await
                .unwrap()
                .into_inner();
            if failed.deliveries.len() >= transitions || Instant::now() > deadline {
                break failed;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(failed.deliveries.len(), transitions, "{}", db.backend);
        assert!(
            failed
                .deliveries
                .iter()
                .all(|d| d.channel == "gone" && d.status == "disabled")
        );
        assert!(failed.deliveries.iter().all(|d| d.attempts <= 1));
        assert_eq!(failed.disabled_channels.len(), 1);
        assert_eq!(failed.disabled_channels[0].channel, "gone");
        assert!(
            failed.disabled_channels[0].reason.contains("410"),
            "{:?}",
            failed.disabled_channels
        );

        // /metrics shows the dead letters and an empty backlog.
        let text = reqwest::get(format!("{}/metrics", server.http_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(&format!("\nopsgate_deliveries_failed {transitions}\n")),
            "{text}"
        );
        assert!(text.contains("\nopsgate_deliveries_pending 0\n"), "{text}");
        assert!(text.contains("\nopsgate_outbox_notices 0\n"), "{text}");

        // Retrying one queues it again (same webhook-id) and enables the channel; the endpoint
        // is still gone, so it comes back disabled.
        let one = &failed.deliveries[0];
        let retried = notifications
            .retry_delivery(acting(
                "smo",
                pb::RetryDeliveryRequest {
                    delivery_id: one.id,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .delivery
            .unwrap();
        assert_eq!(
            (retried.status.as_str(), retried.webhook_id.as_str()),
            ("pending", one.webhook_id.as_str())
        );
        let again = notifications
            .retry_delivery(acting(
                "smo",
                pb::RetryDeliveryRequest {
                    delivery_id: one.id,
                },
            ))
            .await;
        // Unless the dispatcher was quicker, it is pending and cannot be retried twice.
        if let Err(e) = again {
            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
        }
        let refused = notifications
            .retry_delivery(acting("smo", pb::RetryDeliveryRequest { delivery_id: 0 }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let missing = notifications
            .retry_delivery(acting(
                "smo",
                pb::RetryDeliveryRequest {
                    delivery_id: 999_999_999,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_channel_config_with_problems_is_refused_naming_each() {
    let db = TestDb::sqlite();
    let result = opsgate_server::start(Config {
        notify: NotifySection {
            channels: vec![
                ChannelConfig {
                    secrets: vec!["not-a-secret".into()],
                    ..webhook("hooks", "http://127.0.0.1:9/x")
                },
                ChannelConfig {
                    kind: "pager".into(),
                    ..webhook("hooks", "http://127.0.0.1:9/x")
                },
                ChannelConfig {
                    kind: "slack".into(),
                    url: None,
                    secrets: Vec::new(),
                    ..webhook("chat", "")
                },
                ChannelConfig {
                    kind: "teams".into(),
                    url: None,
                    url_env: Some("OPSGATE_TEST_NO_SUCH_VARIABLE".into()),
                    secrets: Vec::new(),
                    ..webhook("cards", "")
                },
                ChannelConfig {
                    kind: "email".into(),
                    secrets: Vec::new(),
                    ..webhook("mail", "smtp://127.0.0.1:25")
                },
                ChannelConfig {
                    kind: "slack".into(),
                    token: Some("xoxp-a-user-token".into()),
                    secrets: Vec::new(),
                    ..webhook("dm", "http://127.0.0.1:9/x")
                },
                ChannelConfig {
                    kind: "slack".into(),
                    url: None,
                    token: Some("xoxb-1-2-bot".into()),
                    secrets: Vec::new(),
                    ..webhook("bot", "")
                },
            ],
            routes: vec![
                RouteConfig {
                    events: vec!["deliverable_eaten".into()],
                    channels: vec!["nowhere".into()],
                    ..RouteConfig::default()
                },
                RouteConfig {
                    events: vec!["*".into()],
                    channels: vec!["hooks".into()],
                    to: RouteTo::People,
                },
                RouteConfig {
                    events: vec!["gate_open".into()],
                    channels: vec!["mail".into(), "bot".into()],
                    ..RouteConfig::default()
                },
            ],
            ..NotifySection::default()
        },
        ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
    })
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        !err.contains("xoxp-a-user-token"),
        "a token is never shown: {err}"
    );
    for expected in [
        "notify.channels[0] (hooks): secrets[0]: a webhook secret starts with whsec_",
        "notify.channels[1] (hooks): another channel has the same name",
        "notify.channels[1] (hooks): unknown kind 'pager'",
        "notify.channels[2] (chat): a slack channel needs url (or url_env, the environment variable holding it) for an incoming webhook, or token (or token_env) for a bot token",
        "notify.channels[5] (dm): the token is not a Slack bot token (xoxb-...)",
        "notify.channels[5] (dm): a slack channel with a bot token posts through the Web API",
        "notify.routes[2]: the slack channel 'bot' posts with a bot token and has no `channel`",
        "notify.channels[3] (cards): url_env names OPSGATE_TEST_NO_SUCH_VARIABLE, which is not set",
        "notify.channels[4] (mail): an email channel needs from",
        "notify.routes[0]: unknown event 'deliverable_eaten'",
        "notify.routes[0]: no channel is named 'nowhere'",
        "notify.routes[1]: a webhook channel ('hooks') reaches an endpoint, not people",
        "notify.routes[2]: the email channel 'mail' has no `to` addresses",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    // A webhook to a loopback address without allow_loopback is refused at start-up.
    let result = opsgate_server::start(Config {
        notify: NotifySection {
            channels: vec![webhook("hooks", "http://127.0.0.1:9/x")],
            ..NotifySection::default()
        },
        ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
    })
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
}

/// A chat receiver (Slack- or Teams-shaped): keeps every message's JSON, answers `answer`.
async fn start_chat_receiver(
    path: &'static str,
    answer: StatusCode,
) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                assert_eq!(
                    headers.get("content-type").unwrap(),
                    "application/json",
                    "chat messages are JSON"
                );
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
                (answer, "ok")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Slack (Block Kit) and Teams (Adaptive Card) receivers get one message per notice, each saying
/// what happened, to which service and version, who acts next and by when, with a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_receivers_get_messages_a_person_reads_at_a_glance() {
    let db = TestDb::sqlite();
    let (slack_url, slack) =
        start_chat_receiver("/services/T000/B000/SECRET", StatusCode::OK).await;
    let (teams_url, teams) = start_chat_receiver("/workflows/run", StatusCode::ACCEPTED).await;
    let chat = |name: &str, kind: &str| ChannelConfig {
        kind: kind.into(),
        secrets: Vec::new(),
        ..webhook(name, "")
    };
    let (server, _dir) = notifying(
        &db,
        NotifySection {
            base_url: Some("https://opsgate.example.org/".into()),
            allow_loopback: true,
            channels: vec![
                ChannelConfig {
                    url: Some(slack_url),
                    ..chat("slack", "slack")
                },
                ChannelConfig {
                    url: Some(teams_url),
                    ..chat("teams", "teams")
                },
            ],
            ..NotifySection::default()
        },
    )
    .await;
    let mut c = server.clients().await;
    let t = start_one(&mut c, "payroll", "2.0").await;
    opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
        .await
        .unwrap();
    let link = format!("https://opsgate.example.org/transitions/{}", t.id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (slack.lock().unwrap().len() < 2 || teams.lock().unwrap().len() < 2)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let slack = slack.lock().unwrap().clone();
    assert_eq!(slack.len(), 2, "{slack:#?}");
    let submitted = slack
        .iter()
        .find(|m| m["text"] == "'D' was submitted by Pat")
        .unwrap_or_else(|| panic!("no submission message: {slack:#?}"));
    let blocks = submitted["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "'D' was submitted by Pat");
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"*Service*\npayroll 2.0"), "{fields:?}");
    assert!(fields.contains(&"*Deliverable*\nD"), "{fields:?}");
    let next = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(
        next.starts_with(":point_right: *Next:* Dana: review 'D'"),
        "{next}"
    );
    assert_eq!(blocks[3]["elements"][0]["url"], link.as_str());
    let unlocked = slack
        .iter()
        .find(|m| m["text"] == "'D' can start: everything it needs is done")
        .unwrap_or_else(|| panic!("no unlock message: {slack:#?}"));
    assert!(
        unlocked["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("*Next:* Pat: deliver 'D'")
    );

    let teams = teams.lock().unwrap().clone();
    assert_eq!(teams.len(), 2, "{teams:#?}");
    for message in &teams {
        assert_eq!(message["type"], "message");
        let attachment = &message["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][1]["type"], "FactSet");
        assert_eq!(card["body"][1]["facts"][0]["value"], "payroll 2.0");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(card["actions"][0]["url"], link.as_str());
    }
    assert!(teams.iter().any(|m| {
        m["attachments"][0]["content"]["body"][2]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("**Next:** Dana: review 'D'"))
    }));
    server.stop().await;
}

/// A local SMTP sink: speaks enough SMTP for a client (greeting, EHLO, MAIL, RCPT, DATA, RSET,
/// NOOP, QUIT) and keeps each message's envelope recipients and raw text.
async fn start_smtp_sink() -> (u16, Arc<Mutex<Vec<(Vec<String>, String)>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mail = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = mail.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let keep = keep.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut rcpt = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "MAIL" | "RSET" | "NOOP" => {
                            if verb == "RSET" {
                                rcpt.clear();
                            }
                            b"250 OK\r\n"
                        }
                        "RCPT" => {
                            rcpt.push(line.clone());
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut text = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                text.push_str(&l);
                                text.push('\n');
                            }
                            keep.lock().unwrap().push((std::mem::take(&mut rcpt), text));
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, mail)
}

/// An email channel sends one message per notice through a real SMTP conversation: plain text and
/// HTML, to the configured addresses, a Message-ID from the delivery id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_channel_sends_each_notice_through_smtp() {
    let db = TestDb::sqlite();
    let (port, mail) = start_smtp_sink().await;
    let (server, _dir) = notifying(
        &db,
        NotifySection {
            base_url: Some("https://opsgate.example.org".into()),
            channels: vec![ChannelConfig {
                kind: "email".into(),
                url: Some(format!("smtp://127.0.0.1:{port}")),
                from: Some("opsgate <opsgate@example.org>".into()),
                to: vec!["transition-team@example.org".into()],
                secrets: Vec::new(),
                ..webhook("mail", "")
            }],
            routes: vec![RouteConfig {
                events: vec!["deliverable_submitted".into()],
                channels: vec!["mail".into()],
                ..RouteConfig::default()
            }],
            ..NotifySection::default()
        },
    )
    .await;
    let mut c = server.clients().await;
    let t = start_one(&mut c, "payroll", "3.0").await;
    opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while mail.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only the routed kind: the submission, once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mail = mail.lock().unwrap().clone();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    let (rcpt, text) = &mail[0];
    assert_eq!(
        rcpt,
        &vec!["RCPT TO:<transition-team@example.org>".to_owned()]
    );
    assert!(
        text.contains("Subject: [opsgate] payroll 3.0: 'D' was submitted by Pat"),
        "{text}"
    );
    assert!(
        text.contains("From: opsgate <opsgate@example.org>"),
        "{text}"
    );
    assert!(text.contains("Message-ID: <"), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    assert!(text.contains("Content-Type: text/html"), "{text}");
    assert!(text.contains("Next: Dana: review 'D'"), "{text}");
    assert!(
        text.contains(&format!("https://opsgate.example.org/transitions/{}", t.id)),
        "{text}"
    );
    server.stop().await;
}

/// Routes with `to = "people"` reach each person a notice is for at their own address: a
/// submission mails the approver and the deputy standing in for her, and mentions the approver
/// in the Slack channel; a person with no address is dead-lettered with what to do about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_to_people_reach_each_at_their_own_address_and_deputies_too() {
    let db = TestDb::sqlite();
    let (port, mail) = start_smtp_sink().await;
    let (slack_url, slack) = start_chat_receiver("/slack", StatusCode::OK).await;
    let (server, _dir) = notifying(
        &db,
        NotifySection {
            allow_loopback: true,
            channels: vec![
                ChannelConfig {
                    kind: "email".into(),
                    url: Some(format!("smtp://127.0.0.1:{port}")),
                    from: Some("opsgate <opsgate@example.org>".into()),
                    secrets: Vec::new(),
                    ..webhook("mail", "")
                },
                ChannelConfig {
                    kind: "slack".into(),
                    secrets: Vec::new(),
                    ..webhook("chat", &slack_url)
                },
            ],
            routes: vec![
                RouteConfig {
                    events: vec![
                        "deliverable_submitted".into(),
                        "deliverable_unlocked".into(),
                    ],
                    channels: vec!["mail".into()],
                    to: RouteTo::People,
                },
                RouteConfig {
                    events: vec!["deliverable_submitted".into()],
                    channels: vec!["chat".into()],
                    to: RouteTo::People,
                },
            ],
            ..NotifySection::default()
        },
    )
    .await;
    let mut c = server.clients().await;
    submission_for_dana_and_her_deputy(
        &mut c,
        [
            ("Dana", "dana@example.org", "U0DANA0001"),
            ("Dee", "dee@example.org", ""),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (mail.lock().unwrap().len() < 2 || slack.lock().unwrap().is_empty())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rcpts: Vec<String> = mail
        .lock()
        .unwrap()
        .iter()
        .map(|(rcpt, text)| {
            assert!(text.contains("'D' was submitted by Pat"), "{text}");
            rcpt.join(",")
        })
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["RCPT TO:<dana@example.org>", "RCPT TO:<dee@example.org>"]
    );
    // Slack: one message, for Dana (Dee has no Slack id: dead-lettered, like Pat's mail).
    let slack = slack.lock().unwrap().clone();
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert_eq!(
        slack[0]["blocks"][0]["text"]["text"],
        serde_json::json!("For <@U0DANA0001>")
    );
    let mut notifications = NotificationServiceClient::connect(server.url.clone())
        .await
        .unwrap();
    let failed = notifications
        .list_failed_deliveries(acting(
            "Sue",
            pb::ListFailedDeliveriesRequest { limit: 100 },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut errors: Vec<(String, String, String)> = failed
        .deliveries
        .iter()
        .map(|d| (d.channel.clone(), d.recipient.clone(), d.last_error.clone()))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            (
                "chat".to_owned(),
                "Dee".to_owned(),
                "Dee has no Slack id: opsgate person set \"Dee\" --slack U0123ABCD".to_owned()
            ),
            (
                "mail".to_owned(),
                "Pat".to_owned(),
                "Pat has no email address: opsgate person set \"Pat\" --email ADDRESS".to_owned()
            ),
        ]
    );
    server.stop().await;
}

/// Sets Dana's and Dee's contact details (`people`: name, email, Slack id), lets Dee stand in
/// for Dana for a day, starts payroll 4.0 and submits its deliverable as Pat: a submission for
/// Dana, the approver, and so for Dee.
async fn submission_for_dana_and_her_deputy(
    c: &mut opsgate_tests::Clients,
    people: [(&str, &str, &str); 2],
) {
    for (name, email, slack) in people {
        c.identity
            .set_person(acting(
                "Sue",
                pb::SetPersonRequest {
                    name: name.into(),
                    email: email.into(),
                    slack: slack.into(),
                    teams_webhook: String::new(),
                },
            ))
            .await
            .unwrap();
    }
    let now = chrono::Utc::now().timestamp();
    c.identity
        .add_delegation(acting(
            "Dana",
            pb::AddDelegationRequest {
                to: "Dee".into(),
                starts_at: Some(prost_types::Timestamp {
                    seconds: now - 60,
                    nanos: 0,
                }),
                ends_at: Some(prost_types::Timestamp {
                    seconds: now + 86_400,
                    nanos: 0,
                }),
                reason: "holiday".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // The start unlocks the deliverable for its owner, Pat, who has no address.
    let t = start_one(c, "payroll", "4.0").await;
    opsgate_tests::submit(c, &t.id, "d", "Pat").await.unwrap();
}

/// A Slack Web API-shaped receiver: `chat.postMessage` with the bot token, JSON; keeps every
/// message; Slack's own error (HTTP 200, `ok: false`) for a wrong token or an unknown member.
async fn start_slack_api(token: &'static str) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth != Some(&format!("Bearer {token}")) {
                    return serde_json::json!({"ok": false, "error": "invalid_auth"}).to_string();
                }
                assert_eq!(
                    headers.get("content-type").unwrap(),
                    "application/json; charset=utf-8"
                );
                let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let channel = message["channel"].as_str().unwrap_or_default().to_owned();
                keep.lock().unwrap().push(message);
                if channel == "U0NOBODY0" {
                    serde_json::json!({"ok": false, "error": "channel_not_found"})
                } else {
                    serde_json::json!({"ok": true, "channel": "D0DM000001", "ts": "1.000100"})
                }
                .to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A Slack channel with a bot token sends each person a direct message through
/// `chat.postMessage` (their member id as the conversation), posts routes to the channel in its
/// `channel`, and dead-letters a person Slack does not know, saying what mends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_bot_token_sends_each_person_a_direct_message() {
    let db = TestDb::sqlite();
    let (api_url, slack) = start_slack_api("xoxb-test-1-token").await;
    let (server, _dir) = notifying(
        &db,
        NotifySection {
            allow_loopback: true,
            channels: vec![ChannelConfig {
                kind: "slack".into(),
                url: None,
                secrets: Vec::new(),
                token: Some("xoxb-test-1-token".into()),
                api_url: Some(api_url),
                channel: Some("C0HANDOVER".into()),
                ..webhook("dm", "")
            }],
            routes: vec![
                RouteConfig {
                    events: vec!["deliverable_submitted".into()],
                    channels: vec!["dm".into()],
                    to: RouteTo::People,
                },
                RouteConfig {
                    events: vec!["deliverable_submitted".into()],
                    channels: vec!["dm".into()],
                    to: RouteTo::Channel,
                },
            ],
            ..NotifySection::default()
        },
    )
    .await;
    let mut c = server.clients().await;
    submission_for_dana_and_her_deputy(
        &mut c,
        [("Dana", "", "U0DANA0001"), ("Dee", "", "U0NOBODY0")],
    )
    .await;
    let mut notifications = NotificationServiceClient::connect(server.url.clone())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let failed = notifications
            .list_failed_deliveries(acting(
                "Sue",
                pb::ListFailedDeliveriesRequest { limit: 100 },
            ))
            .await
            .unwrap()
            .into_inner();
        if (slack.lock().unwrap().len() >= 3 && !failed.deliveries.is_empty())
            || Instant::now() > deadline
        {
            break failed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut messages = slack.lock().unwrap().clone();
    messages.sort_by_key(|m| m["channel"].as_str().unwrap_or_default().to_owned());
    let channels: Vec<&str> = messages
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    // Dana's direct message, the channel's message, and the attempt for Dee Slack refused.
    assert_eq!(
        channels,
        ["C0HANDOVER", "U0DANA0001", "U0NOBODY0"],
        "{messages:#?}"
    );
    let dm = &messages[1];
    assert_eq!(
        dm["blocks"][0]["type"], "header",
        "a DM needs no 'For' line: {dm:#?}"
    );
    assert_eq!(dm["text"], "'D' was submitted by Pat");
    assert_eq!(dm["unfurl_links"], false);
    assert_eq!(messages[0]["text"], "'D' was submitted by Pat");
    let failed: Vec<(String, String, String)> = failed
        .deliveries
        .iter()
        .map(|d| (d.channel.clone(), d.recipient.clone(), d.last_error.clone()))
        .collect();
    assert_eq!(
        failed,
        [(
            "dm".to_owned(),
            "Dee".to_owned(),
            "Slack answered channel_not_found: check Dee's Slack id (U0NOBODY0) and that the \
             app may post there: opsgate person set \"Dee\" --slack U0123ABCD"
                .to_owned()
        )]
    );
    server.stop().await;
}

/// A `nats` channel with `jetstream` publishes each notice to `SUBJECT.KIND` and counts it only
/// once the stream acknowledged it; the stream holds every notice once, with its delivery id as
/// `Nats-Msg-Id`. Runs when `OPSGATE_TEST_NATS_URL` is set (`.ci/run` sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_channel_publishes_to_jetstream_and_counts_the_acknowledgement() {
    let Ok(nats_url) = std::env::var("OPSGATE_TEST_NATS_URL") else {
        eprintln!("skipped: set OPSGATE_TEST_NATS_URL to run the NATS test");
        return;
    };
    let prefix = format!("opsgate_test_{}", uuid::Uuid::now_v7().simple());
    let client = async_nats::connect(nats_url.as_str()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: prefix.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();

    let db = TestDb::sqlite();
    let (server, _dir) = notifying(
        &db,
        NotifySection {
            channels: vec![ChannelConfig {
                kind: "nats".into(),
                url: Some(nats_url.clone()),
                subject: Some(prefix.clone()),
                jetstream: true,
                secrets: Vec::new(),
                ..webhook("bus", "")
            }],
            ..NotifySection::default()
        },
    )
    .await;
    let mut c = server.clients().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let t = start_one(&mut c, "payroll", &format!("4.{n}")).await;
        opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
            .await
            .unwrap();
        ids.push(t.id);
    }
    // Each transition: deliverable_unlocked at the start, deliverable_submitted.
    let expected = 2 * ids.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = stream;
    loop {
        let messages = stream.info().await.unwrap().state.messages;
        if messages >= expected || Instant::now() > deadline {
            assert_eq!(messages, expected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Acknowledged deliveries are settled: nothing is published twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, expected);
    // Every notice once: (kind, transition) pairs over the whole stream, each with its id.
    let mut seen = std::collections::BTreeSet::new();
    let mut message_ids = std::collections::BTreeSet::new();
    for seq in 1..=expected {
        let m = stream.get_raw_message(seq).await.unwrap();
        let event: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        assert_eq!(m.subject.as_str(), format!("{prefix}.{kind}"));
        if kind == "deliverable_submitted" {
            assert_eq!(event["data"]["act_next"][0], "Dana", "{event}");
        }
        seen.insert((
            kind,
            event["data"]["transition_id"].as_str().unwrap().to_owned(),
        ));
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        assert!(!id.is_empty(), "{:?}", m.headers);
        message_ids.insert(id);
    }
    let wanted: std::collections::BTreeSet<(String, String)> = ids
        .iter()
        .flat_map(|id| {
            ["deliverable_unlocked", "deliverable_submitted"].map(|k| (k.to_owned(), id.clone()))
        })
        .collect();
    assert_eq!(seen, wanted);
    assert_eq!(message_ids.len() as u64, expected);
    server.stop().await;
    jetstream.delete_stream(&prefix).await.unwrap();
}

/// Two replicas on one PostgreSQL database, each running the dispatcher for the same channel:
/// between them every notice is delivered exactly once (each delivery is claimed by one replica,
/// `FOR UPDATE SKIP LOCKED` and a lease), whichever replica wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_deliver_every_notice_exactly_once_between_them() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set OPSGATE_TEST_POSTGRES_URL to run the replica test");
        return;
    };
    // Every call succeeds (no retry, so any duplicate is a double claim).
    let (always_ok_url, always_ok) = start_receiver(Some(StatusCode::NO_CONTENT)).await;
    let notify = || NotifySection {
        allow_loopback: true,
        channels: vec![webhook("hooks", &always_ok_url)],
        ..NotifySection::default()
    };
    let (a, _a_dir) = notifying(&db, notify()).await;
    let (b, _b_dir) = notifying(&db, notify()).await;
    let mut ca = a.clients().await;
    let mut cb = b.clients().await;
    let transitions = 40;
    for n in 0..transitions {
        let c = if n % 2 == 0 { &mut ca } else { &mut cb };
        let t = start_one(c, "svc", &format!("{n}")).await;
        opsgate_tests::submit(c, &t.id, "d", "Pat").await.unwrap();
    }
    // Each transition: deliverable_unlocked at the start, deliverable_submitted.
    let expected = 2 * transitions;
    let deadline = Instant::now() + Duration::from_secs(30);
    while always_ok.lock().unwrap().ok.len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a double claim time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let seen = always_ok.lock().unwrap();
        assert_eq!(seen.bad_signatures, 0);
        assert_eq!(seen.ok.len(), expected, "every notice delivered");
        let twice: Vec<_> = seen.ok.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    }
    a.stop().await;
    b.stop().await;
}

/// A development server on `db` with the workflow `one` loaded and `notify` configured; the
/// workflow's directory lives as long as the returned guard.
async fn notifying(db: &TestDb, notify: NotifySection) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
    let server = TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: true,
            notify,
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, dir)
}

/// A workflow whose one deliverable is due 20 days before go-live, with the SMO's mailbox.
const TIMED: &str = "\
name: timed
roles: {desk: {description: reviews}, smo: {description: the Service Management Office}}
contacts:
  - {name: Service Management Office, role: smo, channels: [\"mail: smo@example.org\"]}
deliverables:
  - {id: d, title: D, owner: project_manager, approver: desk, due: go_live - 20d}
gate: {id: gate, title: Gate, needs: [d]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_an_overdue_notice_and_an_escalation_each_fire_once_at_their_time_across_a_restart()
 {
    for db in TestDb::all().await {
        let (url, seen) = start_receiver(Some(StatusCode::OK)).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("timed.yaml"), TIMED).unwrap();
        let time = opsgate_tests::MovingClock::default();
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2027, 1, d)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap()
                .and_utc()
        };
        let config = || Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: true,
            clock: time.clock(),
            notify: NotifySection {
                allow_loopback: true,
                channels: vec![webhook("hook", &url)],
                timers: opsgate_server::config::TimersConfig {
                    check_seconds: 1,
                    ..Default::default()
                },
                ..NotifySection::default()
            },
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        };
        let count = |kind: &str| seen.lock().unwrap().kinds.get(kind).copied().unwrap_or(0);
        // Waits until `kind` has arrived `n` times; then a few more checks, to see nothing more.
        let expect = |kind: &'static str, n: u32| {
            let count = &count;
            async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                while count(kind) < n && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(2500)).await;
                assert_eq!(count(kind), n, "{kind} on {}", db.backend);
            }
        };
        // Started on 4 January; the deliverable is due 12 January (go-live 1 February).
        time.pin(day(4));
        let server = TestServer::start_config(&db, config()).await;
        let mut c = server.clients().await;
        c.transitions
            .start_transition(acting(
                "Pat",
                pb::StartTransitionRequest {
                    workflow_name: "timed".into(),
                    service_name: "payroll".into(),
                    service_version: "1.0".into(),
                    project_manager: "Pat".into(),
                    service_manager: "Sam".into(),
                    target_go_live: "2027-02-01".into(),
                    participants: vec![pb::Participant {
                        role: "desk".into(),
                        people: vec!["Dana".into()],
                    }],
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        expect("deliverable_unlocked", 1).await;
        time.pin(day(9));
        expect("reminder", 0).await;
        // Two days before: the reminder, once, however often the timers look.
        time.pin(day(10));
        expect("reminder", 1).await;
        time.pin(day(11));
        expect("reminder", 1).await;
        // The day after the due date: overdue, to the owner.
        time.pin(day(13));
        expect("overdue", 1).await;
        let overdue = seen.lock().unwrap().last["overdue"].clone();
        assert_eq!(overdue["data"]["recipients"], serde_json::json!(["Pat"]));
        // A restart in between: nothing fires twice.
        server.stop().await;
        let server = TestServer::start_config(&db, config()).await;
        expect("overdue", 1).await;
        expect("reminder", 1).await;
        // Three days of grace, then the SMO hears of it.
        time.pin(day(15));
        expect("escalation", 0).await;
        time.pin(day(16));
        expect("escalation", 1).await;
        let escalation = seen.lock().unwrap().last["escalation"].clone();
        assert_eq!(
            escalation["data"]["recipients"],
            serde_json::json!(["Service Management Office"])
        );
        assert_eq!(escalation["data"]["act_next"], serde_json::json!(["Pat"]));
        assert_eq!(count("overdue"), 1);
        server.stop().await;
    }
}
