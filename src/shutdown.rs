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
    use std::time::Duration;

    /// Bounds a wait that should complete, so that a broken signal fails the
    /// test instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Whether `wait` completes when polled once, without waiting.
    async fn completes_at_once(s: &mut Shutdown) -> bool {
        tokio::select! {
            biased;
            _ = s.wait() => true,
            _ = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn observers_see_the_trigger() {
        let (t, mut s) = channel();
        let mut s2 = t.subscribe();
        assert!(!s.is_triggered());
        assert!(!completes_at_once(&mut s).await, "waited before a trigger");
        t.trigger();
        for s in [&mut s, &mut s2] {
            assert!(tokio::time::timeout(PATIENCE, s.wait()).await.is_ok());
            assert!(s.is_triggered());
            // Once triggered, every later wait completes at once.
            assert!(completes_at_once(s).await);
        }
        // A clone taken after the trigger sees it too.
        assert!(s.clone().is_triggered());
    }

    #[tokio::test]
    async fn dropping_the_trigger_shuts_down() {
        let (t, mut s) = channel();
        let mut s2 = s.clone();
        assert!(!completes_at_once(&mut s).await, "waited before the drop");
        drop(t);
        assert!(
            tokio::time::timeout(PATIENCE, s.wait()).await.is_ok(),
            "a dropped trigger did not end the wait"
        );
        assert!(completes_at_once(&mut s2).await);
    }
}
