//! Embeds every `migrations/<backend>/NNNN_description.sql` file into the binary.
//!
//! Adding a migration means adding one file per backend folder (with the same
//! version number in both); nothing else needs to change.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut generated = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = Path::new("migrations").join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        writeln!(
            generated,
            "pub(crate) const {}: &[EmbeddedMigration] = &[",
            backend.to_uppercase()
        )
        .unwrap();
        for path in files {
            println!("cargo:rerun-if-changed={}", path.display());
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 file name");
            let (version, description) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("migration {stem} must be named NNNN_description.sql"));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("migration {stem}: bad version"));
            let absolute = fs::canonicalize(&path).expect("migration path");
            writeln!(
                generated,
                "    EmbeddedMigration {{ version: {version}, description: {description:?}, sql: include_str!({:?}) }},",
                absolute.display().to_string()
            )
            .unwrap();
        }
        generated.push_str("];\n");
    }
    fs::write(Path::new(&out_dir).join("migrations.rs"), generated)
        .expect("write generated migrations");
}
