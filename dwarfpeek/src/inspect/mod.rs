//! Any static of any Rust program with debug info, by path: `print` (its value, or a part of
//! it reached by an expression) and `type` (the layout DWARF gives its type), over any
//! memory source: a copy of a live process's data, or a core file.
//!
//! It knows no program: the statics, types and layouts are the executable's. The flow
//! is the probe's: memory → debug info → values → an expression's steps → text or JSON.

pub mod expr;
pub mod navigate;
pub mod show;

use crate::debuginfo::{
    DebugInfoError, Executable, LoadBiasError, TypeIndex, TypeKind, TypeRef, TypedStatic,
};
use crate::memory::{CoreError, CoreFile, MemorySource};
use crate::value::{layout, Limits, Value, ValueReader};
use expr::{Expr, Step};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where `Mutex`, `RwLock` and `RefCell` keep the value they guard (std's field names).
const LOCK_CONTENTS: &[&[&str]] = &[&["data", "value"], &["value", "value"]];

#[derive(Debug, Error)]
pub enum InspectError {
    #[error(transparent)]
    Expr(#[from] expr::ExprError),
    #[error(transparent)]
    Step(#[from] navigate::StepError),
    #[error(transparent)]
    DebugInfo(#[from] DebugInfoError),
    #[error("cannot open the core file: {0}")]
    Core(#[from] CoreError),
    #[error("cannot place {} in the target's address space: {error}", exe.display())]
    LoadBias { exe: PathBuf, error: LoadBiasError },
    #[error("no static matches `{root}`; statics whose path contains it: {near}")]
    NoStatic { root: String, near: String },
    #[error("`{root}` matches {count} statics ({some}); give more of the path")]
    Ambiguous {
        root: String,
        count: usize,
        some: String,
    },
    #[error("the value could not be read: {0}")]
    Value(crate::value::ValueError),
    #[error("`type` follows fields, variants, elements and pointers; {step} cannot be taken on `{type_name}`: {what}")]
    TypeStep {
        step: String,
        type_name: String,
        what: String,
    },
}

/// A process or a core file, with its executable's debug info.
pub struct Inspected {
    exe: Executable,
    index: TypeIndex,
    memory: Box<dyn MemorySource>,
    bias: u64,
}

impl Inspected {
    /// `exe` with its type `index` over `memory` (a process's or a core's), where the
    /// executable's link-time addresses are `bias` off.
    pub fn new(
        exe: Executable,
        index: TypeIndex,
        memory: Box<dyn MemorySource>,
        bias: u64,
    ) -> Inspected {
        Inspected {
            exe,
            index,
            memory,
            bias,
        }
    }

    /// A core file of a process that ran `exe`.
    pub fn core(core_path: &Path, exe: Executable) -> Result<Inspected, InspectError> {
        // The index first: an executable without DWARF is refused before the core is read.
        let index = TypeIndex::on_demand(&exe)?;
        let core = CoreFile::open(core_path)?;
        let bias = exe
            .load_bias(core.file_mappings(), exe.path())
            .map_err(|error| InspectError::LoadBias {
                exe: exe.path().to_owned(),
                error,
            })?;
        Ok(Inspected::new(exe, index, Box::new(core), bias))
    }

    /// Every static's path.
    pub fn statics(&self) -> Result<Vec<String>, InspectError> {
        Ok(self.exe.static_paths()?)
    }

    /// The static an expression starts from: its whole path, or the one path that ends
    /// with it.
    fn root(&self, root: &str) -> Result<TypedStatic, InspectError> {
        let paths = self.statics()?;
        let suffix = format!("::{root}");
        let matching: Vec<&String> = paths
            .iter()
            .filter(|p| p.as_str() == root || p.ends_with(&suffix))
            .collect();
        let path = match matching.as_slice() {
            [one] => one.as_str(),
            [] => {
                let near: Vec<&str> = paths
                    .iter()
                    .filter(|p| p.contains(root))
                    .take(8)
                    .map(String::as_str)
                    .collect();
                return Err(InspectError::NoStatic {
                    root: root.to_owned(),
                    near: if near.is_empty() {
                        "none (every static is listed by `Inspected::statics`)".to_owned()
                    } else {
                        near.join(", ")
                    },
                });
            }
            many => {
                if let Some(exact) = many.iter().find(|p| p.as_str() == root) {
                    exact.as_str()
                } else {
                    return Err(InspectError::Ambiguous {
                        root: root.to_owned(),
                        count: many.len(),
                        some: many
                            .iter()
                            .take(5)
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        };
        Ok(self.index.find_static(&self.exe, path)?)
    }

    /// The value `expr` names. `limit` bounds the elements decoded per collection.
    pub fn value(&self, expr: &Expr, limit: u64) -> Result<Value, InspectError> {
        let root = self.root(&expr.root)?;
        let limits = Limits {
            max_elements: limit,
            ..Limits::default()
        };
        let reader = ValueReader::new(&self.index, self.memory.as_ref(), limits);
        let value = reader
            .read(root.ty, root.address.wrapping_add(self.bias))
            .map_err(InspectError::Value)?;
        let mut follow = |ty, address| reader.read(ty, address).unwrap_or_else(Value::Error);
        match navigate::walk(value, &expr.steps, &mut follow)? {
            // Nothing to show but why: an error, not an output (a part that fails inside
            // a value that reads is shown in place).
            Value::Error(error) => Err(InspectError::Value(error)),
            value => Ok(value),
        }
    }

    /// The layout of the type `expr` names, as text: its name and size, then its fields
    /// (offset, size, name, type) or its enum's variants.
    pub fn type_layout(&self, expr: &Expr) -> Result<String, InspectError> {
        let root = self.root(&expr.root)?;
        let mut ty = self.index.resolve(root.ty);
        let mut where_ = format!("static {} at {:#x}", root.path, root.address);
        for step in &expr.steps {
            let (next, note) = self.type_step(ty, step)?;
            ty = self.index.resolve(next);
            where_ = note;
        }
        // As `print` shows what a reference or box points to, so does `type`.
        if let Some(crate::debuginfo::TypeDef {
            kind: TypeKind::Pointer { target: Some(t) },
            ..
        }) = self.index.get(ty)
        {
            where_ = format!("{where_}, behind a pointer");
            ty = self.index.resolve(*t);
        }
        Ok(self.describe(ty, &where_))
    }

    /// Completions of a partly typed expression: static names (by their last segment, or
    /// by a path prefix), or after a `.` the fields and variants of the type there.
    pub fn complete(&self, partial: &str) -> Vec<String> {
        let Some(dot) = partial.rfind('.') else {
            let paths = self.statics().unwrap_or_default();
            let mut found: Vec<String> = if partial.contains("::") {
                paths
                    .into_iter()
                    .filter(|p| p.starts_with(partial))
                    .collect()
            } else {
                paths
                    .iter()
                    .filter_map(|p| p.rsplit("::").next())
                    .filter(|last| last.starts_with(partial))
                    .map(str::to_owned)
                    .collect()
            };
            found.sort();
            found.dedup();
            return found;
        };
        let (head, word) = (&partial[..dot], &partial[dot + 1..]);
        let Ok(expr) = Expr::parse(head) else {
            return Vec::new();
        };
        let Ok(root) = self.root(&expr.root) else {
            return Vec::new();
        };
        let mut ty = self.index.resolve(root.ty);
        for step in &expr.steps {
            match self.type_step(ty, step) {
                Ok((next, _)) => ty = self.index.resolve(next),
                Err(_) => return Vec::new(),
            }
        }
        let mut names = self.member_names(ty);
        names.retain(|n| n.starts_with(word));
        names.into_iter().map(|n| format!("{head}.{n}")).collect()
    }

    /// Fields and variant names of `ty`, through pointers and locks.
    fn member_names(&self, ty: TypeRef) -> Vec<String> {
        let mut ty = self.index.resolve(ty);
        // Bounded: a pointer to a pointer to ... of garbage DWARF ends here.
        for _ in 0..8 {
            match self.index.get(ty).map(|d| &d.kind) {
                Some(TypeKind::Pointer { target: Some(t) }) => ty = self.index.resolve(*t),
                Some(TypeKind::Struct(c)) => {
                    if let Some(inner) = self.looked_through(ty) {
                        ty = self.index.resolve(inner.ty);
                        continue;
                    }
                    let mut names: Vec<String> = c
                        .fields
                        .iter()
                        .filter(|f| !f.artificial)
                        .filter_map(|f| f.name.clone())
                        .map(|n| n.strip_prefix("__").map_or(n.clone(), str::to_owned))
                        .collect();
                    if let Some(part) = &c.variant_part {
                        names.extend(part.variants.iter().filter_map(|v| v.field.name.clone()));
                    }
                    return names;
                }
                _ => return Vec::new(),
            }
        }
        Vec::new()
    }

    /// What a lock guards or a `NonNull` points with: the field a step through `ty` goes
    /// to when `ty` has none of the step's own.
    fn looked_through(&self, ty: TypeRef) -> Option<layout::Place> {
        let pointer_wrapper = self
            .index
            .get(ty)
            .is_some_and(|d| navigate::is_pointer_wrapper(&d.name));
        let wrapper: &[&[&str]] = if pointer_wrapper {
            &[&["pointer"]]
        } else {
            &[]
        };
        LOCK_CONTENTS
            .iter()
            .chain(wrapper)
            .find_map(|path| layout::place(&self.index, ty, path).ok())
    }

    fn type_name(&self, ty: TypeRef) -> String {
        self.index
            .get(ty)
            .map_or_else(|| ty.to_string(), |d| d.name.clone())
    }

    /// One step of `type`: the type it leads to, and where that is.
    fn type_step(&self, ty: TypeRef, step: &Step) -> Result<(TypeRef, String), InspectError> {
        let fail = |what: &str| InspectError::TypeStep {
            step: format!("{step:?}"),
            type_name: self.type_name(ty),
            what: what.to_owned(),
        };
        let def = self.index.get(ty).ok_or_else(|| fail("not in the DWARF"))?;
        match (&def.kind, step) {
            (TypeKind::Pointer { target: Some(t) }, _) => {
                // Through a reference or box, as the value is.
                let (next, note) = self.type_step(self.index.resolve(*t), step)?;
                Ok((next, format!("{note} (behind a pointer)")))
            }
            (_, Step::Field(name)) | (_, Step::As(name)) => {
                match layout::place(&self.index, ty, &[name.as_str()]) {
                    Ok(place) => Ok((
                        place.ty,
                        format!("at offset {} of {}", place.offset, def.name),
                    )),
                    // Through a lock to what it guards, or a `NonNull` to its pointer, as
                    // `print` does.
                    Err(error) => match self.looked_through(ty) {
                        Some(inner) => self.type_step(inner.ty, step),
                        None => Err(fail(&error.to_string())),
                    },
                }
            }
            (_, Step::Position(n)) => {
                let place = layout::place(&self.index, ty, &[n.to_string().as_str()])
                    .map_err(|e| fail(&e.to_string()))?;
                Ok((
                    place.ty,
                    format!("at offset {} of {}", place.offset, def.name),
                ))
            }
            (
                TypeKind::Array {
                    element: Some(e), ..
                },
                Step::Index(_) | Step::Range(..),
            ) => Ok((*e, format!("an element of {}", def.name))),
            (TypeKind::Struct(c), Step::Index(_) | Step::Range(..)) => c
                .template_param("T")
                .map(|t| (t, format!("an element of {} (on the heap)", def.name)))
                .ok_or_else(|| fail("not a collection with elements")),
            (TypeKind::Struct(c), Step::Key(_)) => c
                .template_param("V")
                .map(|t| (t, format!("a value of {} (on the heap)", def.name)))
                .ok_or_else(|| fail("not a map")),
            _ => Err(fail("no such part")),
        }
    }

    fn describe(&self, ty: TypeRef, where_: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let Some(def) = self.index.get(ty) else {
            return format!("{ty}: not in the DWARF\n");
        };
        let size =
            layout::size_of(&self.index, ty).map_or_else(|_| "?".to_owned(), |s| s.to_string());
        let _ = writeln!(out, "{} ({size} bytes; {where_})", def.name);
        let field_line =
            |out: &mut String, name: &str, fty: Option<TypeRef>, offset: Option<u64>| {
                let size = fty
                    .and_then(|t| layout::size_of(&self.index, t).ok())
                    .map_or_else(|| "?".to_owned(), |s| s.to_string());
                let offset = offset.map_or_else(|| "?".to_owned(), |o| o.to_string());
                let tname =
                    fty.map_or_else(|| "?".to_owned(), |t| self.type_name(self.index.resolve(t)));
                let _ = writeln!(out, "  {offset:>6} {size:>6}  {name}: {tname}");
            };
        match &def.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                let _ = writeln!(out, "  offset   size  field");
                for f in c.fields.iter().filter(|f| !f.artificial) {
                    field_line(&mut out, f.name.as_deref().unwrap_or("?"), f.ty, f.offset);
                }
                if let Some(part) = &c.variant_part {
                    if let Some(d) = &part.discriminant {
                        field_line(&mut out, "<discriminant>", d.ty, d.offset);
                    }
                    for v in &part.variants {
                        let discr = v
                            .discr_value
                            .map_or_else(|| "otherwise".to_owned(), |d| format!("= {d:#x}"));
                        let _ = writeln!(
                            out,
                            "  variant {} (discriminant {discr})",
                            v.field.name.as_deref().unwrap_or("?")
                        );
                        if let Some(vty) = v.field.ty {
                            if let Some(crate::debuginfo::TypeDef {
                                kind: TypeKind::Struct(vc),
                                ..
                            }) = self.index.get(self.index.resolve(vty))
                            {
                                for f in vc.fields.iter().filter(|f| !f.artificial) {
                                    field_line(
                                        &mut out,
                                        f.name.as_deref().unwrap_or("?"),
                                        f.ty,
                                        f.offset,
                                    );
                                }
                            }
                        }
                    }
                }
            }
            TypeKind::Enumeration { enumerators, .. } => {
                for e in enumerators {
                    let _ = writeln!(out, "  {} = {}", e.name, e.value);
                }
            }
            TypeKind::Pointer { target } => {
                let _ = writeln!(
                    out,
                    "  -> {}",
                    target
                        .map_or_else(|| "?".to_owned(), |t| self.type_name(self.index.resolve(t)))
                );
            }
            TypeKind::Array { element, count } => {
                let _ = writeln!(
                    out,
                    "  [{}; {}]",
                    element
                        .map_or_else(|| "?".to_owned(), |t| self.type_name(self.index.resolve(t))),
                    count.map_or_else(|| "?".to_owned(), |c| c.to_string())
                );
            }
            _ => {}
        }
        out
    }
}
