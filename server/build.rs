//! Turns catalog/*.toml into the compact index embedded in the binary (postcard), so start-up never
//! parses TOML. A file that does not parse is left out with a build warning; the `catalog` tests
//! fail on it, so a broken file never ships silently.

#[path = "src/catalog/schema.rs"]
#[allow(dead_code)]
mod schema;

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let catalog_dir = manifest.join("../catalog");
    println!("cargo:rerun-if-changed={}", catalog_dir.display());
    let mut paths: Vec<PathBuf> = fs::read_dir(&catalog_dir)
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    let mut files = Vec::new();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(path).unwrap_or_default();
        match toml::from_str::<schema::CatalogFile>(&text) {
            Ok(file) => files.push(file),
            Err(err) => println!("cargo:warning=catalog file {} left out: {}", path.display(), err.message()),
        }
    }
    let bytes = postcard::to_allocvec(&files).expect("catalog serializes");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("catalog.postcard");
    fs::write(out, bytes).expect("OUT_DIR is writable");
}
