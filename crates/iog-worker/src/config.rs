use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use iog_host::owner::OwnerPolicy;
use iog_ledger::Amount;
use iog_sched::{DeviceGroup, Offer, Window};
use iog_types::{Device, DeviceKind};
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
    /// Base URL of the coordinator, e.g. `https://coordinator.example:7070`.
    pub coordinator_url: String,
    /// The fingerprint the coordinator's certificate must have (a
    /// self-signed coordinator prints it on start); `None` trusts a
    /// certificate from a public authority.
    pub coordinator_pin: Option<iog_client::Fingerprint>,
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
    /// The executors for users' own code the owner lets this worker offer,
    /// with their caps; none by default.
    pub executors: Executors,
    /// Whether the built-in workloads' GPU kernels run on its GPUs.
    pub gpu: crate::GpuKernels,
    /// How this worker cheats at hardware challenges or task results (tests only).
    #[cfg(feature = "cheats")]
    pub cheat: Option<crate::Cheat>,
    /// The terms as set before any config file was applied (from flags):
    /// what a file that leaves a term out falls back to.
    flag_terms: Option<OfferTerms>,
}

/// Where a worker answers probes unless told otherwise: every address, any free port.
pub const PROBE_BIND_DEFAULT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Share of the machine's memory a worker lends when its owner names no
/// amount: a half, as BOINC's default for a machine in use. Hardware
/// challenges fill 7/8 of what is lent, while the worker runs no tasks.
pub const MEMORY_LENT_SHARE_DEFAULT: (u64, u64) = (1, 2);
/// Most memory an offer may lend: what a memory challenge can prove.
pub const MEMORY_LENT_BYTES_MAX: u64 = iog_trust::memory::MEMORY_BYTES_MAX;

/// Price, region, hours and lent memory of an offer (its devices are
/// discovered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTerms {
    pub region: String,
    pub price_io_per_device_hour: Amount,
    pub windows: Vec<Window>,
    /// Memory the CPU group lends to tasks, and proves in memory
    /// challenges; `None` lends [`MEMORY_LENT_SHARE_DEFAULT`] of the
    /// machine's. Never more than the machine has.
    pub memory_lent_bytes: Option<u64>,
}

impl Default for OfferTerms {
    fn default() -> OfferTerms {
        OfferTerms {
            region: iog_sched::offer::REGION_DEFAULT.to_owned(),
            price_io_per_device_hour: Amount::ZERO,
            windows: Vec::new(),
            memory_lent_bytes: None,
        }
    }
}

impl OfferTerms {
    /// The memory lent out of `machine_bytes`.
    pub fn memory_lent(&self, machine_bytes: u64) -> u64 {
        let (numerator, denominator) = MEMORY_LENT_SHARE_DEFAULT;
        self.memory_lent_bytes.unwrap_or(machine_bytes / denominator * numerator).min(machine_bytes)
    }
}

/// The executors for users' own code a worker offers. Each is off unless
/// its owner turns it on, and runs only tasks within its caps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Executors {
    /// WebAssembly modules, with the most any one task may use; needs a
    /// worker built with the `wasm` feature.
    pub wasm: Option<iog_workloads::WasmLimits>,
    /// Commands under bubblewrap (`process` and `blender` jobs).
    pub process: Option<ProcessCaps>,
}

/// What the owner lets the process executor do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCaps {
    /// The most any one task may use.
    pub limits: iog_workloads::ProcessLimits,
    /// Whether tasks may use the network (off unless the owner says so).
    pub network: bool,
    /// Programs looked for on the sandbox's PATH at start and offered
    /// (with their versions) when found, so jobs that require them come here.
    pub programs: Vec<String>,
    /// Whether tasks may run in container images, where podman is found.
    pub containers: bool,
    /// What the offer says of the sandbox: `bubblewrap` and how it bounds
    /// memory (`cgroup-v2`, `cgroup-v1`, `rlimit`), set at start.
    pub sandbox: String,
    /// What was found of them (and `container`, with podman's version,
    /// when images can run): filled at start by the agent.
    pub found: Vec<iog_sched::Software>,
}

/// The caps of the process executor when its owner names none: 8 GiB of
/// memory, one hour of CPU and of wall clock, 256 MiB of output, no
/// network.
pub const PROCESS_CAPS_DEFAULT: iog_workloads::ProcessLimits =
    iog_workloads::ProcessLimits { memory_bytes: 8 << 30, cpu_s: 3_600, wall_ms: 3_600_000, output_bytes: 256 << 20 };

/// The programs a process executor looks for when its owner lists none.
pub const PROCESS_PROGRAMS_DEFAULT: [&str; 2] = ["python3", "blender"];

impl ProcessCaps {
    /// The default caps, looking for the default programs.
    pub fn default_caps() -> ProcessCaps {
        ProcessCaps {
            limits: PROCESS_CAPS_DEFAULT,
            network: false,
            programs: PROCESS_PROGRAMS_DEFAULT.iter().map(|name| (*name).to_owned()).collect(),
            containers: true,
            sandbox: PROCESS_VERSION.to_owned(),
            found: Vec::new(),
        }
    }
}

/// The caps of the wasm executor when its owner names none: 10¹² instructions
/// (minutes of work), 1 GiB of memory, one hour, 256 MiB of output.
pub const WASM_CAPS_DEFAULT: iog_workloads::WasmLimits = iog_workloads::WasmLimits {
    fuel: 1_000_000_000_000,
    memory_bytes: 1 << 30,
    wall_ms: 3_600_000,
    output_bytes: 256 << 20,
};

/// Whether this build of the worker has the wasm executor.
pub const WASM_BUILT_IN: bool = cfg!(feature = "wasm");

/// Least memory an offer may lend: 1 MiB, well above the smallest fill a
/// memory challenge can plan, so a tiny setting cannot fail every round.
pub const MEMORY_LENT_BYTES_MIN: u64 = 1 << 20;

/// Bytes in `gib` GiB, if it is an amount an offer may lend; the error
/// names `field` and the range.
pub fn memory_gib_bytes(field: &str, gib: f64) -> Result<u64, String> {
    let max_gib = MEMORY_LENT_BYTES_MAX >> 30;
    let bytes = gib * f64::from(1u32 << 30);
    if !gib.is_finite() || bytes < MEMORY_LENT_BYTES_MIN as f64 || gib > max_gib as f64 {
        return Err(format!("{field} must be a number of GiB from 0.001 (1 MiB) to {max_gib}, got {gib}"));
    }
    Ok(bytes as u64)
}

impl WorkerConfig {
    pub fn new(coordinator_url: impl Into<String>, data_dir: PathBuf) -> WorkerConfig {
        WorkerConfig {
            coordinator_url: coordinator_url.into(),
            coordinator_pin: None,
            data_dir,
            slots: 1,
            terms: OfferTerms::default(),
            owner: OwnerPolicy::default(),
            owner_poll_ms: OWNER_POLL_MS_DEFAULT,
            config_file: None,
            reconnect_backoff_min_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            probe_bind: Some(PROBE_BIND_DEFAULT),
            executors: Executors::default(),
            gpu: crate::GpuKernels::default(),
            #[cfg(feature = "cheats")]
            cheat: None,
            flag_terms: None,
        }
    }

    /// Takes slots, offer and owner policy from a config file's contents.
    pub fn apply(&mut self, file: &WorkerFile) {
        if let Some(slots) = file.slots {
            self.slots = slots;
        }
        let flag_terms = self.flag_terms.get_or_insert_with(|| self.terms.clone());
        self.terms = file.offer.terms(flag_terms);
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

    /// Takes the executors a config file turns on (read at start only: the
    /// running executors do not change, and neither does what the offer
    /// says of them). A file without the section keeps the flags' choice.
    /// Takes the `[gpu]` section's settings; those it leaves out keep the
    /// flags'.
    pub fn apply_gpu(&mut self, file: &WorkerFile) {
        if let Some(kernels) = file.gpu.kernels {
            self.gpu.enabled = kernels;
        }
        if let Some(software) = file.gpu.software {
            self.gpu.software = software;
        }
    }

    pub fn apply_executors(&mut self, file: &WorkerFile) {
        if file.executors.wasm.is_some() {
            self.executors.wasm = file.executors.executors().wasm;
        }
        if file.executors.process.is_some() {
            self.executors.process = file.executors.executors().process;
        }
    }

    /// What the worker offers with these devices: GPUs of one model in one
    /// group, the CPU as a group of `slots` with the memory it lends.
    pub fn offer(&self, devices: &[Device]) -> Offer {
        let mut groups = DeviceGroup::from_devices(devices, self.slots);
        for group in groups.iter_mut().filter(|group| group.kind == DeviceKind::Cpu) {
            group.memory_bytes = self.terms.memory_lent(group.memory_bytes);
        }
        let mut software = Vec::new();
        if self.executors.wasm.is_some() && WASM_BUILT_IN {
            software.push(iog_sched::Software {
                name: iog_workloads::WASM_SOFTWARE.to_owned(),
                version: WASM_VERSION.to_owned(),
            });
        }
        if iog_workloads::train::ML_RUNTIME {
            // Built-in training and inference: no opt-in, like every other
            // built-in workload; a build without the runtime offers none.
            software.push(iog_sched::Software {
                name: iog_workloads::train::ML_SOFTWARE.to_owned(),
                version: iog_workloads::train::ML_VERSION.to_owned(),
            });
        }
        if let Some(process) = &self.executors.process {
            software.push(iog_sched::Software {
                name: iog_workloads::PROCESS_SOFTWARE.to_owned(),
                version: process.sandbox.clone(),
            });
            for found in &process.found {
                if !software.iter().any(|known| known.name == found.name) {
                    software.push(found.clone());
                }
            }
        }
        Offer {
            region: self.terms.region.clone(),
            price_io_per_device_hour: self.terms.price_io_per_device_hour,
            groups,
            windows: self.terms.windows.clone(),
            idle_only: self.owner.is_active(),
            software,
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
/// memory_gib = 8                             # lent to tasks and proven in
///                                            # challenges; default half the RAM
/// [owner]                                    # take tasks only while the owner is away
/// gpu_busy = true                            # another process uses a GPU
/// busy_file = "/home/me/.iog-busy"           # this file exists
/// busy_command = "test $(xprintidle) -lt 300000"   # exits 0
/// [executors.wasm]                           # run users' WebAssembly modules
/// enabled = true                             # (a worker built with `--features wasm`)
/// fuel_max = 1_000_000_000_000               # most instructions one task may ask for
/// memory_mib_max = 1024                      # most linear memory
/// timeout_ms_max = 3_600_000                 # longest wall-clock limit
/// output_mib_max = 256                       # most output
/// [executors.process]                        # run users' commands under bubblewrap
/// enabled = true                             # (needs `bwrap` and `prlimit`)
/// memory_mib_max = 8192                      # most memory per task
/// cpu_s_max = 3600                           # most CPU time per process
/// timeout_ms_max = 3_600_000                 # longest wall-clock limit
/// output_mib_max = 256                       # most output
/// network = false                            # let tasks reach the network
/// programs = ["python3", "blender"]          # offered (with versions) when found
/// containers = true                          # run jobs' images (podman, worker as root)
/// [probe]                                    # round trips to peers, for gangs
/// port = 7071                                # UDP; default any free port
/// enabled = true                             # false: no probes (gangs see this
///                                            # worker by its coordinator round trip)
/// ```
///
/// The probe and executors sections are read at start only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
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
    #[serde(default)]
    pub executors: ExecutorsFile,
    #[serde(default)]
    pub gpu: GpuFile,
}

/// The `[gpu]` section, read at start: whether the built-in workloads' GPU
/// kernels run (`kernels`, default true) and whether software adapters are
/// offered as GPUs (`software`, default false).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuFile {
    #[serde(default)]
    pub kernels: Option<bool>,
    #[serde(default)]
    pub software: Option<bool>,
}

/// What the worker advertises of its wasm executor.
pub const WASM_VERSION: &str = "wasmtime-48 wasip1";
/// What the worker advertises of its process executor.
pub const PROCESS_VERSION: &str = "bubblewrap";

/// The `[executors]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorsFile {
    #[serde(default)]
    pub wasm: Option<WasmExecutorFile>,
    #[serde(default)]
    pub process: Option<ProcessExecutorFile>,
}

/// The `[executors.process]` section: on when present unless
/// `enabled = false`; each cap left out takes [`PROCESS_CAPS_DEFAULT`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessExecutorFile {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub memory_mib_max: Option<u64>,
    #[serde(default)]
    pub cpu_s_max: Option<u64>,
    #[serde(default)]
    pub timeout_ms_max: Option<u64>,
    #[serde(default)]
    pub output_mib_max: Option<u64>,
    #[serde(default)]
    pub network: bool,
    #[serde(default)]
    pub programs: Option<Vec<String>>,
    #[serde(default = "enabled")]
    pub containers: bool,
}

/// The `[executors.wasm]` section: on when present unless `enabled = false`;
/// each cap left out takes [`WASM_CAPS_DEFAULT`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmExecutorFile {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub fuel_max: Option<u64>,
    #[serde(default)]
    pub memory_mib_max: Option<u64>,
    #[serde(default)]
    pub timeout_ms_max: Option<u64>,
    #[serde(default)]
    pub output_mib_max: Option<u64>,
}

impl ExecutorsFile {
    fn executors(&self) -> Executors {
        let wasm = self.wasm.as_ref().filter(|wasm| wasm.enabled).map(|wasm| {
            let caps = WASM_CAPS_DEFAULT;
            iog_workloads::WasmLimits {
                fuel: wasm.fuel_max.unwrap_or(caps.fuel),
                memory_bytes: wasm.memory_mib_max.map_or(caps.memory_bytes, |mib| mib << 20),
                wall_ms: wasm.timeout_ms_max.unwrap_or(caps.wall_ms),
                output_bytes: wasm.output_mib_max.map_or(caps.output_bytes, |mib| mib << 20),
            }
        });
        let process = self.process.as_ref().filter(|process| process.enabled).map(|process| {
            let caps = PROCESS_CAPS_DEFAULT;
            ProcessCaps {
                limits: iog_workloads::ProcessLimits {
                    memory_bytes: process.memory_mib_max.map_or(caps.memory_bytes, |mib| mib << 20),
                    cpu_s: process.cpu_s_max.unwrap_or(caps.cpu_s),
                    wall_ms: process.timeout_ms_max.unwrap_or(caps.wall_ms),
                    output_bytes: process.output_mib_max.map_or(caps.output_bytes, |mib| mib << 20),
                },
                network: process.network,
                programs: process
                    .programs
                    .clone()
                    .unwrap_or_else(|| PROCESS_PROGRAMS_DEFAULT.iter().map(|name| (*name).to_owned()).collect()),
                containers: process.containers,
                sandbox: PROCESS_VERSION.to_owned(),
                found: Vec::new(),
            }
        });
        Executors { wasm, process }
    }

    fn check(&self) -> Result<(), String> {
        self.check_process()?;
        self.check_wasm()
    }

    fn check_process(&self) -> Result<(), String> {
        use iog_workloads::process::{
            PROCESS_CPU_S_MAX, PROCESS_MEMORY_MIB_MAX, PROCESS_OUTPUT_MIB_MAX, PROCESS_TIMEOUT_MS_MAX,
        };
        let Some(process) = self.process.as_ref().filter(|process| process.enabled) else {
            return Ok(());
        };
        for (field, value, min, max) in [
            ("executors.process.memory_mib_max", process.memory_mib_max, 16, PROCESS_MEMORY_MIB_MAX),
            ("executors.process.cpu_s_max", process.cpu_s_max, 1, PROCESS_CPU_S_MAX),
            ("executors.process.timeout_ms_max", process.timeout_ms_max, 1, PROCESS_TIMEOUT_MS_MAX),
            ("executors.process.output_mib_max", process.output_mib_max, 1, PROCESS_OUTPUT_MIB_MAX),
        ] {
            if let Some(value) = value
                && !(min..=max).contains(&value)
            {
                return Err(format!("{field} must be between {min} and {max}, got {value}"));
            }
        }
        let programs = process.programs.as_deref().unwrap_or_default();
        if programs.len() > iog_sched::offer::SOFTWARE_MAX - 2 {
            return Err(format!(
                "executors.process.programs lists at most {} programs",
                iog_sched::offer::SOFTWARE_MAX - 2
            ));
        }
        for name in programs {
            let reserved =
                [iog_workloads::WASM_SOFTWARE, iog_workloads::PROCESS_SOFTWARE, iog_workloads::CONTAINER_SOFTWARE]
                    .contains(&name.as_str());
            if !iog_sched::offer::valid_software_name(name) || reserved {
                return Err(format!(
                    "executors.process.programs: {name:?} is not a program name a job can require: lowercase \
                     letters, digits and '-' (`python3`, `blender`), not wasm, process or container"
                ));
            }
        }
        Ok(())
    }

    fn check_wasm(&self) -> Result<(), String> {
        use iog_workloads::wasm::{WASM_FUEL_MAX, WASM_MEMORY_MIB_MAX, WASM_OUTPUT_MIB_MAX, WASM_TIMEOUT_MS_MAX};
        let Some(wasm) = self.wasm.as_ref().filter(|wasm| wasm.enabled) else {
            return Ok(());
        };
        if !WASM_BUILT_IN {
            return Err("executors.wasm is enabled, but this worker was built without its WebAssembly executor; \
                        build it with `cargo build --release --features wasm`, or set executors.wasm.enabled = false"
                .to_owned());
        }
        for (field, value, max) in [
            ("executors.wasm.fuel_max", wasm.fuel_max, WASM_FUEL_MAX),
            ("executors.wasm.memory_mib_max", wasm.memory_mib_max, WASM_MEMORY_MIB_MAX),
            ("executors.wasm.timeout_ms_max", wasm.timeout_ms_max, WASM_TIMEOUT_MS_MAX),
            ("executors.wasm.output_mib_max", wasm.output_mib_max, WASM_OUTPUT_MIB_MAX),
        ] {
            if let Some(value) = value
                && !(1..=max).contains(&value)
            {
                return Err(format!("{field} must be between 1 and {max}, got {value}"));
            }
        }
        Ok(())
    }
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferFile {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub price_io_per_device_hour: Option<String>,
    #[serde(default)]
    pub windows: Vec<String>,
    #[serde(default)]
    pub memory_gib: Option<f64>,
}

impl OfferFile {
    /// The terms this section names, and `base`'s where it names none.
    fn terms(&self, base: &OfferTerms) -> OfferTerms {
        // `WorkerFile::parse` has checked every field, so these hold.
        OfferTerms {
            region: self.region.clone().unwrap_or_else(|| base.region.clone()),
            price_io_per_device_hour: self
                .price_io_per_device_hour
                .as_deref()
                .map_or(base.price_io_per_device_hour, |text| text.parse().expect("checked by parse")),
            windows: match self.windows.is_empty() {
                true => base.windows.clone(),
                false => self.windows.iter().map(|w| Window::parse(w).expect("checked by parse")).collect(),
            },
            memory_lent_bytes: self
                .memory_gib
                .map(|gib| memory_gib_bytes("offer.memory_gib", gib).expect("checked by parse"))
                .or(base.memory_lent_bytes),
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
        if let Some(gib) = file.offer.memory_gib {
            memory_gib_bytes("offer.memory_gib", gib)?;
        }
        file.executors.check()?;
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

    fn cpu(memory_bytes: u64) -> Device {
        Device {
            kind: DeviceKind::Cpu,
            name: "cpu0".into(),
            vendor: "x".into(),
            model: "x".into(),
            memory_bytes,
            compute_units: 4,
            source: "cpu".into(),
            driver: None,
            compute_capability: None,
            uuid: None,
            kernels: false,
        }
    }

    #[test]
    fn the_cpu_lends_half_its_memory_unless_told_and_never_more_than_it_has() {
        const GIB: u64 = 1 << 30;
        let mut config = WorkerConfig::new("http://x", PathBuf::from("/tmp"));
        assert_eq!(config.offer(&[cpu(16 * GIB)]).groups[0].memory_bytes, 8 * GIB);
        config.apply(&WorkerFile::parse("[offer]\nmemory_gib = 0.5").unwrap());
        assert_eq!(config.offer(&[cpu(16 * GIB)]).groups[0].memory_bytes, GIB / 2);
        config.apply(&WorkerFile::parse("[offer]\nmemory_gib = 64").unwrap());
        assert_eq!(config.offer(&[cpu(16 * GIB)]).groups[0].memory_bytes, 16 * GIB);
    }

    #[test]
    fn a_file_that_leaves_a_term_out_keeps_the_flags_value() {
        let mut config = WorkerConfig::new("http://x", PathBuf::from("/tmp"));
        config.terms.region = "eu".to_owned();
        config.terms.memory_lent_bytes = Some(1 << 26);
        config.apply(&WorkerFile::parse("[offer]\nprice_io_per_device_hour = \"0.5\"").unwrap());
        assert_eq!((config.terms.region.as_str(), config.terms.memory_lent_bytes), ("eu", Some(1 << 26)));
        config.apply(&WorkerFile::parse("[offer]\nregion = \"us\"\nmemory_gib = 1").unwrap());
        assert_eq!((config.terms.region.as_str(), config.terms.memory_lent_bytes), ("us", Some(1 << 30)));
        // A term taken out of the file again goes back to the flag's value.
        config.apply(&WorkerFile::parse("").unwrap());
        assert_eq!((config.terms.region.as_str(), config.terms.memory_lent_bytes), ("eu", Some(1 << 26)));
        assert_eq!(config.terms.price_io_per_device_hour, Amount::ZERO);
    }

    #[test]
    fn the_gpu_section_overrides_the_flags_it_names() {
        let mut config = WorkerConfig::new("http://x", PathBuf::from("/tmp"));
        assert_eq!(config.gpu, crate::GpuKernels { enabled: true, software: false });
        config.gpu.software = true;
        config.apply_gpu(&WorkerFile::parse("[gpu]\nkernels = false\n").unwrap());
        assert_eq!(config.gpu, crate::GpuKernels { enabled: false, software: true });
        let err = WorkerFile::parse("[gpu]\nsoftwar = true\n").unwrap_err();
        assert!(err.contains("unknown field `softwar`"), "{err}");
    }

    #[test]
    fn the_wasm_executor_is_off_unless_the_owner_turns_it_on() {
        let mut config = WorkerConfig::new("http://x", PathBuf::from("/tmp"));
        // Only built-in training, where this build has the ML runtime.
        let names = |config: &WorkerConfig| -> Vec<String> {
            config.offer(&[]).software.into_iter().map(|software| software.name).collect()
        };
        let ml: Vec<String> = iog_workloads::train::ML_RUNTIME.then(|| "ml".to_owned()).into_iter().collect();
        assert_eq!(names(&config), ml);
        let file = WorkerFile::parse("[executors.wasm]\nmemory_mib_max = 64");
        if !WASM_BUILT_IN {
            assert!(file.unwrap_err().contains("--features wasm"));
            return;
        }
        config.apply_executors(&file.unwrap());
        let caps = config.executors.wasm.unwrap();
        assert_eq!((caps.memory_bytes, caps.fuel), (64 << 20, WASM_CAPS_DEFAULT.fuel));
        assert_eq!(names(&config)[0], "wasm");
        config.apply_executors(&WorkerFile::parse("[executors.wasm]\nenabled = false").unwrap());
        assert_eq!(config.executors.wasm, None);
        config.apply_executors(&WorkerFile::parse("[executors.wasm]").unwrap());
        assert_eq!(config.executors.wasm, Some(WASM_CAPS_DEFAULT));
        let err = WorkerFile::parse("[executors.wasm]\nmemory_mib_max = 0").unwrap_err();
        assert!(err.contains("executors.wasm.memory_mib_max must be between 1 and 4096"), "{err}");
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
            ("[offer]\nmemory_gib = 0", "offer.memory_gib must be a number of GiB from 0.001 (1 MiB) to 1024"),
            ("[offer]\nmemory_gib = 0.0000001", "offer.memory_gib"),
            ("[offer]\nmemory_gib = -2", "offer.memory_gib"),
            ("[offer]\nmemory_gib = 2000", "offer.memory_gib"),
            ("[offer]\nmemory_gib = \"8\"", "memory_gib"),
        ] {
            let err = WorkerFile::parse(text).unwrap_err();
            assert!(err.contains(words), "{text}: {err}");
        }
    }
}
