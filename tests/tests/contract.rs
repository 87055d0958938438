//! The probe/daemon contract (`docs/contract.md`) holds for the debug and the release build
//! of the daemon: every static, struct member, enum variant and state-change function the
//! probe relies on is there under the documented name, found the way the probe finds it
//! (ELF symbols and DWARF, through `latch_probe::debuginfo`).
//!
//! A rename in the daemon fails here, not silently in the probe. The checker is itself
//! checked: misspelled names must be reported as missing.

use dwarfpeek::debuginfo::Executable;
use latch_tests::bins::{latch_bin, workspace_root, Profile};

/// One line of the ```contract block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Static(String),
    Struct(String, Vec<String>),
    Enum(String, Vec<String>),
    Fn(String, Vec<String>),
}

/// The items of the ```contract block of `text`, or why the block is malformed.
fn parse_contract(text: &str) -> Result<Vec<Item>, String> {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == "```contract")
        .ok_or("no ```contract block")?;
    let mut items = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line == "```" {
            return Ok(items);
        }
        if !line.is_empty() {
            items.push(parse_line(line)?);
        }
    }
    Err("the ```contract block is not closed".into())
}

fn parse_line(line: &str) -> Result<Item, String> {
    let (kind, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("not a contract line: {line:?}"))?;
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let named = |rest: &str| -> Result<(String, Vec<String>), String> {
        // `: ` ends the path (which has `::` in it).
        let (path, names) = rest
            .split_once(": ")
            .ok_or_else(|| format!("`{kind} PATH: names…` expected: {line:?}"))?;
        let names = words(names);
        if names.is_empty() {
            return Err(format!("no names listed: {line:?}"));
        }
        Ok((path.trim().to_owned(), names))
    };
    match kind {
        "static" => Ok(Item::Static(rest.trim().to_owned())),
        "struct" => named(rest).map(|(p, n)| Item::Struct(p, n)),
        "enum" => named(rest).map(|(p, n)| Item::Enum(p, n)),
        "fn" => {
            let (path, params) = rest
                .trim()
                .strip_suffix(')')
                .and_then(|r| r.split_once('('))
                .ok_or_else(|| format!("`fn PATH(param…)` expected: {line:?}"))?;
            Ok(Item::Fn(path.to_owned(), words(params)))
        }
        _ => Err(format!("unknown line form {kind:?}: {line:?}")),
    }
}

/// Checks one item against the executable; the error says what is missing.
fn check(exe: &Executable, item: &Item) -> Result<(), String> {
    match item {
        Item::Static(path) => {
            let s = exe.static_variable(path).map_err(|e| e.to_string())?;
            match s.dwarf_address {
                Some(a) if a != s.address => Err(format!(
                    "static {path}: the DWARF puts it at {a:#x}, the symbol at {:#x}",
                    s.address
                )),
                _ => Ok(()),
            }
        }
        Item::Struct(path, members) => {
            let found = exe.struct_members(path).map_err(|e| e.to_string())?;
            missing(&format!("struct {path}"), "member", members, &found)
        }
        Item::Enum(path, variants) => {
            let found = exe.enum_variants(path).map_err(|e| e.to_string())?;
            missing(&format!("enum {path}"), "variant", variants, &found)
        }
        Item::Fn(path, params) => {
            let symbol = exe.function(path).map_err(|e| e.to_string())?;
            let sub = exe.subprogram(&symbol).map_err(|e| e.to_string())?;
            let found: Vec<String> = sub
                .parameters
                .iter()
                .map(|p| p.name.clone().unwrap_or_else(|| "<unnamed>".into()))
                .collect();
            if &found == params {
                Ok(())
            } else {
                Err(format!(
                    "fn {path}: parameters are ({}), the contract says ({})",
                    found.join(" "),
                    params.join(" ")
                ))
            }
        }
    }
}

fn missing(what: &str, kind: &str, wanted: &[String], found: &[String]) -> Result<(), String> {
    let gone: Vec<&str> = wanted
        .iter()
        .filter(|w| !found.contains(w))
        .map(String::as_str)
        .collect();
    if gone.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: missing {kind} {} (it has: {})",
            gone.join(", "),
            found.join(" ")
        ))
    }
}

fn contract() -> Vec<Item> {
    let path = workspace_root().join("docs/contract.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let items = parse_contract(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (kind, n) in [
        (
            "static",
            items
                .iter()
                .filter(|i| matches!(i, Item::Static(_)))
                .count(),
        ),
        (
            "struct",
            items
                .iter()
                .filter(|i| matches!(i, Item::Struct(..)))
                .count(),
        ),
        (
            "enum",
            items.iter().filter(|i| matches!(i, Item::Enum(..))).count(),
        ),
        (
            "fn",
            items.iter().filter(|i| matches!(i, Item::Fn(..))).count(),
        ),
    ] {
        assert!(
            n > 0,
            "{}: no `{kind}` line in the contract",
            path.display()
        );
    }
    items
}

fn contract_holds(profile: Profile) {
    let bin = latch_bin(profile);
    let exe = Executable::open(&bin).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
    let failures: Vec<String> = contract()
        .iter()
        .filter_map(|item| check(&exe, item).err())
        .collect();
    assert!(
        failures.is_empty(),
        "the {profile:?} daemon ({}) breaks docs/contract.md:\n  {}",
        bin.display(),
        failures.join("\n  ")
    );
}

#[test]
fn contract_holds_for_the_debug_build() {
    contract_holds(Profile::Debug);
}

#[test]
fn contract_holds_for_the_release_build() {
    contract_holds(Profile::Release);
}

/// The checker finds what is wrong: a misspelled name of each kind is reported as missing
/// (and correct lines of the same kinds pass, so the failures are about the names).
#[test]
fn misspelled_names_are_reported() {
    let exe = Executable::open(&latch_bin(Profile::Debug)).expect("open the debug daemon");
    let good = [
        "static latch::table::LOCK_TABLE",
        "struct latch::table::Locker: id holders",
        "enum latch::table::Rules: Simple Numeric",
        "enum latch_probe_common::LockMode: NL EX",
        "fn latch::change::grant(locker req from journal)",
    ];
    for line in good {
        let item = parse_line(line).expect("a valid line");
        assert_eq!(check(&exe, &item), Ok(()), "{line}");
    }
    let bad = [
        ("static latch::table::LOCK_TABEL", "LOCK_TABEL"),
        ("struct latch::table::Locker: id holdres", "holdres"),
        ("struct latch::table::Lockr: id", "Lockr"),
        ("enum latch::table::Rules: Simple Numerik", "Numerik"),
        ("enum latch_probe_common::LockMode: NL XE", "XE"),
        (
            "fn latch::change::grant(req locker from journal)",
            "req locker",
        ),
        ("fn latch::change::grnat(locker req from journal)", "grnat"),
    ];
    for (line, name) in bad {
        let item = parse_line(line).expect("a valid line");
        match check(&exe, &item) {
            Ok(()) => panic!("{line}: accepted, but {name} does not exist"),
            Err(e) => assert!(e.contains(name), "{line}: error does not name {name}: {e}"),
        }
    }
}

#[test]
fn malformed_contract_blocks_are_refused() {
    assert!(parse_contract("no block here").is_err());
    assert!(parse_contract("```contract\nstatic a::B\n").is_err());
    assert!(parse_contract("```contract\nconst a::B\n```\n").is_err());
    assert!(parse_contract("```contract\nstruct a::B\n```\n").is_err());
    assert!(parse_contract("```contract\nfn a::b(x\n```\n").is_err());
    assert_eq!(
        parse_contract("x\n```contract\nstatic a::B\nfn a::c(x y)\n```\n"),
        Ok(vec![
            Item::Static("a::B".into()),
            Item::Fn("a::c".into(), vec!["x".into(), "y".into()])
        ])
    );
}
