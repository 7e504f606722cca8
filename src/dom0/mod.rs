//! The dom0 side: `xenbeacon list`, `show` and `wait` read what guests publish.
//! (Being written: issue 8.)

pub mod cli;
