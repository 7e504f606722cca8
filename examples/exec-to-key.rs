//! Start-up benchmark for any guest agent, run inside the guest:
//! `exec-to-key [--settle MS] [--log FILE] -- AGENT [ARGS...]`.
//!
//! Watches the guest's `data/` and `attr/` subtrees over its own xenbus connection, then
//! spawns AGENT and reports when the first key under either appears ("first key") and when the
//! last one of the first burst was written, i.e. the last write before MS milliseconds
//! (default 2000) without any ("first complete publication"). The clock starts just before
//! `fork`, so the numbers include exec, the dynamic loader (for a dynamic agent) and the
//! agent's own start-up. The agent keeps running; its pid is printed so the caller can go on
//! measuring it. Output, one line on stdout:
//! `first_key_ms=F first_key=PATH complete_ms=C keys=N pid=P`.
//! Exit status 1 when no key appeared within 60 s.
//!
//! The watch fires for removals too, so only events whose path exists count. Clear the
//! subtrees before (the e2e `bench-xen` scenario does), or an agent that finds its keys
//! already right writes nothing.

use std::os::fd::AsRawFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use xenbeacon::xenbus::conn::{Endpoint, XenbusConn};

const GIVE_UP: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(sep) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: exec-to-key [--settle MS] [--log FILE] -- AGENT [ARGS...]");
        return ExitCode::from(2);
    };
    let (opts, agent) = (&args[..sep], &args[sep + 1..]);
    let mut settle = Duration::from_millis(2000);
    let mut log_file = None;
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match (o.as_str(), it.next()) {
            ("--settle", Some(v)) => match v.parse() {
                Ok(ms) => settle = Duration::from_millis(ms),
                Err(_) => return usage_error(&format!("bad --settle {v}")),
            },
            ("--log", Some(v)) => log_file = Some(v.clone()),
            _ => return usage_error(&format!("unknown option {o}")),
        }
    }
    if agent.is_empty() {
        return usage_error("no agent to run");
    }
    match run(agent, settle, log_file.as_deref()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("exec-to-key: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("exec-to-key: {msg}");
    ExitCode::from(2)
}

fn run(agent: &[String], settle: Duration, log_file: Option<&str>) -> Result<ExitCode, String> {
    let endpoint = Endpoint::chosen(None)
        .or_else(Endpoint::discover)
        .ok_or("no xenbus device")?;
    let mut xs = XenbusConn::open(&endpoint).map_err(|e| e.to_string())?;
    let home = format!(
        "/local/domain/{}",
        xs.read_domid().map_err(|e| e.to_string())?
    );
    let subtrees = [format!("{home}/data"), format!("{home}/attr")];
    for (i, path) in subtrees.iter().enumerate() {
        xs.watch(path, &format!("t{i}"))
            .map_err(|e| format!("watch {path}: {e}"))?;
    }
    // Each watch fires once on registration; take both before the clock starts.
    let mut registered = 0;
    while registered < subtrees.len() {
        if !wait_readable(&mut xs, Duration::from_secs(5))? {
            return Err("no registration event for the watches".into());
        }
        while xs.pending_event().is_some() {
            registered += 1;
        }
    }

    let out = match log_file {
        Some(f) => Stdio::from(std::fs::File::create(f).map_err(|e| format!("{f}: {e}"))?),
        None => Stdio::null(),
    };
    let err = match log_file {
        Some(f) => Stdio::from(
            std::fs::OpenOptions::new()
                .append(true)
                .open(f)
                .map_err(|e| format!("{f}: {e}"))?,
        ),
        None => Stdio::null(),
    };
    let t0 = Instant::now();
    let child = Command::new(&agent[0])
        .args(&agent[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", agent[0]))?;

    let mut first: Option<(Duration, String)> = None;
    let mut last = Duration::ZERO;
    let mut keys = 0u32;
    loop {
        let wait = match first {
            None => GIVE_UP.saturating_sub(t0.elapsed()),
            Some(_) => settle.saturating_sub(t0.elapsed() - last),
        };
        if wait.is_zero() || !wait_readable(&mut xs, wait)? {
            break;
        }
        while let Some(ev) = xs.pending_event() {
            let at = t0.elapsed();
            if subtrees.contains(&ev.path) || xs.read(&ev.path).is_err() {
                continue; // the subtree root itself, or a removal
            }
            keys += 1;
            last = at;
            first.get_or_insert((at, ev.path.clone()));
        }
    }
    let Some((first_at, first_path)) = first else {
        println!("first_key_ms=none pid={}", child.id());
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "first_key_ms={:.1} first_key={} complete_ms={:.1} keys={keys} pid={}",
        ms(first_at),
        first_path
            .strip_prefix(&format!("{home}/"))
            .unwrap_or(&first_path),
        ms(last),
        child.id()
    );
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// True when a watch event is ready within `timeout`.
fn wait_readable(xs: &mut XenbusConn, timeout: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if xs.has_pending_event() {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd: xs.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        } else if n > 0 {
            xs.receive().map_err(|e| format!("xenstore: {e}"))?;
        }
    }
}
