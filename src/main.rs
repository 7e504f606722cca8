use std::process::ExitCode;
use std::time::Duration;

use xenbeacon::agent::{Agent, AgentConfig};
use xenbeacon::cli::{Args, BootedArgs, Command};
use xenbeacon::event_loop::{self, EndpointChoice};
use xenbeacon::layout::key;
use xenbeacon::model::BootStage;
use xenbeacon::nics::NicOptions;
use xenbeacon::sources::hypervisor;
use xenbeacon::xenbus::conn::{Endpoint, XenbusConn};

fn main() -> ExitCode {
    let args: Args = parse_args();
    if args.version {
        println!("xenbeacon {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(cmd) = &args.command {
        if let Some(p) = &args.xenstore {
            // `xenbeacon --xenstore P list`: the subcommands read it from the environment;
            // their own --xenstore still wins. Single-threaded here, before anything else runs.
            std::env::set_var("XENBEACON_XENSTORE", p);
        }
        return match cmd {
            Command::Booted(a) => booted(a),
            #[cfg(feature = "dom0")]
            Command::List(a) => xenbeacon::dom0::list(a),
            #[cfg(feature = "dom0")]
            Command::Show(a) => xenbeacon::dom0::show(a),
            #[cfg(feature = "dom0")]
            Command::Wait(a) => xenbeacon::dom0::wait(a),
            #[cfg(feature = "dom0")]
            Command::SetIp(a) => xenbeacon::dom0::set_ip(a),
            #[cfg(feature = "dom0")]
            Command::Export(a) => xenbeacon::dom0::export::run(a),
        };
    }
    let Ok(level) = args.log_level.parse::<log::LevelFilter>() else {
        eprintln!(
            "xenbeacon: unknown log level '{}' (error, warn, info, debug, trace)",
            args.log_level
        );
        return ExitCode::from(2);
    };
    if args.memory_interval == 0 {
        eprintln!("xenbeacon: --memory-interval must be at least 1 second");
        return ExitCode::from(2);
    }
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();

    let config = AgentConfig {
        root: args.root.clone(),
        memory_threshold_kb: args.memory_threshold,
        nics: NicOptions {
            include: args.include_iface.clone(),
            exclude: args.exclude_iface.clone(),
            link_local: args.link_local,
            temporary: args.temporary_addresses,
            max_addresses: args.max_addresses,
        },
        stage: match args.stage.as_str() {
            "auto" => None,
            "initramfs" => Some(BootStage::Initramfs),
            "rootfs" => Some(BootStage::Rootfs),
            other => {
                eprintln!("xenbeacon: unknown stage '{other}' (auto, initramfs, rootfs)");
                return ExitCode::from(2);
            }
        },
        booted: args.booted,
        feature_balloon: !args.no_feature_balloon,
        balloon_stuck_after: Duration::from_secs(u64::from(args.balloon_stuck_after)),
        apply_ip_settings: args.apply_ip_settings,
    };
    if args.dry_run {
        let mut agent = Agent::new(config);
        let _netlink = event_loop::open_netlink(&mut agent);
        for op in agent.full_plan() {
            if let Some(value) = op.value() {
                println!("{} = {value}", op.key());
            }
        }
        return ExitCode::SUCCESS;
    }

    let choice = match endpoint_choice(&args) {
        Ok(c) => c,
        Err(msg) => {
            log::error!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    let mut agent = Agent::new(config);
    let result = if args.once {
        event_loop::run_once(&mut agent, &choice)
    } else {
        event_loop::run(
            &mut agent,
            &choice,
            Duration::from_secs(u64::from(args.memory_interval)),
        )
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `argh::from_env`, except that a bad command line exits 2 (as `--help` documents), not 1,
/// which `wait` uses for "timed out".
fn parse_args() -> Args {
    use argh::FromArgs;
    let all: Vec<String> = std::env::args().collect();
    let cmd = all
        .first()
        .map_or("xenbeacon", |s| s.rsplit('/').next().unwrap_or(s));
    let rest: Vec<&str> = all.iter().skip(1).map(String::as_str).collect();
    match Args::from_args(&[cmd], &rest) {
        Ok(a) => a,
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => {
            println!("{output}");
            std::process::exit(0)
        }
        Err(argh::EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!("{output}\nRun {cmd} --help for more information.");
            std::process::exit(2)
        }
    }
}

/// `xenbeacon booted`: one write, then exit.
fn booted(args: &BootedArgs) -> ExitCode {
    let _ = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Info)
        .init();
    let Some(endpoint) = Endpoint::chosen(args.xenstore.as_deref()).or_else(Endpoint::discover)
    else {
        log::error!("no xenbus device at /dev/xen/xenbus or /proc/xen/xenbus");
        return ExitCode::FAILURE;
    };
    let result = XenbusConn::open(&endpoint).and_then(|mut c| c.write(key::BOOTED, b"1"));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("cannot write {}: {e}", key::BOOTED);
            ExitCode::FAILURE
        }
    }
}

/// The endpoint from --xenstore or the environment, or the guest's xenbus device. Outside a
/// Xen guest there is nothing to talk to, which is an error.
fn endpoint_choice(args: &Args) -> Result<EndpointChoice, String> {
    if let Some(e) = Endpoint::chosen(args.xenstore.as_deref()) {
        return Ok(EndpointChoice::Fixed(e));
    }
    // The device first: one stat(2), where /sys/hypervisor/type takes four system calls.
    if let Some(device) = Endpoint::discover() {
        return Ok(EndpointChoice::Fixed(device));
    }
    if hypervisor::is_xen(&args.root) {
        return Ok(EndpointChoice::Discover);
    }
    let seen = hypervisor::hypervisor_type(&args.root).map_or_else(
        || "no /sys/hypervisor/type".to_owned(),
        |t| format!("hypervisor type '{t}'"),
    );
    Err(format!(
        "not running in a Xen guest ({seen}, no {} or {}); use --dry-run to see what would be \
         published, or --xenstore PATH",
        xenbeacon::xenbus::conn::DEVICE_PATHS[0],
        xenbeacon::xenbus::conn::DEVICE_PATHS[1],
    ))
}
