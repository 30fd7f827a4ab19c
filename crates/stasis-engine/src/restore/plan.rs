//! Restore planning: every check and every decision that needs no new
//! process, in one function, [`plan`]. Restore runs it before it creates
//! anything; `dump --verify` and `restore --check-only` run the very same
//! function (see [`super::verify`]), so what they promise and what restore
//! does cannot drift apart.
//!
//! In order:
//! 1. host checks ([`super::checks`]): architecture, `--shell-job`, the
//!    IPC namespace, the vDSO, pids and tids free, every file, FIFO, lock,
//!    socket path, mapped file and executable there and unchanged,
//!    credentials;
//! 2. the image's own constraints: a PID 1 root needs `--pidns`;
//! 3. the tree plan ([`crate::tree`]): sessions, groups, group stand-ins
//!    (whose pids must be free too);
//! 4. the page store: `pages.img` is there, and every run's hash is right;
//! 5. the memory plan: copy-on-write regions ([`crate::mm::cow`]), the
//!    files each memory switch opens, an executable for every process, a
//!    free place for each process's trampoline (placed for good by restore
//!    once its own memory is final);
//! 6. with [`Mode::Verify`] only: the kernel features restore uses,
//!    probed as `stasis check` does, and the FPU state size.
//!
//! [`Mode::Restore`] stops at the first problem and may remove a stale
//! socket file (as binding it again requires). [`Mode::Verify`] and
//! [`Mode::ImageOnly`] change nothing on the system and go on after a
//! problem where later steps do not depend on the failed one, so every
//! problem is reported. [`Mode::ImageOnly`] does not look at the host at
//! all beyond reading `/proc/self/maps` (for fuzzing the planner).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use stasis_image::{Image, PageRun, PagesReader, Process};

use super::{checks, RestoreOptions};
use crate::error::RestoreError;
use crate::mm::cow::CowPlan;
use crate::tree::{self, Plan};
use crate::{mm, trampoline};

/// How much the planner asks of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Restore: every check, stop at the first problem.
    Restore,
    /// Verify: every check and the kernel probes; report every problem;
    /// change nothing.
    Verify,
    /// The image alone: no host checks, no page store (fuzzing, tests).
    ImageOnly,
}

/// Everything restore decided before it creates a process.
pub struct RestorePlan {
    /// How the tree is created: who forks whom, sessions, groups.
    pub tree: Plan,
    /// Private memory shared copy-on-write, premapped before forks.
    pub cow: CowPlan,
    /// Per process (image order): the files its memory switch opens
    /// (path, writable); processes sharing an fd table share the union.
    pub needed: Vec<Vec<(String, bool)>>,
    /// The page store, hashes checked (`None` in [`Mode::ImageOnly`]).
    pub pages: Option<PagesReader>,
}

/// Every problem the planner found, in the order it found them; never
/// empty.
#[derive(Debug)]
pub struct Problems(pub Vec<RestoreError>);

impl Problems {
    /// The first problem: what restore reports.
    pub fn first(self) -> RestoreError {
        self.0
            .into_iter()
            .next()
            .unwrap_or_else(|| RestoreError::Refused("the restore plan failed".into()))
    }
}

/// Collects failed checks: stops at the first, or keeps going.
pub(crate) struct Sink {
    keep_going: bool,
    found: Vec<RestoreError>,
}

impl Sink {
    pub(crate) fn new(keep_going: bool) -> Sink {
        Sink {
            keep_going,
            found: Vec::new(),
        }
    }

    /// Records the outcome of a check that later steps do not depend on.
    pub(crate) fn check(&mut self, r: Result<(), RestoreError>) -> Result<(), Problems> {
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                self.found.push(e);
                if self.keep_going {
                    Ok(())
                } else {
                    Err(self.take())
                }
            }
        }
    }

    /// A step whose result planning cannot go on without.
    pub(crate) fn must<T>(&mut self, r: Result<T, RestoreError>) -> Result<T, Problems> {
        r.map_err(|e| {
            self.found.push(e);
            self.take()
        })
    }

    /// `value` if no check failed.
    pub(crate) fn finish<T>(&mut self, value: T) -> Result<T, Problems> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(self.take())
        }
    }

    fn take(&mut self) -> Problems {
        Problems(std::mem::take(&mut self.found))
    }
}

/// Plans the restore of `image` (read from `dir`, where its page store
/// is; `None` only with [`Mode::ImageOnly`]).
pub fn plan(
    image: &Image,
    dir: Option<&Path>,
    opts: &RestoreOptions,
    mode: Mode,
) -> Result<RestorePlan, Problems> {
    let mut sink = Sink::new(mode != Mode::Restore);
    let host = mode != Mode::ImageOnly;
    if host {
        checks::host(image, opts, mode == Mode::Verify, &mut sink)?;
    }
    sink.check(namespace_options(image, opts))?;
    let inv = &image.inventory;
    let tree = sink.must(
        tree::plan(&image.processes, inv.root_pid, inv.shell_job, &|_| false)
            .map_err(RestoreError::Refused),
    )?;
    if host && !opts.pidns {
        sink.check(helpers_free(&tree))?;
    }
    let pages = match dir.filter(|_| host) {
        Some(dir) => check_pages(image, dir, &mut sink)?,
        None => None,
    };
    let cow = mm::cow::plan(&image.processes, &image.pagemaps, &tree);
    let needed = files_by_table(&image.processes);
    for (i, p) in image.processes.iter().enumerate() {
        sink.check(has_exe(p, &needed[i]))?;
        // Only checked: restore places it once its own memory is final.
        let inherited: Vec<(u64, u64)> = cow.visible[i].keys().copied().collect();
        sink.check(trampoline::find_hole(&p.vmas, &inherited).map(|_| ()))?;
    }
    if mode == Mode::Verify {
        for e in super::verify::kernel(image) {
            sink.check(Err(e))?;
        }
    }
    sink.finish(RestorePlan {
        tree,
        cow,
        needed,
        pages,
    })
}

/// What the tree's PID namespace asks of the options.
fn namespace_options(image: &Image, opts: &RestoreOptions) -> Result<(), RestoreError> {
    let root_pid = image.inventory.root_pid;
    if root_pid == 1 && !opts.pidns && image.processes.iter().any(|p| p.pid == 1) {
        return Err(RestoreError::Refused(
            "the tree ran in its own PID namespace (its root is PID 1); restore it with --pidns"
                .into(),
        ));
    }
    if opts.pidns && opts.shell_job {
        return Err(RestoreError::Refused(
            "--shell-job and --pidns together are not supported yet".into(),
        ));
    }
    Ok(())
}

/// The stand-ins of exited group leaders need their pids too.
fn helpers_free(tree: &Plan) -> Result<(), RestoreError> {
    for h in tree.helpers.keys() {
        if Path::new(&format!("/proc/{h}")).exists() {
            return Err(checks::in_use(
                *h,
                format!(
                    "pid {h} is in use; the image needs it for a process group whose leader had exited"
                ),
            ));
        }
    }
    Ok(())
}

/// Opens the page store and checks the hash of every run.
fn check_pages(
    image: &Image,
    dir: &Path,
    sink: &mut Sink,
) -> Result<Option<PagesReader>, Problems> {
    let inv = &image.inventory;
    let pages = sink.must(PagesReader::open_image(dir, inv).map_err(Into::into))?;
    let runs: Vec<PageRun> = image
        .pagemaps
        .iter()
        .flat_map(|pm| pm.runs.iter().cloned())
        .chain(
            inv.ipc
                .iter()
                .flat_map(|ns| ns.shm.iter())
                .flat_map(|s| s.runs.iter().cloned()),
        )
        .collect();
    sink.check(pages.verify(&runs).map_err(Into::into))?;
    Ok(Some(pages))
}

/// A live process needs its executable: from the image (an unnamed
/// object) or among the files its memory switch opens.
fn has_exe(p: &Process, needed: &[(String, bool)]) -> Result<(), RestoreError> {
    if p.zombie || p.exe_object != 0 {
        return Ok(());
    }
    if !needed.iter().any(|(path, w)| !w && *path == p.exe_path) {
        return Err(RestoreError::Refused(format!(
            "pid {}: image has no executable",
            p.pid
        )));
    }
    Ok(())
}

/// The files each process's memory switch needs open (see
/// [`mm::restore::needed_files`]). Processes that share one fd table
/// (CLONE_FILES) all get the union, so they open the same files at the
/// same numbers.
fn files_by_table(procs: &[Process]) -> Vec<Vec<(String, bool)>> {
    let by_pid: BTreeMap<u32, usize> = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
    let table_of = |p: &Process| -> u32 {
        let Some(&start) = by_pid.get(&p.pid) else {
            return p.pid;
        };
        let mut i = start;
        // Bounded: a cycle of parents (a corrupt image) must not hang us.
        for _ in 0..procs.len() {
            if !procs[i].files_shared_with_parent {
                break;
            }
            match by_pid.get(&procs[i].ppid) {
                Some(&q) => i = q,
                None => break,
            }
        }
        procs[i].pid
    };
    let mut union: BTreeMap<u32, BTreeSet<(String, bool)>> = BTreeMap::new();
    for p in procs.iter().filter(|p| !p.zombie) {
        union
            .entry(table_of(p))
            .or_default()
            .extend(mm::restore::needed_files(p));
    }
    procs
        .iter()
        .map(|p| {
            union
                .get(&table_of(p))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        })
        .collect()
}
