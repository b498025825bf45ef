//! The `[resources]` section: what each task of a job needs of a worker.

use iog_ledger::Amount;
use iog_sched::Requirements;
use iog_sched::request::RequirementsError;
use iog_types::DeviceKind;
use serde::{Deserialize, Serialize};

use crate::error::SpecError;

/// Largest `resources.memory_gib_min` accepted.
pub const MEMORY_GIB_MAX: f64 = 1_048_576.0;

/// The `[resources]` section. Every field is optional; a job without the
/// section takes one CPU slot on any worker.
///
/// Asking for a `gpu` places each task on a worker's GPU (one of
/// its devices is reserved for the task). The hash search then runs on
/// that GPU where the worker has its kernel (a worker built with the `gpu`
/// feature); the other built-in workloads, and workers without kernels,
/// still compute on the worker's CPU. The output is the same either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// `cpu` (the default), `gpu`, or `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Devices of one worker each task uses at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Memory each device must have, in GiB (decimals allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib_min: Option<f64>,
    /// Acceptable device models, matched as parts of the name (`H100`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Acceptable worker regions (`eu`, `us-east`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// The most paid per device-hour, such as `"0.8"`; a paid job is also
    /// capped by `payment.price_io_per_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_io_per_device_hour_max: Option<String>,
    /// Lowest trust level of a worker (0 to 4; 0, the default, takes anyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_min: Option<u8>,
    /// Makes the job a gang: all its tasks start together on distinct
    /// workers whose estimated pairwise round trip stays under this many
    /// milliseconds, or none starts (at most 256 tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang_latency_ms_max: Option<u32>,
    /// Replicas of a task (`verify` by replication) run on devices of the
    /// model an earlier replica ran on, for results that agree only
    /// between devices that compute alike. A `train` job always does this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_same_model: Option<bool>,
}

impl ResourcesSpec {
    /// Where the tasks ask to run: on a GPU for `gpu` (a worker with a GPU
    /// kernel for the workload runs it there), else on the CPU. `any` may
    /// be placed on a CPU, so it does not ask for a GPU kernel.
    pub fn device_choice(&self) -> crate::DeviceChoice {
        match self.device.as_deref() {
            Some("gpu") => crate::DeviceChoice::Gpu,
            _ => crate::DeviceChoice::Cpu,
        }
    }

    /// The section as requirements, capped at `price_cap` per device-hour
    /// (the job's payment price, or zero for a free job). Errors name the field.
    pub fn requirements(&self, price_cap: Amount) -> Result<Requirements, SpecError> {
        let kind = match self.device.as_deref() {
            None | Some("cpu") => Some(DeviceKind::Cpu),
            Some("gpu") => Some(DeviceKind::Gpu),
            Some("any") => None,
            Some(other) => {
                return Err(SpecError::invalid("resources.device", format!("must be cpu, gpu or any; got {other:?}")));
            }
        };
        let memory_bytes_min = match self.memory_gib_min {
            None => 0,
            Some(gib) if gib.is_finite() && (0.0..=MEMORY_GIB_MAX).contains(&gib) => {
                (gib * f64::from(1u32 << 30)) as u64
            }
            Some(gib) => {
                return Err(SpecError::invalid(
                    "resources.memory_gib_min",
                    format!("must be between 0 and {MEMORY_GIB_MAX}, got {gib}"),
                ));
            }
        };
        let mut cap = price_cap;
        if let Some(text) = &self.price_io_per_device_hour_max {
            let max: Amount = text.parse().map_err(|err| {
                SpecError::invalid(
                    "resources.price_io_per_device_hour_max",
                    format!("must be an amount of IO such as \"0.8\": {err}"),
                )
            })?;
            cap = cap.min(max);
        }
        let requirements = Requirements {
            kind,
            count: self.count.unwrap_or(1),
            memory_bytes_min,
            models: self.models.clone(),
            regions: self.regions.clone(),
            price_io_per_device_hour_max: Some(cap),
            trust_min: self.trust_min.unwrap_or(0),
            gang_latency_ms_max: self.gang_latency_ms_max,
            software: Vec::new(),
            replicas_same_model: self.replicas_same_model.unwrap_or(false),
        };
        requirements.validate().map_err(|err| {
            let field = match err {
                RequirementsError::Count(_) => "resources.count",
                RequirementsError::TooManyChoices { field: "models", .. } | RequirementsError::Model(_) => {
                    "resources.models"
                }
                RequirementsError::TooManyChoices { .. } | RequirementsError::Region(_) => "resources.regions",
                RequirementsError::Trust(_) => "resources.trust_min",
                RequirementsError::GangLatency(_) => "resources.gang_latency_ms_max",
                RequirementsError::Software(_) => "job.workload",
            };
            let message = err.to_string();
            let message = message.strip_prefix(field).map(str::trim_start).unwrap_or(&message).to_owned();
            SpecError::invalid(field, message)
        })?;
        Ok(requirements)
    }
}
