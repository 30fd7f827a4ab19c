//! Every kind of descriptor, in one exhaustive `match` ([`kind`]): how a
//! dump recognises it, how the restorer opens it, and what is checked
//! before a restore.
//!
//! Adding a kind of descriptor told by its anon-inode link is its module
//! (a `dump` and an `open`) plus one arm here; the compiler refuses an
//! `FdKind` without one. Kinds told by their path or inode type (regular
//! files, directories, devices, ptys, FIFOs, message queues, unlinked
//! files) are recognised in [`super::FileTable`]'s `describe_path`.

use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, Pipe, Process};
use stasis_proc::FdInfo;

use super::{epoll, eventfd, fanotify, fifo, inet, inotify, pidfd, signalfd, timerfd, uring};
use crate::error::RestoreError;

/// Dumps the state of fd `fd` of `pid` (fdinfo `info`); the error says
/// why it is refused.
pub(super) type DumpFn = fn(i32, &mut Fd, &FdInfo) -> Result<(), String>;
/// Makes the description again in the restorer, somewhere above the table.
pub(super) type OpenFn = fn(&Fd) -> Result<RawFd, String>;
/// Refuses, before anything is created, a descriptor that cannot be
/// restored here.
pub(super) type CheckFn = fn(&Process, &Fd, &[Pipe]) -> Result<(), RestoreError>;

/// How the restorer opens a description of a kind (`files::table`).
pub(super) enum Open {
    /// With the kind's own `open`; a failure names the fd by `label`, or
    /// by its path.
    Own(OpenFn, Option<&'static str>),
    /// By its path (regular files, directories, simple devices).
    Path,
    /// The restorer's terminal (--shell-job).
    Tty,
    Pipe,
    Fifo,
    Pty,
    Mqueue,
    Unlinked,
    UnixSocket,
    /// Never by the restorer: each process makes its own once it exists
    /// (a pidfd needs the whole tree; a ring belongs to its process).
    InProcess,
}

/// What the engine does with one kind of descriptor.
pub(super) struct Kind {
    /// For a kind told by its link alone (an anon inode): that link in
    /// /proc/PID/fd, and the dump of its state.
    pub anon: Option<(&'static str, DumpFn)>,
    pub open: Open,
    pub check: Option<CheckFn>,
}

fn by_link(link: &'static str, dump: DumpFn, open: Open) -> Kind {
    Kind {
        anon: Some((link, dump)),
        open,
        check: None,
    }
}

fn other(open: Open) -> Kind {
    Kind {
        anon: None,
        open,
        check: None,
    }
}

/// The one exhaustive match on descriptor kinds.
pub(super) fn kind(k: FdKind) -> Kind {
    match k {
        FdKind::Regular | FdKind::Directory | FdKind::CharDev => other(Open::Path),
        FdKind::Tty => other(Open::Tty),
        FdKind::Pipe => other(Open::Pipe),
        FdKind::Fifo => Kind {
            check: Some(fifo::check),
            ..other(Open::Fifo)
        },
        FdKind::PtyMaster | FdKind::PtySlave => other(Open::Pty),
        FdKind::Mqueue => other(Open::Mqueue),
        FdKind::Unlinked => other(Open::Unlinked),
        FdKind::UnixSocket => other(Open::UnixSocket),
        // Told by sock_diag of its socket inode, not by a link.
        FdKind::InetSocket => other(Open::Own(inet::open, None)),
        FdKind::EventFd => by_link(
            "anon_inode:[eventfd]",
            |_, fd, info| eventfd::dump(fd, info),
            Open::Own(|fd| eventfd::open(fd).map_err(|e| e.to_string()), None),
        ),
        FdKind::SignalFd => by_link(
            "anon_inode:[signalfd]",
            |_, fd, info| signalfd::dump(fd, info),
            Open::Own(|fd| signalfd::open(fd).map_err(|e| e.to_string()), None),
        ),
        FdKind::TimerFd => by_link(
            "anon_inode:[timerfd]",
            |_, fd, info| timerfd::dump(fd, info),
            Open::Own(|fd| timerfd::open(fd).map_err(|e| e.to_string()), None),
        ),
        FdKind::Epoll => by_link(
            "anon_inode:[eventpoll]",
            epoll::dump,
            Open::Own(|fd| epoll::open(fd).map_err(|e| e.to_string()), None),
        ),
        FdKind::Inotify => Kind {
            check: Some(|p, fd, _| inotify::check(p, fd)),
            ..by_link(
                "anon_inode:inotify",
                inotify::dump,
                Open::Own(inotify::open, Some("inotify")),
            )
        },
        FdKind::Fanotify => Kind {
            check: Some(|p, fd, _| fanotify::check(p, fd)),
            ..by_link(
                "anon_inode:[fanotify]",
                |pid, fd, _| fanotify::dump(pid, fd),
                Open::Own(fanotify::open, Some("fanotify")),
            )
        },
        FdKind::PidFd => by_link(
            "anon_inode:[pidfd]",
            |_, fd, info| pidfd::dump(fd, info),
            Open::InProcess,
        ),
        FdKind::IoUring => by_link(
            "anon_inode:[io_uring]",
            |pid, fd, info| uring::dump(pid, fd, info.ino),
            Open::InProcess,
        ),
    }
}

/// Every kind, in the image's numbering (which has no gaps; see the test).
fn all() -> impl Iterator<Item = FdKind> {
    (0..).map_while(|i| FdKind::try_from(i).ok())
}

/// The dump of the anon-inode kind whose link is `link`, if there is one.
pub(super) fn dump_by_link(link: &str) -> Option<DumpFn> {
    all().find_map(|k| kind(k).anon.filter(|(l, _)| *l == link).map(|(_, d)| d))
}

/// Whether each process makes descriptors of kind `k` (an image's i32)
/// itself, so that they are left out of the restorer's table.
pub(super) fn made_in_process(k: i32) -> bool {
    FdKind::try_from(k).is_ok_and(|k| matches!(kind(k).open, Open::InProcess))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`all`] stops at the first number that is not a kind.
    #[test]
    fn kind_numbers_have_no_gaps() {
        let n = all().count() as i32;
        for i in n..256 {
            assert!(FdKind::try_from(i).is_err(), "FdKind {i} is past a gap");
        }
    }

    #[test]
    fn anon_links_are_distinct() {
        let links: Vec<&str> = all().filter_map(|k| kind(k).anon.map(|a| a.0)).collect();
        let mut sorted = links.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(links.len(), sorted.len());
        assert!(dump_by_link("anon_inode:[eventfd]").is_some());
        assert!(dump_by_link("anon_inode:[nothing]").is_none());
    }
}
