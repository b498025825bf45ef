//! What a task needs: hard constraints that a worker's offer must meet.

use iog_ledger::Amount;
use iog_types::DeviceKind;
use serde::{Deserialize, Serialize};

use crate::offer::{DeviceGroup, GROUP_COUNT_MAX, valid_region, valid_software_name};

/// Most models or regions one requirement may list.
pub const CHOICES_MAX: usize = 16;
/// Longest model pattern accepted.
pub const MODEL_BYTES_MAX: usize = 64;
/// Highest trust level there is.
pub const TRUST_LEVEL_MAX: u8 = 4;
/// Loosest latency bound a gang may ask for.
pub const GANG_LATENCY_MS_MAX: u32 = 60_000;
/// Most tasks (so workers) in one gang.
pub const GANG_SIZE_MAX: usize = crate::gang::CANDIDATES_MAX;

/// The hard constraints of each task of a job. A task is placed only on a
/// device group that meets every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirements {
    /// Which kind of device; `None` takes any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DeviceKind>,
    /// Devices of one worker the task uses at once.
    #[serde(default = "one")]
    pub count: u32,
    /// Memory each device must have.
    #[serde(default)]
    pub memory_bytes_min: u64,
    /// Acceptable models, matched case-insensitively as parts of the
    /// model's name (`H100` matches `NVIDIA H100 80GB HBM3`); empty takes any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Acceptable regions; empty takes any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Highest price per device-hour the submitter pays; `None` takes any.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::offer::amount_opt")]
    pub price_io_per_device_hour_max: Option<Amount>,
    /// Lowest trust level of the worker (0 = anyone, up to [`TRUST_LEVEL_MAX`]).
    #[serde(default)]
    pub trust_min: u8,
    /// When set, the job's tasks form a **gang**: they are placed all at
    /// once, on distinct workers whose estimated pairwise round-trip time
    /// stays under this bound, or not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_latency_ms_max: Option<u32>,
    /// Software the worker must offer, by name (`wasm`); empty needs none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
    /// Replicas of a task (verification by replication) run on devices of
    /// the model an earlier replica ran on: for work whose results agree
    /// closely only between devices that compute alike, such as training
    /// rounds, whose sums round differently on another CPU. While no other
    /// worker known to the coordinator has that model, a replica goes to
    /// any device that fits rather than wait for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replicas_same_model: bool,
}

fn one() -> u32 {
    1
}

impl Default for Requirements {
    fn default() -> Requirements {
        Requirements {
            kind: None,
            count: 1,
            memory_bytes_min: 0,
            models: Vec::new(),
            regions: Vec::new(),
            price_io_per_device_hour_max: None,
            trust_min: 0,
            gang_latency_ms_max: None,
            software: Vec::new(),
            replicas_same_model: false,
        }
    }
}

/// A requirement that cannot be used; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementsError {
    #[error("resources.count must be between 1 and {GROUP_COUNT_MAX}, got {0}")]
    Count(u32),
    #[error("resources.{field} lists at most {CHOICES_MAX} entries, got {n}")]
    TooManyChoices { field: &'static str, n: usize },
    #[error("resources.regions: {0:?} is not a region name (lowercase letters, digits and '-')")]
    Region(String),
    #[error("resources.models: {0:?} must be 1 to {MODEL_BYTES_MAX} bytes")]
    Model(String),
    #[error("resources.trust_min must be at most {TRUST_LEVEL_MAX}, got {0}")]
    Trust(u8),
    #[error("resources.gang_latency_ms_max must be between 1 and {GANG_LATENCY_MS_MAX}, got {0}")]
    GangLatency(u32),
    #[error("software {0:?} is not a software name (lowercase letters, digits and '-')")]
    Software(String),
}

impl Requirements {
    /// One device of `kind`, nothing else asked.
    pub fn one(kind: DeviceKind) -> Requirements {
        Requirements { kind: Some(kind), ..Requirements::default() }
    }

    pub fn validate(&self) -> Result<(), RequirementsError> {
        if self.count == 0 || self.count > GROUP_COUNT_MAX {
            return Err(RequirementsError::Count(self.count));
        }
        for (field, list) in [("models", &self.models), ("regions", &self.regions), ("software", &self.software)] {
            if list.len() > CHOICES_MAX {
                return Err(RequirementsError::TooManyChoices { field, n: list.len() });
            }
        }
        if let Some(region) = self.regions.iter().find(|region| !valid_region(region)) {
            return Err(RequirementsError::Region(region.clone()));
        }
        if let Some(model) = self.models.iter().find(|m| m.is_empty() || m.len() > MODEL_BYTES_MAX) {
            return Err(RequirementsError::Model(model.clone()));
        }
        if let Some(name) = self.software.iter().find(|name| !valid_software_name(name)) {
            return Err(RequirementsError::Software(name.clone()));
        }
        if self.trust_min > TRUST_LEVEL_MAX {
            return Err(RequirementsError::Trust(self.trust_min));
        }
        if let Some(bound) = self.gang_latency_ms_max
            && !(1..=GANG_LATENCY_MS_MAX).contains(&bound)
        {
            return Err(RequirementsError::GangLatency(bound));
        }
        Ok(())
    }

    /// Whether a group's devices are of the kind, memory and model asked for
    /// (its free count, region, trust and price are checked elsewhere).
    pub fn fits_device(&self, group: &DeviceGroup) -> bool {
        self.kind.is_none_or(|kind| kind == group.kind)
            && group.memory_bytes >= self.memory_bytes_min
            && self.fits_model(&group.model)
    }

    pub fn fits_model(&self, model: &str) -> bool {
        self.models.is_empty() || {
            let model = model.to_ascii_lowercase();
            self.models.iter().any(|wanted| model.contains(&wanted.to_ascii_lowercase()))
        }
    }

    pub fn fits_region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }

    /// Whether a worker offering `software` (names, any order) has all
    /// this needs.
    pub fn fits_software(&self, software: &[String]) -> bool {
        self.software.iter().all(|needed| software.contains(needed))
    }

    pub fn fits_price(&self, price_io_per_device_hour: Amount) -> bool {
        self.price_io_per_device_hour_max.is_none_or(|max| price_io_per_device_hour <= max)
    }

    /// Every hard constraint at once.
    pub fn fits(
        &self,
        group: &DeviceGroup,
        free: u32,
        region: &str,
        trust: u8,
        price: Amount,
        software: &[String],
    ) -> bool {
        self.fits_device(group)
            && free >= self.count
            && self.fits_region(region)
            && trust >= self.trust_min
            && self.fits_price(price)
            && self.fits_software(software)
    }
}
