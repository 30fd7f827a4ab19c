//! The table and the children's plans: before the first fork the restorer
//! opens every open file description and creates every shared memory
//! object once, at fixed descriptor numbers above anything the tree uses,
//! so that every process it forks inherits them.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use stasis_image::Image;
use stasis_sys::util;

use super::child::{ChildPlan, Common};
use crate::error::{RestoreError, SysCtx};
use crate::mm::cow::{CowPlan, Premap};
use crate::tree::Plan;
use crate::{files, mm, trampoline};

/// The restorer's half of the table.
pub(super) struct Table {
    /// First number of the table.
    pub base: RawFd,
    /// Where the children's status reports arrive.
    pub status_r: OwnedFd,
    /// Held until the tree resumes: the children block reading its other
    /// end, and exit when it closes early.
    pub block_w: OwnedFd,
    /// The table's numbers of the two pipes' other ends.
    pub status_fd: RawFd,
    pub block_fd: RawFd,
    /// Shared memory object id -> its number in the table.
    pub shmem: BTreeMap<u64, RawFd>,
    pub descs: files::Descriptions,
    /// First number after the table: each process's helper files.
    pub helper_base: RawFd,
}

impl Table {
    /// What every child reads: the plans and where the table is.
    pub fn common<'a>(&'a self, plans: &'a [ChildPlan<'a>], pages: &'a str) -> Common<'a> {
        Common {
            plans,
            slot: &self.descs.slot,
            table_base: self.base,
            status_fd: self.status_fd,
            block_fd: self.block_fd,
            pages,
        }
    }
}

/// The restorer's copy of the table (descriptor numbers `.0..​.1`), closed
/// once the processes have theirs, or on error.
pub(super) struct TableGuard(RawFd, RawFd);

impl Drop for TableGuard {
    fn drop(&mut self) {
        if self.1 > self.0 {
            let _ = util::close_range(self.0 as u32, (self.1 - 1) as u32);
        }
    }
}

/// Opens the table: status and block pipes, shmem and file objects (which
/// some descriptions reopen), descriptions. The guard closes our copies of
/// it, once the processes have theirs.
pub(super) fn open(
    image: &Image,
    pages: &File,
    tty: Option<&str>,
) -> Result<(Table, TableGuard), RestoreError> {
    let max_fd = image
        .processes
        .iter()
        .flat_map(|p| p.fds.iter().map(|f| f.fd))
        .max()
        .unwrap_or(2)
        .max(2);
    let (status_r, status_w) = util::pipe().rst_ctx(0, "pipe")?;
    let (block_r, block_w) = util::pipe().rst_ctx(0, "pipe")?;
    let base = max_fd.max(util::highest_fd()) + 1;
    let (status_fd, block_fd) = (base, base + 1);
    util::dup_to(status_w.as_raw_fd(), status_fd, false).rst_ctx(0, "dup")?;
    util::dup_to(block_r.as_raw_fd(), block_fd, false).rst_ctx(0, "dup")?;
    drop((status_w, block_r));
    let mut ours = TableGuard(base, base + 2);
    let shmem = mm::restore::create_shmem(&image.pagemaps, &image.processes, pages, base + 2)?;
    ours.1 = base + 2 + shmem.len() as RawFd;
    let descs = files::Descriptions::open(&image.processes, &image.pipes, &shmem, tty, ours.1)?;
    let helper_base = descs.end;
    ours.1 = helper_base;
    let table = Table {
        base,
        status_r,
        block_w,
        status_fd,
        block_fd,
        shmem,
        descs,
        helper_base,
    };
    Ok((table, ours))
}

/// Each process's plan for its own setup, and the numbers (after
/// `helper_base`) of the files its memory switch needs, by (path,
/// writable).
#[allow(clippy::type_complexity)]
pub(super) fn child_plans<'a>(
    image: &'a Image,
    plan: &'a Plan,
    cow: &CowPlan,
    needed: &[Vec<(String, bool)>],
    premaps: &'a [Vec<Premap>],
    pages_path: &str,
    helper_base: RawFd,
) -> Result<(Vec<ChildPlan<'a>>, Vec<BTreeMap<(String, bool), RawFd>>), RestoreError> {
    tracing::debug!(
        "copy-on-write regions to premap: {:?}",
        premaps
            .iter()
            .flatten()
            .map(|m| (m.start, m.end, m.runs.len()))
            .collect::<Vec<_>>()
    );
    let mut plans = Vec::with_capacity(image.processes.len());
    let mut file_fds = Vec::with_capacity(image.processes.len());
    for (i, p) in image.processes.iter().enumerate() {
        let mut helpers: Vec<(String, i32)> =
            vec![(pages_path.to_string(), libc::O_RDONLY | libc::O_NOFOLLOW)];
        let mut fds = BTreeMap::new();
        if !p.zombie {
            for (path, w) in needed[i].iter().cloned() {
                fds.insert((path.clone(), w), helper_base + helpers.len() as RawFd);
                helpers.push((path, if w { libc::O_RDWR } else { libc::O_RDONLY }));
            }
        } else {
            helpers.clear();
        }
        file_fds.push(fds);
        plans.push(ChildPlan {
            process: p,
            node: &plan.nodes[i],
            is_root: i == plan.root,
            helpers,
            helper_base,
            // Placed again here, not taken from the plan: the restorer's
            // own memory (IPC attachments) changed since, and the child
            // inherits it.
            tramp_addr: trampoline::find_hole(
                &p.vmas,
                &cow.visible[i].keys().copied().collect::<Vec<_>>(),
            )?,
            premaps: &premaps[i],
        });
    }
    Ok((plans, file_fds))
}
