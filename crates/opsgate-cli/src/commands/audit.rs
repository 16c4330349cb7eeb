//! `opsgate audit stalled|forecast|kpis|verify|log|export`: what is stuck and on whom, when
//! go-live will really happen, how the process performs, and the tamper-evident event log; for
//! the SMO and auditors.

use std::io::Write as _;
use std::process::ExitCode;

use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

/// How `audit stalled`, `forecast` and `kpis` print.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// What is stuck in the active transitions, why, since when and who must act, the most
    /// overdue first: idle transitions, overdue work, unreviewed submissions, deliverables sent
    /// back too often, open gates not acted on.
    Stalled {
        /// No event for this long counts as idle (also: an open gate not acted on): 7d, 2w.
        #[arg(long, default_value = "7d", value_name = "DURATION")]
        older_than: String,
        /// A submission not reviewed for this long is flagged.
        #[arg(long, default_value = "5d", value_name = "DURATION")]
        review_within: String,
        /// A deliverable sent back more often than this is flagged.
        #[arg(long, default_value_t = 2)]
        max_bounces: u32,
        /// Only transitions of this workflow.
        #[arg(long, value_name = "NAME")]
        workflow: Option<String>,
        /// Only transitions of this service.
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Only rows naming this person as one who must act.
        #[arg(long, value_name = "NAME")]
        person: Option<String>,
        /// table for people, json (one object a line) for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// When go-live will really happen: the remaining critical path with each deliverable's
    /// duration taken from past transitions of the workflow (the median of at least three),
    /// the projected go-live against the target, and what drives a delay. One transition, or
    /// every active one you take part in (every active one for the SMO and auditors), the
    /// latest first.
    Forecast {
        /// Only this transition, node by node.
        transition_id: Option<String>,
        /// Only transitions of this workflow.
        #[arg(long, value_name = "NAME")]
        workflow: Option<String>,
        /// Only transitions projected to miss their target go-live.
        #[arg(long)]
        late: bool,
        /// table for people, json (one object a line) for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// How the transition process performs over a window (a year to now by default): lead time,
    /// time in each state, approval latency per approver and role, first-pass approval and
    /// send-backs per deliverable, on-time go-live, rejections and why, waivers, post-go-live
    /// support; each figure with its sample count.
    Kpis {
        /// From this day (UTC) or RFC 3339 moment; a year before --until by default.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Up to the end of this day (UTC) or this RFC 3339 moment; now by default.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Only transitions of this workflow.
        #[arg(long, value_name = "NAME")]
        workflow: Option<String>,
        /// table for people, json for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Check the hash chain of one transition, or of all: exit 0 when whole, 1 naming the first
    /// event of each chain that was edited, removed, inserted or reordered.
    Verify {
        /// Only this transition.
        transition_id: Option<String>,
    },
    /// A transition's history as stored: who, as what role, through which credential, what,
    /// when, why, and each event's hash.
    Log { transition_id: String },
    /// The whole log as JSON lines for a SIEM, in the order it was written, with each event's
    /// hash (the payload and attribution exactly as stored, so the hashes can be recomputed).
    Export {
        /// Only events at or after this day (UTC) or RFC 3339 moment.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only this transition's events.
        #[arg(long, value_name = "ID")]
        transition: Option<String>,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.audit().await?;
    match command {
        Command::Forecast {
            transition_id,
            workflow,
            late,
            format,
        } => crate::commands::insight::forecast(ctx, transition_id, workflow, late, format).await?,
        Command::Kpis {
            since,
            until,
            workflow,
            format,
        } => crate::commands::insight::kpis(ctx, since, until, workflow, format).await?,
        Command::Stalled {
            older_than,
            review_within,
            max_bounces,
            workflow,
            service,
            person,
            format,
        } => {
            let list = client
                .list_stalled(ctx.acting(pb::ListStalledRequest {
                    older_than_days: output::days("--older-than", &older_than)?,
                    review_days: output::days("--review-within", &review_within)?,
                    max_bounces,
                    workflow: workflow.unwrap_or_default(),
                    service: service.unwrap_or_default(),
                    person: person.unwrap_or_default(),
                })?)
                .await?
                .into_inner();
            for i in &list.items {
                let who = if !i.unfilled_role.is_empty() {
                    format!("role {} (nobody named: fill it)", i.unfilled_role)
                } else if i.must_act.is_empty() {
                    "earlier work".to_owned()
                } else {
                    i.must_act.join(", ")
                };
                match format {
                    Format::Table => println!(
                        "{:>4}d  {} {}  {:<18} {}  {}\n       must act: {who}   ({})",
                        i.days_late,
                        i.service_name,
                        i.service_version,
                        i.kind,
                        if i.node_id.is_empty() {
                            "-"
                        } else {
                            &i.node_id
                        },
                        i.reason,
                        i.transition_id
                    ),
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({
                            "transition_id": i.transition_id,
                            "service": i.service_name,
                            "version": i.service_version,
                            "workflow": i.workflow_name,
                            "kind": i.kind,
                            "node": i.node_id,
                            "title": i.title,
                            "reason": i.reason,
                            "since": output::timestamp(i.since.as_ref(), "%Y-%m-%dT%H:%M:%SZ", ""),
                            "days_late": i.days_late,
                            "must_act": i.must_act,
                            "unfilled_role": i.unfilled_role,
                            "forecast": list
                                .forecasts
                                .iter()
                                .find(|f| f.transition_id == i.transition_id)
                                .map(crate::commands::insight::forecast_json),
                        })
                    ),
                }
            }
            match format {
                Format::Table if !list.forecasts.is_empty() => {
                    println!("\nForecasts of the transitions listed:");
                    for f in &list.forecasts {
                        println!(
                            "{} {}  ({})",
                            f.service_name, f.service_version, f.transition_id
                        );
                        println!("{}", crate::commands::insight::forecast_line(f));
                    }
                }
                Format::Table | Format::Json => {}
            }
            if matches!(format, Format::Table) {
                eprintln!(
                    "{} stalled ({} candidate transitions read)",
                    list.items.len(),
                    list.transitions_checked
                );
            }
        }
        Command::Verify { transition_id } => {
            let report = client
                .verify_log(ctx.acting(pb::VerifyLogRequest {
                    transition_id: transition_id.unwrap_or_default(),
                })?)
                .await?
                .into_inner();
            for b in &report.breaks {
                println!(
                    "BROKEN  transition {}  event {}  {}: {}",
                    b.transition_id, b.seq, b.kind, b.message
                );
            }
            println!(
                "{} transitions, {} events checked: {}",
                report.transitions_checked,
                report.events_checked,
                if report.breaks.is_empty() {
                    "every chain is whole".to_owned()
                } else {
                    format!("{} broken", report.breaks.len())
                }
            );
            return Ok(if report.breaks.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Command::Log { transition_id } => {
            export(ctx, &mut client, Some(transition_id), None, |e| {
                let mut line = format!(
                    "{:>5}  {}  {:<20} {}",
                    e.seq,
                    output::timestamp(e.at.as_ref(), "%Y-%m-%d %H:%M:%S", ""),
                    e.actor,
                    e.kind
                );
                if let Ok(serde_json::Value::Object(a)) =
                    serde_json::from_str::<serde_json::Value>(&e.attribution_json)
                {
                    for (key, label) in [("role", "as"), ("access", "role"), ("credential", "via")]
                    {
                        if let Some(v) = a.get(key).and_then(|v| v.as_str()) {
                            line.push_str(&format!("  {label} {v}"));
                        }
                    }
                }
                line.push_str(&format!(
                    "\n       {}\n       hash {}",
                    e.payload_json, e.hash
                ));
                line
            })
            .await?;
        }
        Command::Export { since, transition } => {
            let since = since
                .map(|s| output::moment("--since", &s, false))
                .transpose()?;
            export(ctx, &mut client, transition, since, |e| {
                serde_json::json!({
                    "transition_id": e.transition_id,
                    "seq": e.seq,
                    "at": output::timestamp(e.at.as_ref(), "%Y-%m-%dT%H:%M:%S%.6fZ", ""),
                    "actor": e.actor,
                    "kind": e.kind,
                    "payload": e.payload_json,
                    "attribution": e.attribution_json,
                    "hash": e.hash,
                })
                .to_string()
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Pages through the export, printing each event as `line` makes it.
async fn export(
    ctx: &Context,
    client: &mut pb::audit_service_client::AuditServiceClient<tonic::transport::Channel>,
    transition_id: Option<String>,
    since: Option<prost_types::Timestamp>,
    line: impl Fn(&pb::AuditEvent) -> String,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut page_token = String::new();
    loop {
        let page = client
            .export_events(ctx.acting(pb::ExportEventsRequest {
                transition_id: transition_id.clone().unwrap_or_default(),
                since,
                page_size: 5000,
                page_token: page_token.clone(),
            })?)
            .await?
            .into_inner();
        for e in &page.events {
            writeln!(out, "{}", line(e))?;
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}
