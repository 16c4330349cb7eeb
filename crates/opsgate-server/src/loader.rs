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

/// Largest template file a workflow may reference.
pub const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// Parses the workflow `source` read from `file`, its `template:` paths checked against the
/// files beside it (every problem reported at once, each at its line and column).
pub fn parse_file(
    file: &Path,
    source: &str,
) -> Result<opsgate_domain::Workflow, opsgate_domain::WorkflowErrors> {
    let dir = file.parent().unwrap_or(Path::new("."));
    opsgate_domain::Workflow::parse_with_templates(&file.display().to_string(), source, &|t| {
        template_problem(dir, t)
    })
}

/// Why `template` (a `template:` path of a workflow in `dir`) cannot be used, if it cannot: it
/// must be a relative path inside `dir` naming a readable UTF-8 file of at most
/// [`MAX_TEMPLATE_BYTES`].
pub fn template_problem(dir: &Path, template: &str) -> Option<String> {
    let relative = Path::new(template);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Some(
            "must be a path relative to the workflow's directory, without `..` (or an              https:// link)"
                .to_owned(),
        );
    }
    let path = dir.join(relative);
    match std::fs::metadata(&path) {
        Err(_) => Some(format!("does not exist ({})", path.display())),
        Ok(m) if !m.is_file() => Some(format!("is not a file ({})", path.display())),
        Ok(m) if m.len() > MAX_TEMPLATE_BYTES => Some(format!(
            "is {} bytes, the limit is {MAX_TEMPLATE_BYTES} ({})",
            m.len(),
            path.display()
        )),
        Ok(_) => match std::fs::read(&path) {
            Ok(bytes) if std::str::from_utf8(&bytes).is_ok() => None,
            Ok(_) => Some(format!("is not UTF-8 text ({})", path.display())),
            Err(e) => Some(format!("cannot be read ({}: {e})", path.display())),
        },
    }
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
            Ok(source) => match parse_file(&file, &source) {
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
        // Checked when parsed: each path is a text file inside the directory.
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut templates = Vec::new();
        for path in workflow.template_paths() {
            let content = std::fs::read_to_string(dir.join(path))
                .map_err(|e| StartError::Workflows(format!("{name}: template {path}: {e}")))?;
            templates.push((path.to_owned(), content));
        }
        let registered = store
            .register_parsed(workflow, &name, &source, &templates, &actor)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_must_be_a_readable_text_file_inside_the_workflows_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/ok.md"), "# ok\n").unwrap();
        std::fs::write(dir.path().join("templates/bin.md"), [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(template_problem(dir.path(), "templates/ok.md"), None);
        for (path, says) in [
            ("templates/none.md", "does not exist"),
            ("templates", "is not a file"),
            ("templates/bin.md", "is not UTF-8 text"),
            ("../secret.md", "relative to the workflow's directory"),
            ("/etc/passwd", "relative to the workflow's directory"),
        ] {
            let problem = template_problem(dir.path(), path).unwrap_or_default();
            assert!(problem.contains(says), "{path}: {problem}");
        }
    }
}
