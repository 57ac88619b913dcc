//! The hasher of the aggregator's per-event maps.
//!
//! Every event looks up its model, version, features and request id in
//! several string-keyed maps; with the standard library's SipHash, hashing
//! was about a third of the aggregator's instructions. foldhash is several
//! times faster on short keys and is still seeded at random per process,
//! so a client choosing keys cannot aim at collisions it cannot predict.

/// A `HashMap` with the fast hasher.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// An `IndexMap` with the fast hasher: a map whose entries also have a
/// position, for maps looked up by the position a name had in the last
/// event before hashing it (see the `capped` module).
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with the fast hasher.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
