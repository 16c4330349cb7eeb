//! A transition's meetings and dates as an iCalendar feed (RFC 5545): the startup meeting, the
//! recurring follow-ups until go-live, the readiness review, each deliverable's and dated
//! milestone's day, the go-live and the end of post-go-live support. Meetings at a configured local time in a
//! configured time zone (with its VTIMEZONE) or in UTC; dates as all-day events. UIDs are
//! stable per transition and node; SEQUENCE is the transition's event count, so it grows
//! whenever something changed (a moved go-live included) and clients replace what they had.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use crate::transition::TransitionState;
use crate::workflow::{Anchor, MeetingKind, NodeKind, Workflow, due_date};

/// How meetings are placed: at `meeting_time` local time in `time_zone` (UTC when `None`),
/// lasting `meeting_minutes`; `link` is the transition's page, when known.
#[derive(Debug, Clone)]
pub struct CalendarOptions {
    pub time_zone: Option<Tz>,
    pub meeting_time: NaiveTime,
    pub meeting_minutes: u32,
    pub link: Option<String>,
}

impl Default for CalendarOptions {
    fn default() -> Self {
        Self {
            time_zone: None,
            meeting_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(NaiveTime::MIN),
            meeting_minutes: 60,
            link: None,
        }
    }
}

/// When an event happens.
enum When {
    /// A meeting at a local date and time, optionally repeating every `every` days until a day.
    Meeting {
        at: NaiveDateTime,
        every: Option<(u32, NaiveDate)>,
    },
    /// A whole day.
    Day(NaiveDate),
}

struct Entry {
    uid: String,
    summary: String,
    description: String,
    category: &'static str,
    when: When,
}

/// The feed of transition `id` (`state`, running `workflow`).
pub fn transition_calendar(
    workflow: &Workflow,
    state: &TransitionState,
    id: &str,
    options: &CalendarOptions,
) -> String {
    let meta = &state.meta;
    let start = state.created_at.date_naive();
    let go_live = meta.target_go_live;
    let plan = workflow.plan(start, go_live);
    let service = format!("{} {}", meta.service_name, meta.service_version);
    let day_of = |i: usize| -> NaiveDate {
        let node = workflow.node(i);
        match node.due {
            Some(due) => due_date(due, start, go_live),
            None => plan
                .rows
                .iter()
                .find(|r| r.node == i)
                .map_or(start, |r| r.earliest_finish),
        }
    };
    let mut entries = Vec::new();
    let mut startup: Option<NaiveDate> = None;
    for (i, node) in workflow.nodes().iter().enumerate() {
        let uid = format!("{id}.{}@opsgate", node.id);
        let description = if node.description.is_empty() {
            format!("{service}: {}", node.title)
        } else {
            format!("{service}: {}", node.description)
        };
        match &node.kind {
            NodeKind::Milestone(m) if m.meeting.is_some() => {
                let meeting = m.meeting.as_ref().map(|m| (m.kind, m.every_days));
                let Some((kind, every)) = meeting else {
                    continue;
                };
                let day = match (kind, startup) {
                    // Follow-ups begin a period after the startup meeting.
                    (MeetingKind::FollowUp, Some(first)) => first
                        .checked_add_signed(Duration::days(i64::from(every.unwrap_or(7))))
                        .unwrap_or(first),
                    _ => day_of(i),
                };
                if kind == MeetingKind::Startup {
                    startup = Some(day);
                }
                let repeat = match kind {
                    MeetingKind::FollowUp => Some((every.unwrap_or(7).max(1), go_live)),
                    _ => None,
                };
                entries.push(Entry {
                    uid,
                    summary: format!("{} ({service})", node.title),
                    description,
                    category: "meeting",
                    when: When::Meeting {
                        at: day.and_time(options.meeting_time),
                        every: repeat,
                    },
                });
            }
            NodeKind::Gate => {}
            // The end of post-go-live support: its duration after go-live.
            NodeKind::Milestone(m) if m.ends_support => {
                let days = workflow.support().map_or(0, |s| s.duration_days);
                let end = go_live
                    .checked_add_signed(Duration::days(i64::from(days)))
                    .unwrap_or(go_live);
                entries.push(Entry {
                    uid,
                    summary: format!("{} ({service})", node.title),
                    description,
                    category: "support",
                    when: When::Day(end),
                });
            }
            NodeKind::Milestone(_) if node.due.is_some() => entries.push(Entry {
                uid,
                summary: format!("{} ({service})", node.title),
                description,
                category: "milestone",
                when: When::Day(day_of(i)),
            }),
            NodeKind::Deliverable(_) if node.due.is_some() => entries.push(Entry {
                uid,
                summary: format!("Due: {} ({service})", node.title),
                description,
                category: "deliverable",
                when: When::Day(day_of(i)),
            }),
            _ => {}
        }
    }
    // The go-live itself, unless a milestone of the workflow already marks it.
    let marked = workflow.nodes().iter().any(|n| {
        matches!(n.kind, NodeKind::Milestone(_))
            && n.due
                .is_some_and(|d| d.anchor == Anchor::GoLive && d.days == 0)
    });
    if !marked {
        entries.push(Entry {
            uid: format!("{id}.go-live@opsgate"),
            summary: format!("Go-live: {service}"),
            description: format!(
                "{service} goes live; the service manager {} accepts the handover at the operations gate",
                meta.service_manager
            ),
            category: "go-live",
            when: When::Day(go_live),
        });
    }

    let stamp = stamp(state.updated_at);
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//opsgate//transition calendar//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(
        &mut out,
        &format!("X-WR-CALNAME:{}", text(&format!("Transition of {service}"))),
    );
    if let Some(tz) = options.time_zone {
        let until = go_live
            .checked_add_signed(Duration::days(400))
            .unwrap_or(go_live);
        vtimezone(&mut out, tz, start, until);
    }
    for e in &entries {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", e.uid));
        line(&mut out, &format!("DTSTAMP:{stamp}"));
        line(&mut out, &format!("SEQUENCE:{}", state.seq));
        line(&mut out, &format!("SUMMARY:{}", text(&e.summary)));
        line(&mut out, &format!("DESCRIPTION:{}", text(&e.description)));
        line(&mut out, &format!("CATEGORIES:{}", e.category));
        match &e.when {
            When::Day(day) => {
                line(
                    &mut out,
                    &format!("DTSTART;VALUE=DATE:{}", day.format("%Y%m%d")),
                );
                let next = day.succ_opt().unwrap_or(*day);
                line(
                    &mut out,
                    &format!("DTEND;VALUE=DATE:{}", next.format("%Y%m%d")),
                );
                line(&mut out, "TRANSP:TRANSPARENT");
            }
            When::Meeting { at, every } => {
                line(&mut out, &format!("DTSTART{}", local(options, *at)));
                line(
                    &mut out,
                    &format!("DURATION:PT{}M", options.meeting_minutes.max(1)),
                );
                if let Some((days, until)) = every {
                    // UNTIL in UTC (RFC 5545: with a TZID start it must be), the end of the day.
                    let last = until.and_time(options.meeting_time);
                    let until_utc = utc_of(options, last);
                    let rule = if days % 7 == 0 {
                        format!("FREQ=WEEKLY;INTERVAL={}", days / 7)
                    } else {
                        format!("FREQ=DAILY;INTERVAL={days}")
                    };
                    line(
                        &mut out,
                        &format!("RRULE:{rule};UNTIL={}", until_utc.format("%Y%m%dT%H%M%SZ")),
                    );
                }
            }
        }
        if let Some(link) = &options.link {
            line(&mut out, &format!("URL:{link}"));
        }
        line(&mut out, "STATUS:CONFIRMED");
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// `:20270306T090000Z` in UTC, or `;TZID=Europe/Amsterdam:20270306T100000`.
fn local(options: &CalendarOptions, at: NaiveDateTime) -> String {
    match options.time_zone {
        Some(tz) => format!(";TZID={}:{}", tz.name(), at.format("%Y%m%dT%H%M%S")),
        None => format!(":{}", at.format("%Y%m%dT%H%M%SZ")),
    }
}

/// The instant of local `at` (the earlier one when the clocks go back; just after a gap when
/// they go forward).
fn utc_of(options: &CalendarOptions, at: NaiveDateTime) -> DateTime<Utc> {
    match options.time_zone {
        Some(tz) => tz
            .from_local_datetime(&at)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(at + Duration::hours(1)))
                    .earliest()
            })
            .map_or_else(|| at.and_utc(), |t| t.with_timezone(&Utc)),
        None => at.and_utc(),
    }
}

/// The VTIMEZONE of `tz` from `from` to `until`: one observance per change of offset (or one
/// for a zone without changes), so every time in the feed resolves without outside data.
fn vtimezone(out: &mut String, tz: Tz, from: NaiveDate, until: NaiveDate) {
    let begin = from
        .checked_sub_signed(Duration::days(366))
        .unwrap_or(from)
        .and_time(NaiveTime::MIN)
        .and_utc();
    let end = until.and_time(NaiveTime::MIN).and_utc();
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc());
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{}", tz.name()));
    let mut changes = Vec::new();
    let mut at = begin;
    let mut before = offset(at);
    while at < end {
        let next = at + Duration::hours(6);
        let after = offset(next);
        if after.fix() != before.fix() {
            // The hour it changed.
            let mut t = at;
            while offset(t).fix() == before.fix() && t < next {
                t += Duration::hours(1);
            }
            changes.push((t, before, offset(t)));
        }
        before = after;
        at = next;
    }
    let observance =
        |out: &mut String, when: NaiveDateTime, from: i32, to: i32, dst: bool, name: &str| {
            let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
            line(out, &format!("BEGIN:{kind}"));
            line(out, &format!("DTSTART:{}", when.format("%Y%m%dT%H%M%S")));
            line(out, &format!("TZOFFSETFROM:{}", hhmm(from)));
            line(out, &format!("TZOFFSETTO:{}", hhmm(to)));
            line(out, &format!("TZNAME:{}", text(name)));
            line(out, &format!("END:{kind}"));
        };
    if changes.is_empty() {
        let o = offset(begin);
        let seconds = o.fix().local_minus_utc();
        let when = NaiveDate::from_ymd_opt(1970, 1, 1)
            .unwrap_or(NaiveDate::MIN)
            .and_time(NaiveTime::MIN);
        let name = o.abbreviation().unwrap_or("").to_owned();
        observance(out, when, seconds, seconds, false, &name);
    }
    for (t, from, to) in changes {
        let from_s = from.fix().local_minus_utc();
        let to_s = to.fix().local_minus_utc();
        let when = t.naive_utc() + Duration::seconds(i64::from(from_s));
        let dst = !to.dst_offset().is_zero();
        let name = to.abbreviation().unwrap_or("").to_owned();
        observance(out, when, from_s, to_s, dst, &name);
    }
    line(out, "END:VTIMEZONE");
}

/// `+0100`, `-0530`.
fn hhmm(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaped (RFC 5545 3.3.11).
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets (never inside a character), ended by CRLF.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    let _ = write!(out, "\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let mut out = String::new();
        let long = format!("SUMMARY:{}", "é".repeat(60));
        line(&mut out, &long);
        for physical in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(
                physical.len() <= 75,
                "{physical:?} has {} octets",
                physical.len()
            );
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{long}\r\n"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn a_zone_with_summer_time_has_both_observances() {
        let mut out = String::new();
        let from = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let until = NaiveDate::from_ymd_opt(2027, 12, 31).unwrap();
        vtimezone(&mut out, chrono_tz::Europe::Amsterdam, from, until);
        assert!(out.contains("BEGIN:DAYLIGHT\r\nDTSTART:20270328T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST"), "{out}");
        assert!(out.contains("BEGIN:STANDARD\r\nDTSTART:20271031T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET"), "{out}");
    }
}
