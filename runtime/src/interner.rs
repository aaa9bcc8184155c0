//! Interning isolation-key values (matter and patient ids) to [`KeyValue`]s. Used by the
//! engine and tools outside `decide`; it allocates and hashes, which is why `decide`
//! only ever sees the ids.

use std::collections::HashMap;

use crate::request::KeyValue;

/// Gives every distinct key value text one id, stable for the interner's life.
///
/// ```
/// use agentpolicy_runtime::KeyValueInterner;
/// let mut values = KeyValueInterner::default();
/// let m1 = values.intern("M-1");
/// assert_eq!(values.intern("M-1"), m1);
/// assert_ne!(values.intern("M-2"), m1);
/// assert_eq!(values.text(m1), Some("M-1"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyValueInterner {
    ids: HashMap<String, KeyValue>,
    texts: Vec<String>,
}

impl KeyValueInterner {
    pub fn intern(&mut self, text: &str) -> KeyValue {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = KeyValue(self.texts.len() as u64);
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    /// The id of a text interned before, without interning it.
    pub fn get(&self, text: &str) -> Option<KeyValue> {
        self.ids.get(text).copied()
    }

    /// The text of an id this interner gave out.
    pub fn text(&self, id: KeyValue) -> Option<&str> {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.texts.get(i))
            .map(String::as_str)
    }
}
