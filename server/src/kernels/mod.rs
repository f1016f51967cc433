//! CUDA kernels: finding them in a document, cutting out the device code one kernel needs,
//! compiling it with NVRTC, reading its resources with ptxas, and theoretical occupancy.
//! Pure where it can be; the slow parts (NVRTC, ptxas) are plain blocking functions that the LSP
//! layer runs off the request loop. Nothing here knows about LSP.

pub mod analyze;
pub mod annotation;
pub mod device_code;
pub mod document;
pub mod embedded;
pub mod expr;
pub mod includes;
pub mod ir;
pub mod nvrtc;
pub mod occupancy;
pub mod process;
pub mod ptxas;
pub mod report;
pub mod sass;
pub mod session;
pub mod spec;
pub mod stats;
pub mod timing;
pub mod toolchain;
pub mod triton;
pub mod triton_analysis;
pub mod triton_modules;
pub mod triton_timing;
pub mod triton_worker;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set by whoever asked for the work when they no longer want the answer; slow steps check it
/// between stages and kill child processes when it is set.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
