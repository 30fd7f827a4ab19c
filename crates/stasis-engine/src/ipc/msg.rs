//! System V message queues: every queued message, oldest first, with its
//! type, and the queue's `msg_qbytes`.
//!
//! Dump copies each message with msgrcv(2) MSG_COPY, by position, so the
//! queue keeps it. Restore sends them again in order, with the queue's
//! limit raised while it is filled (the limit may have been lowered below
//! what the queue holds; raising it above `kernel.msgmnb` would need
//! CAP_SYS_RESOURCE, so `msgmnb` is raised for that time instead, see
//! [`super::sysctl::Limits`]), then set back.

use stasis_image::{SysvMsg, SysvMsgQueue};
use stasis_sys::sysvipc::{self, IpcPerm};

use super::common::{check_id, fill_qbytes, read_rows, rst_err, set_next_id, NEXT_ID};
use crate::error::{DumpError, RestoreError, SysCtx};

/// Dumps every queue of the caller's IPC namespace (the tree's), whose
/// `kernel.msgmax` is `msgmax`.
pub fn dump(root: i32, msgmax: u64) -> Result<Vec<SysvMsgQueue>, DumpError> {
    let mut out = Vec::new();
    for row in read_rows(root, "msg")? {
        let id = row.id;
        let st = sysvipc::msg_stat(id).dump_ctx(root, "msgctl(IPC_STAT)")?;
        // No message is longer than the queue's bytes, nor than msgmax
        // (which also bounds what MSG_COPY copies).
        let mut buf = vec![0u8; 8 + st.cbytes.min(msgmax) as usize];
        let mut messages = Vec::with_capacity(st.qnum as usize);
        for i in 0..st.qnum {
            match sysvipc::msg_copy(id, i, &mut buf) {
                Ok((mtype, n)) => messages.push(SysvMsg {
                    mtype,
                    text: buf[8..8 + n].to_vec(),
                }),
                Err(e) if e.errno() == Some(libc::E2BIG) => {
                    return Err(DumpError::Refused {
                        pid: root,
                        what: format!(
                            "has message {i} of System V queue {id} longer than kernel.msgmax ({msgmax}) of its IPC namespace, which msgrcv cannot copy; raise msgmax there"
                        ),
                    })
                }
                Err(source) => {
                    return Err(DumpError::Sys {
                        pid: root,
                        step: "msgrcv(MSG_COPY)",
                        source,
                    })
                }
            }
        }
        out.push(SysvMsgQueue {
            id,
            key: st.perm.key,
            mode: st.perm.mode,
            uid: st.perm.uid,
            gid: st.perm.gid,
            qbytes: st.qbytes,
            messages,
        });
    }
    Ok(out)
}

/// Creates every queue with its id and messages in the caller's (new)
/// namespace, whose `msgmnb` and `msgmax` allow filling them.
pub fn create(queues: &[SysvMsgQueue]) -> Result<(), RestoreError> {
    for q in queues {
        let what = format!("System V message queue {}", q.id);
        set_next_id(NEXT_ID[2], q.id)?;
        let flags = (q.mode & 0o777) as i32 | libc::IPC_CREAT | libc::IPC_EXCL;
        let id = sysvipc::msgget(q.key, flags).map_err(rst_err(format!("create {what}")))?;
        check_id("System V message queue", q.id, id)?;
        let perm = IpcPerm {
            uid: q.uid,
            gid: q.gid,
            mode: q.mode,
            ..Default::default()
        };
        sysvipc::msg_set(id, &perm, fill_qbytes(q))
            .map_err(rst_err(format!("make room in {what}")))?;
        for (i, m) in q.messages.iter().enumerate() {
            sysvipc::msgsnd(id, m.mtype, &m.text)
                .map_err(rst_err(format!("send message {i} to {what}")))?;
        }
        sysvipc::msg_set(id, &perm, q.qbytes)
            .map_err(rst_err(format!("set owner, mode and size of {what}")))?;
    }
    Ok(())
}
