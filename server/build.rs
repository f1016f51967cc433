//! Turns catalog/*.toml (curated words) and catalog/facts/*.jsonl (harvested facts) into the index
//! embedded in the binary, so start-up parses no catalog text. A file that does not parse is left
//! out with a build warning; the `catalog` tests fail on it, so a broken file never ships silently.

#[path = "src/catalog/schema.rs"]
#[allow(dead_code)]
mod schema;

#[path = "src/catalog/index.rs"]
#[allow(dead_code)]
mod index;

use std::{env, fs, path::PathBuf};

fn files_with(dir: &std::path::Path, ext: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> =
        fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == ext));
    paths.sort();
    paths
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let catalog_dir = manifest.join("../catalog");
    let facts_dir = catalog_dir.join("facts");
    println!("cargo:rerun-if-changed={}", catalog_dir.display());
    println!("cargo:rerun-if-changed={}", facts_dir.display());

    let texts: Vec<(PathBuf, String)> = files_with(&catalog_dir, "toml")
        .into_iter()
        .map(|p| (p.clone(), fs::read_to_string(&p).unwrap_or_default()))
        .collect();
    let mut curated = Vec::new();
    for (path, text) in &texts {
        println!("cargo:rerun-if-changed={}", path.display());
        match toml::from_str::<schema::CatalogFile>(text) {
            Ok(file) => curated.push(file),
            Err(err) => println!("cargo:warning=catalog file {} left out: {}", path.display(), err.message()),
        }
    }
    let mut facts = Vec::new();
    for path in files_with(&facts_dir, "jsonl") {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).unwrap_or_default();
        match index::parse_facts(&text) {
            Ok((file, problems)) => {
                if !problems.is_empty() {
                    println!("cargo:warning={}: {} lines left out", path.display(), problems.len());
                }
                facts.push(file);
            }
            Err(err) => println!("cargo:warning=facts file {} left out: {err}", path.display()),
        }
    }
    let mut operations = Vec::new();
    let equivalents_dir = catalog_dir.join("equivalents");
    println!("cargo:rerun-if-changed={}", equivalents_dir.display());
    for path in files_with(&equivalents_dir, "toml") {
        println!("cargo:rerun-if-changed={}", path.display());
        match toml::from_str::<index::OperationsFile>(&fs::read_to_string(&path).unwrap_or_default()) {
            Ok(file) => operations.extend(file.operations),
            Err(err) => println!("cargo:warning=equivalents file {} left out: {}", path.display(), err.message()),
        }
    }
    let (blobs, _report) = index::build(&curated, &facts, &operations);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for (name, bytes) in [
        ("catalog_systems.postcard", &blobs.systems),
        ("catalog_records.bin", &blobs.records),
        ("catalog_offsets.bin", &blobs.offsets),
        ("catalog_names.bin", &blobs.names),
        ("catalog_name_index.bin", &blobs.name_index),
        ("catalog_record_meta.bin", &blobs.record_meta),
    ] {
        fs::write(out.join(name), bytes).expect("OUT_DIR is writable");
    }
}
