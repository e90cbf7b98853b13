//! The subcommands behind the `zonegate` binary.
pub mod check_report;
pub mod cluster_mode;
pub mod files_mode;
pub mod listeners;
pub(crate) mod tree_watch;
