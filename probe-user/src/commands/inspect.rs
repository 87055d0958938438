//! `latch-probe print` and `latch-probe type`: any static of any Rust program with debug
//! info, by path and expression, live or from a core file.

use super::target_args::{Target, TargetArgs};
use anyhow::Result;
use clap::Args;
use dwarfpeek::inspect::expr::Expr;
use dwarfpeek::inspect::show::{self, Shown};
use dwarfpeek::inspect::Inspected;
use latch_probe::error::{exit_code, ProbeError};
use latch_probe::target;

const EXPR_HELP: &str = "EXPR: a static's Rust path (a unique suffix is enough: LOCK_TABLE), \
    then steps as in Rust: .field, .0, [3], [2..5], [\"key\"] or [42] (map lookup), .len(), \
    and enum variants (.Some.0, or `as Rect`). References, boxes, Rc/Arc, locks and raw \
    pointers are looked through. Examples:\n  \
    latch-probe print --pid P LOCK_TABLE.lockers.len()\n  \
    latch-probe print --pid P 'LOCK_TABLE.lockers[3].waitings'\n  \
    latch-probe type --pid P 'LOCK_TABLE.lockers[3]'";

#[derive(Args)]
#[command(
    about = "Print any static of a Rust program (or a part of it) by path",
    after_help = EXPR_HELP
)]
pub(super) struct PrintArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// What to print (see below).
    #[arg(value_name = "EXPR")]
    expr: String,
    #[command(flatten)]
    show: ShowArgs,
}

/// How a value is shown: the options of `print`, here and in the shell.
#[derive(Args, Clone, Copy, Debug)]
pub(super) struct ShowArgs {
    /// JSON instead of Rust-Debug-like text.
    #[arg(long)]
    pub json: bool,
    /// Levels of nesting shown.
    #[arg(long, default_value_t = 12)]
    pub depth: usize,
    /// Elements shown (and decoded) per collection.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Show the addresses of references, boxes and shared pointers.
    #[arg(long)]
    pub addr: bool,
}

impl ShowArgs {
    /// The value `expr` names in `inspected`, as text or JSON.
    pub(super) fn show(&self, inspected: &Inspected, expr: &Expr) -> Result<String> {
        // One more element than shown, so that a cut collection still says how long it is.
        let value = inspected.value(expr, self.limit as u64 + 1)?;
        let shown = Shown {
            depth: self.depth,
            limit: self.limit,
            addresses: self.addr,
        };
        Ok(if self.json {
            serde_json::to_string_pretty(&show::json(&value, shown))?
        } else {
            show::text(&value, shown)
        })
    }
}

#[derive(Args)]
#[command(
    about = "Print the layout DWARF gives a static's type, or a part's (offsets, sizes)",
    after_help = EXPR_HELP
)]
pub(super) struct TypeArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[arg(value_name = "EXPR")]
    expr: String,
}

/// The process or core file `target` names, opened for `print` and `type`.
pub(super) fn open(target: &TargetArgs) -> Result<Inspected, ProbeError> {
    match target.target() {
        Target::Live(pid) => target::inspect_live(pid),
        Target::Core { core, exe } => target::inspect_core(core, exe),
    }
}

pub(super) fn print(args: &PrintArgs) -> Result<u8> {
    let expr = Expr::parse(&args.expr)?;
    let inspected = open(&args.target)?;
    println!("{}", args.show.show(&inspected, &expr)?);
    Ok(exit_code::OK)
}

pub(super) fn type_of(args: &TypeArgs) -> Result<u8> {
    let expr = Expr::parse(&args.expr)?;
    let inspected = open(&args.target)?;
    print!("{}", inspected.type_layout(&expr)?);
    Ok(exit_code::OK)
}
