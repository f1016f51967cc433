//! One NVRTC compile: CUDA C++ text in, PTX and the kernel's lowered (mangled) name out, or the
//! compiler's log. Callers make sure NVRTC is loaded first (`Toolchain::discover`), because cudarc
//! panics when the library is missing.

use std::ffi::{c_char, CStr, CString};

use cudarc::nvrtc::{result, sys};

#[derive(Debug, Clone)]
pub struct Compiled {
    pub ptx: String,
    /// Warnings, if any.
    pub log: String,
    /// The PTX entry name of the kernel (`_Z6reducePfS_i`, or `k` under `extern "C"`).
    pub lowered_name: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileError {
    /// The source did not compile; the log says why.
    #[error("the kernel did not compile")]
    Rejected { log: String },
    /// NVRTC itself failed (bad option, out of memory).
    #[error("NVRTC failed: {0}")]
    Nvrtc(String),
}

/// Compiles `source` with `options` and in-memory `headers` (name, text), asking NVRTC to
/// instantiate and name `name_expression` (`reduce`, `ns::scan<float, 256>`).
pub fn compile(
    source: &str,
    program_name: &str,
    headers: &[(&str, &str)],
    options: &[String],
    name_expression: &str,
) -> Result<Compiled, CompileError> {
    let nul = |what: &str| CompileError::Nvrtc(format!("{what} holds a NUL byte"));
    let source = CString::new(source).map_err(|_| nul("the source"))?;
    let program_name = CString::new(program_name).unwrap_or_else(|_| c"kernel.cu".to_owned());
    let expression = CString::new(name_expression).map_err(|_| nul("the kernel name"))?;
    let header_texts: Vec<CString> =
        headers.iter().map(|(_, text)| CString::new(*text)).collect::<Result<_, _>>().map_err(|_| nul("a header"))?;
    let header_names: Vec<CString> = headers
        .iter()
        .map(|(name, _)| CString::new(*name))
        .collect::<Result<_, _>>()
        .map_err(|_| nul("a header name"))?;
    let text_ptrs: Vec<*const c_char> = header_texts.iter().map(|h| h.as_ptr()).collect();
    let name_ptrs: Vec<*const c_char> = header_names.iter().map(|h| h.as_ptr()).collect();
    let mut program: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live NUL-terminated string; the counts match the arrays.
    unsafe {
        sys::nvrtcCreateProgram(
            &mut program,
            source.as_ptr(),
            program_name.as_ptr(),
            headers.len() as i32,
            text_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        )
        .result()
        .map_err(nvrtc_error)?;
    }
    let guard = ProgramGuard(program);
    // SAFETY: `program` is live until `guard` drops; the strings outlive every call using them.
    unsafe {
        sys::nvrtcAddNameExpression(program, expression.as_ptr()).result().map_err(nvrtc_error)?;
        let compiled = result::compile_program(program, options);
        let log = c_chars_to_string(&result::get_program_log(program).map_err(nvrtc_error)?);
        match compiled {
            Ok(()) => {}
            Err(err) if err.0 == sys::nvrtcResult::NVRTC_ERROR_COMPILATION => {
                return Err(CompileError::Rejected { log });
            }
            Err(err) => return Err(CompileError::Nvrtc(format!("{err:?}: {log}"))),
        }
        let ptx = c_chars_to_string(&result::get_ptx(program).map_err(nvrtc_error)?);
        let mut lowered: *const c_char = std::ptr::null();
        sys::nvrtcGetLoweredName(program, expression.as_ptr(), &mut lowered).result().map_err(nvrtc_error)?;
        let lowered_name = if lowered.is_null() {
            name_expression.to_string()
        } else {
            CStr::from_ptr(lowered).to_string_lossy().into_owned()
        };
        drop(guard);
        Ok(Compiled { ptx, log, lowered_name })
    }
}

struct ProgramGuard(sys::nvrtcProgram);

impl Drop for ProgramGuard {
    fn drop(&mut self) {
        // SAFETY: created by create_program and destroyed only here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn nvrtc_error(err: result::NvrtcError) -> CompileError {
    CompileError::Nvrtc(format!("{err:?}"))
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
