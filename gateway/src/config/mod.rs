//! The gateway config: TOML file (+ `VPNGW_*` environment overrides) -> validated `Config`.

mod env_override;
mod error;
mod model;
mod proposals;
mod raw;
mod secret;
mod summary;
mod validate;

pub use env_override::PREFIX as ENV_PREFIX;
pub use error::{ConfigError, Issue};
pub use model::*;
pub use proposals::ProposalList;
pub use secret::Secret;

use error::Issues;
use std::path::Path;
use zeroize::Zeroize;

impl Config {
    /// Reads and validates `file`, applying `VPNGW_*` overrides from the process environment.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (tests pass their own).
    pub fn load_with_env(
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        let base_dir = file.parent().unwrap_or(Path::new("."));
        let result = Self::parse(&text, file, base_dir, env);
        // The text may hold inline PSKs.
        text.zeroize();
        result
    }

    /// Parses and validates TOML `text`; `file` only names the source in errors and
    /// `base_dir` resolves relative `psk_file` paths.
    pub fn parse(
        text: &str,
        file: &Path,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let invalid = |issues: Issues| ConfigError::Invalid {
            file: file.to_owned(),
            issues: issues.into_vec(),
        };
        let mut doc: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        let mut issues = Issues::default();
        env_override::apply(&mut doc, env, &mut issues);
        if !issues.is_empty() {
            scrub_psks(&mut doc);
            return Err(invalid(issues));
        }
        // By value: inline PSK strings move into `Secret`s instead of being copied.
        let raw: Result<raw::RawConfig, _> = serde_path_to_error::deserialize(doc);
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                let path = e.path().to_string();
                // toml appends a "in `table`" line; the path already says where.
                let reason = e.into_inner().to_string();
                let first = reason.lines().next().unwrap_or_default().to_owned();
                issues.push(path, first);
                return Err(invalid(issues));
            }
        };
        let mut ctx = validate::Ctx {
            issues: &mut issues,
            base_dir,
        };
        match validate::config(&mut ctx, raw) {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(invalid(issues)),
        }
    }
}

/// Wipes every `psk` string left in the parsed document.
fn scrub_psks(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                match v {
                    toml::Value::String(s) if k == "psk" => s.zeroize(),
                    other => scrub_psks(other),
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(scrub_psks),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
