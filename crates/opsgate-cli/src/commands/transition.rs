//! `opsgate transition ...`: start, show, plan and list transitions.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start a transition of a service version through a workflow.
    Start {
        /// Workflow name [default: the service's default workflow in the catalog].
        #[arg(long)]
        workflow: Option<String>,
        /// Workflow version [default: the latest].
        #[arg(long, value_name = "N")]
        workflow_version: Option<u32>,
        /// Service name.
        #[arg(long)]
        service: String,
        /// Service version.
        #[arg(long)]
        service_version: String,
        /// The project manager: owns the project's deliverables and runs the transition.
        #[arg(long, value_name = "NAME")]
        project_manager: String,
        /// The service manager: signs off and accepts (or rejects) the handover at the gate.
        #[arg(long, value_name = "NAME")]
        service_manager: String,
        /// Target go-live date (today or later, unless --allow-past-go-live).
        #[arg(long, value_name = "YYYY-MM-DD")]
        go_live: String,
        /// Accept a target go-live date in the past (for recording a late transition).
        #[arg(long)]
        allow_past_go_live: bool,
        /// People for a workflow role, repeatable: --participant service_desk_lead=Dana,Lee.
        /// Every role that owns, approves or signs off work must be named.
        #[arg(long = "participant", value_name = "ROLE=NAME[,NAME...]")]
        participants: Vec<String>,
        /// Print only the new transition's id (for scripts: ID=$(opsgate transition start -q ...)).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a transition with every node and its state.
    Get { transition_id: String },
    /// Replace the people named for a role of a running transition (SMO).
    Participants {
        transition_id: String,
        /// The role and everyone who acts for it from now on: ROLE=NAME[,NAME...].
        #[arg(value_name = "ROLE=NAME[,NAME...]")]
        participant: String,
    },
    /// A transition's dated schedule: every node's earliest and latest dates and slack over
    /// what is done, what is late today, and the critical path that remains.
    #[command(after_help = "Example: opsgate transition plan $ID --format json | jq '.late'")]
    Plan {
        transition_id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: crate::commands::audit::Format,
    },
    /// Move the target go-live, with a reason (the project manager, or the SMO): due dates
    /// anchored on go-live move with it, calendars update, everyone is told.
    Reschedule {
        transition_id: String,
        /// The new target go-live (today or later).
        #[arg(long, value_name = "YYYY-MM-DD")]
        go_live: String,
        /// Why it moves (the log and the notification say it).
        #[arg(long)]
        reason: String,
    },
    /// The transition's meetings and dates as iCalendar (import it into a calendar).
    #[command(after_help = "Example: opsgate transition calendar $ID > payroll-transition.ics")]
    Calendar { transition_id: String },
    /// A transition's history: every event in order, who acted and when.
    History { transition_id: String },
    /// List transitions, oldest first.
    List {
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
}

fn participant(value: &str) -> anyhow::Result<pb::Participant> {
    let Some((role, people)) = value.split_once('=') else {
        bail!("--participant '{value}' must look like ROLE=NAME[,NAME...]");
    };
    Ok(pb::Participant {
        role: role.trim().to_owned(),
        people: people
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    })
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Start {
            workflow,
            workflow_version,
            service,
            service_version,
            project_manager,
            service_manager,
            go_live,
            allow_past_go_live,
            participants,
            quiet,
        } => {
            let request = pb::StartTransitionRequest {
                workflow_name: workflow.unwrap_or_default(),
                workflow_version,
                service_name: service,
                service_version,
                project_manager,
                service_manager,
                target_go_live: go_live,
                allow_past_go_live,
                participants: participants
                    .iter()
                    .map(|p| participant(p))
                    .collect::<anyhow::Result<_>>()?,
            };
            let request = ctx.acting(request)?;
            let t = ctx
                .transitions()
                .await?
                .start_transition(request)
                .await?
                .into_inner()
                .transition
                .context("server returned no transition")?;
            if quiet {
                println!("{}", t.id);
            } else {
                output::transition(&t);
            }
        }
        Command::Get { transition_id } => {
            let t = ctx
                .transitions()
                .await?
                .get_transition(ctx.reading(pb::GetTransitionRequest { transition_id })?)
                .await?
                .into_inner()
                .transition
                .context("server returned no transition")?;
            output::transition(&t);
            if t.status == pb::TransitionStatus::Active as i32 {
                let forecast = ctx
                    .audit()
                    .await?
                    .get_forecast(ctx.reading(pb::GetForecastRequest {
                        transition_id: t.id.clone(),
                        ..Default::default()
                    })?)
                    .await;
                match forecast {
                    Ok(f) => {
                        for f in &f.into_inner().forecasts {
                            println!("{}", crate::commands::insight::forecast_line(f));
                        }
                    }
                    // A server from before the forecast: the transition is shown all the same.
                    Err(e) => eprintln!("(no forecast: {})", e.message()),
                }
            }
        }
        Command::Participants {
            transition_id,
            participant: value,
        } => {
            let p = participant(&value)?;
            let t = ctx
                .transitions()
                .await?
                .change_participants(ctx.acting(pb::ChangeParticipantsRequest {
                    transition_id,
                    role: p.role,
                    people: p.people,
                })?)
                .await?
                .into_inner()
                .transition
                .context("server returned no transition")?;
            output::transition(&t);
        }
        Command::Plan {
            transition_id,
            format,
        } => {
            let plan = ctx
                .transitions()
                .await?
                .get_plan(ctx.reading(pb::GetPlanRequest { transition_id })?)
                .await?
                .into_inner();
            match format {
                crate::commands::audit::Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&plan_json(&plan))?);
                }
                crate::commands::audit::Format::Table => print_plan(&plan),
            }
        }
        Command::Reschedule {
            transition_id,
            go_live,
            reason,
        } => {
            let t = ctx
                .transitions()
                .await?
                .reschedule_transition(ctx.acting(pb::RescheduleTransitionRequest {
                    transition_id,
                    target_go_live: go_live,
                    reason,
                })?)
                .await?
                .into_inner()
                .transition
                .context("server returned no transition")?;
            output::transition(&t);
        }
        Command::Calendar { transition_id } => {
            let ics = ctx
                .transitions()
                .await?
                .get_calendar(ctx.reading(pb::GetCalendarRequest { transition_id })?)
                .await?
                .into_inner()
                .ics;
            print!("{ics}");
        }
        Command::History { transition_id } => {
            let mut client = ctx.transitions().await?;
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_events(ctx.reading(pb::ListEventsRequest {
                        transition_id: transition_id.clone(),
                        page_size: 1000,
                        page_token: page_token.clone(),
                    })?)
                    .await?
                    .into_inner();
                for e in &page.events {
                    println!("{}", output::event(e));
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        Command::List {
            page_size,
            page_token,
        } => {
            let page = ctx
                .transitions()
                .await?
                .list_transitions(ctx.reading(pb::ListTransitionsRequest {
                    page_size,
                    page_token,
                })?)
                .await?
                .into_inner();
            for t in &page.transitions {
                println!(
                    "{}  {} {}  {} v{}  {}  go-live {}",
                    t.id,
                    t.service_name,
                    t.service_version,
                    t.workflow_name,
                    t.workflow_version,
                    output::transition_status(t.status),
                    t.target_go_live
                );
            }
            if !page.next_page_token.is_empty() {
                println!("next page: --page-token {}", page.next_page_token);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan as a table: one row per node, dates, slack and flags.
fn print_plan(p: &pb::GetPlanResponse) {
    println!(
        "{} {} ({} v{}): started {}, target go-live {}, as of {}",
        p.service_name,
        p.service_version,
        p.workflow_name,
        p.workflow_version,
        p.start,
        p.target_go_live,
        p.today
    );
    println!(
        "  {:<24} {:<18} {:<11} {:<11} {:<11} {:<11} {:>6}  ",
        "NODE", "STATUS", "EARLIEST", "FINISH", "LATEST", "FINISH BY", "SLACK"
    );
    for n in &p.nodes {
        let status = pb::NodeStatus::try_from(n.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("NODE_STATUS_")
                    .to_lowercase()
                    .replace('_', " ")
            })
            .unwrap_or_default();
        let mut flags = Vec::new();
        if n.done {
            flags.push("done");
        }
        if n.on_critical_path {
            flags.push("critical");
        }
        if n.late {
            flags.push("LATE");
        }
        println!(
            "  {:<24} {:<18} {:<11} {:<11} {:<11} {:<11} {:>5}d  {}",
            n.node_id,
            status,
            n.earliest_start,
            n.earliest_finish,
            n.latest_start,
            n.latest_finish,
            n.slack_days,
            flags.join(" ")
        );
    }
    println!(
        "  the gate can be reached on {} (target {}); critical path: {}",
        p.projected_gate,
        p.target_go_live,
        if p.critical_path.is_empty() {
            "done".to_owned()
        } else {
            p.critical_path.join(" -> ")
        }
    );
    if !p.late.is_empty() {
        println!("  late today: {}", p.late.join(", "));
    }
}

fn plan_json(p: &pb::GetPlanResponse) -> serde_json::Value {
    serde_json::json!({
        "transition_id": p.transition_id,
        "workflow": p.workflow_name,
        "workflow_version": p.workflow_version,
        "service": p.service_name,
        "service_version": p.service_version,
        "start": p.start,
        "target_go_live": p.target_go_live,
        "today": p.today,
        "projected_gate": p.projected_gate,
        "critical_path": p.critical_path,
        "late": p.late,
        "nodes": p.nodes.iter().map(|n| serde_json::json!({
            "id": n.node_id,
            "title": n.title,
            "done": n.done,
            "effort_days": n.effort_days,
            "earliest_start": n.earliest_start,
            "earliest_finish": n.earliest_finish,
            "latest_start": n.latest_start,
            "latest_finish": n.latest_finish,
            "due": (!n.due.is_empty()).then_some(&n.due),
            "slack_days": n.slack_days,
            "on_critical_path": n.on_critical_path,
            "late": n.late,
        })).collect::<Vec<_>>(),
    })
}
