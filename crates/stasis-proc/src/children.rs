//! `/proc/PID/task/TID/children`: pids of the thread's children.
//!
//! Format (`children_seq_show` in `fs/proc/array.c`): each child pid
//! followed by one space, e.g. `"3601 3602 "`, no newline. Only children
//! created by *this* thread are listed, so a full process tree needs the
//! union over all tasks.

use crate::error::dec_u32;

/// Parses a `children` file into pids, in printed order.
///
/// Tokens that are not decimal pids are skipped (the kernel never prints
/// any).
pub fn parse_children(text: &str) -> Vec<u32> {
    text.split_ascii_whitespace().filter_map(dec_u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_children("3601 3602 "), [3601, 3602]);
        assert_eq!(parse_children("12\n"), [12]);
        assert!(parse_children("").is_empty());
        assert_eq!(parse_children("1 x -2 3"), [1, 3]);
    }
}
