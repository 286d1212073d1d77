//! The trainer's layers hold: every `use crate::` names a module of a lower layer or one
//! listed earlier in its own layer's `mod.rs`, so no module imports itself back through
//! others. The order is read from `src/lib.rs` and each layer's `mod.rs`.

use std::fs;
use std::path::Path;

/// The `pub mod NAME;` declarations of a module file, in order.
fn declared(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

/// Every module as `layer::module`, from the bottom up.
fn order(src: &Path) -> Vec<String> {
    declared(&src.join("lib.rs"))
        .into_iter()
        .flat_map(|layer| {
            declared(&src.join(&layer).join("mod.rs"))
                .into_iter()
                .map(move |module| format!("{layer}::{module}"))
        })
        .collect()
}

/// The modules a source file imports with `use crate::layer::module` (tests included),
/// whether one per line or grouped as `crate::layer::{a, b}`.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(path) = line
            .strip_prefix("use crate::")
            .or_else(|| line.strip_prefix("pub use crate::"))
        else {
            continue;
        };
        let mut parts = path.splitn(3, "::");
        let layer = parts.next().unwrap_or_default();
        match parts.next().unwrap_or_default() {
            group if group.starts_with('{') => {
                let names = group.trim_matches(|c| "{};".contains(c));
                found.extend(names.split(',').map(|m| format!("{layer}::{}", m.trim())));
            }
            module => found.push(format!("{layer}::{}", module.trim_end_matches(';'))),
        }
    }
    found
}

/// Which layer-and-module each import line names; `rank` of the module a file defines.
fn check(src: &Path, order: &[String]) -> Vec<String> {
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut errors = Vec::new();
    for module in order {
        let file = src.join(format!("{}.rs", module.replace("::", "/")));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for imported in imports(&text) {
            match (rank(&imported), rank(module)) {
                (Some(i), Some(m)) if i < m => {}
                (None, _) => errors.push(format!("{module} imports {imported}: not a module")),
                _ => errors.push(format!("{module} imports {imported}: not below it")),
            }
        }
    }
    errors
}

#[test]
fn every_module_imports_only_the_ones_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = order(&src);
    assert!(
        order.len() >= 20,
        "only {} modules found: {order:?}",
        order.len()
    );
    let errors = check(&src, &order);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn an_import_of_a_higher_or_equal_module_is_found() {
    let order: Vec<String> = ["a::low", "a::mid", "b::high"].map(String::from).to_vec();
    let dir = std::env::temp_dir().join(format!("layers-test-{}", std::process::id()));
    for (file, text) in [
        ("a/low.rs", "use crate::a::mid::X;\n"),
        ("a/mid.rs", "use crate::a::{low, mid};\n"),
        (
            "b/high.rs",
            "    use crate::a::low::Y;\nuse crate::c::gone;\n",
        ),
    ] {
        let path = dir.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let errors = check(&dir, &order);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        errors,
        [
            "a::low imports a::mid: not below it",
            "a::mid imports a::mid: not below it",
            "b::high imports c::gone: not a module",
        ]
    );
}
