//! Literal values, decoded exactly: money in cents, numbers and percentages in
//! millionths, durations in ms, counts as whole numbers, strings with their escapes.
//! The number formats themselves are the runtime's (`agentpolicy_runtime::values`), so
//! the compiler and the wire formats read a value the same way.

use pest::iterators::Pair;

use super::Rule;
use super::lower::{Lower, LowerResult, next};
use crate::syntax::ast::*;

use agentpolicy_runtime::values::{parse_decimal, parse_duration, parse_money, parse_percent};

impl Lower<'_> {
    /// A `literal` pair (wrapping one concrete literal kind).
    pub(super) fn literal(&self, pair: Pair<'_, Rule>) -> LowerResult<Literal> {
        match pair.as_rule() {
            Rule::literal => self.literal_of(next(&mut pair.into_inner())?),
            _ => self.literal_of(pair),
        }
    }

    /// A concrete literal pair: money, percent, duration, number, string or boolean.
    pub(super) fn literal_of(&self, pair: Pair<'_, Rule>) -> LowerResult<Literal> {
        let range = self.range(&pair);
        let text = pair.as_str();
        let value = match pair.as_rule() {
            Rule::money => LiteralValue::Money(parse_money(text).ok_or_else(|| {
                self.invalid(
                    &pair,
                    format!("`{text}` is not a valid amount"),
                    "amounts are written `$10,000`, `$99.95`, `$1.5M`: whole cents, at most $92,233,720,368,547,758.07",
                )
            })?),
            Rule::percent => LiteralValue::Percent(
                parse_percent(text)
                    .ok_or_else(|| {
                        self.invalid(
                            &pair,
                            format!("`{text}` is not a valid percentage"),
                            "percentages are written `20%` or `0.5%`, with at most 4 decimals",
                        )
                    })?,
            ),
            Rule::duration => LiteralValue::Duration(self.duration(pair)?),
            Rule::number => LiteralValue::Number(parse_decimal(text, 6).ok_or_else(|| {
                self.invalid(
                    &pair,
                    format!("`{text}` is not a valid number"),
                    "numbers have at most 6 decimals and at most 12 integer digits",
                )
            })?),
            Rule::string => LiteralValue::Text(self.string(pair)?.value),
            Rule::boolean => LiteralValue::Bool(text == "true"),
            _ => return Err(self.unexpected(range)),
        };
        Ok(Literal { value, range })
    }

    pub(super) fn count(&self, pair: &Pair<'_, Rule>) -> LowerResult<i64> {
        let text = pair.as_str();
        let invalid = || {
            self.invalid(
                pair,
                format!("`{text}` is not a whole count"),
                "limits count whole calls or tokens: `100 calls per task`",
            )
        };
        if text.contains('.') {
            return Err(invalid());
        }
        text.replace('_', "").parse::<i64>().map_err(|_| invalid())
    }

    pub(super) fn duration(&self, pair: Pair<'_, Rule>) -> LowerResult<i64> {
        let text = pair.as_str();
        parse_duration(text).ok_or_else(|| {
            self.invalid(
                &pair,
                format!("`{text}` is not a valid duration"),
                "durations are a whole number and a unit: `500ms`, `30s`, `15m`, `2h`, `7d`, `4w`, `7y`",
            )
        })
    }

    pub(super) fn string(&self, pair: Pair<'_, Rule>) -> LowerResult<StringLit> {
        let range = self.range(&pair);
        let raw = pair.as_str();
        let body = &raw[1..raw.len().saturating_sub(1).max(1)];
        let mut value = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                other => {
                    return Err(self.invalid(
                        &pair,
                        format!(
                            "unknown escape `\\{}` in a string",
                            other.map(String::from).unwrap_or_default()
                        ),
                        "strings may escape `\\\"`, `\\\\`, `\\n` and `\\t`",
                    ));
                }
            }
        }
        Ok(StringLit { value, range })
    }
}
