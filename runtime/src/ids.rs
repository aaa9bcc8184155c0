//! Dense ids: every name in a table is interned to an index into one of its vectors.
//!
//! Ids are plain `u32` newtypes so a request and a decision are small `Copy` values. An
//! id is only meaningful together with the table it came from.

use serde::{Deserialize, Serialize};

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as an index into the table vector it names an element of.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

ids! {
    /// An agent: index into `TableData::agents`.
    AgentId;
    /// A tool: index into `TableData::tools`.
    ToolId;
    /// A tier: index into `TableData::tiers`, which is also its rank (lowest is 0).
    TierId;
    /// An isolation key (`matter`, `patient`): index into `TableData::keys`.
    KeyId;
    /// A resource: index into `TableData::resources`.
    ResourceId;
    /// A sink: index into `TableData::sinks`.
    SinkId;
    /// An escalation route: index into `TableData::routes`.
    RouteId;
    /// A rule: index into `TableData::rules`.
    RuleIndex;
    /// A text constant: index into `TableData::texts`.
    TextId;
    /// A source file: index into `TableData::files`.
    FileIndex;
}
