//! Embeds the built site (scripts/build-site sets `DUET_EMBED_SITE` to `target/site`) into the
//! binary, so that one file is a whole deployment. Without that variable — `cargo test`,
//! clippy, a debug build before any site exists — nothing is embedded and the server serves the
//! site from disk, as before. `DUET_EMBED_HASHES` names the `hash.txt` of the hashed file
//! names, embedded too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        // build-site's own bookkeeping (.inputs, .hash.txt) is not part of the site.
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=DUET_EMBED_SITE");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::from("/// The embedded site: (path below the site root, bytes).\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    println!("cargo:rerun-if-env-changed=DUET_EMBED_HASHES");
    let hashes = env::var_os("DUET_EMBED_HASHES")
        .map(PathBuf::from)
        .filter(|path| path.is_file());
    if let Some(root) = env::var_os("DUET_EMBED_SITE").map(PathBuf::from)
        && root.join("pkg").is_dir()
    {
        let mut found = Vec::new();
        files(&root, &mut found);
        for path in found {
            let Ok(relative) = path.strip_prefix(&root) else {
                continue;
            };
            let name = relative.to_string_lossy().replace('\\', "/");
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    code.push_str("/// The content hashes of the embedded file names (leptos' `hash.txt`).\n");
    match hashes {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(
                code,
                "pub static HASHES: Option<&str> = Some(include_str!({:?}));",
                path.display().to_string()
            );
        }
        None => code.push_str("pub static HASHES: Option<&str> = None;\n"),
    }
    fs::write(out_dir.join("embedded_site.rs"), code).expect("write embedded_site.rs");
}
