//! Unsigned integers in decimal, formatted on the stack: the key renderer writes numbers into
//! values and the xenbus wire a domid into GET_DOMAIN_PATH, both without a heap string.

/// Room for any `u64` in decimal.
pub const U64_DIGITS: usize = 20;

/// `value` in decimal, formatted into `buf`.
pub fn format_u64(mut value: u64, buf: &mut [u8; U64_DIGITS]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    core::str::from_utf8(&buf[at..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_u64() {
        let mut b = [0u8; U64_DIGITS];
        assert_eq!(format_u64(0, &mut b), "0");
        assert_eq!(format_u64(7, &mut b), "7");
        assert_eq!(format_u64(1234567, &mut b), "1234567");
        assert_eq!(format_u64(u64::from(u32::MAX), &mut b), "4294967295");
        assert_eq!(format_u64(u64::MAX, &mut b), "18446744073709551615");
    }
}
