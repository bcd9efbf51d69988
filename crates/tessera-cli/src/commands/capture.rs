//! `tessera capture`: NMEA from a serial GNSS receiver into rotating files.

use crate::cli::{Baud, CaptureArgs};
use crate::output::print_json;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn run(a: &CaptureArgs, json: bool) -> Result<()> {
    let baud = match a.baud {
        Baud::Auto => None,
        Baud::Rate(b) => Some(b),
    };
    let mut cfg = tessera_net::capture::CaptureConfig::new(&a.port, baud, &a.out);
    cfg.rotate_after = std::time::Duration::from_secs(a.rotate_secs.max(1));
    cfg.rotate_bytes = a.rotate_bytes.max(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    ctrlc::set_handler(move || s2.store(true, Ordering::Relaxed))?;
    let stats = tessera_net::capture::capture(&cfg, &stop, &mut |s| {
        if !json {
            eprint!("\r{:<100}", s.line());
        }
    })?;
    if json {
        return print_json(&stats);
    }
    eprintln!();
    println!(
        "captured {} lines ({} valid) into {} file(s) in {}",
        stats.lines,
        stats.valid,
        stats.files.len(),
        a.out.display()
    );
    Ok(())
}
