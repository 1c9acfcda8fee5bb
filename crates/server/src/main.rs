use std::process::ExitCode;

use clap::Parser;
use server::config::{Cli, Command};
use server::startup::Application;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    return_freed_memory_to_the_system();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,server=info")),
        )
        .with_writer(std::io::stderr)
        // A closed stderr (the supervisor's pipe gone) must not turn a log line into a panic.
        .log_internal_errors(false)
        .init();
    let mut cli = Cli::parse();
    cli.settings.read_secret_from_env();
    let result = match cli.command {
        Some(Command::User(command)) => server::operator::run(&cli.settings, command)
            .await
            .map_err(|e| e.to_string()),
        Some(Command::Serve) | None => serve(cli.settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Not eprintln!: it panics when stderr is gone (a closed pipe), and the message
            // matters less than exiting cleanly.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "duet: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: server::config::Settings) -> Result<(), String> {
    let grace = std::time::Duration::from_secs(settings.shutdown_grace_secs);
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let shutdown = app.shutdown_token();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(trim_freed_memory());
    let mut server = tokio::spawn(app.run());
    tokio::select! {
        served = &mut server => return finished(served),
        () = wait_for_signal() => {}
    }
    tracing::info!(grace_secs = grace.as_secs(), "shutting down");
    // Every socket is told 1001 now; the server returns once they have all closed.
    shutdown.cancel();
    match tokio::time::timeout(grace, server).await {
        Ok(served) => finished(served),
        Err(_) => {
            tracing::warn!("connections still open after the grace period; exiting anyway");
            Ok(())
        }
    }
}

fn finished(served: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), String> {
    match served {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(error) => Err(format!("the server task failed: {error}")),
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// argon2 frees a 19 MiB block after every hash; glibc's adaptive mmap threshold would then keep
/// such blocks in its arenas for good (measured: ~1 GB resident after 1,000 registrations, 14 MB
/// with this; docs/benchmarks.md). A fixed threshold keeps large blocks on mmap, returned on free.
fn return_freed_memory_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// A crowd arriving makes every connection write one `online` frame per newcomer: short-lived
/// buffers by the million, whose freed pages glibc keeps inside its arenas. Handing whole free
/// pages back now and then is what keeps an idle server's footprint at its live data (measured:
/// 2,000 users online, 2.6 KB per connection less; docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn trim_freed_memory() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        // SAFETY: malloc_trim only releases free memory; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
