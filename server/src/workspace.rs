//! The workspace as requests see it: the open documents and the catalog they were recognized
//! against, kept together so that no request can pair a document with another catalog (a
//! document's symbol indices mean nothing in a catalog it was not recognized against).
//!
//! Its owner keeps it behind one lock; requests take a `Snapshot` (cheap copies) and release the
//! lock before doing anything with it.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::documents::{Change, ChangeError, Changed, Document, DocumentStore, Reanalysis};
use crate::panics::Panic;
use crate::text::PositionEncoding;
use crate::values::workspace::{Seed, UserModules};

pub struct Workspace {
    documents: DocumentStore,
    catalog: Arc<Catalog>,
}

/// One document and the catalog it was recognized against, for one request.
#[derive(Clone)]
pub struct Snapshot {
    pub doc: Document,
    pub catalog: Arc<Catalog>,
}

/// A catalog with the open documents already re-analysed against it, ready to be published.
pub struct NewCatalog {
    catalog: Arc<Catalog>,
    reanalysis: Reanalysis,
}

impl NewCatalog {
    /// The slow half of a catalog reload, done on a copy without the lock: every open document
    /// re-analysed against `catalog`.
    pub fn prepare(documents: DocumentStore, catalog: Arc<Catalog>) -> NewCatalog {
        let reanalysis = documents.reanalyzed(&catalog);
        NewCatalog { catalog, reanalysis }
    }
}

impl Workspace {
    pub fn new(catalog: Arc<Catalog>) -> Workspace {
        Workspace { documents: DocumentStore::default(), catalog }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    pub fn document(&self, uri: &str) -> Option<&Document> {
        self.documents.get(uri)
    }

    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        let doc = self.documents.get(uri)?.clone();
        debug_assert!(
            doc.language.is_none() || doc.catalog_id == self.catalog.id(),
            "{uri} was recognized against another catalog"
        );
        Some(Snapshot { doc, catalog: self.catalog.clone() })
    }

    /// A pending document's copy with the catalog to analyse it against (see
    /// `DocumentStore::pending_copy`).
    pub fn pending_snapshot(&mut self, uri: &str) -> Option<Snapshot> {
        let doc = self.documents.pending_copy(uri)?;
        Some(Snapshot { doc, catalog: self.catalog.clone() })
    }

    pub fn open(&mut self, doc: Document) -> Result<(), Panic> {
        self.documents.open(doc, &self.catalog)
    }

    /// Opens a document whose analysis is done off the lock: `finish_open` takes it.
    pub fn open_pending(&mut self, mut doc: Document) {
        // Nothing recognized yet: an empty recognition is one of any catalog.
        doc.catalog_id = self.catalog.id();
        self.documents.open_pending(doc);
    }

    /// Installs the analysis of a pending document's copy; `false` when the document or the
    /// catalog moved on since the copy (analyse a new one).
    pub fn finish_open(&mut self, analyzed: Document) -> bool {
        self.documents.finish_open(analyzed, &self.catalog)
    }

    pub fn change(
        &mut self,
        uri: &str,
        version: i32,
        changes: &[Change],
        encoding: PositionEncoding,
    ) -> Result<Changed, ChangeError> {
        self.documents.change(uri, version, changes, encoding, &self.catalog)
    }

    pub fn close(&mut self, uri: &str) -> Option<Document> {
        self.documents.close(uri)
    }

    pub fn python_files(&self) -> Vec<Seed> {
        self.documents.python_files()
    }

    pub fn set_modules(&mut self, modules: Arc<UserModules>) {
        self.documents.set_modules(modules);
    }

    /// The open documents, copied (cheaply) for `NewCatalog::prepare`.
    pub fn copy_documents(&self) -> DocumentStore {
        self.documents.clone()
    }

    /// The quick half, under the lock: the new catalog and its documents become visible together
    /// (a document edited since `prepare` is analysed again here).
    pub fn publish(&mut self, new: NewCatalog) {
        self.documents.install(new.reanalysis, &new.catalog);
        self.catalog = new.catalog;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::LineCol;

    fn user_catalog(summary: &str, extra: usize) -> Arc<Catalog> {
        let mut toml = String::from(
            "[system]\nid = \"mylib\"\nname = \"My lib\"\ngroup = \"research\"\nmaintainer = \"us\"\n\
             summary = \"In-house.\"\ndocs = \"https://example.com\"\npython_modules = [\"mylib\"]\n",
        );
        let symbol = |name: &str, summary: &str| {
            format!(
                "\n[[symbols]]\nname = \"mylib.{name}\"\nkind = \"function\"\nsummary = \"{summary}\"\n\
                 docs = \"https://example.com/{name}\"\n"
            )
        };
        for i in 0..extra {
            toml += &symbol(&format!("pad{i}"), "Padding.");
        }
        toml += &symbol("alpha", summary);
        let (file, problems) = crate::catalog::parse_user_file("mylib", &toml);
        assert!(problems.is_empty(), "{problems:?}");
        Arc::new(Catalog::new(vec![file.expect("parses")]))
    }

    fn summary_at(snap: &Snapshot, needle: &str) -> Option<String> {
        let text = snap.doc.text();
        let offset = text.find(needle)? + needle.len() - 1;
        crate::ide::hover(&snap.doc, &snap.catalog, offset).map(|h| h.markdown)
    }

    #[test]
    fn a_snapshot_never_mixes_catalogs_even_when_a_document_changes_during_a_reload() {
        let mut ws = Workspace::new(user_catalog("first alpha", 0));
        let a = "file:///w/a.py";
        let b = "file:///w/b.py";
        ws.open(Document::new(a, "python", 1, "import mylib\nmylib.alpha()\n")).unwrap();
        ws.open(Document::new(b, "python", 1, "import mylib\nmylib.alpha()\n")).unwrap();
        assert!(summary_at(&ws.snapshot(a).unwrap(), "mylib.alpha").unwrap().contains("first alpha"));

        // The new catalog has other symbols before `alpha`, so an index from the old one would
        // name another symbol in it.
        let prepared = NewCatalog::prepare(ws.copy_documents(), user_catalog("second alpha", 5));
        // b is edited while the copy is being analysed.
        let change = Change {
            range: Some((LineCol { line: 2, col: 0 }, LineCol { line: 2, col: 0 })),
            text: "mylib.alpha()\n".into(),
        };
        ws.change(b, 2, &[change], PositionEncoding::Utf16).unwrap();
        let old = ws.snapshot(b).unwrap();
        assert_eq!(old.doc.catalog_id, old.catalog.id());
        ws.publish(prepared);

        for uri in [a, b] {
            let snap = ws.snapshot(uri).unwrap();
            assert_eq!(snap.doc.catalog_id, snap.catalog.id(), "{uri}");
            let hover = summary_at(&snap, "mylib.alpha").unwrap();
            assert!(hover.contains("second alpha"), "{uri}: {hover}");
        }
        assert_eq!(ws.snapshot(b).unwrap().doc.text().matches("mylib.alpha").count(), 2);
        // The snapshot taken before the reload still answers from its own catalog.
        assert!(summary_at(&old, "mylib.alpha").unwrap().contains("first alpha"));
    }
}
