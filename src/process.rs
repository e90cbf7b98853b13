//! Process plumbing, written once for every subcommand: logging set-up, the tokio runtime,
//! SIGTERM/SIGINT handling, the Kubernetes client and the HTTP endpoint's start.
//!
//! A long-running command is an `async fn(...) -> error::Result<()>` handed to [`run`], which
//! builds the runtime, runs it, lets the HTTP endpoints drain after it returns, and turns the
//! result into an exit code. Anything that must stop on a signal awaits [`shutdown`].

use crate::error::{Error, Result};
use crate::http::{self, Endpoint};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Log format of every subcommand: `text` (for people) or `json` (one object a line, for log
/// collectors). The operator starts its nameserver pods with its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// The `--log-format` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Whether text logs carry ANSI colour: only on a terminal, and never when `NO_COLOR` is set to
/// anything non-empty (<https://no-color.org>), so `kubectl logs` shows no escape codes.
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Logs to stderr at the level RUST_LOG asks for (default `info`); colour as [`colour`] says.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // hickory-server logs two info lines per response: the network libraries' info and below
    // are dropped, unless RUST_LOG names one. Their warnings and errors (a malformed message,
    // a failed handshake) reach NetLogLayer, which counts and summarises them: network input
    // must not drive the log.
    let libraries = crate::dns::netlog::NETWORK_LIBRARIES;
    if !std::env::var("RUST_LOG").is_ok_and(|v| libraries.iter().any(|l| v.contains(l))) {
        for lib in libraries {
            filter =
                filter.add_directive(format!("{lib}=warn").parse().expect("a valid directive"));
        }
    }
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // events from parsing network input are counted and summarised, never logged one by one
    let netlog = crate::dns::netlog::NetLogLayer;
    match format {
        LogFormat::Text => builder.finish().with(netlog).init(),
        LogFormat::Json => builder.json().finish().with(netlog).init(),
    }
}

/// How long HTTP endpoints may take to finish their requests once the command has returned.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs a command on a multi-threaded runtime; returns the process exit code (0, or the
/// error's, after printing it on stderr).
pub fn run<Fut>(command: Fut) -> u8
where
    Fut: Future<Output = Result<()>>,
{
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
        .and_then(|rt| {
            rt.block_on(async {
                let result = command.await;
                // whatever ended the command, the endpoints stop now and finish what they serve
                request_shutdown();
                drain().await;
                result
            })
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn shutdown_state() -> &'static watch::Sender<bool> {
    static STATE: OnceLock<watch::Sender<bool>> = OnceLock::new();
    STATE.get_or_init(|| watch::channel(false).0)
}

/// Installs the SIGTERM/SIGINT handlers (once per process; needs a runtime). Called by
/// [`shutdown`]; call it early to catch a signal that arrives before anything awaits one.
pub fn install_signal_handlers() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tokio::spawn(async {
            let term = async {
                #[cfg(unix)]
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
                #[cfg(not(unix))]
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term => {},
            }
            tracing::info!("shutting down");
            request_shutdown();
        });
    });
}

/// Resolves once the process is asked to stop: SIGTERM, SIGINT, or [`request_shutdown`].
pub fn shutdown() -> impl Future<Output = ()> + Send + 'static {
    install_signal_handlers();
    let mut rx = shutdown_state().subscribe();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Asks everything awaiting [`shutdown`] to stop.
pub fn request_shutdown() {
    shutdown_state().send_replace(true);
}

fn draining() -> &'static Mutex<Vec<JoinHandle<()>>> {
    static TASKS: OnceLock<Mutex<Vec<JoinHandle<()>>>> = OnceLock::new();
    TASKS.get_or_init(Default::default)
}

async fn drain() {
    let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *draining().lock().expect("not poisoned"));
    let _ = tokio::time::timeout(DRAIN, futures::future::join_all(tasks)).await;
}

/// Starts the HTTP endpoint on the address of `flag` (`--http`), serving until [`shutdown`];
/// the endpoint then finishes its requests before the process exits. Returns the bound address.
pub async fn serve_http(
    flag: &'static str,
    addr: SocketAddr,
    endpoint: Arc<dyn Endpoint>,
) -> Result<SocketAddr> {
    let server = http::Server::bind(addr, endpoint, http::Limits::default())
        .await
        .map_err(|source| Error::Bind { flag, addr, source })?;
    let bound = server.local_addr();
    tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    let stop = shutdown();
    let task = tokio::spawn(async move {
        stop.await;
        server.shutdown().await;
    });
    draining().lock().expect("not poisoned").push(task);
    Ok(bound)
}

/// A Kubernetes client: from `kubeconfig` when given, else in-cluster, `KUBECONFIG` or
/// `~/.kube/config`.
pub async fn kube_client(kubeconfig: Option<&Path>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| Error::Kubeconfig {
                path: path.to_path_buf(),
                message: e.to_string(),
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| bad(&e))?
        }
        None => kube::Config::infer().await.map_err(Error::NoKubeconfig)?,
    };
    kube::Client::try_from(config).map_err(Error::Client)
}

/// The allocator set-up, before any thread starts: one glibc arena. glibc gives each thread
/// that allocates under contention an arena of its own (up to 8 per core) and never moves
/// memory between them, so a reload on one blocking thread after another left each arena
/// holding free memory: a 33 MiB server that added and removed a 10 000-object file five
/// times stayed at 67 MiB (51 MiB after the first cycle: 1.31x), against 50 MiB with one
/// arena (46 after the first: 1.09x; two arenas: 1.18x). The answer path does not lock the
/// arena per query: its allocations are small and recycled by glibc's per-thread cache.
/// Set `MALLOC_ARENA_MAX` to override.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes plain integers and only sets the allocator's parameters; it
        // runs before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Hands the heap memory freed by reloads back to the kernel, a second after the last
/// publication: glibc returns only the top of the heap on its own, so the pages a removed
/// file freed in the middle stayed with the process. `malloc_trim` walks the whole heap under
/// the arena's lock, which stalls every allocation meanwhile; run right after a publication,
/// it delayed the IXFR that the publication's NOTIFY asked for (a 10-name change to a
/// 100 000-name zone reached a Knot secondary in 209 ms instead of 128). So a background
/// thread trims once publications have been quiet for a second (at most ten seconds after
/// the first of them, so a zone that changes all the time is trimmed too).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
        static TRIMMER: OnceLock<Mutex<Sender<()>>> = OnceLock::new();
        let tx = TRIMMER.get_or_init(|| {
            let (tx, rx) = channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("memory-release".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        // a second without publications, but no more than ten after the first
                        let first = std::time::Instant::now();
                        loop {
                            match rx.recv_timeout(Duration::from_secs(1)) {
                                Ok(()) if first.elapsed() < Duration::from_secs(10) => continue,
                                Ok(()) => break,
                                Err(RecvTimeoutError::Timeout) => break,
                                Err(RecvTimeoutError::Disconnected) => return,
                            }
                        }
                        // SAFETY: malloc_trim takes no pointers and only touches the
                        // allocator's own state, under its locks.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the memory-release thread");
            }
            Mutex::new(tx)
        });
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_file() {
        let Err(e) = kube_client(Some(Path::new("/nonexistent/zonegate-kubeconfig"))).await else {
            panic!("a client from a missing file")
        };
        assert!(
            e.to_string()
                .starts_with("--kubeconfig /nonexistent/zonegate-kubeconfig: "),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn run_maps_results_to_exit_codes() {
        assert_eq!(run(async { Ok(()) }), 0);
        assert_eq!(run(async { Err(Error::flag("--zone", "x: bad")) }), 2);
        assert_eq!(run(async { Err(Error::Stopped("the watch channel")) }), 1);
    }
}
