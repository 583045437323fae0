//! Where the host's CPU went during a measured window, from Linux's `/proc`: how busy
//! the host was, and the CPU time per event of carelog (this process), PostgreSQL (its
//! processes) and the NATS server. Those two are seen only when they run on this host;
//! elsewhere (or off Linux) the bench reports what it could read and says so.

use std::time::Instant;

/// CPU time counters at one instant.
pub(super) struct CpuSnapshot {
    at: Instant,
    /// All ticks of the host (every CPU, every state), and the idle ones among them.
    host: Option<HostTicks>,
    /// Ticks of each group's processes, by pid (a process must be in both snapshots).
    procs: Vec<(u32, Group, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostTicks {
    total: u64,
    idle: u64,
    cpus: usize,
}

/// Whose process it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group {
    Carelog,
    Postgres,
    Nats,
}

/// What a window cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuUse {
    /// Share of the host's CPU time that was not idle, in per cent.
    pub(super) busy_pct: f64,
    /// CPU time per event of this process, in µs.
    pub(super) carelog_us: f64,
    /// The same for PostgreSQL's processes (`None` when none runs on this host).
    pub(super) postgres_us: Option<f64>,
    /// The same for the NATS server (`None` when it does not run on this host).
    pub(super) nats_us: Option<f64>,
}

impl CpuSnapshot {
    /// Reads the counters now.
    pub(super) fn take() -> Self {
        let own = std::process::id();
        let mut procs = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                if let Some((comm, ticks)) = process_ticks(&stat) {
                    if let Some(group) = group_of(pid == own, comm) {
                        procs.push((pid, group, ticks));
                    }
                }
            }
        }
        let host = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| host_ticks(&s));
        Self {
            at: Instant::now(),
            host,
            procs,
        }
    }

    /// What the host spent between `self` and `later`, per event of `events`; `None`
    /// where `/proc` could not be read.
    pub(super) fn until(&self, later: &Self, events: usize) -> Option<CpuUse> {
        let (a, b) = (self.host?, later.host?);
        let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
        let idle = b.idle.saturating_sub(a.idle);
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        // µs of CPU per tick: the window's CPU time (wall time × CPUs) over its ticks,
        // so the kernel's tick rate need not be known.
        let us_per_tick = seconds * b.cpus as f64 * 1e6 / total as f64;
        let per_event = |group: Group| -> Option<f64> {
            let mut seen = false;
            let mut ticks = 0u64;
            for &(pid, g, t) in later.procs.iter().filter(|p| p.1 == group) {
                if let Some(&(_, _, before)) = self.procs.iter().find(|p| p.0 == pid && p.1 == g) {
                    seen = true;
                    ticks += t.saturating_sub(before);
                }
            }
            (seen && events > 0).then(|| ticks as f64 * us_per_tick / events as f64)
        };
        Some(CpuUse {
            busy_pct: 100.0 * (total - idle.min(total)) as f64 / total as f64,
            carelog_us: per_event(Group::Carelog)?,
            postgres_us: per_event(Group::Postgres),
            nats_us: per_event(Group::Nats),
        })
    }
}

/// The group of a process: this one, PostgreSQL's (its processes are all named
/// `postgres`), the NATS server's; `None` for any other.
fn group_of(own: bool, comm: &str) -> Option<Group> {
    if own {
        Some(Group::Carelog)
    } else if comm == "postgres" {
        Some(Group::Postgres)
    } else if comm == "nats-server" {
        Some(Group::Nats)
    } else {
        None
    }
}

/// The command name and user + system ticks of a `/proc/<pid>/stat` line. The name is
/// in parentheses and may itself hold spaces and parentheses, so the fields are counted
/// from the last `)`.
fn process_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After the name: state (field 3), …, utime (14) and stime (15).
    let mut fields = stat.get(close + 1..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The host's total and idle (idle + iowait) ticks and its CPU count, from `/proc/stat`.
fn host_ticks(stat: &str) -> Option<HostTicks> {
    let mut lines = stat.lines();
    let all: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_ascii_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user].
    let total = all.iter().take(8).sum();
    let idle = all.get(3)? + all.get(4).copied().unwrap_or(0);
    let cpus = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    (cpus > 0).then_some(HostTicks { total, idle, cpus })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_name_with_spaces_and_parentheses_is_read_whole() {
        let stat = "4242 (tokio (rt) worker) S 1 2 3 4 5 6 7 8 9 10 130 70 0 0 20 0";
        assert_eq!(process_ticks(stat), Some(("tokio (rt) worker", 200)));
        assert_eq!(process_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn host_ticks_count_idle_and_iowait_as_idle_and_the_cpus() {
        let stat = "cpu  100 5 50 800 40 3 2 0 7 0\n\
                    cpu0 50 2 25 400 20 1 1 0 3 0\n\
                    cpu1 50 3 25 400 20 2 1 0 4 0\n\
                    intr 12345\n\
                    ctxt 999\n";
        assert_eq!(
            host_ticks(stat),
            Some(HostTicks {
                total: 1000,
                idle: 840,
                cpus: 2
            })
        );
    }

    #[test]
    fn a_window_is_priced_per_event_and_per_group() {
        let at = Instant::now();
        let before = CpuSnapshot {
            at,
            host: Some(HostTicks {
                total: 0,
                idle: 0,
                cpus: 2,
            }),
            procs: vec![
                (1, Group::Carelog, 10),
                (2, Group::Postgres, 0),
                (3, Group::Postgres, 5),
            ],
        };
        // One second on two CPUs = 200 ticks here, so a tick is 10,000 µs; half idle.
        let after = CpuSnapshot {
            at: at + std::time::Duration::from_secs(1),
            host: Some(HostTicks {
                total: 200,
                idle: 100,
                cpus: 2,
            }),
            // pid 4 started inside the window: not counted.
            procs: vec![
                (1, Group::Carelog, 30),
                (2, Group::Postgres, 40),
                (3, Group::Postgres, 15),
                (4, Group::Postgres, 99),
            ],
        };
        let used = before.until(&after, 1000).expect("both snapshots read");
        assert_eq!(used.busy_pct, 50.0);
        assert!((used.carelog_us - 200.0).abs() < 1e-6, "{used:?}");
        let postgres = used.postgres_us.expect("postgres seen");
        assert!((postgres - 500.0).abs() < 1e-6, "{used:?}");
        assert_eq!(used.nats_us, None);
    }
}
