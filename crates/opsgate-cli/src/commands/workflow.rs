//! `opsgate workflow ...`: offline validation, and register/get/list against a server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::NaiveDate;
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
    /// Print the workflow's DAG as Graphviz dot or Mermaid.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// The dated schedule for a start and go-live date: earliest and latest dates, critical path, late work.
    Plan {
        file: PathBuf,
        /// First day of the transition.
        #[arg(long, value_name = "YYYY-MM-DD")]
        start: NaiveDate,
        /// Target go-live date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        go_live: NaiveDate,
    },
    /// What changed between two versions of a workflow: files, or versions registered with the
    /// server (NAME@VERSION, NAME@latest).
    #[command(after_help = "Examples:\n  \
        opsgate workflow diff old/standard-transition.yaml workflows/standard-transition.yaml\n  \
        opsgate workflow diff standard-transition@1 standard-transition@2\n  \
        opsgate workflow diff standard-transition@latest workflows/standard-transition.yaml   \
        # what registering the file would change")]
    Diff {
        /// The old version: a workflow file, or NAME@VERSION of one registered with the server.
        #[arg(value_name = "OLD")]
        old: String,
        /// The new version: a workflow file, or NAME@VERSION of one registered with the server.
        #[arg(value_name = "NEW")]
        new: String,
    },
    /// The process description an SMO publishes: purpose, roles and responsibilities, contacts,
    /// meetings, every deliverable, the gate's checklist, post-go-live support, the graph.
    #[command(
        after_help = "Example: opsgate workflow docs workflows/standard-transition.yaml --format html > transition.html"
    )]
    Docs {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = DocsFormat::Markdown)]
        format: DocsFormat,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum DocsFormat {
    /// Markdown, the graph in Mermaid.
    Markdown,
    /// A standalone HTML page, the graph in SVG.
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Mermaid,
}

/// Reads and validates a workflow file; the error is every problem, one `file:line:col: message` a line.
/// Why a workflow file gave no workflow.
enum ReadError {
    /// The file could not be read at all (missing, a directory, no permission): an error.
    Unreadable(String),
    /// The file was read and is not a valid workflow: every problem, as `file:line:col: message`.
    Invalid(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unreadable(m) | ReadError::Invalid(m) => f.write_str(m),
        }
    }
}

/// A workflow file's text. Bytes that are not UTF-8 are a problem of the file, located at the
/// first bad byte like every other problem.
fn read_source(file: &PathBuf) -> Result<String, ReadError> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file)
        .map_err(|e| ReadError::Unreadable(format!("{name}: cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        let byte = e.as_bytes().get(good.len()).copied().unwrap_or_default();
        ReadError::Invalid(format!(
            "{name}:{line}:{col}: not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8"
        ))
    })
}

fn read(file: &PathBuf) -> Result<opsgate_domain::Workflow, ReadError> {
    let source = read_source(file)?;
    opsgate_server::loader::parse_file(file, &source).map_err(|e| ReadError::Invalid(e.to_string()))
}

/// A version `diff` compares: the file `what` names if there is one, else the version
/// `NAME@VERSION` (or `NAME@latest`) registered with the server.
async fn version(ctx: &Context, what: &str) -> anyhow::Result<opsgate_domain::Workflow> {
    let path = PathBuf::from(what);
    if path.exists() {
        return load(&path);
    }
    let Some((name, version)) = what.rsplit_once('@') else {
        anyhow::bail!(
            "{what}: no such file; name a workflow file, or a registered version as NAME@VERSION \
             (standard-transition@2, standard-transition@latest)"
        );
    };
    let version = match version {
        "latest" => None,
        n => Some(n.parse::<u32>().ok().filter(|&n| n > 0).with_context(|| {
            format!(
                "{what}: '{n}' is not a version; give a number from 1, or latest \
                 ({name}@1, {name}@latest)"
            )
        })?),
    };
    let w = ctx
        .workflows()
        .await?
        .get_workflow(ctx.reading(pb::GetWorkflowRequest {
            name: name.to_owned(),
            version,
        })?)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {}", crate::client::describe(&e.into())))?
        .into_inner()
        .workflow
        .context("server returned no workflow")?;
    let label = format!("{}@{}", w.name, w.version);
    opsgate_domain::Workflow::parse(&label, &w.source)
        .map_err(|e| anyhow::Error::msg(e.to_string()))
}

/// [`read`] for commands that stop at the first bad file.
fn load(file: &PathBuf) -> anyhow::Result<opsgate_domain::Workflow> {
    read(file).map_err(|e| anyhow::Error::msg(e.to_string()))
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Docs { file, format } => {
            let wf = load(&file)?;
            print!(
                "{}",
                match format {
                    DocsFormat::Markdown => opsgate_domain::docs::markdown(&wf),
                    DocsFormat::Html => opsgate_domain::docs::html(&wf),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { file, format } => {
            let wf = load(&file)?;
            print!(
                "{}",
                match format {
                    GraphFormat::Dot => wf.to_dot(),
                    GraphFormat::Mermaid => wf.to_mermaid(),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            file,
            start,
            go_live,
        } => {
            let wf = load(&file)?;
            if go_live < start {
                anyhow::bail!("--go-live {go_live} is before --start {start}");
            }
            let plan = wf.plan(start, go_live);
            print_plan(&wf, &plan);
            Ok(if plan.late.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NO)
            })
        }
        Command::Diff { old, new } => {
            let (old, new) = (version(ctx, &old).await?, version(ctx, &new).await?);
            let changes = old.diff(&new);
            if changes.is_empty() {
                println!("no changes");
            }
            for line in changes {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
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
                let source = read_source(&file).map_err(|e| anyhow::Error::msg(e.to_string()))?;
                let request = ctx.acting(pb::RegisterWorkflowRequest {
                    source,
                    file_name: file.display().to_string(),
                })?;
                let response = client.register_workflow(request).await?.into_inner();
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
                .get_workflow(ctx.reading(pb::GetWorkflowRequest { name, version })?)
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
                .list_workflows(ctx.reading(pb::ListWorkflowsRequest {})?)
                .await?
                .into_inner();
            for w in list.workflows {
                println!("{} v{}", w.name, w.latest_version);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Validates every file, printing all problems; exit 0 when all are valid, 1 when some is
/// invalid, 2 when some could not be read (every file is still checked).
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    let mut unreadable = false;
    for file in files {
        match read(file) {
            Ok(w) => println!(
                "{}: ok ({}, {} nodes)",
                file.display(),
                w.name(),
                w.nodes().len()
            ),
            Err(ReadError::Invalid(problems)) => {
                ok = false;
                println!("{problems}");
            }
            Err(ReadError::Unreadable(message)) => {
                unreadable = true;
                eprintln!("error: {message}");
            }
        }
    }
    if unreadable {
        ExitCode::from(crate::EXIT_ERROR)
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    }
}

fn print_plan(wf: &opsgate_domain::Workflow, plan: &opsgate_domain::workflow::Plan) {
    let width = wf
        .nodes()
        .iter()
        .map(|n| n.id.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<11}  {:<10}  {:<10}  {:<10}  {:<10}  {:>5}",
        "node", "kind", "earliest", "finish", "latest", "due", "slack"
    );
    for r in &plan.rows {
        let node = wf.node(r.node);
        let due = r.due.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let late = if r.slack_days < 0 { "  LATE" } else { "" };
        println!(
            "{:<width$}  {:<11}  {}  {}  {}  {:<10}  {:>4}d{late}",
            node.id.as_str(),
            node.kind.label(),
            r.earliest_start,
            r.earliest_finish,
            r.latest_finish,
            due,
            r.slack_days
        );
    }
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&i| wf.node(i).id.as_str())
        .collect();
    println!("critical path: {}", path.join(" -> "));
    if plan.late.is_empty() {
        println!("nothing is late for this go-live date");
    } else {
        let late: Vec<&str> = plan.late.iter().map(|&i| wf.node(i).id.as_str()).collect();
        println!("late for this go-live date: {}", late.join(", "));
    }
}
