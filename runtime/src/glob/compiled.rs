//! [`Glob`]: a glob compiled once, when the table is loaded, into an automaton whose
//! matching time is linear in the text. The request builder runs these; the two-pointer
//! [`super::glob_match`] stays the readable reference (and the test oracle).
//!
//! A glob `S0*S1*…*Sk` is cut at its stars into segments of literal characters and `?`.
//! Without a star the text must match `S0` exactly; with stars, `S0` must match a prefix,
//! `Sk` a suffix that does not overlap it, and each middle segment, in order, somewhere
//! in between. Taking each middle segment at its leftmost occurrence is optimal (any
//! later occurrence leaves less room for the rest), so no choice is ever revisited.
//! Prefix and suffix are compared character by character; a middle segment is found by
//! `str::find` when it has no `?` (two-way string matching: linear), otherwise by
//! a bit-parallel (shift-and) simulation of its automaton: one state bit per segment
//! position, one mask per character class, so each text character costs
//! `⌈segment / 64⌉` word operations and every character is read once over all
//! segments. Total: `O(text × ⌈longest segment / 64⌉)`, with nothing allocated for
//! segments up to [`STACK_WORDS`]` × 64` characters.

use super::{GlobError, GlobToken, glob_tokens};

/// Segments up to this many 64-bit words of state are matched with the state on the
/// stack; a longer segment (over 512 characters between two stars) allocates one
/// scratch vector per search.
pub(crate) const STACK_WORDS: usize = 8;

/// A glob compiled for matching in time linear in the text.
///
/// ```
/// use agentpolicy_runtime::Glob;
/// let g = Glob::new("*@acme.example").unwrap();
/// assert!(g.matches("ana@acme.example"));
/// assert!(!g.matches("ana@acme.example.evil"));
/// let iban = Glob::new("GB??NWBK*").unwrap();
/// assert!(iban.matches("GB29NWBK60161331926819"));
/// assert!(Glob::new("oops\\").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// Whether the pattern has a `*`; without one, `segments` has exactly one element.
    starred: bool,
    /// `S0 … Sk`; with a star, `S0` is the prefix and `Sk` the suffix (either may be
    /// empty), and the ones between are found in order.
    segments: Vec<Segment>,
}

/// One element of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Any,
    Char(char),
}

impl Atom {
    #[inline]
    fn accepts(self, c: char) -> bool {
        match self {
            Atom::Any => true,
            Atom::Char(x) => x == c,
        }
    }
}

/// A run of literal characters and `?` between two stars, with its shift-and masks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    atoms: Vec<Atom>,
    /// The segment as text when it has no `?`: found with `str::find` (two-way string
    /// matching, linear, with a vectorised first-byte scan) instead of shift-and.
    literal: Option<String>,
    /// 64-bit words of state: `⌈atoms / 64⌉`.
    words: usize,
    /// The class of each ASCII character: 0 for characters the segment does not name.
    ascii: Box<[u32; 128]>,
    /// The class of each other character the segment names, sorted by character.
    other: Vec<(char, u32)>,
    /// For class `c`, words `c * words ..`: bit `i` set when atom `i` accepts the
    /// class's characters (class 0: only the `?` atoms).
    masks: Vec<u64>,
}

impl Segment {
    fn new(atoms: Vec<Atom>) -> Segment {
        let words = atoms.len().div_ceil(64);
        let mut ascii = Box::new([0u32; 128]);
        let mut other: Vec<(char, u32)> = Vec::new();
        let mut classes = 1u32;
        for atom in &atoms {
            let Atom::Char(c) = *atom else { continue };
            let known = match ascii.get_mut(c as usize) {
                Some(slot) => {
                    if *slot == 0 {
                        *slot = classes;
                        classes += 1;
                    }
                    continue;
                }
                None => other.iter().any(|(x, _)| *x == c),
            };
            if !known {
                other.push((c, classes));
                classes += 1;
            }
        }
        other.sort_unstable();
        let mut masks = vec![0u64; classes as usize * words];
        let mut set = |class: u32, i: usize| {
            if let Some(w) = masks.get_mut(class as usize * words + i / 64) {
                *w |= 1u64 << (i % 64);
            }
        };
        for (i, atom) in atoms.iter().enumerate() {
            match *atom {
                Atom::Any => (0..classes).for_each(|class| set(class, i)),
                Atom::Char(c) => set(class_of(&ascii, &other, c), i),
            }
        }
        let literal = atoms
            .iter()
            .map(|a| match a {
                Atom::Char(c) => Some(*c),
                Atom::Any => None,
            })
            .collect::<Option<String>>();
        Segment {
            atoms,
            literal,
            words,
            ascii,
            other,
            masks,
        }
    }

    #[inline]
    fn mask(&self, c: char) -> &[u64] {
        let class = class_of(&self.ascii, &self.other, c) as usize;
        self.masks
            .get(class * self.words..(class + 1) * self.words)
            .unwrap_or(&[])
    }

    /// The end (a byte offset) of `text` when the segment matches its start.
    fn prefix_end(&self, text: &str) -> Option<usize> {
        let mut chars = text.char_indices();
        let mut end = 0;
        for atom in &self.atoms {
            let (i, c) = chars.next()?;
            if !atom.accepts(c) {
                return None;
            }
            end = i + c.len_utf8();
        }
        Some(end)
    }

    /// The start (a byte offset) of the segment when it matches the end of `text`.
    fn suffix_start(&self, text: &str) -> Option<usize> {
        let mut chars = text.char_indices().rev();
        let mut start = text.len();
        for atom in self.atoms.iter().rev() {
            let (i, c) = chars.next()?;
            if !atom.accepts(c) {
                return None;
            }
            start = i;
        }
        Some(start)
    }

    /// The end (a byte offset into `text`) of the segment's leftmost occurrence in
    /// `text[from..limit]`.
    fn find_end(&self, text: &str, from: usize, limit: usize) -> Option<usize> {
        let window = text.get(from..limit)?;
        if self.atoms.is_empty() {
            return Some(from);
        }
        if let Some(literal) = &self.literal {
            return window
                .find(literal.as_str())
                .map(|at| from + at + literal.len());
        }
        if self.words == 1 {
            return self.scan_one(window).map(|end| from + end);
        }
        if self.words <= STACK_WORDS {
            let mut state = [0u64; STACK_WORDS];
            self.scan(window, state.get_mut(..self.words)?)
        } else {
            let mut state = vec![0u64; self.words];
            self.scan(window, &mut state)
        }
        .map(|end| from + end)
    }

    /// [`Segment::scan`] for segments of at most 64 atoms: the state in one register.
    #[inline]
    fn scan_one(&self, window: &str) -> Option<usize> {
        let last_bit = 1u64 << (self.atoms.len() - 1);
        let mut state = 0u64;
        for (i, c) in window.char_indices() {
            let class = class_of(&self.ascii, &self.other, c) as usize;
            let mask = self.masks.get(class).copied().unwrap_or(0);
            state = ((state << 1) | 1) & mask;
            if state & last_bit != 0 {
                return Some(i + c.len_utf8());
            }
        }
        None
    }

    /// Shift-and over `window`: bit `i` of the state is set when atoms `0..=i` match
    /// the characters just read.
    #[inline]
    fn scan(&self, window: &str, state: &mut [u64]) -> Option<usize> {
        let last = self.atoms.len() - 1;
        let (last_word, last_bit) = (last / 64, 1u64 << (last % 64));
        for (i, c) in window.char_indices() {
            let mask = self.mask(c);
            // A new attempt starts at every character: shift in a 1.
            let mut carry = 1u64;
            for (w, m) in state.iter_mut().zip(mask) {
                let next = (*w << 1) | carry;
                carry = *w >> 63;
                *w = next & m;
            }
            if state.get(last_word).is_some_and(|w| w & last_bit != 0) {
                return Some(i + c.len_utf8());
            }
        }
        None
    }
}

#[inline]
fn class_of(ascii: &[u32; 128], other: &[(char, u32)], c: char) -> u32 {
    match ascii.get(c as usize) {
        Some(class) => *class,
        None => other
            .binary_search_by(|(x, _)| x.cmp(&c))
            .ok()
            .and_then(|i| other.get(i))
            .map_or(0, |(_, class)| *class),
    }
}

impl Glob {
    /// Compiles a well-formed glob (see [`glob_tokens`]).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let tokens = glob_tokens(pattern)?;
        let mut segments = Vec::new();
        let mut atoms = Vec::new();
        let mut starred = false;
        for token in tokens {
            match token {
                GlobToken::Star => {
                    starred = true;
                    segments.push(Segment::new(std::mem::take(&mut atoms)));
                }
                GlobToken::One => atoms.push(Atom::Any),
                GlobToken::Char(c) => atoms.push(Atom::Char(c)),
            }
        }
        segments.push(Segment::new(atoms));
        Ok(Glob { starred, segments })
    }

    /// Whether the whole of `text` matches. Allocation-free unless a segment between two
    /// stars is longer than 512 characters.
    pub fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.segments.split_first() else {
            return text.is_empty();
        };
        if !self.starred {
            return first.prefix_end(text) == Some(text.len());
        }
        let Some((last, middle)) = rest.split_last() else {
            return false;
        };
        let Some(mut from) = first.prefix_end(text) else {
            return false;
        };
        let Some(limit) = last.suffix_start(text) else {
            return false;
        };
        if from > limit {
            return false;
        }
        for segment in middle {
            match segment.find_end(text, from, limit) {
                Some(end) => from = end,
                None => return false,
            }
        }
        true
    }
}
