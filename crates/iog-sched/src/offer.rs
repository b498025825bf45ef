//! What a worker offers: groups of identical devices, a price per
//! device-hour, a region and the hours it is available.

use iog_ledger::Amount;
use iog_types::{Device, DeviceKind, UnixMs};
use serde::{Deserialize, Serialize};

/// Longest region name accepted.
pub const REGION_BYTES_MAX: usize = 32;
/// Most device groups one offer may list.
pub const GROUPS_MAX: usize = 16;
/// Most devices in one group (a CPU group's count is its task slots).
pub const GROUP_COUNT_MAX: u32 = 1024;
/// Most availability windows one offer may list.
pub const WINDOWS_MAX: usize = 32;
/// Most software entries one offer may list.
pub const SOFTWARE_MAX: usize = 16;
/// Longest software name.
pub const SOFTWARE_NAME_BYTES_MAX: usize = 32;
/// Longest software version text.
pub const SOFTWARE_VERSION_BYTES_MAX: usize = 64;
/// The region of a worker whose owner names none.
pub const REGION_DEFAULT: &str = "any";

const MS_PER_MINUTE: u64 = 60_000;
const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;
/// 1970-01-01, day 0 of Unix time, was a Thursday; weeks here start on Monday.
const UNIX_EPOCH_WEEKDAY: u32 = 3;

/// Identical devices of one worker, offered together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceGroup {
    pub kind: DeviceKind,
    pub model: String,
    /// Memory of each device of the group; for the CPU, the memory the
    /// worker lends to tasks (and proves in memory challenges).
    pub memory_bytes: u64,
    /// How many devices. For the CPU: how many tasks may run on it at once.
    pub count: u32,
    /// CUDA compute capability such as `9.0`, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// GPUs: the worker runs iog's GPU kernels on these devices (a worker
    /// built with the `gpu` feature whose kernels passed their self-test),
    /// so the coordinator can challenge them at their model's rate. An
    /// offer with GPUs lacking kernels is not challenged at all: its trust
    /// is its stake's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernels: bool,
}

impl DeviceGroup {
    /// `count` GPUs of one model with `memory_bytes` each (capability and
    /// driver unknown).
    pub fn gpu(model: &str, memory_bytes: u64, count: u32) -> DeviceGroup {
        DeviceGroup {
            kind: DeviceKind::Gpu,
            model: model.to_owned(),
            memory_bytes,
            count,
            compute_capability: None,
            driver: None,
            kernels: false,
        }
    }

    /// Groups discovered devices: GPUs of the same model, memory, capability
    /// and driver become one group; the CPU becomes a group of `cpu_slots`.
    /// A worker that runs no CPU tasks passes `cpu_slots = 0`.
    pub fn from_devices(devices: &[Device], cpu_slots: u32) -> Vec<DeviceGroup> {
        let mut groups: Vec<DeviceGroup> = Vec::new();
        for device in devices {
            let count = match device.kind {
                DeviceKind::Cpu if cpu_slots == 0 => continue,
                DeviceKind::Cpu => cpu_slots,
                DeviceKind::Gpu => 1,
            };
            let same = groups.iter_mut().find(|group| {
                device.kind == DeviceKind::Gpu
                    && group.kind == DeviceKind::Gpu
                    && group.model == device.model
                    && group.memory_bytes == device.memory_bytes
                    && group.compute_capability == device.compute_capability
                    && group.driver == device.driver
                    && group.kernels == device.kernels
            });
            match same {
                Some(group) => group.count += 1,
                None => groups.push(DeviceGroup {
                    kind: device.kind,
                    model: device.model.clone(),
                    memory_bytes: device.memory_bytes,
                    count,
                    compute_capability: device.compute_capability.clone(),
                    driver: device.driver.clone(),
                    kernels: device.kernels,
                }),
            }
        }
        groups
    }
}

/// Something a worker runs besides the built-in workloads: an executor
/// for users' code (`wasm`) or an application (`blender`), with its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Software {
    /// Lowercase letters, digits and `-`, such as `wasm`.
    pub name: String,
    /// As the software reports it, such as `4.0.2`.
    pub version: String,
}

/// A worker's terms: what it offers, at what price, where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Where the worker is, as its owner names it (`eu`, `us-east`, …);
    /// lowercase letters, digits and `-`.
    pub region: String,
    /// Asked per device-hour; a task using `n` devices pays `n` times this.
    #[serde(with = "amount_text")]
    pub price_io_per_device_hour: Amount,
    pub groups: Vec<DeviceGroup>,
    /// Hours (UTC) the worker takes new tasks; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// The owner runs the worker only while the machine is otherwise idle,
    /// so its tasks may be stopped at any time (and moved elsewhere).
    #[serde(default)]
    pub idle_only: bool,
    /// What it runs besides the built-in workloads; a job that needs
    /// software is placed only on workers that list it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<Software>,
}

/// An offer that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("offer.region must be 1 to {REGION_BYTES_MAX} lowercase letters, digits or '-', got {0:?}")]
    Region(String),
    #[error("an offer needs at least one device group with a count of at least 1")]
    NoDevices,
    #[error("an offer lists at most {GROUPS_MAX} device groups, got {0}")]
    TooManyGroups(usize),
    #[error("device group {idx} offers {count} devices; at most {GROUP_COUNT_MAX}")]
    GroupTooLarge { idx: usize, count: u32 },
    #[error("an offer lists at most {WINDOWS_MAX} availability windows, got {0}")]
    TooManyWindows(usize),
    #[error("availability window {0:?}: {1}")]
    Window(String, String),
    #[error("an offer lists at most {SOFTWARE_MAX} software entries, got {0}")]
    TooMuchSoftware(usize),
    #[error(
        "software {0:?}: the name must be 1 to {SOFTWARE_NAME_BYTES_MAX} lowercase letters, digits or '-', listed \
         once, and the version at most {SOFTWARE_VERSION_BYTES_MAX} printable ASCII characters"
    )]
    Software(String),
}

impl Offer {
    /// An offer of these groups in the default region, free of charge and
    /// always available: what a worker offers when its owner sets nothing.
    pub fn free(groups: Vec<DeviceGroup>) -> Offer {
        Offer {
            region: REGION_DEFAULT.to_owned(),
            price_io_per_device_hour: Amount::ZERO,
            groups,
            windows: Vec::new(),
            idle_only: false,
            software: Vec::new(),
        }
    }

    /// `slots` tasks at once on a CPU, free and always available: the
    /// offer of a plain CPU worker (tests and the simulator use it too).
    pub fn cpu(slots: u32) -> Offer {
        Offer::free(vec![DeviceGroup {
            kind: DeviceKind::Cpu,
            model: "cpu".to_owned(),
            memory_bytes: 0,
            count: slots,
            compute_capability: None,
            driver: None,
            kernels: false,
        }])
    }

    /// Memory the offer's CPU groups lend to tasks (and prove in memory
    /// challenges).
    pub fn cpu_memory_bytes(&self) -> u64 {
        self.groups
            .iter()
            .filter(|group| group.kind == DeviceKind::Cpu)
            .map(|group| group.memory_bytes)
            .fold(0, u64::saturating_add)
    }

    /// Checks the limits; the coordinator refuses a session whose offer fails.
    pub fn validate(&self) -> Result<(), OfferError> {
        if !valid_region(&self.region) {
            return Err(OfferError::Region(self.region.clone()));
        }
        if self.groups.len() > GROUPS_MAX {
            return Err(OfferError::TooManyGroups(self.groups.len()));
        }
        if self.groups.iter().all(|group| group.count == 0) {
            return Err(OfferError::NoDevices);
        }
        if let Some((idx, group)) = self.groups.iter().enumerate().find(|(_, group)| group.count > GROUP_COUNT_MAX) {
            return Err(OfferError::GroupTooLarge { idx, count: group.count });
        }
        if self.windows.len() > WINDOWS_MAX {
            return Err(OfferError::TooManyWindows(self.windows.len()));
        }
        if self.software.len() > SOFTWARE_MAX {
            return Err(OfferError::TooMuchSoftware(self.software.len()));
        }
        for (idx, software) in self.software.iter().enumerate() {
            let version_ok = software.version.len() <= SOFTWARE_VERSION_BYTES_MAX
                && software.version.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            let unique = !self.software[..idx].iter().any(|other| other.name == software.name);
            if !valid_software_name(&software.name) || !version_ok || !unique {
                return Err(OfferError::Software(software.name.clone()));
            }
        }
        Ok(())
    }

    /// Whether the worker takes new tasks at `now`.
    pub fn available_at(&self, now: UnixMs) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|window| window.contains(now))
    }

    /// The first moment after `now` at which [`Offer::available_at`] may
    /// change, or `None` when it never does.
    pub fn next_change_after(&self, now: UnixMs) -> Option<UnixMs> {
        self.windows.iter().flat_map(|window| window.next_edge_after(now)).min()
    }

    /// Physical devices: each GPU, and each CPU once however many task
    /// slots it offers (what stake is counted against).
    pub fn n_physical_devices(&self) -> u32 {
        self.groups.iter().map(|group| if group.kind == DeviceKind::Cpu { 1 } else { group.count }).sum()
    }

    /// Devices offered in all groups (a CPU group counts its slots).
    pub fn n_devices(&self) -> u32 {
        self.groups.iter().map(|group| group.count).sum()
    }

    /// The names of the software it lists, sorted.
    pub fn software_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.software.iter().map(|software| software.name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Whether `name` is a usable software name.
pub fn valid_software_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= SOFTWARE_NAME_BYTES_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `region` is a usable region name.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= REGION_BYTES_MAX
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A weekly window of availability in UTC, written `mon-fri 18:00-08:00`,
/// `sat,sun 00:00-24:00` or `daily 22:00-06:00`. A window whose end is
/// before its start runs past midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Bit 0 is Monday … bit 6 is Sunday: the days on which the window opens.
    days: u8,
    start_minute: u32,
    end_minute: u32,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    /// Parses the written form; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Window, OfferError> {
        let fail = |why: &str| OfferError::Window(text.to_owned(), why.to_owned());
        let mut parts = text.split_whitespace();
        let (Some(days_text), Some(hours_text), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(fail("write days and hours, e.g. \"mon-fri 18:00-08:00\""));
        };
        let days = parse_days(days_text)
            .ok_or_else(|| fail("days are mon … sun, ranges like mon-fri, lists like sat,sun, or daily"))?;
        let (start, end) = hours_text.split_once('-').ok_or_else(|| fail("hours are written HH:MM-HH:MM"))?;
        let start_minute = parse_minute(start).ok_or_else(|| fail("start must be HH:MM between 00:00 and 23:59"))?;
        let end_minute = parse_minute(end).ok_or_else(|| fail("end must be HH:MM between 00:00 and 24:00"))?;
        if start_minute >= MINUTES_PER_DAY {
            return Err(fail("start must be before 24:00"));
        }
        if start_minute == end_minute {
            return Err(fail("start and end are the same; use 00:00-24:00 for a whole day"));
        }
        Ok(Window { days, start_minute, end_minute })
    }

    /// The window's spans as (start, end) minutes of the week, ends exclusive;
    /// a span may run past the week's end.
    fn spans(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..7u32).filter(move |day| self.days & (1 << day) != 0).map(move |day| {
            let start = day * MINUTES_PER_DAY + self.start_minute;
            let length = if self.end_minute > self.start_minute {
                self.end_minute - self.start_minute
            } else {
                MINUTES_PER_DAY - self.start_minute + self.end_minute
            };
            (start, start + length)
        })
    }

    /// Whether `now` falls in the window.
    pub fn contains(&self, now: UnixMs) -> bool {
        let minute = minute_of_week(now);
        self.spans().any(|(start, end)| {
            (start..end).contains(&minute) || (end > MINUTES_PER_WEEK && minute < end - MINUTES_PER_WEEK)
        })
    }

    /// The first window edge (an opening or a closing) strictly after `now`.
    pub fn next_edge_after(&self, now: UnixMs) -> Option<UnixMs> {
        // Monday 00:00 UTC of the week holding `now`.
        let week_start_ms = now - u64::from(minute_of_week(now)) * MS_PER_MINUTE - now % MS_PER_MINUTE;
        let mut best: Option<UnixMs> = None;
        // Spans opened last week may close this week; this week's and the
        // next week's edges cover the rest.
        let week_ms = u64::from(MINUTES_PER_WEEK) * MS_PER_MINUTE;
        for week_start_ms in [week_start_ms.checked_sub(week_ms), Some(week_start_ms), Some(week_start_ms + week_ms)] {
            let Some(week_start_ms) = week_start_ms else { continue };
            for (start, end) in self.spans() {
                for edge in [start, end] {
                    let at = week_start_ms + u64::from(edge) * MS_PER_MINUTE;
                    if at > now && best.is_none_or(|best| at < best) {
                        best = Some(at);
                    }
                }
            }
        }
        best
    }
}

fn minute_of_week(now: UnixMs) -> u32 {
    let minutes = now / MS_PER_MINUTE;
    // Minute 0 of Unix time is Thursday 00:00, minute (3 × 1440) of the week.
    ((minutes + u64::from(UNIX_EPOCH_WEEKDAY * MINUTES_PER_DAY)) % u64::from(MINUTES_PER_WEEK)) as u32
}

fn parse_days(text: &str) -> Option<u8> {
    if text == "daily" {
        return Some(0x7f);
    }
    let day = |name: &str| DAY_NAMES.iter().position(|d| *d == name);
    let mut days = 0u8;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    days |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days |= 1 << day(part)?,
        }
    }
    Some(days)
}

fn parse_minute(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: Vec<&str> = (0..7).filter(|d| self.days & (1 << d) != 0).map(|d| DAY_NAMES[d]).collect();
        let days = if self.days == 0x7f { "daily".to_owned() } else { days.join(",") };
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{days} {}-{}", hm(self.start_minute), hm(self.end_minute))
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Window, D::Error> {
        let text = String::deserialize(deserializer)?;
        Window::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-11-23 00:00 UTC.
    const MONDAY_MS: UnixMs = 1_795_392_000_000;
    const HOUR_MS: UnixMs = 3_600_000;

    #[test]
    fn the_test_monday_is_a_monday() {
        assert_eq!(minute_of_week(MONDAY_MS), 0);
    }

    #[test]
    fn an_evening_window_runs_past_midnight() {
        let window = Window::parse("mon-fri 18:00-08:00").unwrap();
        assert!(!window.contains(MONDAY_MS + 7 * HOUR_MS));
        assert!(window.contains(MONDAY_MS + 19 * HOUR_MS));
        assert!(window.contains(MONDAY_MS + 24 * HOUR_MS + 7 * HOUR_MS));
        // Friday's window runs into Saturday morning; Saturday opens none.
        assert!(window.contains(MONDAY_MS + 5 * 24 * HOUR_MS + 7 * HOUR_MS));
        assert!(!window.contains(MONDAY_MS + 5 * 24 * HOUR_MS + 19 * HOUR_MS));
        // Sunday opens no window, so Monday 07:00 is outside.
        assert!(!window.contains(MONDAY_MS + 7 * HOUR_MS));
        assert_eq!(window.next_edge_after(MONDAY_MS), Some(MONDAY_MS + 18 * HOUR_MS));
        assert_eq!(window.next_edge_after(MONDAY_MS + 18 * HOUR_MS), Some(MONDAY_MS + 32 * HOUR_MS));
        assert_eq!(window.to_string(), "mon,tue,wed,thu,fri 18:00-08:00");
    }

    #[test]
    fn a_sunday_night_window_wraps_into_monday() {
        let window = Window::parse("sun 22:00-02:00").unwrap();
        assert!(window.contains(MONDAY_MS + HOUR_MS));
        assert!(!window.contains(MONDAY_MS + 3 * HOUR_MS));
        assert_eq!(window.next_edge_after(MONDAY_MS), Some(MONDAY_MS + 2 * HOUR_MS));
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (text, words) in [
            ("mon-fri", "write days and hours"),
            ("someday 10:00-11:00", "days are mon"),
            ("mon 25:00-26:00", "start must be"),
            ("mon 10:00-10:00", "the same"),
        ] {
            let err = Window::parse(text).unwrap_err().to_string();
            assert!(err.contains(words), "{text}: {err}");
        }
    }

    #[test]
    fn gpus_of_one_model_form_one_group_and_the_cpu_its_slots() {
        let gpu = |name: &str| Device {
            kind: DeviceKind::Gpu,
            name: name.to_owned(),
            vendor: "NVIDIA".to_owned(),
            model: "NVIDIA H100 80GB HBM3".to_owned(),
            memory_bytes: 80 << 30,
            compute_units: 132,
            source: "nvml".to_owned(),
            driver: Some("550".to_owned()),
            compute_capability: Some("9.0".to_owned()),
            uuid: Some(name.to_owned()),
            kernels: false,
        };
        let cpu = Device { kind: DeviceKind::Cpu, model: "EPYC".to_owned(), ..gpu("cpu0") };
        let groups = DeviceGroup::from_devices(&[cpu, gpu("gpu0"), gpu("gpu1")], 4);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].kind, groups[0].count), (DeviceKind::Cpu, 4));
        assert_eq!((groups[1].kind, groups[1].count), (DeviceKind::Gpu, 2));
        let offer = Offer::free(groups);
        offer.validate().unwrap();
        assert_eq!(offer.n_devices(), 6);
    }
}

/// Serde for an optional [`Amount`] written as text (`"0.8"`, `"0.8 IO"`).
pub(crate) mod amount_opt {
    use iog_ledger::Amount;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(amount: &Option<Amount>, serializer: S) -> Result<S::Ok, S::Error> {
        match amount {
            Some(amount) => serializer.collect_str(amount),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Amount>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| text.parse().map_err(|err| serde::de::Error::custom(format!("{text:?}: {err}")))).transpose()
    }
}

/// Serde for an [`Amount`] written as text.
pub(crate) mod amount_text {
    use iog_ledger::Amount;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(amount)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|err| serde::de::Error::custom(format!("{text:?}: {err}")))
    }
}
