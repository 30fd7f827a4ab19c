//! Semantic checks of `validate`, through `decode_core`.

mod common;

use common::sample_image;
use stasis_image::*;

fn invalid(image: &Image) -> InvalidImage {
    assert_eq!(
        validate(image),
        decode_core(&encode_core(image)).map(|_| ())
    );
    match validate(image) {
        Err(DecodeError::Invalid(e)) => e,
        other => panic!("expected an invalid image, got {other:?}"),
    }
}

#[test]
fn sample_is_valid() {
    validate(&sample_image()).unwrap();
}

#[test]
fn page_size() {
    let mut image = sample_image();
    image.inventory.page_size = 16384;
    assert_eq!(invalid(&image), InvalidImage::PageSize { found: 16384 });
}

#[test]
fn pagemap_names_a_process() {
    let mut image = sample_image();
    image.pagemaps[0].pid = 4242;
    let e = invalid(&image);
    assert_eq!(e, InvalidImage::PageMapWithoutProcess { pid: 4242 });
    assert_eq!(
        DecodeError::Invalid(e).to_string(),
        "core.img: a PageMap names pid 4242, which is not among the image's processes"
    );
    let mut image = sample_image();
    let m = image.pagemaps[0].clone();
    image.pagemaps.push(m);
    assert_eq!(invalid(&image), InvalidImage::DuplicatePageMap { pid: 100 });
}

#[test]
fn runs() {
    let edit = |f: &dyn Fn(&mut Vec<PageRun>)| {
        let mut image = sample_image();
        f(&mut image.pagemaps[0].runs);
        invalid(&image)
    };
    assert!(matches!(
        edit(&|r| r.swap(0, 1)),
        InvalidImage::RunOrder { .. }
    ));
    assert!(matches!(
        edit(&|r| r[1].vaddr = r[0].vaddr + PAGE_SIZE),
        InvalidImage::RunOrder { .. }
    ));
    assert!(matches!(
        edit(&|r| r[0].vaddr += 1),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[0].offset += 512),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[0].offset = 0),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[0].nr_pages = 0),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[1].nr_pages = 2),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[1].nr_pages = u64::MAX),
        InvalidImage::BadRun { .. }
    ));
    assert!(matches!(
        edit(&|r| r[1].vaddr = u64::MAX - 4095),
        InvalidImage::BadRun { .. }
    ));
}

#[test]
fn threads() {
    let mut image = sample_image();
    image.processes[1].threads.clear();
    assert_eq!(invalid(&image), InvalidImage::NoThreads { pid: 101 });
    let mut image = sample_image();
    image.processes[0].threads.swap(0, 1);
    assert_eq!(
        invalid(&image),
        InvalidImage::LeaderNotFirst { pid: 100, tid: 102 }
    );
    let mut image = sample_image();
    let t = image.processes[0].threads[1].clone();
    image.processes[1].threads.push(t);
    assert_eq!(
        invalid(&image),
        InvalidImage::DuplicateTid { pid: 101, tid: 102 }
    );
}

#[test]
fn pids() {
    let mut image = sample_image();
    image.processes[1].pid = 100;
    assert_eq!(invalid(&image), InvalidImage::DuplicatePid { pid: 100 });
    let mut image = sample_image();
    image.inventory.root_pid = 5;
    assert_eq!(invalid(&image), InvalidImage::RootNotAProcess { pid: 5 });
}

#[test]
fn vmas() {
    let edit = |f: &dyn Fn(&mut Vec<Vma>)| {
        let mut image = sample_image();
        f(&mut image.processes[0].vmas);
        invalid(&image)
    };
    assert!(matches!(
        edit(&|v| v.swap(0, 1)),
        InvalidImage::VmaOrder { .. }
    ));
    assert!(matches!(
        edit(&|v| v[1].start = 0x40_1000),
        InvalidImage::VmaOrder { .. }
    ));
    assert!(matches!(
        edit(&|v| v[0].end = v[0].start),
        InvalidImage::BadVma { .. }
    ));
    assert!(matches!(
        edit(&|v| v[0].end += 1),
        InvalidImage::BadVma { .. }
    ));
    assert!(matches!(
        edit(&|v| v[2].start -= 8),
        InvalidImage::BadVma { .. }
    ));
}

#[test]
fn fds_and_pipes() {
    let mut image = sample_image();
    image.processes[0].fds[1].fd = 0;
    assert_eq!(invalid(&image), InvalidImage::BadFd { pid: 100, fd: 0 });
    let mut image = sample_image();
    image.processes[0].fds[0].fd = -1;
    assert_eq!(invalid(&image), InvalidImage::BadFd { pid: 100, fd: -1 });
    let mut image = sample_image();
    image.pipes.clear();
    assert_eq!(
        invalid(&image),
        InvalidImage::MissingPipe {
            pid: 100,
            fd: 3,
            ino: 777
        }
    );
    let mut image = sample_image();
    let p = image.pipes[0].clone();
    image.pipes.push(p);
    assert_eq!(invalid(&image), InvalidImage::DuplicatePipe { ino: 777 });
}

#[test]
fn fd_state() {
    use stasis_image::{FdKind, IoUringState, MqueueState};
    let mut image = sample_image();
    let fd = &mut image.processes[0].fds[0];
    fd.kind = FdKind::IoUring as i32;
    fd.io_uring = Some(IoUringState {
        sq_entries: 0,
        cq_entries: 8,
        ..Default::default()
    });
    assert!(matches!(invalid(&image), InvalidImage::BadFdState { .. }));
    image.processes[0].fds[0].io_uring = Some(IoUringState {
        sq_entries: 4,
        cq_entries: 8,
        files: vec![1],
        ..Default::default()
    });
    assert!(matches!(invalid(&image), InvalidImage::BadFdState { .. }));
    let fd = &mut image.processes[0].fds[0];
    fd.kind = FdKind::Mqueue as i32;
    fd.mqueue = Some(MqueueState {
        name: "/q".into(),
        maxmsg: 0,
        msgsize: 8,
        ..Default::default()
    });
    assert!(matches!(invalid(&image), InvalidImage::BadFdState { .. }));
}

#[test]
fn inet_state() {
    use stasis_image::{FdKind, InetAddr, InetSocket, SockOpt};
    let mut image = sample_image();
    let fd = &mut image.processes[0].fds[0];
    fd.kind = FdKind::InetSocket as i32;
    assert!(matches!(invalid(&image), InvalidImage::BadFdState { .. }));
    let good = InetSocket {
        family: libc::AF_INET,
        sock_type: libc::SOCK_STREAM,
        protocol: libc::IPPROTO_TCP,
        bound: true,
        local: Some(InetAddr {
            ip: vec![127, 0, 0, 1],
            port: 5000,
            scope_id: 0,
        }),
        ..Default::default()
    };
    image.processes[0].fds[0].inet = Some(good.clone());
    stasis_image::validate(&image).expect("a valid inet socket");
    let bad = [
        InetSocket {
            family: 99,
            ..good.clone()
        },
        InetSocket {
            family: libc::AF_INET6,
            ..good.clone()
        },
        InetSocket {
            local: Some(InetAddr {
                ip: vec![127, 0, 0, 1],
                port: 70000,
                scope_id: 0,
            }),
            ..good.clone()
        },
        InetSocket {
            queue: vec![stasis_image::InetDatagram {
                data: b"x".to_vec(),
                from: Some(InetAddr {
                    ip: vec![0; 16],
                    port: 1,
                    scope_id: 0,
                }),
            }],
            ..good.clone()
        },
        InetSocket {
            options: vec![SockOpt {
                level: 1,
                name: 2,
                value: vec![0; 65],
            }],
            ..good
        },
    ];
    for b in bad {
        image.processes[0].fds[0].inet = Some(b.clone());
        assert!(
            matches!(invalid(&image), InvalidImage::BadFdState { .. }),
            "{b:?} should be refused"
        );
    }
}

#[test]
fn tree_links() {
    // A process whose parent is not in the image.
    let mut image = sample_image();
    image.processes[1].ppid = 4242;
    assert_eq!(
        invalid(&image),
        InvalidImage::ParentNotInImage {
            pid: 101,
            ppid: 4242
        }
    );
    // The root cannot be a zombie.
    let mut image = sample_image();
    image.processes[0].zombie = true;
    assert_eq!(invalid(&image), InvalidImage::ZombieRoot { pid: 100 });
    // A zombie needs no threads or memory.
    let image = sample_image();
    assert!(image.processes[2].zombie && image.processes[2].threads.is_empty());
    validate(&image).unwrap();
}

#[test]
fn shared_memory_objects() {
    // A VMA naming an object the image does not hold.
    let mut image = sample_image();
    image.processes[1].vmas[1].shmem_id = 10;
    assert!(matches!(
        invalid(&image),
        InvalidImage::MissingShmem {
            pid: 101,
            id: 10,
            ..
        }
    ));
    // A VMA reaching past the object's end.
    let mut image = sample_image();
    image.processes[1].vmas[1].pgoff = PAGE_SIZE;
    assert!(matches!(
        invalid(&image),
        InvalidImage::MissingShmem {
            pid: 101,
            id: 9,
            ..
        }
    ));
    // An object's page map with a pid, or twice.
    let mut image = sample_image();
    image.pagemaps[1].pid = 100;
    assert!(matches!(
        invalid(&image),
        InvalidImage::BadShmemPageMap { id: 9, .. }
    ));
    let mut image = sample_image();
    let m = image.pagemaps[1].clone();
    image.pagemaps.push(m);
    assert!(matches!(
        invalid(&image),
        InvalidImage::BadShmemPageMap { id: 9, .. }
    ));
    // A run past the object's size.
    let mut image = sample_image();
    image.pagemaps[1].runs[0].vaddr = 2 * PAGE_SIZE;
    assert!(matches!(
        invalid(&image),
        InvalidImage::BadShmemPageMap { id: 9, .. }
    ));
}
