//! Pipes: each end's open file descriptions and the bytes in flight.
//!
//! A pipe can have any number of open file descriptions: the two that
//! pipe(2) makes, and more made by opening `/proc/PID/fd/N` of an end,
//! each with its own status flags, in any access mode (O_RDWR too, which
//! pipes and FIFOs allow). Fds that share a description (dup, fork) share
//! its record's `desc` (see [`super::Descriptions`]).
//!
//! Dump copies the buffered bytes once per pipe with tee(2), never
//! consuming them ([`dump`]). Restore ([`Pipes`]) makes one pipe per
//! record, fills it, and gives the first read-only and the first
//! write-only description of the image the pipe's own ends; every other
//! description is opened through `/proc/self/fd/<end>`, as the original
//! was. The restorer keeps both ends until every description is open, so
//! such an open never waits for a partner, then closes them: a pipe whose
//! tree held no reader (or no writer) is left without one.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use stasis_image::{Fd, Pipe};
use stasis_sys::{pidfd as syspidfd, util, RemoteFd};

use crate::error::{DumpError, SysCtx};
use crate::procfs;

/// Copies the bytes buffered in the pipe of fd `fd` of `pid` (opened with
/// access mode `mode`) without consuming them.
pub fn dump(pid: i32, fd: i32, mode: i32, ino: u64) -> Result<Pipe, DumpError> {
    let ours = if mode != libc::O_WRONLY {
        syspidfd::copy_of(pid, RemoteFd(fd)).dump_ctx(pid, "pidfd_getfd")?
    } else {
        // Only a write end is here: open a read end of the same pipe
        // (non-blocking: a FIFO without a writer would wait for one).
        let path = format!("/proc/{pid}/fd/{fd}");
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| procfs::io_err(pid, path, e))?
            .into()
    };
    let capacity = util::pipe_size(ours.as_raw_fd()).dump_ctx(pid, "pipe size")?;
    let (r, w) = util::pipe().dump_ctx(pid, "pipe")?;
    util::set_pipe_size(w.as_raw_fd(), capacity).map_err(|e| DumpError::Refused {
        pid,
        what: format!(
            "fd {fd} is a pipe of {capacity} bytes, larger than stasis can copy ({e}); raise fs.pipe-max-size"
        ),
    })?;
    // SPLICE_F_NONBLOCK: an empty pipe gives 0, never a wait.
    let n =
        util::tee(ours.as_raw_fd(), w.as_raw_fd(), capacity as usize).dump_ctx(pid, "tee pipe")?;
    drop(w);
    let mut data = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match util::read_raw(r.as_raw_fd(), &mut data[got..]).dump_ctx(pid, "read pipe copy")? {
            0 => {
                return Err(DumpError::Refused {
                    pid,
                    what: format!("fd {fd}: the copy of its pipe ended after {got} of {n} bytes"),
                })
            }
            k => got += k,
        }
    }
    Ok(Pipe {
        ino,
        capacity,
        data,
        ..Default::default()
    })
}

/// The pipes of one restore, made before any description is opened.
#[derive(Default)]
pub struct Pipes(BTreeMap<u64, Ends>);

/// A recreated pipe: its (read, write) ends in the restorer, and whether
/// a description of the image already took each of them.
struct Ends {
    fds: [RawFd; 2],
    taken: [bool; 2],
}

impl Pipes {
    /// Makes and fills the pipe of record `pipe` (not a FIFO's); `lift`
    /// moves a new descriptor out of the way of the description table.
    /// Whatever was made stays here for [`Pipes::close`], even on error.
    pub fn create(
        &mut self,
        pipe: &Pipe,
        lift: impl Fn(RawFd) -> Result<RawFd, String>,
    ) -> Result<(), String> {
        if self.0.contains_key(&pipe.ino) {
            return Err("recorded twice in the image".into());
        }
        let (r, w) = util::pipe_raw().map_err(|e| e.to_string())?;
        let ends = self.0.entry(pipe.ino).or_insert(Ends {
            fds: [r, w],
            taken: [false; 2],
        });
        for f in &mut ends.fds {
            *f = lift(*f)?;
        }
        let w = ends.fds[1];
        if pipe.capacity != 0 {
            util::set_pipe_size(w, pipe.capacity).map_err(|e| e.to_string())?;
        }
        util::write_all_raw(w, &pipe.data).map_err(|e| e.to_string())
    }

    /// A new descriptor of the description `fd` (a `Pipe` record), with
    /// its access mode; its status flags are the caller's to set. `above`
    /// is where temporaries go.
    pub fn open(&mut self, fd: &Fd, above: RawFd) -> Result<RawFd, String> {
        let ends = self
            .0
            .get_mut(&fd.pipe_ino)
            .ok_or_else(|| format!("pipe:[{}] is missing from the image", fd.pipe_ino))?;
        let mode = fd.flags as i32 & libc::O_ACCMODE;
        let end = match mode {
            libc::O_RDONLY => Some(0),
            libc::O_WRONLY => Some(1),
            libc::O_RDWR => None,
            _ => return Err(format!("pipe:[{}]: access mode {mode:#o}", fd.pipe_ino)),
        };
        if let Some(i) = end.filter(|i| !ends.taken[*i]) {
            ends.taken[i] = true;
            return util::dup_above(ends.fds[i], above).map_err(|e| e.to_string());
        }
        // Another description of the same pipe, as the original made it.
        // Non-blocking: with both ends held here it would not wait anyway.
        util::open_raw(
            &format!("/proc/self/fd/{}", ends.fds[0]),
            mode | libc::O_NONBLOCK,
        )
        .map_err(|e| format!("pipe:[{}]: another description: {e}", fd.pipe_ino))
    }

    /// Closes the restorer's ends, once every description is open.
    pub fn close(&mut self) {
        for e in std::mem::take(&mut self.0).into_values() {
            e.fds.iter().for_each(|f| util::close_raw(*f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ino: u64, flags: i32) -> Fd {
        Fd {
            pipe_ino: ino,
            flags: flags as u32,
            ..Default::default()
        }
    }

    fn flags(fd: RawFd) -> i32 {
        util::status_flags(fd).expect("F_GETFL") & libc::O_ACCMODE
    }

    /// Inconsistent records are errors, not panics.
    #[test]
    fn bad_records_are_errors() {
        let mut p = Pipes::default();
        let e = p.open(&rec(5, libc::O_RDONLY), 0).unwrap_err();
        assert!(e.contains("pipe:[5] is missing"), "{e}");
        let pipe = Pipe {
            ino: 5,
            data: b"abc".to_vec(),
            ..Default::default()
        };
        p.create(&pipe, Ok).expect("create");
        let e = p.create(&pipe, Ok).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = p.open(&rec(5, libc::O_ACCMODE), 0).unwrap_err();
        assert!(e.contains("access mode"), "{e}");
        p.close();
    }

    /// Two read descriptions, two write descriptions and a read-write one
    /// of one pipe: all distinct, all on the pipe, data intact.
    #[test]
    fn extra_descriptions_share_the_pipe() {
        let mut p = Pipes::default();
        let pipe = Pipe {
            ino: 9,
            data: b"hello".to_vec(),
            ..Default::default()
        };
        p.create(&pipe, Ok).expect("create");
        let modes = [
            libc::O_RDONLY,
            libc::O_RDONLY,
            libc::O_WRONLY,
            libc::O_WRONLY,
            libc::O_RDWR,
        ];
        let fds: Vec<RawFd> = modes
            .iter()
            .map(|m| p.open(&rec(9, *m), 0).expect("open"))
            .collect();
        p.close();
        for (fd, m) in fds.iter().zip(modes) {
            assert_eq!(flags(*fd), m);
        }
        let me = std::process::id() as i32;
        assert!(!util::same_file(me, fds[0], me, fds[1]).expect("kcmp"));
        let mut buf = [0u8; 5];
        assert_eq!(util::read_raw(fds[1], &mut buf).expect("read"), 5);
        assert_eq!(&buf, b"hello");
        util::write_all_raw(fds[3], b"x").expect("write");
        assert_eq!(util::read_raw(fds[4], &mut buf).expect("read"), 1);
        assert_eq!(buf[0], b'x');
        fds.iter().for_each(|f| util::close_raw(*f));
    }
}
