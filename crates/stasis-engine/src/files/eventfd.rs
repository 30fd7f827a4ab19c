//! eventfd(2): the counter and the semaphore mode, from fdinfo; created
//! again with the counter written back.

use std::os::fd::RawFd;

use stasis_image::{EventFdState, Fd, FdKind};
use stasis_proc::FdInfo;

pub fn dump(fd: &mut Fd, info: &FdInfo) -> Result<(), String> {
    let e = info
        .eventfd
        .ok_or("an eventfd without its fdinfo counter")?;
    fd.kind = FdKind::EventFd as i32;
    fd.path = String::new();
    fd.eventfd = Some(EventFdState {
        count: e.count,
        semaphore: e.semaphore.unwrap_or(false),
    });
    Ok(())
}

pub fn open(fd: &Fd) -> Result<RawFd, stasis_sys::SysError> {
    let s = fd.eventfd.clone().unwrap_or_default();
    let mut flags = 0;
    if s.semaphore {
        flags |= libc::EFD_SEMAPHORE;
    }
    stasis_sys::evfd::eventfd(s.count, flags)
}
