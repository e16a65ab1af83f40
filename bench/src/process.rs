//! CPU time and memory of a process (a `qchatd`, or this one by
//! [`std::process::id`]), read from `/proc` (Linux).

use std::time::Duration;

use anyhow::Context as _;

/// User plus system CPU time process `pid` (all its threads) has used so
/// far, from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks of 1/100 s,
/// Linux's `USER_HZ`: 10 ms resolution).
pub(crate) fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its
    // closing parenthesis start at field 3 (state), so field n is at n - 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).context("malformed stat")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// `VmRSS` and `VmHWM` (KiB) of process `pid`, from `/proc/<pid>/status`.
pub(crate) fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_memory_are_readable() {
        let pid = std::process::id();
        let before = cpu_time(pid).expect("cpu");
        // Burn a little CPU: the figure never goes backwards.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(pid).expect("cpu") >= before);
        let (rss, hwm) = memory_kib(pid).expect("memory");
        assert!(rss > 0 && hwm >= rss);
    }
}
