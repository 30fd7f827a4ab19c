//! Pure parsers for Linux `/proc` text.
//!
//! Every parser in this crate takes text (or bytes) that the caller has
//! already read from `/proc`; none of them performs a system call, so they
//! can be tested against captured fixtures and fuzzed freely. Each module
//! handles one `/proc` file and documents the kernel format it expects.
//!
//! Errors are reported as [`ProcError`], which names the `/proc` file kind
//! and, where applicable, the 1-based line number and text that failed.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auxv;
pub mod children;
pub mod error;
pub mod fdinfo;
pub mod limits;
pub mod maps;
pub mod pagemap;
pub mod smaps;
pub mod stat;
pub mod status;
pub mod sysvipc;
pub mod timers;

pub use auxv::parse_auxv;
pub use children::parse_children;
pub use error::ProcError;
pub use fdinfo::{parse_fdinfo, EpollTarget, EventfdInfo, FdInfo, InotifyWatch, TimerfdInfo};
pub use limits::{parse_limits, rlimit_name, Limit, RLIM_INFINITY};
pub use maps::{parse_maps, MapKind, MapsEntry};
pub use pagemap::{pagemap_offset, parse_pagemap, PagemapEntry};
pub use smaps::{parse_smaps, SmapsEntry};
pub use stat::{parse_stat, Stat};
pub use status::{parse_status, Status};
pub use sysvipc::{parse_sysvipc, SysvipcEntry};
pub use timers::{parse_timers, PosixTimerInfo, TimerNotify};
