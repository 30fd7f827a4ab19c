//! POSIX message queues (mq_overview(7)): name, limits, owner, mode and
//! the queued messages with their priorities.
//!
//! Messages cannot be read without taking them off the queue, so dump
//! takes them all through a descriptor of its own (while the tree is
//! frozen) and puts them straight back in the same order, which rebuilds
//! the same queue: mq_receive returns the highest priority first and, in
//! one priority, the oldest first, and sending them back in that order
//! queues each priority's messages oldest first again. A queue with a
//! registered notification (mq_notify) is refused.
//!
//! Restore opens a queue that still exists under its name (a queue lives
//! on after its processes; restoring on the same machine finds it with
//! whatever it holds now); otherwise it creates the queue with its limits,
//! owner and mode, puts the messages back, and unlinks it again if it had
//! been unlinked. Each descriptor is then a new open of that queue with its
//! own flags. Queues live in the IPC namespace: a tree with its own (see
//! `ipc`) gets them in the new one.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind, MqMessage, MqueueState};
use stasis_proc::maps::DELETED_SUFFIX;
use stasis_sys::{mqueue as mq, util};

/// Whether `/proc/PID/fd/N` is a message queue.
pub fn is_mqueue(pid: i32, fd: i32) -> bool {
    nix::sys::statfs::statfs(format!("/proc/{pid}/fd/{fd}").as_str())
        .is_ok_and(|s| s.filesystem_type().0 == mq::MQUEUE_MAGIC)
}

/// Describes queue fd `fd` of `pid`, whose link is `link`.
pub fn dump(
    pid: i32,
    fd: &mut Fd,
    link: &str,
    st: &nix::sys::stat::FileStat,
) -> Result<(), String> {
    let path = format!("/proc/{pid}/fd/{}", fd.fd);
    let status = std::fs::read_to_string(&path).map_err(|e| format!("a message queue: {e}"))?;
    let notify = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("NOTIFY_PID:"))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if notify != 0 {
        return Err(format!(
            "the message queue {link} with a notification registered (mq_notify, pid {notify}), which stasis cannot restore"
        ));
    }
    let own = util::open_raw(&path, libc::O_RDWR | libc::O_NONBLOCK).map_err(|e| e.to_string())?;
    let taken = take_messages(own);
    util::close_raw(own);
    let (maxmsg, msgsize, messages) = taken?;
    let name = link
        .strip_suffix(DELETED_SUFFIX)
        .unwrap_or(link)
        .to_string();
    fd.kind = FdKind::Mqueue as i32;
    fd.path = name.clone();
    fd.mqueue = Some(MqueueState {
        unlinked: link.ends_with(DELETED_SUFFIX),
        name,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        maxmsg,
        msgsize,
        messages,
    });
    Ok(())
}

/// Takes every message off the queue and sends it back (module doc).
fn take_messages(q: RawFd) -> Result<(i64, i64, Vec<MqMessage>), String> {
    let (_, maxmsg, msgsize, _) = mq::attr(q).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut failed = None;
    loop {
        match mq::receive(q, msgsize as usize) {
            Ok(Some((data, prio))) => out.push(MqMessage { prio, data }),
            Ok(None) => break,
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    // Put back whatever was taken, even after an error.
    for m in &out {
        if let Err(e) = mq::send(q, &m.data, m.prio) {
            return Err(format!(
                "a message queue whose messages could not all be put back ({e}); this is a bug"
            ));
        }
    }
    match failed {
        Some(e) => Err(format!("a message queue that cannot be read: {e}")),
        None => Ok((maxmsg, msgsize, out)),
    }
}

/// The queues being restored: image name -> (a descriptor the restorer
/// keeps until every description is open, the name to open it by, whether
/// to unlink that name once all are open).
#[derive(Default)]
pub struct Queues(BTreeMap<String, (RawFd, String, bool)>);

impl Queues {
    /// A new description of the queue `fd` names, made or found first,
    /// opened by name like mq_open(3) does (a reopen through /proc would
    /// add O_LARGEFILE to its flags).
    pub fn open(&mut self, fd: &Fd, above: RawFd) -> Result<RawFd, String> {
        let s = fd.mqueue.as_ref().ok_or("no queue state in the image")?;
        if !self.0.contains_key(&s.name) {
            let (k, name, unlink) = find_or_make(s)?;
            let up = util::dup_above(k, above).map_err(|e| e.to_string());
            util::close_raw(k);
            self.0.insert(s.name.clone(), (up?, name, unlink));
        }
        let (_, name, _) = &self.0[&s.name];
        let flags = fd.flags as i32 & (libc::O_ACCMODE | libc::O_NONBLOCK);
        mq::open(name, flags, 0, (0, 0)).map_err(|e| e.to_string())
    }

    /// Unlinks the queues that had been unlinked, now that every
    /// description is open, and drops the restorer's descriptors.
    pub fn close(&mut self) {
        for (fd, name, unlink) in std::mem::take(&mut self.0).into_values() {
            if unlink {
                let _ = mq::unlink(&name);
            }
            util::close_raw(fd);
        }
    }
}

/// The queue under its name if it is there (and was not unlinked), else a
/// new one with the image's limits, owner, mode and messages. Returns it,
/// the name to open it by, and whether that name is to be unlinked.
fn find_or_make(s: &MqueueState) -> Result<(RawFd, String, bool), String> {
    if !s.unlinked {
        if let Ok(q) = mq::open(&s.name, libc::O_RDWR | libc::O_NONBLOCK, 0, (0, 0)) {
            return Ok((q, s.name.clone(), false));
        }
    }
    let flags = libc::O_RDWR | libc::O_NONBLOCK | libc::O_CREAT | libc::O_EXCL;
    let limits = (s.maxmsg, s.msgsize);
    // An unlinked queue is made under its old name if that is free (its
    // descriptors then read the same), else under a name of ours.
    let (q, name) = match mq::open(&s.name, flags, s.mode, limits) {
        Ok(q) => (q, s.name.clone()),
        Err(_) if s.unlinked => {
            let tmp = format!("/stasis-restore-{}", std::process::id());
            let q = mq::open(&tmp, flags, s.mode, limits)
                .map_err(|e| format!("cannot create the message queue {}: {e}", s.name))?;
            (q, tmp)
        }
        Err(e) => return Err(format!("cannot create the message queue {}: {e}", s.name)),
    };
    let filled = (|| {
        for m in &s.messages {
            mq::send(q, &m.data, m.prio).map_err(|e| e.to_string())?;
        }
        let path = format!("/proc/self/fd/{q}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(s.mode))
            .and_then(|()| std::os::unix::fs::chown(&path, Some(s.uid), Some(s.gid)))
            .map_err(|e| e.to_string())
    })();
    if let Err(e) = filled {
        let _ = mq::unlink(&name);
        util::close_raw(q);
        return Err(format!("cannot fill the message queue {}: {e}", s.name));
    }
    Ok((q, name, s.unlinked))
}
