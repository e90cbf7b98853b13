//! The subcommands behind the `zonegate` binary.
pub mod cluster_mode;
pub mod files_mode;
