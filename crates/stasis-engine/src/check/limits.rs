//! The time namespace and the sysctl limits a restore runs into.

use std::fs;

use stasis_sys::probe;

use super::{failed, human_bytes, read_number};

pub(super) fn time_namespace() -> Result<(bool, String), String> {
    match fs::read_link("/proc/self/ns/time") {
        Ok(target) => {
            let offsets = fs::read_to_string("/proc/self/timens_offsets")
                .map(|s| {
                    s.lines()
                        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|e| format!("timens_offsets unreadable: {e}"));
            Ok((
                true,
                format!(
                    "/proc/self/ns/time is {}; offsets: {offsets}",
                    target.display()
                ),
            ))
        }
        Err(e) => Ok((
            false,
            format!("/proc/self/ns/time: {e}; monotonic clocks cannot be kept across a restore"),
        )),
    }
}

pub(super) fn pipe_max_size() -> Result<(bool, String), String> {
    let max = read_number("/proc/sys/fs/pipe-max-size")?;
    let set = probe::pipe_set_size(max as usize).map_err(|e| failed(&e))?;
    let above = match probe::pipe_set_size(max as usize * 2) {
        Ok(n) => format!("{} was allowed too", human_bytes(n as u64)),
        Err(e) => match e.errno {
            Some(libc::EPERM) => format!(
                "{} was refused (EPERM): pipes holding more than {} at dump time \
                 need the sysctl raised before restore",
                human_bytes(max * 2),
                human_bytes(max)
            ),
            _ => format!("{} failed: {}", human_bytes(max * 2), failed(&e)),
        },
    };
    Ok((
        true,
        format!(
            "{max} ({}); F_SETPIPE_SZ to it gave a {} pipe; {above}",
            human_bytes(max),
            human_bytes(set as u64)
        ),
    ))
}

pub(super) fn pid_max() -> Result<(bool, String), String> {
    let n = read_number("/proc/sys/kernel/pid_max")?;
    Ok((
        true,
        format!("{n}: restoring a process whose pid is {n} or higher needs it raised"),
    ))
}
