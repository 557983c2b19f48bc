//! The module map of docs/architecture.md, enforced: each top-level module of `src/`
//! imports (`crate::…`, outside its tests) only from modules in lower layers, so there are no
//! cycles between folders.

use std::collections::BTreeMap;
use std::path::Path;

/// Layers, lowest first; a module may import from any lower layer, never from its own or a
/// higher one.
const LAYERS: &[&[&str]] = &[
    &[
        "json", "pacing", "schema", "metrics", "signals", "reactor", "emulator", "trust", "random",
    ],
    &["http", "access_log"],
    &["aws"],
    &["lambda", "certificate", "access"],
    &["upstream"],
    &["credentials"],
    &["config"],
    &["fleet"],
    &["proxy", "admin", "demo", "logging", "https"],
    &["runtime"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Top-level module → (imported module → a file that imports it).
fn imports(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let first = rel.components().next().expect("component");
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            // Tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != module {
                    out.entry(module.clone())
                        .or_default()
                        .entry(name)
                        .or_insert_with(|| rel.display().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (module, used) in imports(&src) {
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{module} is not in the module map (tests/layering.rs)"
            ));
            continue;
        };
        for (target, file) in used {
            match layer_of(&target) {
                Some(l) if l < own => {}
                _ => wrong.push(format!("{file} imports crate::{target}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the module map:\n{}",
        wrong.join("\n")
    );
}
