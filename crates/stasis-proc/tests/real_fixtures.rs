//! Parses `/proc` text captured from a real process (see `fixtures/README.md`)
//! and checks concrete values.

use stasis_proc::*;

const PID: u32 = 3598;
const WORKER: u32 = 3600;
const CHILD: u32 = 3601;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

#[test]
fn maps() {
    let v = parse_maps(fixture!("maps.txt")).unwrap();
    assert_eq!(v.len(), 32);

    let exe = &v[0];
    assert_eq!((exe.start, exe.end), (0x55691f9d7000, 0x55691f9d9000));
    assert!(exe.read && !exe.write && !exe.exec && !exe.shared);
    assert_eq!(
        (exe.dev_major, exe.dev_minor, exe.inode),
        (0xfe, 0, 10010654)
    );
    assert_eq!(exe.path, "/tmp/stasis_capture");
    assert_eq!(v[1].offset, 0x2000);
    assert!(v[1].exec);

    assert_eq!(v[5].kind(), MapKind::Heap);
    assert_eq!(v[6].path, "");
    assert_eq!(v[6].perms(), "---p");

    let anon = v.iter().find(|e| e.start == 0x7fe862b71000).unwrap();
    assert_eq!(anon.kind(), MapKind::Anonymous);
    assert_eq!(anon.len(), 11 * 4096);

    let memfd = v.iter().find(|e| e.is_memfd()).unwrap();
    assert_eq!(memfd.path, "/memfd:stasis memfd (deleted)");
    assert!(memfd.shared && memfd.is_deleted());
    assert_eq!(memfd.file_path(), Some("/memfd:stasis memfd"));
    assert_eq!((memfd.dev_major, memfd.dev_minor, memfd.inode), (0, 1, 26));

    let shm = v.iter().find(|e| e.start == 0x7fe862d61000).unwrap();
    assert!(shm.is_shared_anon());
    assert_eq!(shm.file_path(), Some("/dev/zero"));

    let del = v.iter().find(|e| e.start == 0x7fe862d63000).unwrap();
    assert_eq!(del.path, "/tmp/stasis fix dir/my file.bin (deleted)");
    assert!(del.is_deleted());
    assert_eq!(del.file_path(), Some("/tmp/stasis fix dir/my file.bin"));
    assert_eq!(del.offset, 0x1000);
    assert!(del.read && del.write && !del.exec && del.shared);
    assert_eq!(del.inode, 10010650);

    let kinds: Vec<_> = v.iter().map(|e| e.kind()).collect();
    for k in [
        MapKind::Vvar,
        MapKind::VvarVclock,
        MapKind::Vdso,
        MapKind::Stack,
    ] {
        assert!(kinds.contains(&k), "{k:?}");
    }
    let vclock = v.iter().find(|e| e.kind() == MapKind::VvarVclock).unwrap();
    assert_eq!((vclock.start, vclock.end), (0x7fe862d6d000, 0x7fe862d6f000));
    assert!(vclock.file_path().is_none() && !vclock.is_deleted());

    let last = v.last().unwrap();
    assert_eq!(last.kind(), MapKind::Vsyscall);
    assert_eq!(last.start, 0xffffffffff600000);
    assert_eq!(last.perms(), "--xp");
}

#[test]
fn smaps_matches_maps() {
    let s = parse_smaps(fixture!("smaps.txt")).unwrap();
    assert_eq!(s.len(), 24);
    let maps = parse_maps(fixture!("maps.txt")).unwrap();
    for e in &s {
        assert!(maps.contains(&e.map), "{:?}", e.map);
        assert_eq!(e.size_kb * 1024, e.map.len());
        assert_eq!(e.kernel_page_size_kb, 4);
        assert_eq!(e.thp_eligible, Some(false));
        assert!(!e.vm_flags.is_empty());
    }

    let guard = s.iter().find(|e| e.map.start == 0x7fe862b71000).unwrap();
    assert_eq!(
        (guard.rss_kb, guard.anonymous_kb, guard.swap_kb),
        (12, 12, 0)
    );
    assert_eq!(
        (guard.pss_kb, guard.shared_dirty_kb, guard.private_dirty_kb),
        (10, 4, 8)
    );
    assert_eq!(guard.other("Pss_Dirty"), Some("10 kB"));
    assert!(guard.has_flag("gu") && guard.has_flag("ac") && !guard.has_flag("lo"));

    let locked = s.iter().find(|e| e.map.start == 0x7fe862d5f000).unwrap();
    assert!(locked.has_flag("lo"));
    assert_eq!(locked.locked_kb, 2);

    let del = s
        .iter()
        .find(|e| e.map.is_deleted() && e.map.inode == 10010650)
        .unwrap();
    assert_eq!(del.map.path, "/tmp/stasis fix dir/my file.bin (deleted)");
    assert_eq!((del.size_kb, del.rss_kb, del.anonymous_kb), (16, 4, 0));
    assert_eq!(
        del.flag_strs().collect::<Vec<_>>(),
        ["rd", "wr", "sh", "mr", "mw", "me", "ms"]
    );

    let vvar = s.iter().find(|e| e.map.path == "[vvar]").unwrap();
    assert!(vvar.has_flag("pf") && vvar.has_flag("io") && vvar.has_flag("dd"));
    assert_eq!(vvar.rss_kb, 0);

    let stack = s.iter().find(|e| e.map.path == "[stack]").unwrap();
    assert_eq!(
        (stack.size_kb, stack.rss_kb, stack.anonymous_kb),
        (132, 32, 32)
    );
    assert!(stack.has_flag("gd"));
    assert_eq!(stack.protection_key, None);
}

#[test]
fn status() {
    let s = parse_status(fixture!("status.txt")).unwrap();
    assert_eq!(s.name, "evil) R 1 (x");
    assert_eq!(s.umask, Some(0o027));
    assert_eq!(s.state, 'R');
    assert_eq!((s.tgid, s.pid, s.ppid, s.tracer_pid), (PID, PID, 3589, 0));
    assert_eq!((s.uid, s.gid), ([0; 4], [0; 4]));
    assert_eq!(s.fd_size, 256);
    assert!(s.groups.is_empty());
    assert_eq!(
        (s.ns_tgid.as_slice(), s.ns_pid.as_slice()),
        (&[PID][..], &[PID][..])
    );
    assert_eq!(
        (s.ns_pgid.as_slice(), s.ns_sid.as_slice()),
        (&[3589][..], &[3141][..])
    );
    assert_eq!(s.kthread, Some(false));
    assert_eq!(s.threads, 3);
    assert_eq!(s.sig_q, (4, 96365));
    assert_eq!((s.sig_pnd, s.shd_pnd), (0, 0));
    // SIGUSR1 (10) and SIGRTMIN+2 (36) blocked; SIGUSR2 (12) ignored.
    assert_eq!(s.sig_blk, (1 << 9) | (1 << 35));
    assert_eq!(s.sig_ign, 1 << 11);
    assert_eq!(s.sig_cgt, 0x0000000100000000);
    assert_eq!(s.cap_inh, 0);
    assert_eq!(
        (s.cap_prm, s.cap_eff, s.cap_bnd),
        (0x1fffeffffff, 0x1fffeffffff, 0x1fffeffffff)
    );
    assert_eq!(s.cap_amb, 0);
    assert!(!s.no_new_privs && !s.core_dumping);
    assert_eq!((s.seccomp, s.seccomp_filters), (0, 0));
    assert_eq!(s.x86_thread_features, "");
    assert_eq!(s.cpus_allowed_list, "0-1");
    assert_eq!(s.vm_rss_kb, Some(1632));
    assert_eq!(s.get("Speculation_Store_Bypass"), Some("vulnerable"));
    assert_eq!(s.get("untag_mask"), Some("0xffffffffffffffff"));

    let t = parse_status(fixture!("task_status.txt")).unwrap();
    assert_eq!(t.name, "worker (2)");
    assert_eq!((t.state, t.tgid, t.pid), ('S', PID, WORKER));
    assert_eq!(t.ns_pid, [WORKER]);
    assert_eq!(t.sig_blk, s.sig_blk);
}

#[test]
fn stat() {
    let s = parse_stat(fixture!("stat.txt")).unwrap();
    assert_eq!(s.pid, PID);
    assert_eq!(s.comm, "evil) R 1 (x");
    assert_eq!(s.state, 'R');
    assert_eq!((s.ppid, s.pgrp, s.session), (3589, 3589, 3141));
    assert_eq!((s.tty_nr, s.tpgid, s.flags), (0, -1, 4194304));
    assert_eq!((s.minflt, s.majflt), (106, 1));
    assert_eq!((s.priority, s.nice, s.num_threads), (20, 0, 3));
    assert_eq!((s.start_time, s.vsize, s.rss), (60751, 11034624, 387));
    assert_eq!(s.rsslim, u64::MAX);
    assert_eq!((s.start_code, s.end_code), (93909990346752, 93909990351517));
    assert_eq!(s.start_stack, 140734757073088);
    assert_eq!((s.exit_signal, s.processor), (17, 0));
    assert_eq!((s.rt_priority, s.policy), (0, 0));
    assert_eq!((s.start_data, s.end_data), (93909990362576, 93909990363568));
    assert_eq!(s.start_brk, 93910086864896);
    assert_eq!(s.start_brk, 0x5569255e5000, "start_brk is the [heap] start");
    assert_eq!((s.arg_start, s.arg_end), (140734757075427, 140734757075447));
    assert_eq!((s.env_start, s.env_end), (140734757075447, 140734757076964));
    assert_eq!(s.exit_code, 0);

    let t = parse_stat(fixture!("task_stat.txt")).unwrap();
    assert_eq!(
        (t.pid, t.comm.as_str(), t.state),
        (WORKER, "worker (2)", 'S')
    );
    assert_eq!((t.exit_signal, t.processor), (-1, 1));
    assert_eq!(t.flags, 4194368);
}

#[test]
fn limits() {
    let l = parse_limits(fixture!("limits.txt")).unwrap();
    assert_eq!(l.len(), 16);
    for (i, lim) in l.iter().enumerate() {
        assert_eq!(lim.resource, i as u32);
    }
    let get = |r: u32| {
        l.iter()
            .find(|x| x.resource == r)
            .map(|x| (x.soft, x.hard))
            .unwrap()
    };
    let inf = RLIM_INFINITY;
    assert_eq!(get(0), (inf, inf));
    assert_eq!(get(3), (8388608, inf));
    assert_eq!(get(4), (0, inf));
    assert_eq!(get(6), (96365, 96365));
    assert_eq!(get(7), (20000, 20000));
    assert_eq!(get(8), (8388608, 8388608));
    assert_eq!(get(12), (819200, 819200));
    assert_eq!(get(13), (0, 0));
    assert_eq!(get(14), (0, 0));
    assert_eq!(get(15), (inf, inf));
}

#[test]
fn fdinfo_plain_file() {
    let f = parse_fdinfo(fixture!("fdinfo_file.txt")).unwrap();
    assert_eq!(f.pos, 3);
    assert_eq!(f.flags, 0o102000); // O_LARGEFILE | O_APPEND
    assert_eq!((f.mnt_id, f.ino), (27, 611));
    assert_eq!(f.lines.len(), 4);
    assert_eq!(f.lines[1], ("flags".to_string(), "0102000".to_string()));
}

#[test]
fn fdinfo_memfd() {
    let f = parse_fdinfo(fixture!("fdinfo_memfd.txt")).unwrap();
    assert_eq!((f.pos, f.flags, f.mnt_id, f.ino), (0, 0o100002, 0, 26));
}

#[test]
fn fdinfo_eventfd() {
    let f = parse_fdinfo(fixture!("fdinfo_eventfd.txt")).unwrap();
    assert_eq!(f.flags, 0o2004002); // O_CLOEXEC | O_NONBLOCK | O_RDWR
    assert_eq!(f.ino, 1038);
    assert_eq!(
        f.eventfd,
        Some(EventfdInfo {
            count: 7,
            id: Some(1),
            semaphore: Some(false)
        })
    );
    assert_eq!(f.get("eventfd-count"), Some("7"));
    assert_eq!(f.lines.len(), 7);
}

#[test]
fn fdinfo_epoll() {
    let f = parse_fdinfo(fixture!("fdinfo_epoll.txt")).unwrap();
    assert_eq!(f.flags, 0o2);
    assert_eq!(
        f.epoll,
        [EpollTarget {
            tfd: 4,
            events: 0x80000019,
            data: 0x1234,
            pos: 0,
            ino: 0x40e,
            sdev: 0x10
        }]
    );
}

#[test]
fn fdinfo_inotify() {
    let f = parse_fdinfo(fixture!("fdinfo_inotify.txt")).unwrap();
    assert_eq!(f.flags, 0o4000);
    assert_eq!(
        f.inotify,
        [InotifyWatch {
            wd: 1,
            ino: 0x3c4a7,
            sdev: 0xfe00000,
            mask: 0x300, // IN_CREATE | IN_DELETE
            ignored_mask: 0,
            fhandle_type: Some(1),
            fhandle: vec![0xa7, 0xc4, 0x03, 0, 0, 0, 0, 0],
        }]
    );
    assert_eq!(f.get("inotify wd"), Some("1 ino:3c4a7 sdev:fe00000 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a7c4030000000000"));
}

#[test]
fn fdinfo_signalfd() {
    let f = parse_fdinfo(fixture!("fdinfo_signalfd.txt")).unwrap();
    assert_eq!(f.signalfd_sigmask, Some((1 << 9) | (1 << 35)));
}

#[test]
fn fdinfo_timerfd() {
    let f = parse_fdinfo(fixture!("fdinfo_timerfd.txt")).unwrap();
    assert_eq!(
        f.timerfd,
        Some(TimerfdInfo {
            clockid: 1,
            ticks: 0,
            settime_flags: 0,
            it_value: (3599, 898676941),
            it_interval: (5, 0),
        })
    );
    assert!(f.eventfd.is_none() && f.signalfd_sigmask.is_none());
}

#[test]
fn timers() {
    let v = parse_timers(fixture!("timers.txt")).unwrap();
    assert_eq!(v.len(), 4);
    // Newest first: glibc SIGEV_THREAD helper, SIGEV_THREAD_ID, SIGEV_NONE, SIGEV_SIGNAL.
    assert_eq!(
        v[0],
        PosixTimerInfo {
            id: 3,
            signo: 32,
            sigev_value: 0x00005569255e5460,
            notify: TimerNotify::Signal,
            notify_thread_id: true,
            notify_tid: 3599,
            clock_id: -6,
        }
    );
    assert_eq!(v[0].sigev_notify(), Some(4));
    assert_eq!((v[1].id, v[1].signo, v[1].sigev_value), (2, 10, 42));
    assert!(v[1].notify_thread_id);
    assert_eq!((v[1].notify_tid, v[1].clock_id), (PID, 7));
    assert_eq!(
        (v[2].id, v[2].signo, v[2].notify.clone()),
        (1, 0, TimerNotify::None)
    );
    assert_eq!(v[2].sigev_notify(), Some(1));
    assert!(!v[2].notify_thread_id);
    assert_eq!(
        v[3],
        PosixTimerInfo {
            id: 0,
            signo: 36,
            sigev_value: 0xdeadbeefcafe,
            notify: TimerNotify::Signal,
            notify_thread_id: false,
            notify_tid: PID,
            clock_id: 1,
        }
    );
    assert_eq!(v[3].sigev_notify(), Some(0));
}

#[test]
fn children() {
    assert_eq!(parse_children(fixture!("children.txt")), [CHILD]);
}

#[test]
fn pagemap() {
    let mut got = std::collections::HashMap::new();
    for line in fixture!("pagemap.txt").lines() {
        let f: Vec<&str> = line.split(' ').collect();
        got.insert(f[0], PagemapEntry(u64::from_str_radix(f[2], 16).unwrap()));
    }
    let p = got["anon_present"];
    assert!(p.present() && !p.swapped() && !p.file_or_shared() && !p.guard());
    assert!(!p.exclusive(), "fork() made it shared with the child");
    assert_eq!(p.pfn(), 0x135c87);

    assert_eq!(got["anon_untouched"], PagemapEntry(0));
    assert!(!got["anon_untouched"].present());

    let g = got["anon_guard"];
    assert!(g.guard() && g.swapped() && !g.present());
    assert_eq!((g.swap_type(), g.swap_offset()), (None, None));

    let f = got["file_shared"];
    assert!(f.present() && f.file_or_shared() && f.exclusive());
    assert_eq!(f.pfn(), 0x13fded);

    let s = got["shmem"];
    assert!(s.present() && s.file_or_shared() && s.exclusive());

    let l = got["locked"];
    assert!(l.present() && !l.file_or_shared() && !l.uffd_wp() && !l.soft_dirty());
    assert_eq!(l.pfn(), 0x10512e);
}

#[test]
fn auxv() {
    let a = parse_auxv(include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auxv.bin"
    )));
    assert_eq!(a.len(), 22);
    let get = |t: u64| a.iter().find(|(k, _)| *k == t).map(|(_, v)| *v);
    assert_eq!(
        get(auxv::AT_SYSINFO_EHDR),
        Some(0x7fe862d6f000),
        "the [vdso] start"
    );
    assert_eq!(get(auxv::AT_PAGESZ), Some(4096));
    assert_eq!(get(auxv::AT_CLKTCK), Some(100));
    assert_eq!(get(auxv::AT_PHDR), Some(0x55691f9d7040));
    assert_eq!(get(auxv::AT_PHNUM), Some(13));
    assert_eq!(get(auxv::AT_BASE), Some(0x7fe862d71000));
    assert_eq!(get(auxv::AT_ENTRY), Some(0x55691f9d9380));
    assert_eq!(get(auxv::AT_MINSIGSTKSZ), Some(0xd30));
    assert_eq!(get(auxv::AT_SECURE), Some(0));
    assert_eq!(a.last(), Some(&(28, 32)));
}

#[test]
fn malformed_real_text_is_an_error_not_a_panic() {
    let maps = fixture!("maps.txt").replacen("r-xp", "r?xp", 1);
    assert_eq!(parse_maps(&maps).unwrap_err().line(), Some(2));
    let smaps = fixture!("smaps.txt").replacen("Rss:                   8 kB", "Rss: eight kB", 1);
    assert!(parse_smaps(&smaps).is_err());
    let status = fixture!("status.txt").replacen("CapEff:\t000001fffeffffff", "CapEff:\tnope", 1);
    let e = parse_status(&status).unwrap_err();
    assert_eq!((e.file(), e.line()), ("/proc/PID/status", Some(46)));
    assert!(e.to_string().contains("line 46"));
    let stat = fixture!("stat.txt");
    assert!(parse_stat(&stat[..stat.len() / 2]).is_err());
    let timers = fixture!("timers.txt");
    assert!(parse_timers(&timers[..timers.len() - 12]).is_err());
    // Every prefix of every fixture parses or errors, never panics.
    for text in [
        fixture!("maps.txt"),
        fixture!("status.txt"),
        fixture!("stat.txt"),
        fixture!("limits.txt"),
        fixture!("timers.txt"),
        fixture!("fdinfo_timerfd.txt"),
        fixture!("fdinfo_inotify.txt"),
        fixture!("fdinfo_epoll.txt"),
    ] {
        for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            let t = &text[..cut];
            let _ = (
                parse_maps(t),
                parse_status(t),
                parse_stat(t),
                parse_limits(t),
            );
            let _ = (parse_timers(t), parse_fdinfo(t), parse_smaps(t));
        }
    }
}
