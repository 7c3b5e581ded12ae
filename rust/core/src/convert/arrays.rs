//! numpy arrays to Erlang terms, read from the array's buffer (`docs/type-conversion.md`).
//!
//! An array of a numeric or bool dtype becomes nested lists by shape, exactly what
//! `ndarray.tolist()` and the rules for Python numbers would give, without making a Python object
//! per element: any shape, C or Fortran order, strided views. Other dtypes (complex, datetime,
//! object, strings, structured, non-native byte order, unaligned) return `None`, and the caller
//! keeps the `tolist()` rule for them.
//!
//! numpy's C API is loaded the first time an array is converted (the caller only comes here for
//! objects whose type lives in numpy), so `import erlang` never imports numpy.

use numpy::{
    dtype, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::{check_depth, float_term, Options, TermBuilder, TermReader, View};
use crate::error::{Error, Result};

/// One array element as a term, by the rules for the Python number it stands for.
trait Leaf: Element + Copy {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term>;

    /// A row of elements (a contiguous run of the innermost axis) as one list, in a single
    /// call of the builder, for the dtypes whose builder has one (`float64`, `int64`).
    fn row<B: TermBuilder>(_values: &[Self], _builder: &mut B) -> Option<B::Term> {
        None
    }

    /// True for the dtypes whose [`Leaf::row`] gives a list.
    const ROWS: bool = false;
}

macro_rules! small_int_leaf {
    ($($t:ty),*) => {$(
        impl Leaf for $t {
            fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
                Ok(builder.int(i64::from(self)))
            }
        }
    )*};
}
small_int_leaf!(i8, i16, i32, u8, u16, u32);

impl Leaf for i64 {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
        Ok(builder.int(self))
    }

    fn row<B: TermBuilder>(values: &[Self], builder: &mut B) -> Option<B::Term> {
        Some(builder.int_list(values))
    }

    const ROWS: bool = true;
}

impl Leaf for u64 {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
        match i64::try_from(self) {
            Ok(small) => Ok(builder.int(small)),
            Err(_) => builder.bigint(false, &self.to_le_bytes()),
        }
    }
}

impl Leaf for f64 {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
        Ok(float_term(builder, self))
    }

    fn row<B: TermBuilder>(values: &[Self], builder: &mut B) -> Option<B::Term> {
        Some(builder.float_list(values))
    }

    const ROWS: bool = true;
}

impl Leaf for f32 {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
        Ok(float_term(builder, f64::from(self)))
    }
}

impl Leaf for bool {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term> {
        Ok(builder.atom(if self { "true" } else { "false" }))
    }
}

/// The term for `obj` when it is a numpy array this module reads; `None` for anything else.
/// `depth` is the nesting of `obj` itself: an array of `n` dimensions adds `n` levels.
pub(crate) fn array_to_term<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
    opts: &Options,
    depth: usize,
) -> Result<Option<B::Term>> {
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    // An unaligned buffer cannot be read as Rust values.
    if !array.is_aligned() {
        return Ok(None);
    }
    let shape = array.shape().to_vec();
    let descr = array.dtype();
    let py = obj.py();
    macro_rules! read_as {
        ($($t:ty),*) => {$(
            if descr.is_equiv_to(&dtype::<$t>(py)) {
                check_depth(depth + shape.len(), opts)?;
                return typed::<B, $t>(builder, array, &shape).map(Some);
            }
        )*};
    }
    read_as!(f64, i64, f32, i32, bool, u8, i8, i16, u16, u32, u64);
    Ok(None)
}

fn typed<B: TermBuilder, T: Leaf>(
    builder: &mut B,
    array: &Bound<'_, PyUntypedArray>,
    shape: &[usize],
) -> Result<B::Term> {
    if !array.is_c_contiguous() {
        // Fortran order or a strided view: numpy's own copy into C order (a few ms for 8 MB) is
        // much faster than stepping a multi-dimensional index per element here.
        let copy = array.call_method1("copy", ("C",))?;
        let copy = copy.cast::<PyUntypedArray>().map_err(PyErr::from)?;
        return typed::<B, T>(builder, copy, shape);
    }
    let array = array.cast::<PyArrayDyn<T>>().map_err(PyErr::from)?;
    // A shared borrow: fails (a Python error, not a crash) only while Rust code elsewhere holds
    // this array mutably borrowed.
    let readonly = array.try_readonly().map_err(numpy_error)?;
    let values = readonly.as_slice().map_err(numpy_error)?;
    // C order: the buffer is the row-major sequence tolist() reads. Row by row where the
    // dtype has a list maker: one list per row of the innermost axis, then nested as usual.
    if let Some((&dim, outer)) = shape.split_last() {
        if T::ROWS && dim > 0 && !values.is_empty() {
            let row = |values: &[T], builder: &mut B| {
                T::row(values, builder).ok_or(Error::Unsupported("array row"))
            };
            if outer.is_empty() {
                return row(values, builder);
            }
            let mut rows = Nest::new(builder, outer);
            for values in values.chunks_exact(dim) {
                let term = row(values, builder)?;
                rows.push(builder, term);
            }
            return rows.finish();
        }
    }
    if !shape.is_empty() && !values.is_empty() {
        let mut leaves = Nest::new(builder, shape);
        for value in values {
            let leaf = value.term(builder)?;
            leaves.push(builder, leaf);
        }
        return leaves.finish();
    }
    let mut leaves = Vec::with_capacity(values.len());
    for value in values {
        leaves.push(value.term(builder)?);
    }
    Ok(nest(builder, leaves, shape))
}

/// Groups terms given one at a time in row-major order into nested lists of `shape` (no
/// dimension zero), as [`nest`] does, but makes each list as soon as its last element is
/// given: a list's elements are then the last terms made, side by side, and a room is kept
/// for each list before its first element ([`TermBuilder::open`]), as a builder that writes
/// bytes needs (a reply in the external term format).
struct Nest<'s, T> {
    shape: &'s [usize],
    /// The lists being filled, outermost first.
    lists: Vec<Vec<T>>,
    done: Option<T>,
}

impl<'s, T> Nest<'s, T> {
    fn new<B: TermBuilder<Term = T>>(builder: &mut B, shape: &'s [usize]) -> Self {
        for _ in shape {
            builder.open();
        }
        Nest {
            shape,
            lists: shape.iter().map(|_| Vec::new()).collect(),
            done: None,
        }
    }

    fn push<B: TermBuilder<Term = T>>(&mut self, builder: &mut B, term: T) {
        let mut term = term;
        let mut axis = self.shape.len();
        while axis > 0 {
            axis -= 1;
            self.lists[axis].push(term);
            if self.lists[axis].len() < self.shape[axis] {
                // The lists inside this axis start again with the next term.
                for _ in axis + 1..self.shape.len() {
                    builder.open();
                }
                return;
            }
            term = builder.list(std::mem::take(&mut self.lists[axis]));
        }
        self.done = Some(term);
    }

    /// The outermost list, once every term of the shape has been given.
    fn finish(self) -> Result<T> {
        self.done
            .ok_or(Error::Unsupported("array with missing elements"))
    }
}

/// Groups the elements, in row-major order, into nested lists of `shape` (a scalar for `[]`).
fn nest<B: TermBuilder>(builder: &mut B, leaves: Vec<B::Term>, shape: &[usize]) -> B::Term {
    let mut level = leaves;
    for axis in (1..shape.len()).rev() {
        // How many lists this axis has: the product of the dimensions outside it (with a zero
        // dimension inside, that many empty lists). Taken from the end, one row at a time.
        let count: usize = shape[..axis].iter().product();
        let dim = shape[axis];
        let mut lists = Vec::with_capacity(count);
        for _ in 0..count {
            let row = level.split_off(level.len() - dim);
            lists.push(builder.list(row));
        }
        lists.reverse();
        level = lists;
    }
    // The outermost axis is one list of what is left, taken as it is (for a 1-D array, every
    // element: no second copy).
    if !shape.is_empty() {
        return builder.list(level);
    }
    // A 0-d array has exactly one element.
    match level.pop() {
        Some(term) => term,
        None => builder.list(Vec::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// The array form: `{py_array, Dtype, Shape, Data}`, a numpy array as its bytes.

/// The dtypes with an array form: numpy's name, which is also the Erlang atom, and item size.
pub(crate) const ARRAY_DTYPES: [(&str, usize); 11] = [
    ("float64", 8),
    ("float32", 4),
    ("int64", 8),
    ("int32", 4),
    ("int16", 2),
    ("int8", 1),
    ("uint64", 8),
    ("uint32", 4),
    ("uint16", 2),
    ("uint8", 1),
    ("bool", 1),
];

/// The tag of the array form.
pub const ARRAY_TAG: &str = "py_array";

/// A borrow or layout refusal of the numpy crate, as a Python error.
fn numpy_error(err: impl std::fmt::Display) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!("numpy array: {err}"))
}

fn bad_array(why: impl std::fmt::Display) -> Error {
    Error::BadArray(why.to_string())
}

fn dtype_list() -> String {
    let names: Vec<&str> = ARRAY_DTYPES.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// The name of a native-byte-order dtype in [`ARRAY_DTYPES`].
fn array_dtype_name(descr: &Bound<'_, numpy::PyArrayDescr>) -> Option<&'static str> {
    let py = descr.py();
    macro_rules! name_of {
        ($(($t:ty, $name:literal)),*) => {$(
            if descr.is_equiv_to(&dtype::<$t>(py)) {
                return Some($name);
            }
        )*};
    }
    name_of!(
        (f64, "float64"),
        (f32, "float32"),
        (i64, "int64"),
        (i32, "int32"),
        (i16, "int16"),
        (i8, "int8"),
        (u64, "uint64"),
        (u32, "uint32"),
        (u16, "uint16"),
        (u8, "uint8"),
        (bool, "bool")
    );
    None
}

/// `{py_array, Dtype, Shape, Data}` (its elements after the tag) as a read-only numpy array over
/// `Data` itself where the reader can lend it ([`TermReader::binary_buffer`]), else over a copy.
pub(crate) fn array_from_term<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    dtype_term: R::Term,
    shape_term: R::Term,
    data_term: R::Term,
) -> Result<Bound<'py, PyAny>> {
    let (name, item_size) = match reader.view(py, dtype_term)?.into_atom_name(py) {
        Some(name) => *ARRAY_DTYPES
            .iter()
            .find(|(known, _)| *known == name)
            .ok_or_else(|| bad_array(format!("unknown dtype {name}; one of {}", dtype_list())))?,
        _ => {
            return Err(bad_array(format!(
                "the dtype is an atom, one of {}",
                dtype_list()
            )))
        }
    };
    let View::List(dims) = reader.view(py, shape_term)? else {
        return Err(bad_array("the shape is a list of non-negative integers"));
    };
    let mut shape = Vec::with_capacity(dims.len());
    for dim in dims {
        match reader.view(py, dim)? {
            View::Int(n) if n >= 0 => shape.push(
                usize::try_from(n)
                    .map_err(|_| bad_array("the shape is a list of non-negative integers"))?,
            ),
            _ => return Err(bad_array("the shape is a list of non-negative integers")),
        }
    }
    let View::Binary(bytes) = reader.view(py, data_term)? else {
        return Err(bad_array("the data is a binary"));
    };
    let expected = shape
        .iter()
        .try_fold(item_size, |acc, &dim| acc.checked_mul(dim))
        .ok_or_else(|| bad_array(format!("shape {shape:?} is too large")))?;
    if bytes.len() != expected {
        return Err(bad_array(format!(
            "{} bytes of data for shape {shape:?} of {name} ({expected} expected)",
            bytes.len()
        )));
    }
    let numpy = py.import("numpy")?;
    let buffer = match reader.binary_buffer(py, data_term)? {
        Some(lent) => lent,
        None => PyBytes::new(py, bytes).into_any(),
    };
    let array = numpy.call_method1("frombuffer", (buffer, name))?;
    Ok(array.call_method1("reshape", (PyTuple::new(py, &shape)?,))?)
}

/// A numpy array on its way to Erlang as `{py_array, Dtype, Shape, Data}` rather than as nested
/// lists: made by `erlang.py_array(array)`.
#[pyclass(module = "erlang", name = "PyArray", frozen)]
pub struct PyArrayTerm {
    dtype: &'static str,
    shape: Vec<usize>,
    /// The elements' bytes in C order, as a 1-D uint8 array.
    bytes: Py<PyAny>,
}

#[pymethods]
impl PyArrayTerm {
    /// The dtype's name (the Erlang atom).
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype
    }

    /// The shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.shape)
    }

    fn __repr__(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let trailing = if dims.len() == 1 { "," } else { "" };
        format!(
            "PyArray(dtype='{}', shape=({}{trailing}))",
            self.dtype,
            dims.join(", ")
        )
    }
}

/// Wraps a numpy array (or anything `numpy.asarray` accepts) so that it reaches Erlang as
/// `{py_array, Dtype, Shape, Data}`: `Data` a binary of the elements in C order and native
/// byte order. Raises TypeError for a dtype with no array form.
#[pyfunction]
#[pyo3(signature = (array, /))]
pub fn py_array(array: &Bound<'_, PyAny>) -> PyResult<PyArrayTerm> {
    let py = array.py();
    let numpy = py.import("numpy")?;
    let array = numpy.call_method1("asarray", (array,))?;
    let native = array
        .getattr("dtype")?
        .call_method1("newbyteorder", ("=",))?;
    let descr = native.cast::<numpy::PyArrayDescr>()?;
    let Some(dtype) = array_dtype_name(descr) else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "an array of dtype {} has no Erlang array form; supported: {}",
            array.getattr("dtype")?.str()?,
            dtype_list()
        )));
    };
    // In C order and native byte order, copied only when it is not both already
    // (ascontiguousarray would also make a 0-d array 1-d).
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("dtype", &native)?;
    kwargs.set_item("order", "C")?;
    let contiguous = numpy.call_method("asarray", (&array,), Some(&kwargs))?;
    let shape = contiguous
        .cast::<PyUntypedArray>()
        .map_err(PyErr::from)?
        .shape()
        .to_vec();
    let bytes = contiguous
        .call_method1("reshape", (-1,))?
        .call_method1("view", (numpy.getattr("uint8")?,))?;
    Ok(PyArrayTerm {
        dtype,
        shape,
        bytes: bytes.unbind(),
    })
}

/// The array form of `array`: one copy of its bytes into a binary.
pub(crate) fn array_term<B: TermBuilder>(
    builder: &mut B,
    array: &Bound<'_, PyArrayTerm>,
    opts: &Options,
    depth: usize,
) -> Result<B::Term> {
    // The tuple and the shape list inside it.
    check_depth(depth + 2, opts)?;
    let term = array.get();
    let py = array.py();
    let bytes = term
        .bytes
        .bind(py)
        .cast::<numpy::PyArray1<u8>>()
        .map_err(PyErr::from)?;
    let readonly = bytes.try_readonly().map_err(numpy_error)?;
    let data = readonly.as_slice().map_err(numpy_error)?;
    let tag = builder.atom(ARRAY_TAG);
    let dtype = builder.atom(term.dtype);
    let mut dims = Vec::with_capacity(term.shape.len());
    for &dim in &term.shape {
        let dim = i64::try_from(dim).map_err(|_| bad_array("a dimension is too large"))?;
        dims.push(builder.int(dim));
    }
    let shape = builder.list(dims);
    let data = builder.binary(data);
    Ok(builder.tuple(vec![tag, dtype, shape, data]))
}
