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

/// User plus system CPU time of the children process `pid` has waited for
/// (and of theirs, recursively), from `/proc/<pid>/stat` (fields 16 and 17,
/// `cutime` and `cstime`). A child's time counts once it has exited and been
/// reaped: this is how a short-lived command (the `qchat` CLI, `scp` with its
/// `ssh`) or a daemon's per-session processes (`sshd`) are measured.
pub(crate) fn children_cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).context("malformed stat")
    };
    Ok(Duration::from_millis((ticks(13)? + ticks(14)?) * 10))
}

/// Whether any process has `pid` as its parent (a scan of `/proc/*/stat`).
pub(crate) fn has_children(pid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                // Field 4 (ppid) is the second after the command's parenthesis.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .is_some_and(|ppid| ppid == pid.to_string())
            })
    })
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
        // A reaped child's CPU time lands in ours (about 0.2 s of shell loop).
        let children = children_cpu_time(pid).expect("children cpu");
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        assert!(children_cpu_time(pid).expect("children cpu") > children);
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep runs");
        assert!(has_children(pid));
        child.kill().expect("kill");
        child.wait().expect("reaped");
        assert!(!has_children(std::process::id() + 1_000_000));
        let (rss, hwm) = memory_kib(pid).expect("memory");
        assert!(rss > 0 && hwm >= rss);
    }
}
