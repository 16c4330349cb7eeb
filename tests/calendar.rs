//! A transition's iCalendar feed (issue "What the SMO hands every transition") over real HTTP:
//! the shipped standard workflow's meetings and dates, the weekly follow-ups as one recurring
//! event until go-live, meetings in the configured time zone with its VTIMEZONE, stable UIDs
//! across fetches and a higher SEQUENCE after the go-live moves; parsed by Python's
//! `icalendar` (a real iCalendar parser) when it is installed (`.ci/run` installs it and sets
//! OPSGATE_TEST_ICALENDAR=1, which makes it required).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use opsgate_proto::v1 as pb;
use opsgate_server::Config;
use opsgate_tests::{MovingClock, TestDb, TestServer, acting, payroll_participants, workflows_dir};

fn moment(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// The properties of each VEVENT, unfolded, in order.
fn events(ics: &str) -> Vec<Vec<(String, String)>> {
    let unfolded = ics.replace("\r\n ", "");
    let mut out = Vec::new();
    let mut current: Option<Vec<(String, String)>> = None;
    for line in unfolded.split("\r\n") {
        match line {
            "BEGIN:VEVENT" => current = Some(Vec::new()),
            "END:VEVENT" => out.extend(current.take()),
            _ => {
                if let (Some(props), Some((k, v))) = (current.as_mut(), line.split_once(':')) {
                    props.push((k.to_owned(), v.to_owned()));
                }
            }
        }
    }
    out
}

fn prop<'a>(event: &'a [(String, String)], key: &str) -> &'a str {
    event
        .iter()
        .find(|(k, _)| k == key || k.starts_with(&format!("{key};")))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {event:?}"))
}

fn full_prop(event: &[(String, String)], key: &str) -> String {
    event
        .iter()
        .find(|(k, _)| k == key || k.starts_with(&format!("{key};")))
        .map(|(k, v)| format!("{k}:{v}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_feed_holds_the_meetings_and_dates_and_follows_a_moved_go_live() {
    let db = TestDb::sqlite();
    let time = MovingClock::default();
    time.pin(moment("2027-03-01T09:00:00Z"));
    let server = TestServer::start_config(
        &db,
        Config {
            workflows_dir: Some(workflows_dir()),
            insecure_dev: true,
            clock: time.clock(),
            calendar: opsgate_server::config::CalendarSection {
                time_zone: Some("Europe/Amsterdam".into()),
                meeting_time: Some("10:00".into()),
                meeting_minutes: Some(45),
            },
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    let mut c = server.clients().await;
    let t = c
        .transitions
        .start_transition(acting(
            "Pat",
            pb::StartTransitionRequest {
                workflow_name: "standard-transition".into(),
                service_name: "payroll".into(),
                service_version: "2.0".into(),
                project_manager: "Pat".into(),
                service_manager: "Sam".into(),
                target_go_live: "2027-05-03".into(),
                participants: payroll_participants(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    let url = format!("{}/transitions/{}/calendar.ics", server.http_url, t.id);
    let fetch = || {
        let url = url.clone();
        async move {
            let r = reqwest::get(&url).await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.headers()["content-type"], "text/calendar; charset=utf-8");
            r.text().await.unwrap()
        }
    };
    let first = fetch().await;
    let again = fetch().await;
    assert_eq!(first, again, "the same feed twice");
    assert!(first.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
    assert!(first.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Amsterdam\r\n"));
    let evs = events(&first);
    // Startup, follow-ups, readiness review, the go-live milestone, seven dated deliverables,
    // the post-go-live report and the end of support.
    assert_eq!(evs.len(), 13, "{first}");
    let by_uid = |evs: &[Vec<(String, String)>], node: &str| {
        let uid = format!("{}.{node}@opsgate", t.id);
        evs.iter()
            .find(|e| prop(e, "UID") == uid)
            .unwrap_or_else(|| panic!("no {uid}"))
            .clone()
    };
    // The startup meeting: start + 5d at 10:00 Amsterdam time, 45 minutes.
    let startup = by_uid(&evs, "startup-meeting");
    assert_eq!(
        full_prop(&startup, "DTSTART"),
        "DTSTART;TZID=Europe/Amsterdam:20270306T100000"
    );
    assert_eq!(prop(&startup, "DURATION"), "PT45M");
    // The follow-ups: weekly from a week after the startup until go-live (10:00 CEST = 08:00Z).
    let follow = by_uid(&evs, "follow-up-meetings");
    assert_eq!(
        full_prop(&follow, "DTSTART"),
        "DTSTART;TZID=Europe/Amsterdam:20270313T100000"
    );
    assert_eq!(
        prop(&follow, "RRULE"),
        "FREQ=WEEKLY;INTERVAL=1;UNTIL=20270503T080000Z"
    );
    let review = by_uid(&evs, "readiness-review");
    assert_eq!(
        full_prop(&review, "DTSTART"),
        "DTSTART;TZID=Europe/Amsterdam:20270428T100000"
    );
    let runbook = by_uid(&evs, "runbook");
    assert_eq!(
        full_prop(&runbook, "DTSTART"),
        "DTSTART;VALUE=DATE:20270426"
    );
    assert!(prop(&runbook, "SUMMARY").starts_with("Due: "));
    let go_live = by_uid(&evs, "go-live");
    assert_eq!(
        full_prop(&go_live, "DTSTART"),
        "DTSTART;VALUE=DATE:20270503"
    );
    let end = by_uid(&evs, "hypercare-end");
    assert_eq!(full_prop(&end, "DTSTART"), "DTSTART;VALUE=DATE:20270517");
    let sequence = |e: &[(String, String)]| prop(e, "SEQUENCE").parse::<u64>().unwrap();
    let before = sequence(&go_live);

    // The go-live moves two weeks: the same events (same UIDs), moved, with a higher SEQUENCE.
    time.pin(moment("2027-03-10T09:00:00Z"));
    c.transitions
        .reschedule_transition(acting(
            "Pat",
            pb::RescheduleTransitionRequest {
                transition_id: t.id.clone(),
                target_go_live: "2027-05-17".into(),
                reason: "the supplier delivers late".into(),
            },
        ))
        .await
        .unwrap();
    let moved = fetch().await;
    let after = events(&moved);
    let uids = |evs: &[Vec<(String, String)>]| {
        let mut u: Vec<String> = evs.iter().map(|e| prop(e, "UID").to_owned()).collect();
        u.sort();
        u
    };
    assert_eq!(uids(&evs), uids(&after));
    let go_live = by_uid(&after, "go-live");
    assert_eq!(
        full_prop(&go_live, "DTSTART"),
        "DTSTART;VALUE=DATE:20270517"
    );
    assert!(sequence(&go_live) > before);
    assert_eq!(
        full_prop(&by_uid(&after, "runbook"), "DTSTART"),
        "DTSTART;VALUE=DATE:20270510"
    );
    // Anchored on the start: did not move.
    assert_eq!(
        full_prop(&by_uid(&after, "startup-meeting"), "DTSTART"),
        "DTSTART;TZID=Europe/Amsterdam:20270306T100000"
    );

    // A real iCalendar parser reads it: every event, the recurrence expanded to the follow-ups
    // until go-live (10 Saturdays from 13 March to 15 May), local times resolved.
    let required = std::env::var("OPSGATE_TEST_ICALENDAR").is_ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.ics");
    std::fs::write(&file, &moved).unwrap();
    let script = r#"
import sys
import icalendar
from dateutil.rrule import rrulestr
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
events = [c for c in cal.walk('VEVENT')]
print('events', len(events))
for e in events:
    for key in ('UID', 'DTSTAMP', 'DTSTART', 'SUMMARY', 'SEQUENCE'):
        assert key in e, (key, e)
follow = [e for e in events if str(e['UID']).endswith('.follow-up-meetings@opsgate')][0]
start = follow.decoded('DTSTART')
assert str(start.tzinfo) in ('Europe/Amsterdam', 'CET', 'CEST') or start.utcoffset() is not None, start
rule = follow['RRULE'].to_ical().decode()
occurrences = list(rrulestr(rule, dtstart=start))
print('follow-ups', len(occurrences), occurrences[0].isoformat(), occurrences[-1].isoformat())
print('utc', start.utcoffset())
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(text.contains("events 13"), "{text}");
            assert!(
                text.contains("follow-ups 10 2027-03-13T10:00:00+01:00 2027-05-15T10:00:00+02:00"),
                "{text}"
            );
        }
        Ok(out)
            if !required && String::from_utf8_lossy(&out.stderr).contains("No module named") =>
        {
            eprintln!("python's icalendar is not installed: the parser check is skipped");
        }
        other => panic!("the iCalendar parser refused the feed: {other:?}"),
    }
    server.stop().await;
}
