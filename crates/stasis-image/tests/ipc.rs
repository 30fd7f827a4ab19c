//! The IPC namespace of an image (`Inventory::ipc`): round trip and the
//! checks of `validate`.

mod common;

use common::sample_image;
use stasis_image::*;

/// MAP_SHARED and SHM_RDONLY (no libc dependency in these tests).
const MAP_SHARED: u32 = 1;
const SHM_RDONLY: u32 = 0o10000;

/// The sample image with an IPC namespace: a 3-page segment (id 32768)
/// attached read-only by the child in two VMAs (as after mprotect), a
/// removed segment, a semaphore set and a queue with two messages.
fn with_ipc() -> Image {
    let mut image = sample_image();
    image.inventory.ipc = Some(IpcNamespace {
        shm: vec![
            SysvShm {
                id: 32768,
                key: 0x5157_a001,
                mode: 0o640,
                size: 3 * PAGE_SIZE - 100,
                runs: vec![PageRun {
                    vaddr: PAGE_SIZE,
                    nr_pages: 2,
                    offset: PAGE_SIZE,
                    hash: 7,
                }],
                ..Default::default()
            },
            SysvShm {
                id: 1,
                key: 0x5157_a001,
                mode: 0o1600,
                size: PAGE_SIZE,
                removed: true,
                ..Default::default()
            },
        ],
        sem: vec![SysvSem {
            id: 0,
            key: 0x5157_a003,
            mode: 0o600,
            values: vec![3, 0, 7, 42],
            ..Default::default()
        }],
        msg: vec![SysvMsgQueue {
            id: 5,
            key: 0,
            mode: 0o620,
            qbytes: 12000,
            messages: vec![
                SysvMsg {
                    mtype: 1,
                    text: b"hello".to_vec(),
                },
                SysvMsg {
                    mtype: 7,
                    text: Vec::new(),
                },
            ],
            ..Default::default()
        }],
        sysctls: vec![
            IpcSysctl {
                name: "msgmnb".into(),
                values: vec![16384],
            },
            IpcSysctl {
                name: "sem".into(),
                values: vec![32000, 1024000000, 500, 32000],
            },
        ],
    });
    let seg = |start: u64, end: u64, pgoff: u64| Vma {
        start,
        end,
        prot: 1,
        flags: MAP_SHARED | SHM_RDONLY,
        kind: VmaKind::SysvShm as i32,
        name: "/SYSV5157a001".into(),
        pgoff,
        sysv_shmid: 32768,
        ..Default::default()
    };
    let child = &mut image.processes[1];
    child.vmas.push(seg(0x10_0000, 0x10_1000, 0));
    child.vmas.push(seg(0x10_1000, 0x10_3000, PAGE_SIZE));
    image
}

fn invalid(image: &Image) -> InvalidImage {
    match validate(image) {
        Err(DecodeError::Invalid(e)) => e,
        other => panic!("expected an invalid image, got {other:?}"),
    }
}

#[test]
fn round_trip() {
    let image = with_ipc();
    validate(&image).unwrap();
    let back = decode_core(&encode_core(&image)).unwrap();
    assert_eq!(back, image);
    let ns = back.inventory.ipc.unwrap();
    assert_eq!(ns.msg[0].messages[1].mtype, 7);
    assert_eq!(back.processes[1].vmas[3].sysv_shmid, 32768);
}

#[test]
fn no_namespace_is_none() {
    let back = decode_core(&encode_core(&sample_image())).unwrap();
    assert_eq!(back.inventory.ipc, None);
}

#[test]
fn vma_needs_its_segment() {
    let mut image = with_ipc();
    image.processes[1].vmas[2].sysv_shmid = 4;
    assert_eq!(
        invalid(&image),
        InvalidImage::MissingSysvShm {
            pid: 101,
            start: 0x10_0000,
            id: 4
        }
    );
    // Past the segment's end.
    let mut image = with_ipc();
    image.processes[1].vmas[3].end = 0x10_4000;
    assert!(matches!(
        invalid(&image),
        InvalidImage::MissingSysvShm { .. }
    ));
    let mut image = with_ipc();
    image.processes[1].vmas[3].pgoff = 2 * PAGE_SIZE;
    assert!(matches!(
        invalid(&image),
        InvalidImage::MissingSysvShm { .. }
    ));
    // A SysvShm VMA without any namespace.
    let mut image = with_ipc();
    image.inventory.ipc = None;
    let e = invalid(&image);
    assert!(matches!(e, InvalidImage::MissingSysvShm { id: 32768, .. }));
    assert!(DecodeError::Invalid(e)
        .to_string()
        .contains("System V shared memory segment 32768"));
}

#[test]
fn segments() {
    let edit = |f: &dyn Fn(&mut IpcNamespace)| {
        let mut image = with_ipc();
        f(image.inventory.ipc.as_mut().unwrap());
        invalid(&image)
    };
    let bad = |e: InvalidImage, id: i32| match e {
        InvalidImage::BadIpcObject { id: got, .. } => assert_eq!(got, id, "{e}"),
        other => panic!("{other:?}"),
    };
    bad(edit(&|ns| ns.shm[1].id = 32768), 32768);
    bad(edit(&|ns| ns.shm[0].id = -1), -1);
    bad(edit(&|ns| ns.shm[0].size = 0), 32768);
    bad(edit(&|ns| ns.shm[0].size = PAGE_SIZE), 32768);
    // A live segment may share its key only with a removed one.
    bad(edit(&|ns| ns.shm[1].removed = false), 1);
    assert!(matches!(
        edit(&|ns| ns.shm[0].runs[0].offset = 0),
        InvalidImage::BadRun { .. }
    ));
    let e = edit(&|ns| ns.shm[0].runs[0].nr_pages = 1000);
    assert!(matches!(e, InvalidImage::BadRun { .. }), "{e}");
}

#[test]
fn semaphores_queues_sysctls() {
    let edit = |f: &dyn Fn(&mut IpcNamespace)| {
        let mut image = with_ipc();
        f(image.inventory.ipc.as_mut().unwrap());
        invalid(&image)
    };
    let e = edit(&|ns| ns.sem[0].values.clear());
    assert_eq!(
        e.to_string(),
        "IPC namespace: semaphore set 0: it has no semaphores"
    );
    let e = edit(&|ns| ns.msg[0].messages[0].mtype = 0);
    assert!(matches!(e, InvalidImage::BadIpcObject { id: 5, .. }));
    let e = edit(&|ns| {
        let q = ns.msg[0].clone();
        ns.msg.push(q)
    });
    assert!(matches!(e, InvalidImage::BadIpcObject { id: 5, .. }));
    // Two private queues are fine, two with one key are not.
    let mut image = with_ipc();
    let ns = image.inventory.ipc.as_mut().unwrap();
    let mut q = ns.msg[0].clone();
    q.id = 6;
    ns.msg.push(q);
    validate(&image).unwrap();
    image.inventory.ipc.as_mut().unwrap().msg[1].key = 9;
    image.inventory.ipc.as_mut().unwrap().msg[0].key = 9;
    assert!(matches!(
        invalid(&image),
        InvalidImage::BadIpcObject { id: 6, .. }
    ));
    for name in ["shm_next_id", "../../../etc/passwd", ""] {
        let e = edit(&|ns| ns.sysctls[0].name = name.into());
        assert_eq!(e, InvalidImage::BadIpcSysctl { name: name.into() });
    }
    let e = edit(&|ns| ns.sysctls[1].name = "msgmnb".into());
    assert!(matches!(e, InvalidImage::BadIpcSysctl { .. }));
    let e = edit(&|ns| ns.sysctls[0].values.clear());
    assert!(matches!(e, InvalidImage::BadIpcSysctl { .. }));
}
