//! The subcommands behind the `zonegate` binary.
pub mod files_mode;
