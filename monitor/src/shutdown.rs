//! Graceful shutdown, in the style of mini-redis: one [`Trigger`] (fired by SIGTERM/SIGINT),
//! and a [`Shutdown`] handle per task that wants to stop with the daemon. A task checks
//! [`Shutdown::is_shutdown`] between units of work and `select!`s on [`Shutdown::recv`] while
//! it waits, so no task is left sleeping after the signal.

use tokio::sync::watch;

/// Fires the shutdown (once; later calls do nothing).
pub struct Trigger(watch::Sender<bool>);

/// A task's view of the shutdown.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and its first handle (clone the handle for more tasks).
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// True once the shutdown was fired.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the shutdown is fired (at once if it already was). Also resolves when the
    /// trigger is gone: nothing can wake the task any more.
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_handle_sees_the_shutdown_even_after_it_fired() {
        let (trigger, mut a) = channel();
        let mut b = a.clone();
        assert!(!a.is_shutdown());
        let waiting = tokio::spawn(async move {
            a.recv().await;
            a.is_shutdown()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        trigger.fire();
        assert!(waiting.await.unwrap());
        // A handle that starts waiting after the fire returns at once.
        tokio::time::timeout(Duration::from_secs(1), b.recv())
            .await
            .expect("recv after fire returns at once");
        assert!(b.is_shutdown());
    }
}
