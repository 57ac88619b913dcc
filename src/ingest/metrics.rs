//! The listeners' self-metrics: connections and rejected events. They are
//! registered into the process's one registry, next to every other family.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::parse::RejectReason;

/// What the listeners count.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    /// `model_exporter_events_rejected_total{reason}`.
    pub events_rejected: IntCounterVec,
    /// `model_exporter_connections_open{transport}`.
    pub connections_open: IntGaugeVec,
    /// `model_exporter_connections_total{transport}`.
    pub connections: IntCounterVec,
    /// `model_exporter_connections_closed_total{transport,reason}`.
    pub connections_closed: IntCounterVec,
    /// `model_exporter_accept_errors_total{listener}`: failed `accept`
    /// calls (out of file descriptors and the like) of the stream, `http`
    /// and web listeners.
    pub accept_errors: IntCounterVec,
    /// `model_exporter_datagrams_dropped_total{transport}`: datagrams the
    /// kernel dropped because a datagram socket's receive buffer was full
    /// (`SO_MEMINFO`).
    pub datagrams_dropped: IntCounterVec,
    /// `model_exporter_http_auth_total{listener,result}`, shared by the
    /// web server and the `http://` listeners.
    pub auth: crate::webconfig::AuthMetrics,
    /// `model_exporter_events_unknown_fields_total{field}`.
    pub unknown_fields: std::sync::Arc<super::unknown::UnknownFields>,
    /// The registry they are in, where listeners that start later (the
    /// `http://` listener's own families) register theirs.
    pub registry: Registry,
}

impl IngestMetrics {
    /// Creates the families and registers them into `registry`; every
    /// reject reason is shown from the start, at zero.
    ///
    /// # Errors
    /// When `registry` already holds one of their names.
    pub fn new(registry: &Registry) -> prometheus::Result<IngestMetrics> {
        let m = IngestMetrics {
            events_rejected: IntCounterVec::new(
                Opts::new(
                    "model_exporter_events_rejected_total",
                    "Events dropped, by reason.",
                ),
                &["reason"],
            )?,
            connections_open: IntGaugeVec::new(
                Opts::new(
                    "model_exporter_connections_open",
                    "Stream connections open now, by transport.",
                ),
                &["transport"],
            )?,
            connections: IntCounterVec::new(
                Opts::new(
                    "model_exporter_connections_total",
                    "Stream connections accepted, by transport.",
                ),
                &["transport"],
            )?,
            connections_closed: IntCounterVec::new(
                Opts::new(
                    "model_exporter_connections_closed_total",
                    "Event listener connections closed, by transport and reason (evicted: an http:// connection idle longest, closed to make room at --events.max-connections).",
                ),
                &["transport", "reason"],
            )?,
            accept_errors: IntCounterVec::new(
                Opts::new(
                    "model_exporter_accept_errors_total",
                    "Failed accepts of new connections (such as running out of file descriptors), by listener: web, unix, tcp, http.",
                ),
                &["listener"],
            )?,
            datagrams_dropped: IntCounterVec::new(
                Opts::new(
                    "model_exporter_datagrams_dropped_total",
                    "Datagrams the kernel dropped because the socket's receive buffer was full (udp), by transport.",
                ),
                &["transport"],
            )?,
            auth: crate::webconfig::AuthMetrics::new(registry)?,
            unknown_fields: std::sync::Arc::new(super::unknown::UnknownFields::new(registry)?),
            registry: registry.clone(),
        };
        registry.register(Box::new(m.events_rejected.clone()))?;
        registry.register(Box::new(m.connections_open.clone()))?;
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.connections_closed.clone()))?;
        registry.register(Box::new(m.accept_errors.clone()))?;
        registry.register(Box::new(m.datagrams_dropped.clone()))?;
        m.datagrams_dropped.with_label_values(&["udp"]);
        for listener in ["web", "unix", "tcp", "http"] {
            m.accept_errors.with_label_values(&[listener]);
        }
        for reason in RejectReason::ALL {
            m.events_rejected.with_label_values(&[reason.as_str()]);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_every_family_once_with_each_reason_at_zero() {
        let r = Registry::new();
        let m = IngestMetrics::new(&r).unwrap();
        m.connections.with_label_values(&["unix"]).inc();
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_owned()).collect();
        assert_eq!(
            names,
            [
                "model_exporter_accept_errors_total",
                "model_exporter_connections_total",
                "model_exporter_datagrams_dropped_total",
                "model_exporter_events_rejected_total",
            ]
        );
        let rejected = r
            .gather()
            .into_iter()
            .find(|f| f.name() == "model_exporter_events_rejected_total")
            .unwrap();
        assert_eq!(rejected.get_metric().len(), RejectReason::ALL.len());
        assert!(IngestMetrics::new(&r).is_err(), "a second set is refused");
    }
}
