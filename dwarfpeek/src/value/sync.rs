//! std's locks and `RefCell`, with their state: a `Mutex`'s and an `RwLock`'s futex words
//! and poison flags, a `RefCell`'s borrow flag. The encodings of the words are std's own
//! (`library/std/src/sys/sync/*/futex.rs`), not layout: those come from DWARF.

use super::decode::Decoder;
use super::tree::{MutexState, RwLockState, Value};
use super::ValueError;
use crate::debuginfo::TypeRef;

/// The futex `RwLock`'s reader count mask; all of it set means write-locked.
const RWLOCK_MASK: u32 = (1 << 30) - 1;
const RWLOCK_READERS_WAITING: u32 = 1 << 30;
const RWLOCK_WRITERS_WAITING: u32 = 1 << 31;

impl<'a> Decoder<'a> {
    /// `Mutex<T>`: `inner` (the futex word: 0 unlocked, 1 locked, 2 contended), `poison`,
    /// `data`.
    pub(super) fn mutex(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (inner_ty, inner_at) = self.field(ty, address, "inner")?;
        let word = self.scalar(inner_ty, inner_at)? as u32;
        let state = match word {
            0 => MutexState::Unlocked,
            1 => MutexState::Locked,
            2 => MutexState::Contended,
            other => MutexState::Invalid(other),
        };
        let poisoned = self.poisoned(ty, address)?;
        let (data_ty, data_at) = self.field(ty, address, "data")?;
        Ok(Value::Mutex {
            state,
            poisoned,
            value: Box::new(self.value(data_ty, data_at)),
        })
    }

    /// `RwLock<T>`: `inner.state` (reader count, or all ones for a writer, and two waiting
    /// bits), `poison`, `data`.
    pub(super) fn rw_lock(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (state_ty, state_at) = self.field_path(ty, address, &[&["inner", "state"]])?;
        let raw = self.scalar(state_ty, state_at)? as u32;
        let write_locked = raw & RWLOCK_MASK == RWLOCK_MASK;
        let state = RwLockState {
            raw,
            write_locked,
            readers: if write_locked { 0 } else { raw & RWLOCK_MASK },
            readers_waiting: raw & RWLOCK_READERS_WAITING != 0,
            writers_waiting: raw & RWLOCK_WRITERS_WAITING != 0,
        };
        let poisoned = self.poisoned(ty, address)?;
        let (data_ty, data_at) = self.field(ty, address, "data")?;
        Ok(Value::RwLock {
            state,
            poisoned,
            value: Box::new(self.value(data_ty, data_at)),
        })
    }

    /// `RefCell<T>`: `borrow` (> 0 shared borrows, < 0 mutably borrowed) and `value`.
    pub(super) fn ref_cell(&mut self, ty: TypeRef, address: u64) -> Result<Value, ValueError> {
        let (borrow_ty, borrow_at) = self.field(ty, address, "borrow")?;
        let borrow = self.signed_scalar(borrow_ty, borrow_at)?;
        let (value_ty, value_at) = self.field(ty, address, "value")?;
        Ok(Value::RefCell {
            borrow,
            value: Box::new(self.value(value_ty, value_at)),
        })
    }

    /// A lock's poison flag (`poison.failed`); a lock without one (`nonpoison`) is never
    /// poisoned.
    fn poisoned(&self, ty: TypeRef, address: u64) -> Result<bool, ValueError> {
        let (_, c) = self.composite(ty)?;
        if c.field("poison").is_none() {
            return Ok(false);
        }
        let (flag_ty, flag_at) = self.field(ty, address, "poison")?;
        Ok(self.scalar(flag_ty, flag_at)? != 0)
    }
}
