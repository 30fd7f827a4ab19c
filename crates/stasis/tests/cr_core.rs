//! Core C/R suite: the memory, file-mapping, thread and fd workloads, each
//! run plainly (`plain_*`, no checkpoint: validates the workload) and through
//! the C/R cycle in every mode (`cr_*`). Needs root.

mod common;

use common::{cr_all_modes, plain_run, require_root, Spawn};

/// `nobody`/`nogroup` on Debian.
fn as_nobody() -> Spawn {
    Spawn {
        uid: Some(65534),
        gid: Some(65534),
        ..Spawn::default()
    }
}

#[test]
fn plain_noop() {
    plain_run("noop", Spawn::default());
}

#[test]
fn plain_mem() {
    plain_run("mem", Spawn::default());
}

#[test]
fn plain_mem_holes() {
    plain_run("mem_holes", Spawn::default());
}

#[test]
fn plain_memfile() {
    plain_run("memfile", Spawn::default());
}

#[test]
fn plain_threads() {
    plain_run("threads", Spawn::default());
}

#[test]
fn plain_fds() {
    plain_run("fds", Spawn::default());
}

#[test]
fn plain_fds_nobody() {
    if !require_root() {
        return;
    }
    plain_run("fds", as_nobody());
}

#[test]
fn cr_noop() {
    if !require_root() {
        return;
    }
    cr_all_modes("noop", Spawn::default());
}

#[test]
fn cr_mem() {
    if !require_root() {
        return;
    }
    cr_all_modes("mem", Spawn::default());
}

/// 64 MiB of per-page patterns with 512 single-page holes that lost read
/// access (PROT_NONE, execute-only): their contents must survive too.
/// `mem_holes 512 512` is the original report (512 MiB).
#[test]
fn cr_mem_holes() {
    if !require_root() {
        return;
    }
    cr_all_modes("mem_holes", Spawn::default());
}

#[test]
fn cr_memfile() {
    if !require_root() {
        return;
    }
    cr_all_modes("memfile", Spawn::default());
}

#[test]
fn cr_threads() {
    if !require_root() {
        return;
    }
    cr_all_modes("threads", Spawn::default());
}

#[test]
fn cr_fds() {
    if !require_root() {
        return;
    }
    cr_all_modes("fds", Spawn::default());
}

#[test]
fn cr_fds_nobody() {
    if !require_root() {
        return;
    }
    cr_all_modes("fds", as_nobody());
}
