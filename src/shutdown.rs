//! Shutdown signalling shared by every task.

use tokio::sync::watch;

/// Triggers shutdown; dropping it also counts as a trigger.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Observes shutdown; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and observer.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Tells every observer to shut down.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// A new observer of this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is triggered (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: shut down as well.
        let _ = self.0.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn observers_see_the_trigger() {
        let (t, mut s) = channel();
        let mut s2 = t.subscribe();
        assert!(!s.is_triggered());
        t.trigger();
        s.wait().await;
        s2.wait().await;
        assert!(s.is_triggered());
    }

    #[tokio::test]
    async fn dropping_the_trigger_shuts_down() {
        let (t, mut s) = channel();
        drop(t);
        s.wait().await;
    }
}
