//! Where a part of a value sits inside it, from the DWARF alone: the offset and type at the
//! end of a path of field and variant names, and where a `String` keeps its pointer and
//! length. What the eBPF programs need to copy the right bytes without reading a layout
//! anywhere but the exact binary's debug info.
//!
//! Also how an enum's active variant is told from its bytes and what an integer field is,
//! so that a reader of many small copies (a trace's records) can decode them with offsets
//! computed once instead of a value reader per copy.
//!
//! It reads no memory; a path the type does not have is a [`ValueError::Shape`] that names
//! the step that failed.

use super::collections::BUF_PTR;
use super::decode::{mask, shape, Decoder};
use super::{Limits, ValueError};
use crate::debuginfo::{BaseKind, TypeIndex, TypeKind, TypeRef};
use crate::memory::{MemoryError, MemorySource};

/// A part of a value: its type and its offset from the start of the enclosing value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub ty: TypeRef,
    pub offset: u64,
}

/// The place at the end of `path` inside a value of type `ty`. Each step names a field
/// (`peer`, or `0` for a tuple field `__0`) or, in an enum with data, a variant (`Some`),
/// whose own fields the next step names.
pub fn place(index: &TypeIndex, ty: TypeRef, path: &[&str]) -> Result<Place, ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    path.iter().try_fold(
        Place {
            ty: index.resolve(ty),
            offset: 0,
        },
        |at, step| {
            let (def, c) = decoder.composite(at.ty)?;
            let variant = c
                .variant_part
                .as_ref()
                .and_then(|part| {
                    part.variants
                        .iter()
                        .find(|v| v.field.name.as_deref() == Some(step))
                })
                .map(|v| &v.field);
            let tuple_name = format!("__{step}");
            let field = variant
                .or_else(|| c.field(step))
                .or_else(|| c.field(&tuple_name))
                .ok_or_else(|| shape(def, &format!("no field or variant `{step}`")))?;
            let (Some(fty), Some(offset)) = (field.ty, field.offset) else {
                return Err(shape(def, &format!("`{step}` has no type or offset")));
            };
            Ok(Place {
                ty: index.resolve(fty),
                offset: at.offset.saturating_add(offset),
            })
        },
    )
}

/// Where a `String` keeps its data pointer and its length: offsets from its start.
pub fn string_parts(index: &TypeIndex, ty: TypeRef) -> Result<(u64, u64), ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let (vec_ty, vec_at) = decoder.field(ty, 0, "vec")?;
    let (buf_ty, buf_at) = decoder.field_path(vec_ty, vec_at, BUF_PTR)?;
    let (pointer, inner) = decoder.unwrap_scalar(buf_ty)?;
    let def = decoder.def(pointer)?;
    if !matches!(def.kind, TypeKind::Pointer { .. }) {
        return Err(shape(def, "expected the buffer's pointer"));
    }
    let (_, len_at) = decoder.field(vec_ty, vec_at, "len")?;
    Ok((buf_at.saturating_add(inner), len_at))
}

/// The field names that lead to byte `offset` inside a value of type `ty`, outermost first
/// (`["inner", "futex"]` for the futex word of a `Mutex`): down to the innermost struct
/// field that holds the byte, or to an atomic (whose own insides name nothing). Empty when
/// `ty` has no field there.
pub fn path_at(index: &TypeIndex, ty: TypeRef, offset: u64) -> Vec<String> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let mut path = Vec::new();
    let (mut ty, mut offset) = (index.resolve(ty), offset);
    // Bounded: each step goes one field deeper, and no real type nests this deep.
    for _ in 0..64 {
        let Ok((def, c)) = decoder.composite(ty) else {
            break;
        };
        if def.name.starts_with("core::sync::atomic::") {
            break;
        }
        let holder = c.fields.iter().find_map(|f| {
            let (fty, at) = (f.ty?, f.offset?);
            let size = decoder.size_of(fty).ok()?;
            (at <= offset && offset - at < size.max(1)).then_some((f, fty, at))
        });
        let Some((field, fty, at)) = holder else {
            break;
        };
        path.push(field.name.clone().unwrap_or_else(|| "?".to_owned()));
        ty = index.resolve(fty);
        offset -= at;
    }
    path
}

/// The size in bytes of a value of `ty`.
pub fn size_of(index: &TypeIndex, ty: TypeRef) -> Result<u64, ValueError> {
    Decoder::new(index, &NoMemory, Limits::default()).size_of(ty)
}

/// How the active variant of an enum is told from its bytes: the value reader's rules
/// ([`crate::value::Value::Enum`]) computed once for the type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variants {
    /// Where the discriminant sits in the enum: offset and size (1 to 8 bytes). `None`: the
    /// enum has one variant only.
    pub discriminant: Option<(u64, u64)>,
    /// Each variant's name and the discriminant bits that select it (masked to the
    /// discriminant's size); `None` for the default variant (the dataful one of a niche
    /// layout), which any other bits select.
    pub variants: Vec<(String, Option<u64>)>,
}

impl Variants {
    /// Which of [`Variants::variants`] the discriminant `bits` selects, as the value reader
    /// finds it (an exact value first, else the default); `None`: the bits name no variant.
    pub fn active(&self, bits: u64) -> Option<usize> {
        let bits = match self.discriminant {
            Some((_, size)) => bits & mask(size) as u64,
            None => return (!self.variants.is_empty()).then_some(0),
        };
        let exact = self.variants.iter().position(|(_, v)| *v == Some(bits));
        exact.or_else(|| self.variants.iter().position(|(_, v)| v.is_none()))
    }
}

/// How the variants of the enum `ty` (a C-like enum, or a Rust enum with data) are told
/// apart.
pub fn variants(index: &TypeIndex, ty: TypeRef) -> Result<Variants, ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let ty = index.resolve(ty);
    let def = decoder.def(ty)?;
    let discriminant = |offset: u64, size: u64| match size {
        0 => Ok(None),
        1..=8 => Ok(Some((offset, size))),
        _ => Err(ValueError::Unsupported {
            type_name: def.name.clone(),
            what: format!("a {size}-byte discriminant"),
        }),
    };
    let masked = |value: u64, at: Option<(u64, u64)>| {
        at.map_or(value, |(_, size)| value & mask(size) as u64)
    };
    match &def.kind {
        TypeKind::Enumeration { enumerators, .. } => {
            let at = discriminant(0, decoder.size_of(ty)?)?;
            Ok(Variants {
                discriminant: at,
                variants: enumerators
                    .iter()
                    .map(|e| (e.name.clone(), Some(masked(e.value, at))))
                    .collect(),
            })
        }
        TypeKind::Struct(c) => {
            let part = c
                .variant_part
                .as_ref()
                .ok_or_else(|| shape(def, "expected an enum"))?;
            let at = match &part.discriminant {
                None if part.variants.len() == 1 => None,
                None => return Err(shape(def, "several variants and no discriminant")),
                Some(field) => {
                    let (Some(dty), Some(offset)) = (field.ty, field.offset) else {
                        return Err(shape(def, "a discriminant without type or offset"));
                    };
                    discriminant(offset, decoder.size_of(dty)?)?
                }
            };
            Ok(Variants {
                discriminant: at,
                variants: part
                    .variants
                    .iter()
                    .map(|v| {
                        let name = v.field.name.clone().unwrap_or_default();
                        (name, v.discr_value.map(|value| masked(value, at)))
                    })
                    .collect(),
            })
        }
        _ => Err(shape(def, "expected an enum")),
    }
}

/// What an integer field is: its size (1 to 8 bytes) and whether it is signed.
pub fn integer(index: &TypeIndex, ty: TypeRef) -> Result<(u64, bool), ValueError> {
    let decoder = Decoder::new(index, &NoMemory, Limits::default());
    let def = decoder.def(index.resolve(ty))?;
    match (&def.kind, def.byte_size) {
        (TypeKind::Base(BaseKind::Unsigned), Some(size @ 1..=8)) => Ok((size, false)),
        (TypeKind::Base(BaseKind::Signed), Some(size @ 1..=8)) => Ok((size, true)),
        _ => Err(shape(def, "expected an integer of 1 to 8 bytes")),
    }
}

/// Layout questions read nothing; a read here would be a bug, reported as unmapped.
struct NoMemory;

impl MemorySource for NoMemory {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        Err(MemoryError::Unmapped {
            address,
            len: buf.len() as u64,
            source_name: "a layout query (which reads no memory)".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debuginfo::Executable;
    use crate::memory::LiveProcess;
    use crate::value::{Value, ValueReader};

    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    enum Shade {
        Red,
        Green,
        Blue,
    }

    #[allow(dead_code)]
    enum Shape {
        Dot,
        Line(u32),
        Text(String),
    }

    /// One field of each kind of enum layout: a tag, a niche, a C-like enum.
    #[allow(dead_code)]
    struct Sample {
        count: Option<u32>,
        name: Option<String>,
        shade: Shade,
        maybe_shade: Option<Shade>,
        shape: Shape,
        small: i16,
    }

    fn samples() -> Vec<Sample> {
        let mut all = Vec::new();
        for (i, shade) in [Shade::Red, Shade::Green, Shade::Blue]
            .into_iter()
            .enumerate()
        {
            let shapes = [Shape::Dot, Shape::Line(7), Shape::Text("x".into())];
            for (j, shape) in shapes.into_iter().enumerate() {
                all.push(Sample {
                    count: (i % 2 == 0).then_some(i as u32),
                    name: (j % 2 == 1).then(|| format!("n{j}")),
                    shade,
                    maybe_shade: (j != 1).then_some(shade),
                    shape,
                    small: -3,
                });
            }
        }
        all
    }

    /// The bits at `at` of the value's bytes.
    fn bits(bytes: &[u8], (offset, size): (u64, u64)) -> u64 {
        let mut word = [0u8; 8];
        let at = offset as usize;
        word[..size as usize].copy_from_slice(&bytes[at..at + size as usize]);
        u64::from_le_bytes(word)
    }

    #[test]
    fn variants_name_what_the_value_reader_reads() {
        let exe = Executable::open(&std::env::current_exe().expect("exe")).expect("open");
        let index = TypeIndex::on_demand(&exe).expect("index");
        let sample = index
            .by_name("dwarfpeek::value::layout::tests::Sample")
            .expect("Sample in this test's DWARF");
        let size = size_of(&index, sample).expect("size") as usize;
        assert_eq!(size, std::mem::size_of::<Sample>());
        // This process reads its own values, as a probe reads another's.
        let memory = LiveProcess::new(nix::unistd::getpid());
        for value in samples() {
            let address = (&raw const value) as u64;
            let mut bytes = vec![0u8; size];
            memory.read(address, &mut bytes).expect("own memory");
            let read = ValueReader::new(&index, &memory, Limits::default())
                .read(sample, address)
                .expect("Sample decodes");
            for field in ["count", "name", "shade", "maybe_shade", "shape"] {
                let at = place(&index, sample, &[field]).expect(field);
                let test = variants(&index, at.ty).expect(field);
                let (offset, size) = test.discriminant.expect("several variants");
                let found = test
                    .active(bits(&bytes, (at.offset + offset, size)))
                    .map(|i| test.variants[i].0.as_str());
                let expected = read.field(field).and_then(Value::variant);
                assert_eq!(found, expected, "{field}");
            }
            let small = place(&index, sample, &["small"]).expect("small");
            assert_eq!(integer(&index, small.ty), Ok((2, true)));
        }
        let shape = place(&index, sample, &["shape"]).expect("shape");
        assert!(integer(&index, shape.ty).is_err());
        let names: Vec<_> = variants(&index, shape.ty).expect("shape").variants;
        assert_eq!(names.len(), 3);
    }
}
