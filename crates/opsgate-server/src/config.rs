//! The server's configuration file (`opsgate.toml`): read and checked here, then merged with
//! flags and environment variables, which win. One type for all three: [`crate::Config`].
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:50051"
//! database_url = "postgres://opsgate@db.internal/opsgate"
//! workflows = "/etc/opsgate/workflows"
//! state_cache_mib = 40
//! insecure_dev = false
//! ```
//! Later features (notifiers, identity providers, the web UI) add their own sections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What `opsgate.toml` may say. Every key is optional; unknown keys are refused (a typo must
/// not silently fall back to a default).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
}

/// `[server]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    /// Relative paths are relative to the file's directory.
    pub workflows: Option<PathBuf>,
    pub state_cache_mib: Option<usize>,
    pub insecure_dev: Option<bool>,
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_CONFIG_BYTES} bytes; is it the right file?")]
    TooLarge { path: String },
    /// `path:line:col: message`, like every other input problem.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigFile {
    /// Reads and checks `path`; relative paths in it become relative to its directory.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut file = Self::parse(&shown, &text)?;
        if let (Some(dir), Some(workflows)) = (path.parent(), file.server.workflows.as_mut())
            && workflows.is_relative()
        {
            *workflows = dir.join(&*workflows);
        }
        Ok(file)
    }

    /// Parses the text of a file named `name` (for messages).
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid(format!("{name}:{line}:{col}: {}", e.message()))
        })
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_every_key_parses() {
        let file = ConfigFile::parse(
            "opsgate.toml",
            "[server]\nlisten = \"0.0.0.0:50051\"\ndatabase_url = \"sqlite://x.db\"\nworkflows = \"wf\"\nstate_cache_mib = 8\ninsecure_dev = true\n",
        )
        .unwrap();
        assert_eq!(file.server.state_cache_mib, Some(8));
        assert_eq!(file.server.insecure_dev, Some(true));
        assert_eq!(
            ConfigFile::parse("e.toml", "").unwrap(),
            ConfigFile::default()
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let example = include_str!("../../../opsgate.example.toml");
        let file = ConfigFile::parse("opsgate.example.toml", example).unwrap();
        assert_eq!(file.server.insecure_dev, Some(false));
        assert!(file.server.listen.is_some() && file.server.database_url.is_some());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let err = ConfigFile::parse("opsgate.toml", "[server]\nlisten = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("opsgate.toml:2:10: "), "{err}");
        let err = ConfigFile::parse("opsgate.toml", "[server]\nlsten = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("opsgate.toml:2:1: unknown field `lsten`"),
            "{err}"
        );
        assert!(err.contains("listen"), "{err}");
    }
}
