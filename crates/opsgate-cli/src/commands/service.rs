//! `opsgate service add|set|show|list`: the service catalog (the services the organisation
//! runs, with owner, service manager, criticality and default workflow; each version's
//! transition).

use std::process::ExitCode;

use anyhow::Context as _;
use opsgate_proto::v1 as pb;

use crate::client::Context;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Add a service to the catalog (SMO).
    #[command(
        after_help = "Example: opsgate service add payroll --owner \"Olga Ivanova\" --service-manager \"Sam Lee\" --criticality tier-1 --default-workflow standard-transition"
    )]
    Add {
        name: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a service's details; only the options given change (SMO).
    Set {
        name: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// A service with every version and its transition: running, accepted (when, by whom).
    Show { name: String },
    /// Every service in the catalog.
    List,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Fields {
    #[arg(long)]
    description: Option<String>,
    /// The service owner (business side).
    #[arg(long, value_name = "NAME")]
    owner: Option<String>,
    #[arg(long, value_name = "NAME")]
    service_manager: Option<String>,
    /// Such as tier-1 (most critical) to tier-3.
    #[arg(long, value_name = "TIER")]
    criticality: Option<String>,
    /// The workflow a new version transitions with when `transition start` names none.
    #[arg(long, value_name = "WORKFLOW")]
    default_workflow: Option<String>,
}

fn print_entry(e: &pb::CatalogEntry) {
    let or_dash = |v: &str| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.to_owned()
        }
    };
    println!("{}", e.name);
    if !e.description.is_empty() {
        println!("  {}", e.description);
    }
    println!("  owner:            {}", or_dash(&e.owner));
    println!("  service manager:  {}", or_dash(&e.service_manager));
    println!("  criticality:      {}", or_dash(&e.criticality));
    println!("  default workflow: {}", or_dash(&e.default_workflow));
    println!(
        "  added by {}, last changed by {}",
        e.created_by, e.updated_by
    );
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.catalog().await?;
    match command {
        Command::Add { name, fields } => {
            let added = client
                .add_service(ctx.acting(pb::AddServiceRequest {
                    name,
                    description: fields.description.unwrap_or_default(),
                    owner: fields.owner.unwrap_or_default(),
                    service_manager: fields.service_manager.unwrap_or_default(),
                    criticality: fields.criticality.unwrap_or_default(),
                    default_workflow: fields.default_workflow.unwrap_or_default(),
                })?)
                .await?
                .into_inner()
                .service
                .context("server returned no service")?;
            print_entry(&added);
        }
        Command::Set { name, fields } => {
            let changed = client
                .set_service(ctx.acting(pb::SetServiceRequest {
                    name,
                    description: fields.description,
                    owner: fields.owner,
                    service_manager: fields.service_manager,
                    criticality: fields.criticality,
                    default_workflow: fields.default_workflow,
                })?)
                .await?
                .into_inner()
                .service
                .context("server returned no service")?;
            print_entry(&changed);
        }
        Command::Show { name } => {
            let answer = client
                .get_service(ctx.reading(pb::GetServiceRequest { name })?)
                .await?
                .into_inner();
            let entry = answer.service.context("server returned no service")?;
            print_entry(&entry);
            if answer.versions.is_empty() {
                println!("  no transition yet");
            }
            for v in &answer.versions {
                let status = pb::TransitionStatus::try_from(v.status)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("TRANSITION_STATUS_")
                            .to_lowercase()
                            .replace('_', " ")
                    })
                    .unwrap_or_default();
                let accepted = match &v.accepted_at {
                    Some(at) => format!(
                        ", accepted {} by {}",
                        crate::output::timestamp(Some(at), "%Y-%m-%d", ""),
                        v.accepted_by
                    ),
                    None => String::new(),
                };
                println!(
                    "  {:<12} {:<14} {} v{} (target {}){accepted}  {}",
                    v.version,
                    status,
                    v.workflow_name,
                    v.workflow_version,
                    v.target_go_live,
                    v.transition_id
                );
            }
        }
        Command::List => {
            let services = client
                .list_services(ctx.reading(pb::ListServicesRequest {})?)
                .await?
                .into_inner()
                .services;
            if services.is_empty() {
                println!("the catalog is empty: opsgate service add NAME ...");
            }
            for s in &services {
                println!(
                    "{:<28} {:<8} {:<24} {}",
                    s.name,
                    if s.criticality.is_empty() {
                        "-"
                    } else {
                        &s.criticality
                    },
                    if s.service_manager.is_empty() {
                        "-"
                    } else {
                        &s.service_manager
                    },
                    s.default_workflow
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
