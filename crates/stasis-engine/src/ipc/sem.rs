//! System V semaphore sets: every semaphore's value (GETALL at dump,
//! SETALL at restore), with the set's id, key, owner and mode.
//!
//! Whether semop(2) was ever used on the set is kept too: a common way to
//! wait until the creator of a set has initialized it is to poll
//! `sem_otime` until it is not 0. Restore makes it non-zero (at the time
//! of the restore) with one semop that leaves the value as it was.
//!
//! Processes waiting in semop(2) at dump time are not part of the set's
//! state: their interrupted call is restarted after restore and waits
//! again. SEM_UNDO adjustments are not kept (see [`super`]).

use stasis_image::SysvSem;
use stasis_sys::sysvipc::{self, IpcPerm};

use super::common::{check_id, read_rows, rst_err, set_next_id, NEXT_ID};
use crate::error::{DumpError, RestoreError, SysCtx};

/// The largest value a semaphore holds.
const SEMVMX: u16 = 32767;

/// Dumps every semaphore set of the caller's IPC namespace (the tree's).
pub fn dump(root: i32) -> Result<Vec<SysvSem>, DumpError> {
    let mut out = Vec::new();
    for row in read_rows(root, "sem")? {
        let st = sysvipc::sem_stat(row.id).dump_ctx(root, "semctl(IPC_STAT)")?;
        let perm = st.perm;
        let values = sysvipc::sem_getall(row.id, st.nsems).dump_ctx(root, "semctl(GETALL)")?;
        out.push(SysvSem {
            id: row.id,
            key: perm.key,
            mode: perm.mode,
            uid: perm.uid,
            gid: perm.gid,
            values: values.into_iter().map(u32::from).collect(),
            operated: st.otime != 0,
        });
    }
    Ok(out)
}

/// Creates every set with its id and values in the caller's (new) namespace.
pub fn create(sets: &[SysvSem]) -> Result<(), RestoreError> {
    for s in sets {
        let what = format!("System V semaphore set {}", s.id);
        let values = s
            .values
            .iter()
            .map(|v| u16::try_from(*v))
            .collect::<Result<Vec<u16>, _>>()
            .map_err(|_| RestoreError::Refused(format!("{what}: a value is above 65535")))?;
        set_next_id(NEXT_ID[1], s.id)?;
        let flags = (s.mode & 0o777) as i32 | libc::IPC_CREAT | libc::IPC_EXCL;
        let id = sysvipc::semget(s.key, values.len(), flags)
            .map_err(rst_err(format!("create {what}")))?;
        check_id("System V semaphore set", s.id, id)?;
        sysvipc::sem_setall(id, &values).map_err(rst_err(format!("set the values of {what}")))?;
        if s.operated {
            // Up and down again (down and up at the maximum), atomically:
            // sets sem_otime, keeps the value.
            let step = if values[0] < SEMVMX { 1 } else { -1 };
            sysvipc::semop(id, &[(0, step), (0, -step)])
                .map_err(rst_err(format!("mark {what} as operated on")))?;
        }
        let perm = IpcPerm {
            uid: s.uid,
            gid: s.gid,
            mode: s.mode,
            ..Default::default()
        };
        sysvipc::sem_set(id, &perm).map_err(rst_err(format!("set owner and mode of {what}")))?;
    }
    Ok(())
}
