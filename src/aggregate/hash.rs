//! The hasher of the aggregator's per-event maps.
//!
//! Every event looks up its model, version, features and request id in
//! several string-keyed maps; with the standard library's SipHash, hashing
//! was about a third of the aggregator's instructions. foldhash is several
//! times faster on short keys and is still seeded at random per process,
//! so a client choosing keys cannot aim at collisions it cannot predict.

use crate::ingest::name::Name;

/// A `HashMap` with the fast hasher.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// An `IndexMap` with the fast hasher: a map whose entries also have a
/// position, for maps looked up by the position a name had in the last
/// event before hashing it (see `feature_order` in the aggregator and the
/// window store).
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, foldhash::fast::RandomState>;

/// Where `name` is in `map`, if `at` still holds it (`at` is a position the
/// name had before; entries move when others are removed).
pub fn at_position<V>(map: &IndexMap<Name, V>, at: Option<&usize>, name: &Name) -> Option<usize> {
    let &i = at?;
    let (k, _) = map.get_index(i)?;
    (k == name).then_some(i)
}

/// Notes that the feature at position `p` of an event is entry `i` (or
/// none: `usize::MAX`).
pub fn remember_position(order: &mut Vec<usize>, p: usize, i: usize) {
    if order.len() <= p {
        order.resize(p + 1, usize::MAX);
    }
    order[p] = i;
}

/// A `HashSet` with the fast hasher.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
