//! The user's own modules: `from model import GPT` where `model.py` is in the workspace, open or
//! not. A set of parsed files, found from a document's imports by Python's rules (the importing
//! file's folder, then the workspace roots; `pkg/__init__.py` or `mod.py`; relative imports from
//! the file's package), read once per load and never executed.
//!
//! The set is immutable: a reload builds a new one from fresh parses, so nothing worked out against
//! an old version of a file survives it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tree_sitter::{Node, Tree};

use super::infer::ModuleValues;
use crate::parse::{self, Language};

/// Bounds on one load, so that a huge or odd workspace cannot stall the server.
pub const MAX_FILES: usize = 256;
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// How many imports deep the loader follows from an open document.
pub const MAX_DEPTH: usize = 3;

#[derive(Default)]
pub struct UserModules {
    files: HashMap<PathBuf, Arc<ModuleValues>>,
    roots: Vec<PathBuf>,
}

impl std::fmt::Debug for UserModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserModules").field("files", &self.files.len()).field("roots", &self.roots).finish()
    }
}

impl UserModules {
    /// The same files with the same texts under the same roots: loading again found nothing new,
    /// so the value types worked out against `self` still hold.
    pub fn same_as(&self, other: &UserModules) -> bool {
        self.roots == other.roots
            && self.files.len() == other.files.len()
            && self.files.iter().all(|(path, m)| other.files.get(path).is_some_and(|o| o.text == m.text))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn file(&self, path: &Path) -> Option<&Arc<ModuleValues>> {
        self.files.get(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.keys()
    }

    /// The workspace file an import target names, and the attribute path left after it:
    /// `model.GPT` from `train.py` is (`model.py`, [`GPT`]).
    pub fn resolve(&self, from: &Path, target: &str) -> Option<(PathBuf, Vec<String>)> {
        candidates(&self.roots, from, target).into_iter().find(|(path, _)| self.files.contains_key(path))
    }
}

/// The files an import target may name, most likely first, each with the attribute path left.
pub fn candidates(roots: &[PathBuf], from: &Path, target: &str) -> Vec<(PathBuf, Vec<String>)> {
    let dots = target.chars().take_while(|c| *c == '.').count();
    let parts: Vec<&str> = target[dots..].split('.').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| !is_identifier(p)) {
        return Vec::new();
    }
    let mut bases: Vec<PathBuf> = Vec::new();
    if dots > 0 {
        // `from .model import GPT`: one dot is the file's own package, each more goes up one.
        let mut base = from.parent().map(Path::to_path_buf);
        for _ in 1..dots {
            base = base.and_then(|b| b.parent().map(Path::to_path_buf));
        }
        bases.extend(base);
    } else {
        bases.extend(from.parent().map(Path::to_path_buf));
        for root in roots {
            if !bases.contains(root) {
                bases.push(root.clone());
            }
        }
    }
    let mut out = Vec::new();
    for base in &bases {
        for used in (1..=parts.len()).rev() {
            let mut dir = base.clone();
            for part in &parts[..used - 1] {
                dir.push(part);
            }
            let rest: Vec<String> = parts[used..].iter().map(|p| p.to_string()).collect();
            out.push((dir.join(format!("{}.py", parts[used - 1])), rest.clone()));
            out.push((dir.join(parts[used - 1]).join("__init__.py"), rest));
        }
        if dots > 0 {
            // `from . import model`: the package itself, when `model` is not a file of it.
            out.push((base.join("__init__.py"), parts.iter().map(|p| p.to_string()).collect()));
        }
    }
    out
}

fn is_identifier(part: &str) -> bool {
    let mut chars = part.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The module-level import targets of a Python file: `import a.b` gives `a.b`, `from a import b`
/// gives `a.b` (it may be a submodule), `from .m import x` gives `.m.x`.
pub fn import_targets(root: Node, src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "import_statement" => {
                let mut walker = node.walk();
                for item in node.children_by_field_name("name", &mut walker) {
                    let name =
                        if item.kind() == "aliased_import" { item.child_by_field_name("name") } else { Some(item) };
                    if let Some(name) = name {
                        out.push(text(src, name).to_string());
                    }
                }
            }
            "import_from_statement" => {
                let Some(module) = node.child_by_field_name("module_name") else { continue };
                let module = text(src, module).to_string();
                let mut walker = node.walk();
                for item in node.children_by_field_name("name", &mut walker) {
                    let name =
                        if item.kind() == "aliased_import" { item.child_by_field_name("name") } else { Some(item) };
                    if let Some(name) = name {
                        let sep = if module.ends_with('.') { "" } else { "." };
                        out.push(format!("{module}{sep}{}", text(src, name)));
                    }
                }
            }
            // Imports inside functions and classes count too; bodies of other statements are walked.
            _ => {
                let mut walker = node.walk();
                stack.extend(node.named_children(&mut walker));
            }
        }
    }
    out
}

fn text<'s>(src: &'s str, node: Node) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// Reads what a load needs: the text of a file, or `None` when it is missing, too big or not text.
pub trait Reader {
    fn read(&self, path: &Path) -> Option<String>;
}

/// The file system, bounded by `MAX_FILE_BYTES`.
pub struct Disk;

impl Reader for Disk {
    fn read(&self, path: &Path) -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return None;
        }
        std::fs::read_to_string(path).ok()
    }
}

/// An open document a load starts from, with the tree the editor's copy already has (a seed is
/// never parsed again: a 20,000-line file's second tree would double the server's memory).
pub struct Seed {
    pub path: PathBuf,
    pub text: Arc<str>,
    pub tree: Tree,
}

/// Loads the workspace modules the `seeds` (open documents) import, following imports
/// `MAX_DEPTH` deep. `framework` says which import roots are framework packages, which are never
/// looked for on disk. Blocking file I/O: run it off the request loop.
pub fn load(roots: &[PathBuf], seeds: &[Seed], framework: &dyn Fn(&str) -> bool, reader: &dyn Reader) -> UserModules {
    let mut files: HashMap<PathBuf, Arc<ModuleValues>> = HashMap::new();
    let mut tried: HashSet<PathBuf> = HashSet::new();
    let mut queue: VecDeque<(PathBuf, Arc<str>, Tree, usize)> =
        seeds.iter().map(|s| (s.path.clone(), s.text.clone(), s.tree.clone(), 0)).collect();
    while let Some((path, text, tree, depth)) = queue.pop_front() {
        if depth >= MAX_DEPTH {
            continue;
        }
        for target in import_targets(tree.root_node(), &text) {
            let root = target.split('.').next().unwrap_or("");
            if !target.starts_with('.') && framework(root) {
                continue;
            }
            for (candidate, _) in candidates(roots, &path, &target) {
                if files.contains_key(&candidate) {
                    break;
                }
                if files.len() >= MAX_FILES || !tried.insert(candidate.clone()) {
                    continue;
                }
                // An open document is read as the editor has it, saved or not.
                let open = seeds.iter().find(|s| s.path == candidate).map(|s| (s.text.clone(), s.tree.clone()));
                let from_disk = || {
                    let text: Arc<str> = Arc::from(reader.read(&candidate)?);
                    let tree = parse::parse_str(Language::Python, &text)?;
                    Some((text, tree))
                };
                let Some((found, tree)) = open.or_else(from_disk) else { continue };
                let values = ModuleValues::new(found.clone(), tree.clone(), &[])
                    .in_workspace(Some(Arc::from(candidate.as_path())), None);
                files.insert(candidate.clone(), Arc::new(values));
                queue.push_back((candidate, found, tree, depth + 1));
                break;
            }
        }
    }
    UserModules { files, roots: roots.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(Vec<(&'static str, &'static str)>);

    impl Reader for Files {
        fn read(&self, path: &Path) -> Option<String> {
            self.0.iter().find(|(p, _)| Path::new(p) == path).map(|(_, t)| t.to_string())
        }
    }

    fn seed(path: &str, text: &str) -> Seed {
        let tree = parse::parse_str(Language::Python, text).expect("parses");
        Seed { path: PathBuf::from(path), text: Arc::from(text), tree }
    }

    fn names(c: &[(PathBuf, Vec<String>)]) -> Vec<String> {
        c.iter().map(|(p, rest)| format!("{} {}", p.display(), rest.join("."))).collect()
    }

    #[test]
    fn candidates_follow_pythons_rules() {
        let roots = vec![PathBuf::from("/w")];
        let got = names(&candidates(&roots, Path::new("/w/src/train.py"), "model.GPT"));
        assert_eq!(
            got[..4],
            [
                "/w/src/model/GPT.py ",
                "/w/src/model/GPT/__init__.py ",
                "/w/src/model.py GPT",
                "/w/src/model/__init__.py GPT"
            ]
        );
        assert!(got.contains(&"/w/model.py GPT".to_string()));
        let got = names(&candidates(&roots, Path::new("/w/pkg/sub/a.py"), "..util.f"));
        assert_eq!(got[2], "/w/pkg/util.py f");
        let got = names(&candidates(&roots, Path::new("/w/pkg/a.py"), ".model"));
        assert_eq!(got, ["/w/pkg/model.py ", "/w/pkg/model/__init__.py ", "/w/pkg/__init__.py model"]);
        assert!(candidates(&roots, Path::new("/w/a.py"), "a b.c").is_empty());
    }

    #[test]
    fn load_reads_imports_transitively_and_skips_frameworks() {
        let reader = Files(vec![
            ("/w/model.py", "import torch\nfrom layers import Block\nclass GPT: pass\n"),
            ("/w/layers.py", "class Block: pass\n"),
            ("/w/torch.py", "raise SystemExit\n"),
        ]);
        let seeds = vec![seed("/w/train.py", "import torch\nfrom model import GPT\n")];
        let set = load(&[PathBuf::from("/w")], &seeds, &|root| root == "torch", &reader);
        let mut paths: Vec<String> = set.paths().map(|p| p.display().to_string()).collect();
        paths.sort();
        assert_eq!(paths, ["/w/layers.py", "/w/model.py"]);
        assert_eq!(set.resolve(Path::new("/w/train.py"), "model.GPT").map(|(_, r)| r), Some(vec!["GPT".to_string()]));
        assert_eq!(set.resolve(Path::new("/w/train.py"), "missing.X"), None);
    }

    #[test]
    fn open_documents_are_read_as_the_editor_has_them() {
        let reader = Files(vec![("/w/model.py", "class Old: pass\n")]);
        let seeds = vec![seed("/w/train.py", "from model import GPT\n"), seed("/w/model.py", "class GPT: pass\n")];
        let set = load(&[PathBuf::from("/w")], &seeds, &|_| false, &reader);
        let model = set.file(Path::new("/w/model.py")).expect("the open model.py is in the set");
        assert!(model.text.contains("class GPT"));
    }

    #[test]
    fn load_is_bounded() {
        // A chain of imports deeper than MAX_DEPTH stops there.
        let reader = Files(vec![
            ("/w/a.py", "import b\n"),
            ("/w/b.py", "import c\n"),
            ("/w/c.py", "import d\n"),
            ("/w/d.py", "x = 1\n"),
        ]);
        let seeds = vec![seed("/w/main.py", "import a\n")];
        let set = load(&[PathBuf::from("/w")], &seeds, &|_| false, &reader);
        assert_eq!(set.len(), MAX_DEPTH);
    }
}
