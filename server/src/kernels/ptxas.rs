//! Resources per kernel from `ptxas -v`: what the assembler reports is what the GPU will reserve.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::process::Scratch;
use super::Cancel;

/// What ptxas reports for one entry function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub registers: u32,
    pub barriers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    pub stack_frame_bytes: u32,
    /// Static shared memory (`__shared__` arrays).
    pub shared_bytes: u32,
    /// Per-thread local memory: the stack frame, or `lmem` where an older ptxas reports it apart.
    pub local_bytes: u32,
    pub constant_bytes: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PtxasError {
    #[error("could not run {path}: {error}")]
    Spawn { path: String, error: std::io::Error },
    #[error("ptxas rejected the PTX:\n{0}")]
    Rejected(String),
    #[error("ptxas did not report on kernel `{0}`")]
    EntryMissing(String),
    #[error("cancelled")]
    Cancelled,
}

/// Assembles `ptx` for `arch` (`sm_90`) and returns what ptxas reports for `entry`.
pub fn resources(
    ptxas: &Path,
    ptx: &str,
    arch: &str,
    options: &[String],
    entry: &str,
    cancel: &Cancel,
) -> Result<Resources, PtxasError> {
    let output = run(ptxas, ptx, arch, options, cancel)?;
    parse_report(&output).into_iter().find(|(name, _)| name == entry).map(|(_, r)| r).ok_or_else(|| {
        if output.contains("error") {
            PtxasError::Rejected(output)
        } else {
            PtxasError::EntryMissing(entry.to_string())
        }
    })
}

/// Assembles `ptx` with line info (`-lineinfo`, as Triton does) into a cubin for SASS; the
/// report is the same as `resources` reads.
pub fn assemble(
    ptxas: &Path,
    ptx: &str,
    arch: &str,
    options: &[String],
    cancel: &Cancel,
) -> Result<Vec<u8>, PtxasError> {
    let scratch = Scratch::new().map_err(|error| spawn_error(ptxas, error))?;
    let cubin = scratch.path("kernel.cubin");
    let mut with_lines = options.to_vec();
    with_lines.push("-lineinfo".into());
    run_in(&scratch, ptxas, ptx, arch, &with_lines, &cubin, cancel)?;
    std::fs::read(&cubin).map_err(|error| spawn_error(ptxas, error))
}

fn spawn_error(ptxas: &Path, error: std::io::Error) -> PtxasError {
    PtxasError::Spawn { path: ptxas.display().to_string(), error }
}

/// Runs ptxas on a copy of the PTX in a scratch folder (it reads files only); a cancelled request
/// kills it instead of waiting.
fn run(ptxas: &Path, ptx: &str, arch: &str, options: &[String], cancel: &Cancel) -> Result<String, PtxasError> {
    let scratch = Scratch::new().map_err(|error| spawn_error(ptxas, error))?;
    run_in(&scratch, ptxas, ptx, arch, options, Path::new("/dev/null"), cancel)
}

fn run_in(
    scratch: &Scratch,
    ptxas: &Path,
    ptx: &str,
    arch: &str,
    options: &[String],
    output: &Path,
    cancel: &Cancel,
) -> Result<String, PtxasError> {
    let input = scratch.path("kernel.ptx");
    std::fs::write(&input, ptx).map_err(|error| spawn_error(ptxas, error))?;
    let mut command = Command::new(ptxas);
    command.arg(format!("-arch={arch}")).arg("-v").arg("-o").arg(output).args(options).arg(&input);
    let finished =
        scratch.run(command, cancel).map_err(|error| spawn_error(ptxas, error))?.ok_or(PtxasError::Cancelled)?;
    // ptxas writes its report to stdout and its errors to stderr; they are read as one log.
    let log = finished.stdout + &finished.stderr;
    if !finished.success {
        return Err(PtxasError::Rejected(log));
    }
    Ok(log)
}

/// Reads `ptxas -v` output into (entry name, resources), in the order reported.
pub fn parse_report(text: &str) -> Vec<(String, Resources)> {
    let mut entries: Vec<(String, Resources)> = Vec::new();
    let mut properties_of: Option<String> = None;
    for line in text.lines() {
        let info = line.strip_prefix("ptxas info    : ").map(str::trim);
        if let Some(rest) = info.and_then(|i| i.strip_prefix("Compiling entry function '")) {
            let name = rest.split('\'').next().unwrap_or_default();
            entries.push((name.to_string(), Resources::default()));
            properties_of = None;
        } else if let Some(name) = info.and_then(|i| i.strip_prefix("Function properties for ")) {
            properties_of = Some(name.trim().to_string());
        } else if let Some(used) = info.and_then(|i| i.strip_prefix("Used ")) {
            if let Some((_, resources)) = entries.last_mut() {
                read_usage(&format!("Used {used}"), resources);
            }
        } else if line.starts_with("    ") && line.contains("stack frame") {
            // The properties line belongs to an entry when it names one; device functions that were
            // not inlined report theirs too, and are skipped.
            let target = properties_of.take();
            if let Some((_, resources)) = entries.iter_mut().rev().find(|(name, _)| Some(name) == target.as_ref()) {
                for part in line.trim().split(", ") {
                    let number = leading_number(part);
                    if part.ends_with("stack frame") {
                        resources.stack_frame_bytes = number;
                        resources.local_bytes = resources.local_bytes.max(number);
                    } else if part.ends_with("spill stores") {
                        resources.spill_stores = number;
                    } else if part.ends_with("spill loads") {
                        resources.spill_loads = number;
                    }
                }
            }
        }
    }
    entries
}

fn read_usage(line: &str, resources: &mut Resources) {
    for part in line.split(", ") {
        let part = part.trim();
        if let Some(n) = part.strip_prefix("Used ").filter(|p| p.ends_with("registers")) {
            resources.registers = leading_number(n);
        } else if let Some(n) = part.strip_prefix("used ").filter(|p| p.ends_with("barriers")) {
            resources.barriers = leading_number(n);
        } else if part.ends_with("bytes smem") {
            resources.shared_bytes = leading_number(part);
        } else if part.ends_with("bytes lmem") {
            resources.local_bytes = resources.local_bytes.max(leading_number(part));
        } else if part.contains("bytes cmem[0]") {
            resources.constant_bytes = leading_number(part);
        }
    }
}

fn leading_number(text: &str) -> u32 {
    text.trim().split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output of ptxas 13.5 for two kernels and a device function that was not inlined.
    const REPORT: &str = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z5spillPf' for 'sm_90'
ptxas info    : Function properties for _Z5spillPf
    872 bytes stack frame, 1292 bytes spill stores, 1412 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 872 bytes cumulative stack size
ptxas info    : Compile time = 77.648 ms
ptxas info    : Compiling entry function '_Z1kPfi' for 'sm_90'
ptxas info    : Function properties for _Z1kPfi
    256 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 1 barriers, 256 bytes cumulative stack size, 4096 bytes smem, 380 bytes cmem[0]
ptxas info    : Compile time = 4.923 ms
ptxas info    : Function properties for _Z6helperPfi
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
";

    #[test]
    fn reads_every_entry_and_skips_device_functions() {
        let entries = parse_report(REPORT);
        assert_eq!(entries.len(), 2);
        let (name, spill) = &entries[0];
        assert_eq!(name, "_Z5spillPf");
        assert_eq!(
            *spill,
            Resources {
                registers: 32,
                spill_stores: 1292,
                spill_loads: 1412,
                stack_frame_bytes: 872,
                local_bytes: 872,
                ..Resources::default()
            }
        );
        let (name, k) = &entries[1];
        assert_eq!(name, "_Z1kPfi");
        assert_eq!((k.registers, k.barriers, k.shared_bytes, k.constant_bytes, k.local_bytes), (32, 1, 4096, 380, 256));
    }

    #[test]
    fn odd_output_gives_no_entries_rather_than_a_panic() {
        assert!(parse_report("").is_empty());
        assert!(parse_report("ptxas info    : Used 12 registers").is_empty());
        assert!(parse_report("ptxas info    : Compiling entry function '").len() == 1);
    }
}
