//! Reading /proc files of a target, with errors that name the file.

use std::path::Path;

use crate::error::DumpError;

pub fn read_string(pid: i32, rel: &str) -> Result<String, DumpError> {
    let path = format!("/proc/{pid}/{rel}");
    std::fs::read_to_string(&path).map_err(|source| io_err(pid, path, source))
}

pub fn read_bytes(pid: i32, rel: &str) -> Result<Vec<u8>, DumpError> {
    let path = format!("/proc/{pid}/{rel}");
    std::fs::read(&path).map_err(|source| io_err(pid, path, source))
}

pub fn read_link(pid: i32, rel: &str) -> Result<String, DumpError> {
    let path = format!("/proc/{pid}/{rel}");
    std::fs::read_link(&path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|source| io_err(pid, path, source))
}

pub fn stat(pid: i32, rel: &str) -> Result<nix::sys::stat::FileStat, DumpError> {
    let path = format!("/proc/{pid}/{rel}");
    nix::sys::stat::stat(Path::new(&path)).map_err(|e| io_err(pid, path, e.into()))
}

pub fn io_err(pid: i32, path: String, source: std::io::Error) -> DumpError {
    if source.kind() == std::io::ErrorKind::NotFound && !Path::new(&format!("/proc/{pid}")).exists()
    {
        return DumpError::NoSuchProcess(pid);
    }
    DumpError::Io { pid, path, source }
}

/// Maps a parse error to a dump error of `pid`.
pub fn parsed<T>(pid: i32, r: Result<T, stasis_proc::ProcError>) -> Result<T, DumpError> {
    r.map_err(|source| DumpError::Proc { pid, source })
}

/// Builds an image FileId from a stat.
pub fn file_id(st: &nix::sys::stat::FileStat) -> stasis_image::FileId {
    stasis_image::FileId {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        mode: st.st_mode,
        rdev: st.st_rdev,
    }
}

/// The running kernel's release (`uname -r`), as the inventory records it.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// /proc/PID/status, parsed.
pub fn status(pid: i32) -> Result<stasis_proc::Status, DumpError> {
    parsed(pid, stasis_proc::parse_status(&read_string(pid, "status")?))
}

/// /proc/PID/stat, parsed.
pub fn proc_stat(pid: i32) -> Result<stasis_proc::Stat, DumpError> {
    parsed(pid, stasis_proc::parse_stat(&read_string(pid, "stat")?))
}
