//! A program whose memory holds known values of every type the probe's value reader decodes,
//! for `tests/tests/value_reader.rs` to read from outside (live and from a core file).
//! With `--churn-threads` it also starts and ends threads without pause, for a freeze to
//! catch threads born while it stops the others.
//!
//! It uses std only, so the test can also build it with plain `rustc -O -g` (the release
//! variant) without a cargo build of the workspace. It prints `ready` once every value is in
//! place, then sleeps until killed; it never changes a value after that, so whatever the
//! reader finds must equal what is written here.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::mem::ManuallyDrop;
use std::num::NonZeroU32;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

/// A C-like enum: no data, explicit discriminants.
#[derive(Clone, Copy)]
#[allow(dead_code)] // Only some variants are built; the reader must still name the others.
pub enum Color {
    Red = 1,
    Green = 2,
    Blue = 40,
}

/// An enum with data variants of every form.
#[allow(dead_code)]
pub enum Shape {
    Empty,
    Circle { radius: f64 },
    Rect(u32, u32),
    Named(String),
}

pub struct Inner {
    pub a: u8,
    pub b: (u16, char),
}

pub struct Outer {
    pub inner: Inner,
    pub name: String,
    pub color: Color,
}

/// One node of a cyclic `Rc` chain.
pub struct Node {
    pub value: u32,
    pub next: Option<Rc<RefCell<Node>>>,
}

/// Everything that needs the heap or is not `Sync`, reached through [`FIXTURE`].
pub struct Fixture {
    pub vec_u32: Vec<u32>,
    pub vec_string: Vec<String>,
    pub empty_vec: Vec<u64>,
    pub string: String,
    pub str_ref: &'static str,
    pub bytes: &'static [u8],
    pub array: [i16; 4],
    pub deque: VecDeque<u32>,
    pub map: HashMap<String, u64>,
    pub empty_map: HashMap<u32, u32>,
    pub set: HashSet<u32>,
    pub btree: BTreeMap<u64, String>,
    pub small_btree: BTreeMap<String, i32>,
    pub boxed: Box<Inner>,
    pub arc: Arc<String>,
    pub arc_clones: Vec<Arc<String>>,
    pub arc_weak: std::sync::Weak<String>,
    pub rc: Rc<u32>,
    pub rc_clone: Rc<u32>,
    pub rc_weaks: [std::rc::Weak<u32>; 2],
    pub tagged_some: Option<u32>,
    pub tagged_none: Option<u32>,
    pub niche_some: Option<String>,
    pub niche_none: Option<String>,
    pub nonzero_some: Option<NonZeroU32>,
    pub box_none: Option<Box<u64>>,
    pub shapes: Vec<Shape>,
    pub colors: [Color; 3],
    pub mutex: Mutex<u64>,
    pub rwlock: RwLock<Vec<u8>>,
    pub cell: Cell<i32>,
    pub refcell: RefCell<String>,
    pub refcell_mut: RefCell<u8>,
    pub nested: Outer,
    pub cycle: Rc<RefCell<Node>>,
    pub big: u128,
    pub negative: i64,
    pub float: f64,
    pub letter: char,
    pub flag: bool,
}

// Plain statics, built at compile time. `#[used]` keeps them (and their DWARF) in an
// optimized build although nothing here reads them.
#[used]
pub static BIG: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
#[used]
pub static FLOAT: f64 = -2.5e-3;
#[used]
pub static LETTER: char = 'ß';
#[used]
pub static FLAG: bool = true;
#[used]
pub static GREETING: &str = "grüß dich";
#[used]
pub static RAW: &[u8] = &[0, 1, 0xfe, 0xff];
#[used]
pub static NUMBERS: [u16; 3] = [7, 0, 65535];
#[used]
pub static COLOR: Color = Color::Blue;
#[used]
pub static MAYBE: Option<u32> = Some(7);
#[used]
pub static NOTHING: Option<&u32> = None;
/// Locked for good by a thread of its own before `ready`.
#[used]
pub static HELD: Mutex<u64> = Mutex::new(42);
/// Never locked.
#[used]
pub static FREE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Read-locked twice for good before `ready`.
#[used]
pub static SHARED: RwLock<u32> = RwLock::new(5);
/// Write-locked for good before `ready`.
#[used]
pub static EXCLUSIVE: RwLock<u32> = RwLock::new(6);

/// What [`POINTERS`] points at.
pub static TARGET: Inner = Inner { a: 5, b: (6, 'y') };

/// Raw pointers for `print` to follow (as Rust's auto-deref would) or to refuse: to a value,
/// null, dangling, and a `Vec` whose pointer and lengths are garbage.
pub struct Pointers {
    pub to_inner: *const Inner,
    pub non_null: NonNull<Inner>,
    pub null: *const Inner,
    pub dangling: *const Inner,
    pub lying: ManuallyDrop<Vec<u64>>,
}

/// `lying` is made garbage by `main` before `ready`.
#[used]
pub static mut POINTERS: Pointers = Pointers {
    to_inner: &raw const TARGET,
    // SAFETY: the address of a static is never null.
    non_null: unsafe { NonNull::new_unchecked((&raw const TARGET).cast_mut()) },
    null: std::ptr::null(),
    dangling: std::ptr::without_provenance(0x10),
    lying: ManuallyDrop::new(Vec::new()),
};

/// Where the lying `Vec` says its elements are: far from anything mapped.
const UNMAPPED: usize = 0x1bad_dead_0000;

/// Set once by `main` before `ready`. A `static mut` rather than a lock: the fixture holds
/// `Rc`s, which no `Sync` static may, and only this one thread ever touches it.
#[used]
pub static mut FIXTURE: Option<&'static Fixture> = None;

fn fixture() -> Fixture {
    // Capacity 8, then 5 pops from the front: the ring's head is past 0 and the last
    // elements wrap around to the start of the buffer.
    let mut deque = VecDeque::with_capacity(8);
    deque.extend(0..8u32);
    for _ in 0..5 {
        deque.pop_front();
    }
    deque.extend([100, 101, 102, 103]);
    assert_eq!(deque.capacity(), 8, "the deque must not have grown");

    let arc = Arc::new(String::from("shared"));
    let rc = Rc::new(7u32);

    let a = Rc::new(RefCell::new(Node {
        value: 1,
        next: None,
    }));
    let b = Rc::new(RefCell::new(Node {
        value: 2,
        next: Some(Rc::clone(&a)),
    }));
    a.borrow_mut().next = Some(b);

    Fixture {
        vec_u32: vec![1, 2, 3, 5, 8, 13],
        vec_string: ["alpha", "beta", "gamma"].map(String::from).to_vec(),
        empty_vec: Vec::new(),
        string: String::from("héllo wörld"),
        str_ref: "static str",
        bytes: b"\x00\x01\xfe\xff",
        array: [-1, 0, 1, i16::MAX],
        deque,
        map: (1..=5u64).map(|i| (format!("key{i}"), i * 100)).collect(),
        empty_map: HashMap::new(),
        set: [3u32, 1, 4, 15, 9, 26].into_iter().collect(),
        btree: (0..100u64).map(|k| (k, format!("v{k}"))).collect(),
        small_btree: [("one", 1), ("two", 2), ("three", 3)]
            .map(|(k, v)| (k.to_owned(), v))
            .into_iter()
            .collect(),
        boxed: Box::new(Inner {
            a: 9,
            b: (300, 'x'),
        }),
        arc_clones: vec![Arc::clone(&arc), Arc::clone(&arc)],
        arc_weak: Arc::downgrade(&arc),
        arc,
        rc_clone: Rc::clone(&rc),
        rc_weaks: [Rc::downgrade(&rc), Rc::downgrade(&rc)],
        rc,
        tagged_some: Some(17),
        tagged_none: None,
        niche_some: Some(String::from("niche")),
        niche_none: None,
        nonzero_some: NonZeroU32::new(99),
        box_none: None,
        shapes: vec![
            Shape::Empty,
            Shape::Circle { radius: 1.5 },
            Shape::Rect(3, 4),
            Shape::Named(String::from("tri")),
        ],
        colors: [Color::Red, Color::Green, Color::Blue],
        mutex: Mutex::new(11),
        rwlock: RwLock::new(vec![1, 2]),
        cell: Cell::new(-5),
        refcell: RefCell::new(String::from("borrowed")),
        refcell_mut: RefCell::new(3),
        nested: Outer {
            inner: Inner { a: 1, b: (2, 'é') },
            name: String::from("outer"),
            color: Color::Green,
        },
        cycle: a,
        big: u128::MAX - 1,
        negative: -1234567890123,
        float: std::f64::consts::PI,
        letter: '🦀',
        flag: false,
    }
}

/// Takes `lock` in a thread of its own that then holds it until the process ends, and
/// returns once it is held.
fn hold_forever(lock: impl FnOnce() + Send + 'static) {
    let (held, is_held) = mpsc::channel();
    std::thread::spawn(move || {
        lock();
        held.send(()).expect("main waits for this");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    });
    is_held.recv().expect("the locking thread died");
}

fn main() {
    let fixture: &'static Fixture = Box::leak(Box::new(fixture()));
    // Outstanding borrows, as a borrowing function that never returned would leave them.
    std::mem::forget(fixture.refcell.borrow());
    std::mem::forget(fixture.refcell.borrow());
    std::mem::forget(fixture.refcell_mut.borrow_mut());
    // A volatile store: the optimizer may not drop a write that nothing in here reads.
    // SAFETY: the only access to FIXTURE, from the only thread running at this point.
    unsafe { std::ptr::write_volatile(&raw mut FIXTURE, Some(fixture)) };
    // A `Vec` of three equal words (so their order does not matter): a capacity and a
    // length of 30 TiB of elements at an address nothing maps. Never used nor dropped.
    // SAFETY: the words are a valid capacity (≤ isize::MAX), a non-null aligned pointer
    // and a length; only the reader outside ever looks at it.
    let lying: Vec<u64> = unsafe { std::mem::transmute([UNMAPPED; 3]) };
    // SAFETY: as FIXTURE above; the old value is an empty `Vec`, nothing to drop.
    unsafe { std::ptr::write_volatile(&raw mut POINTERS.lying, ManuallyDrop::new(lying)) };

    hold_forever(|| std::mem::forget(HELD.lock().expect("HELD is never poisoned")));
    hold_forever(|| {
        std::mem::forget(SHARED.read().expect("SHARED is never poisoned"));
        std::mem::forget(SHARED.read().expect("SHARED is never poisoned"));
    });
    hold_forever(|| std::mem::forget(EXCLUSIVE.write().expect("EXCLUSIVE is never poisoned")));

    if std::env::args().any(|arg| arg == "--churn-threads") {
        std::thread::spawn(|| loop {
            let _ = std::thread::spawn(|| std::thread::sleep(Duration::from_micros(200))).join();
        });
        for _ in 0..2 {
            std::thread::spawn(|| loop {
                std::thread::spawn(|| std::thread::sleep(Duration::from_millis(1)));
                std::thread::sleep(Duration::from_micros(300));
            });
        }
    }

    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready").expect("stdout");
    stdout.flush().expect("stdout");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
