//! signalfd(2): the set of signals it reads, from fdinfo. Pending signals
//! themselves belong to the process and are restored with it.

use std::os::fd::RawFd;

use stasis_image::{Fd, FdKind};
use stasis_proc::FdInfo;

pub fn dump(fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    fd.signalfd_mask = info
        .signalfd_sigmask
        .ok_or("a signalfd without its fdinfo mask")?;
    fd.kind = FdKind::SignalFd as i32;
    fd.path = String::new();
    Ok(())
}

pub fn open(fd: &Fd) -> Result<RawFd, stasis_sys::SysError> {
    stasis_sys::evfd::signalfd(fd.signalfd_mask, 0)
}
