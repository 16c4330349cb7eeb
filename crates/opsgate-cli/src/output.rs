//! Human-readable printing of transitions and gate decisions.

use opsgate_proto::v1 as pb;

fn node_status(value: i32) -> &'static str {
    match pb::NodeStatus::try_from(value) {
        Ok(pb::NodeStatus::Locked) => "locked",
        Ok(pb::NodeStatus::Open) => "open",
        Ok(pb::NodeStatus::Submitted) => "submitted",
        Ok(pb::NodeStatus::ChangesRequested) => "changes requested",
        Ok(pb::NodeStatus::Approved) => "approved",
        Ok(pb::NodeStatus::Reached) => "reached",
        Ok(pb::NodeStatus::Accepted) => "accepted",
        _ => "unknown",
    }
}

fn node_kind(value: i32) -> &'static str {
    match pb::NodeKind::try_from(value) {
        Ok(pb::NodeKind::Deliverable) => "deliverable",
        Ok(pb::NodeKind::Milestone) => "milestone",
        Ok(pb::NodeKind::Gate) => "gate",
        _ => "node",
    }
}

pub(crate) fn transition_status(value: i32) -> &'static str {
    match pb::TransitionStatus::try_from(value) {
        Ok(pb::TransitionStatus::Active) => "active",
        Ok(pb::TransitionStatus::HandedOver) => "handed over",
        Ok(pb::TransitionStatus::Completed) => "completed",
        _ => "unknown",
    }
}

pub(crate) fn transition(t: &pb::Transition) {
    println!("transition {}", t.id);
    println!(
        "  service:   {} {}   workflow: {} v{}   status: {}",
        t.service_name,
        t.service_version,
        t.workflow_name,
        t.workflow_version,
        transition_status(t.status)
    );
    println!(
        "  project manager: {}   service manager: {}   go-live: {}",
        t.project_manager, t.service_manager, t.target_go_live
    );
    for p in &t.participants {
        println!("  {}: {}", p.role, p.people.join(", "));
    }
    let width = t.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0);
    for n in &t.nodes {
        let mut line = format!(
            "  {:<11} {:<width$}  {:<17}",
            node_kind(n.kind),
            n.id,
            node_status(n.status)
        );
        if !n.owner_role.is_empty() {
            line.push_str(&format!(" owner {}", n.owner_role));
        }
        if !n.approval.is_empty() {
            line.push_str(&format!(", approval {}", n.approval));
        }
        if !n.approved_by.is_empty() {
            line.push_str(&format!(", approved by {}", n.approved_by.join(", ")));
            if !n.approved_by_deputies.is_empty() {
                line.push_str(&format!(
                    " (deputies: {})",
                    n.approved_by_deputies.join(", ")
                ));
            }
        }
        if let Some(w) = &n.waiver {
            line.push_str(&format!(
                ", WAIVED by {} until {} UTC: {}",
                w.waived_by,
                timestamp(w.until.as_ref(), "%Y-%m-%d %H:%M", "?"),
                w.reason
            ));
        }
        if !n.required {
            line.push_str(" (optional)");
        }
        if n.round > 1 {
            line.push_str(&format!(", round {}", n.round));
        }
        if !n.comment.is_empty() {
            if n.comment_round < n.round {
                // The changes it asked for were resubmitted: history, not a current verdict.
                line.push_str(&format!(
                    "  (earlier, round {}: \"{}\")",
                    n.comment_round, n.comment
                ));
            } else {
                line.push_str(&format!("  \"{}\"", n.comment));
            }
        }
        println!("{}", line.trim_end());
    }
}

pub(crate) fn gate(g: &pb::CheckGateResponse) {
    let state = match pb::GateState::try_from(g.state) {
        Ok(pb::GateState::Open) => "OPEN",
        Ok(pb::GateState::Accepted) => "OPEN (handover accepted)",
        _ => "CLOSED",
    };
    println!(
        "gate '{}' of transition {}: {state}",
        g.gate_id, g.transition_id
    );
    println!("  {}", g.summary);
    for b in &g.blockers {
        let waiting = if !b.approval_policy.is_empty() {
            let mut text = format!(
                "approval ({}), {} of {} given",
                b.approval_policy, b.approvals_given, b.approvals_needed
            );
            if !b.waiting_on_people.is_empty() {
                text.push_str(&format!(
                    "; may approve: {}",
                    b.waiting_on_people.join(", ")
                ));
            }
            text
        } else if !b.waiting_on_role.is_empty() {
            if b.waiting_on_people.is_empty() {
                format!("role {} (nobody named)", b.waiting_on_role)
            } else {
                format!(
                    "role {}: {}",
                    b.waiting_on_role,
                    b.waiting_on_people.join(", ")
                )
            }
        } else {
            b.waiting_on_nodes.join(", ")
        };
        println!(
            "  - {} '{}' ({}) is {}, waiting on {waiting}",
            node_kind(b.kind),
            b.node_id,
            b.title,
            node_status(b.status)
        );
    }
    for w in &g.waivers {
        println!(
            "  - waived: deliverable '{}' ({}) by {} until {} UTC: {}",
            w.node_id,
            w.title,
            w.waived_by,
            timestamp(w.until.as_ref(), "%Y-%m-%d %H:%M", "?"),
            w.reason
        );
    }
}

/// A protobuf timestamp in `format` (UTC), or `absent` when there is none.
pub(crate) fn timestamp(t: Option<&prost_types::Timestamp>, format: &str, absent: &str) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map_or_else(|| absent.to_owned(), |d| d.format(format).to_string())
}

/// One line of a transition's history.
pub(crate) fn event(e: &pb::TransitionEvent) -> String {
    let at = timestamp(e.at.as_ref(), "%Y-%m-%d %H:%M:%S", "");
    let mut line = format!("{:>5}  {at}  {:<20} {}", e.seq, e.actor, e.kind);
    if !e.node_id.is_empty() {
        line.push_str(&format!(" {}", e.node_id));
    }
    if !e.comment.is_empty() {
        line.push_str(&format!("  \"{}\"", e.comment));
    }
    if !e.on_behalf_of.is_empty() {
        line.push_str(&format!(
            "  for {} (delegation #{})",
            e.on_behalf_of, e.delegation_id
        ));
    }
    let mut how = Vec::new();
    if !e.acted_as.is_empty() {
        how.push(format!("as {}", e.acted_as));
    }
    if !e.access_role.is_empty() {
        how.push(format!("role {}", e.access_role));
    }
    if !e.credential.is_empty() {
        how.push(format!("via {}", e.credential));
    }
    if !how.is_empty() {
        line.push_str(&format!("  [{}]", how.join(", ")));
    }
    line
}

/// A moment given on the command line: `YYYY-MM-DD` (the start of that day, UTC, or with
/// `end_of_day` its end) or RFC 3339 (`2026-12-01T17:00:00Z`).
pub(crate) fn moment(
    flag: &str,
    text: &str,
    end_of_day: bool,
) -> anyhow::Result<prost_types::Timestamp> {
    let text = text.trim();
    let at = if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt()
        } else {
            Some(day)
        };
        day.and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .ok_or_else(|| anyhow::anyhow!("{flag} '{text}' is out of range"))?
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                anyhow::anyhow!(
                    "{flag} '{text}' must be a date (2026-12-31) or a moment (2026-12-31T17:00:00Z)"
                )
            })?
            .to_utc()
    };
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// A duration given on the command line as days (`90d`) or weeks (`12w`), in days.
pub(crate) fn days(flag: &str, text: &str) -> anyhow::Result<u32> {
    let text = text.trim();
    let wrong =
        || anyhow::anyhow!("{flag} '{text}' must be a number of days or weeks, like 90d or 12w");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u32 = number.parse().ok().filter(|n| *n > 0).ok_or_else(wrong)?;
    match unit {
        "d" => Ok(n),
        "w" => Ok(n.saturating_mul(7)),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_in_days_or_weeks() {
        assert_eq!(super::days("--expires", "90d").unwrap(), 90);
        assert_eq!(super::days("--expires", "12w").unwrap(), 84);
        for bad in ["", "d", "0d", "90", "3m", "-1d"] {
            assert!(super::days("--expires", bad).is_err(), "{bad}");
        }
    }
}
