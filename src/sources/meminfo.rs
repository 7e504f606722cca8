//! `/proc/meminfo`: total and available memory in KiB.
//!
//! Read on every memory timer tick, so the reader keeps its buffer and parsing allocates
//! nothing.

use std::path::{Path, PathBuf};

use super::{read_attr, rooted};
use crate::model::MemInfo;

crate::error_enum::error_enum! {
    /// A /proc/meminfo that could not be used.
    #[derive(Debug)]
    pub enum MeminfoError {
        /// cannot read /proc/meminfo: {0}
        Io(std::io::Error),
        /// /proc/meminfo has no MemTotal line
        NoTotal,
    }
}

/// Parses the lines the agent needs; unknown and malformed lines are skipped.
pub fn parse(text: &[u8]) -> Result<MemInfo, MeminfoError> {
    let mut info = MemInfo::default();
    let mut have_total = false;
    for line in text.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        let slot = match key {
            b"MemTotal" => {
                have_total = true;
                &mut info.total_kb
            }
            b"MemAvailable" => info.available_kb.insert(0),
            b"MemFree" => info.free_kb.insert(0),
            _ => continue,
        };
        *slot = parse_kb(rest).unwrap_or(0);
    }
    if have_total {
        Ok(info)
    } else {
        Err(MeminfoError::NoTotal)
    }
}

/// `"   123456 kB"` -> 123456; saturates instead of overflowing.
fn parse_kb(field: &[u8]) -> Option<u64> {
    let digits = field.iter().skip_while(|c| c.is_ascii_whitespace());
    let mut v: u64 = 0;
    let mut any = false;
    for &c in digits.take_while(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
        any = true;
    }
    any.then_some(v)
}

/// Re-reads /proc/meminfo into one reused buffer.
pub struct MeminfoReader {
    path: PathBuf,
    buf: Vec<u8>,
}

const MEMINFO_MAX: usize = 4096;

impl MeminfoReader {
    pub fn new(root: &Path) -> MeminfoReader {
        MeminfoReader {
            path: rooted(root, "/proc/meminfo"),
            buf: Vec::with_capacity(MEMINFO_MAX),
        }
    }

    pub fn read(&mut self) -> Result<MemInfo, MeminfoError> {
        // /proc/meminfo is one seq_file record of about 1.5 KiB, produced whole on the first
        // read; the keys read here are its first lines.
        read_attr(&self.path, &mut self.buf, MEMINFO_MAX).map_err(MeminfoError::Io)?;
        parse(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_linux_meminfo() {
        let m = parse(
            b"MemTotal:        8021396 kB\nMemFree:          512000 kB\nMemAvailable:    4000000 kB\nBuffers: 1 kB\n",
        )
        .unwrap();
        assert_eq!(m.total_kb, 8021396);
        assert_eq!(m.free_for_toolstack(), 4000000);
    }

    #[test]
    fn old_kernel_without_memavailable_uses_memfree() {
        let m = parse(b"MemTotal: 100 kB\nMemFree: 42 kB\n").unwrap();
        assert_eq!(m.available_kb, None);
        assert_eq!(m.free_for_toolstack(), 42);
    }

    #[test]
    fn missing_total_is_an_error() {
        assert!(matches!(
            parse(b"MemFree: 1 kB\n"),
            Err(MeminfoError::NoTotal)
        ));
        assert!(matches!(parse(b""), Err(MeminfoError::NoTotal)));
    }

    #[test]
    fn garbage_does_not_panic() {
        let m = parse(b"MemTotal: 99999999999999999999999999 kB\nMemAvailable:\n\xff\xfe:\n:::\n")
            .unwrap();
        assert_eq!(m.total_kb, u64::MAX);
        assert_eq!(m.available_kb, Some(0));
    }

    #[test]
    fn reader_reads_real_proc() {
        let m = MeminfoReader::new(Path::new("/")).read().unwrap();
        assert!(m.total_kb > 0);
        assert!(m.free_for_toolstack() <= m.total_kb);
    }
}
