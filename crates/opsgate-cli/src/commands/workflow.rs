//! `opsgate workflow ...`: offline validation, and register/get/list against a server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use opsgate_proto::v1 as pb;

use crate::EXIT_NO;
use crate::client::Context;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check workflow files offline; prints file:line:col: message for every problem.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Register workflow files with the server (a changed file becomes the next version).
    Register {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show one workflow version (the latest by default).
    Get {
        name: String,
        #[arg(long = "workflow-version", value_name = "N")]
        version: Option<u32>,
        /// Print the YAML source instead of the summary.
        #[arg(long)]
        source: bool,
    },
    /// List workflows with their latest versions.
    List,
    /// Print the JSON Schema of workflow files (also committed as docs/workflow.schema.json).
    Schema,
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&opsgate_domain::workflow::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Register { files } => {
            let mut client = ctx.workflows().await?;
            for file in files {
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let response = client
                    .register_workflow(pb::RegisterWorkflowRequest {
                        source,
                        file_name: file.display().to_string(),
                    })
                    .await?
                    .into_inner();
                if let Some(w) = response.workflow {
                    let what = if response.created {
                        "registered"
                    } else {
                        "unchanged"
                    };
                    println!("{}: {} v{} {what}", file.display(), w.name, w.version);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Get {
            name,
            version,
            source,
        } => {
            let w = ctx
                .workflows()
                .await?
                .get_workflow(pb::GetWorkflowRequest { name, version })
                .await?
                .into_inner()
                .workflow
                .context("server returned no workflow")?;
            if source {
                print!("{}", w.source);
            } else {
                println!("workflow {} v{} (sha256 {})", w.name, w.version, w.sha256);
                if !w.description.is_empty() {
                    println!("  {}", w.description);
                }
                for n in &w.nodes {
                    let needs = if n.needs.is_empty() {
                        String::new()
                    } else {
                        format!(" needs {}", n.needs.join(", "))
                    };
                    println!("  {} - {}{needs}", n.id, n.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let list = ctx
                .workflows()
                .await?
                .list_workflows(pb::ListWorkflowsRequest {})
                .await?
                .into_inner();
            for w in list.workflows {
                println!("{} v{}", w.name, w.latest_version);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Validates every file, printing all problems; exit 0 when all are valid, 1 otherwise.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(source) => match opsgate_domain::Workflow::parse(&name, &source) {
                Ok(w) => println!("{name}: ok ({}, {} nodes)", w.name(), w.nodes().len()),
                Err(e) => {
                    ok = false;
                    println!("{e}");
                }
            },
            Err(e) => {
                ok = false;
                println!("{name}: cannot read: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    }
}
