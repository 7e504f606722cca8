//! The dom0 side: `xenbeacon list`, `show` and `wait` read what guests publish.
//! (Being written: issue 8.)

pub mod cli;

use std::process::ExitCode;

pub fn list(_args: &cli::ListArgs) -> ExitCode {
    eprintln!("xenbeacon list: not implemented yet");
    ExitCode::from(2)
}

pub fn show(_args: &cli::ShowArgs) -> ExitCode {
    eprintln!("xenbeacon show: not implemented yet");
    ExitCode::from(2)
}

pub fn wait(_args: &cli::WaitArgs) -> ExitCode {
    eprintln!("xenbeacon wait: not implemented yet");
    ExitCode::from(2)
}
