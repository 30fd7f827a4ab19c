//! Memory tracking: userfaultfd, PAGEMAP_SCAN, the uffd-wp dirty tracking
//! built on both, and soft-dirty.

use std::fs;

use stasis_sys::probe;

use super::{failed, page_list};

pub(super) fn userfaultfd() -> Result<(bool, String), String> {
    let info = probe::uffd_features().map_err(|e| failed(&e))?;
    let names = probe::uffd_feature_names(info.features);
    let has = |bit: u64| {
        if info.features & bit != 0 {
            "present"
        } else {
            "missing"
        }
    };
    let unknown = info.features & !probe::UFFD_FEATURES.iter().fold(0, |m, (b, _)| m | b);
    let mut detail = format!(
        "userfaultfd with {} feature bits (WP_ASYNC {}, WP_UNPOPULATED {}): {}",
        info.features.count_ones(),
        has(probe::UFFD_FEATURE_WP_ASYNC),
        has(probe::UFFD_FEATURE_WP_UNPOPULATED),
        names.join(" ")
    );
    if unknown != 0 {
        detail.push_str(&format!(" and unnamed bits {unknown:#x}"));
    }
    Ok((true, detail))
}

pub(super) fn pagemap_scan() -> Result<(bool, String), String> {
    let pages = probe::pagemap_scan_present().map_err(|e| failed(&e))?;
    if pages == [0, 2, 3] {
        Ok((
            true,
            "the PAGEMAP_SCAN ioctl on /proc/self/pagemap found exactly the pages \
             we wrote (0, 2, 3 of 8)"
                .to_string(),
        ))
    } else {
        Ok((
            false,
            format!(
                "PAGEMAP_SCAN answered, but reported pages {} present where we wrote [0, 2, 3]",
                page_list(&pages)
            ),
        ))
    }
}

pub(super) fn dirty_tracking() -> Result<(bool, String), String> {
    match probe::uffd_wp_dirty_tracking() {
        Ok(pages) if pages == [2, 7] => Ok((
            true,
            "uffd write-protect (WP_ASYNC) + PAGEMAP_SCAN with PM_SCAN_WP_MATCHING: \
             after protecting 8 pages, exactly the two written since (2, 7) came back: \
             pre-dump can copy only what changed"
                .to_string(),
        )),
        Ok(pages) => Ok((
            false,
            format!(
                "uffd-wp + PAGEMAP_SCAN answered, but reported pages {} written where \
                 we wrote [2, 7]: pre-dumps would copy everything",
                page_list(&pages)
            ),
        )),
        Err(e) => Ok((
            false,
            format!("{}: pre-dumps would copy everything each time", failed(&e)),
        )),
    }
}

pub(super) fn soft_dirty() -> Result<(bool, String), String> {
    let smaps = fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("cannot read /proc/self/smaps: {e}"))?;
    let sd = smaps
        .lines()
        .filter_map(|l| l.strip_prefix("VmFlags:"))
        .any(|flags| flags.split_whitespace().any(|f| f == "sd"));
    if sd {
        Ok((
            true,
            "\"sd\" appears in /proc/self/smaps VmFlags; stasis still tracks dirty \
             pages with uffd-wp + PAGEMAP_SCAN"
                .to_string(),
        ))
    } else {
        Ok((
            false,
            "no \"sd\" in /proc/self/smaps VmFlags: the kernel was built without \
             CONFIG_MEM_SOFT_DIRTY; not needed: stasis tracks dirty pages with uffd-wp + PAGEMAP_SCAN instead"
                .to_string(),
        ))
    }
}
