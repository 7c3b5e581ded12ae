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

use super::{check_depth, float_term, Options, TermBuilder};
use crate::error::Result;

/// One array element as a term, by the rules for the Python number it stands for.
trait Leaf: Element + Copy {
    fn term<B: TermBuilder>(self, builder: &mut B) -> Result<B::Term>;
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
small_int_leaf!(i8, i16, i32, i64, u8, u16, u32);

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
    let readonly = array.try_readonly().map_err(|e| {
        PyErr::new::<pyo3::exceptions::PyRuntimeError, _>(format!("numpy array: {e}"))
    })?;
    let values = readonly.as_slice().map_err(|e| {
        PyErr::new::<pyo3::exceptions::PyRuntimeError, _>(format!("numpy array: {e}"))
    })?;
    // C order: the buffer is the row-major sequence tolist() reads.
    let mut leaves = Vec::with_capacity(values.len());
    for value in values {
        leaves.push(value.term(builder)?);
    }
    Ok(nest(builder, leaves, shape))
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
