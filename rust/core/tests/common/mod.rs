//! What the property tests (`etf_props.rs`, `convert_props.rs`) share: their proptest
//! configuration.

use proptest::test_runner::Config;

/// Cases per property when `PROPTEST_CASES` is unset: well under a second each in a release
/// build, so `cargo test --workspace --release` stays fast. `make fuzz` sets the variable for
/// long runs.
pub const CASES: u32 = 1024;

/// The configuration of every property: [`CASES`] cases unless `PROPTEST_CASES` is set, and no
/// failure files.
///
/// `Config::default()` has already read `PROPTEST_CASES` and the other `PROPTEST_*` variables,
/// so only the built-in default of 256 is replaced here, never a count the environment gave
/// (`Config::with_cases` would override the variable).
///
/// Failure persistence is off rather than `proptest-regressions/` gitignored: a failing run
/// prints its shrunk input, and the regression it reveals belongs in `etf.rs` or `ext.rs` as a
/// named test that says what it guards, not as an opaque seed file that `make fuzz` (millions of
/// cases, on any machine) would leave in the source tree.
pub fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    config.failure_persistence = None;
    config
}
