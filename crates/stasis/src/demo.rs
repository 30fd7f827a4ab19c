//! `stasis demo`: the main job on a built-in workload. A counter prints
//! its pid and count; the demo checkpoints it, kills it, restores it, and
//! shows it going on from the same count with the same pid.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The demo workload: a counter in memory, printed every 200 ms.
pub fn counter() -> Result<ExitCode> {
    let _ = nix::unistd::setsid();
    // Drop whatever the launcher leaked to us (a pipe shared with a process
    // outside the dump would make the dump refuse, rightly).
    let _ = stasis_sys::util::close_range(3, u32::MAX);
    let pid = std::process::id();
    let mut n: u64 = 0;
    let mut out = std::io::stdout();
    loop {
        n += 1;
        writeln!(out, "count {n} (pid {pid})")?;
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_lines(log: &std::path::Path, n: usize) -> Result<Vec<String>> {
    let t = Instant::now();
    loop {
        let l = lines(log);
        if l.len() >= n {
            return Ok(l);
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("the demo counter printed only {} lines in 10 s", l.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("stasis-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("counter.log");
    let images = dir.join("images");
    let _ = std::fs::remove_file(&log);
    let exe = std::env::current_exe()?;
    let out = std::fs::File::create(&log)?;
    let mut child = Command::new(&exe)
        .arg("__demo-counter")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the demo counter")?;
    let pid = child.id() as i32;
    println!(
        "== started the demo counter, pid {pid}; its output goes to {}",
        log.display()
    );
    let before = wait_lines(&log, 5)?;
    for l in &before {
        println!("   {l}");
    }
    println!(
        "== checkpointing pid {pid} into {} and killing it",
        images.display()
    );
    let r = stasis_engine::dump(
        pid,
        &images,
        &stasis_engine::DumpOptions::default(),
        &stasis_engine::NoProgress,
    )?;
    // Reap it (the dump, as its tracer, may already have).
    let _ = child.wait();
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && t.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = lines(&log).last().cloned().unwrap_or_default();
    println!(
        "   dumped in {:.1} ms ({} of memory); /proc/{pid} exists: {}; last line: {last}",
        r.total_ms,
        super::inspect::human(r.pages_bytes),
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    );
    std::thread::sleep(Duration::from_millis(500));
    println!("== restoring from {}", images.display());
    let n_before = lines(&log).len();
    let restored = stasis_engine::restore(
        &images,
        &stasis_engine::RestoreOptions {
            detach: true,
            ..Default::default()
        },
        &stasis_engine::NoProgress,
    )?;
    println!(
        "   restored pid {} in {:.1} ms; it goes on:",
        restored.pid, restored.total_ms
    );
    let after = wait_lines(&log, n_before + 5)?;
    for l in &after[n_before..] {
        println!("   {l}");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(restored.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(restored.pid), None);
    let want = format!("(pid {pid})");
    let cont = last
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| format!("count {} {want}", n + 1));
    let ok = after[n_before..].iter().all(|l| l.ends_with(&want))
        && cont.is_some_and(|c| after[n_before] == c);
    if ok {
        println!("== the counter continued from the same count with the same pid. Done.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("== UNEXPECTED: the restored counter did not continue as it should");
        Ok(ExitCode::from(1))
    }
}
