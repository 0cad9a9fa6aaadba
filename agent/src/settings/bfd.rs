//! `bfd` of a neighbor and of the Kubernetes mesh: BFD's timers.

use serde::Deserialize;

use super::{bad, SettingsError};

/// BFD (RFC 5880) for a session: its failure ends the BGP session at once.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bfd {
    #[serde(default = "super::yes")]
    pub enabled: bool,
    /// Required Min RX Interval, milliseconds.
    #[serde(default = "default_bfd_interval")]
    pub min_rx: u32,
    /// Desired Min TX Interval, milliseconds.
    #[serde(default = "default_bfd_interval")]
    pub min_tx: u32,
    /// Detect Mult: packets missed before the session is declared down.
    #[serde(default = "default_bfd_multiplier")]
    pub multiplier: u8,
}

impl Bfd {
    /// The defaults FRR and MetalLB use: 300 ms both ways, 3 missed.
    pub fn on() -> Bfd {
        Bfd {
            enabled: true,
            min_rx: default_bfd_interval(),
            min_tx: default_bfd_interval(),
            multiplier: default_bfd_multiplier(),
        }
    }

    pub fn off() -> Bfd {
        Bfd {
            enabled: false,
            ..Bfd::on()
        }
    }

    /// Check the values; `key` names the table in errors.
    pub(super) fn check(&self, key: &str) -> Result<(), SettingsError> {
        for (name, ms) in [("min_rx", self.min_rx), ("min_tx", self.min_tx)] {
            if !(10..=60_000).contains(&ms) {
                let why = "milliseconds, from 10 to 60000";
                return Err(bad(&format!("{key}.{name}"), ms, why));
            }
        }
        if self.multiplier == 0 {
            return Err(bad(&format!("{key}.multiplier"), 0, "must be 1 to 255"));
        }
        Ok(())
    }
}

fn default_bfd_interval() -> u32 {
    300
}

fn default_bfd_multiplier() -> u8 {
    3
}
