//! System V IPC with chosen ids, which a tree in an IPC namespace of its
//! own needs at restore (see [`crate::ipc`]).

use stasis_sys::sysvipc;

/// In a thread of its own (the IPC namespace is per task, and goes away
/// with the thread): a new IPC namespace, a segment created with an id
/// chosen through `kernel.shm_next_id`, and a message copied with
/// msgrcv(MSG_COPY).
pub(super) fn sysv_ipc_ids() -> Result<(bool, String), String> {
    std::thread::spawn(|| -> Result<(bool, String), String> {
        const WANT: i32 = 4242;
        sysvipc::unshare_ipc().map_err(|e| e.to_string())?;
        let file = crate::ipc::NEXT_SHM_ID;
        if let Err(e) = std::fs::write(file, WANT.to_string()) {
            return Ok((
                false,
                format!("{file}: {e}; System V objects cannot get their ids back"),
            ));
        }
        let id = sysvipc::shmget(libc::IPC_PRIVATE, 4096, 0o600).map_err(|e| e.to_string())?;
        if id != WANT {
            return Ok((false, format!("{file} asked for id {WANT}, shmget gave {id}")));
        }
        let q = sysvipc::msgget(libc::IPC_PRIVATE, 0o600).map_err(|e| e.to_string())?;
        sysvipc::msgsnd(q, 3, b"probe").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 24];
        let copy = sysvipc::msg_copy(q, 0, &mut buf);
        match copy {
            Ok((3, 5)) if &buf[8..13] == b"probe" => Ok((
                true,
                format!(
                    "in a new IPC namespace, {file} gave a segment id {WANT} and msgrcv(MSG_COPY) copied a message"
                ),
            )),
            Ok(other) => Ok((false, format!("msgrcv(MSG_COPY) returned {other:?}"))),
            Err(e) => Ok((false, format!("msgrcv(MSG_COPY): {e}"))),
        }
    })
    .join()
    .unwrap_or_else(|_| Err("the probe thread panicked".into()))
}
