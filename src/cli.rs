//! Command-line flags and subcommands.
