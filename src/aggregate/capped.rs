//! The map of every capped label: models, versions, features, classes,
//! error classes, categories, business counters and log components.
//!
//! An entry can hold two things, each with its own place under a cap:
//!
//! * **series**: the metric handles of the label value. Past the series cap
//!   a new value is counted under the [`OVERFLOW_LABEL`] entry instead
//!   (which takes no place), and `model_exporter_series_dropped_total` says
//!   so. Series stay while events use them: `--metrics.ttl` forgets those
//!   unused for the ttl, freeing their places.
//! * **windows**: the rings the rules read. Past the windows cap a new value
//!   is not windowed at all. Windows go as a whole with their version's.
//!
//! The two sets differ: a value whose series expired keeps its windows, the
//! windows of a version are dropped when the rules change shape while its
//! series stay, and the overflow entry has series but no windows. An entry
//! holding neither is removed.
//!
//! Entries also have a position, so that the features of an event, which
//! usually come in the order of the previous event's, are found by comparing
//! names instead of hashing them ([`Capped::at_position`]).
//!
//! **Declared** entries (the models rules.yaml names, the features of a
//! model's baseline or expectations: see [`declared`](super::declared)) are
//! given their series and windows whatever the caps, and take no place
//! under them, so that names arriving first cannot push them into the
//! overflow entry. An entry is declared when it is created for a declared
//! name, and again on every reload ([`Capped::redeclare`]).

use super::hash::IndexMap;
use super::limits::OVERFLOW_LABEL;
use crate::ingest::name::Name;

/// What an entry holds, as far as the caps are concerned.
pub trait Parts {
    /// Whether it holds series (a place under the series cap, unless it is
    /// the overflow entry).
    fn has_series(&self) -> bool;
    /// Whether it holds windows (a place under the windows cap).
    fn has_windows(&self) -> bool;
    /// Called whenever the map hands the entry out to be changed
    /// ([`Capped::at_mut`], [`Capped::update`], [`Capped::retain`]): an entry
    /// that keeps something worked out from its own state drops it here, so
    /// that nothing changes that state unseen. (A map of [`Slot`]s also hands
    /// out their parts directly; a slot keeps nothing of the kind.)
    fn changing(&mut self) {}
}

/// An entry, and whether its name is declared (it takes no place).
struct Entry<V> {
    v: V,
    declared: bool,
}

/// Label values of one kind, each with its series and windows, under caps.
/// See the [module documentation](self).
pub struct Capped<V> {
    entries: IndexMap<Name, Entry<V>>,
    /// Entries holding series (the overflow entry included).
    series: usize,
    /// Entries holding windows.
    windows: usize,
    /// Declared entries holding series.
    declared_series: usize,
    /// Declared entries holding windows.
    declared_windows: usize,
}

impl<V> Default for Capped<V> {
    fn default() -> Self {
        Capped {
            entries: IndexMap::default(),
            series: 0,
            windows: 0,
            declared_series: 0,
            declared_windows: 0,
        }
    }
}

impl<V: Parts> Capped<V> {
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|e| &e.v)
    }

    /// Where the entry of `key` is.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.entries.get_index_of(key)
    }

    /// Entry `i` and its key.
    pub fn at(&self, i: usize) -> (&Name, &V) {
        let (k, e) = self.entries.get_index(i).expect("an index of this map");
        (k, &e.v)
    }

    /// Entry `i` and its key, to change in ways that neither add nor remove
    /// a part.
    pub fn at_mut(&mut self, i: usize) -> (&Name, &mut V) {
        let (k, e) = self.entries.get_index_mut(i).expect("an index of this map");
        e.v.changing();
        (k, &mut e.v)
    }

    /// Where `name` is, if `at` (a position it had before) still holds it:
    /// entries move when others are removed.
    #[inline]
    pub fn at_position(&self, at: Option<&usize>, name: &str) -> Option<usize> {
        let &i = at?;
        let (k, _) = self.entries.get_index(i)?;
        (k.as_str() == name).then_some(i)
    }

    /// Every entry, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &V)> {
        self.entries.iter().map(|(k, e)| (k, &e.v))
    }

    /// Whether any entry holds series, the overflow entry included.
    pub fn any_series(&self) -> bool {
        self.series > 0
    }

    /// Places taken under the series cap: entries holding series, the
    /// overflow entry and declared entries left out.
    pub fn series_places(&self) -> usize {
        let overflow = self
            .entries
            .get(OVERFLOW_LABEL)
            .is_some_and(|e| e.v.has_series());
        self.series - self.declared_series - usize::from(overflow)
    }

    /// Places taken under the windows cap: entries holding windows, declared
    /// entries left out.
    pub fn windows_places(&self) -> usize {
        self.windows - self.declared_windows
    }

    /// Whether entry `i` is declared (takes no place under the caps).
    pub fn is_declared(&self, i: usize) -> bool {
        self.entries[i].declared
    }

    /// Declares entry `i`, or not: a declared entry takes no place under the
    /// caps. The overflow entry is never declared.
    pub fn declare(&mut self, i: usize, declared: bool) {
        let (k, e) = self.entries.get_index_mut(i).expect("an index of this map");
        let declared = declared && k.as_str() != OVERFLOW_LABEL;
        if e.declared == declared {
            return;
        }
        let (s, w) = (
            usize::from(e.v.has_series()),
            usize::from(e.v.has_windows()),
        );
        e.declared = declared;
        if declared {
            self.declared_series += s;
            self.declared_windows += w;
        } else {
            self.declared_series -= s;
            self.declared_windows -= w;
        }
    }

    /// Declares again every entry, as `declared` says of its name (after a
    /// reload). Entries no longer declared take a place again, even past a
    /// cap: the cap is checked when a place is given, and they have theirs.
    pub fn redeclare(&mut self, mut declared: impl FnMut(&str) -> bool) {
        for i in 0..self.entries.len() {
            let d = declared(self.entries.get_index(i).expect("in range").0.as_str());
            self.declare(i, d);
        }
    }

    /// Where the entry of `key` is, created empty (holding no part yet) if
    /// there is none. Give it a part with [`Capped::update`] before anything
    /// else looks at the map: an entry holding no part is removed by the
    /// next [`Capped::retain`].
    pub fn entry(&mut self, key: &str) -> usize
    where
        V: Default,
    {
        match self.entries.get_index_of(key) {
            Some(i) => i,
            None => {
                let e = Entry {
                    v: V::default(),
                    declared: false,
                };
                self.entries.insert_full(Name::new(key), e).0
            }
        }
    }

    /// Changes entry `i` with `f`, which may add or remove parts; the counts
    /// follow. An entry left with no part stays until [`Capped::retain`].
    pub fn update<R>(&mut self, i: usize, f: impl FnOnce(&mut V) -> R) -> R {
        let e = &mut self.entries[i];
        let v = &mut e.v;
        v.changing();
        let before = (v.has_series(), v.has_windows());
        let r = f(v);
        let after = (v.has_series(), v.has_windows());
        if before != after {
            let ds = usize::from(after.0).wrapping_sub(usize::from(before.0));
            let dw = usize::from(after.1).wrapping_sub(usize::from(before.1));
            self.series = self.series.wrapping_add(ds);
            self.windows = self.windows.wrapping_add(dw);
            if e.declared {
                self.declared_series = self.declared_series.wrapping_add(ds);
                self.declared_windows = self.declared_windows.wrapping_add(dw);
            }
        }
        r
    }

    /// Calls `f` on every entry, which may remove parts, then removes the
    /// entries left with none. Keeps the order of the others.
    pub fn retain(&mut self, mut f: impl FnMut(&Name, &mut V)) {
        let (mut series, mut windows) = (0, 0);
        let (mut declared_series, mut declared_windows) = (0, 0);
        self.entries.retain(|k, e| {
            e.v.changing();
            f(k, &mut e.v);
            let (s, w) = (
                usize::from(e.v.has_series()),
                usize::from(e.v.has_windows()),
            );
            series += s;
            windows += w;
            if e.declared {
                declared_series += s;
                declared_windows += w;
            }
            s + w > 0
        });
        self.series = series;
        self.windows = windows;
        self.declared_series = declared_series;
        self.declared_windows = declared_windows;
    }
}

/// A handle, and when an event last used it (aggregator clock), so that
/// `--metrics.ttl` can forget it.
pub struct Stamped<S> {
    /// The handle.
    pub v: S,
    /// When it was last used.
    pub seen: f64,
}

/// The entry of a label value below a version: its series `S` and its
/// windows `W` (`()` for labels the rules do not read).
pub struct Slot<S, W = ()> {
    /// The series, stamped.
    pub series: Option<Stamped<S>>,
    /// The windows.
    pub windows: Option<W>,
}

impl<S, W> Default for Slot<S, W> {
    fn default() -> Self {
        Slot {
            series: None,
            windows: None,
        }
    }
}

impl<S, W> Parts for Slot<S, W> {
    fn has_series(&self) -> bool {
        self.series.is_some()
    }

    fn has_windows(&self) -> bool {
        self.windows.is_some()
    }
}

impl<S, W> Capped<Slot<S, W>> {
    /// Where the series of `key` are: its own entry's, created with `make`
    /// (given the label value) if there is room under `cap` or the name is
    /// `declared`; else the overflow entry's, and `dropped` is called. The
    /// series are stamped with `now`.
    pub fn series_index(
        &mut self,
        key: &str,
        (cap, declared): (usize, bool),
        now: f64,
        dropped: impl FnOnce(),
        make: impl FnOnce(&str) -> S,
    ) -> usize {
        if let Some(i) = self.entries.get_index_of(key)
            && let Some(s) = &mut self.entries[i].v.series
        {
            s.seen = now;
            return i;
        }
        let key = if declared || self.series_places() < cap {
            key
        } else {
            dropped();
            OVERFLOW_LABEL
        };
        let i = self.entry(key);
        if declared {
            self.declare(i, true);
        }
        let e = &mut self.entries[i];
        match &mut e.v.series {
            Some(s) => s.seen = now,
            None => {
                e.v.series = Some(Stamped {
                    v: make(key),
                    seen: now,
                });
                self.series += 1;
                self.declared_series += usize::from(e.declared);
            }
        }
        i
    }

    /// The series of `key`, as [`Capped::series_index`] finds them.
    pub fn series(
        &mut self,
        key: &str,
        cap: usize,
        now: f64,
        dropped: impl FnOnce(),
        make: impl FnOnce(&str) -> S,
    ) -> &mut S {
        let i = self.series_index(key, (cap, false), now, dropped, make);
        &mut self.entries[i].v.series.as_mut().expect("given above").v
    }

    /// Where the windows of `key` are, created with `make` if there is room
    /// under `cap` or the name is `declared`; `None` past it.
    pub fn windows_index(
        &mut self,
        key: &str,
        (cap, declared): (usize, bool),
        make: impl FnOnce() -> W,
    ) -> Option<usize> {
        let i = self.entries.get_index_of(key);
        if let Some(i) = i
            && self.entries[i].v.windows.is_some()
        {
            return Some(i);
        }
        if !declared && self.windows_places() >= cap {
            return None;
        }
        let i = match i {
            Some(i) => i,
            None => self.entry(key),
        };
        if declared {
            self.declare(i, true);
        }
        let e = &mut self.entries[i];
        e.v.windows = Some(make());
        self.windows += 1;
        self.declared_windows += usize::from(e.declared);
        Some(i)
    }

    /// The windows of `key`, as [`Capped::windows_index`] finds them.
    pub fn windows(
        &mut self,
        key: &str,
        cap: (usize, bool),
        make: impl FnOnce() -> W,
    ) -> Option<&mut W> {
        let i = self.windows_index(key, cap, make)?;
        self.entries[i].v.windows.as_mut()
    }

    /// Drops every entry's windows (entries left with nothing go).
    pub fn drop_windows(&mut self) {
        if self.windows > 0 {
            self.retain(|_, s| s.windows = None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Map = Capped<Slot<u32, u32>>;

    #[test]
    fn series_fold_past_the_cap_and_windows_stop() {
        let mut m = Map::default();
        let mut dropped = 0;
        for (t, key) in ["a", "b", "c", "a", "d"].into_iter().enumerate() {
            m.series(key, 2, t as f64, || dropped += 1, |_| 0);
            m.windows(key, (3, false), || 0);
        }
        assert_eq!(dropped, 2);
        assert_eq!(m.series_places(), 2);
        assert_eq!(m.windows_places(), 3);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "__other__", "c"]);
        assert!(m.get("c").unwrap().series.is_none());
        assert!(m.get("__other__").unwrap().windows.is_none());
        assert_eq!(
            m.get("__other__").unwrap().series.as_ref().unwrap().seen,
            4.0
        );
        // Series that go free their places; entries left with nothing go.
        m.retain(|k, s| {
            if k.as_str() != "b" {
                s.series = None;
            }
        });
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(m.series_places(), 1);
        m.series("d", 2, 9.0, || dropped += 1, |_| 0);
        assert_eq!((dropped, m.series_places()), (2, 2));
        m.drop_windows();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "d"]);
        assert_eq!(m.windows_places(), 0);
    }

    #[test]
    fn declared_names_pass_the_caps_and_take_no_place() {
        let mut m = Map::default();
        let mut dropped = 0;
        for key in ["j1", "j2", "j3"] {
            m.series_index(key, (2, false), 0.0, || dropped += 1, |_| 0);
            m.windows(key, (2, false), || 0);
        }
        assert_eq!((dropped, m.series_places(), m.windows_places()), (1, 2, 2));
        // The caps are full; a declared name still gets its own entry.
        let i = m.series_index("decl", (2, true), 1.0, || dropped += 1, |_| 0);
        assert_eq!(m.at(i).0.as_str(), "decl");
        assert!(m.windows("decl", (2, true), || 7).is_some());
        assert_eq!((dropped, m.series_places(), m.windows_places()), (1, 2, 2));
        assert!(m.is_declared(i));
        // No longer declared after a reload: it takes its places again.
        m.redeclare(|_| false);
        assert_eq!((m.series_places(), m.windows_places()), (3, 3));
        // Declared again, and counts follow removals.
        m.redeclare(|k| k == "decl" || k == "__other__");
        assert_eq!((m.series_places(), m.windows_places()), (2, 2));
        assert!(!m.is_declared(m.index_of("__other__").unwrap()));
        m.retain(|k, s| {
            if k.as_str() == "decl" {
                s.series = None;
            }
        });
        assert_eq!((m.series_places(), m.windows_places()), (2, 2));
        m.retain(|_, s| s.windows = None);
        assert_eq!((m.series_places(), m.windows_places()), (2, 0));
        assert!(m.get("decl").is_none());
    }
}
