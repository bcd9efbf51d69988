//! The command line's own functions (argument parsers, output text, the clap definitions),
//! tested here rather than beside them: see `src/lib.rs` for why.

use tessera_cli::cli::{parse_count, parse_pool, Cli};
use tessera_cli::output::{error_text, fmt_n};

#[test]
fn pool_parser_takes_integers_and_refuses_floats_negatives_and_overflow() {
    assert_eq!(parse_pool("1_000"), Ok(1000));
    assert!(parse_pool("1e24").is_err());
    assert!(parse_pool("-5").is_err());
    assert!(parse_pool("1.5").is_err());
    assert!(parse_pool(&"9".repeat(39)).is_err());
}

#[test]
fn count_parser_takes_scientific_notation() {
    assert_eq!(parse_count("1e6"), Ok(1_000_000));
    assert_eq!(parse_count("2_000"), Ok(2000));
    assert!(parse_count("1e30").is_err());
    assert!(parse_count("x").is_err());
}

#[test]
fn clap_definitions_are_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn thousands_are_grouped() {
    assert_eq!(fmt_n(0), "0");
    assert_eq!(fmt_n(1234567), "1,234,567");
}

#[test]
fn errors_are_printed_once() {
    let inner = anyhow::anyhow!("table 'nope' not found");
    let e = inner.context("query: SELECT 1: table 'nope' not found");
    assert_eq!(error_text(&e), "query: SELECT 1: table 'nope' not found");
    let e = anyhow::anyhow!("disk full").context("writing x");
    assert_eq!(error_text(&e), "writing x: disk full");
}

unsafe extern "C" fn collect(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void) {
    // SAFETY: mimalloc passes a NUL-terminated message and the `arg` registered below.
    let (msg, out) = unsafe { (std::ffi::CStr::from_ptr(msg), &mut *(arg as *mut String)) };
    out.push_str(&msg.to_string_lossy());
}

unsafe extern "C" {
    /// Prints mimalloc's version and every option by name and value (`mimalloc.h`).
    fn mi_options_print();
}

/// `main.rs` sets mimalloc's purge delay and transparent-huge-page options by their indices:
/// each index is the option that mimalloc names so.
#[test]
fn the_option_indices_are_mimallocs_purge_delay_and_allow_thp() {
    use tessera_cli::allocator::{MI_OPTION_ALLOW_THP, MI_OPTION_PURGE_DELAY};
    let mut out = String::new();
    // SAFETY: `out` outlives the registration, which is removed before `out` is read; no other
    // test here prints mimalloc's messages. Any value is valid for either option (allow_thp:
    // non-zero is "enabled", mimalloc's default).
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 4321);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 4322);
        libmimalloc_sys::mi_register_output(Some(collect), &mut out as *mut String as *mut std::ffi::c_void);
        mi_options_print();
        libmimalloc_sys::mi_register_output(None, std::ptr::null_mut());
    }
    for (value, name) in [(4321, "purge_delay"), (4322, "allow_thp")] {
        let line = out.lines().find(|l| l.contains(&value.to_string())).unwrap_or_default();
        assert!(line.contains(&format!("option '{name}': {value}")), "{out}");
    }
}
