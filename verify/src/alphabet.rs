//! Texts as Z3 strings, exactly. Z3 4.8.12's strings are sequences over the characters
//! `0..=0x2FFFF` (`zstring::max_char`; a string literal names one as `\u{h}` with one to
//! five hex digits, or `\uhhhh`; a character above the maximum is an error, and six hex
//! digits are not an escape at all). Unicode has scalar values up to `U+10FFFF`, so a
//! text cannot be sent as it is.
//!
//! The [`Alphabet`] of one verification run maps every scalar value up to `U+2FFFF` to
//! itself and each character above it that the policy mentions (in any text of its table
//! or model) to a surrogate code, `0xD800 + i`: surrogates are not scalar values, so no
//! text mentions them. A Z3 character read back from a model is decoded by the inverse:
//! codes up to `0x2FFFF` that are not surrogates are themselves, the surrogates in use are
//! the mentioned characters, and the other surrogates stand for distinct characters above
//! `U+2FFFF` that the policy does not mention. The map is one character to one character,
//! so `?` (one character) and `*` (any sequence) keep their meaning; why this is exact is
//! argued in `docs/verification.md` ("Texts").
//!
//! It must not build formulas: `encode` does, through [`Alphabet::literal`].

use z3::ast::{Int, String as ZString};

use super::encode::SymRequest;

/// The largest character of Z3 4.8.12's strings.
pub const Z3_MAX_CHAR: u32 = 0x2_FFFF;

/// Where characters above [`Z3_MAX_CHAR`] are relocated: the surrogate codes.
const RELOCATED: u32 = 0xD800;
const RELOCATED_SLOTS: usize = 0x800;

/// Model strings longer than this are not read back (the counterexample then fails its
/// replay and is reported as unknown).
const MAX_READ: i64 = 1 << 16;

/// The characters of one verification run and their Z3 codes.
#[derive(Debug, Clone, Default)]
pub struct Alphabet {
    /// Mentioned characters above [`Z3_MAX_CHAR`], sorted; the `i`-th has code
    /// `RELOCATED + i` (only the first [`RELOCATED_SLOTS`] have one).
    high: Vec<char>,
    /// How many distinct mentioned characters are at most [`Z3_MAX_CHAR`].
    low: usize,
    /// A text of the run could not be read, so which characters it mentions is not
    /// known: characters above [`Z3_MAX_CHAR`] get no code at all.
    incomplete: bool,
}

impl Alphabet {
    /// The alphabet of a run whose formulas mention only characters of `texts`.
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Alphabet {
        let mut chars: Vec<char> = texts.into_iter().flat_map(str::chars).collect();
        chars.sort_unstable();
        chars.dedup();
        let (low, high): (Vec<char>, Vec<char>) = chars
            .into_iter()
            .partition(|c| u32::from(*c) <= Z3_MAX_CHAR);
        Alphabet {
            high,
            low: low.len(),
            incomplete: false,
        }
    }

    /// The alphabet of every string in `values` (a serialized table and model): an
    /// over-approximation of what formulas mention, complete by construction.
    pub fn of_json(values: &[Result<serde_json::Value, serde_json::Error>]) -> Alphabet {
        let mut texts: Vec<&str> = Vec::new();
        let mut incomplete = false;
        for v in values {
            match v {
                Ok(v) => strings(v, &mut texts),
                Err(_) => incomplete = true,
            }
        }
        Alphabet {
            incomplete,
            ..Alphabet::new(texts)
        }
    }

    /// The Z3 code of `c`; `None` for a character above [`Z3_MAX_CHAR`] the run did not
    /// mention, or one beyond the relocation slots (more than 2048 such characters).
    pub fn code(&self, c: char) -> Option<u32> {
        let scalar = u32::from(c);
        if scalar <= Z3_MAX_CHAR {
            return Some(scalar);
        }
        if self.incomplete {
            return None;
        }
        let i = self.high.binary_search(&c).ok()?;
        (i < RELOCATED_SLOTS).then(|| RELOCATED + i as u32)
    }

    /// The character a Z3 code stands for: the inverse of [`Alphabet::code`], extended
    /// to every code of Z3's alphabet without mapping two codes to one character or an
    /// unused code to a mentioned character.
    pub fn char(&self, code: u32) -> Option<char> {
        if !(RELOCATED..RELOCATED + RELOCATED_SLOTS as u32).contains(&code) {
            return char::from_u32(code).filter(|_| code <= Z3_MAX_CHAR);
        }
        let slot = (code - RELOCATED) as usize;
        if slot < self.high.len() && !self.incomplete {
            return self.high.get(slot).copied();
        }
        // The `slot`-th character above the maximum that is not mentioned.
        let mut skip = slot;
        let mut scalar = Z3_MAX_CHAR + 1;
        loop {
            let c = char::from_u32(scalar)?;
            if self.high.binary_search(&c).is_err() {
                if skip == 0 {
                    return Some(c);
                }
                skip -= 1;
            }
            scalar += 1;
        }
    }

    /// `text` as a Z3 string literal (the argument of `Z3_mk_string`): printable ASCII
    /// but the backslash as itself, every other character as `\u{h}` of its code.
    /// `None` when a character has no code.
    pub fn literal(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let code = self.code(c)?;
            if (0x20..0x7F).contains(&code) && c != '\\' {
                out.push(c);
            } else {
                out.push_str(&format!("\\u{{{code:x}}}"));
            }
        }
        Some(out)
    }

    /// How many Z3 codes stand for no mentioned character (surrogates not counted): a
    /// query over `n` string variables needs at most `n` of them (see the docs).
    pub fn free_codes(&self) -> usize {
        (Z3_MAX_CHAR as usize + 1) - RELOCATED_SLOTS - self.low
    }

    /// Whether a query over the strings of `req` is exact in this alphabet (it always
    /// is short of a policy with well over a hundred thousand distinct characters or
    /// string variables; otherwise the query is not asked: unknown).
    pub fn has_room(&self, req: &SymRequest) -> bool {
        let strings: usize = req.slots.iter().flatten().map(|s| s.strings.len()).sum();
        strings <= self.free_codes()
    }

    /// The text of a string in a model, character by character: Z3 prints a string
    /// with its backslashes unescaped, so `\u{41}` could be one character or six, while
    /// a string of length one prints unambiguously.
    pub fn read(&self, model: &z3::Model, s: &ZString) -> Option<String> {
        let len = model.eval(&s.length(), true)?.as_i64()?;
        if !(0..=MAX_READ).contains(&len) {
            return None;
        }
        let mut out = String::new();
        for i in 0..len {
            let unit = model.eval(&s.at(Int::from_i64(i)), true)?.as_string()?;
            out.push(self.char(unit_code(&unit)?)?);
        }
        Some(out)
    }
}

/// Every string in a JSON value (object keys too).
fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// The code of a one-character string as Z3 prints it: the character itself, or an
/// escape `\u{h}`, `\uhhhh` or `\xhh`.
fn unit_code(printed: &str) -> Option<u32> {
    let mut chars = printed.chars();
    let first = chars.next()?;
    if chars.next().is_none() {
        return Some(u32::from(first));
    }
    let digits = if let Some(rest) = printed.strip_prefix("\\u{") {
        rest.strip_suffix('}')?
    } else if let Some(rest) = printed.strip_prefix("\\u") {
        rest
    } else {
        printed.strip_prefix("\\x")?
    };
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alphabet() -> Alphabet {
        Alphabet::new(["a\u{E0001}", "\u{10FFFD}?", "\u{30000}"])
    }

    #[test]
    fn codes_are_in_z3s_alphabet_and_decode_back() {
        let a = alphabet();
        for c in [
            'a',
            '\0',
            '\\',
            '\u{FFFD}',
            '\u{2FFFF}',
            '\u{E0001}',
            '\u{10FFFD}',
        ] {
            let code = a.code(c).unwrap_or_else(|| panic!("{c:?} has no code"));
            assert!(code <= Z3_MAX_CHAR);
            assert_eq!(a.char(code), Some(c));
        }
        assert_eq!(a.code('\u{E007F}'), None, "not mentioned");
    }

    #[test]
    fn decoding_is_injective_and_keeps_unmentioned_codes_unmentioned() {
        let a = alphabet();
        let mut seen = std::collections::HashSet::new();
        for code in (0..0x100)
            .chain(0xD700..0xE100)
            .chain(0x2FF00..=Z3_MAX_CHAR)
        {
            let c = a
                .char(code)
                .unwrap_or_else(|| panic!("{code:x} decodes to nothing"));
            assert!(seen.insert(c), "{code:x} decodes to {c:?} twice");
            if !(RELOCATED..RELOCATED + 3).contains(&code) {
                assert!(
                    !a.high.contains(&c),
                    "{code:x} decodes to a mentioned {c:?}"
                );
            }
        }
    }

    #[test]
    fn literals_escape_everything_z3_would_misread() {
        let a = alphabet();
        assert_eq!(a.literal("a\\b\"").as_deref(), Some("a\\u{5c}b\""));
        assert_eq!(
            a.literal("\0\u{7F}é").as_deref(),
            Some("\\u{0}\\u{7f}\\u{e9}")
        );
        assert_eq!(a.literal("\u{10FFFD}").as_deref(), Some("\\u{d802}"));
        assert_eq!(a.literal("\u{E007F}"), None);
    }

    #[test]
    fn printed_units_parse() {
        assert_eq!(unit_code("\\"), Some(0x5C));
        assert_eq!(unit_code("a"), Some(0x61));
        assert_eq!(unit_code("\\u{2ffff}"), Some(0x2FFFF));
        assert_eq!(unit_code("\\u00e9"), Some(0xE9));
        assert_eq!(unit_code("\\x7f"), Some(0x7F));
        assert_eq!(unit_code("ab"), None);
    }
}
