//! Wire targets: which module's reconstructors a pickle names, and so what
//! the loading side needs installed.
//!
//! - `native`: `flightpickle._<name>`, the fastest to load;
//! - `cloudpickle`: `cloudpickle.cloudpickle`, for processes with only stock
//!   cloudpickle 3.1 (Dask, Ray workers);
//! - `pyspark`: `pyspark.cloudpickle.cloudpickle`, for PySpark executors.
//!
//! The argument and state shapes are the same for all three, so a target is
//! only a set of callables, resolved once per process and held by each
//! pickler. (The native writer adds a denser function shape of its own,
//! `new_function`, which only the native target has.) Pickle writes a callable as `module name` after importing the
//! module to check that the name leads back to it: a compatible target needs
//! its module importable where the pickle is written, too.
//!
//! The table reducers are called by the C pickler with the object alone, so
//! they read the target of the pickler whose `dump` is running on this
//! thread: `Pickler.dump` sets it for its duration.

use std::cell::Cell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The environment variable that sets the process-wide default target.
pub(crate) const ENV_VAR: &str = "FLIGHTPICKLE_TARGET";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Native,
    Cloudpickle,
    Pyspark,
}

const ALL: [Target; 3] = [Target::Native, Target::Cloudpickle, Target::Pyspark];

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::Cloudpickle => "cloudpickle",
            Target::Pyspark => "pyspark",
        }
    }

    fn module(self) -> &'static str {
        match self {
            Target::Native => crate::reconstruct::HOME,
            Target::Cloudpickle => "cloudpickle.cloudpickle",
            Target::Pyspark => "pyspark.cloudpickle.cloudpickle",
        }
    }

    pub(crate) fn parse(text: &str) -> PyResult<Self> {
        ALL.into_iter().find(|t| t.name() == text).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown flightpickle target {text:?}: expected 'native', 'cloudpickle' or 'pyspark'"
            ))
        })
    }

    /// The reconstructors of this target, imported on first use.
    pub(crate) fn reconstructors(self, py: Python<'_>) -> PyResult<&'static Reconstructors> {
        static CELLS: [PyOnceLock<Reconstructors>; 3] = [PyOnceLock::new(), PyOnceLock::new(), PyOnceLock::new()];
        CELLS[self as usize].get_or_try_init(py, || Reconstructors::load(py, self))
    }
}

/// Declares `Reconstructors` from a table of (field, native name, cloudpickle
/// name); `None` marks a flightpickle-only reconstructor.
macro_rules! reconstructor_table {
    (
        shared { $($field:ident: $native:literal, $stock:literal;)* }
        native_only { $($extra:ident: $extra_native:literal;)* }
    ) => {
        /// The callables a pickle names, for one target.
        pub(crate) struct Reconstructors {
            pub(crate) target: Target,
            $(pub(crate) $field: Py<PyAny>,)*
            $($extra: Option<Py<PyAny>>,)*
        }

        impl Reconstructors {
            fn load(py: Python<'_>, target: Target) -> PyResult<Self> {
                let module = import_module(py, target)?;
                let native = target == Target::Native;
                let get = |native_name: &str, stock_name: &str| -> PyResult<Py<PyAny>> {
                    Ok(module.getattr(if native { native_name } else { stock_name })?.unbind())
                };
                Ok(Self {
                    target,
                    $($field: get($native, $stock)?,)*
                    $($extra: if native { Some(module.getattr($extra_native)?.unbind()) } else { None },)*
                })
            }

            $(
                /// Only the native target has it; the others refuse `what`.
                pub(crate) fn $extra<'py>(&self, py: Python<'py>, what: &str) -> PyResult<&Bound<'py, PyAny>> {
                    match &self.$extra {
                        Some(callable) => Ok(callable.bind(py)),
                        None => Err(self.unsupported(py, what)),
                    }
                }
            )*
        }
    };
}

reconstructor_table! {
    shared {
        make_function: "_make_function", "_make_function";
        function_setstate: "_function_setstate", "_function_setstate";
        make_cell: "_make_cell", "_make_cell";
        make_empty_cell: "_make_empty_cell", "_make_empty_cell";
        builtin_type: "_builtin_type", "_builtin_type";
        make_skeleton_class: "_make_skeleton_class", "_make_skeleton_class";
        make_skeleton_enum: "_make_skeleton_enum", "_make_skeleton_enum";
        class_setstate: "_class_setstate", "_class_setstate";
        subimport: "_subimport", "subimport";
        dynamic_subimport: "_dynamic_subimport", "dynamic_subimport";
        make_dict_keys: "_make_dict_keys", "_make_dict_keys";
        make_dict_values: "_make_dict_values", "_make_dict_values";
        make_dict_items: "_make_dict_items", "_make_dict_items";
        get_dataclass_field_type_sentinel: "_get_dataclass_field_type_sentinel", "_get_dataclass_field_type_sentinel";
        make_typevar: "_make_typevar", "_make_typevar";
        file_reconstructor: "_file_reconstructor", "_file_reconstructor";
    }
    native_only {
        make_paramspec: "_make_paramspec";
        make_typevartuple: "_make_typevartuple";
        make_newtype: "_make_newtype";
        new_function: "_new_function";
        make_descriptor: "_make_descriptor";
        make_dataclass_part: "_make_dataclass_part";
        builtins_class: "_builtins_class";
    }
}

impl Reconstructors {
    fn unsupported(&self, py: Python<'_>, what: &str) -> PyErr {
        let message = format!(
            "cannot pickle {what} for target {:?}: {} has no reconstructor for it; \
             use target='native' (the loading side then needs flightpickle)",
            self.target.name(),
            self.target.module(),
        );
        crate::objects::new_pickling_error(py, message)
    }
}

fn import_module(py: Python<'_>, target: Target) -> PyResult<Bound<'_, PyModule>> {
    py.import(target.module()).map_err(|cause| {
        let message = format!(
            "target {:?} writes pickles that name {}'s reconstructors, and pickle checks \
             each name by importing it: that module must be importable here too ({cause})",
            target.name(),
            target.module(),
        );
        let err = crate::objects::new_pickling_error(py, message);
        err.set_cause(py, Some(cause));
        err
    })
}

/// `FLIGHTPICKLE_TARGET`, read once; the text is kept so that a bad value
/// fails every time a default is needed, not just the first.
static FROM_ENV: LazyLock<Option<String>> = LazyLock::new(|| std::env::var(ENV_VAR).ok());
/// Set by `set_default_target`; wins over the environment. An atomic, not
/// a mutex: every `dumps` reads it, and a mutex's lock and unlock are two
/// locked instructions, which stall the core far longer than their count
/// of instructions says. 0 is none.
static DEFAULT: AtomicU8 = AtomicU8::new(0);

fn set_default(target: Option<Target>) {
    DEFAULT.store(code_of(target), Ordering::Relaxed);
}

fn default_set() -> Option<Target> {
    target_of(DEFAULT.load(Ordering::Relaxed))
}

fn code_of(target: Option<Target>) -> u8 {
    match target {
        None => 0,
        Some(Target::Native) => 1,
        Some(Target::Cloudpickle) => 2,
        Some(Target::Pyspark) => 3,
    }
}

fn target_of(code: u8) -> Option<Target> {
    match code {
        1 => Some(Target::Native),
        2 => Some(Target::Cloudpickle),
        3 => Some(Target::Pyspark),
        _ => None,
    }
}

pub(crate) fn default_target() -> PyResult<Target> {
    if let Some(target) = default_set() {
        return Ok(target);
    }
    match FROM_ENV.as_deref() {
        None | Some("") => Ok(Target::Native),
        Some(text) => Target::parse(text).map_err(|_| {
            PyValueError::new_err(format!(
                "{ENV_VAR}={text:?} is not a flightpickle target: expected 'native', 'cloudpickle' or 'pyspark'"
            ))
        }),
    }
}

/// A pickler's target: the one asked for, else the process default.
pub(crate) fn resolve(requested: Option<&str>) -> PyResult<Target> {
    match requested {
        Some(text) => Target::parse(text),
        None => default_target(),
    }
}

/// Sets the target of picklers made without `target=`; None goes back to
/// `FLIGHTPICKLE_TARGET`, or `native` when it is unset.
#[pyfunction]
#[pyo3(signature = (target))]
pub(crate) fn set_default_target(target: Option<&str>) -> PyResult<()> {
    let parsed = target.map(Target::parse).transpose()?;
    set_default(parsed);
    Ok(())
}

/// The target of picklers made without `target=`.
#[pyfunction]
pub(crate) fn get_default_target() -> PyResult<&'static str> {
    Ok(default_target()?.name())
}

thread_local! {
    static ACTIVE: Cell<Option<Target>> = const { Cell::new(None) };
}

/// Makes `target` the one table reducers use on this thread; returns the
/// previous one, for `restore`.
pub(crate) fn activate(target: Target) -> Option<Target> {
    ACTIVE.with(|active| active.replace(Some(target)))
}

pub(crate) fn restore(previous: Option<Target>) {
    ACTIVE.with(|active| active.set(previous));
}

/// The reconstructors for a table reducer: those of the running `dump`,
/// or the default ones when a reducer is called outside of any.
pub(crate) fn active(py: Python<'_>) -> PyResult<&'static Reconstructors> {
    let target = match ACTIVE.with(Cell::get) {
        Some(target) => target,
        None => default_target()?,
    };
    target.reconstructors(py)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_is_stored_and_read_back_as_itself() {
        for target in ALL.map(Some).into_iter().chain([None]) {
            assert_eq!(target_of(code_of(target)), target);
        }
    }

    #[test]
    fn names_round_trip() {
        for target in ALL {
            assert_eq!(Target::parse(target.name()).ok(), Some(target));
        }
    }

    #[test]
    fn activation_nests() {
        let outer = activate(Target::Pyspark);
        let inner = activate(Target::Cloudpickle);
        assert_eq!(inner, Some(Target::Pyspark));
        restore(inner);
        assert_eq!(ACTIVE.with(Cell::get), Some(Target::Pyspark));
        restore(outer);
        assert_eq!(ACTIVE.with(Cell::get), outer);
    }
}
