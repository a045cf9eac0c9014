//! Running external commands with their output captured and turned into typed errors.

use std::ffi::OsStr;
use std::process::{Command, Output};

use crate::error::{HarnessError, Result};

/// Builds a `Command` from a program and arguments.
pub fn command<S: AsRef<OsStr>>(argv: &[S]) -> Result<Command> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| HarnessError::Invalid("empty command line".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    Ok(cmd)
}

/// The command line as one printable string, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs a command to completion and returns its output whatever the exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output().map_err(|source| HarnessError::Spawn {
        command: describe(cmd),
        source,
    })
}

/// Runs a command to completion; a non-zero exit is an error. Returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failure(cmd, &out))
    }
}

/// Runs `argv` to completion; a non-zero exit is an error. Returns stdout.
pub fn run_argv<S: AsRef<OsStr>>(argv: &[S]) -> Result<String> {
    run(&mut command(argv)?)
}

/// The error for a command that ran and failed.
pub fn failure(cmd: &Command, out: &Output) -> HarnessError {
    HarnessError::Command {
        command: describe(cmd),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_stdout_and_reports_failures() {
        assert_eq!(run_argv(&["echo", "hello"]).unwrap(), "hello\n");
        let err = run_argv(&["sh", "-c", "echo oops >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run_argv(&["/nonexistent/vpngw-test-binary"]).unwrap_err();
        assert!(matches!(err, HarnessError::Spawn { .. }), "{err}");
    }

    #[test]
    fn empty_command_line_is_refused() {
        let empty: [&str; 0] = [];
        assert!(matches!(command(&empty), Err(HarnessError::Invalid(_))));
    }
}
