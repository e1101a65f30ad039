//! What a test needs from outside: a server's URL, a tool's path. Set by
//! `scripts/test`; a developer's plain `cargo test` may lack them.
//!
//! The rule is written once, here: a missing value is a skip with a note on
//! a developer's machine and a failure in CI (`CI=true`), where every
//! engine and tool must be there. A skip never falls back to something else
//! (a test that needs Redis never runs on a `MemoryStore` instead).

use std::path::PathBuf;

/// The value of the environment variable `var`, which `what` (e.g. "the
/// Redis tests") needs.
///
/// - Set and not blank: `Some(value)`.
/// - Unset or blank with `CI=true`: panics, so the test fails.
/// - Unset or blank otherwise: prints
///   `SKIPPED <what>: <var> is not set (run scripts/test)` to stderr and
///   returns `None`; the caller returns early.
///
/// ```ignore
/// let Some(url) = sessiond_testkit::env::required("TEST_REDIS_URL", "the Redis tests") else { return };
/// ```
pub fn required(var: &str, what: &str) -> Option<String> {
    decide(std::env::var(var).ok(), in_ci(), var, what)
}

/// The path of `program` found on `PATH` (for a tool `scripts/test` does
/// not name in a variable, such as `openssl`), under the same rule as
/// [`required`]: missing is a skip with a note, or a failure in CI.
pub fn on_path(program: &str, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        missing(in_ci(), &format!("{program} is not on PATH"), what);
    }
    found
}

/// [`required`] with the environment read by the caller.
fn decide(value: Option<String>, ci: bool, var: &str, what: &str) -> Option<String> {
    match value {
        Some(value) if !value.trim().is_empty() => Some(value),
        _ => {
            missing(ci, &format!("{var} is not set"), what);
            None
        }
    }
}

/// Says that `what` cannot run and why: a note on stderr, or in CI a panic.
fn missing(ci: bool, why: &str, what: &str) {
    if ci {
        panic!("{why} and CI=true: {what} cannot run (run scripts/test)");
    }
    eprintln!("SKIPPED {what}: {why} (run scripts/test)");
}

/// Whether this run is CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A name no other test (nor another run) uses: `prefix` and 16 random hex
/// digits, for a Redis key prefix or a PostgreSQL schema of one's own.
pub fn unique_name(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_value_is_returned_in_and_out_of_ci() {
        for ci in [false, true] {
            assert_eq!(
                decide(Some("redis://x".into()), ci, "V", "t").as_deref(),
                Some("redis://x")
            );
        }
    }

    #[test]
    fn unset_or_blank_is_a_skip_outside_ci() {
        assert_eq!(decide(None, false, "V", "t"), None);
        assert_eq!(decide(Some(" ".into()), false, "V", "t"), None);
    }

    #[test]
    #[should_panic(expected = "TEST_X_URL is not set and CI=true: the X tests cannot run")]
    fn unset_is_a_failure_in_ci() {
        decide(None, true, "TEST_X_URL", "the X tests");
    }

    #[test]
    #[should_panic(expected = "is not set and CI=true")]
    fn blank_is_a_failure_in_ci() {
        decide(Some(String::new()), true, "TEST_X_URL", "the X tests");
    }

    #[test]
    fn a_program_is_found_on_path_or_skipped() {
        if !in_ci() {
            assert_eq!(on_path("no-such-program-sessiond", "t"), None);
        }
        assert!(on_path("sh", "t").is_some_and(|p| p.ends_with("sh")));
    }

    #[test]
    fn unique_names_differ() {
        let (a, b) = (unique_name("p_"), unique_name("p_"));
        assert!(a.starts_with("p_") && a.len() == 18, "{a}");
        assert_ne!(a, b);
    }
}
