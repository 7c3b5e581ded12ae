//! The span map and the attribute rules, built in the external term format (the mocked
//! BEAM's builder) and printed in Erlang syntax.

use erlang_python_core::convert::Options;
use erlang_python_core::etf;
use erlang_python_core::ext::{ExtBuilder, NoHandles};
use erlang_python_core::meta::{attrs_to_term, ReprObjects};
use erlang_python_core::trace::{span_to_term, SpanEvent, SpanRecord, SpanStatus};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

fn dict<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyDict> {
    let code = std::ffi::CString::new(code).unwrap();
    py.eval(&code, None, None)
        .unwrap()
        .cast_into::<PyDict>()
        .unwrap()
}

fn opts() -> Options {
    Options { max_depth: 20 }
}

fn span<'py>(
    py: Python<'py>,
    parent_id: Option<u64>,
    events: Vec<SpanEvent<'py>>,
) -> SpanRecord<'py> {
    SpanRecord {
        name: "db.query".into(),
        trace_id: u128::MAX,
        span_id: 7,
        parent_id,
        start_us: 100,
        end_us: 145,
        status: SpanStatus::Ok,
        attrs: dict(py, "{'table': 'users'}"),
        end_attrs: dict(py, "{}"),
        events,
    }
}

fn printed(py: Python<'_>, record: &SpanRecord<'_>) -> String {
    let mut builder = ReprObjects::new(py, ExtBuilder::new(py, &NoHandles));
    let term = span_to_term(&mut builder, record, &opts()).unwrap();
    let bytes = builder.inner.finish(term).unwrap();
    etf::format(&bytes, 100).unwrap()
}

#[test]
fn root_span_map_has_the_eleven_keys() {
    with_py(|py| {
        let record = span(py, None, Vec::new());
        assert_eq!(
            printed(py, &record),
            "#{attributes => #{<<\"table\">> => <<\"users\">>},duration_us => 45,\
             end_attrs => #{},end_time => 145,events => [],name => <<\"db.query\">>,\
             parent_id => undefined,span_id => 7,start_time => 100,status => ok,\
             trace_id => 340282366920938463463374607431768211455}"
        );
    });
}

#[test]
fn child_span_with_events_in_the_given_order() {
    with_py(|py| {
        let events = vec![
            SpanEvent {
                name: "second".into(),
                attrs: dict(py, "{'n': 2}"),
                time_us: 130,
            },
            SpanEvent {
                name: "first".into(),
                attrs: dict(py, "{}"),
                time_us: 120,
            },
        ];
        let mut record = span(py, Some(u64::MAX), events);
        record.status = SpanStatus::Error;
        record.end_attrs = dict(py, "{'exception': 'boom'}");
        let text = printed(py, &record);
        assert!(
            text.contains("parent_id => 18446744073709551615,"),
            "{text}"
        );
        assert!(text.contains("status => error,"), "{text}");
        assert!(
            text.contains("end_attrs => #{<<\"exception\">> => <<\"boom\">>},"),
            "{text}"
        );
        assert!(
            text.contains(
                "events => [#{attrs => #{<<\"n\">> => 2},name => <<\"second\">>,time => 130},\
                 #{attrs => #{},name => <<\"first\">>,time => 120}]"
            ),
            "{text}"
        );
    });
}

#[test]
fn attrs_without_a_term_are_sent_as_repr_and_odd_keys_skipped() {
    with_py(|py| {
        let attrs = dict(
            py,
            "{'o': type('O', (), {'__repr__': lambda self: 'O!'})(), 'l': [1, {2}], \
             1: 'skipped', 's': '\\ud800', 'ok': (1, None)}",
        );
        let mut builder = ReprObjects::new(py, ExtBuilder::new(py, &NoHandles));
        let term = attrs_to_term(&mut builder, &attrs, &opts()).unwrap();
        let bytes = builder.inner.finish(term).unwrap();
        assert_eq!(
            etf::format(&bytes, 100).unwrap(),
            "#{<<\"l\">> => [1,[2]],<<\"o\">> => <<\"O!\">>,<<\"ok\">> => {1,none},\
             <<\"s\">> => <<\"'\\\\ud800'\">>}"
        );
    });
}

#[test]
fn status_names() {
    assert_eq!(SpanStatus::from_name("ok"), Some(SpanStatus::Ok));
    assert_eq!(SpanStatus::from_name("error"), Some(SpanStatus::Error));
    assert_eq!(SpanStatus::from_name("OK"), None);
    assert_eq!(SpanStatus::Error.atom(), "error");
}

#[test]
fn duration_never_overflows() {
    with_py(|py| {
        let mut record = span(py, None, Vec::new());
        record.start_us = i64::MIN;
        record.end_us = i64::MAX;
        assert_eq!(record.duration_us(), i64::MAX);
    });
}
