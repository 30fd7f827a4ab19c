//! The stasis command line. Verbs and options follow CRIU's names where
//! CRIU has the same feature (`dump -t PID -D DIR`, `restore -D DIR -d`).

mod demo;
mod inspect;
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use stasis_engine::restore::verify::Verdict;

#[derive(Parser)]
#[command(
    name = "stasis",
    version,
    about = "Transparent checkpoint/restore for Linux processes"
)]
struct Cli {
    /// More log output (repeat for more); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Checkpoint a running process and every process below it into an
    /// image directory.
    Dump(DumpArgs),
    /// Restore a process tree from an image directory, with its original
    /// pids.
    Restore(RestoreArgs),
    /// Show what an image holds.
    Inspect {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also list every VMA, fd, thread and page run.
        #[arg(long)]
        full: bool,
    },
    /// Report which kernel features stasis needs and finds here.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Run a built-in counter, checkpoint it, kill it, restore it, and show
    /// it continuing with the same pid and count.
    Demo {
        /// Where to keep the demo's image and log (default: a temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The demo's workload (internal).
    #[command(hide = true, name = "__demo-counter")]
    DemoCounter,
}

/// The options of `stasis dump`.
#[derive(clap::Args)]
struct DumpArgs {
    /// Pid of the root of the tree to checkpoint.
    #[arg(short = 't', long = "tree")]
    pid: i32,
    /// Image directory (created if missing).
    #[arg(short = 'D', long = "images-dir")]
    dir: PathBuf,
    /// Let the process run on after the dump (default: kill it).
    #[arg(short = 'R', long)]
    leave_running: bool,
    /// The process is a job of a shell: it may use the terminal and
    /// need not lead its session.
    #[arg(short = 'j', long)]
    shell_job: bool,
    /// Allow unix sockets connected to a socket outside the tree: they
    /// are connected to the peer's name (its listener's path, or a bound
    /// datagram socket) again at restore.
    #[arg(long)]
    ext_unix_sk: bool,
    /// After writing the image, read it back and run restore's own
    /// checks and planning on it (no process is created); print one
    /// line for each thing that would make restore fail, and exit 2 if
    /// any would. Pids still held by the killed tree's zombies are not
    /// a failure; with --leave-running, what the original still holds
    /// (pids, FIFOs, locks, socket paths) is reported as "restorable
    /// with --pidns, or once the original exits".
    #[arg(long)]
    verify: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The options of `stasis restore`.
#[derive(clap::Args)]
struct RestoreArgs {
    #[arg(short = 'D', long = "images-dir")]
    dir: PathBuf,
    /// Return once the process runs (default: wait for it and exit with its status).
    #[arg(short = 'd', long = "restore-detached")]
    detach: bool,
    /// Write the restored pid to this file.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    #[arg(short = 'j', long)]
    shell_job: bool,
    /// Restore into a new PID namespace, where the image's pids are
    /// free even if they are taken here; a small init holds PID 1
    /// there unless the tree's root was PID 1 itself.
    #[arg(long)]
    pidns: bool,
    /// Only run the checks and planning restore runs before it creates
    /// anything, change nothing, and report every problem found (one
    /// line each); exit 2 if restore would fail.
    #[arg(long)]
    check_only: bool,
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STASIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text an
/// outer message already quotes (the library errors embed their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn verdict_json(v: &Verdict) -> serde_json::Value {
    serde_json::json!({"restorable": v.restorable(), "failures": v.failures, "notes": v.notes})
}

/// Prints what verification found on stderr (with `json`, the caller has
/// printed it) and gives the exit code: 2 when restore would fail.
fn report_verdict(v: &Verdict, dir: &Path, json: bool) -> ExitCode {
    if !json {
        for f in &v.failures {
            eprintln!("verify: would fail: {f}");
        }
        for n in &v.notes {
            eprintln!("verify: note: {n}");
        }
        if v.restorable() {
            eprintln!("verify: {} is restorable", dir.display());
        } else {
            eprintln!(
                "verify: {} is NOT restorable here ({} problem{})",
                dir.display(),
                v.failures.len(),
                if v.failures.len() == 1 { "" } else { "s" }
            );
        }
    }
    if v.restorable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn run(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Dump(a) => cmd_dump(a),
        Cmd::Restore(a) => cmd_restore(a),
        Cmd::Inspect { dir, json, full } => {
            inspect::run(&dir, json, full)
                .with_context(|| format!("cannot inspect {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { json } => {
            let feats = stasis_engine::check::run();
            if json {
                let v: Vec<_> = feats
                    .iter()
                    .map(|f| serde_json::json!({"name": f.name, "ok": f.ok, "needed": f.needed, "detail": f.detail}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for f in &feats {
                    let mark = if f.ok {
                        "ok "
                    } else if f.needed {
                        "MISSING"
                    } else {
                        "no "
                    };
                    println!("{mark:7} {:28} {}", f.name, f.detail);
                }
            }
            let missing = feats.iter().any(|f| f.needed && !f.ok);
            if !json {
                println!(
                    "{}",
                    if missing {
                        "stasis cannot dump or restore here: see MISSING above"
                    } else {
                        "everything stasis needs is here"
                    }
                );
            }
            Ok(if missing {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Demo { dir } => demo::run(dir),
        Cmd::DemoCounter => demo::counter(),
    }
}

fn cmd_dump(a: DumpArgs) -> Result<ExitCode> {
    let DumpArgs {
        pid,
        dir,
        leave_running,
        shell_job,
        ext_unix_sk,
        verify,
        json,
    } = a;
    let opts = stasis_engine::DumpOptions {
        leave_running,
        shell_job,
        ext_unix_sk,
    };
    let bar = progress::Bar::new(json);
    let r = stasis_engine::dump(pid, &dir, &opts, &bar)?;
    bar.finish();
    let verdict = verify.then(|| stasis_engine::restore::verify::after_dump(&dir, leave_running));
    if json {
        let mut out = serde_json::json!({
            "pid": r.pid, "processes": r.processes, "threads": r.threads, "vmas": r.vmas, "fds": r.fds,
            "pages_bytes": r.pages_bytes, "frozen_ms": r.frozen_ms, "total_ms": r.total_ms,
            "leave_running": leave_running, "dir": dir,
        });
        if let Some(v) = &verdict {
            out["verify"] = verdict_json(v);
        }
        println!("{out}");
    } else {
        eprintln!(
                "dumped pid {} ({} processes, {} threads, {} mappings, {} fds, {} of memory) to {} in {:.1} ms{}",
                r.pid,
                r.processes,
                r.threads,
                r.vmas,
                r.fds,
                inspect::human(r.pages_bytes),
                dir.display(),
                r.total_ms,
                if leave_running { "; left running" } else { "" }
            );
    }
    Ok(match &verdict {
        Some(v) => report_verdict(v, &dir, json),
        None => ExitCode::SUCCESS,
    })
}

fn cmd_restore(a: RestoreArgs) -> Result<ExitCode> {
    let RestoreArgs {
        dir,
        detach,
        pidfile,
        shell_job,
        pidns,
        check_only,
        json,
    } = a;
    let opts = stasis_engine::RestoreOptions {
        detach,
        shell_job,
        pidfile,
        pidns,
    };
    if check_only {
        use stasis_engine::restore::verify;
        let v = verify::verify(&dir, &opts, verify::When::Now);
        if json {
            println!("{}", serde_json::json!({ "verify": verdict_json(&v) }));
        }
        return Ok(report_verdict(&v, &dir, json));
    }
    let bar = progress::Bar::new(json || !detach);
    let r = stasis_engine::restore(&dir, &opts, &bar)?;
    bar.finish();
    if json {
        println!(
            "{}",
            serde_json::json!({"pid": r.pid, "processes": r.processes, "restore_ms": r.total_ms, "exit_code": r.exit_code})
        );
    } else if detach {
        eprintln!(
            "restored pid {} ({} processes) in {:.1} ms",
            r.pid, r.processes, r.total_ms
        );
    }
    Ok(match r.exit_code {
        Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
        None => ExitCode::SUCCESS,
    })
}
