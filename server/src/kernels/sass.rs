//! SASS, the GPU's own instructions: disassembled from a cubin with `nvdisasm -gi` (which writes
//! the source line of each run of instructions, inlined calls included), and read back per source
//! line: how many instructions and how many spill stores and loads come from each line of the
//! user's file. That is what tells a user *where* a kernel spills or spends its code, for CUDA and
//! Triton kernels alike.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::process::Scratch;
use super::Cancel;

/// What the instructions attributed to one source line are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    pub instructions: u32,
    /// `STL` marked by nvdisasm as a spill (`SpillRefill`), not a store to a local array.
    pub spill_stores: u32,
    pub spill_loads: u32,
    /// Every `STL` and `LDL`: spills and local arrays alike.
    pub local_stores: u32,
    pub local_loads: u32,
}

/// The kernel's instructions by 1-based line of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineProfile {
    pub total: LineCounts,
    pub lines: BTreeMap<u32, LineCounts>,
    /// Whether this nvdisasm marks spills at all (13.x from the CUDA wheels does; the one bundled
    /// with Triton 3.x does not).
    pub marks_spills: bool,
}

/// Counts the instructions of `sass` per line of `file`. An instruction inlined from elsewhere
/// (Triton's standard library, a header) counts for the innermost line of `file` it was called
/// from; one with no line of `file` at all counts only in the total.
pub fn line_profile(sass: &str, file: &str) -> LineProfile {
    let mut profile = LineProfile::default();
    let mut current: Option<u32> = None;
    // nvdisasm writes an inlining chain as consecutive `//##` lines, innermost first; the first
    // line of `file` in a chain wins.
    let mut in_chain = false;
    for line in sass.lines() {
        let trimmed = line.trim_start();
        if let Some(location) = trimmed.strip_prefix("//##") {
            if !in_chain {
                current = None;
            }
            in_chain = true;
            if current.is_none() {
                current = line_of(location, file);
            }
            continue;
        }
        in_chain = false;
        let Some(opcode) = opcode(trimmed) else { continue };
        let spill = trimmed.contains("SpillRefill");
        profile.marks_spills |= spill;
        let (store, load) = (opcode.starts_with("STL"), opcode.starts_with("LDL"));
        let counts = LineCounts {
            instructions: 1,
            spill_stores: (spill && store) as u32,
            spill_loads: (spill && load) as u32,
            local_stores: store as u32,
            local_loads: load as u32,
        };
        add(&mut profile.total, counts);
        if let Some(number) = current {
            add(profile.lines.entry(number).or_default(), counts);
        }
    }
    profile
}

fn add(into: &mut LineCounts, counts: LineCounts) {
    into.instructions += counts.instructions;
    into.spill_stores += counts.spill_stores;
    into.spill_loads += counts.spill_loads;
    into.local_stores += counts.local_stores;
    into.local_loads += counts.local_loads;
}

/// The first line of `file` in ` File "a.py", line 15 inlined at "b.py", line 31`.
fn line_of(location: &str, file: &str) -> Option<u32> {
    let mut rest = location;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let end = after.find('"')?;
        let (name, tail) = (&after[..end], &after[end + 1..]);
        let number = tail.trim_start().strip_prefix(',')?.trim_start().strip_prefix("line")?.trim_start();
        let digits = number.find(|c: char| !c.is_ascii_digit()).unwrap_or(number.len());
        if name == file {
            return number[..digits].parse().ok();
        }
        rest = &number[digits..];
    }
    None
}

/// The opcode of an instruction line (`/*0090*/  @!P0 STL [R1+0xc0], R21 ;`), skipping its
/// predicate; `None` for labels, directives and comments.
fn opcode(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("/*")?;
    let (address, rest) = rest.split_once("*/")?;
    if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let first = words.next()?;
    let opcode = if first.starts_with('@') { words.next()? } else { first };
    Some(opcode.trim_end_matches(';'))
}

/// One line worth pointing at, with what to say there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHint {
    /// 1-based.
    pub line: u32,
    pub message: String,
}

/// Lines that spill (biggest first, at most `MAX_SPILL_LINES`) and the hot spots (the lines with
/// the most instructions, when one holds at least a tenth of the kernel), each said once per line,
/// in line order. `of` names what was compiled (`sm_90`, a Triton config). When this nvdisasm
/// does not mark spills and ptxas said the kernel `spills`, the lines with local-memory traffic
/// are named instead, as such.
pub fn hints(profile: &LineProfile, of: &str, spills: bool) -> Vec<LineHint> {
    const MAX_SPILL_LINES: usize = 10;
    const HOT_SPOTS: usize = 3;
    let total = profile.total.instructions.max(1);
    let unmarked = spills && !profile.marks_spills;
    let traffic = |c: &LineCounts| {
        if unmarked {
            (c.local_stores, c.local_loads)
        } else {
            (c.spill_stores, c.spill_loads)
        }
    };
    let mut spilling: Vec<(&u32, &LineCounts)> = profile
        .lines
        .iter()
        .filter(|(_, c)| {
            let (stores, loads) = traffic(c);
            stores + loads > 0
        })
        .collect();
    spilling.sort_by_key(|(line, c)| {
        let (stores, loads) = traffic(c);
        (std::cmp::Reverse(stores + loads), **line)
    });
    spilling.truncate(MAX_SPILL_LINES);
    let mut hot: Vec<(&u32, &LineCounts)> =
        profile.lines.iter().filter(|(_, c)| c.instructions * 10 >= total && profile.lines.len() > 1).collect();
    hot.sort_by_key(|(line, c)| (std::cmp::Reverse(c.instructions), **line));
    hot.truncate(HOT_SPOTS);
    let (what_store, what_load) = if unmarked { ("local store", "local load") } else { ("spill store", "spill load") };
    let (all_stores, all_loads) = traffic(&profile.total);
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (line, c) in spilling {
        let (stores, loads) = traffic(c);
        let mut parts = Vec::new();
        if stores > 0 {
            parts.push(plural(stores, what_store));
        }
        if loads > 0 {
            parts.push(plural(loads, what_load));
        }
        let of_all = format!("of the kernel's {} and {}", plural(all_stores, what_store), plural(all_loads, what_load));
        let why = if unmarked {
            "the kernel spills, and this nvdisasm does not mark which local-memory accesses are spills (a newer one, \
             `pip install nvidia-cuda-nvdisasm`, does)"
        } else {
            "registers spilled to local memory"
        };
        out.entry(*line)
            .or_default()
            .push(format!("{} in the SASS come from this line ({of_all}): {why}", parts.join(" and ")));
    }
    for (line, c) in hot {
        out.entry(*line).or_default().push(format!(
            "hot spot: {:.0}% of the kernel's SASS instructions ({} of {}) come from this line",
            100.0 * c.instructions as f64 / total as f64,
            c.instructions,
            profile.total.instructions
        ));
    }
    out.into_iter().map(|(line, parts)| LineHint { line, message: format!("{} — {of}", parts.join("; ")) }).collect()
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SassError {
    #[error(
        "no SASS: nvdisasm was not found; install it (`pip install nvidia-cuda-nvdisasm`) or a CUDA toolkit, next to \
         the ptxas in use"
    )]
    NoNvdisasm,
    #[error("could not run {path}: {error}")]
    Spawn { path: String, error: String },
    #[error("nvdisasm failed: {0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

/// The SASS of a cubin, with line info (`nvdisasm -c -gi`); `Cancelled` kills nvdisasm.
pub fn disassemble(nvdisasm: &Path, cubin: &[u8], cancel: &Cancel) -> Result<String, SassError> {
    let spawn_error =
        |error: std::io::Error| SassError::Spawn { path: nvdisasm.display().to_string(), error: error.to_string() };
    let scratch = Scratch::new().map_err(spawn_error)?;
    let input = scratch.path("kernel.cubin");
    std::fs::write(&input, cubin).map_err(spawn_error)?;
    let mut command = Command::new(nvdisasm);
    command.args(["-c", "-gi"]).arg(&input);
    let finished = scratch.run(command, cancel).map_err(spawn_error)?.ok_or(SassError::Cancelled)?;
    if !finished.success {
        return Err(SassError::Failed(finished.stderr.trim().chars().take(2000).collect()));
    }
    Ok(finished.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    // The shape nvdisasm -c -gi prints (addresses, predicates, spill marks, an inlining chain),
    // written for the test.
    const SASS: &str = r#"
	.target	sm_90
//--------------------- .text.k --------------------------
k:
	//## File "/w/k.py", line 3
        /*0000*/                   LDC R1, c[0x0][0x28] ;
        /*0010*/                   S2R R0, SR_TID.X ;
	//## File "/w/k.py", line 5
        /*0020*/                   STL [R1+0xc0], R21                             (*"SpillRefill"*);
        /*0030*/                   STL.64 [R1+0x8], R4 ;
.L_x_1:
        /*0040*/              @!P0 LDL.LU R6, [R1+0x228]                       (*"SpillRefill"*);
	//## File "/venv/triton/language/standard.py", line 50 inlined at "/w/k.py", line 9
	//## File "/w/k.py", line 9 inlined at "/w/k.py", line 12
        /*0050*/                   MUFU.EX2 R3, R2 ;
	//## File "/other.h", line 7
        /*0060*/                   EXIT ;
"#;

    #[test]
    fn instructions_count_for_the_innermost_line_of_the_file() {
        let profile = line_profile(SASS, "/w/k.py");
        assert_eq!(
            profile.total,
            LineCounts { instructions: 7, spill_stores: 1, spill_loads: 1, local_stores: 2, local_loads: 1 }
        );
        assert!(profile.marks_spills);
        let lines: Vec<(u32, u32, u32, u32)> =
            profile.lines.iter().map(|(l, c)| (*l, c.instructions, c.spill_stores, c.spill_loads)).collect();
        // Line 5: a marked spill store, an unmarked local store (a local array), a spill load
        // behind a predicate; line 9 from the inlined chain; the header's EXIT counts nowhere.
        assert_eq!(lines, vec![(3, 2, 0, 0), (5, 3, 1, 1), (9, 1, 0, 0)]);
    }

    #[test]
    fn hints_name_spilling_lines_and_hot_spots_once_per_line() {
        let profile = line_profile(SASS, "/w/k.py");
        let shown: String =
            hints(&profile, "sm_90", true).iter().map(|h| format!("{}: {}\n", h.line, h.message)).collect();
        expect![[r#"
            3: hot spot: 29% of the kernel's SASS instructions (2 of 7) come from this line — sm_90
            5: 1 spill store and 1 spill load in the SASS come from this line (of the kernel's 1 spill store and 1 spill load): registers spilled to local memory; hot spot: 43% of the kernel's SASS instructions (3 of 7) come from this line — sm_90
            9: hot spot: 14% of the kernel's SASS instructions (1 of 7) come from this line — sm_90
        "#]]
        .assert_eq(&shown);
        // A kernel on one line has no hot spot worth the name.
        let one = line_profile("//## File \"/w/k.py\", line 3\n /*0000*/ EXIT ;\n", "/w/k.py");
        assert!(hints(&one, "sm_90", false).is_empty());
    }

    #[test]
    fn without_spill_marks_local_traffic_is_named_as_such() {
        let unmarked = SASS.replace("(*\"SpillRefill\"*)", "");
        let profile = line_profile(&unmarked, "/w/k.py");
        assert!(!profile.marks_spills);
        let spilled = hints(&profile, "sm_90", true);
        let line5 = spilled.iter().find(|h| h.line == 5).unwrap();
        assert!(line5.message.starts_with("2 local stores and 1 local load in the SASS"), "{}", line5.message);
        assert!(line5.message.contains("does not mark which local-memory accesses are spills"), "{}", line5.message);
        // A kernel that does not spill: its local arrays are no news.
        assert!(hints(&profile, "sm_90", false).iter().all(|h| h.message.starts_with("hot spot")));
    }

    #[test]
    fn not_instructions() {
        for line in ["/*0000*/", "/* comment */ X", ".L_x_1:", "/*00zz*/ EXIT ;", "//## File"] {
            assert_eq!(opcode(line.trim_start()), None, "{line}");
        }
        assert_eq!(opcode("/*0a0*/ @P1 BRA `(.L_x_2) ;"), Some("BRA"));
        assert_eq!(line_of(r#" File "/w/k.py", line"#, "/w/k.py"), None);
        assert_eq!(line_of(r#" File "/w/k.py, line 3"#, "/w/k.py"), None);
    }
}
