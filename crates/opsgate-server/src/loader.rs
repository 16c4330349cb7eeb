//! Registers every workflow file of a directory at start-up; all problems of all files are reported together.

use std::path::{Path, PathBuf};

use opsgate_domain::Actor;
use opsgate_store::Store;

/// Who registers the workflows directory's files at start-up (recorded with each new version).
pub const LOADER_ACTOR: &str = "opsgate serve (workflows directory)";

use crate::error::StartError;

/// One workflow file as registered.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    pub file: PathBuf,
    pub name: String,
    pub version: u32,
    /// False when the file was already registered unchanged.
    pub created: bool,
}

/// Validates every `*.yaml`/`*.yml` file in `dir` (sorted by name), then registers them.
/// Nothing is registered when any file is invalid.
pub async fn load_workflows(store: &Store, dir: &Path) -> Result<Vec<LoadedWorkflow>, StartError> {
    let unreadable = |e: std::io::Error| StartError::Workflows(format!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();

    let mut sources = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(source) => match opsgate_domain::Workflow::parse(&name, &source) {
                Ok(workflow) => sources.push((file, workflow, source)),
                Err(e) => problems.push(e.to_string()),
            },
            Err(e) => problems.push(format!("{name}: cannot read: {e}")),
        }
    }
    // Two files declaring one name would register each other as new versions at every start.
    let mut seen: std::collections::HashMap<String, &PathBuf> = std::collections::HashMap::new();
    for (file, workflow, _) in &sources {
        let name = workflow.name().to_string();
        if let Some(first) = seen.insert(name.clone(), file) {
            problems.push(format!(
                "{}: declares workflow '{name}', as {} does already: give each file its own \
                 `name:` (one file per workflow; versions come from changing the file)",
                file.display(),
                first.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(StartError::Workflows(problems.join("\n")));
    }

    let actor = Actor::parse(LOADER_ACTOR).map_err(|e| StartError::Workflows(e.to_string()))?;
    let mut loaded = Vec::with_capacity(sources.len());
    for (file, workflow, source) in sources {
        let name = file.display().to_string();
        let registered = store
            .register_parsed(workflow, &name, &source, &actor)
            .await?;
        loaded.push(LoadedWorkflow {
            file,
            name: registered.record.workflow.name().to_string(),
            version: registered.record.version,
            created: registered.created,
        });
    }
    Ok(loaded)
}
