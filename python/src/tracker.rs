//! Class tracking: a dynamic class gets an id the first time it is pickled,
//! the id travels in the pickle, and every load of that id in one process
//! yields the same class object, so `isinstance` holds across loads (and a
//! class loaded in a worker is pickled again under its original id).
//!
//! The id is a digest of the class's definition (see `fingerprint`), so the
//! same source gives the same bytes in every run. Two live classes with the
//! same definition (a class statement run twice) must still differ: the
//! digest is salted with a counter until it names no other live class.
//!
//! Only weak references are kept. Both maps are touched with the interpreter
//! attached and without running Python code while the lock is held.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyWeakrefMethods;
use pyo3::types::{PyString, PyWeakrefReference};

#[derive(Default)]
struct Tracker {
    by_id: HashMap<String, Py<PyWeakrefReference>>,
    by_class: HashMap<usize, (Py<PyWeakrefReference>, String)>,
    purge_at: usize,
}

fn tracker() -> MutexGuard<'static, Tracker> {
    static TRACKER: LazyLock<Mutex<Tracker>> = LazyLock::new(Mutex::default);
    // A poisoned lock only means a panic elsewhere; the maps stay consistent.
    TRACKER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The id of `class`, drawn at random the first time it is asked for.
pub(crate) fn id_of<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = class.py();
    if let Some(id) = known_id(class) {
        return Ok(PyString::new(py, &id));
    }
    let id = fresh_id(class)?;
    let weak = PyWeakrefReference::new(class)?.unbind();
    let weak_again = weak.clone_ref(py);
    let mut tracker = tracker();
    let id = match tracker.by_class.get(&(class.as_ptr() as usize)) {
        Some((known, known_id)) if points_to(py, known, class) => known_id.clone(),
        _ => {
            tracker.by_class.insert(class.as_ptr() as usize, (weak, id.clone()));
            tracker.by_id.insert(id.clone(), weak_again);
            id
        }
    };
    drop(tracker);
    Ok(PyString::new(py, &id))
}

/// The live class (or typing variable) tracked under `id`, if any.
pub(crate) fn lookup<'py>(py: Python<'py>, id: &str) -> Option<Bound<'py, PyAny>> {
    tracker().by_id.get(id).and_then(|weak| weak.bind(py).upgrade())
}

/// Lets loads no longer find what is tracked, as in a process that has
/// loaded nothing yet: for a benchmark of first loads. What is tracked
/// stays known by its object, so that dumps keep its id.
#[pyfunction]
#[pyo3(name = "_forget_tracked_loads")]
pub(crate) fn forget_loads() {
    let dropped = std::mem::take(&mut tracker().by_id);
    // Weak references are released once the lock is let go.
    drop(dropped);
}

/// The class already tracked under `id`, or else `class`, now tracked under it.
pub(crate) fn lookup_or_track<'py>(id: &str, class: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let chosen = lookup(py, id).unwrap_or(class);
    // Made outside the lock: creating objects may run the garbage collector,
    // and with it finalizers that might load pickles themselves.
    let weak = PyWeakrefReference::new(&chosen)?.unbind();
    let weak_again = weak.clone_ref(py);
    let mut tracker = tracker();
    match tracker.by_id.get(id).and_then(|known| known.bind(py).upgrade()) {
        // Another thread tracked this id meanwhile: its class wins.
        Some(current) if !current.is(&chosen) => return Ok(current),
        Some(_) => {}
        None => {
            tracker.by_id.insert(id.to_owned(), weak_again);
        }
    }
    tracker.by_class.insert(chosen.as_ptr() as usize, (weak, id.to_owned()));
    tracker.purge_dead(py);
    drop(tracker);
    Ok(chosen)
}

fn known_id(class: &Bound<'_, PyAny>) -> Option<String> {
    let tracker = tracker();
    let (weak, id) = tracker.by_class.get(&(class.as_ptr() as usize))?;
    points_to(class.py(), weak, class).then(|| id.clone())
}

fn points_to(py: Python<'_>, weak: &Py<PyWeakrefReference>, class: &Bound<'_, PyAny>) -> bool {
    weak.bind(py).upgrade().is_some_and(|alive| alive.is(class))
}

/// The first salted digest of `class`'s definition that no other live
/// class holds. Digests are made outside the lock (they run Python code).
fn fresh_id(class: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = class.py();
    for salt in 0.. {
        let id = crate::fingerprint::digest(class, salt)?;
        let taken = tracker()
            .by_id
            .get(&id)
            .and_then(|weak| weak.bind(py).upgrade())
            .is_some_and(|holder| !holder.is(class));
        if !taken {
            return Ok(id);
        }
    }
    unreachable!("the salts are unbounded")
}

impl Tracker {
    /// Dead entries are dropped now and then, so that the maps stay
    /// proportional to the live dynamic classes.
    fn purge_dead(&mut self, py: Python<'_>) {
        let size = self.by_id.len() + self.by_class.len();
        if size < self.purge_at {
            return;
        }
        self.by_id.retain(|_, weak| weak.bind(py).upgrade().is_some());
        self.by_class.retain(|_, (weak, _)| weak.bind(py).upgrade().is_some());
        self.purge_at = 2 * (self.by_id.len() + self.by_class.len()) + 64;
    }
}
