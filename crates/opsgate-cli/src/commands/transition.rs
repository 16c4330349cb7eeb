//! `opsgate transition ...`: start, show and list transitions.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start a transition of a service version through a workflow.
    Start {
        /// Workflow name.
        #[arg(long)]
        workflow: String,
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
                workflow_name: workflow,
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
