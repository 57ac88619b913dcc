//! Requests waiting for their responses, and responses for their requests:
//! a table keyed by namespace, events' name and pairing id, bounded by a
//! time to live and an estimate of its memory, whose overflow is counted.
//!
//! The table only pairs; what a pair, or a half left alone, becomes is
//! decided by [`emit`](super::emit).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::envelope::Envelope;
use super::payload::{Inputs, Outputs};
use crate::ingest::event::FeatureValue;

/// A request's or a response's payload, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A request's rows of features.
    Request(Inputs),
    /// A response's rows of predictions.
    Response(Outputs),
}

/// One half of an inference, as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfEvent {
    /// Its attributes.
    pub envelope: Envelope,
    /// When it arrived at the listener.
    pub arrived: Instant,
    /// Its payload.
    pub body: Body,
}

impl HalfEvent {
    /// Approximate heap bytes it holds while waiting.
    fn cost(&self) -> usize {
        let e = &self.envelope;
        let strings = e.id.len()
            + e.service.len()
            + e.component.len()
            + e.namespace.len()
            + e.endpoint.len()
            + e.request_id.as_ref().map_or(0, String::len);
        let body = match &self.body {
            Body::Request(i) => i
                .rows
                .iter()
                .map(|r| {
                    24 + r
                        .iter()
                        .map(|(_, v)| match v {
                            FeatureValue::Category(c) => 64 + c.len(),
                            _ => 64,
                        })
                        .sum::<usize>()
                })
                .sum(),
            Body::Response(o) => o.rows.len() * 48 + o.version.as_ref().map_or(0, String::len),
        };
        256 + strings + body
    }
}

/// Why a half is taken without its other half (the `reason` label of
/// `model_exporter_cloudevents_unpaired_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpaired {
    /// It waited `--events.http.pending-ttl`.
    Expired,
    /// The table was full; it was the oldest.
    Evicted,
    /// Another half of the same kind came with the same id.
    Duplicate,
    /// The listener stopped.
    Shutdown,
}

impl Unpaired {
    /// Every reason, in label order.
    pub const ALL: [Unpaired; 4] = [
        Unpaired::Expired,
        Unpaired::Evicted,
        Unpaired::Duplicate,
        Unpaired::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Unpaired::Expired => "expired",
            Unpaired::Evicted => "evicted",
            Unpaired::Duplicate => "duplicate",
            Unpaired::Shutdown => "shutdown",
        }
    }
}

/// What the table gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// A request and its response.
    Pair {
        /// The request (boxed: a pair is twice the size of a half).
        request: Box<HalfEvent>,
        /// The response.
        response: HalfEvent,
    },
    /// A half taken alone.
    Alone {
        /// The half.
        half: HalfEvent,
        /// Why.
        reason: Unpaired,
        /// A request that expired although its events' name has delivered
        /// responses before: taken as a request that failed.
        failed: bool,
    },
}

/// Events' names remembered as having delivered a response, at most.
const ANSWERED_NAMES: usize = 10_000;

/// The halves waiting.
#[derive(Debug)]
pub struct Pairing {
    waiting: HashMap<String, (HalfEvent, u64, usize)>,
    /// Keys in order of arrival, with their sequence number (a key replaced
    /// since has another).
    order: VecDeque<(String, u64)>,
    next: u64,
    bytes: usize,
    max_bytes: usize,
    ttl: Duration,
    answered: HashSet<String>,
}

fn key(e: &Envelope) -> String {
    let mut k = String::with_capacity(
        e.namespace.len() + e.service.len() + e.component.len() + e.pairing_id().len() + 3,
    );
    for part in [&e.namespace, &e.service, &e.component] {
        k.push_str(part);
        k.push('\0');
    }
    k.push_str(e.pairing_id());
    k
}

impl Pairing {
    /// A table whose halves wait at most `ttl`, holding about `max_bytes`.
    pub fn new(ttl: Duration, max_bytes: usize) -> Pairing {
        Pairing {
            waiting: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            bytes: 0,
            max_bytes,
            ttl,
            answered: HashSet::new(),
        }
    }

    /// Halves waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when no half waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Estimated bytes the waiting halves hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes a half: pairs it with its other half if that waits, else
    /// keeps it waiting (evicting the oldest halves past the memory bound).
    pub fn offer(&mut self, half: HalfEvent, out: &mut Vec<Done>) {
        if let Body::Response(_) = half.body
            && self.answered.len() < ANSWERED_NAMES
        {
            self.answered.insert(half.envelope.name());
        }
        let k = key(&half.envelope);
        if let Some((other, _, cost)) = self.waiting.remove(&k) {
            self.bytes -= cost;
            match (&other.body, &half.body) {
                (Body::Request(_), Body::Response(_)) => {
                    out.push(Done::Pair {
                        request: Box::new(other),
                        response: half,
                    });
                    return;
                }
                (Body::Response(_), Body::Request(_)) => {
                    out.push(Done::Pair {
                        request: Box::new(half),
                        response: other,
                    });
                    return;
                }
                _ => out.push(Done::Alone {
                    half: other,
                    reason: Unpaired::Duplicate,
                    failed: false,
                }),
            }
        }
        let cost = half.cost();
        let seq = self.next;
        self.next += 1;
        self.bytes += cost;
        self.order.push_back((k.clone(), seq));
        self.waiting.insert(k, (half, seq, cost));
        while self.bytes > self.max_bytes && self.waiting.len() > 1 {
            if !self.pop_oldest(Unpaired::Evicted, out) {
                break;
            }
        }
    }

    /// Takes alone every half that waited its time to live by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Done>) {
        while let Some((k, seq)) = self.order.front() {
            match self.waiting.get(k) {
                Some((h, s, _)) if s == seq => {
                    if now.saturating_duration_since(h.arrived) < self.ttl {
                        return;
                    }
                    self.pop_oldest(Unpaired::Expired, out);
                }
                // Paired or replaced since: forget the stale entry.
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Takes every waiting half alone (the listener stops).
    pub fn drain(&mut self, out: &mut Vec<Done>) {
        while !self.waiting.is_empty() {
            if !self.pop_oldest(Unpaired::Shutdown, out) {
                break;
            }
        }
        self.order.clear();
    }

    /// Takes the oldest waiting half alone; false when none waits.
    fn pop_oldest(&mut self, reason: Unpaired, out: &mut Vec<Done>) -> bool {
        while let Some((k, seq)) = self.order.pop_front() {
            if !matches!(self.waiting.get(&k), Some((_, s, _)) if *s == seq) {
                continue;
            }
            let (half, _, cost) = self.waiting.remove(&k).expect("present");
            self.bytes -= cost;
            let failed = reason == Unpaired::Expired
                && matches!(half.body, Body::Request(_))
                && self.answered.contains(&half.envelope.name());
            out.push(Done::Alone {
                half,
                reason,
                failed,
            });
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::cloudevents::envelope::Half;
    use crate::ingest::cloudevents::payload::Protocol;

    fn half(kind: Half, id: &str, at: Instant) -> HalfEvent {
        HalfEvent {
            envelope: Envelope {
                half: kind,
                id: id.into(),
                time: None,
                service: "fraud".into(),
                component: "predictor".into(),
                namespace: "ns".into(),
                endpoint: String::new(),
                request_id: None,
            },
            arrived: at,
            body: match kind {
                Half::Response => Body::Response(Outputs {
                    rows: Vec::new(),
                    error: false,
                    version: None,
                    protocol: Protocol::V1,
                }),
                _ => Body::Request(Inputs {
                    rows: vec![Vec::new()],
                    protocol: Protocol::V1,
                }),
            },
        }
    }

    fn kinds(out: &[Done]) -> Vec<String> {
        out.iter()
            .map(|d| match d {
                Done::Pair { request, .. } => format!("pair {}", request.envelope.id),
                Done::Alone {
                    half,
                    reason,
                    failed,
                } => format!(
                    "{} {} {}{}",
                    half.envelope.half.as_str(),
                    half.envelope.id,
                    reason.as_str(),
                    if *failed { " failed" } else { "" }
                ),
            })
            .collect()
    }

    #[test]
    fn pairs_in_either_order() {
        let t0 = Instant::now();
        let mut p = Pairing::new(Duration::from_secs(60), 1 << 20);
        let mut out = Vec::new();
        p.offer(half(Half::Request, "a", t0), &mut out);
        p.offer(half(Half::Response, "b", t0), &mut out);
        assert_eq!(p.len(), 2);
        assert!(p.bytes() > 0);
        p.offer(half(Half::Response, "a", t0), &mut out);
        p.offer(half(Half::Request, "b", t0), &mut out);
        assert_eq!(kinds(&out), ["pair a", "pair b"]);
        assert!(p.is_empty());
        assert_eq!(p.bytes(), 0);
        // Stale order entries are skipped.
        p.expire(t0 + Duration::from_secs(3600), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn expiry_and_failed_requests() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut p = Pairing::new(ttl, 1 << 20);
        let mut out = Vec::new();
        // Before any response of this name, a lone request is not a failure.
        p.offer(half(Half::Request, "a", t0), &mut out);
        p.expire(t0 + ttl - Duration::from_millis(1), &mut out);
        assert!(out.is_empty());
        p.expire(t0 + ttl, &mut out);
        assert_eq!(kinds(&out), ["request a expired"]);
        out.clear();
        // Once the name answered, it is.
        p.offer(half(Half::Response, "b", t0), &mut out);
        p.offer(half(Half::Request, "c", t0), &mut out);
        p.expire(t0 + ttl, &mut out);
        assert_eq!(
            kinds(&out),
            ["response b expired", "request c expired failed"]
        );
        out.clear();
        // Shutdown takes everything, never as a failure.
        p.offer(half(Half::Request, "d", t0), &mut out);
        p.drain(&mut out);
        assert_eq!(kinds(&out), ["request d shutdown"]);
        assert!(p.is_empty());
    }

    #[test]
    fn duplicates_and_eviction() {
        let t0 = Instant::now();
        let one = half(Half::Request, "x", t0).cost();
        let mut p = Pairing::new(Duration::from_secs(60), 2 * one);
        let mut out = Vec::new();
        p.offer(half(Half::Request, "a", t0), &mut out);
        p.offer(half(Half::Request, "a", t0), &mut out);
        assert_eq!(kinds(&out), ["request a duplicate"]);
        p.offer(half(Half::Request, "b", t0), &mut out);
        p.offer(half(Half::Request, "c", t0), &mut out);
        assert_eq!(kinds(&out), ["request a duplicate", "request a evicted"]);
        assert_eq!(p.len(), 2);
        assert!(p.bytes() <= 2 * one);
        // The replaced entry's stale place in the order is skipped.
        p.drain(&mut out);
        assert_eq!(
            kinds(&out)[2..],
            ["request b shutdown", "request c shutdown"]
        );
    }
}
