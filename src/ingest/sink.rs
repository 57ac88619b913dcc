//! Where listeners send their batches ([`BatchSink`]): straight into the
//! one aggregator's channel, or through a [`Deliver`] that spreads each
//! batch over several (the aggregators' router, with `--aggregate.shards`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::batch::Batch;

/// The sending half of a channel of batches.
pub type BatchSender = mpsc::Sender<Batch>;

/// The receivers are gone: the exporter is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the aggregators' queues are closed")]
pub struct SinkClosed;

/// What [`Deliver::deliver`] returns: resolves once the batch is queued.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), SinkClosed>> + Send + 'a>>;

/// A receiver of batches other than a plain channel: takes a whole batch
/// and queues it, or its parts, wherever they belong.
pub trait Deliver: Send + Sync {
    /// Queues a batch, waiting while a queue is full.
    fn deliver(&self, batch: Batch) -> Delivery<'_>;

    /// [`Deliver::deliver`] from a thread outside the runtime.
    fn deliver_blocking(&self, batch: Batch) -> Result<(), SinkClosed>;
}

/// Where listeners send their batches.
#[derive(Clone)]
pub enum BatchSink {
    /// One receiver: batches go as they are, into its channel.
    Single(BatchSender),
    /// Several: the [`Deliver`] decides where each event goes.
    Spread(Arc<dyn Deliver>),
}

impl From<BatchSender> for BatchSink {
    fn from(tx: BatchSender) -> Self {
        BatchSink::Single(tx)
    }
}

impl BatchSink {
    /// Sends a batch, waiting while a queue is full.
    pub async fn send(&self, batch: Batch) -> Result<(), SinkClosed> {
        match self {
            BatchSink::Single(tx) => tx.send(batch).await.map_err(|_| SinkClosed),
            BatchSink::Spread(d) => d.deliver(batch).await,
        }
    }

    /// [`BatchSink::send`] from a thread outside the runtime.
    pub fn blocking_send(&self, batch: Batch) -> Result<(), SinkClosed> {
        match self {
            BatchSink::Single(tx) => tx.blocking_send(batch).map_err(|_| SinkClosed),
            BatchSink::Spread(d) => d.deliver_blocking(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps every batch delivered to it, split in halves.
    #[derive(Default)]
    struct Halves(Mutex<Vec<Batch>>);

    impl Deliver for Halves {
        fn deliver(&self, batch: Batch) -> Delivery<'_> {
            Box::pin(async move { self.deliver_blocking(batch) })
        }

        fn deliver_blocking(&self, mut batch: Batch) -> Result<(), SinkClosed> {
            let rest = batch.split_off(batch.len() / 2);
            let mut kept = self.0.lock().unwrap();
            kept.push(batch);
            kept.push(rest);
            Ok(())
        }
    }

    fn events(n: usize) -> Batch {
        (0..n)
            .map(|_| super::super::parse::parse_event(br#"{"model":"m"}"#).unwrap())
            .collect()
    }

    #[test]
    fn a_single_sink_passes_batches_whole_and_reports_a_closed_channel() {
        let (tx, mut rx) = mpsc::channel(2);
        let sink = BatchSink::from(tx);
        sink.blocking_send(events(3)).unwrap();
        assert_eq!(rx.try_recv().unwrap().len(), 3);
        drop(rx);
        assert_eq!(sink.blocking_send(events(1)), Err(SinkClosed));
    }

    #[test]
    fn a_spread_sink_hands_batches_to_its_deliver() {
        let halves = Arc::new(Halves::default());
        let sink = BatchSink::Spread(halves.clone());
        sink.blocking_send(events(4)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(sink.send(events(3))).unwrap();
        let sizes: Vec<usize> = halves.0.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1, 2]);
    }
}
