//! Writing the image: its inventory and the commit point.

use std::path::Path;

use stasis_image::{self as img, Image, Inventory};

use crate::error::DumpError;
use crate::{fault_point, mm};

use super::Collected;

/// Finishes the pages file and commits the image of `c`, whose root is
/// `root_pid` (as the tree sees it). Returns the image and the bytes of
/// page data written.
pub(super) fn write(
    dir: &Path,
    c: Collected,
    root_pid: u32,
    shell_job: bool,
    vdso_hash: u64,
) -> Result<(Image, u64), DumpError> {
    if fault_point("dump-before-write") {
        return Err(DumpError::Injected("dump-before-write"));
    }
    let pages_file = c.pages.name();
    let pages_size = c.pages.finish()?;
    let xstate_size = c.processes[0]
        .threads
        .first()
        .map(|t| t.xstate.len() as u32)
        .unwrap_or(0);
    let image = Image {
        inventory: Inventory {
            format_major: img::FORMAT_MAJOR,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            kernel_release: crate::procfs::kernel_release(),
            arch: std::env::consts::ARCH.into(),
            root_pid,
            shell_job,
            page_size: mm::PAGE as u32,
            created_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            xstate_size,
            vdso_hash,
            pids: c.processes.iter().map(|p| p.pid).collect(),
            pages_file_size: pages_size,
            xcr0: 0,
            ipc: c.ipc,
            pages_file: pages_file.into(),
        },
        pagemaps: c.pagemaps,
        processes: c.processes,
        pipes: c.pipes,
    };
    commit_image(dir, &image)?;
    Ok((image, c.pages_bytes))
}

/// Writes `core.img`, the commit point (see `stasis_image::store`): until
/// it is renamed into place, the directory still holds its previous image
/// whole. On failure the pages file just written for `image` is removed,
/// unless a `core.img` that names it did make it into place (only its
/// directory's fsync failed).
fn commit_image(dir: &Path, image: &Image) -> Result<(), DumpError> {
    let written = if fault_point("dump-before-core") {
        Err(DumpError::Injected("dump-before-core"))
    } else {
        img::write_core(dir, image).map_err(DumpError::from)
    };
    if written.is_err() {
        let ours = img::pages_file_name(&image.inventory);
        let committed = img::read_core(dir).is_ok_and(|i| {
            img::pages_file_name(&i.inventory) == ours
                && i.inventory.created_unix_ns == image.inventory.created_unix_ns
        });
        if !committed {
            // Best effort: nothing refers to it, and the error that
            // matters is the one returned.
            let _ = std::fs::remove_file(dir.join(ours));
        }
    }
    written
}
