//! What a Triton kernel's analysis says, per configuration: the worker's registers, spills and
//! shared memory, theoretical occupancy from the same model as CUDA kernels (a program of
//! `num_warps` warps is a block of `32 * num_warps` threads), and the compile errors placed on the
//! user's lines. Pure: the compile itself is `triton_worker`'s.

use std::ops::Range;

use serde::Serialize;

use super::analyze::{bytes, Severity};
use super::document::{MessageSource, PlacedMessage};
use super::occupancy::{self, KernelResources, Limiter};
use super::triton::CompileConfig;
use super::triton_worker::{CompileFailure, Compiled};
use crate::ide::markdown::{code, escape_markdown as esc};

/// One configuration's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigResult {
    pub config: CompileConfig,
    #[serde(flatten)]
    pub outcome: ConfigOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ConfigOutcome {
    Compiled(Box<Resources>),
    Failed(CompileFailure),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    #[serde(flatten)]
    pub compiled: Compiled,
    pub occupancy: Option<f64>,
    pub active_blocks: Option<u32>,
    pub limiter: Option<Limiter>,
    pub occupancy_problem: Option<String>,
}

impl Resources {
    pub fn new(compiled: Compiled) -> Resources {
        let resources = KernelResources {
            registers_per_thread: compiled.registers,
            static_shared_bytes: 0,
            // Triton asks for its shared memory at launch.
            dynamic_shared_bytes: compiled.shared_bytes,
        };
        let limits = occupancy::parse_arch(&compiled.arch).and_then(occupancy::arch_limits);
        let block = compiled.num_warps.saturating_mul(32);
        let (occupancy, active_blocks, limiter, problem) = match limits {
            None => (None, None, None, Some(format!("no occupancy model for {}", compiled.arch))),
            Some(limits) => match occupancy::occupancy(limits, &resources, block) {
                Ok(o) => (Some(o.occupancy), Some(o.active_blocks), Some(o.limiter), None),
                Err(err) => (None, None, None, Some(err.to_string())),
            },
        };
        Resources { compiled, occupancy, active_blocks, limiter, occupancy_problem: problem }
    }

    fn spilled(&self) -> u32 {
        self.compiled.spill_stores + self.compiled.spill_loads
    }

    fn occupancy_text(&self) -> String {
        match (self.occupancy, self.limiter) {
            (Some(o), Some(l)) => format!("occupancy {:.0}% ({})", o * 100.0, l.describe()),
            _ => "occupancy ?".to_string(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} · {} regs · {} spill · {} smem · {}",
            self.compiled.arch,
            self.compiled.registers,
            bytes(self.spilled()),
            bytes(self.compiled.shared_bytes),
            self.occupancy_text()
        )
    }
}

/// A configuration that compiled, with its resources.
type Ranked<'a> = (&'a CompileConfig, &'a Resources);

/// Every configuration of one Triton kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TritonAnalysis {
    pub name: String,
    pub configs: Vec<ConfigResult>,
    /// Wall time of the round trip to the worker, or 0 when answered from the cache.
    pub compile_ms: f64,
    pub cached: bool,
    /// Imports of helpers that could not be followed, and the like.
    pub notes: Vec<String>,
}

impl TritonAnalysis {
    fn compiled(&self) -> impl Iterator<Item = (&CompileConfig, &Resources)> {
        self.configs.iter().filter_map(|c| match &c.outcome {
            ConfigOutcome::Compiled(r) => Some((&c.config, r.as_ref())),
            ConfigOutcome::Failed(_) => None,
        })
    }

    pub fn first_failure(&self) -> Option<&CompileFailure> {
        self.configs.iter().find_map(|c| match &c.outcome {
            ConfigOutcome::Failed(f) => Some(f),
            ConfigOutcome::Compiled(_) => None,
        })
    }

    /// The best configuration by occupancy then fewest spills, and the worst the other way.
    fn best_and_worst(&self) -> Option<(Ranked<'_>, Ranked<'_>)> {
        let key = |r: &Resources| (r.occupancy.unwrap_or(0.0), std::cmp::Reverse(r.spilled()));
        let cmp = |a: &Ranked<'_>, b: &Ranked<'_>| key(a.1).partial_cmp(&key(b.1)).unwrap_or(std::cmp::Ordering::Equal);
        let best = self.compiled().max_by(cmp)?;
        let worst = self.compiled().min_by(cmp)?;
        Some((best, worst))
    }

    /// The configuration whose SASS the per-line hints read: the one that spills most, else the
    /// best; by index in `configs`.
    pub fn profiled(&self) -> Option<usize> {
        let compiled = || {
            self.configs.iter().enumerate().filter_map(|(i, c)| match &c.outcome {
                ConfigOutcome::Compiled(r) => Some((i, r.as_ref())),
                ConfigOutcome::Failed(_) => None,
            })
        };
        let spilling = compiled().filter(|(_, r)| r.spilled() > 0).max_by_key(|(i, r)| (r.spilled(), usize::MAX - i));
        if let Some((i, _)) = spilling {
            return Some(i);
        }
        let ((best, _), _) = self.best_and_worst()?;
        self.configs.iter().position(|c| std::ptr::eq(&c.config, best))
    }

    /// One line for the lens.
    pub fn summary(&self) -> String {
        if let Some(failure) = self.first_failure().filter(|_| self.compiled().next().is_none()) {
            return format!("✗ {}", failure.error.lines().next().unwrap_or_default());
        }
        let count = self.configs.len();
        match self.best_and_worst() {
            None => "✗ nothing compiled".to_string(),
            Some(((_, only), _)) if count == 1 => only.summary(),
            Some(((best_config, best), (worst_config, worst))) => {
                let failed = self.configs.len() - self.compiled().count();
                let failed = if failed > 0 { format!(" · {failed} failed") } else { String::new() };
                format!(
                    "{count} configs · best {} {} spill ({}) · worst {} {} spill ({}){failed}",
                    percent(best.occupancy),
                    bytes(best.spilled()),
                    best_config.label(),
                    percent(worst.occupancy),
                    bytes(worst.spilled()),
                    worst_config.label()
                )
            }
        }
    }

    /// The hover: every configuration side by side, what was assumed, and warnings.
    pub fn markdown(&self) -> String {
        let arch = self.compiled().next().map(|(_, r)| r.compiled.arch.clone()).unwrap_or_default();
        let mut out = format!("**{}** (Triton) on {}: {}\n\n", esc(&self.name), code(&arch), esc(&self.summary()));
        out += "| config | regs | spill st/ld | shared | occupancy |\n|---|---|---|---|---|\n";
        for result in &self.configs {
            let label = esc(&result.config.label());
            match &result.outcome {
                ConfigOutcome::Compiled(r) => {
                    out += &format!(
                        "| {label} | {} | {} / {} | {} | {} |\n",
                        r.compiled.registers,
                        bytes(r.compiled.spill_stores),
                        bytes(r.compiled.spill_loads),
                        bytes(r.compiled.shared_bytes),
                        esc(&r.occupancy_text())
                    );
                }
                ConfigOutcome::Failed(f) => {
                    out += &format!("| {label} | ✗ {} | | | |\n", esc(f.error.lines().next().unwrap_or_default()));
                }
            }
        }
        let mut notes: Vec<String> = self.notes.clone();
        for result in &self.configs {
            for assumed in &result.config.assumed {
                let note = format!("assumed: {assumed}");
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            if let ConfigOutcome::Compiled(r) = &result.outcome {
                for warning in &r.compiled.warnings {
                    let note = format!("⚠ {}", warning.lines().next().unwrap_or_default());
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
        }
        if !notes.is_empty() {
            out += "\n";
        }
        for note in notes {
            out += &format!("- {}\n", esc(&note));
        }
        let version = self.compiled().next().map(|(_, r)| r.compiled.triton.clone()).unwrap_or_default();
        let when =
            if self.cached { "from the cache".to_string() } else { format!("compiled in {:.0} ms", self.compile_ms) };
        out += &format!("\nTriton {} · {when}\n", esc(&version));
        out
    }

    /// Compile errors on the document's lines.
    pub fn messages(&self, text: &str) -> Vec<PlacedMessage> {
        let mut out: Vec<PlacedMessage> = Vec::new();
        for result in &self.configs {
            let ConfigOutcome::Failed(f) = &result.outcome else { continue };
            let Some(line) = f.line else { continue };
            let range = place(text, line, f.column);
            let message = format!("{} (Triton, {})", f.error.lines().next().unwrap_or_default(), result.config.label());
            if !out.iter().any(|m| m.range == range) {
                out.push(PlacedMessage { range, severity: Severity::Error, message, source: MessageSource::Triton });
            }
        }
        out
    }

    /// One JSON object per configuration, in the shape of the CUDA analysis plus Triton's own
    /// fields: what `tensorlens kernel analyze FILE.py --json` prints.
    pub fn reports(&self, file: &str, line: usize) -> Vec<serde_json::Value> {
        self.configs
            .iter()
            .enumerate()
            .map(|(index, result)| {
                let constexprs: serde_json::Map<String, serde_json::Value> = result
                    .config
                    .constexprs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                    .collect();
                // The types the compile took for the runtime parameters, in order: [name, type].
                let signature: Vec<[&str; 2]> = result
                    .config
                    .signature
                    .iter()
                    .filter(|(_, ty)| ty != "constexpr")
                    .map(|(k, ty)| [k.as_str(), ty.as_str()])
                    .collect();
                let mut value = serde_json::json!({
                    "signature": signature,
                    "file": file,
                    "line": line,
                    "name": self.name,
                    "language": "triton",
                    "config": index,
                    "constexprs": constexprs,
                    "num_warps": result.config.num_warps,
                    "num_stages": result.config.num_stages,
                    "assumed": result.config.assumed,
                    "cached": self.cached,
                });
                match &result.outcome {
                    ConfigOutcome::Compiled(r) => {
                        let c = &r.compiled;
                        let fields = serde_json::json!({
                            "arch": c.arch, "registers": c.registers, "spill_stores": c.spill_stores,
                            "spill_loads": c.spill_loads, "shared_bytes": c.shared_bytes, "local_bytes": c.local_bytes,
                            "occupancy": r.occupancy, "active_blocks": r.active_blocks, "limiter": r.limiter,
                            "occupancy_problem": r.occupancy_problem, "warnings": c.warnings,
                            "compile_ms": c.compile_ms, "triton_ms": c.triton_ms, "triton": c.triton,
                            "summary": r.summary(),
                        });
                        merge(&mut value, fields);
                    }
                    ConfigOutcome::Failed(f) => {
                        let messages: Vec<serde_json::Value> = f
                            .line
                            .map(|l| serde_json::json!({ "line": l, "column": f.column, "severity": "error", "message": f.error }))
                            .into_iter()
                            .collect();
                        merge(&mut value, serde_json::json!({ "error": f.error, "stage": f.stage, "messages": messages }));
                    }
                }
                value
            })
            .collect()
    }
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn percent(occupancy: Option<f64>) -> String {
    occupancy.map_or("?%".to_string(), |o| format!("{:.0}%", o * 100.0))
}

/// The bytes of a 1-based line and column: from the column to the end of the word there, or the
/// line's text without its indentation.
pub fn place(text: &str, line: u32, column: Option<u32>) -> Range<usize> {
    let start = text.split_inclusive('\n').take(line.saturating_sub(1) as usize).map(str::len).sum::<usize>();
    let start = start.min(text.len());
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = &text[start..end];
    match column.map(|c| c.saturating_sub(1) as usize).filter(|&c| c < line_text.len() && line_text.is_char_boundary(c))
    {
        Some(col) => {
            let word =
                line_text[col..].find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(line_text.len() - col);
            start + col..start + col + word.max(1).min(line_text.len() - col)
        }
        None => start + (line_text.len() - line_text.trim_start().len())..end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::triton::{ConfigOrigin, Literal};

    fn compiled(registers: u32, spills: u32, warps: u32) -> Compiled {
        Compiled {
            name: "k".into(),
            arch: "sm_90".into(),
            num_warps: warps,
            num_stages: 3,
            registers,
            spill_stores: spills,
            spill_loads: spills,
            shared_bytes: 16384,
            local_bytes: spills,
            compile_ms: 100.0,
            triton_ms: Some(95.0),
            cache_hit: false,
            triton: "3.9.0".into(),
            ir: Default::default(),
            warnings: Vec::new(),
            launch: None,
        }
    }

    fn config(block: i64, warps: u32) -> CompileConfig {
        CompileConfig {
            origin: ConfigOrigin::Defaults,
            signature: vec![("x".into(), "*fp32".into())],
            constexprs: vec![("BLOCK".into(), Literal::Int(block))],
            num_warps: warps,
            num_stages: 3,
            assumed: vec!["x point to fp32".into()],
        }
    }

    #[test]
    fn configs_side_by_side_with_the_best_and_the_worst() {
        let analysis = TritonAnalysis {
            name: "k".into(),
            notes: Vec::new(),
            configs: vec![
                ConfigResult {
                    config: config(64, 4),
                    outcome: ConfigOutcome::Compiled(Box::new(Resources::new(compiled(32, 0, 4)))),
                },
                ConfigResult {
                    config: config(256, 4),
                    outcome: ConfigOutcome::Compiled(Box::new(Resources::new(compiled(255, 140, 4)))),
                },
                ConfigResult {
                    config: config(512, 4),
                    outcome: ConfigOutcome::Failed(CompileFailure {
                        stage: Some("frontend".into()),
                        error: "shape mismatch".into(),
                        line: Some(2),
                        column: Some(5),
                        function: None,
                    }),
                },
            ],
            compile_ms: 300.0,
            cached: false,
        };
        expect_test::expect!["3 configs · best 81% 0 B spill (BLOCK=64 num_warps=4 num_stages=3) · worst 12% 280 B spill (BLOCK=256 num_warps=4 num_stages=3) · 1 failed"]
            .assert_eq(&analysis.summary());
        let markdown = analysis.markdown();
        assert!(
            markdown.contains("| BLOCK=256 num_warps=4 num_stages=3 | 255 | 140 B / 140 B | 16 KiB |"),
            "{markdown}"
        );
        assert!(markdown.contains("✗ shape mismatch"), "{markdown}");
        assert!(markdown.contains("- assumed: x point to fp32"), "{markdown}");
        let text = "@triton.jit\ndef k(x):\n    y = tl.dot(a, b)\n";
        let messages = analysis.messages(text);
        assert_eq!(messages.len(), 1);
        assert_eq!(&text[messages[0].range.clone()], "k");
        let reports = analysis.reports("/w/k.py", 2);
        assert_eq!(reports[0]["registers"], 32);
        assert_eq!(reports[0]["constexprs"]["BLOCK"], 64);
        assert_eq!(reports[2]["error"], "shape mismatch");
        assert_eq!(reports[2]["messages"][0]["line"], 2);
    }

    #[test]
    fn places_land_on_the_word_or_the_line() {
        let text = "a\n    y = tl.dot(a, b)\n";
        assert_eq!(&text[place(text, 2, Some(9))], "tl");
        assert_eq!(&text[place(text, 2, None)], "y = tl.dot(a, b)");
        assert_eq!(place(text, 9, Some(3)), text.len()..text.len());
    }
}
