//! Command-line arguments of the dom0 subcommands.

use argh::FromArgs;

/// list domains and what their guests report.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListArgs {}

/// everything one guest publishes.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ShowArgs {
    /// domid or name.
    #[argh(positional)]
    pub domain: String,
}

/// wait until a guest reports something.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "wait")]
pub struct WaitArgs {
    /// domid or name.
    #[argh(positional)]
    pub domain: String,
}
