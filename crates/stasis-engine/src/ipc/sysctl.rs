//! The per-namespace `kernel.*` sysctls of IPC: the limits an image
//! carries ([`stasis_image::IPC_SYSCTLS`]) and the `*_next_id` files that
//! choose the id of the next object. Every access goes through
//! /proc/sys/kernel, which shows the namespace of the task that looks.

use std::collections::BTreeMap;

use stasis_image::{IpcNamespace, IpcSysctl, IPC_SYSCTLS};

use super::common::{failed, fill_qbytes};
use crate::error::RestoreError;

fn path(name: &str) -> String {
    format!("/proc/sys/kernel/{name}")
}

fn read(name: &str) -> Result<Vec<u64>, String> {
    let p = path(name);
    let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {p}: {e}"))?;
    text.split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|_| format!("{p}: {text:?} is not a number"))
        })
        .collect()
}

fn write(name: &str, values: &[u64]) -> Result<(), RestoreError> {
    let p = path(name);
    let text = values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&p, &text).map_err(|e| failed(format_args!("cannot write {text:?} to {p}: {e}")))
}

/// Every sysctl of [`IPC_SYSCTLS`] of the caller's namespace.
pub fn read_all() -> Result<Vec<IpcSysctl>, String> {
    IPC_SYSCTLS
        .iter()
        .map(|n| {
            Ok(IpcSysctl {
                name: n.to_string(),
                values: read(n)?,
            })
        })
        .collect()
}

/// The first value of sysctl `name` in `v`, 0 if it is not there.
pub fn value(v: &[IpcSysctl], name: &str) -> u64 {
    v.iter()
        .find(|c| c.name == name)
        .and_then(|c| c.values.first().copied())
        .unwrap_or(0)
}

/// Writes the image's values as they are.
pub fn write_exact(v: &[IpcSysctl]) -> Result<(), RestoreError> {
    v.iter().try_for_each(|c| write(&c.name, &c.values))
}

/// The limits of the new namespace while its objects are created: each
/// at least what the image had and what its objects need.
pub struct Limits {
    now: BTreeMap<&'static str, Vec<u64>>,
    want: BTreeMap<&'static str, Vec<u64>>,
}

impl Limits {
    pub fn read() -> Result<Limits, RestoreError> {
        let mut now = BTreeMap::new();
        for n in IPC_SYSCTLS {
            now.insert(n, read(n).map_err(failed)?);
        }
        Ok(Limits {
            want: now.clone(),
            now,
        })
    }

    /// Raises value `i` of `name` to at least `min`.
    fn at_least(&mut self, name: &'static str, i: usize, min: u64) {
        if let Some(v) = self.want.get_mut(name).and_then(|v| v.get_mut(i)) {
            *v = (*v).max(min);
        }
    }

    /// Raises the limits to what the image had, and to what creating and
    /// filling its objects takes: a queue is filled with its `msg_qbytes`
    /// at least as large as what it holds (it may have been lowered below
    /// that), and only up to `msgmnb` without CAP_SYS_RESOURCE.
    pub fn raise_for(&mut self, ns: &IpcNamespace) {
        for c in &ns.sysctls {
            let Some(&name) = IPC_SYSCTLS.iter().find(|n| **n == c.name) else {
                continue;
            };
            // shm_rmid_forced is a switch, not a limit: set at the end.
            if name == "shm_rmid_forced" {
                continue;
            }
            for (i, v) in c.values.iter().enumerate() {
                self.at_least(name, i, *v);
            }
        }
        let pages = |s: u64| s.div_ceil(4096);
        let max = |it: &mut dyn Iterator<Item = u64>| it.max().unwrap_or(0);
        self.at_least("shmmax", 0, max(&mut ns.shm.iter().map(|s| s.size)));
        self.at_least("shmall", 0, ns.shm.iter().map(|s| pages(s.size)).sum());
        self.at_least("shmmni", 0, ns.shm.len() as u64);
        self.at_least(
            "msgmax",
            0,
            max(&mut ns
                .msg
                .iter()
                .flat_map(|q| q.messages.iter().map(|m| m.text.len() as u64))),
        );
        self.at_least("msgmnb", 0, max(&mut ns.msg.iter().map(fill_qbytes)));
        self.at_least("msgmni", 0, ns.msg.len() as u64);
        // sem: SEMMSL SEMMNS SEMOPM SEMMNI.
        self.at_least(
            "sem",
            0,
            max(&mut ns.sem.iter().map(|s| s.values.len() as u64)),
        );
        self.at_least("sem", 1, ns.sem.iter().map(|s| s.values.len() as u64).sum());
        self.at_least("sem", 3, ns.sem.len() as u64);
    }

    /// Writes the limits that changed.
    pub fn write(&self) -> Result<(), RestoreError> {
        for (name, v) in &self.want {
            if self.now.get(name) != Some(v) {
                write(name, v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stasis_image::{SysvMsg, SysvMsgQueue, SysvSem, SysvShm};

    #[test]
    fn limits_cover_image_and_objects() {
        let defaults: BTreeMap<&'static str, Vec<u64>> = IPC_SYSCTLS
            .iter()
            .map(|n| {
                (
                    *n,
                    if *n == "sem" {
                        vec![10, 20, 30, 40]
                    } else {
                        vec![100]
                    },
                )
            })
            .collect();
        let mut l = Limits {
            now: defaults.clone(),
            want: defaults,
        };
        let msg = |len: usize| SysvMsg {
            mtype: 1,
            text: vec![0; len],
        };
        let ns = IpcNamespace {
            shm: vec![SysvShm {
                size: 5000,
                ..Default::default()
            }],
            sem: vec![SysvSem {
                values: vec![0; 12],
                ..Default::default()
            }],
            msg: vec![SysvMsgQueue {
                qbytes: 10,
                messages: vec![msg(150), msg(60)],
                ..Default::default()
            }],
            sysctls: vec![
                IpcSysctl {
                    name: "shmmni".into(),
                    values: vec![500],
                },
                IpcSysctl {
                    name: "shm_rmid_forced".into(),
                    values: vec![1],
                },
                IpcSysctl {
                    name: "msgmni".into(),
                    values: vec![3],
                },
            ],
        };
        l.raise_for(&ns);
        let w = |n: &str| l.want[n].clone();
        assert_eq!(w("shmmni"), [500]);
        assert_eq!(w("msgmni"), [100], "never lowered while creating");
        assert_eq!(w("shm_rmid_forced"), [100], "a switch, set at the end");
        assert_eq!(w("shmmax"), [5000]);
        assert_eq!(w("msgmax"), [150]);
        // The queue holds 210 bytes with msg_qbytes 10.
        assert_eq!(w("msgmnb"), [210]);
        assert_eq!(w("sem"), [12, 20, 30, 40]);
    }
}
