//! Sizes as people read them (decimal units, like file managers and disk tools show them):
//! the one formatter, for messages and pages.

/// A byte count of any integer type (templates pass references).
pub trait ByteCount {
    /// As a float, for display.
    fn bytes(&self) -> f64;
}
impl ByteCount for i64 {
    fn bytes(&self) -> f64 {
        (*self).max(0) as f64
    }
}
impl ByteCount for u64 {
    fn bytes(&self) -> f64 {
        *self as f64
    }
}
impl<T: ByteCount> ByteCount for &T {
    fn bytes(&self) -> f64 {
        (*self).bytes()
    }
}

/// Human size: 1.2 MB.
pub fn human_bytes(n: impl ByteCount) -> String {
    let n = n.bytes();
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n} bytes"),
    }
}
