//! The built-in catalog is valid: every file parses with no unknown field, names are unique,
//! cross-references resolve, and each system the ecosystem overview names has a card.

use std::collections::HashMap;
use std::path::PathBuf;

use super::schema::{check_catalog, check_file, CatalogFile};
use super::Catalog;

fn catalog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

fn load_all() -> Vec<(String, Result<CatalogFile<'static>, String>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(catalog_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            (stem, toml::from_str::<CatalogFile>(&text).map(super::into_owned).map_err(|e| e.to_string()))
        })
        .collect()
}

#[test]
fn every_file_is_valid() {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for (stem, file) in load_all() {
        match file {
            Ok(file) => {
                problems.extend(check_file(&stem, &file).into_iter().map(|p| format!("{stem}.toml: {p}")));
                files.push(file);
            }
            Err(err) => problems.push(format!("{stem}.toml: {err}")),
        }
    }
    // Cross-references may point at harvested facts, which the built-in catalog holds.
    let builtin = Catalog::builtin();
    let known = |name: &str| builtin.lookup(name).is_some();
    problems.extend(check_catalog(&files, &known).into_iter().map(|(id, p)| format!("{id}.toml: {p}")));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn embedded_index_matches_the_files() {
    let catalog = Catalog::builtin();
    let on_disk: usize = load_all().into_iter().filter_map(|(_, f)| f.ok()).map(|f| f.symbols.len()).sum();
    let curated = catalog.symbols().filter(|(_, s)| s.is_curated()).count();
    assert_eq!(curated, on_disk, "rebuild: the embedded catalog is stale");
}

/// Every system the ecosystem overview names, by catalog id.
const OVERVIEW_SYSTEMS: &[&str] = &[
    "pytorch",
    "torchvision",
    "torch-hub",
    "tensorflow",
    "keras",
    "jax",
    "mlx",
    "lightning",
    "vllm",
    "tensorrt",
    "tensorrt-llm",
    "torch-tensorrt",
    "triton",
    "triton-viz",
    "triton-inference-server",
    "torch-compile",
    "torchscript",
    "onnx",
    "tf2onnx",
    "onnxruntime",
    "detectron2",
    "cuda",
    "cuda-runtime",
    "cuda-driver",
    "cudnn",
    "cublas",
    "cutlass",
    "cufft",
    "rocm-hip",
    "opencl",
    "coreml",
    "executorch",
    "tflite",
    "fastai",
    "wandb",
    "transformers",
    "datasets",
    "huggingface-hub",
    "aws-ec2",
    "sagemaker",
    "vertex-ai",
    "azure-ml",
    "deepspeed",
    "openai",
    "vast-ai",
    "lambda",
    "xla",
    "llvm",
    "mlir",
    "nvcc",
];

#[test]
fn every_overview_system_has_a_card() {
    let catalog = Catalog::builtin();
    let missing: Vec<&str> = OVERVIEW_SYSTEMS.iter().copied().filter(|id| catalog.system_by_id(id).is_none()).collect();
    assert!(missing.is_empty(), "no card for {missing:?}");
}

#[test]
fn symbol_counts_meet_the_floor() {
    let catalog = Catalog::builtin();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (idx, symbol) in catalog.symbols() {
        if symbol.is_curated() {
            *counts.entry(catalog.system(catalog.system_of(idx)).id.as_ref()).or_default() += 1;
        }
    }
    // Curated summaries per system, by how much of each system real code uses.
    let floors = [
        ("pytorch", 300),
        ("jax", 150),
        ("triton", 60),
        ("cublas", 60),
        ("cudnn", 60),
        ("onnxruntime", 60),
        ("transformers", 60),
    ];
    for (id, floor) in floors {
        assert!(counts.get(id).copied().unwrap_or(0) >= floor, "{id}: {:?} symbols, want {floor}", counts.get(id));
    }
    let sum = |ids: &[&str]| ids.iter().map(|id| counts.get(id).copied().unwrap_or(0)).sum::<usize>();
    assert!(sum(&["tensorflow", "keras"]) >= 150, "tensorflow + keras");
    assert!(sum(&["cuda-runtime", "cuda-driver", "cuda"]) >= 150, "CUDA runtime, driver and device built-ins");
    assert!(counts.values().sum::<usize>() >= 3000, "at least 3,000 curated summaries");
    // Systems with no code API of their own (Lambda, LLVM; XLA, whose Python face is JAX's
    // jax.stages and so JAX's symbols), only macros (NVCC), or a public API smaller than 20 names
    // (torch.hub has 8 functions in all) have what exists.
    let exempt = ["lambda", "llvm", "nvcc", "torch-hub", "xla"];
    for system in catalog.systems() {
        if exempt.contains(&system.id.as_ref()) {
            continue;
        }
        let n = counts.get(system.id.as_ref()).copied().unwrap_or(0);
        assert!(n >= 20, "{}: {n} symbols, want at least 20", system.id);
    }
}

#[test]
fn lookups() {
    let catalog = Catalog::builtin();
    let relu = catalog.lookup("torch.nn.functional.relu").expect("relu");
    assert_eq!(catalog.system(catalog.system_of(relu)).id, "pytorch");
    assert_eq!(catalog.lookup("tensorflow.matmul"), catalog.lookup("tensorflow.linalg.matmul"), "alias");
    let system_id = |idx: Option<u16>| idx.map(|i| catalog.system(i).id.clone());
    assert_eq!(system_id(catalog.python_system("torch.jit.script")).as_deref(), Some("torchscript"));
    assert_eq!(system_id(catalog.python_system("torch.nn.Whatever")).as_deref(), Some("pytorch"));
    assert_eq!(system_id(catalog.c_system("cublasFooBar")).as_deref(), Some("cublas"));
    assert_eq!(system_id(catalog.c_system("cuMemFoo")).as_deref(), Some("cuda-driver"));
    assert_eq!(system_id(catalog.c_system("cudaFoo")).as_deref(), Some("cuda-runtime"));
    assert_eq!(catalog.c_system("cudaless"), None);
    assert_eq!(system_id(catalog.header_system("cublas_v2.h")).as_deref(), Some("cublas"));
    assert_eq!(system_id(catalog.namespace_system("thrust")).as_deref(), Some("thrust"));
    assert!(catalog.knows_python_module("torch.nn.functional"));
    assert!(!catalog.knows_python_module("requests"));
}

#[test]
fn search_finds_matmul_everywhere() {
    let catalog = Catalog::builtin();
    let found: Vec<String> =
        super::search(&catalog, "matmul", 60).into_iter().map(|i| catalog.symbol(i).name.to_string()).collect();
    for want in ["torch.matmul", "jax.numpy.matmul", "tensorflow.linalg.matmul", "mlx.core.matmul"] {
        assert!(found.iter().any(|f| f == want), "{want} missing from {found:?}");
    }
    assert!(found.iter().any(|f| f.starts_with("cublas")), "no cuBLAS routine in {found:?}");
}

#[test]
fn user_files_override_and_report_problems() {
    let dir = std::env::temp_dir().join(format!("tensorlens-user-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mylib.toml"),
        "[system]\nid = \"mylib\"\nname = \"MyLib\"\ngroup = \"research\"\nmaintainer = \"us\"\nsummary = \"Our kernels.\"\ndocs = \"https://example.com\"\npython_modules = [\"mylib\"]\npart_of = \"pytorch\"\nrelated = [{ system = \"cuda\", how = \"calls it\" }, { system = \"nosuch\", how = \"x\" }]\n\n[[symbols]]\nname = \"mylib.fused_adam\"\nkind = \"function\"\nsummary = \"Our fused Adam step.\"\ndocs = \"https://example.com/fused_adam\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("broken.toml"), "[system]\nid = 3\n").unwrap();
    let (catalog, problems) = Catalog::with_user_dir(&dir);
    assert!(catalog.lookup("mylib.fused_adam").is_some());
    assert!(catalog.lookup("torch.matmul").is_some(), "built-in catalog still loaded");
    // Built-in systems may be named by `part_of` and `related`; an unknown one is a problem.
    assert_eq!(problems.len(), 2, "{problems:?}");
    let broken = problems.iter().find(|p| p.path.ends_with("broken.toml")).expect("broken.toml reported");
    assert!(broken.span.is_some());
    let unknown = problems.iter().find(|p| p.path.ends_with("mylib.toml")).expect("mylib.toml reported");
    assert_eq!(unknown.message, "related system \"nosuch\" is not a system");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn facts_merge_under_curated_words() {
    use super::index::{build, parse_facts, Record};
    let curated: CatalogFile = toml::from_str(
        "[system]\nid = \"lib\"\nname = \"Lib\"\ngroup = \"research\"\nmaintainer = \"m\"\nsummary = \"s\"\ndocs = \"https://lib.dev\"\npython_modules = [\"lib\"]\n\n[[symbols]]\nname = \"lib.add\"\nkind = \"function\"\nsummary = \"Adds, in our words.\"\ndocs = \"https://lib.dev/add\"\nequivalents = [\"lib.sub.plus\"]\n",
    )
    .unwrap();
    let (facts, problems) = parse_facts(concat!(
        "{\"package\": \"lib\", \"version\": \"1.2.3\", \"language\": \"python\"}\n",
        "{\"name\": \"lib.add\", \"kind\": \"function\", \"signature\": \"lib.add(a, b)\", \"docs\": \"https://lib.dev/x\"}\n",
        "{\"name\": \"lib.sub.plus\", \"kind\": \"function\", \"signature\": \"lib.sub.plus(a, b)\", \"docs\": \"https://lib.dev/plus\", \"aliases\": [\"lib.plus\"]}\n",
        "{\"name\": \"other.thing\", \"kind\": \"function\", \"docs\": \"https://other.dev\"}\n",
        "{\"name\": \"lib.bad\", \"kind\": \"gizmo\", \"docs\": \"https://lib.dev\"}\n",
        "{\"name\": \"lib.insecure\", \"kind\": \"function\", \"docs\": \"http://lib.dev\"}\n",
        "not json\n",
    ))
    .unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    let (blobs, report) = build(&[curated], &[facts], &[]);
    assert_eq!((report.curated, report.facts, report.facts_merged, report.facts_without_system), (1, 1, 1, 1));

    let offsets: Vec<usize> =
        blobs.offsets.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let records: Vec<Record> =
        offsets.windows(2).map(|w| postcard::from_bytes(&blobs.records[w[0]..w[1]]).unwrap()).collect();
    let names: Vec<&str> = records.iter().map(|r| r.symbol.name.as_ref()).collect();
    assert_eq!(names, ["lib.add", "lib.sub.plus"], "sorted by name");
    assert_eq!(records[0].symbol.signature.as_deref(), Some("lib.add(a, b)"), "a fact fills the curated signature");
    assert_eq!(records[0].symbol.summary, "Adds, in our words.", "curated words win");
    assert_eq!(records[1].symbol.source.as_deref(), Some("lib 1.2.3"));
    assert_eq!((records[0].equivalents.as_slice(), records[1].equivalents.as_slice()), (&[1u32][..], &[0u32][..]));
    let index: Vec<u32> = blobs.name_index.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    let listed: Vec<&str> = index
        .chunks(3)
        .map(|e| std::str::from_utf8(&blobs.names[e[0] as usize..(e[0] + e[1]) as usize]).unwrap())
        .collect();
    assert_eq!(listed, ["lib.add", "lib.plus", "lib.sub.plus"]);
}

#[test]
fn every_facts_file_parses() {
    let dir = catalog_dir().join("facts");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut problems = Vec::new();
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "jsonl")) {
        let text = std::fs::read_to_string(&path).unwrap();
        match super::index::parse_facts(&text) {
            Ok((file, bad)) => {
                problems.extend(bad.into_iter().map(|p| format!("{}: {p}", path.display())));
                // `<package>-<version>[.<system>].jsonl`: one package may hold several systems' headers.
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                let expected = format!("{}-{}", file.header.package.replace('-', "_"), file.header.version);
                assert!(
                    stem == expected || stem.starts_with(&format!("{expected}.")),
                    "{stem} is not named {expected}"
                );
            }
            Err(err) => problems.push(format!("{}: {err}", path.display())),
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn equivalence_groups_resolve() {
    // Every member of every operation in catalog/equivalents names a catalog symbol.
    let dir = catalog_dir().join("equivalents");
    let catalog = Catalog::builtin();
    let mut missing = Vec::new();
    let mut operations = 0;
    for path in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let file: super::index::OperationsFile = toml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for op in file.operations {
            operations += 1;
            assert!(op.members.len() >= 2, "operation {} has fewer than two members", op.name);
            missing
                .extend(op.members.iter().filter(|m| catalog.lookup(m).is_none()).map(|m| format!("{}: {m}", op.name)));
        }
    }
    assert!(missing.is_empty(), "{} members not in the catalog:\n{}", missing.len(), missing.join("\n"));
    assert!(operations >= 150, "{operations} operations, want at least 150");
}

#[test]
fn docs_links_stay_on_official_domains() {
    use super::schema::{official_domains, url_domain};
    let catalog = Catalog::builtin();
    let mut off = Vec::new();
    for (idx, symbol) in catalog.symbols() {
        let system = catalog.system(catalog.system_of(idx));
        let allowed = official_domains(system);
        match url_domain(&symbol.docs) {
            Some(domain) if allowed.contains(&domain) => {}
            other => {
                off.push(format!("{} ({}): {} on {other:?}, allowed {allowed:?}", symbol.name, system.id, symbol.docs))
            }
        }
    }
    assert!(off.is_empty(), "{} links off their system's official domains:\n{}", off.len(), off.join("\n"));
}

#[test]
fn url_domains() {
    use super::schema::url_domain;
    assert_eq!(url_domain("https://docs.nvidia.com/cuda/x.html#y"), Some("nvidia.com"));
    assert_eq!(url_domain("https://pytorch.org/docs"), Some("pytorch.org"));
    assert_eq!(url_domain("https://localhost:8080/x"), None);
    assert_eq!(url_domain("http://pytorch.org"), None);
}

#[test]
fn readme_example_user_file_is_valid() {
    // The complete example in catalog/README.md must load as it is written.
    let readme = std::fs::read_to_string(catalog_dir().join("README.md")).unwrap();
    let section = readme.split("## A complete user file").nth(1).expect("the README has the example");
    let example = section.split("```toml\n").nth(1).and_then(|s| s.split("```").next()).expect("a toml block");
    let dir = std::env::temp_dir().join(format!("tensorlens-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ourkernels.toml"), example).unwrap();
    let (catalog, problems) = Catalog::with_user_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let adam = catalog.lookup("ourkernels.fused_adam").expect("loaded");
    assert!(catalog.equivalents(adam).contains(&catalog.lookup("torch.optim.AdamW").unwrap()));
    assert_eq!(catalog.system(catalog.system_of(catalog.lookup("okLaunchFusedAdam").unwrap())).id, "ourkernels");
}

#[test]
fn reexports_become_aliases_of_their_target_in_any_file() {
    use super::index::{build, parse_facts, Record};
    let curated: CatalogFile = toml::from_str(
        "[system]\nid = \"lib\"\nname = \"Lib\"\ngroup = \"research\"\nmaintainer = \"m\"\nsummary = \"s\"\ndocs = \"https://lib.dev\"\npython_modules = [\"lib\", \"wrap\"]\n\n[[symbols]]\nname = \"lib.nn.pool\"\nkind = \"function\"\nsummary = \"Pools, in our words.\"\ndocs = \"https://lib.dev/pool\"\n",
    )
    .unwrap();
    // The re-exporting package comes first: its target is only known once the other file is read.
    let (wrap, problems) = parse_facts(concat!(
        "{\"package\": \"wrap\", \"version\": \"1\", \"language\": \"python\"}\n",
        "{\"name\": \"wrap.relu\", \"kind\": \"reexport\", \"target\": \"lib.nn.relu\", \"aliases\": [\"wrap.act.relu\"]}\n",
        "{\"name\": \"wrap.gone\", \"kind\": \"reexport\", \"target\": \"lib.nn.nothing\"}\n",
        "{\"name\": \"wrap.untargeted\", \"kind\": \"reexport\"}\n",
    ))
    .unwrap();
    assert_eq!(problems.len(), 1, "a reexport needs a target: {problems:?}");
    let (lib, problems) = parse_facts(concat!(
        "{\"package\": \"lib\", \"version\": \"2\", \"language\": \"python\"}\n",
        "{\"name\": \"lib.nn.relu\", \"kind\": \"function\", \"signature\": \"lib.nn.relu(x)\", \"docs\": \"https://lib.dev/relu\"}\n",
        "{\"name\": \"lib.other.pool\", \"kind\": \"function\", \"signature\": \"lib.other.pool(x, window)\", \"docs\": \"https://lib.dev/p\", \"aliases\": [\"lib.nn.pool\"]}\n",
    ))
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let (blobs, report) = build(&[curated], &[wrap, lib], &[]);
    assert_eq!(report.facts_without_system, 1, "the reexport of a missing name is left out");
    let offsets: Vec<usize> =
        blobs.offsets.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let records: Vec<Record> =
        offsets.windows(2).map(|w| postcard::from_bytes(&blobs.records[w[0]..w[1]]).unwrap()).collect();
    let names: Vec<&str> = records.iter().map(|r| r.symbol.name.as_ref()).collect();
    assert_eq!(names, ["lib.nn.pool", "lib.nn.relu"], "a reexport makes no record of its own");
    assert_eq!(
        records[0].symbol.signature.as_deref(),
        Some("lib.other.pool(x, window)"),
        "a fact listing the curated name as an alias fills it in"
    );
    let index: Vec<u32> = blobs.name_index.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    let entries: Vec<(&str, u32)> = index
        .chunks(3)
        .map(|e| (std::str::from_utf8(&blobs.names[e[0] as usize..(e[0] + e[1]) as usize]).unwrap(), e[2]))
        .collect();
    for name in ["wrap.relu", "wrap.act.relu"] {
        assert!(entries.contains(&(name, 1)), "{name} names lib.nn.relu: {entries:?}");
    }
    assert!(!entries.iter().any(|(n, _)| *n == "wrap.gone"));
}

#[test]
fn every_builtin_link_is_plain_https() {
    use super::schema::link_problem;
    let catalog = Catalog::builtin();
    let mut bad: Vec<String> = Vec::new();
    for system in catalog.systems() {
        for url in std::iter::once(system.docs.as_ref()).chain(system.guide.as_deref()) {
            if let Some(problem) = link_problem(url) {
                bad.push(format!("system {}: {url} {problem}", system.id));
            }
        }
    }
    for (_, symbol) in catalog.symbols() {
        if let Some(problem) = link_problem(&symbol.docs) {
            bad.push(format!("{}: {} {problem}", symbol.name, symbol.docs));
        }
    }
    assert!(bad.is_empty(), "{} links refused:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn links_must_be_plain_https() {
    use super::schema::is_safe_link;
    for good in
        ["https://pytorch.org", "https://docs.nvidia.com/cuda/x.html#y", "https://localhost:8080/a?b=c&d=%28e%29"]
    {
        assert!(is_safe_link(good), "{good}");
    }
    for bad in [
        "",
        "javascript:alert(1)",
        "command:workbench.action.terminal.new",
        "file:///etc/passwd",
        "data:text/html,<b>x</b>",
        "http://pytorch.org",
        "vscode:extension/x.y",
        "HTTPS://pytorch.org",
        " https://pytorch.org",
        "https://",
        "https://user@evil.com/",
        "https://evil.com:x/",
        "https://x.com/a)[run](command:workbench.action.terminal.new",
        "https://x.com/a b",
        "https://x.com/<img>",
        "https://x.com/\"onmouseover",
        "https://x.com/\u{e9}",
        "https://x.com/a\nb",
    ] {
        assert!(!is_safe_link(bad), "{bad:?} accepted");
    }
}

#[test]
fn user_links_that_are_not_https_are_left_out_and_reported() {
    let text = "[system]\nid = \"evil\"\nname = \"Evil\"\ngroup = \"research\"\nmaintainer = \"m\"\nsummary = \"s\"\n\
                docs = \"command:workbench.action.terminal.new\"\nguide = \"javascript:alert(1)\"\npython_modules = [\"evil\"]\n\n\
                [[symbols]]\nname = \"evil.run\"\nkind = \"function\"\nsummary = \"Runs.\"\ndocs = \"file:///etc/passwd\"\n\n\
                [[symbols]]\nname = \"evil.ok\"\nkind = \"function\"\nsummary = \"Fine.\"\ndocs = \"https://example.com/ok\"\n";
    let (file, problems) = super::parse_user_file("evil", text);
    let file = file.expect("the rest of the file stays usable");
    let messages: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(problems.len(), 3, "{messages:?}");
    for (span, message) in &problems {
        assert!(message.contains("the link is left out"), "{message}");
        let span = span.clone().expect("a span");
        let quoted = &text[span];
        assert!(["\"command:", "\"javascript:", "\"file:"].iter().any(|p| quoted.starts_with(p)), "{quoted}");
    }
    assert_eq!(file.system.docs, "");
    assert_eq!(file.system.guide, None);
    assert_eq!(file.symbols[0].docs, "");
    assert_eq!(file.symbols[1].docs, "https://example.com/ok");
    // A file with a wrong field is still left out whole.
    let (file, _) = super::parse_user_file("evil", &text.replace("\"function\"", "\"gizmo\""));
    assert!(file.is_none());
}
