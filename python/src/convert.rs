//! Python values to the engine's exact values. Money is a `decimal.Decimal`, an `int` of
//! dollars or a string in policy syntax (`"$25,000"`, `"-$0.01"`); a `float` is refused
//! for money, since a binary fraction is not an amount of cents. Numbers, percentages
//! and confidences take `int`, `Decimal`, `str` (`"0.85"`, `"85%"`) or `float`, read
//! through its shortest decimal form (`0.85` is `"0.85"`), with more decimals than a
//! millionth refused rather than rounded. Texts are read by the runtime's own parsers
//! (`agentpolicy_runtime::values`, `wire::request::number`); nothing here parses a
//! number itself.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use agentpolicy_runtime::values::{parse_duration, parse_money};
use agentpolicy_runtime::wire::request::number;
use agentpolicy_runtime::{ArgValue, ValueType};

/// An argument value owned by the call being built (the engine's [`ArgValue`] borrows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedArg {
    Money(i64),
    Number(i64),
    Percent(i64),
    Duration(i64),
    Bool(bool),
    Text(String),
    TextList(Vec<String>),
    /// An argument the tool does not declare: passed on so the engine denies the call
    /// naming it (and the call is audited), as the HTTP service does.
    Undeclared,
}

impl OwnedArg {
    /// The engine's view; `lists` holds the borrowed elements of a `TextList`.
    pub fn as_arg<'a>(&'a self, list: &'a [&'a str]) -> ArgValue<'a> {
        match self {
            OwnedArg::Money(v) => ArgValue::Money(*v),
            OwnedArg::Number(v) => ArgValue::Number(*v),
            OwnedArg::Percent(v) => ArgValue::Percent(*v),
            OwnedArg::Duration(v) => ArgValue::Duration(*v),
            OwnedArg::Bool(v) => ArgValue::Bool(*v),
            OwnedArg::Text(t) => ArgValue::Text(t),
            OwnedArg::TextList(_) => ArgValue::TextList(list),
            OwnedArg::Undeclared => ArgValue::Text(""),
        }
    }
}

/// Why a value was refused: what was expected, for a message that names the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// A Python value as a value of type `ty`.
pub fn arg(value: &Bound<'_, PyAny>, ty: ValueType) -> Result<OwnedArg, Refused> {
    match ty {
        ValueType::Money => money(value).map(OwnedArg::Money),
        ValueType::Number => millionths(value).map(OwnedArg::Number),
        ValueType::Percent => millionths(value).map(OwnedArg::Percent),
        ValueType::Duration => duration(value).map(OwnedArg::Duration),
        ValueType::Bool => match value.cast::<PyBool>() {
            Ok(b) => Ok(OwnedArg::Bool(b.is_true())),
            Err(_) => Err(expected("True or False", value)),
        },
        ValueType::Text => match value.cast::<PyString>() {
            Ok(s) => Ok(OwnedArg::Text(
                s.to_cow().map_err(|_| not_text())?.into_owned(),
            )),
            Err(_) => Err(expected("a str", value)),
        },
        ValueType::TextList => text_list(value).map(OwnedArg::TextList),
    }
}

const MONEY: &str =
    "money: a decimal.Decimal, an int of dollars, or a str like \"$25,000\" or \"-$0.01\"";
const NUMBER: &str =
    "a number: an int, a decimal.Decimal, a float, or a str like \"0.85\" or \"85%\"";

/// Cents from a `Decimal`, an `int` of dollars or a money string.
pub fn money(value: &Bound<'_, PyAny>) -> Result<i64, Refused> {
    if value.is_instance_of::<PyBool>() {
        return Err(expected(MONEY, value));
    }
    if value.is_instance_of::<PyFloat>() {
        return Err(Refused(format!(
            "expected {MONEY}, found the float {}: a float is not an exact amount; pass Decimal(\"{}\") or \"${}\"",
            repr(value),
            repr(value),
            repr(value)
        )));
    }
    let text = if let Ok(s) = value.cast::<PyString>() {
        let s = s.to_cow().map_err(|_| not_text())?.trim().to_owned();
        if s.starts_with('$') || s.starts_with("-$") {
            s
        } else {
            format!("${s}")
        }
    } else if value.is_instance_of::<PyInt>() || is_decimal(value) {
        format!(
            "${}",
            plain_decimal(value).ok_or_else(|| expected(MONEY, value))?
        )
    } else {
        return Err(expected(MONEY, value));
    };
    parse_money(&text).ok_or_else(|| {
        Refused(format!(
            "expected {MONEY}, found {}: not a whole number of cents within range",
            repr(value)
        ))
    })
}

/// Millionths from an `int`, `Decimal`, `float` or a number / percentage string.
pub fn millionths(value: &Bound<'_, PyAny>) -> Result<i64, Refused> {
    if value.is_instance_of::<PyBool>() {
        return Err(expected(NUMBER, value));
    }
    let text = if let Ok(s) = value.cast::<PyString>() {
        s.to_cow().map_err(|_| not_text())?.into_owned()
    } else if let Ok(f) = value.cast::<PyFloat>() {
        // Rust prints the shortest text that reads back as the same float, without
        // an exponent: the digits Python's repr shows.
        format!("{}", f.value())
    } else if value.is_instance_of::<PyInt>() || is_decimal(value) {
        plain_decimal(value).ok_or_else(|| expected(NUMBER, value))?
    } else {
        return Err(expected(NUMBER, value));
    };
    number(&serde_json::Value::String(text)).map_err(|_| {
        Refused(format!(
            "expected {NUMBER}, found {}: not a number with at most 6 decimals (4 for a percentage) within range",
            repr(value)
        ))
    })
}

/// Milliseconds from a `datetime.timedelta`, an `int` of milliseconds or a string like
/// `"15m"`.
pub fn duration(value: &Bound<'_, PyAny>) -> Result<i64, Refused> {
    const DURATION: &str =
        "a duration: a datetime.timedelta, an int of milliseconds, or a str like \"15m\"";
    if value.is_instance_of::<PyBool>() {
        return Err(expected(DURATION, value));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return parse_duration(s.to_cow().map_err(|_| not_text())?.trim())
            .ok_or_else(|| expected(DURATION, value));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map_err(|_| expected(DURATION, value));
    }
    if is_timedelta(value) {
        let part = |name: &str| value.getattr(name).and_then(|v| v.extract::<i64>());
        let (days, seconds, micros) = match (part("days"), part("seconds"), part("microseconds")) {
            (Ok(d), Ok(s), Ok(u)) => (d, s, u),
            _ => return Err(expected(DURATION, value)),
        };
        if micros % 1000 != 0 {
            return Err(Refused(format!(
                "expected {DURATION}, found {}: not a whole number of milliseconds",
                repr(value)
            )));
        }
        return days
            .checked_mul(86_400_000)
            .and_then(|d| d.checked_add(seconds * 1000 + micros / 1000))
            .ok_or_else(|| expected(DURATION, value));
    }
    Err(expected(DURATION, value))
}

fn text_list(value: &Bound<'_, PyAny>) -> Result<Vec<String>, Refused> {
    const LIST: &str = "a list of str, like [\"a@acme.example\"]";
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = value.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = value.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(expected(LIST, value));
    };
    items
        .iter()
        .map(|item| match item.cast::<PyString>() {
            Ok(s) => s.to_cow().map(|c| c.into_owned()).map_err(|_| not_text()),
            Err(_) => Err(expected(LIST, value)),
        })
        .collect()
}

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `value` is a `decimal.Decimal` (or a subclass); the class is imported once.
fn is_decimal(value: &Bound<'_, PyAny>) -> bool {
    DECIMAL
        .import(value.py(), "decimal", "Decimal")
        .is_ok_and(|ty| value.is_instance(ty).unwrap_or(false))
}

fn is_timedelta(value: &Bound<'_, PyAny>) -> bool {
    TIMEDELTA
        .import(value.py(), "datetime", "timedelta")
        .is_ok_and(|ty| value.is_instance(ty).unwrap_or(false))
}

/// An `int` or a finite `Decimal` as plain decimal text: `str(v)`, or for a `Decimal`
/// that `str` writes with an exponent (`1E+2`), `format(v, "f")`.
fn plain_decimal(value: &Bound<'_, PyAny>) -> Option<String> {
    let text = value.str().ok()?.to_cow().ok()?.into_owned();
    if value.is_instance_of::<PyInt>() || !text.contains(['E', 'e']) {
        return Some(text);
    }
    let py = value.py();
    py.import("builtins")
        .ok()?
        .getattr("format")
        .ok()?
        .call1((value, "f"))
        .ok()?
        .extract()
        .ok()
}

fn repr(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "a value".to_string())
}

fn expected(what: &str, value: &Bound<'_, PyAny>) -> Refused {
    let ty = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Refused(format!("expected {what}, found {ty} {}", repr(value)))
}

fn not_text() -> Refused {
    Refused("the str is not valid Unicode text (a lone surrogate)".to_string())
}
