//! The raw C API of one own-GIL sub-interpreter (PEP 684): its creation and end, its `erlang`
//! module, running a request in it, and the conversion table on external-term-format bytes.
//! The only `unsafe` of the sub-interpreter pool (docs/architecture.md, invariant 10).
//!
//! Why raw C API and not pyo3: pyo3's safe API assumes one interpreter per process. Its
//! `Python::attach` goes through `PyGILState_*` (main interpreter only), its interned strings,
//! `PyOnceLock` caches and `#[pyclass]` type objects are per process statics that would hand
//! objects of one interpreter to another (their reference counts are not atomic and each
//! sub-interpreter has its own GIL), and `Py<T>` drops without an attached thread go to a
//! process-wide pool released later by whichever interpreter attaches next. So nothing here
//! touches `Python<'_>`, `Bound`, `Py` or any pyo3 static: only `pyo3::ffi`, on the thread
//! whose current thread state belongs to the sub-interpreter, with that interpreter's GIL.
//!
//! Values cross as ETF bytes: the NIF side turns terms into bytes (`term_to_binary`) and bytes
//! into terms (`binary_to_term`) without Python; the table between bytes and objects is the
//! one of `docs/type-conversion.md`, read with core's `etf::Index` and written with its
//! `etf::Writer`, and checked equal to the main interpreter's by `py_parallel_SUITE`.

use std::ffi::{c_char, c_int, c_long, CStr, CString};
use std::ptr;

use erlang_python_core::convert::ARRAY_TAG;
use erlang_python_core::error::Error as ConvError;
use erlang_python_core::etf::{self, Index, Slot, Term, Writer};
use pyo3::ffi;

/// The `erlang` module of a sub-interpreter: plain Python, so it loads in any interpreter and
/// keeps no state outside it. What it offers is in docs/parallelism.md.
const ERLANG_MODULE: &CStr = cr#"
"""erlang inside an own-GIL sub-interpreter of erlang_python (docs/parallelism.md).

Only ``Pid``, ``Ref`` and ``Interrupted`` exist here; ``erlang.call``, the shared state,
logging and tracing need the main interpreter: use the main pool for code that needs them.
"""


class Interrupted(BaseException):
    """Raised in the running code when its Erlang caller gave up (timeout or exit)."""


class _Identity:
    __slots__ = ("_etf", "_text")

    def __init__(self, etf, text):
        object.__setattr__(self, "_etf", bytes(etf))
        object.__setattr__(self, "_text", str(text))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other):
        if type(other) is type(self):
            return self._etf == other._etf
        return NotImplemented

    def __hash__(self):
        return hash((type(self).__name__, self._etf))

    def __repr__(self):
        return f"erlang.{type(self).__name__}({self._text})"

    def to_bytes(self):
        """The term in Erlang's external term format (``term_to_binary/1``)."""
        return self._etf

    def __reduce__(self):
        return (type(self), (self._etf, self._text))


class Pid(_Identity):
    """An Erlang process identifier."""

    __slots__ = ()


class Ref(_Identity):
    """An Erlang reference."""

    __slots__ = ()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"erlang.{name} is not available in a sub-interpreter of erlang_python; "
        "run code that needs it on the main pool (docs/parallelism.md)"
    )


def _install_sleep():
    import time

    real_sleep, monotonic = time.sleep, time.monotonic

    def sleep(seconds):
        """time.sleep in steps of at most 10 ms, so that erlang_python can interrupt it."""
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        end = monotonic() + seconds
        while True:
            left = end - monotonic()
            if left <= 0:
                return None
            real_sleep(min(left, 0.01))

    time.sleep = sleep


_install_sleep()
del _install_sleep


def _unsafe_point(frame):
    # Same rule as the executors' (docs/architecture.md, "Safe points"). The frame comes from
    # the worker's thread state: sys._current_frames() would make frame objects for the
    # threads of every interpreter with this one's allocator.
    while frame is not None:
        code = frame.f_code
        file, name = code.co_filename, code.co_name
        if (
            file.startswith("<frozen importlib.")
            or file.endswith(("importlib/_bootstrap.py", "importlib/_bootstrap_external.py"))
            or file.endswith(("/weakref.py", "/_weakrefset.py"))
            or name in ("__del__", "__exit__", "__aexit__")
        ):
            return True
        frame = frame.f_back
    return False
"#;

/// The text CPython puts in the `ImportError` of a module that cannot load in an own-GIL
/// sub-interpreter (single-phase init, or a multi-phase module that does not declare support).
const NOT_IN_SUBINTERP: &str = "does not support loading in subinterpreters";

/// A strong reference to an object of this thread's sub-interpreter. Never leaves the thread
/// (raw pointer: not `Send`), and is only made and dropped while the thread holds the
/// interpreter's GIL (everything in this module runs inside [`Interp::attached`]).
struct Obj(*mut ffi::PyObject);

impl Obj {
    /// Takes a new reference; `None` (with a Python exception set) for NULL.
    fn new(raw: *mut ffi::PyObject) -> Option<Obj> {
        (!raw.is_null()).then(|| Obj(raw))
    }

    /// Takes a new reference that CPython documents as never NULL for the given input, and
    /// turns NULL into the pending Python exception anyway.
    fn or_err(raw: *mut ffi::PyObject) -> Result<Obj, Failure> {
        Obj::new(raw).ok_or(Failure::Raised)
    }

    fn borrowed(raw: *mut ffi::PyObject) -> Obj {
        // SAFETY: `raw` is a live object of this interpreter (the caller's borrowed
        // reference) and the GIL is held; we take our own reference.
        unsafe { ffi::Py_INCREF(raw) };
        Obj(raw)
    }

    fn ptr(&self) -> *mut ffi::PyObject {
        self.0
    }

    fn into_ptr(self) -> *mut ffi::PyObject {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we own one reference, and the GIL of the object's interpreter is held (see
        // the type's doc).
        unsafe { ffi::Py_DECREF(self.0) }
    }
}

/// Why a request did not give a value.
pub enum Failure {
    /// A Python exception is set on this thread: [`Interp::take_error`] reads it.
    Raised,
    /// A conversion rule refused a value (as `docs/type-conversion.md` says it must): the
    /// same exception type and message as the main interpreter gives.
    Convert(ConvError),
    /// Something only a sub-interpreter refuses (an object that cannot leave it), as a
    /// `TypeError` message.
    NotHere(String),
}

impl From<ConvError> for Failure {
    fn from(err: ConvError) -> Failure {
        Failure::Convert(err)
    }
}

impl From<etf::Error> for Failure {
    fn from(err: etf::Error) -> Failure {
        Failure::Convert(ConvError::from(err))
    }
}

/// A Python exception as the caller sees it (docs/errors.md).
pub struct PyError {
    /// The class's `__name__`.
    pub name: String,
    /// True when the class is the builtin of that name (or this module's `Interrupted`): then
    /// the name may become an atom (docs/architecture.md, invariant 9).
    pub builtin: bool,
    /// True for `StopIteration`, reported as `{stop_iteration, none}`.
    pub stop_iteration: bool,
    /// `str(exc)`, with a hint appended when a module cannot load here.
    pub message: String,
    /// The formatted traceback.
    pub traceback: String,
}

/// What a request asks of the sub-interpreter: the arguments are ETF bytes.
pub enum Work<'a> {
    /// `Module.Function(*Args, **Kwargs)`.
    Call {
        /// UTF-8 module name.
        module: &'a [u8],
        /// UTF-8 function name, possibly dotted.
        function: &'a [u8],
        /// A list.
        args: &'a [u8],
        /// A map or a keyword list.
        kwargs: &'a [u8],
    },
    /// `eval(Code)` in `__main__` after merging `Locals` (a map) into it.
    Eval {
        /// UTF-8 source.
        code: &'a [u8],
        /// A map.
        locals: &'a [u8],
    },
    /// `exec(Code)` in `__main__`.
    Exec {
        /// UTF-8 source.
        code: &'a [u8],
    },
}

/// One own-GIL sub-interpreter, owned by the thread that made it: every method must be called
/// on that thread. Detached (GIL released) between [`Interp::attached`] sections.
pub struct Interp {
    tstate: *mut ffi::PyThreadState,
    /// Objects of the interpreter kept for its life: the `erlang` module's classes and
    /// functions, `__main__`'s dict, `builtins`, `traceback.format_exception`.
    interrupted: *mut ffi::PyObject,
    pid_type: *mut ffi::PyObject,
    ref_type: *mut ffi::PyObject,
    unsafe_point: *mut ffi::PyObject,
    main_dict: *mut ffi::PyObject,
    builtins: *mut ffi::PyObject,
    format_exception: *mut ffi::PyObject,
}

/// The interpreter, as the interrupter thread receives it: it makes its own thread state
/// there (`PyThreadState_New` binds the new state to the calling thread).
pub struct GuestSeed {
    interp: *mut ffi::PyInterpreterState,
    worker: *mut ffi::PyThreadState,
    interrupted: *mut ffi::PyObject,
    unsafe_point: *mut ffi::PyObject,
}

// SAFETY: the pointers are only used by the receiving thread, with the interpreter's GIL
// (objects) or through CPython calls that need none (`PyThreadState_New`); the interpreter
// and the objects live until the worker ends it, which it does only after the interrupter
// released its thread state (see `Interp::end`).
unsafe impl Send for GuestSeed {}

impl GuestSeed {
    /// A thread state of the interpreter for the calling thread (detached).
    pub fn attach(self) -> Option<Guest> {
        // SAFETY: the interpreter lives (see `Send`); PyThreadState_New needs no GIL and binds
        // the new state to this thread, which has no other thread state.
        let tstate = unsafe { ffi::PyThreadState_New(self.interp) };
        (!tstate.is_null()).then_some(Guest {
            tstate,
            worker: self.worker,
            interrupted: self.interrupted,
            unsafe_point: self.unsafe_point,
        })
    }
}

/// The interrupter's thread state of the interpreter, and what it raises. Stays on the thread
/// that made it (raw pointers: not `Send`).
pub struct Guest {
    tstate: *mut ffi::PyThreadState,
    /// The worker's thread state (alive as long as the interpreter).
    worker: *mut ffi::PyThreadState,
    interrupted: *mut ffi::PyObject,
    unsafe_point: *mut ffi::PyObject,
}

impl Interp {
    /// Creates a sub-interpreter with its own GIL on the calling thread (which must have no
    /// thread state), sets it up (`sys.path`, the `erlang` module) and detaches. Fails with
    /// CPython's message.
    pub fn create(sys_path: &[String]) -> Result<Interp, String> {
        let config = ffi::PyInterpreterConfig {
            use_main_obmalloc: 0,
            allow_fork: 0,
            allow_exec: 0,
            allow_threads: 1,
            allow_daemon_threads: 0,
            check_multi_interp_extensions: 1,
            gil: ffi::PyInterpreterConfig_OWN_GIL,
        };
        let mut tstate: *mut ffi::PyThreadState = ptr::null_mut();
        // SAFETY: the interpreter is initialised (the pool exists only after it) and this
        // thread has no thread state; on success the new interpreter's thread state is current
        // and its GIL held by this thread.
        let status = unsafe { ffi::Py_NewInterpreterFromConfig(&mut tstate, &config) };
        // SAFETY: `status` is a PyStatus CPython filled in.
        if unsafe { ffi::PyStatus_Exception(ffi::PyStatus { ..status }) } != 0 || tstate.is_null() {
            let msg = if status.err_msg.is_null() {
                "Py_NewInterpreterFromConfig failed".to_owned()
            } else {
                // SAFETY: CPython's error messages are static NUL-terminated strings.
                unsafe { CStr::from_ptr(status.err_msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(msg);
        }
        let mut interp = Interp {
            tstate,
            interrupted: ptr::null_mut(),
            pid_type: ptr::null_mut(),
            ref_type: ptr::null_mut(),
            unsafe_point: ptr::null_mut(),
            main_dict: ptr::null_mut(),
            builtins: ptr::null_mut(),
            format_exception: ptr::null_mut(),
        };
        let setup = interp.setup(sys_path);
        if let Err(err) = setup {
            // SAFETY: the new interpreter's thread state is current and its GIL held; nothing
            // else runs in it.
            unsafe {
                ffi::PyErr_Clear();
                ffi::Py_EndInterpreter(interp.tstate);
            }
            return Err(err);
        }
        // SAFETY: the interpreter's GIL is held by this thread; released until `attached`.
        unsafe { ffi::PyEval_SaveThread() };
        Ok(interp)
    }

    /// With the GIL held, just after creation.
    fn setup(&mut self, sys_path: &[String]) -> Result<(), String> {
        let fail = |what: &str| format!("setting up a sub-interpreter: {what}");
        // SAFETY: (whole block) this thread holds the new interpreter's GIL; every pointer
        // is checked before use; references are owned by `Obj` or kept for the interpreter's
        // life in `self` (released by `end`).
        unsafe {
            if !sys_path.is_empty() {
                set_sys_path(sys_path).map_err(fail)?;
            }
            let module = Obj::new(ffi::PyModule_New(c"erlang".as_ptr()))
                .ok_or_else(|| fail("the erlang module"))?;
            let dict = ffi::PyModule_GetDict(module.ptr());
            let code = Obj::new(ffi::Py_CompileString(
                ERLANG_MODULE.as_ptr(),
                c"<erlang_python subinterpreter>".as_ptr(),
                ffi::Py_file_input,
            ))
            .ok_or_else(|| fail("compiling the erlang module"))?;
            Obj::new(ffi::PyEval_EvalCode(code.ptr(), dict, dict))
                .ok_or_else(|| fail("running the erlang module"))?;
            let modules = ffi::PyImport_GetModuleDict();
            if ffi::PyDict_SetItemString(modules, c"erlang".as_ptr(), module.ptr()) != 0 {
                return Err(fail("sys.modules['erlang']"));
            }
            let get = |name: &CStr| -> Result<*mut ffi::PyObject, String> {
                let item = ffi::PyDict_GetItemString(dict, name.as_ptr());
                if item.is_null() {
                    return Err(fail("erlang module attribute"));
                }
                Ok(Obj::borrowed(item).into_ptr())
            };
            self.interrupted = get(c"Interrupted")?;
            self.pid_type = get(c"Pid")?;
            self.ref_type = get(c"Ref")?;
            self.unsafe_point = get(c"_unsafe_point")?;
            let main = ffi::PyImport_AddModule(c"__main__".as_ptr());
            if main.is_null() {
                return Err(fail("__main__"));
            }
            self.main_dict = Obj::borrowed(ffi::PyModule_GetDict(main)).into_ptr();
            self.builtins = Obj::new(ffi::PyImport_ImportModule(c"builtins".as_ptr()))
                .ok_or_else(|| fail("import builtins"))?
                .into_ptr();
            let traceback = Obj::new(ffi::PyImport_ImportModule(c"traceback".as_ptr()))
                .ok_or_else(|| fail("import traceback"))?;
            self.format_exception = Obj::new(ffi::PyObject_GetAttrString(
                traceback.ptr(),
                c"format_exception".as_ptr(),
            ))
            .ok_or_else(|| fail("traceback.format_exception"))?
            .into_ptr();
        }
        Ok(())
    }

    /// What another thread (the interrupter) needs to make its own thread state of this
    /// interpreter ([`GuestSeed::attach`], on that thread).
    pub fn guest_seed(&self) -> GuestSeed {
        // SAFETY: the interpreter lives (`self`); reading a thread state's interpreter needs
        // no GIL.
        let interp = unsafe { ffi::PyThreadState_GetInterpreter(self.tstate) };
        GuestSeed {
            interp,
            worker: self.tstate,
            interrupted: self.interrupted,
            unsafe_point: self.unsafe_point,
        }
    }

    /// Runs `f` with this thread attached to the interpreter (its GIL held), then detaches.
    pub fn attached<T>(&self, f: impl FnOnce(&Attached<'_>) -> T) -> T {
        // SAFETY: `self.tstate` is this thread's thread state of the interpreter, currently
        // detached; attaching takes the interpreter's own GIL.
        unsafe { ffi::PyEval_RestoreThread(self.tstate) };
        let result = f(&Attached { interp: self });
        // SAFETY: attached above, on this thread.
        unsafe { ffi::PyEval_SaveThread() };
        result
    }

    /// Ends the interpreter, on its own thread. The guest thread state must be released
    /// already ([`Guest::release`]).
    pub fn end(self) {
        // SAFETY: this is the interpreter's own thread; attaching takes its GIL; the objects
        // kept in `self` are released before the interpreter ends, which needs its thread
        // state current and no other thread state of it alive.
        unsafe {
            ffi::PyEval_RestoreThread(self.tstate);
            for obj in [
                self.interrupted,
                self.pid_type,
                self.ref_type,
                self.unsafe_point,
                self.main_dict,
                self.builtins,
                self.format_exception,
            ] {
                ffi::Py_XDECREF(obj);
            }
            ffi::Py_EndInterpreter(self.tstate);
        }
    }
}

impl Guest {
    /// With the interpreter's GIL: raises `erlang.Interrupted` in the thread `thread_id` of
    /// the interpreter if `still_running()` (checked with the GIL held, so the worker cannot
    /// move to another job meanwhile) and the thread is not at an unsafe point. `Some(true)`
    /// when raised, `Some(false)` when it must be tried again later (unsafe point), `None`
    /// when there is nothing to interrupt.
    pub fn interrupt(&self, thread_id: u64, still_running: impl FnOnce() -> bool) -> Option<bool> {
        // SAFETY: the guest thread state belongs to this thread (see `Send`), detached;
        // attaching takes the interpreter's GIL; released below.
        unsafe { ffi::PyEval_RestoreThread(self.tstate) };
        let outcome = if !still_running() {
            None
        } else if self.at_unsafe_point() {
            Some(false)
        } else {
            // SAFETY: the GIL is held; CPython takes the thread id as `unsigned long`
            // (pyo3-ffi declares `c_long`: same bits) and increfs the exception type.
            unsafe { ffi::PyThreadState_SetAsyncExc(thread_id as c_long, self.interrupted) };
            Some(true)
        };
        // SAFETY: attached above.
        unsafe { ffi::PyEval_SaveThread() };
        outcome
    }

    fn at_unsafe_point(&self) -> bool {
        // SAFETY: the GIL is held (called from `interrupt`); the worker's thread state lives
        // as long as the interpreter and belongs to it; results are checked.
        unsafe {
            let frame = ffi::PyThreadState_GetFrame(self.worker).cast::<ffi::PyObject>();
            let Some(frame) = Obj::new(frame) else {
                // No Python frame: nothing to protect.
                return false;
            };
            let result = Obj::new(ffi::PyObject_CallOneArg(self.unsafe_point, frame.ptr()));
            match result {
                Some(r) => r.ptr() == ffi::Py_True(),
                None => {
                    ffi::PyErr_Clear();
                    // Cannot tell: treat as unsafe and look again later.
                    true
                }
            }
        }
    }

    /// Deletes the guest thread state (on the thread that used it).
    pub fn release(self) {
        // SAFETY: attach it (taking the GIL), clear it and delete it as the current one.
        unsafe {
            ffi::PyEval_RestoreThread(self.tstate);
            ffi::PyThreadState_Clear(self.tstate);
            ffi::PyThreadState_DeleteCurrent();
        }
    }
}

/// The OS thread id CPython uses for the calling thread (`threading.get_ident()`).
pub fn thread_ident() -> u64 {
    // SAFETY: pthread_self has no preconditions; CPython's PyThread_get_thread_ident is this
    // value cast to `unsigned long` on POSIX systems.
    (unsafe { libc::pthread_self() }) as u64
}

/// The interpreter with its GIL held by this thread: what a request runs with.
pub struct Attached<'i> {
    interp: &'i Interp,
}

/// Makes `sys.path` a new list of `entries`. The caller holds the interpreter's GIL; a
/// failure leaves a Python exception set and says what failed.
unsafe fn set_sys_path(entries: &[String]) -> Result<(), &'static str> {
    // SAFETY: (whole body) the caller holds the GIL of the interpreter; every new reference
    // is checked and owned by an `Obj`.
    unsafe {
        let sys = Obj::new(ffi::PyImport_ImportModule(c"sys".as_ptr())).ok_or("import sys")?;
        let path = Obj::new(ffi::PyList_New(0)).ok_or("sys.path")?;
        for entry in entries {
            let item = Obj::new(ffi::PyUnicode_FromStringAndSize(
                entry.as_ptr().cast::<c_char>(),
                entry.len() as ffi::Py_ssize_t,
            ))
            .ok_or("sys.path entry")?;
            if ffi::PyList_Append(path.ptr(), item.ptr()) != 0 {
                return Err("sys.path entry");
            }
        }
        if ffi::PyObject_SetAttrString(sys.ptr(), c"path".as_ptr(), path.ptr()) != 0 {
            return Err("sys.path");
        }
    }
    Ok(())
}

impl Attached<'_> {
    /// Makes `sys.path` a list of `entries` (the main interpreter's, after a change made
    /// through `py`); CPython's message on failure.
    pub fn set_sys_path(&self, entries: &[String]) -> Result<(), String> {
        // SAFETY: attached (`Interp::attached`): this thread holds the interpreter's GIL.
        match unsafe { set_sys_path(entries) } {
            Ok(()) => Ok(()),
            Err(what) => {
                let err = self.take_error();
                Err(format!("{what}: {}: {}", err.name, err.message))
            }
        }
    }

    /// Runs `work` and returns its result as ETF bytes. The interrupter may raise
    /// `erlang.Interrupted` in the code meanwhile; the caller clears a late one
    /// ([`Self::clear_interrupt`]).
    pub fn run(&self, work: &Work<'_>, max_depth: usize) -> Result<Vec<u8>, Failure> {
        let value = self.value(work, max_depth)?;
        match work {
            Work::Exec { .. } => {
                let mut writer = Writer::new();
                let ok = writer.atom("ok");
                Ok(writer.finish(ok)?)
            }
            _ => Encoder::new(self.interp, max_depth).encode_root(value.ptr()),
        }
    }

    fn value(&self, work: &Work<'_>, max_depth: usize) -> Result<Obj, Failure> {
        let decoder = |bytes| Decoder::new(self.interp, bytes, max_depth);
        match *work {
            Work::Call {
                module,
                function,
                args,
                kwargs,
            } => {
                let args = decoder(args)?.args()?;
                let kwargs = decoder(kwargs)?.kwargs()?;
                let callable = self.resolve(module, function)?;
                // SAFETY: the GIL is held; all three are live objects of this interpreter.
                Obj::or_err(unsafe { ffi::PyObject_Call(callable.ptr(), args.ptr(), kwargs.ptr()) })
            }
            Work::Eval { code, locals } => {
                let locals = decoder(locals)?.kwargs()?;
                let code = compile(code, ffi::Py_eval_input)?;
                // SAFETY: the GIL is held; both dicts are live; PyDict_Update copies.
                unsafe {
                    if ffi::PyDict_Update(self.interp.main_dict, locals.ptr()) != 0 {
                        return Err(Failure::Raised);
                    }
                    Obj::or_err(ffi::PyEval_EvalCode(
                        code.ptr(),
                        self.interp.main_dict,
                        self.interp.main_dict,
                    ))
                }
            }
            Work::Exec { code } => {
                let code = compile(code, ffi::Py_file_input)?;
                // SAFETY: the GIL is held; code and dict are live.
                Obj::or_err(unsafe {
                    ffi::PyEval_EvalCode(code.ptr(), self.interp.main_dict, self.interp.main_dict)
                })
            }
        }
    }

    /// `Module.Function` (dotted attribute path); `__main__` is this interpreter's own.
    fn resolve(&self, module: &[u8], function: &[u8]) -> Result<Obj, Failure> {
        let module = utf8(module, "module name")?;
        let function = utf8(function, "function name")?;
        let mut target = if module == "__main__" {
            // SAFETY: the GIL is held; `__main__` exists for the interpreter's life.
            Obj::or_err(unsafe { ffi::PyImport_AddModule(c"__main__".as_ptr()) })
                .map(|m| Obj::borrowed(m.into_ptr()))?
        } else {
            let name = str_obj(module)?;
            // SAFETY: the GIL is held; `name` is a live str.
            Obj::or_err(unsafe { ffi::PyImport_Import(name.ptr()) })?
        };
        for part in function.split('.') {
            let name = str_obj(part)?;
            // SAFETY: the GIL is held; both objects live.
            target = Obj::or_err(unsafe { ffi::PyObject_GetAttr(target.ptr(), name.ptr()) })?;
        }
        Ok(target)
    }

    /// Clears an `erlang.Interrupted` left pending for this thread (raised by the interrupter
    /// after the code returned).
    pub fn clear_interrupt(&self) {
        // SAFETY: the GIL is held; a NULL exception clears the pending one of our own thread.
        unsafe { ffi::PyThreadState_SetAsyncExc(thread_ident() as c_long, ptr::null_mut()) };
    }

    /// The exception set on this thread, as the caller will see it; clears it.
    pub fn take_error(&self) -> PyError {
        // SAFETY: the GIL is held; the raised exception (if any) is ours to own.
        let exc = Obj::new(unsafe { ffi::PyErr_GetRaisedException() });
        let Some(exc) = exc else {
            return PyError {
                name: "SystemError".to_owned(),
                builtin: true,
                stop_iteration: false,
                message: "error return without exception set".to_owned(),
                traceback: String::new(),
            };
        };
        // SAFETY: the GIL is held; `exc` is a live exception; results are checked.
        unsafe {
            let ty = ffi::Py_TYPE(exc.ptr()).cast::<ffi::PyObject>();
            let name = Obj::new(ffi::PyType_GetName(ty.cast()))
                .and_then(|n| text(n.ptr()))
                .unwrap_or_else(|| "Exception".to_owned());
            let builtin = ty == self.interp.interrupted || {
                let found = str_obj(&name)
                    .ok()
                    .and_then(|n| Obj::new(ffi::PyObject_GetAttr(self.interp.builtins, n.ptr())));
                found.is_some_and(|f| f.ptr() == ty)
            };
            let stop_iteration =
                ffi::PyErr_GivenExceptionMatches(exc.ptr(), ffi::PyExc_StopIteration) != 0;
            let mut message = Obj::new(ffi::PyObject_Str(exc.ptr()))
                .and_then(|s| text(s.ptr()))
                .unwrap_or_else(|| "<str() of the exception failed>".to_owned());
            if ffi::PyErr_GivenExceptionMatches(exc.ptr(), ffi::PyExc_ImportError) != 0
                && message.contains(NOT_IN_SUBINTERP)
            {
                message.push_str(
                    " (an extension module without per-interpreter support, e.g. numpy or a \
                     pyo3 module, cannot be imported in an erlang_python sub-interpreter: \
                     run this code on the main pool; docs/parallelism.md)",
                );
            }
            let traceback = self.format(exc.ptr()).unwrap_or_default();
            ffi::PyErr_Clear();
            PyError {
                name,
                builtin,
                stop_iteration,
                message,
                traceback,
            }
        }
    }

    fn format(&self, exc: *mut ffi::PyObject) -> Option<String> {
        // SAFETY: the GIL is held; `exc` is live; results are checked.
        unsafe {
            let lines = Obj::new(ffi::PyObject_CallOneArg(self.interp.format_exception, exc))?;
            let empty = Obj::new(ffi::PyUnicode_FromStringAndSize(ptr::null(), 0))?;
            let joined = Obj::new(ffi::PyUnicode_Join(empty.ptr(), lines.ptr()))?;
            text(joined.ptr())
        }
    }
}

/// The text of a str (lone surrogates replaced).
fn text(s: *mut ffi::PyObject) -> Option<String> {
    // SAFETY: the GIL is held by the caller; `s` is a live object; results are checked.
    unsafe {
        if ffi::PyUnicode_Check(s) == 0 {
            return None;
        }
        let bytes = Obj::new(ffi::PyUnicode_AsEncodedString(
            s,
            c"utf-8".as_ptr(),
            c"surrogatepass".as_ptr(),
        ));
        let Some(bytes) = bytes else {
            ffi::PyErr_Clear();
            return None;
        };
        let data = ffi::PyBytes_AsString(bytes.ptr());
        let len = ffi::PyBytes_Size(bytes.ptr());
        let slice = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
        Some(String::from_utf8_lossy(slice).into_owned())
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|_| Failure::NotHere(format!("{what} is not valid UTF-8")))
}

fn str_obj(s: &str) -> Result<Obj, Failure> {
    // SAFETY: the GIL is held by the caller; the bytes are valid UTF-8 of that length.
    Obj::or_err(unsafe {
        ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast::<c_char>(), s.len() as ffi::Py_ssize_t)
    })
}

fn compile(code: &[u8], mode: c_int) -> Result<Obj, Failure> {
    let source = CString::new(code)
        .map_err(|_| Failure::NotHere("source code contains a NUL byte".to_owned()))?;
    // SAFETY: the GIL is held by the caller; NUL-terminated strings.
    Obj::or_err(unsafe { ffi::Py_CompileString(source.as_ptr(), c"<erlang>".as_ptr(), mode) })
}

fn check_depth(depth: usize, max_depth: usize) -> Result<(), Failure> {
    if depth > max_depth {
        Err(ConvError::TooDeep(max_depth).into())
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ETF bytes -> objects (the rules of core's `convert::to_py`, docs/type-conversion.md)

struct Decoder<'a, 'i> {
    interp: &'i Interp,
    index: Index<'a>,
    max_depth: usize,
}

impl<'a, 'i> Decoder<'a, 'i> {
    fn new(interp: &'i Interp, data: &'a [u8], max_depth: usize) -> Result<Self, Failure> {
        Ok(Decoder {
            interp,
            index: Index::new(data)?,
            max_depth,
        })
    }

    /// The positional arguments: a proper list, as a tuple.
    fn args(&self) -> Result<Obj, Failure> {
        let list = self.object(self.index.root(), 0)?;
        // SAFETY: the GIL is held; `list` is a live list (the root is a list: `py` checks
        // `is_list(Args)`); PyList_AsTuple checks anyway.
        Obj::or_err(unsafe { ffi::PyList_AsTuple(list.ptr()) })
    }

    /// Keyword arguments (or eval locals): the rules of core's `convert::kwargs_to_py`.
    fn kwargs(&self) -> Result<Obj, Failure> {
        // SAFETY: the GIL is held.
        let dict = Obj::or_err(unsafe { ffi::PyDict_New() })?;
        let root = self.index.root();
        match self.index.term(root)? {
            Term::Map(pairs) => {
                self.index.check_unique_keys(root, &pairs, self.max_depth)?;
                for (k, v) in pairs {
                    let key = self.kwarg_key(k)?;
                    if self.contains(&dict, &key)? {
                        let shown = text_of_repr(key.ptr());
                        return Err(ConvError::DuplicateMapKey(format!("{shown:?}")).into());
                    }
                    let value = self.object(v, 0)?;
                    self.set(&dict, &key, &value)?;
                }
            }
            Term::List { items, tail: None } => {
                for item in items {
                    let Term::Tuple(pair) = self.index.term(item)? else {
                        return Err(ConvError::BadKwargList.into());
                    };
                    let [name, value] = pair[..] else {
                        return Err(ConvError::BadKwargList.into());
                    };
                    let Term::Atom(name) = self.index.term(name)? else {
                        return Err(ConvError::BadKwargList.into());
                    };
                    let key = str_obj(&name)?;
                    if self.contains(&dict, &key)? {
                        return Err(ConvError::DuplicateKwarg(name.into_owned()).into());
                    }
                    let value = self.object(value, 0)?;
                    self.set(&dict, &key, &value)?;
                }
            }
            _ => {
                return Err(ConvError::Unsupported(
                    "keyword argument container (expected a map or a list of pairs)",
                )
                .into())
            }
        }
        Ok(dict)
    }

    fn kwarg_key(&self, key: Slot) -> Result<Obj, Failure> {
        match self.index.term(key)? {
            Term::Atom(name) => str_obj(&name),
            Term::Binary(bytes) | Term::BitBinary { bytes, bits: 8 } => {
                let text = std::str::from_utf8(bytes).map_err(|_| ConvError::BadKwargKey)?;
                str_obj(text)
            }
            Term::List { items, tail: None } => {
                let mut text = String::with_capacity(items.len());
                for c in items {
                    let Term::Int(code) = self.index.term(c)? else {
                        return Err(ConvError::BadKwargKey.into());
                    };
                    let ch = u32::try_from(code)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or(ConvError::BadKwargKey)?;
                    text.push(ch);
                }
                str_obj(&text)
            }
            _ => Err(ConvError::BadKwargKey.into()),
        }
    }

    fn contains(&self, dict: &Obj, key: &Obj) -> Result<bool, Failure> {
        // SAFETY: the GIL is held; both live.
        match unsafe { ffi::PyDict_Contains(dict.ptr(), key.ptr()) } {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Failure::Raised),
        }
    }

    fn set(&self, dict: &Obj, key: &Obj, value: &Obj) -> Result<(), Failure> {
        // SAFETY: the GIL is held; all live; PyDict_SetItem takes its own references.
        if unsafe { ffi::PyDict_SetItem(dict.ptr(), key.ptr(), value.ptr()) } != 0 {
            return Err(Failure::Raised);
        }
        Ok(())
    }

    fn object(&self, slot: Slot, depth: usize) -> Result<Obj, Failure> {
        // SAFETY: (whole match) the GIL is held by the caller; every constructor's result is
        // checked; containers take the references of their items (`into_ptr` for the
        // stealing PyList_SET_ITEM / PyTuple_SET_ITEM on fresh containers of the right size).
        unsafe {
            match self.index.term(slot)? {
                Term::Atom(name) => Ok(match &*name {
                    "true" => Obj::borrowed(ffi::Py_True()),
                    "false" => Obj::borrowed(ffi::Py_False()),
                    "nil" | "none" | "undefined" => Obj::borrowed(ffi::Py_None()),
                    other => str_obj(other)?,
                }),
                Term::Int(i) => Obj::or_err(ffi::PyLong_FromLongLong(i)),
                Term::Big {
                    negative,
                    magnitude_le,
                } => {
                    let magnitude = Obj::or_err(ffi::_PyLong_FromByteArray(
                        magnitude_le.as_ptr(),
                        magnitude_le.len(),
                        1,
                        0,
                    ))?;
                    if negative {
                        Obj::or_err(ffi::PyNumber_Negative(magnitude.ptr()))
                    } else {
                        Ok(magnitude)
                    }
                }
                Term::Float(f) => Obj::or_err(ffi::PyFloat_FromDouble(f)),
                Term::Binary(bytes) | Term::BitBinary { bytes, bits: 8 } => {
                    match std::str::from_utf8(bytes) {
                        Ok(text) => str_obj(text),
                        Err(_) => Obj::or_err(ffi::PyBytes_FromStringAndSize(
                            bytes.as_ptr().cast::<c_char>(),
                            bytes.len() as ffi::Py_ssize_t,
                        )),
                    }
                }
                Term::BitBinary { .. } => Err(ConvError::Unsupported("bitstring").into()),
                Term::List { items, tail: None } => {
                    check_depth(depth + 1, self.max_depth)?;
                    let list = Obj::or_err(ffi::PyList_New(items.len() as ffi::Py_ssize_t))?;
                    for (i, item) in items.into_iter().enumerate() {
                        let obj = self.object(item, depth + 1)?;
                        ffi::PyList_SET_ITEM(list.ptr(), i as ffi::Py_ssize_t, obj.into_ptr());
                    }
                    Ok(list)
                }
                Term::List { tail: Some(_), .. } => Err(ConvError::ImproperList.into()),
                Term::Tuple(items) => {
                    check_depth(depth + 1, self.max_depth)?;
                    if let [tag, _, _, _] = items[..] {
                        if matches!(self.index.term(tag)?, Term::Atom(name) if name == ARRAY_TAG) {
                            return Err(Failure::NotHere(format!(
                                "a {ARRAY_TAG} term becomes a numpy array, and numpy cannot \
                                 load in a sub-interpreter: pass it to the main pool"
                            )));
                        }
                    }
                    let tuple = Obj::or_err(ffi::PyTuple_New(items.len() as ffi::Py_ssize_t))?;
                    for (i, item) in items.into_iter().enumerate() {
                        let obj = self.object(item, depth + 1)?;
                        ffi::PyTuple_SET_ITEM(tuple.ptr(), i as ffi::Py_ssize_t, obj.into_ptr());
                    }
                    Ok(tuple)
                }
                Term::Map(pairs) => {
                    check_depth(depth + 1, self.max_depth)?;
                    self.index.check_unique_keys(slot, &pairs, self.max_depth)?;
                    let dict = Obj::or_err(ffi::PyDict_New())?;
                    for (k, v) in pairs {
                        let key = self.object(k, depth + 1)?;
                        if self.contains(&dict, &key)? {
                            let shown = text_of_repr(key.ptr());
                            return Err(ConvError::DuplicateMapKey(shown).into());
                        }
                        let value = self.object(v, depth + 1)?;
                        self.set(&dict, &key, &value)?;
                    }
                    Ok(dict)
                }
                Term::Pid(pid) => {
                    let etf = pid.to_etf();
                    self.identity(self.interp.pid_type, &etf, &etf::describe_pid(&etf)?)
                }
                Term::Ref(parts) => {
                    let etf = parts.to_etf();
                    self.identity(self.interp.ref_type, &etf, &etf::describe_ref(&etf)?)
                }
                Term::Port { .. } => Err(ConvError::Unsupported("port").into()),
                Term::Export { .. } | Term::Fun => Err(ConvError::Unsupported("fun").into()),
            }
        }
    }

    /// An `erlang.Pid` / `erlang.Ref` of this interpreter's `erlang` module, holding the one
    /// canonical encoding (as core's `Pid::from_etf` does).
    fn identity(&self, ty: *mut ffi::PyObject, etf: &[u8], shown: &str) -> Result<Obj, Failure> {
        let etf = etf::canonical_identity(etf).unwrap_or_else(|_| etf.to_vec());
        // SAFETY: the GIL is held; the arguments are fresh objects, `ty` a live class.
        unsafe {
            let bytes = Obj::or_err(ffi::PyBytes_FromStringAndSize(
                etf.as_ptr().cast::<c_char>(),
                etf.len() as ffi::Py_ssize_t,
            ))?;
            let shown = str_obj(shown)?;
            let args = Obj::or_err(ffi::PyTuple_Pack(2, bytes.ptr(), shown.ptr()))?;
            Obj::or_err(ffi::PyObject_Call(ty, args.ptr(), ptr::null_mut()))
        }
    }
}

/// `repr(obj)` as text, for error messages.
fn text_of_repr(obj: *mut ffi::PyObject) -> String {
    // SAFETY: the GIL is held by the caller; `obj` is live; the result is checked.
    let repr = Obj::new(unsafe { ffi::PyObject_Repr(obj) });
    match repr.and_then(|r| text(r.ptr())) {
        Some(text) => text,
        None => {
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            String::new()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects -> ETF bytes (the rules of core's `convert::from_py`, docs/type-conversion.md)

struct Encoder<'i> {
    interp: &'i Interp,
    writer: Writer,
    max_depth: usize,
}

impl<'i> Encoder<'i> {
    fn new(interp: &'i Interp, max_depth: usize) -> Self {
        Encoder {
            interp,
            writer: Writer::new(),
            max_depth,
        }
    }

    fn encode_root(mut self, obj: *mut ffi::PyObject) -> Result<Vec<u8>, Failure> {
        let term = self.term(obj, 0)?;
        Ok(self.writer.finish(term)?)
    }

    fn term(&mut self, obj: *mut ffi::PyObject, depth: usize) -> Result<usize, Failure> {
        // SAFETY: (whole body) the GIL is held by the caller; `obj` is a live object of this
        // interpreter, kept alive by its container or the caller while it is read; every
        // result is checked.
        unsafe {
            if ffi::PyUnicode_Check(obj) != 0 {
                let mut len: ffi::Py_ssize_t = 0;
                let data = ffi::PyUnicode_AsUTF8AndSize(obj, &mut len);
                if data.is_null() {
                    return Err(Failure::Raised);
                }
                let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
                return Ok(self.writer.binary(bytes));
            }
            if obj == ffi::Py_None() {
                return Ok(self.writer.atom("none"));
            }
            if ffi::PyBool_Check(obj) != 0 {
                let name = if obj == ffi::Py_True() {
                    "true"
                } else {
                    "false"
                };
                return Ok(self.writer.atom(name));
            }
            if ffi::PyLong_Check(obj) != 0 {
                return self.int(obj);
            }
            if ffi::PyFloat_Check(obj) != 0 {
                let f = ffi::PyFloat_AsDouble(obj);
                if f == -1.0 && !ffi::PyErr_Occurred().is_null() {
                    return Err(Failure::Raised);
                }
                return Ok(if f.is_nan() {
                    self.writer.atom("nan")
                } else if f.is_infinite() {
                    self.writer
                        .atom(if f > 0.0 { "infinity" } else { "neg_infinity" })
                } else {
                    self.writer.float(f)
                });
            }
            if ffi::PyDict_Check(obj) != 0 {
                check_depth(depth + 1, self.max_depth)?;
                let mut pairs = Vec::with_capacity(ffi::PyDict_Size(obj).max(0) as usize);
                let mut pos: ffi::Py_ssize_t = 0;
                let mut key: *mut ffi::PyObject = ptr::null_mut();
                let mut value: *mut ffi::PyObject = ptr::null_mut();
                // The borrowed key and value are held as our own references while converted:
                // converting runs no Python code that could change the dict, but be safe.
                while ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) != 0 {
                    let (k, v) = (Obj::borrowed(key), Obj::borrowed(value));
                    let kt = self.term(k.ptr(), depth + 1)?;
                    let vt = self.term(v.ptr(), depth + 1)?;
                    pairs.push((kt, vt));
                }
                return Ok(self.writer.map(pairs)?);
            }
            if ffi::PyList_Check(obj) != 0 || ffi::PyTuple_Check(obj) != 0 {
                let is_list = ffi::PyList_Check(obj) != 0;
                // A snapshot: a list cannot change under us while we hold the GIL and run no
                // Python code, but a tuple of its items is the simple way to own them.
                let seq = Obj::or_err(ffi::PySequence_Tuple(obj))?;
                let items = self.items(seq.ptr(), depth)?;
                return Ok(if is_list {
                    self.writer.list(items)
                } else {
                    self.writer.tuple(items)
                });
            }
            if ffi::PyBytes_Check(obj) != 0 {
                let data = ffi::PyBytes_AsString(obj);
                let len = ffi::PyBytes_Size(obj);
                return Ok(self
                    .writer
                    .binary(std::slice::from_raw_parts(data.cast::<u8>(), len as usize)));
            }
            if ffi::PyByteArray_Check(obj) != 0 {
                let data = ffi::PyByteArray_AsString(obj);
                let len = ffi::PyByteArray_Size(obj);
                let copy = std::slice::from_raw_parts(data.cast::<u8>(), len as usize).to_vec();
                return Ok(self.writer.binary(&copy));
            }
            if ffi::PyObject_TypeCheck(obj, self.interp.pid_type.cast()) != 0 {
                let etf = self.identity_bytes(obj)?;
                return Ok(self.writer.pid(&etf)?);
            }
            if ffi::PyObject_TypeCheck(obj, self.interp.ref_type.cast()) != 0 {
                let etf = self.identity_bytes(obj)?;
                return Ok(self.writer.reference(&etf)?);
            }
            if ffi::PySet_Check(obj) != 0 || ffi::PyFrozenSet_Check(obj) != 0 {
                let seq = Obj::or_err(ffi::PySequence_Tuple(obj))?;
                let items = self.items(seq.ptr(), depth)?;
                return Ok(self.writer.list(items));
            }
            let ty = ffi::Py_TYPE(obj).cast::<ffi::PyObject>();
            let name = Obj::new(ffi::PyType_GetName(ty.cast()))
                .and_then(|n| text(n.ptr()))
                .unwrap_or_else(|| "?".to_owned());
            ffi::PyErr_Clear();
            Err(Failure::NotHere(format!(
                "a '{name}' object cannot leave a sub-interpreter: only values with an Erlang \
                 equivalent can (docs/type-conversion.md); opaque handles, generators and \
                 numpy values need the main pool"
            )))
        }
    }

    fn items(&mut self, tuple: *mut ffi::PyObject, depth: usize) -> Result<Vec<usize>, Failure> {
        check_depth(depth + 1, self.max_depth)?;
        // SAFETY: the GIL is held; `tuple` is a live tuple we own a reference to.
        let len = unsafe { ffi::PyTuple_Size(tuple) };
        let mut items = Vec::with_capacity(len.max(0) as usize);
        for i in 0..len {
            // SAFETY: `i` is in bounds; the item is borrowed from the tuple we keep alive.
            let item = unsafe { ffi::PyTuple_GET_ITEM(tuple, i) };
            items.push(self.term(item, depth + 1)?);
        }
        Ok(items)
    }

    fn identity_bytes(&self, obj: *mut ffi::PyObject) -> Result<Vec<u8>, Failure> {
        // SAFETY: the GIL is held; `obj` is a live Pid/Ref of this interpreter's module,
        // whose `_etf` slot holds bytes (set in `__init__`, immutable).
        unsafe {
            let etf = Obj::or_err(ffi::PyObject_GetAttrString(obj, c"_etf".as_ptr()))?;
            if ffi::PyBytes_Check(etf.ptr()) == 0 {
                return Err(ConvError::Unsupported("identity without bytes").into());
            }
            let data = ffi::PyBytes_AsString(etf.ptr());
            let len = ffi::PyBytes_Size(etf.ptr());
            Ok(std::slice::from_raw_parts(data.cast::<u8>(), len as usize).to_vec())
        }
    }

    fn int(&mut self, obj: *mut ffi::PyObject) -> Result<usize, Failure> {
        // SAFETY: the GIL is held; `obj` is a live int; results are checked.
        unsafe {
            let mut overflow: c_int = 0;
            let small = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
            if overflow == 0 {
                if small == -1 && !ffi::PyErr_Occurred().is_null() {
                    return Err(Failure::Raised);
                }
                return Ok(self.writer.int(small));
            }
            let negative = overflow < 0;
            let magnitude = Obj::or_err(ffi::PyNumber_Absolute(obj))?;
            let bits = ffi::_PyLong_NumBits(magnitude.ptr());
            if bits == usize::MAX {
                return Err(Failure::Raised);
            }
            // `int.to_bytes`: `_PyLong_AsByteArray` changed its signature in 3.13.
            let length = Obj::or_err(ffi::PyLong_FromSize_t(bits.div_ceil(8)))?;
            let order = str_obj("little")?;
            let to_bytes = Obj::or_err(ffi::PyObject_GetAttrString(
                magnitude.ptr(),
                c"to_bytes".as_ptr(),
            ))?;
            let args = Obj::or_err(ffi::PyTuple_Pack(2, length.ptr(), order.ptr()))?;
            let raw = Obj::or_err(ffi::PyObject_Call(
                to_bytes.ptr(),
                args.ptr(),
                ptr::null_mut(),
            ))?;
            if ffi::PyBytes_Check(raw.ptr()) == 0 {
                return Err(ConvError::Unsupported("int.to_bytes result").into());
            }
            let data = ffi::PyBytes_AsString(raw.ptr());
            let len = ffi::PyBytes_Size(raw.ptr());
            let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
            Ok(self.writer.bigint(negative, bytes))
        }
    }
}
