//! `[mrt]`: the BGP4MP update log (RFC 6396), as route collectors keep
//! theirs: every UPDATE received and every session state change, in files
//! of a fixed time span.

use std::path::PathBuf;

use serde::Deserialize;

use super::{bad, SettingsError};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mrt {
    /// Where the update files go (`updates.YYYYMMDD.HHMM`, UTC); empty:
    /// no log.
    #[serde(default)]
    pub updates_dir: PathBuf,
    /// Seconds a file spans.
    #[serde(default = "default_rotate")]
    pub rotate_seconds: u32,
    /// Files kept; the oldest go.
    #[serde(default = "default_keep")]
    pub keep_files: u32,
}

impl Default for Mrt {
    fn default() -> Self {
        Mrt {
            updates_dir: PathBuf::new(),
            rotate_seconds: default_rotate(),
            keep_files: default_keep(),
        }
    }
}

fn default_rotate() -> u32 {
    900
}

fn default_keep() -> u32 {
    96
}

impl Mrt {
    pub fn check(&self) -> Result<(), SettingsError> {
        let dir = &self.updates_dir;
        if !dir.as_os_str().is_empty() && !dir.is_absolute() {
            return Err(bad(
                "mrt.updates_dir",
                dir.display(),
                "expected an absolute path",
            ));
        }
        if !(60..=86_400).contains(&self.rotate_seconds) {
            return Err(bad(
                "mrt.rotate_seconds",
                self.rotate_seconds,
                "expected 60 to 86400",
            ));
        }
        if self.keep_files == 0 {
            return Err(bad("mrt.keep_files", 0, "expected 1 or more"));
        }
        Ok(())
    }

    /// Whether the log is on.
    pub fn logging(&self) -> bool {
        !self.updates_dir.as_os_str().is_empty()
    }
}
