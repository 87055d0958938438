//! Which x86-64 argument register (0 = rdi, 1 = rsi, 2 = rdx, 3 = rcx, 4 = r8, 5 = r9) holds a
//! parameter when a function is entered: what a uprobe on the function's first instruction
//! can read.
//!
//! It decides from the DWARF of the exact binary, never from the source signature alone: in an
//! optimized build the compiler may fold a constant argument away or drop an unused one, and
//! every later argument moves up a register. The location lists say where each value really
//! is. Only an unoptimized build (parameters spilled to the stack by the prologue, no
//! `DW_CC_nocall`) is mapped from the signature, and only across parameters that take exactly
//! one integer register each; anything else is an error, not a guess.

use crate::debuginfo::{EntryLocation, ParameterClass, Subprogram};
use thiserror::Error;

/// The integer argument registers of the x86-64 calling conventions rustc uses, in order.
const ARGUMENT_REGISTERS: [gimli::Register; 6] = [
    gimli::X86_64::RDI,
    gimli::X86_64::RSI,
    gimli::X86_64::RDX,
    gimli::X86_64::RCX,
    gimli::X86_64::R8,
    gimli::X86_64::R9,
];

#[derive(Debug, Error)]
pub enum AbiError {
    #[error("`{function}` has no parameter number {index}")]
    NoSuchParameter { function: String, index: usize },
    #[error(
        "parameter `{parameter}` of `{function}` is in DWARF register {register} at entry, which \
         is not an argument register; the function cannot be probed at its entry"
    )]
    NotAnArgumentRegister {
        function: String,
        parameter: String,
        register: u16,
    },
    #[error(
        "parameter `{parameter}` of `{function}` was folded into a constant by the optimizer; \
         make the program pass it through a reference so it stays an argument"
    )]
    FoldedAway { function: String, parameter: String },
    #[error(
        "the DWARF does not say where parameter `{parameter}` of `{function}` is at entry \
         (optimized out, or a location this probe does not read)"
    )]
    NoEntryLocation { function: String, parameter: String },
    #[error(
        "the optimizer changed the calling convention of `{function}` (DW_CC_nocall) and \
         parameter `{parameter}` has no register location at entry"
    )]
    ChangedCallingConvention { function: String, parameter: String },
    #[error(
        "parameter `{before}` before `{parameter}` of `{function}` is {class:?} of {size:?} \
         bytes; its register use is not derived here, so `{parameter}`'s register is unknown"
    )]
    UnsupportedPrecedingParameter {
        function: String,
        parameter: String,
        before: String,
        class: ParameterClass,
        size: Option<u64>,
    },
    #[error(
        "parameter `{parameter}` of `{function}` is passed on the stack (argument slot {slot}); \
         only register arguments are read"
    )]
    PassedOnStack {
        function: String,
        parameter: String,
        slot: usize,
    },
}

/// The argument register index (0 = first) that holds parameter `index` of `sub` at entry.
pub fn argument_register(sub: &Subprogram, index: usize) -> Result<u32, AbiError> {
    let function = sub.rust_path();
    let param = sub
        .parameters
        .get(index)
        .ok_or_else(|| AbiError::NoSuchParameter {
            function: function.clone(),
            index,
        })?;
    let parameter = param.name.clone().unwrap_or_else(|| format!("#{index}"));
    let slot = match param.entry {
        EntryLocation::Register(register) => ARGUMENT_REGISTERS
            .iter()
            .position(|r| r.0 == register)
            .ok_or_else(|| AbiError::NotAnArgumentRegister {
                function: function.clone(),
                parameter: parameter.clone(),
                register,
            })?,
        EntryLocation::Constant => {
            return Err(AbiError::FoldedAway {
                function,
                parameter,
            })
        }
        EntryLocation::Absent | EntryLocation::Other => {
            return Err(AbiError::NoEntryLocation {
                function,
                parameter,
            })
        }
        EntryLocation::Stack if sub.nocall => {
            return Err(AbiError::ChangedCallingConvention {
                function,
                parameter,
            })
        }
        EntryLocation::Stack => {
            let mut slot = 0;
            for (i, before) in sub.parameters[..index].iter().enumerate() {
                slot += integer_registers(before.class, before.byte_size).ok_or_else(|| {
                    AbiError::UnsupportedPrecedingParameter {
                        function: function.clone(),
                        parameter: parameter.clone(),
                        before: before.name.clone().unwrap_or_else(|| format!("#{i}")),
                        class: before.class,
                        size: before.byte_size,
                    }
                })?;
            }
            slot
        }
    };
    if slot >= ARGUMENT_REGISTERS.len() {
        return Err(AbiError::PassedOnStack {
            function,
            parameter,
            slot,
        });
    }
    // `slot` < 6 here, so the conversion cannot truncate.
    Ok(slot as u32)
}

/// How many integer argument registers a parameter of this kind takes, for the kinds whose
/// answer does not depend on rustc's unstable aggregate rules.
fn integer_registers(class: ParameterClass, size: Option<u64>) -> Option<usize> {
    match (class, size) {
        (ParameterClass::Pointer, Some(8)) => Some(1),
        (ParameterClass::Integer, Some(1..=8)) => Some(1),
        // rustc's own ABI passes an aggregate no larger than a pointer (an `Option<&T>`, a
        // small struct) as one integer register.
        (ParameterClass::Aggregate, Some(1..=8)) => Some(1),
        // Floats travel in vector registers.
        (ParameterClass::Float, Some(4 | 8)) => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debuginfo::Parameter;

    fn param(name: &str, class: ParameterClass, size: u64, entry: EntryLocation) -> Parameter {
        Parameter {
            name: Some(name.to_owned()),
            class,
            byte_size: Some(size),
            entry,
        }
    }

    fn grant(nocall: bool, params: Vec<Parameter>) -> Subprogram {
        Subprogram {
            path: vec!["app".into(), "change".into(), "apply".into()],
            nocall,
            parameters: params,
        }
    }

    #[test]
    fn optimized_location_wins_over_the_signature() {
        // Release build: `from` folded away, `journal` moved from rcx up to rdx.
        let sub = grant(
            true,
            vec![
                param(
                    "locker",
                    ParameterClass::Pointer,
                    8,
                    EntryLocation::Register(5),
                ),
                param(
                    "req",
                    ParameterClass::Pointer,
                    8,
                    EntryLocation::Register(4),
                ),
                param("from", ParameterClass::Integer, 1, EntryLocation::Constant),
                param(
                    "journal",
                    ParameterClass::Pointer,
                    8,
                    EntryLocation::Register(1),
                ),
            ],
        );
        assert_eq!(argument_register(&sub, 0).unwrap(), 0);
        assert_eq!(argument_register(&sub, 3).unwrap(), 2);
        assert!(matches!(
            argument_register(&sub, 2),
            Err(AbiError::FoldedAway { .. })
        ));
    }

    #[test]
    fn unoptimized_signature_counts_registers() {
        let sub = grant(
            false,
            vec![
                param("locker", ParameterClass::Pointer, 8, EntryLocation::Stack),
                param("ratio", ParameterClass::Float, 8, EntryLocation::Stack),
                param("from", ParameterClass::Integer, 1, EntryLocation::Stack),
                param("journal", ParameterClass::Pointer, 8, EntryLocation::Stack),
                param("name", ParameterClass::Aggregate, 16, EntryLocation::Stack),
                param("after", ParameterClass::Pointer, 8, EntryLocation::Stack),
            ],
        );
        assert_eq!(argument_register(&sub, 0).unwrap(), 0);
        assert_eq!(argument_register(&sub, 3).unwrap(), 2);
        assert!(matches!(
            argument_register(&sub, 5),
            Err(AbiError::UnsupportedPrecedingParameter { .. })
        ));
    }

    #[test]
    fn changed_convention_without_location_is_refused() {
        let sub = grant(
            true,
            vec![param(
                "locker",
                ParameterClass::Pointer,
                8,
                EntryLocation::Stack,
            )],
        );
        assert!(matches!(
            argument_register(&sub, 0),
            Err(AbiError::ChangedCallingConvention { .. })
        ));
    }
}
