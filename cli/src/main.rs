//! `hotprof`: attach to a running hotprof service over its same-user Unix
//! socket (no port, no credentials), like `jcmd` for the JVM. See
//! docs/cli.md for the commands, the protocol and the exit codes.

mod client;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hotprof::__attach::Request;

use client::{Failure, Target};

/// Attach to a running hotprof service: thread dumps, CPU and wall-clock
/// profiles, the capture switch and the guard's counters, over a Unix
/// socket only its user (or root) can use.
///
/// Exit codes: 0 done; 1 failed; 2 bad usage; 3 no such process; 4 not a
/// hotprof process; 5 permission denied; 6 capture is off; 7 refused by the
/// guard (try again later); 8 a profile is already running.
#[derive(Debug, Parser)]
#[command(name = "hotprof", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The hotprof processes this user can reach: pid, app, uptime, capture, last dump.
    List,
    /// Every thread's stack, on stdout (or to a file).
    Dump {
        /// The service's process id.
        pid: u32,
        /// Write it here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A CPU profile (gzipped pprof) of the whole process.
    Cpu(Window),
    /// A wall-clock profile (gzipped pprof) of every thread, running or not.
    Wall(Window),
    /// The heap profile now (gzipped pprof: in use and allocated since the
    /// start), from a service whose global allocator is hotprof::SampledAlloc.
    Heap {
        /// The service's process id.
        pid: u32,
        /// The file to write; default `<app>-<pid>-heap.pb.gz` here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Turns capture on.
    Enable {
        /// The service's process id.
        pid: u32,
    },
    /// Turns capture off.
    Disable {
        /// The service's process id.
        pid: u32,
    },
    /// Which traffic marked calls and tracing spans are recorded for: all,
    /// or only traffic dyed with hotprof::dyed or DyeLayer (HOTPROF_SCOPES).
    Scopes {
        /// `all` or `dyed`.
        which: Scopes,
        /// The service's process id.
        pid: u32,
    },
    /// The capture switch and the guard's counters.
    Stats {
        /// The service's process id.
        pid: u32,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scopes {
    All,
    Dyed,
}

#[derive(Debug, clap::Args)]
struct Window {
    /// The service's process id.
    pid: u32,
    /// How long to sample, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Samples per second and per thread.
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(u32).range(1..=1000))]
    hz: u32,
    /// The file to write; default `<app>-<pid>-cpu.pb.gz` (or `-wall`) here.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hotprof: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::List => list(),
        Command::Dump { pid, output } => {
            let text = Target::find(pid)?.ask(Request::Dump)?;
            emit(&text, output.as_deref())
        }
        Command::Cpu(w) => profile(w, "cpu", |seconds, hz| Request::Cpu { seconds, hz }),
        Command::Wall(w) => profile(w, "wall", |seconds, hz| Request::Wall { seconds, hz }),
        Command::Heap { pid, output } => heap(pid, output),
        Command::Enable { pid } => emit(&Target::find(pid)?.ask(Request::Enable)?, None),
        Command::Disable { pid } => emit(&Target::find(pid)?.ask(Request::Disable)?, None),
        Command::Scopes { which, pid } => {
            let which = match which {
                Scopes::All => hotprof::ScopeCapture::All,
                Scopes::Dyed => hotprof::ScopeCapture::Dyed,
            };
            emit(&Target::find(pid)?.ask(Request::Scopes(which))?, None)
        }
        Command::Stats { pid } => emit(&Target::find(pid)?.ask(Request::Stats)?, None),
    }
}

fn list() -> Result<(), Failure> {
    println!("{:>8}  {:<24} {:>10}  {:<7}  {:<6}  LAST DUMP", "PID", "APP", "UPTIME", "CAPTURE", "SCOPES");
    for target in client::reachable() {
        let Ok(info) = target.ask(Request::Info) else { continue };
        let info = client::fields(&info);
        let field = |k: &str| info.get(k).map(String::as_str).unwrap_or("?");
        let app = format!("{} {}", field("app"), field("version"));
        let uptime = field("uptime").parse::<u64>().map(human_duration).unwrap_or_else(|_| "?".into());
        println!(
            "{:>8}  {:<24} {:>10}  {:<7}  {:<6}  {}",
            target.pid,
            app,
            uptime,
            field("capture"),
            field("scopes"),
            field("last dump")
        );
    }
    Ok(())
}

fn profile(w: Window, kind: &str, request: impl Fn(u64, u32) -> Request) -> Result<(), Failure> {
    let target = Target::find(w.pid)?;
    let output = output_path(&target, w.output, kind)?;
    let bar = indicatif::ProgressBar::new(w.seconds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} s")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{kind} profile of {}", w.pid));
    bar.enable_steady_tick(Duration::from_millis(200));
    let ticker = bar.clone();
    let timer = std::thread::spawn(move || {
        for _ in 0..w.seconds {
            std::thread::sleep(Duration::from_secs(1));
            ticker.inc(1);
        }
    });
    let answer = target.ask(request(w.seconds, w.hz));
    bar.finish_and_clear();
    drop(timer);
    write_profile(&answer?, &output, kind)
}

fn heap(pid: u32, output: Option<PathBuf>) -> Result<(), Failure> {
    let target = Target::find(pid)?;
    let output = output_path(&target, output, "heap")?;
    write_profile(&target.ask(Request::Heap)?, &output, "heap")
}

/// `path`, else `<app>-<pid>-<kind>.pb.gz` in the working directory.
fn output_path(target: &Target, path: Option<PathBuf>, kind: &str) -> Result<PathBuf, Failure> {
    if let Some(path) = path {
        return Ok(path);
    }
    let info = client::fields(&target.ask(Request::Info)?);
    let app = info.get("app").cloned().unwrap_or_else(|| "app".into());
    Ok(PathBuf::from(format!("{app}-{}-{kind}.pb.gz", target.pid)))
}

fn write_profile(body: &[u8], output: &std::path::Path, kind: &str) -> Result<(), Failure> {
    std::fs::write(output, body)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", output.display())))?;
    eprintln!("hotprof: {kind} profile ({} bytes) written to {}", body.len(), output.display());
    Ok(())
}

/// Writes `body` to `path`, else to stdout.
fn emit(body: &[u8], path: Option<&std::path::Path>) -> Result<(), Failure> {
    match path {
        Some(path) => std::fs::write(path, body)
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display()))),
        None => match std::io::stdout().write_all(body) {
            // `hotprof dump 42 | head`: the reader left; nothing is wrong.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map_err(|e| Failure::Other(format!("stdout: {e}"))),
        },
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}
