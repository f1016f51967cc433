//! The compiler's intermediate forms a user can open beside a kernel: Triton's TTIR, TTGIR and
//! LLVM IR, and the PTX and SASS of CUDA and Triton kernels alike.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrKind {
    Ttir,
    Ttgir,
    Llir,
    Ptx,
    Sass,
}

impl IrKind {
    pub const ALL: [IrKind; 5] = [IrKind::Ttir, IrKind::Ttgir, IrKind::Llir, IrKind::Ptx, IrKind::Sass];
    /// What a CUDA kernel has: NVRTC makes PTX, ptxas and nvdisasm the SASS.
    pub const CUDA: [IrKind; 2] = [IrKind::Ptx, IrKind::Sass];

    pub fn name(self) -> &'static str {
        match self {
            IrKind::Ttir => "ttir",
            IrKind::Ttgir => "ttgir",
            IrKind::Llir => "llir",
            IrKind::Ptx => "ptx",
            IrKind::Sass => "sass",
        }
    }

    pub fn parse(name: &str) -> Option<IrKind> {
        IrKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The editor language of the text (VS Code and Neovim know `mlir` and `llvm` from extensions).
    pub fn language_id(self) -> &'static str {
        match self {
            IrKind::Ttir | IrKind::Ttgir => "mlir",
            IrKind::Llir => "llvm",
            IrKind::Ptx => "ptx",
            IrKind::Sass => "sass",
        }
    }

    /// The file extension the text is written under.
    pub fn extension(self) -> &'static str {
        match self {
            IrKind::Ttir => "ttir.mlir",
            IrKind::Ttgir => "ttgir.mlir",
            IrKind::Llir => "ll",
            IrKind::Ptx => "ptx",
            IrKind::Sass => "sass",
        }
    }
}

impl std::fmt::Display for IrKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in IrKind::ALL {
            assert_eq!(IrKind::parse(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        assert_eq!(IrKind::parse("PTX"), None);
        assert!(IrKind::CUDA.iter().all(|k| IrKind::ALL.contains(k)));
    }
}
