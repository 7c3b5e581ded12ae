//! The Python half of running a request, with no Erlang term in sight: namespaces, module
//! lookup, the compiled-code cache, and the calls themselves. Executor threads, GIL held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::{PyNameError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyString, PyTuple};

use crate::interp;

/// A private namespace: a fresh `dict` that works like a module's globals (`py:bind`), and the
/// `contextvars` context its requests run in, which lasts as long as the namespace.
pub struct Namespace {
    dict: PyOnceLock<Py<PyDict>>,
    context: PyOnceLock<Py<PyAny>>,
    /// How many of its requests are running on the context's executor, nested ones included:
    /// only the outermost enters and exits the context (entering it twice is an error).
    entered: AtomicUsize,
}

impl Namespace {
    /// An empty namespace, filled on first use.
    pub fn new() -> Self {
        Namespace {
            dict: PyOnceLock::new(),
            context: PyOnceLock::new(),
            entered: AtomicUsize::new(0),
        }
    }

    fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.dict
            .get_or_try_init(py, || {
                let dict = PyDict::new(py);
                dict.set_item("__builtins__", builtins(py)?)?;
                dict.set_item("__name__", "__main__")?;
                dict.set_item("erlang", py.import("erlang")?)?;
                Ok::<_, PyErr>(dict.unbind())
            })
            .map(|d| d.bind(py).clone())
    }
}

static MAIN_NAMESPACE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SYS_MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static BUILTINS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
/// Compiled code objects by (mode, source); bounded, cleared when full. The lock is held
/// around map operations only, never while Python code runs (code objects dropped by a clear
/// are released after it): on a free-threaded build, executors take it in parallel.
type CodeCache = HashMap<(Mode, Vec<u8>), Py<PyAny>>;
static CODE_CACHE: Mutex<Option<CodeCache>> = Mutex::new(None);
const CODE_CACHE_LIMIT: usize = 512;

/// How source code is compiled.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One expression.
    Eval,
    /// Statements.
    Exec,
}

/// Runs `run` (a request's Python code) in the request's `contextvars` context
/// (docs/context-affinity.md): a bound context's own, which keeps what its requests set for
/// its whole life; for any other request a fresh copy of the context current on the executor,
/// which is its base context between requests (a request nested in a callback starts from a
/// copy of the outer request's), so nothing one request sets reaches the next.
pub fn in_request_context<R>(
    py: Python<'_>,
    private: Option<&Namespace>,
    run: impl FnOnce() -> R,
) -> PyResult<R> {
    let context = match private {
        None => Some(interp::copy_current_context(py)?),
        Some(ns) if ns.entered.fetch_add(1, Ordering::AcqRel) == 0 => {
            let context = ns.context.get_or_try_init(py, || {
                Ok::<_, PyErr>(
                    CONTEXT
                        .import(py, "contextvars", "Context")?
                        .call0()?
                        .unbind(),
                )
            });
            match context {
                Ok(context) => Some(context.bind(py).clone()),
                Err(err) => {
                    ns.entered.fetch_sub(1, Ordering::AcqRel);
                    return Err(err);
                }
            }
        }
        // Nested in one of the same context's requests: it is entered already.
        Some(_) => None,
    };
    if let Some(context) = &context {
        if let Err(err) = interp::enter_context(context) {
            if let Some(ns) = private {
                ns.entered.fetch_sub(1, Ordering::AcqRel);
            }
            return Err(err);
        }
    }
    let result = run();
    if let Some(context) = &context {
        // Only fails when the code left another context entered, which `Context.run` never
        // does: nothing to undo then but to say so.
        if let Err(err) = interp::exit_context(context) {
            log::error!("cannot leave a request's contextvars context: {err}");
        }
    }
    if let Some(ns) = private {
        ns.entered.fetch_sub(1, Ordering::AcqRel);
    }
    Ok(result)
}

/// The globals a job runs in: its context's private namespace, else `__main__`'s.
pub fn namespace<'py>(
    py: Python<'py>,
    private: Option<&Namespace>,
) -> PyResult<Bound<'py, PyDict>> {
    match private {
        Some(ns) => ns.dict(py),
        None => MAIN_NAMESPACE
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("__main__")?.dict().unbind())
            })
            .map(|ns| ns.bind(py).clone()),
    }
}

fn builtins(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    BUILTINS
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("builtins")?.unbind()))
        .map(|m| m.bind(py))
}

fn sys_modules(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    SYS_MODULES
        .get_or_try_init(py, || {
            let modules = py.import("sys")?.getattr("modules")?;
            Ok::<_, PyErr>(modules.cast_into::<PyDict>().map_err(PyErr::from)?.unbind())
        })
        .map(|modules| modules.bind(py))
}

fn import<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let modules = sys_modules(py)?;
    if let Some(module) = modules.get_item(name)? {
        if !initializing(py, &module) {
            return Ok(module);
        }
    }
    // Not imported yet, or still being imported by another thread: the import waits for that
    // thread to finish the module (or fail), as Python's `import` statement does.
    Ok(py.import(name)?.into_any())
}

/// True while `module` is being imported: it is in `sys.modules` from the start of its body,
/// half built, until `__spec__._initializing` goes false. CPython's own import statement makes
/// the same check before it hands out a module found in `sys.modules` ("import_ensure_initialized"
/// in Python/import.c). Modules without a spec (made by hand) are never being imported.
/// Any doubt (an attribute that cannot be read) counts as being imported: the slow path is
/// always right.
fn initializing(py: Python<'_>, module: &Bound<'_, PyAny>) -> bool {
    let flag = module
        .getattr_opt(intern!(py, "__spec__"))
        .and_then(|spec| match spec {
            Some(spec) if !spec.is_none() => spec.getattr_opt(intern!(py, "_initializing")),
            _ => Ok(None),
        })
        .and_then(|flag| flag.map_or(Ok(false), |flag| flag.is_truthy()));
    flag.unwrap_or(true)
}

fn utf8<'b>(bytes: &'b [u8], what: &str) -> PyResult<&'b str> {
    std::str::from_utf8(bytes)
        .map_err(|_| PyTypeError::new_err(format!("{what} is not valid UTF-8")))
}

/// The object `module.function` names (`function` may be dotted); `__main__` means the
/// job's namespace.
pub fn resolve<'py>(
    py: Python<'py>,
    namespace: &Bound<'py, PyDict>,
    module: &[u8],
    function: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let module = utf8(module, "module name")?;
    let function = utf8(function, "function name")?;
    let mut parts = function.split('.');
    let first = parts.next().unwrap_or_default();
    let mut target = if module == "__main__" {
        namespace
            .get_item(first)?
            .ok_or_else(|| PyNameError::new_err(format!("name '{first}' is not defined")))?
    } else {
        import(py, module)?.getattr(PyString::intern(py, first))?
    };
    for part in parts {
        target = target.getattr(PyString::intern(py, part))?;
    }
    Ok(target)
}

/// What [`resolve`] finds in `__main__`'s namespace, or in a module already imported, with no
/// import: `None` when the module is not (fully) imported or the name does not resolve.
pub fn resolve_loaded<'py>(
    py: Python<'py>,
    module: &[u8],
    function: &[u8],
) -> Option<Bound<'py, PyAny>> {
    let module = std::str::from_utf8(module).ok()?;
    let function = std::str::from_utf8(function).ok()?;
    let mut parts = function.split('.');
    let first = parts.next()?;
    let mut target = if module == "__main__" {
        namespace(py, None).ok()?.get_item(first).ok()??
    } else {
        let loaded = sys_modules(py).ok()?.get_item(module).ok()??;
        if initializing(py, &loaded) {
            return None;
        }
        loaded.getattr(PyString::intern(py, first)).ok()?
    };
    for part in parts {
        target = target.getattr(PyString::intern(py, part)).ok()?;
    }
    Some(target)
}

fn compiled<'py>(py: Python<'py>, source: &[u8], mode: Mode) -> PyResult<Bound<'py, PyAny>> {
    let key = (mode, source.to_vec());
    if let Ok(cache) = CODE_CACHE.lock() {
        if let Some(code) = cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(code.bind(py).clone());
        }
    }
    let mode_name = match mode {
        Mode::Eval => "eval",
        Mode::Exec => "exec",
    };
    let code = builtins(py)?.getattr("compile")?.call1((
        PyBytes::new(py, source),
        "<erlang>",
        mode_name,
    ))?;
    let full = match CODE_CACHE.lock() {
        Ok(mut cache) => {
            let cache = cache.get_or_insert_with(HashMap::new);
            let full = if cache.len() >= CODE_CACHE_LIMIT {
                std::mem::take(cache)
            } else {
                HashMap::new()
            };
            cache.insert(key, code.clone().unbind());
            full
        }
        Err(_) => HashMap::new(),
    };
    // Dropping a code object may run Python code (weakref callbacks): not under the lock.
    drop(full);
    Ok(code)
}

/// Calls `callable(*args, **kwargs)` (no keyword dict when it is empty).
pub fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: Bound<'py, PyTuple>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = if kwargs.is_empty() {
        None
    } else {
        Some(kwargs)
    };
    callable.call(args, kwargs)
}

/// Evaluates `source` in `namespace` after merging `locals` into it (they stay).
pub fn eval<'py>(
    py: Python<'py>,
    namespace: &Bound<'py, PyDict>,
    source: &[u8],
    locals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    if !locals.is_empty() {
        namespace.update(locals.as_mapping())?;
    }
    let code = compiled(py, source, Mode::Eval)?;
    builtins(py)?.getattr("eval")?.call1((code, namespace))
}

/// Runs the statements `source` in `namespace`.
pub fn exec(py: Python<'_>, namespace: &Bound<'_, PyDict>, source: &[u8]) -> PyResult<()> {
    let code = compiled(py, source, Mode::Exec)?;
    builtins(py)?.getattr("exec")?.call1((code, namespace))?;
    Ok(())
}

/// Up to `max` items of `iterator`, and whether it is exhausted.
pub fn take<'py>(
    iterator: Bound<'py, PyAny>,
    max: usize,
) -> PyResult<(Vec<Bound<'py, PyAny>>, bool)> {
    let mut iterator = match iterator.cast_into::<PyIterator>() {
        Ok(iterator) => iterator,
        Err(err) => {
            let name = err
                .into_inner()
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            return Err(PyTypeError::new_err(format!(
                "'{name}' object is not an iterator"
            )));
        }
    };
    let mut items = Vec::with_capacity(max.min(1024));
    while items.len() < max {
        match iterator.next() {
            Some(item) => items.push(item?),
            None => return Ok((items, true)),
        }
    }
    Ok((items, false))
}

static GETFRAME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// True when the Python thread whose thread state is at `tstate` (`Slot::tstate`) is at a point where an exception cannot unwind
/// cleanly, so an interrupt must wait (docs/architecture.md, "Timeouts and dead callers"):
/// - inside the import machinery (a frame of `importlib._bootstrap` or `_bootstrap_external`
///   on its stack, which includes the body of a module being imported): an exception there
///   can leave a module half-built in `sys.modules` for the life of the interpreter;
/// - inside code CPython calls from C while it cleans up: `__del__`, weakref callbacks (the
///   `weakref`/`_weakrefset` modules): an exception there is printed as "ignored" and lost,
///   and leaves the cleanup half done;
/// - inside a context manager's `__exit__`/`__aexit__`: the `finally` of library code.
///
/// Any doubt (a frame that cannot be read) counts as unsafe. Reads another thread's frames:
/// only for GIL builds, where the caller's GIL keeps that thread still (free-threaded builds
/// check their own stack, [`unsafe_here`]).
pub fn at_unsafe_point(py: Python<'_>, tstate: usize) -> bool {
    match interp::thread_frame(py, tstate) {
        Some(frame) => unsafe_stack(py, frame),
        // The thread runs no Python code now: nothing to protect.
        None => false,
    }
}

/// [`at_unsafe_point`] for the calling thread's own stack (safe on any build).
pub fn unsafe_here(py: Python<'_>) -> bool {
    let frame = GETFRAME
        .import(py, "sys", "_getframe")
        .and_then(|f| f.call0());
    match frame {
        Ok(frame) => unsafe_stack(py, frame),
        // No Python frame at all: nothing to protect.
        Err(_) => false,
    }
}

fn unsafe_stack<'py>(py: Python<'py>, mut frame: Bound<'py, PyAny>) -> bool {
    // The stack is bounded by the recursion limit; this loop only reads attributes.
    while !frame.is_none() {
        let code = frame.getattr(intern!(py, "f_code"));
        let unsafe_frame = code.ok().and_then(|code| {
            let file = code.getattr(intern!(py, "co_filename")).ok()?;
            let name = code.getattr(intern!(py, "co_name")).ok()?;
            let file = file.cast_into::<PyString>().ok()?;
            let name = name.cast_into::<PyString>().ok()?;
            Some(is_unsafe_code(file.to_str().ok()?, name.to_str().ok()?))
        });
        if unsafe_frame != Some(false) {
            return true;
        }
        match frame.getattr(intern!(py, "f_back")) {
            Ok(back) => frame = back,
            Err(_) => return true,
        }
    }
    false
}

/// The code objects an interrupt must not land in (see [`at_unsafe_point`]): the import
/// machinery (frozen in the usual builds, plain files in builds without frozen modules),
/// the weakref modules, finalizers and context-manager exits.
fn is_unsafe_code(file: &str, name: &str) -> bool {
    file.starts_with("<frozen importlib.")
        || file.ends_with("importlib/_bootstrap.py")
        || file.ends_with("importlib/_bootstrap_external.py")
        || file.ends_with("/weakref.py")
        || file.ends_with("/_weakrefset.py")
        || matches!(name, "__del__" | "__exit__" | "__aexit__")
}
