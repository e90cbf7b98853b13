//! The error of a subcommand (`serve`, `operator`, ...): what failed, naming the flag, file or
//! address involved, and the exit code it maps to. Commands return `Result<_, Error>`; only
//! `process::run` turns it into a message on stderr and an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a subcommand stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value is unusable (exit code 2, like a flag clap rejects).
    #[error("{flag} {message}")]
    Flag { flag: &'static str, message: String },
    /// An address given by a flag cannot be bound.
    #[error("{flag} {addr}: {source}")]
    Bind {
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The tokio runtime cannot be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No kubeconfig given and none found in the usual places.
    #[error("no Kubernetes configuration (in-cluster, KUBECONFIG or --kubeconfig): {0}")]
    NoKubeconfig(#[source] kube::config::InferConfigError),
    /// The kubeconfig given with `--kubeconfig` is unusable.
    #[error("--kubeconfig {}: {message}", path.display())]
    Kubeconfig { path: PathBuf, message: String },
    /// The Kubernetes client cannot be built from a valid configuration.
    #[error("Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The manifest directory cannot be watched for changes.
    #[error("cannot watch {}: {source}", path.display())]
    WatchDir {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    /// A part the command depends on stopped (a channel closed, a task ended).
    #[error("{0} stopped")]
    Stopped(&'static str),
    /// The operator's run loop stopped (its HTTP endpoint, the Lease, the controller).
    #[error(transparent)]
    Operator(#[from] crate::operator::error::RunError),
    /// `webhook` or `hosts` cannot start or go on; the message names the flag, file or object.
    #[error("{0}")]
    Command(String),
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Command(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Command(message.to_string())
    }
}

impl Error {
    /// A flag error.
    pub fn flag(flag: &'static str, message: impl Into<String>) -> Self {
        Error::Flag {
            flag,
            message: message.into(),
        }
    }

    /// The process exit code: 2 for unusable flags, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        use crate::operator::error::RunError;
        match self {
            Error::Flag { .. } | Error::Operator(RunError::LeaseTiming { .. }) => 2,
            _ => 1,
        }
    }
}

/// A command's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_flag_and_exit_codes_split_usage_from_failure() {
        let e = Error::flag("--zone", "x: expected NAMESPACE/NAME");
        assert_eq!(e.to_string(), "--zone x: expected NAMESPACE/NAME");
        assert_eq!(e.exit_code(), 2);
        let e = Error::Bind {
            flag: "--http",
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert!(e.to_string().starts_with("--http 127.0.0.1:1: "), "{e}");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            Error::Stopped("the watch channel").to_string(),
            "the watch channel stopped"
        );
    }
}
