//! Why a task's requirements match no offer, in words a submitter can act on.

use iog_ledger::Amount;
use iog_types::DeviceKind;

use crate::offer::DeviceGroup;
use crate::request::Requirements;

/// One filter of [`explain_unplaceable`]: what passes it, the words that
/// name it (none when the requirement does not constrain it), and what the
/// groups it dropped offer instead.
type Step<'r> = (&'r dyn Fn(&Offered) -> bool, Option<String>, &'r dyn Fn(&[Offered]) -> String);

/// One device group as [`explain_unplaceable`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    pub group: &'a DeviceGroup,
    pub region: &'a str,
    pub trust: u8,
    pub price_io_per_device_hour: Amount,
    /// Names of the software its worker offers.
    pub software: &'a [String],
}

/// `None` when some offered group meets every hard constraint (it may be
/// busy now); otherwise the reason no worker can take the task, such as
/// `no worker offers a gpu with ≥ 24 GiB in region eu; 2 do elsewhere: asia, us-east`.
///
/// The constraints are applied in a fixed order (kind and memory, model,
/// software, count, region, trust, price); the message names every constraint up to
/// the one that left nothing, and what the groups that passed the others
/// offer instead.
pub fn explain_unplaceable<'a>(
    requirements: &Requirements,
    offered: impl IntoIterator<Item = Offered<'a>>,
) -> Option<String> {
    let all: Vec<Offered<'a>> = offered.into_iter().collect();
    if all.is_empty() {
        return Some("no worker is online".to_owned());
    }
    let mut said: Vec<String> = Vec::new();
    let mut left = all;
    let devices = describe_devices(requirements);
    said.push(devices.clone());
    let steps: [Step<'_>; 6] = [
        (&|o: &Offered| requirements.fits_device(o.group), None, &|others: &[Offered]| {
            let models = distinct(others.iter().map(|o| format!("{} ({})", o.group.model, gib(o.group.memory_bytes))));
            format!("online: {models}")
        }),
        (
            &|o: &Offered| requirements.fits_software(o.software),
            (!requirements.software.is_empty()).then(|| format!("running {}", requirements.software.join(" and "))),
            &|others: &[Offered]| {
                let verb = if others.len() == 1 { "does" } else { "do" };
                let example = if requirements.software.iter().any(|name| name == "process") {
                    "[executors.process], and installs the programs a job requires"
                } else {
                    "[executors.wasm]"
                };
                format!(
                    "{} {verb} without it (a worker's owner turns executors on in worker.toml, e.g. {example})",
                    others.len()
                )
            },
        ),
        (
            &|o: &Offered| o.group.count >= requirements.count,
            (requirements.count > 1).then(|| "on one worker".to_owned()),
            &|others: &[Offered]| {
                let most = others.iter().map(|o| o.group.count).max().unwrap_or(0);
                format!("the most on one worker is {most}")
            },
        ),
        (
            &|o: &Offered| requirements.fits_region(o.region),
            (!requirements.regions.is_empty()).then(|| format!("in region {}", requirements.regions.join(" or "))),
            &|others: &[Offered]| {
                let verb = if others.len() == 1 { "does" } else { "do" };
                format!("{} {verb} elsewhere: {}", others.len(), distinct(others.iter().map(|o| o.region.to_owned())))
            },
        ),
        (
            &|o: &Offered| o.trust >= requirements.trust_min,
            (requirements.trust_min > 0).then(|| format!("at trust level ≥ {}", requirements.trust_min)),
            &|others: &[Offered]| {
                let best = others.iter().map(|o| o.trust).max().unwrap_or(0);
                format!("the highest trust level among them is {best}")
            },
        ),
        (
            &|o: &Offered| requirements.fits_price(o.price_io_per_device_hour),
            requirements.price_io_per_device_hour_max.map(|max| format!("at ≤ {max} per device-hour")),
            &|others: &[Offered]| {
                let cheapest = others.iter().map(|o| o.price_io_per_device_hour).min().unwrap_or(Amount::ZERO);
                format!("the cheapest asks {cheapest}")
            },
        ),
    ];
    for (keep, words, instead) in steps {
        if let Some(words) = words {
            said.push(words);
        }
        let (kept, dropped): (Vec<Offered>, Vec<Offered>) = left.into_iter().partition(|o| keep(o));
        if kept.is_empty() {
            return Some(format!("no worker offers {}; {}", said.join(" "), instead(&dropped)));
        }
        left = kept;
    }
    None
}

fn describe_devices(requirements: &Requirements) -> String {
    let kind = match requirements.kind {
        Some(DeviceKind::Gpu) => "gpu",
        Some(DeviceKind::Cpu) => "cpu",
        None => "device",
    };
    let mut words =
        if requirements.count > 1 { format!("{} × {kind}", requirements.count) } else { format!("a {kind}") };
    if !requirements.models.is_empty() {
        words = format!("{words} of model {}", requirements.models.join(" or "));
    }
    if requirements.memory_bytes_min > 0 {
        words = format!("{words} with ≥ {}", gib(requirements.memory_bytes_min));
    }
    words
}

fn gib(bytes: u64) -> String {
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if gib.fract() == 0.0 { format!("{gib:.0} GiB") } else { format!("{gib:.1} GiB") }
}

/// Up to five distinct values in sorted order (so the same fleet always
/// reads the same, whatever order its workers joined in), then how many more.
fn distinct(values: impl Iterator<Item = String>) -> String {
    let seen: std::collections::BTreeSet<String> = values.collect();
    let mut seen: Vec<String> = seen.into_iter().collect();
    let more = seen.len().saturating_sub(5);
    seen.truncate(5);
    let mut text = seen.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(kind: DeviceKind, model: &str, gib: u64, count: u32) -> DeviceGroup {
        DeviceGroup {
            kind,
            model: model.to_owned(),
            memory_bytes: gib << 30,
            count,
            compute_capability: None,
            driver: None,
            kernels: false,
        }
    }

    #[test]
    fn names_the_constraint_that_leaves_nothing() {
        let wasm = ["wasm".to_owned()];
        let (a, b, c) = (
            group(DeviceKind::Gpu, "RTX 4090", 24, 1),
            group(DeviceKind::Gpu, "A100", 80, 8),
            group(DeviceKind::Cpu, "EPYC", 256, 64),
        );
        let offered = [
            Offered {
                group: &a,
                region: "us-east",
                trust: 1,
                price_io_per_device_hour: Amount::from_base_units(400_000_000),
                software: &[],
            },
            Offered {
                group: &b,
                region: "asia",
                trust: 2,
                price_io_per_device_hour: Amount::from_base_units(1_500_000_000),
                software: &[],
            },
            Offered { group: &c, region: "eu", trust: 2, price_io_per_device_hour: Amount::ZERO, software: &wasm },
        ];
        let mut req =
            Requirements { kind: Some(DeviceKind::Gpu), memory_bytes_min: 24 << 30, ..Requirements::default() };
        assert_eq!(explain_unplaceable(&req, offered), None);
        req.regions = vec!["eu".to_owned()];
        assert_eq!(
            explain_unplaceable(&req, offered).unwrap(),
            "no worker offers a gpu with ≥ 24 GiB in region eu; 2 do elsewhere: asia, us-east"
        );
        req.regions.clear();
        req.memory_bytes_min = 100 << 30;
        assert_eq!(
            explain_unplaceable(&req, offered).unwrap(),
            "no worker offers a gpu with ≥ 100 GiB; online: A100 (80 GiB), EPYC (256 GiB), RTX 4090 (24 GiB)"
        );
        req.memory_bytes_min = 0;
        req.price_io_per_device_hour_max = Some(Amount::from_base_units(300_000_000));
        assert_eq!(
            explain_unplaceable(&req, offered).unwrap(),
            "no worker offers a gpu at ≤ 0.3 IO per device-hour; the cheapest asks 0.4 IO"
        );
        req.price_io_per_device_hour_max = None;
        req.count = 16;
        assert_eq!(
            explain_unplaceable(&req, offered).unwrap(),
            "no worker offers 16 × gpu on one worker; the most on one worker is 8"
        );
        assert_eq!(explain_unplaceable(&req, []).unwrap(), "no worker is online");
        let wasm_job = Requirements { software: vec!["wasm".to_owned()], ..Requirements::one(DeviceKind::Gpu) };
        assert_eq!(
            explain_unplaceable(&wasm_job, offered).unwrap(),
            "no worker offers a gpu running wasm; 2 do without it (a worker's owner turns executors on in \
             worker.toml, e.g. [executors.wasm])"
        );
        assert_eq!(explain_unplaceable(&Requirements { kind: None, ..wasm_job }, offered), None);
    }
}
