//! Panics caught with their message and backtrace, so that a bug in one feature costs one answer,
//! not the server, and tells the user and the log what happened.
//!
//! `install` (for the server) replaces the default hook with one that logs the panic in one line
//! through `tracing`, wherever it happens, and keeps its backtrace for `catch` on the same thread.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

/// A panic caught by `catch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    pub message: String,
    /// Where it happened; empty when the hook was not installed (unit tests).
    pub backtrace: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

thread_local! {
    static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Keeps each panic's location and backtrace for `catch` on the thread it happened on.
pub fn install() {
    panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let backtrace = Backtrace::force_capture().to_string();
        tracing::error!("{info}");
        LAST.with(|last| *last.borrow_mut() = Some((location, backtrace)));
    }));
}

/// Runs `f`; a panic inside it comes back as `Err` with its message. Callers must leave no state
/// half-updated by `f` behind (what `f` was writing is thrown away or reset by the caller).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let (location, backtrace) = LAST.with(|last| last.borrow_mut().take()).unwrap_or_default();
        Panic { message: format!("{}{location}", message(payload.as_ref())), backtrace }
    })
}

/// A test hook: panics when `TENSORLENS_FAULT` (read once) names `point` among its
/// comma-separated words, so that end-to-end tests can check what a bug in one feature costs.
/// Points: `analysis` and the features of `lsp::server::Feature` (`hover`, `completion`, ...).
pub fn fault(point: &str) {
    static POINTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let points = POINTS.get_or_init(|| {
        std::env::var("TENSORLENS_FAULT")
            .map(|v| v.split(',').map(|p| p.trim().to_string()).collect())
            .unwrap_or_default()
    });
    if points.iter().any(|p| p == point) {
        panic!("fault injected at {point} (TENSORLENS_FAULT)");
    }
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_with_its_message() {
        assert_eq!(catch(|| 1 + 1), Ok(2));
        let got = catch(|| -> u32 { panic!("index {} out of range", 7) }).unwrap_err();
        assert!(got.message.starts_with("index 7 out of range"), "{got:?}");
        let got = catch(|| std::panic::panic_any(3u8)).unwrap_err();
        assert!(got.message.starts_with("a panic without a message"));
    }
}
