//! What the uprobes need to know about one daemon binary, read from its symbols and DWARF:
//! where each state-change function starts, which argument register holds its locker and its
//! request, how large those structs are, where their strings keep a pointer and a length,
//! and where the table's generation counter is.
//!
//! Files only: it never touches a process (the load bias is added at attach time). What it
//! knows of the daemon is the contract's names (`docs/contract.md`); everything else comes
//! from the exact binary, so debug, release and `-Z randomize-layout` builds all trace.

use super::layout::{self as compiled, Choice, LockerLayout, RequestLayout};
use super::TraceError;
use crate::model::DaemonImage;
use dwarfpeek::abi;
use dwarfpeek::debuginfo::{Executable, FunctionSymbol, Parameter, ParameterClass, TypeRef};
use dwarfpeek::value::layout::{self, Place};
use latch_probe_common::raw::{Span, TextPlace, TextSlot, TraceConfig, BLOCK_BYTES};
use latch_probe_common::{EntryState, EventKind};

/// The daemon's lock entry types (contract).
pub const LOCKER_TYPE: &str = "latch::table::Locker";
pub const REQUEST_TYPE: &str = "latch::table::Request";
/// The type of `grant`'s `from` parameter.
pub const ENTRY_STATE_TYPE: &str = "latch_probe_common::EntryState";

/// One traced function: the contract's path, the eBPF program attached to it, and the names
/// of its locker and request parameters.
struct Hook {
    kind: EventKind,
    function: &'static str,
    program: &'static str,
    locker: Option<&'static str>,
    request: Option<&'static str>,
}

/// The contract's state-change functions. `locker_create`'s `cause` is not read: its event
/// is about the locker alone.
const HOOKS: [Hook; 8] = [
    Hook {
        kind: EventKind::LockerCreate,
        function: "latch::change::locker_create",
        program: "latch_locker_create",
        locker: Some("locker"),
        request: None,
    },
    Hook {
        kind: EventKind::LockerDestroy,
        function: "latch::change::locker_destroy",
        program: "latch_locker_destroy",
        locker: Some("locker"),
        request: None,
    },
    Hook {
        kind: EventKind::Incubate,
        function: "latch::change::incubate",
        program: "latch_incubate",
        locker: None,
        request: Some("req"),
    },
    Hook {
        kind: EventKind::Promote,
        function: "latch::change::promote",
        program: "latch_promote",
        locker: Some("locker"),
        request: Some("req"),
    },
    Hook {
        kind: EventKind::Enqueue,
        function: "latch::change::enqueue",
        program: "latch_enqueue",
        locker: Some("locker"),
        request: Some("req"),
    },
    Hook {
        kind: EventKind::Grant,
        function: "latch::change::grant",
        program: "latch_grant",
        locker: Some("locker"),
        request: Some("req"),
    },
    Hook {
        kind: EventKind::Release,
        function: "latch::change::release",
        program: "latch_release",
        locker: Some("locker"),
        request: Some("req"),
    },
    Hook {
        kind: EventKind::Cancel,
        function: "latch::change::cancel",
        program: "latch_cancel",
        locker: Some("locker"),
        request: Some("req"),
    },
];

/// One uprobe to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub kind: EventKind,
    /// The eBPF program's name in the embedded object.
    pub program: &'static str,
    pub function: FunctionSymbol,
}

/// Everything the uprobes need, computed from one executable, and the decoder of what they
/// record.
#[derive(Clone, Debug)]
pub struct TracePlan {
    pub probes: Vec<Probe>,
    /// The eBPF programs' configuration; `generation_address` is still the link-time one.
    pub config: TraceConfig,
    pub(super) locker: LockerLayout,
    pub(super) request: RequestLayout,
    /// The argument register of `grant`'s `from` and how its bits read.
    pub(super) grant_from: (u32, Choice<EntryState>),
}

impl TracePlan {
    /// Reads the plan from the daemon's executable and type index.
    pub fn from_image(image: &DaemonImage) -> Result<TracePlan, TraceError> {
        let exe = image.executable();
        let architecture = exe.architecture()?;
        if architecture != object::Architecture::X86_64 {
            return Err(TraceError::Architecture {
                path: exe.path().to_owned(),
                architecture,
            });
        }
        let index = image.index();
        let type_named = |name: &str| {
            index
                .by_name(name)
                .ok_or_else(|| TraceError::TypeNotFound(name.to_owned()))
        };
        let locker_type = type_named(LOCKER_TYPE)?;
        let request_type = type_named(REQUEST_TYPE)?;
        let entry_state = type_named(ENTRY_STATE_TYPE)?;
        let layout_error = |what: &str| {
            let what = what.to_owned();
            move |error| TraceError::Layout { what, error }
        };

        let mut config = TraceConfig::EMPTY;
        let mut probes = Vec::with_capacity(HOOKS.len());
        let mut grant_from = None;
        for hook in &HOOKS {
            let (function, sub) = function(exe, hook.function)?;
            let k = hook.kind as usize;
            if let Some(name) = hook.locker {
                config.locker_arg[k] = pointer_register(&sub, hook.function, name)?;
            }
            if let Some(name) = hook.request {
                config.request_arg[k] = pointer_register(&sub, hook.function, name)?;
            }
            if hook.kind == EventKind::Grant {
                let (index, from) = parameter(&sub, hook.function, "from")?;
                if from.class != ParameterClass::Integer || from.byte_size != Some(1) {
                    return Err(TraceError::Layout {
                        what: format!("{}'s `from`", hook.function),
                        error: dwarfpeek::value::ValueError::Shape {
                            type_name: ENTRY_STATE_TYPE.to_owned(),
                            what: format!("a {:?} of {:?} bytes", from.class, from.byte_size),
                        },
                    });
                }
                grant_from = Some(abi::argument_register(&sub, index)?);
            }
            probes.push(Probe {
                kind: hook.kind,
                program: hook.program,
                function,
            });
        }
        // HOOKS has a grant, so this is always set; a missing one would be this file's bug.
        let from_register = grant_from.ok_or(TraceError::Missing {
            what: "hook",
            name: "grant",
        })?;
        let (locker, request, from) =
            compile_types(index, locker_type, request_type, entry_state, &mut config)?;

        let table = image.table();
        let generation = layout::place(index, table.ty, &["data", "value", "generation"]).map_err(
            layout_error("LockTable.generation inside the LOCK_TABLE mutex"),
        )?;
        let generation_size =
            layout::size_of(index, generation.ty).map_err(layout_error("LockTable.generation"))?;
        if generation_size != 8 {
            return Err(TraceError::Layout {
                what: "LockTable.generation".to_owned(),
                error: dwarfpeek::value::ValueError::Shape {
                    type_name: "LockTable.generation".to_owned(),
                    what: format!("{generation_size} bytes, not a u64"),
                },
            });
        }
        config.generation_address = table.address.saturating_add(generation.offset);

        Ok(TracePlan {
            probes,
            config,
            locker,
            request,
            grant_from: (from_register, from),
        })
    }
}

/// What of the plan depends on the daemon's types alone: the sizes and text places of the
/// eBPF configuration (set in `config`), and the decoder of the records (for the `Locker`,
/// the `Request` and `grant`'s `from`, an `EntryState`).
pub(super) fn compile_types(
    index: &dwarfpeek::debuginfo::TypeIndex,
    locker_type: TypeRef,
    request_type: TypeRef,
    entry_state: TypeRef,
    config: &mut TraceConfig,
) -> Result<(LockerLayout, RequestLayout, Choice<EntryState>), TraceError> {
    for slot in TextSlot::ALL {
        let path: &[&str] = match slot {
            TextSlot::LockerName | TextSlot::Name => &["resource_name"],
            TextSlot::Element => &["element", "Some", "0"],
            TextSlot::Peer => &["peer", "name"],
        };
        let owner = if slot.in_locker() {
            locker_type
        } else {
            request_type
        };
        config.texts[slot as usize] = text_place(index, owner, path)?;
    }

    if let Some((offset, value)) = none_niche(index, request_type)? {
        config.element_none_offset = offset;
        config.element_none_size = 8;
        config.element_none_value = value;
    }
    let locker = LockerLayout::compile(
        index,
        locker_type,
        config.texts[TextSlot::LockerName as usize],
    )?;
    let request = RequestLayout::compile(
        index,
        request_type,
        [TextSlot::Name, TextSlot::Element, TextSlot::Peer].map(|s| config.texts[s as usize]),
    )?;

    // Each hit copies only what its event reads: of the locker, a request's event reads its
    // identity alone.
    let identity = within_block(locker.identity_span(), LOCKER_TYPE)?;
    let whole = within_block(locker.span(), LOCKER_TYPE)?;
    let request_span = within_block(request.span(), REQUEST_TYPE)?;
    for hook in &HOOKS {
        let k = hook.kind as usize;
        if hook.locker.is_some() {
            config.locker_span[k] = if hook.request.is_some() {
                identity
            } else {
                whole
            };
        }
        if hook.request.is_some() {
            config.request_span[k] = request_span;
        }
    }

    let from = Choice::compile(index, entry_state, 0, compiled::entry_state).map_err(|error| {
        TraceError::Layout {
            what: ENTRY_STATE_TYPE.to_owned(),
            error,
        }
    })?;
    Ok((locker, request, from))
}

/// The function at `path` and its DWARF, checked to be the same function.
fn function(
    exe: &Executable,
    path: &str,
) -> Result<(FunctionSymbol, dwarfpeek::debuginfo::Subprogram), TraceError> {
    let function = exe.function(path)?;
    let sub = exe.subprogram(&function)?;
    if sub.rust_path() != path {
        return Err(TraceError::SubprogramMismatch {
            path: exe.path().to_owned(),
            address: function.address,
            expected: path.to_owned(),
            found: sub.rust_path(),
        });
    }
    Ok((function, sub))
}

fn parameter<'s>(
    sub: &'s dwarfpeek::debuginfo::Subprogram,
    function: &str,
    name: &str,
) -> Result<(usize, &'s Parameter), TraceError> {
    sub.parameter(name)
        .ok_or_else(|| TraceError::ParameterNotFound {
            function: function.to_owned(),
            parameter: name.to_owned(),
        })
}

/// The register of a parameter that is one pointer: a reference, a `Box`, or an
/// `Option<&mut T>` (a nullable pointer, which DWARF describes as an enum of pointer size).
fn pointer_register(
    sub: &dwarfpeek::debuginfo::Subprogram,
    function: &str,
    name: &str,
) -> Result<u32, TraceError> {
    let (index, param) = parameter(sub, function, name)?;
    let one_pointer = param.byte_size == Some(8)
        && matches!(
            param.class,
            ParameterClass::Pointer | ParameterClass::Aggregate
        );
    if !one_pointer {
        return Err(TraceError::NotAPointer {
            function: function.to_owned(),
            parameter: name.to_owned(),
            class: param.class,
            size: param.byte_size,
        });
    }
    Ok(abi::argument_register(sub, index)?)
}

/// `span` if the eBPF programs can copy it: it must end within [`BLOCK_BYTES`].
fn within_block(span: Span, name: &str) -> Result<Span, TraceError> {
    if span.end() as usize <= BLOCK_BYTES {
        Ok(span)
    } else {
        Err(TraceError::TooLarge {
            type_name: name.to_owned(),
            size: u64::from(span.end()),
            max: BLOCK_BYTES,
        })
    }
}

/// Where `Request.element: Option<String>` says `None`, when it does so in 8 bytes: the
/// offset in the request of its discriminant (a tag, or the niche in the `String`) and the
/// value that means `None`. Any other layout is not checked, and the element is copied.
fn none_niche(
    index: &dwarfpeek::debuginfo::TypeIndex,
    request: TypeRef,
) -> Result<Option<(u32, u64)>, TraceError> {
    let layout_error = |error| TraceError::Layout {
        what: "Request.element".to_owned(),
        error,
    };
    let Place { ty, offset } = layout::place(index, request, &["element"]).map_err(layout_error)?;
    let variants = layout::variants(index, ty).map_err(layout_error)?;
    let none = variants
        .variants
        .iter()
        .find(|(name, _)| name == "None")
        .and_then(|(_, value)| *value);
    let (Some((at, 8)), Some(value)) = (variants.discriminant, none) else {
        return Ok(None);
    };
    Ok(u32::try_from(offset.saturating_add(at))
        .ok()
        // Unaligned (no Option<String> is): no test, the element is copied whatever it is.
        .filter(|at| (*at as usize) + 8 <= BLOCK_BYTES && at % 8 == 0)
        .map(|at| (at, value)))
}

/// Where the `String` at `path` inside `ty` keeps its pointer and length.
fn text_place(
    index: &dwarfpeek::debuginfo::TypeIndex,
    ty: TypeRef,
    path: &[&str],
) -> Result<TextPlace, TraceError> {
    let what = || path.join(".");
    let layout_error = |error| TraceError::Layout {
        what: what(),
        error,
    };
    let Place { ty, offset } = layout::place(index, ty, path).map_err(layout_error)?;
    let (pointer, len) = layout::string_parts(index, ty).map_err(layout_error)?;
    let within = |part: u64| {
        let at = offset.saturating_add(part);
        // The eBPF side reads these words with aligned loads; a usize is 8-aligned in any
        // struct, so this only fails for a layout that is not a String's.
        if at % 8 != 0 {
            return Err(layout_error(dwarfpeek::value::ValueError::Shape {
                type_name: what(),
                what: format!("a pointer or length at the unaligned offset {at}"),
            }));
        }
        u32::try_from(at)
            .ok()
            .filter(|at| (*at as usize) < BLOCK_BYTES)
            .ok_or_else(|| TraceError::TooLarge {
                type_name: what(),
                size: at,
                max: BLOCK_BYTES,
            })
    };
    Ok(TextPlace {
        pointer_offset: within(pointer)?,
        len_offset: within(len)?,
    })
}
