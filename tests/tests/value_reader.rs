//! The probe's value reader against a real program: `value_fixture` (tests/src/bin) holds
//! known values of every type the reader decodes. The test freezes it, copies its data
//! mappings, lets it go, and checks every static decoded from the copy, exactly; then the
//! same from a `gcore` core file; then the same for an optimized build of the fixture. It
//! also feeds the reader garbage (random memory, lying lengths, pointer cycles), which must
//! give errors and never a panic or a hang.
//!
//! Needs root (ptrace) and gdb's `gcore`. Every process started is stopped by its pid, and a
//! frozen process is let go by a drop guard even when an assertion fails.

use dwarfpeek::debuginfo::{Executable, TypeIndex, TypeRef};
use dwarfpeek::memory::{
    maps, CoreFile, FileMapping, Freeze, LiveProcess, MemoryError, MemorySource, Region, Snapshot,
};
use dwarfpeek::value::{
    Limits, MapKind, MutexState, SeqKind, SharedKind, Value, ValueError, ValueReader,
};
use latch_tests::bins::workspace_root;
use latch_tests::command::TestCommand;
use latch_tests::coredump::gcore;
use latch_tests::fixture::ValueFixture;
use latch_tests::procs::{task_ids, thread_states};
use latch_tests::timeouts::{CHANGE, TOOL};
use latch_tests::wait::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Every data mapping of the fixture fits in this many bytes many times over.
const SNAPSHOT_BUDGET: u64 = 1 << 30;

/// The statics of the fixture, by path.
const STATICS: &[&str] = &[
    "BIG",
    "FLOAT",
    "LETTER",
    "FLAG",
    "GREETING",
    "RAW",
    "NUMBERS",
    "COLOR",
    "MAYBE",
    "NOTHING",
    "HELD",
    "FREE",
    "SHARED",
    "EXCLUSIVE",
    "FIXTURE",
];

/// What the reader needs to know about one build of the fixture.
struct Program {
    exe: Executable,
    index: TypeIndex,
}

impl Program {
    fn load(path: &Path) -> Program {
        let exe = Executable::open(path).expect("open the fixture executable");
        let index = TypeIndex::build(&exe).expect("index the fixture's DWARF");
        Program { exe, index }
    }

    /// Every static of [`STATICS`], read through `memory` at the load bias `bias`.
    fn read_statics(&self, memory: &dyn MemorySource, bias: u64) -> BTreeMap<String, Value> {
        let reader = ValueReader::new(&self.index, memory, Limits::default());
        STATICS
            .iter()
            .map(|name| {
                let path = format!("value_fixture::{name}");
                let stat = self
                    .index
                    .find_static(&self.exe, &path)
                    .unwrap_or_else(|e| panic!("finding {path}: {e}"));
                let value = reader
                    .read(stat.ty, stat.address + bias)
                    .unwrap_or_else(|e| panic!("reading {path}: {e}"));
                (name.to_string(), value)
            })
            .collect()
    }
}

fn debug_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"))
}

fn debug_program() -> &'static Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| Program::load(&debug_fixture()))
}

/// The fixture's file mappings and the load bias of its executable.
fn bias_of(program: &Program, mappings: &[FileMapping], exe: &Path) -> u64 {
    program
        .exe
        .load_bias(mappings, exe)
        .unwrap_or_else(|e| panic!("load bias: {e}"))
}

/// Freezes the fixture, copies its data mappings, lets it go: the snapshot, and how long
/// the process was frozen.
fn snapshot(pid: Pid) -> (Snapshot, Duration) {
    let mappings = maps::read_maps(pid.as_raw()).expect("maps");
    let regions = Region::data_regions(&mappings);
    let freeze = Freeze::new(pid).expect("freeze the fixture");
    let snapshot = Snapshot::capture(&LiveProcess::new(pid), &regions, SNAPSHOT_BUDGET)
        .expect("copy the data mappings");
    let frozen = freeze.resume().expect("resume the fixture");
    (snapshot, frozen)
}

/// The optimized build of the fixture: `rustc -O -g` on the same source (it uses std only),
/// built once per test process into a directory that lives as long as the process.
fn release_fixture() -> PathBuf {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("value-fixture-")
            .tempdir()
            .expect("temporary directory");
        let out = dir.path().join("value_fixture");
        let source = workspace_root().join("tests/src/bin/value_fixture.rs");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        TestCommand::new(rustc)
            .args(["--edition", "2021", "--crate-name", "value_fixture"])
            .args(["-C", "opt-level=3", "-g", "-o"])
            .arg(&out)
            .arg(&source)
            .timeout(TOOL)
            .expect_success();
        (dir, out)
    });
    path.clone()
}

fn release_program() -> &'static Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| Program::load(&release_fixture()))
}

/// The same value with every address set to 0 (and raw pointers' DWARF targets cleared) and hash
/// collections in a fixed order, so that it can be compared with a value written down in
/// advance.
fn normalized(value: &Value) -> Value {
    let fields = |fields: &[(String, Value)]| -> Vec<(String, Value)> {
        fields
            .iter()
            .map(|(n, v)| (n.clone(), normalized(v)))
            .collect()
    };
    match value {
        Value::Struct {
            type_name,
            fields: f,
        } => Value::Struct {
            type_name: type_name.clone(),
            fields: fields(f),
        },
        Value::Enum {
            type_name,
            variant,
            fields: f,
        } => Value::Enum {
            type_name: type_name.clone(),
            variant: variant.clone(),
            fields: fields(f),
        },
        Value::Tuple(items) => Value::Tuple(items.iter().map(normalized).collect()),
        Value::Ref { target, .. } => Value::Ref {
            address: 0,
            target: Box::new(normalized(target)),
        },
        Value::RawPointer { type_name, .. } => Value::RawPointer {
            type_name: type_name.clone(),
            address: 0,
            target: None,
        },
        Value::Seq { kind, len, items } => {
            let mut items: Vec<Value> = items.iter().map(normalized).collect();
            if *kind == SeqKind::HashSet {
                items.sort_by_key(|v| format!("{v:?}"));
            }
            Value::Seq {
                kind: *kind,
                len: *len,
                items,
            }
        }
        Value::Map { kind, len, entries } => {
            let mut entries: Vec<(Value, Value)> = entries
                .iter()
                .map(|(k, v)| (normalized(k), normalized(v)))
                .collect();
            if *kind == MapKind::HashMap {
                entries.sort_by_key(|(k, _)| format!("{k:?}"));
            }
            Value::Map {
                kind: *kind,
                len: *len,
                entries,
            }
        }
        Value::Shared {
            kind,
            strong,
            weak,
            value,
            ..
        } => Value::Shared {
            kind: *kind,
            address: 0,
            strong: *strong,
            weak: *weak,
            value: Box::new(normalized(value)),
        },
        Value::Mutex {
            state,
            poisoned,
            value,
        } => Value::Mutex {
            state: *state,
            poisoned: *poisoned,
            value: Box::new(normalized(value)),
        },
        Value::RwLock {
            state,
            poisoned,
            value,
        } => Value::RwLock {
            state: *state,
            poisoned: *poisoned,
            value: Box::new(normalized(value)),
        },
        Value::RefCell { borrow, value } => Value::RefCell {
            borrow: *borrow,
            value: Box::new(normalized(value)),
        },
        Value::Cycle { .. } => Value::Cycle { address: 0 },
        other => other.clone(),
    }
}

// Builders for expected values.
fn u(v: u128) -> Value {
    Value::Uint(v)
}
fn i(v: i128) -> Value {
    Value::Int(v)
}
fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}
fn seq(kind: SeqKind, items: Vec<Value>) -> Value {
    Value::Seq {
        kind,
        len: items.len() as u64,
        items,
    }
}
fn map(kind: MapKind, entries: Vec<(Value, Value)>) -> Value {
    Value::Map {
        kind,
        len: entries.len() as u64,
        entries,
    }
}
fn strukt(type_name: &str, fields: Vec<(&str, Value)>) -> Value {
    Value::Struct {
        type_name: type_name.to_owned(),
        fields: fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
    }
}
fn variant(type_name: &str, name: &str, fields: Vec<(&str, Value)>) -> Value {
    Value::Enum {
        type_name: type_name.to_owned(),
        variant: name.to_owned(),
        fields: fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
    }
}
fn some(inner: &str, v: Value) -> Value {
    variant(
        &format!("core::option::Option<{inner}>"),
        "Some",
        vec![("__0", v)],
    )
}
fn none(inner: &str) -> Value {
    variant(&format!("core::option::Option<{inner}>"), "None", vec![])
}
fn reference(v: Value) -> Value {
    Value::Ref {
        address: 0,
        target: Box::new(v),
    }
}
fn shared(kind: SharedKind, strong: u64, weak: u64, v: Value) -> Value {
    Value::Shared {
        kind,
        address: 0,
        strong,
        weak,
        value: Box::new(v),
    }
}
fn color(name: &str) -> Value {
    variant("value_fixture::Color", name, vec![])
}
fn inner(a: u128, b: u128, c: char) -> Value {
    strukt(
        "value_fixture::Inner",
        vec![("a", u(a)), ("b", Value::Tuple(vec![u(b), Value::Char(c)]))],
    )
}

/// Every static but `FIXTURE`, as the fixture's source sets them.
fn expected_statics() -> Vec<(&'static str, Value)> {
    let rw = |raw: u32, readers: u32, write_locked: bool, v: u128| Value::RwLock {
        state: dwarfpeek::value::RwLockState {
            raw,
            write_locked,
            readers,
            readers_waiting: false,
            writers_waiting: false,
        },
        poisoned: false,
        value: Box::new(u(v)),
    };
    vec![
        ("BIG", u(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210)),
        ("FLOAT", Value::Float(-2.5e-3)),
        ("LETTER", Value::Char('ß')),
        ("FLAG", Value::Bool(true)),
        ("GREETING", s("grüß dich")),
        (
            "RAW",
            seq(SeqKind::Slice, vec![u(0), u(1), u(0xfe), u(0xff)]),
        ),
        ("NUMBERS", seq(SeqKind::Array, vec![u(7), u(0), u(65535)])),
        ("COLOR", color("Blue")),
        ("MAYBE", some("u32", u(7))),
        ("NOTHING", none("&u32")),
        (
            "HELD",
            Value::Mutex {
                state: MutexState::Locked,
                poisoned: false,
                value: Box::new(u(42)),
            },
        ),
        (
            "FREE",
            Value::Mutex {
                state: MutexState::Unlocked,
                poisoned: false,
                value: Box::new(seq(SeqKind::Vec, vec![])),
            },
        ),
        ("SHARED", rw(2, 2, false, 5)),
        ("EXCLUSIVE", rw((1 << 30) - 1, 0, true, 6)),
    ]
}

/// The fields of `*FIXTURE`, normalized ([`normalized`]), but for the `Weak`s (raw
/// pointers, checked on their own).
fn expected_fixture_fields() -> Vec<(&'static str, Value)> {
    let node = |value: u128, next: Value| Value::RefCell {
        borrow: 0,
        value: Box::new(strukt(
            "value_fixture::Node",
            vec![("value", u(value)), ("next", next)],
        )),
    };
    let rc_node = "alloc::rc::Rc<core::cell::RefCell<value_fixture::Node>, alloc::alloc::Global>";
    let shared_string = shared(SharedKind::Arc, 3, 1, s("shared"));
    vec![
        (
            "vec_u32",
            seq(SeqKind::Vec, [1, 2, 3, 5, 8, 13].map(u).to_vec()),
        ),
        (
            "vec_string",
            seq(SeqKind::Vec, ["alpha", "beta", "gamma"].map(s).to_vec()),
        ),
        ("empty_vec", seq(SeqKind::Vec, vec![])),
        ("string", s("héllo wörld")),
        ("str_ref", s("static str")),
        (
            "bytes",
            seq(SeqKind::Slice, [0, 1, 0xfe, 0xff].map(u).to_vec()),
        ),
        (
            "array",
            seq(SeqKind::Array, [-1, 0, 1, 32767].map(i).to_vec()),
        ),
        (
            "deque",
            seq(
                SeqKind::VecDeque,
                [5, 6, 7, 100, 101, 102, 103].map(u).to_vec(),
            ),
        ),
        (
            "map",
            map(
                MapKind::HashMap,
                (1..=5)
                    .map(|k| (s(&format!("key{k}")), u(k * 100)))
                    .collect(),
            ),
        ),
        ("empty_map", map(MapKind::HashMap, vec![])),
        (
            "set",
            seq(SeqKind::HashSet, [1, 15, 26, 3, 4, 9].map(u).to_vec()),
        ),
        (
            "btree",
            map(
                MapKind::BTreeMap,
                (0..100).map(|k| (u(k), s(&format!("v{k}")))).collect(),
            ),
        ),
        (
            "small_btree",
            map(
                MapKind::BTreeMap,
                vec![(s("one"), i(1)), (s("three"), i(3)), (s("two"), i(2))],
            ),
        ),
        ("boxed", reference(inner(9, 300, 'x'))),
        ("arc", shared_string.clone()),
        (
            "arc_clones",
            seq(SeqKind::Vec, vec![shared_string.clone(), shared_string]),
        ),
        ("rc", shared(SharedKind::Rc, 2, 2, u(7))),
        ("rc_clone", shared(SharedKind::Rc, 2, 2, u(7))),
        ("tagged_some", some("u32", u(17))),
        ("tagged_none", none("u32")),
        ("niche_some", some("alloc::string::String", s("niche"))),
        ("niche_none", none("alloc::string::String")),
        (
            "nonzero_some",
            some("core::num::nonzero::NonZero<u32>", u(99)),
        ),
        (
            "box_none",
            none("alloc::boxed::Box<u64, alloc::alloc::Global>"),
        ),
        (
            "shapes",
            seq(
                SeqKind::Vec,
                vec![
                    variant("value_fixture::Shape", "Empty", vec![]),
                    variant(
                        "value_fixture::Shape",
                        "Circle",
                        vec![("radius", Value::Float(1.5))],
                    ),
                    variant(
                        "value_fixture::Shape",
                        "Rect",
                        vec![("__0", u(3)), ("__1", u(4))],
                    ),
                    variant("value_fixture::Shape", "Named", vec![("__0", s("tri"))]),
                ],
            ),
        ),
        (
            "colors",
            seq(SeqKind::Array, ["Red", "Green", "Blue"].map(color).to_vec()),
        ),
        (
            "mutex",
            Value::Mutex {
                state: MutexState::Unlocked,
                poisoned: false,
                value: Box::new(u(11)),
            },
        ),
        (
            "rwlock",
            Value::RwLock {
                state: dwarfpeek::value::RwLockState {
                    raw: 0,
                    write_locked: false,
                    readers: 0,
                    readers_waiting: false,
                    writers_waiting: false,
                },
                poisoned: false,
                value: Box::new(seq(SeqKind::Vec, vec![u(1), u(2)])),
            },
        ),
        ("cell", i(-5)),
        (
            "refcell",
            Value::RefCell {
                borrow: 2,
                value: Box::new(s("borrowed")),
            },
        ),
        (
            "refcell_mut",
            Value::RefCell {
                borrow: -1,
                value: Box::new(u(3)),
            },
        ),
        (
            "nested",
            strukt(
                "value_fixture::Outer",
                vec![
                    ("inner", inner(1, 2, 'é')),
                    ("name", s("outer")),
                    ("color", color("Green")),
                ],
            ),
        ),
        (
            "cycle",
            shared(
                SharedKind::Rc,
                2,
                0,
                node(
                    1,
                    some(
                        rc_node,
                        shared(
                            SharedKind::Rc,
                            1,
                            0,
                            node(
                                2,
                                some(
                                    rc_node,
                                    shared(SharedKind::Rc, 2, 0, Value::Cycle { address: 0 }),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
        ("big", u(u128::MAX - 1)),
        ("negative", i(-1234567890123)),
        ("float", Value::Float(std::f64::consts::PI)),
        ("letter", Value::Char('🦀')),
        ("flag", Value::Bool(false)),
    ]
}

/// The address a `Weak`'s `ptr.pointer` holds.
fn weak_address(weak: &Value) -> u64 {
    match weak.field("ptr").and_then(|p| p.field("pointer")) {
        Some(Value::RawPointer { address, .. }) => *address,
        other => panic!("a Weak has ptr.pointer, not {other:?}"),
    }
}

/// Checks every static read from one build of the fixture against its source.
fn check_statics(values: &BTreeMap<String, Value>) {
    for (name, expected) in expected_statics() {
        assert_eq!(values.get(name), Some(&expected), "static {name}");
    }
    let fixture = values["FIXTURE"]
        .option()
        .flatten()
        .and_then(Value::inner)
        .unwrap_or_else(|| panic!("FIXTURE is Some(&Fixture): {:?}", values["FIXTURE"]));
    let Value::Struct { type_name, fields } = fixture else {
        panic!("*FIXTURE is a struct: {fixture:?}");
    };
    assert_eq!(type_name, "value_fixture::Fixture");
    let expected = expected_fixture_fields();
    let weak = ["arc_weak", "rc_weaks"];
    let mut names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).chain(weak).collect();
    names.sort_unstable();
    expected_names.sort_unstable();
    assert_eq!(names, expected_names, "the fields of Fixture");
    for (name, value) in expected {
        let found = fixture.field(name).map(normalized);
        assert_eq!(found.as_ref(), Some(&value), "Fixture.{name}");
    }
    // The weak pointers point at the counts of the very Rc/Arc they were made from.
    let address_of = |name| match fixture.field(name) {
        Some(Value::Shared { address, .. }) => *address,
        other => panic!("Fixture.{name} is shared: {other:?}"),
    };
    let arc_weak = fixture.field("arc_weak").expect("arc_weak");
    assert_eq!(weak_address(arc_weak), address_of("arc"));
    let rc_weaks = fixture
        .field("rc_weaks")
        .and_then(Value::items)
        .expect("rc_weaks");
    assert_eq!(rc_weaks.len(), 2);
    for weak in rc_weaks {
        assert_eq!(weak_address(weak), address_of("rc"));
    }
    assert!(
        values.values().all(|v| v.first_error().is_none()),
        "no errors anywhere"
    );
}

/// Starts a build of the fixture, reads it live (frozen copy) and from a core file, and
/// checks both.
fn fixture_decodes_exactly(path: &Path, program: &Program) {
    let fixture = ValueFixture::start(path);
    let id = fixture.pid();
    let pid = Pid::from_raw(id as i32);
    let mappings = maps::read_maps(pid.as_raw()).expect("maps");
    let files: Vec<FileMapping> = mappings.iter().filter_map(|m| m.file()).collect();
    let bias = bias_of(program, &files, &fixture.exe);

    let (snap, frozen) = snapshot(pid);
    eprintln!(
        "{}: froze pid {pid} for {frozen:?} to copy {} bytes in {} ranges",
        path.display(),
        snap.total_bytes(),
        snap.ranges().count()
    );
    let started = Instant::now();
    let live = program.read_statics(&snap, bias);
    eprintln!("decoded every static in {:?}", started.elapsed());
    check_statics(&live);

    let dir = tempfile::Builder::new()
        .prefix("value-core-")
        .tempdir()
        .expect("temporary directory");
    let started = Instant::now();
    let core_path = gcore(id, dir.path());
    eprintln!("gcore took {:?}", started.elapsed());
    let core = CoreFile::open(&core_path).expect("open the core");
    let mut tids: Vec<i32> = core.threads().iter().map(|t| t.tid).collect();
    tids.sort_unstable();
    assert_eq!(tids, task_ids(id), "the core's threads are the process's");
    assert!(core.threads().iter().all(|t| t.pc() != 0 && t.sp() != 0));
    let core_bias = bias_of(program, core.file_mappings(), &fixture.exe);
    assert_eq!(
        core_bias, bias,
        "the core places the executable where the process did"
    );
    let from_core = program.read_statics(&core, core_bias);
    // Same process, same memory: the very same values, addresses and hash order included.
    assert_eq!(
        from_core, live,
        "the core file decodes as the live process did"
    );
}

#[test]
fn debug_fixture_decodes_exactly_live_and_from_a_core() {
    fixture_decodes_exactly(&debug_fixture(), debug_program());
}

#[test]
fn release_fixture_decodes_exactly_live_and_from_a_core() {
    fixture_decodes_exactly(&release_fixture(), release_program());
}

#[test]
fn a_freeze_stops_every_thread_and_lets_them_all_go() {
    let fixture = ValueFixture::start(&debug_fixture());
    let id = fixture.pid();
    let pid = Pid::from_raw(id as i32);
    let freeze = Freeze::new(pid).expect("freeze");
    let mut frozen: Vec<i32> = freeze.threads().iter().map(|t| t.as_raw()).collect();
    frozen.sort_unstable();
    assert_eq!(frozen, task_ids(id), "every thread is frozen");
    assert!(
        thread_states(id).iter().all(|s| *s == 't'),
        "{:?}",
        thread_states(id)
    );
    assert!(!freeze.was_stopped());
    freeze.resume().expect("resume");
    assert!(!thread_states(id).contains(&'t'), "{:?}", thread_states(id));

    // A panic while frozen lets the process go too.
    let caught = std::panic::catch_unwind(|| {
        let _freeze = Freeze::new(pid).expect("freeze");
        panic!("a deliberate panic while frozen (this message is expected)");
    });
    assert!(caught.is_err());
    assert!(!thread_states(id).contains(&'t'), "{:?}", thread_states(id));
}

#[test]
fn a_freeze_catches_threads_born_while_it_stops_the_others() {
    let fixture = ValueFixture::start_with(&debug_fixture(), &["--churn-threads"]);
    let id = fixture.pid();
    let pid = Pid::from_raw(id as i32);
    for _ in 0..20 {
        let freeze = Freeze::new(pid).expect("freeze a process that keeps making threads");
        let mut frozen: Vec<i32> = freeze.threads().iter().map(|t| t.as_raw()).collect();
        frozen.sort_unstable();
        // Nothing runs, so nothing can start a thread: the list is what was frozen.
        assert_eq!(frozen, task_ids(id), "every thread is frozen");
        assert!(
            thread_states(id).iter().all(|s| *s == 't'),
            "{:?}",
            thread_states(id)
        );
        freeze.resume().expect("resume");
    }
}

#[test]
fn a_stopped_process_stays_stopped_after_a_freeze() {
    let fixture = ValueFixture::start(&debug_fixture());
    let id = fixture.pid();
    let pid = Pid::from_raw(id as i32);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    wait_for(&format!("SIGSTOP to stop {pid}"), CHANGE, || {
        thread_states(id).iter().all(|s| *s == 'T').then_some(())
    });
    let freeze = Freeze::new(pid).expect("freeze a stopped process");
    assert!(freeze.was_stopped());
    let (snap, _) = {
        let regions = Region::data_regions(&maps::read_maps(pid.as_raw()).expect("maps"));
        let snap =
            Snapshot::capture(&LiveProcess::new(pid), &regions, SNAPSHOT_BUDGET).expect("copy");
        (snap, freeze.resume().expect("resume"))
    };
    assert!(snap.total_bytes() > 0);
    assert!(
        thread_states(id).iter().all(|s| *s == 'T'),
        "{:?}",
        thread_states(id)
    );
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
}

/// Memory full of noise: every address readable, every byte a hash of its address.
struct Noise {
    seed: u64,
}

impl MemorySource for Noise {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        for (i, byte) in buf.iter_mut().enumerate() {
            // splitmix64 of the address.
            let mut z = self.seed.wrapping_add(
                address
                    .wrapping_add(i as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *byte = (z ^ (z >> 31)) as u8;
        }
        Ok(())
    }
}

/// Every type the fixture's statics have, and the fixture's own struct.
fn garbage_types(program: &Program) -> &'static [TypeRef] {
    static TYPES: OnceLock<Vec<TypeRef>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types: Vec<TypeRef> = STATICS
            .iter()
            .map(|name| {
                program
                    .index
                    .find_static(&program.exe, &format!("value_fixture::{name}"))
                    .expect("static")
                    .ty
            })
            .collect();
        types.push(
            program
                .index
                .by_name("value_fixture::Fixture")
                .expect("Fixture"),
        );
        types
    })
}

/// Small limits: garbage decodes to errors fast.
const GARBAGE_LIMITS: Limits = Limits {
    max_elements: 256,
    max_string_len: 4096,
    max_depth: 32,
    max_values: 50_000,
};

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Noise everywhere: anything may come out, but it comes out, quickly.
    #[test]
    fn noise_never_panics_or_hangs(seed in proptest::prelude::any::<u64>(), at in proptest::prelude::any::<u64>()) {
        let program = debug_program();
        let noise = Noise { seed };
        let reader = ValueReader::new(&program.index, &noise, GARBAGE_LIMITS);
        for &ty in garbage_types(program) {
            let started = Instant::now();
            let _ = reader.read(ty, at & !7);
            proptest::prop_assert!(started.elapsed() < Duration::from_secs(5));
        }
    }

    /// Noise in one window and nothing around it: pointers out of the window fail to read.
    #[test]
    fn a_noise_window_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), offset in 0u64..4096) {
        let program = debug_program();
        let snap = Snapshot::from_ranges(vec![(0x10_000, bytes)]);
        let reader = ValueReader::new(&program.index, &snap, GARBAGE_LIMITS);
        for &ty in garbage_types(program) {
            let _ = reader.read(ty, 0x10_000 + offset);
        }
    }
}

/// The offset of the field at the end of `path` in `ty`, from the DWARF (the test writes
/// memory the way a program of this build would lay it out).
fn offset_of(index: &TypeIndex, ty: TypeRef, path: &[&str]) -> u64 {
    let mut ty = ty;
    let mut offset = 0;
    for name in path {
        let def = index.get(index.resolve(ty)).expect("type");
        let dwarfpeek::debuginfo::TypeKind::Struct(c) = &def.kind else {
            panic!("{} is not a struct", def.name);
        };
        let field = c
            .field(name)
            .unwrap_or_else(|| panic!("{} has no {name}", def.name));
        offset += field.offset.expect("offset");
        ty = field.ty.expect("type");
    }
    offset
}

/// Memory of `len` zero bytes at `base` with words written at offsets.
fn memory(base: u64, len: usize, words: &[(u64, u64)]) -> Snapshot {
    let mut bytes = vec![0u8; len];
    for (offset, word) in words {
        let at = *offset as usize;
        bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }
    Snapshot::from_ranges(vec![(base, bytes)])
}

#[test]
fn lying_lengths_are_errors_not_allocations() {
    let program = debug_program();
    let index = &program.index;
    let reader_for = |snap: &Snapshot, ty: TypeRef| {
        ValueReader::new(index, snap, Limits::default()).read(ty, 0x1000)
    };
    let huge = 1u64 << 60;

    let vec_ty = index
        .by_name("alloc::vec::Vec<u32, alloc::alloc::Global>")
        .expect("Vec<u32>");
    let (len, ptr, cap) = (
        offset_of(index, vec_ty, &["len"]),
        offset_of(index, vec_ty, &["buf", "inner", "ptr"]),
        offset_of(index, vec_ty, &["buf", "inner", "cap"]),
    );
    // A length over the capacity.
    let snap = memory(0x1000, 64, &[(len, huge), (ptr, 0x2000), (cap, 4)]);
    assert!(matches!(
        reader_for(&snap, vec_ty),
        Err(ValueError::Garbage { .. })
    ));
    // A capacity no allocation can have.
    let snap = memory(0x1000, 64, &[(len, 4), (ptr, 0x2000), (cap, huge * 4)]);
    assert!(matches!(
        reader_for(&snap, vec_ty),
        Err(ValueError::Garbage { .. })
    ));
    // A plausible length over unreadable memory: the claimed length, one error item.
    let snap = memory(0x1000, 64, &[(len, huge), (ptr, 0x2000), (cap, huge)]);
    match reader_for(&snap, vec_ty) {
        Ok(Value::Seq { len, items, .. }) => {
            assert_eq!(len, huge);
            assert!(
                matches!(items.as_slice(), [Value::Error(ValueError::Memory(_))]),
                "{items:?}"
            );
        }
        other => panic!("expected a Vec with an unreadable element: {other:?}"),
    }

    let string_ty = index.by_name("alloc::string::String").expect("String");
    let (len, ptr, cap) = (
        offset_of(index, string_ty, &["vec", "len"]),
        offset_of(index, string_ty, &["vec", "buf", "inner", "ptr"]),
        offset_of(index, string_ty, &["vec", "buf", "inner", "cap"]),
    );
    let snap = memory(0x1000, 64, &[(len, huge), (ptr, 0x2000), (cap, huge)]);
    assert!(matches!(
        reader_for(&snap, string_ty),
        Err(ValueError::TooLong { .. })
    ));

    let map_ty = index
        .by_name("std::collections::hash::map::HashMap<alloc::string::String, u64, std::hash::random::RandomState, alloc::alloc::Global>")
        .expect("HashMap<String, u64>");
    let inner = ["base", "table", "table"];
    let field = |name| offset_of(index, map_ty, &[inner[0], inner[1], inner[2], name]);
    let snap = memory(
        0x1000,
        64,
        &[(field("bucket_mask"), huge - 1), (field("ctrl"), 0x2000)],
    );
    assert!(matches!(
        reader_for(&snap, map_ty),
        Err(ValueError::TooLong { .. })
    ));
    let snap = memory(
        0x1000,
        64,
        &[(field("bucket_mask"), 6), (field("ctrl"), 0x2000)],
    );
    assert!(matches!(
        reader_for(&snap, map_ty),
        Err(ValueError::Garbage { .. })
    ));
}

#[test]
fn a_pointer_cycle_in_garbage_is_found() {
    let program = debug_program();
    let index = &program.index;
    let rc_ty = index
        .by_name("alloc::rc::Rc<core::cell::RefCell<value_fixture::Node>, alloc::alloc::Global>")
        .expect("Rc<RefCell<Node>>");
    let inner_ty = index
        .by_name("alloc::rc::RcInner<core::cell::RefCell<value_fixture::Node>>")
        .expect("RcInner");
    // An Rc at 0x1000 pointing at counts at 0x1100 whose node's `next` is that Rc again.
    let base = 0x1000;
    let inner = 0x100;
    let snap = memory(
        base,
        0x200,
        &[
            (0, base + inner),
            (inner + offset_of(index, inner_ty, &["strong"]), 1),
            (inner + offset_of(index, inner_ty, &["weak"]), 1),
            (
                inner + offset_of(index, inner_ty, &["value", "value", "value", "value"]),
                5,
            ),
            (
                inner + offset_of(index, inner_ty, &["value", "value", "value", "next"]),
                base + inner,
            ),
        ],
    );
    let value = ValueReader::new(index, &snap, Limits::default())
        .read(rc_ty, base)
        .expect("a value");
    let next = value
        .innermost()
        .field("next")
        .and_then(Value::option)
        .flatten()
        .expect("next is Some");
    let value_at = base + inner + offset_of(index, inner_ty, &["value"]);
    assert_eq!(
        next.inner(),
        Some(&Value::Cycle { address: value_at }),
        "{value:#?}"
    );
}
