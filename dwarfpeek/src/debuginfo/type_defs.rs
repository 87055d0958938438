//! The DWARF types of an executable as plain owned data: what the value reader walks.
//!
//! A description only: sizes and offsets as the DWARF states them (absent when it does not),
//! references between types as [`TypeRef`]s that may dangle in a damaged file. Nothing here
//! reads memory or decides how a value is shown.

/// A type, named by the offset of its entry in `.debug_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeRef(pub u64);

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<.debug_info+{:#x}>", self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeDef {
    /// The Rust path of a named type (`alloc::vec::Vec<u32, alloc::alloc::Global>`: the
    /// enclosing namespaces and types, then `DW_AT_name`), the bare name of a pointer or base
    /// type (`&str`, `*const u8`, `u64`), or empty.
    pub name: String,
    pub byte_size: Option<u64>,
    pub kind: TypeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    Base(BaseKind),
    /// A pointer or reference (rustc also describes a `Box<T>` of a sized `T` this way).
    Pointer {
        target: Option<TypeRef>,
    },
    Struct(Composite),
    Union(Composite),
    /// A C-like enum.
    Enumeration {
        /// The integer type that holds the value, when given.
        underlying: Option<TypeRef>,
        enumerators: Vec<Enumerator>,
    },
    Array {
        element: Option<TypeRef>,
        /// The element count of the (first) dimension.
        count: Option<u64>,
    },
    /// A typedef or qualifier (`const`, `volatile`): the same bytes as its target.
    Alias {
        target: Option<TypeRef>,
    },
    /// A function type (what a function pointer points to).
    Subroutine,
    /// A DWARF tag the reader has no use for, kept so that a reference to it says so.
    Other(u16),
}

/// What a base type's bytes mean (`DW_AT_encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseKind {
    Bool,
    Signed,
    Unsigned,
    Float,
    /// A Unicode scalar value (Rust `char`).
    Char,
    /// An encoding the reader does not interpret.
    Other(u8),
}

/// A struct or union.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Composite {
    pub fields: Vec<Field>,
    pub template_params: Vec<TemplateParam>,
    /// A Rust enum with data: the struct holds its variants.
    pub variant_part: Option<VariantPart>,
    /// `DW_AT_declaration`: the definition is elsewhere (found by name).
    pub declaration: bool,
}

impl Composite {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.as_deref() == Some(name))
    }

    pub fn template_param(&self, name: &str) -> Option<TypeRef> {
        self.template_params
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| p.ty)
    }
}

/// A `DW_TAG_member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Option<String>,
    pub ty: Option<TypeRef>,
    /// Bytes from the start of the enclosing type (`DW_AT_data_member_location`).
    pub offset: Option<u64>,
    pub artificial: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateParam {
    pub name: Option<String>,
    pub ty: Option<TypeRef>,
}

/// The variants of a Rust enum with data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantPart {
    /// The field `DW_AT_discr` names: the tag, or for a niche layout the bytes of a field
    /// of the dataful variant. None for a single-variant enum.
    pub discriminant: Option<Field>,
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The discriminant's bits (`DW_AT_discr_value`, sign-extended if it was signed); None
    /// for the default variant (the dataful one of a niche layout).
    pub discr_value: Option<u64>,
    /// The member named after the variant; its type holds the variant's fields, at offsets
    /// from the start of the enum.
    pub field: Field,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerator {
    pub name: String,
    /// The value's bits (`DW_AT_const_value`, sign-extended if it was signed).
    pub value: u64,
}
