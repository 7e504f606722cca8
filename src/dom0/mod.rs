//! The dom0 side: `xenbeacon list`, `show`, `wait` and `export` read what guests publish;
//! `set-ip` asks a guest for an address.
//!
//! Most Xen users run plain `xl`, whose `xl list` knows nothing of a guest's IPs, OS or boot
//! state; the guests publish all of that in XenStore. These commands read it back with the
//! project's own client, in the same static binary (no libxenstore in dom0 either):
//!
//! * [`reader`] reads each domain's keys (I/O; EACCES and vanishing domains handled there);
//! * [`tree`] holds what was read of one domain ([`tree::DomainTree`]);
//! * [`parse`] turns it into a [`report::GuestReport`] (pure, tested without fds), for
//!   xenbeacon's layout ([`crate::layout`]) and for other agents' XAPI-style keys;
//! * [`text`] and [`json`] print reports for people and for scripts, [`prometheus`] for
//!   node_exporter's textfile collector, [`ansible`] as an Ansible dynamic inventory;
//! * [`wait`](mod@wait) blocks on XenStore watches until a guest reports what was asked;
//! * [`export`] keeps a Prometheus textfile of every guest current, on XenStore watches;
//! * [`setip`] writes an address request as xenopsd does and waits for the guest's answer.
//!
//! Exit statuses: 0 done, 1 no such domain (`show`) or timed out (`wait`, `list`, `set-ip`), 2
//! bad command line, 3 XenStore unreachable or unreadable, 4 the guest refused (`set-ip`).

pub mod ansible;
pub mod cli;
pub mod export;
pub mod json;
pub mod parse;
pub mod prometheus;
pub mod reader;
pub mod report;
pub mod setip;
pub mod text;
pub mod tree;
pub mod wait;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use crate::xenbus::conn::Error;
use reader::{DomainSpec, Domains, ReadError, Reader};
use report::GuestReport;

const EXIT_NOT_FOUND: u8 = 1;
/// `list --timeout`: the same status as `wait`'s timeout.
const EXIT_TIMED_OUT: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_XENSTORE: u8 = 3;
const EXIT_GUEST_REFUSED: u8 = 4;

/// Writes `s` to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn fail(cmd: &str, msg: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("xenbeacon {cmd}: {msg}");
    ExitCode::from(code)
}

/// `xenbeacon list [--format table|json|prometheus|ansible] [--timeout SECS]`.
pub fn list(args: &cli::ListArgs) -> ExitCode {
    let format = match args.format() {
        Ok(f) => f,
        Err(e) => return fail("list", e, EXIT_USAGE),
    };
    let deadline = args.timeout.map(|t| Instant::now() + t);
    // A deadline that passed is a timeout, whatever it interrupted (connect or a request).
    let read_failed = |e: ReadError| {
        let timed_out = match &e {
            ReadError::Open(_, Error::Open(io)) => io.kind() == std::io::ErrorKind::WouldBlock,
            ReadError::Request(_, Error::Timeout) => true,
            _ => false,
        };
        match args.timeout {
            Some(t) if timed_out => fail(
                "list",
                format!("timed out after {} s: {e}", text::secs(t)),
                EXIT_TIMED_OUT,
            ),
            _ => fail("list", e, EXIT_XENSTORE),
        }
    };
    let mut reader = match Reader::open_until(args.xenstore.as_deref(), deadline) {
        Ok(r) => r,
        Err(e) => return read_failed(e),
    };
    let ids = match reader.domains() {
        Ok(Domains::All(ids)) => ids,
        Ok(Domains::OnlyOwn(d)) => {
            eprintln!(
                "xenbeacon list: no access to /local/domain (not dom0?); showing this domain ({d}) only"
            );
            vec![d]
        }
        Err(e) => return read_failed(e),
    };
    // One domain at a time: read, parse, print (JSON, Ansible) or keep what is printed of it
    // (its cut table cells, its capped series), drop.
    let mut tables = text::ListTables::new();
    let mut series: Vec<prometheus::GuestSeries> = Vec::new();
    let mut inventory = ansible::Inventory::new(args.host.as_deref());
    let mut out = std::io::stdout().lock();
    let mut first = true;
    let mut s = String::new();
    match format {
        cli::ListFormat::Json => s.push_str(r#"{"domains":["#),
        cli::ListFormat::Ansible => inventory.begin(&mut s),
        cli::ListFormat::Table | cli::ListFormat::Prometheus => {}
    }
    for d in ids {
        let r = match reader.read_domain(d) {
            Ok(Some(tree)) => GuestReport::parse(&tree),
            Ok(None) => continue, // destroyed since the listing
            Err(e) => {
                let _ = out.write_all(s.as_bytes());
                let _ = out.flush();
                return read_failed(e);
            }
        };
        match format {
            cli::ListFormat::Json => {
                if !std::mem::take(&mut first) {
                    s.push(',');
                }
                json::report(&mut s, &r);
            }
            cli::ListFormat::Ansible => inventory.add(&mut s, &r),
            cli::ListFormat::Table => tables.add(&r),
            cli::ListFormat::Prometheus => {
                let g = prometheus::guest(&r);
                if g.dropped > 0 {
                    eprintln!("xenbeacon list: {}", prometheus::dropped_note(&g));
                }
                series.push(g);
            }
        }
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = out.write_all(s.as_bytes());
        s.clear();
    }
    match format {
        cli::ListFormat::Json => s.push_str("]}\n"),
        cli::ListFormat::Ansible => {
            for why in &inventory.skipped {
                eprintln!("xenbeacon list: {why}");
            }
            inventory.finish(&mut s);
        }
        cli::ListFormat::Table => s = tables.render(),
        cli::ListFormat::Prometheus => prometheus::write(&mut s, series.iter()),
    }
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// `xenbeacon show DOMAIN`.
pub fn show(args: &cli::ShowArgs) -> ExitCode {
    let spec = DomainSpec::parse(&args.domain);
    let mut reader = match Reader::open(args.xenstore.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail("show", e, EXIT_XENSTORE),
    };
    let tree = match reader
        .resolve(&spec)
        .and_then(|d| d.map_or(Ok(None), |d| reader.read_domain(d)))
    {
        Ok(Some(t)) => t,
        Ok(None) => return fail("show", format!("no {spec}"), EXIT_NOT_FOUND),
        Err(e) => return fail("show", e, EXIT_XENSTORE),
    };
    let r = GuestReport::parse(&tree);
    if args.json {
        let mut out = String::new();
        json::report(&mut out, &r);
        out.push('\n');
        emit(&out);
    } else {
        emit(&text::show(&r));
    }
    if r.fully_denied() {
        return fail(
            "show",
            format!("no access to /local/domain/{} (not dom0?)", r.domid),
            EXIT_XENSTORE,
        );
    }
    ExitCode::SUCCESS
}

/// `xenbeacon wait DOMAIN [--booted] [--ip] [--nic MAC] [--timeout SECS]`.
pub fn wait(args: &cli::WaitArgs) -> ExitCode {
    let nic = match args.nic.as_deref().map(wait::parse_nic).transpose() {
        Ok(n) => n,
        Err(e) => return fail("wait", e, EXIT_USAGE),
    };
    let cond = wait::Conditions {
        booted: args.booted,
        ip: args.ip,
        nic,
    };
    let spec = DomainSpec::parse(&args.domain);
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let timed_out = |why: Option<&str>| {
        let secs = text::secs(args.timeout.unwrap_or_default());
        let why = why.map_or_else(String::new, |w| format!(" ({w})"));
        let msg = format!(
            "timed out after {secs} s: {spec} has not reported {}{why}",
            cond.describe()
        );
        fail("wait", msg, EXIT_NOT_FOUND)
    };
    let mut reader = match Reader::open_until(args.xenstore.as_deref(), deadline) {
        Ok(r) => r,
        Err(ReadError::Open(_, Error::Open(e)))
            if e.kind() == std::io::ErrorKind::WouldBlock && deadline.is_some() =>
        {
            return timed_out(Some("xenstored accepted no connection"));
        }
        Err(e) => return fail("wait", e, EXIT_XENSTORE),
    };
    match wait::wait(&mut reader, &spec, &cond, deadline) {
        Ok(out) => {
            emit(&format!("{}\n", text::clean(&out)));
            ExitCode::SUCCESS
        }
        Err(wait::WaitError::Timeout(why)) => timed_out(why),
        Err(e @ wait::WaitError::BadMac(_)) => fail("wait", e, EXIT_USAGE),
        Err(e) => fail("wait", e, EXIT_XENSTORE),
    }
}

/// `xenbeacon set-ip DOMAIN --vif N ...`.
pub fn set_ip(args: &cli::SetIpArgs) -> ExitCode {
    let change = match setip::Change::from_args(
        args.ipv4.as_deref(),
        args.gateway.as_deref(),
        args.dhcp,
        args.ipv6.as_deref(),
        args.gateway6.as_deref(),
        args.autoconf6,
        args.unset,
    ) {
        Ok(c) => c,
        Err(e) => return fail("set-ip", e, EXIT_USAGE),
    };
    let timeout = args.timeout.unwrap_or(std::time::Duration::from_secs(30));
    let deadline = Instant::now() + timeout;
    let spec = DomainSpec::parse(&args.domain);
    let mut reader = match Reader::open_until(args.xenstore.as_deref(), Some(deadline)) {
        Ok(r) => r,
        Err(e) => return fail("set-ip", e, EXIT_XENSTORE),
    };
    let domid = match reader.resolve(&spec) {
        Ok(Some(d)) => d,
        Ok(None) => return fail("set-ip", format!("no {spec}"), EXIT_NOT_FOUND),
        Err(e) => return fail("set-ip", e, EXIT_XENSTORE),
    };
    if !args.no_wait && !setip::announced(&mut reader, domid) {
        eprintln!(
            "xenbeacon set-ip: warning: {spec} has not announced control/feature-static-ip-setting \
             (is its agent running with --apply-ip-settings?); writing anyway"
        );
    }
    match setip::set_ip(
        &mut reader,
        domid,
        args.vif,
        &change,
        !args.no_wait,
        Some(deadline),
    ) {
        Ok(()) if args.no_wait => {
            emit(&format!(
                "vif {}: written: {}\n",
                args.vif,
                change.describe()
            ));
            ExitCode::SUCCESS
        }
        Ok(()) => {
            emit(&format!(
                "vif {}: applied: {}\n",
                args.vif,
                change.describe()
            ));
            ExitCode::SUCCESS
        }
        Err(setip::SetIpError::Timeout) => {
            let secs = text::secs(timeout);
            let msg = format!("vif {}: the guest did not answer within {secs} s", args.vif);
            fail("set-ip", msg, EXIT_NOT_FOUND)
        }
        Err(e @ setip::SetIpError::NoVif(..)) => fail("set-ip", e, EXIT_NOT_FOUND),
        Err(setip::SetIpError::Guest { code, msg }) => {
            let msg = format!(
                "vif {}: the guest refused it (error-code {}): {}",
                args.vif,
                text::clean(code.trim()),
                text::clean(&msg)
            );
            fail("set-ip", msg, EXIT_GUEST_REFUSED)
        }
        Err(e) => fail("set-ip", e, EXIT_XENSTORE),
    }
}
