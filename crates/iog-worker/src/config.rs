use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use iog_host::owner::OwnerPolicy;
use iog_ledger::Amount;
use iog_sched::{DeviceGroup, Offer, Window};
use iog_types::Device;
use serde::Deserialize;

/// How often the worker looks at its config file for changes.
pub const CONFIG_POLL_MS: u64 = 2_000;
/// How often the worker asks whether its owner is using the machine.
pub const OWNER_POLL_MS_DEFAULT: u64 = 1_000;
/// Largest config file read.
pub const CONFIG_FILE_BYTES_MAX: u64 = 64 << 10;

/// How to run a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Base URL of the coordinator, e.g. `http://127.0.0.1:7070`.
    pub coordinator_url: String,
    /// Where the worker keeps its identity key.
    pub data_dir: PathBuf,
    /// CPU tasks run at once. Default 1: the built-in workloads already use every core.
    pub slots: u32,
    /// The terms the worker offers its devices on.
    pub terms: OfferTerms,
    /// When the owner counts as using the machine; the default never does.
    pub owner: OwnerPolicy,
    /// How often the owner policy is checked. Default 1000 ms.
    pub owner_poll_ms: u64,
    /// A `worker.toml` to re-read while running: a changed offer reaches
    /// the coordinator within [`CONFIG_POLL_MS`], a broken file is reported
    /// and the running offer kept.
    pub config_file: Option<PathBuf>,
    /// First wait before reconnecting. Default 100 ms.
    pub reconnect_backoff_min_ms: u64,
    /// Longest wait between reconnect attempts. Default 5000 ms.
    pub reconnect_backoff_max_ms: u64,
    /// Where to answer peers' probes for network coordinates (UDP);
    /// `None` turns probing off. Default `0.0.0.0:0` (any free port).
    pub probe_bind: Option<SocketAddr>,
    /// How this worker cheats at hardware challenges or task results (tests only).
    #[cfg(feature = "cheats")]
    pub cheat: Option<crate::Cheat>,
}

/// Where a worker answers probes unless told otherwise: every address, any free port.
pub const PROBE_BIND_DEFAULT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Price, region and hours of an offer (its devices are discovered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTerms {
    pub region: String,
    pub price_io_per_device_hour: Amount,
    pub windows: Vec<Window>,
}

impl Default for OfferTerms {
    fn default() -> OfferTerms {
        OfferTerms {
            region: iog_sched::offer::REGION_DEFAULT.to_owned(),
            price_io_per_device_hour: Amount::ZERO,
            windows: Vec::new(),
        }
    }
}

impl WorkerConfig {
    pub fn new(coordinator_url: impl Into<String>, data_dir: PathBuf) -> WorkerConfig {
        WorkerConfig {
            coordinator_url: coordinator_url.into(),
            data_dir,
            slots: 1,
            terms: OfferTerms::default(),
            owner: OwnerPolicy::default(),
            owner_poll_ms: OWNER_POLL_MS_DEFAULT,
            config_file: None,
            reconnect_backoff_min_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            probe_bind: Some(PROBE_BIND_DEFAULT),
            #[cfg(feature = "cheats")]
            cheat: None,
        }
    }

    /// Takes slots, offer and owner policy from a config file's contents.
    pub fn apply(&mut self, file: &WorkerFile) {
        if let Some(slots) = file.slots {
            self.slots = slots;
        }
        self.terms = file.offer.terms();
        self.owner = file.owner.clone();
        if let Some(poll) = file.owner_poll_ms {
            self.owner_poll_ms = poll;
        }
        if !file.probe.enabled {
            self.probe_bind = None;
        } else if let Some(port) = file.probe.port {
            self.probe_bind = Some(SocketAddr::new(PROBE_BIND_DEFAULT.ip(), port));
        }
    }

    /// What the worker offers with these devices: GPUs of one model in one
    /// group, the CPU as a group of `slots`.
    pub fn offer(&self, devices: &[Device]) -> Offer {
        Offer {
            region: self.terms.region.clone(),
            price_io_per_device_hour: self.terms.price_io_per_device_hour,
            groups: DeviceGroup::from_devices(devices, self.slots),
            windows: self.terms.windows.clone(),
            idle_only: self.owner.is_active(),
        }
    }
}

/// The worker's config file, `worker.toml`:
///
/// ```toml
/// slots = 2                                  # CPU tasks at once
/// [offer]
/// region = "eu"
/// price_io_per_device_hour = "0.5"
/// windows = ["mon-fri 18:00-08:00", "sat,sun 00:00-24:00"]   # UTC; empty: always
/// [owner]                                    # take tasks only while the owner is away
/// gpu_busy = true                            # another process uses a GPU
/// busy_file = "/home/me/.iog-busy"           # this file exists
/// busy_command = "test $(xprintidle) -lt 300000"   # exits 0
/// [probe]                                    # round trips to peers, for gangs
/// port = 7071                                # UDP; default any free port
/// enabled = true                             # false: no probes (gangs see this
///                                            # worker by its coordinator round trip)
/// ```
///
/// The probe section is read at start only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerFile {
    #[serde(default)]
    pub slots: Option<u32>,
    #[serde(default)]
    pub owner_poll_ms: Option<u64>,
    #[serde(default)]
    pub offer: OfferFile,
    #[serde(default)]
    pub owner: OwnerPolicy,
    #[serde(default)]
    pub probe: ProbeFile,
}

/// The `[probe]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub port: Option<u16>,
}

fn enabled() -> bool {
    true
}

impl Default for ProbeFile {
    fn default() -> ProbeFile {
        ProbeFile { enabled: true, port: None }
    }
}

/// The `[offer]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferFile {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub price_io_per_device_hour: Option<String>,
    #[serde(default)]
    pub windows: Vec<String>,
}

impl OfferFile {
    fn terms(&self) -> OfferTerms {
        // `WorkerFile::parse` has checked every field, so these hold.
        OfferTerms {
            region: self.region.clone().unwrap_or_else(|| iog_sched::offer::REGION_DEFAULT.to_owned()),
            price_io_per_device_hour: self
                .price_io_per_device_hour
                .as_deref()
                .map_or(Amount::ZERO, |text| text.parse().expect("checked by parse")),
            windows: self.windows.iter().map(|w| Window::parse(w).expect("checked by parse")).collect(),
        }
    }
}

impl WorkerFile {
    /// Parses and checks a config file's text; the error names the field.
    pub fn parse(text: &str) -> Result<WorkerFile, String> {
        let file: WorkerFile = toml::from_str(text).map_err(|err| err.to_string().trim_end().to_owned())?;
        if let Some(slots) = file.slots
            && !(1..=64).contains(&slots)
        {
            return Err(format!("slots must be between 1 and 64, got {slots}"));
        }
        if let Some(region) = &file.offer.region
            && !iog_sched::offer::valid_region(region)
        {
            return Err(format!(
                "offer.region must be 1 to {} lowercase letters, digits or '-', got {region:?}",
                iog_sched::offer::REGION_BYTES_MAX
            ));
        }
        if let Some(price) = &file.offer.price_io_per_device_hour {
            price.parse::<Amount>().map_err(|err| {
                format!("offer.price_io_per_device_hour must be an amount of IO such as \"0.5\", got {price:?}: {err}")
            })?;
        }
        if file.offer.windows.len() > iog_sched::offer::WINDOWS_MAX {
            return Err(format!("offer.windows lists at most {} windows", iog_sched::offer::WINDOWS_MAX));
        }
        for window in &file.offer.windows {
            Window::parse(window).map_err(|err| format!("offer.windows: {err}"))?;
        }
        if file.owner_poll_ms.is_some_and(|ms| !(100..=60_000).contains(&ms)) {
            return Err("owner_poll_ms must be between 100 and 60000".to_owned());
        }
        Ok(file)
    }

    /// Reads and parses a config file.
    pub fn read(path: &Path) -> Result<WorkerFile, String> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(CONFIG_FILE_BYTES_MAX + 1).read_to_string(&mut text))
            .map_err(|err| format!("read {}: {err}", path.display()))?;
        if text.len() as u64 > CONFIG_FILE_BYTES_MAX {
            return Err(format!("{} is larger than {CONFIG_FILE_BYTES_MAX} bytes", path.display()));
        }
        WorkerFile::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_becomes_an_offer() {
        let file = WorkerFile::parse(
            r#"
            slots = 2
            [offer]
            region = "eu"
            price_io_per_device_hour = "0.5"
            windows = ["mon-fri 18:00-08:00"]
            [owner]
            busy_file = "/tmp/busy"
            [probe]
            port = 7071
            "#,
        )
        .unwrap();
        let mut config = WorkerConfig::new("http://x", PathBuf::from("/tmp"));
        config.apply(&file);
        let offer = config.offer(&[]);
        assert_eq!(offer.region, "eu");
        assert_eq!(offer.price_io_per_device_hour.to_string(), "0.5 IO");
        assert_eq!(offer.windows.len(), 1);
        assert!(offer.idle_only);
        assert_eq!(config.slots, 2);
        assert_eq!(config.probe_bind.unwrap().port(), 7071);
        config.apply(&WorkerFile::parse("[probe]\nenabled = false").unwrap());
        assert_eq!(config.probe_bind, None);
    }

    #[test]
    fn mistakes_name_the_field() {
        for (text, words) in [
            ("[offer]\nregion = \"EU\"", "offer.region"),
            ("[offer]\nprice_io_per_device_hour = \"cheap\"", "offer.price_io_per_device_hour"),
            ("[offer]\nwindows = [\"someday\"]", "offer.windows"),
            ("slots = 0", "slots must be"),
            ("[offer]\nprize = 1", "prize"),
            ("[probe]\nport = 70000", "port"),
        ] {
            let err = WorkerFile::parse(text).unwrap_err();
            assert!(err.contains(words), "{text}: {err}");
        }
    }
}
