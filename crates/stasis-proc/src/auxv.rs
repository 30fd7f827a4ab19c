//! `/proc/PID/auxv`: the ELF auxiliary vector passed to the program.
//!
//! Binary: pairs of native-endian `unsigned long` (`a_type`, `a_val`),
//! terminated by an `AT_NULL` pair. On x86_64 both are 64-bit.

/// End of vector.
pub const AT_NULL: u64 = 0;
/// Program headers address.
pub const AT_PHDR: u64 = 3;
/// Size of a program header entry.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// System page size.
pub const AT_PAGESZ: u64 = 6;
/// Interpreter base address.
pub const AT_BASE: u64 = 7;
/// Program entry point.
pub const AT_ENTRY: u64 = 9;
/// Real uid.
pub const AT_UID: u64 = 11;
/// Clock ticks per second.
pub const AT_CLKTCK: u64 = 17;
/// CPU capability bits.
pub const AT_HWCAP: u64 = 16;
/// Secure mode (setuid etc.).
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU capability bits.
pub const AT_HWCAP2: u64 = 26;
/// Filename of the executed program.
pub const AT_EXECFN: u64 = 31;
/// vDSO ELF header address.
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal signal stack size.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Decodes `/proc/PID/auxv` into `(a_type, a_val)` pairs, stopping at (and
/// excluding) `AT_NULL`; a trailing partial pair is ignored.
pub fn parse_auxv(bytes: &[u8]) -> Vec<(u64, u64)> {
    let word = |c: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_ne_bytes(b)
    };
    bytes
        .chunks_exact(16)
        .map(|c| (word(&c[..8]), word(&c[8..])))
        .take_while(|&(t, _)| t != AT_NULL)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(u64, u64)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|&(a, b)| a.to_ne_bytes().into_iter().chain(b.to_ne_bytes()))
            .collect()
    }

    #[test]
    fn stops_at_null() {
        let b = raw(&[
            (AT_PAGESZ, 4096),
            (AT_ENTRY, 0x1000),
            (AT_NULL, 0),
            (AT_UID, 5),
        ]);
        assert_eq!(parse_auxv(&b), [(AT_PAGESZ, 4096), (AT_ENTRY, 0x1000)]);
    }

    #[test]
    fn truncated_and_empty() {
        assert!(parse_auxv(&[]).is_empty());
        let mut b = raw(&[(AT_PAGESZ, 4096)]);
        b.extend_from_slice(&[9, 0, 0]);
        assert_eq!(parse_auxv(&b), [(AT_PAGESZ, 4096)]);
    }
}
