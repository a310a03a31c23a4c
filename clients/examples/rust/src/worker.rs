//! `worker`: one process of the inventory service.
//!
//! Opens a session kept alive by a KeepAliveStream, waits for the
//! catalog-ready event, then does two jobs at once until the shutdown event:
//!   - consumes stock updates from a queue (Queues/Consume), applies each to
//!     the store under the store lock, passing the lock's fencing token to the
//!     store, and acknowledges it;
//!   - takes quote tasks (Tasks/Take), heartbeats and completes them.
//!
//! Finally it reports its counts in a future and closes its session.
//!
//! With --crash-after-items N it exits abruptly on receiving its (N+1)-th
//! update, without acknowledging it, as a killed process would: the session's
//! TTL later returns its in-flight items to the queue for another worker.

use std::path::PathBuf;

use tokio::sync::watch;
use tonic::transport::Channel;

use crate::inventory::{
    Quote, Update, CATALOG_READY, QUOTES_TASKS, SHUTDOWN, STORE_LOCK, UPDATES_QUEUE,
};
use crate::pb::events_client::EventsClient;
use crate::pb::futures_client::FuturesClient;
use crate::pb::locks_client::LocksClient;
use crate::pb::queues_client::QueuesClient;
use crate::pb::tasks_client::TasksClient;
use crate::pb::{
    AckRequest, AcquireLockRequest, CompleteTaskRequest, ConsumeRequest, EventState, NackRequest,
    ReleaseLockRequest, SetResultRequest, TakeTaskRequest, TaskError, TaskHeartbeatRequest,
    TaskState, WaitEventRequest, WatchEventRequest,
};
use crate::session::Session;
use crate::store::Store;
use crate::{connect, inventory, millis, Args, Result};

pub async fn run(args: &Args) -> Result<()> {
    let name = args.required("name")?;
    let store = Store::open(&PathBuf::from(args.required("store")?))?;
    let crash_after = args
        .get("crash-after-items")
        .map(str::parse::<u64>)
        .transpose()?;
    let channel = connect(args).await?;
    let session_ttl = args.number("session-ttl-ms", 2000)?;
    let session = Session::open(
        channel.clone(),
        &format!("inventory-worker-{name}"),
        session_ttl,
    )
    .await?;
    let session_id = session.id;
    println!("worker {name}: session {session_id}; waiting for {CATALOG_READY}");

    let mut events = EventsClient::new(channel.clone());
    events
        .wait(WaitEventRequest {
            name: CATALOG_READY.into(),
            timeout: millis(120_000),
            session_id,
        })
        .await?;
    println!("worker {name}: {CATALOG_READY} is set, starting");

    // The shutdown event is watched as a stream; `stop` turns true once it is set.
    let (set_stop, stop) = watch::channel(false);
    let mut changes = events
        .watch(WatchEventRequest {
            name: SHUTDOWN.into(),
        })
        .await?
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(change)) = changes.message().await {
            if change.state() == EventState::Set {
                let _ = set_stop.send(true);
                return;
            }
        }
    });

    let worker = Worker {
        name: name.clone(),
        channel: channel.clone(),
        session_id,
    };
    let (applied, priced) = tokio::try_join!(
        worker.apply_updates(&store, crash_after, stop.clone()),
        worker.price_quotes(stop),
    )?;

    let report = format!("applied={applied} priced={priced}");
    FuturesClient::new(channel)
        .set_result(SetResultRequest {
            name: inventory::summary_future(&name),
            text: report.clone(),
            retention: millis(600_000),
            ..Default::default()
        })
        .await?;
    session.close().await?;
    println!("worker {name}: done, {report}");
    Ok(())
}

struct Worker {
    name: String,
    channel: Channel,
    session_id: u64,
}

impl Worker {
    /// Consumes stock updates until `stop`; returns how many it applied.
    async fn apply_updates(
        &self,
        store: &Store,
        crash_after: Option<u64>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<u64> {
        let (name, session_id) = (&self.name, self.session_id);
        let mut queues = QueuesClient::new(self.channel.clone());
        let mut locks = LocksClient::new(self.channel.clone());
        // The items the stream pushes are in flight, owned by this session,
        // until acknowledged; at most `prefetch` unacknowledged at a time.
        let mut deliveries = queues
            .consume(ConsumeRequest {
                name: UPDATES_QUEUE.into(),
                session_id,
                prefetch: 4,
                ..Default::default()
            })
            .await?
            .into_inner();
        let (mut received, mut applied) = (0u64, 0u64);
        loop {
            let batch = tokio::select! {
                batch = deliveries.message() => batch?,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let Some(batch) = batch else { break };
            for item in batch.items {
                received += 1;
                if crash_after.is_some_and(|n| received > n) {
                    println!(
                        "worker {name}: crashing with {:?} in flight (simulated kill)",
                        item.text
                    );
                    std::process::exit(3);
                }
                let update = Update::parse(&item.text)?;
                // The request_id makes a retried Acquire return the same grant.
                let grant = locks
                    .acquire(AcquireLockRequest {
                        name: STORE_LOCK.into(),
                        session_id,
                        timeout: millis(30_000),
                        request_id: format!("{name}/receipt-{}", item.receipt),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                let outcome = store
                    .apply(grant.token, name, &update, item.delivery_count)
                    .await;
                let released = locks
                    .release(ReleaseLockRequest {
                        name: STORE_LOCK.into(),
                        token: grant.token,
                        session_id,
                    })
                    .await;
                match outcome {
                    Ok(()) => {
                        released?;
                        queues
                            .ack(AckRequest {
                                name: UPDATES_QUEUE.into(),
                                receipts: vec![item.receipt],
                            })
                            .await?;
                        applied += 1;
                    }
                    Err(refused) => {
                        // Lost the lock (a stale token): give the item back for another try.
                        eprintln!("worker {name}: store refused {:?}: {refused}", item.text);
                        queues
                            .nack(NackRequest {
                                name: UPDATES_QUEUE.into(),
                                receipts: vec![item.receipt],
                                delay: None,
                            })
                            .await?;
                    }
                }
            }
        }
        Ok(applied)
    }

    /// Takes and completes quote tasks until `stop`; returns how many it priced.
    async fn price_quotes(&self, mut stop: watch::Receiver<bool>) -> Result<u64> {
        let name = &self.name;
        let mut tasks = TasksClient::new(self.channel.clone());
        let mut priced = 0;
        loop {
            let take = TakeTaskRequest {
                queue: QUOTES_TASKS.into(),
                session_id: self.session_id,
                ttl: millis(10_000),
                timeout: None,
                // Fields added to the protos later keep their defaults.
                ..Default::default()
            };
            let task = tokio::select! {
                task = tasks.take(take) => task?.into_inner(),
                // Dropping the pending Take cancels it on the server; a task
                // granted at that moment goes back to pending, not lost.
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let (task_id, attempt) = (task.task_id.clone(), task.attempt);
            let beat = tasks
                .heartbeat(TaskHeartbeatRequest {
                    task_id: task_id.clone(),
                    attempt,
                })
                .await?
                .into_inner();
            let quote = Quote::parse(&task.text)?;
            let complete = if beat.cancelled {
                CompleteTaskRequest {
                    task_id: task_id.clone(),
                    attempt,
                    ..Default::default()
                }
            } else if quote.flaky && attempt == 1 {
                CompleteTaskRequest {
                    task_id: task_id.clone(),
                    attempt,
                    error: Some(TaskError {
                        code: 503,
                        message: "supplier price feed timed out".into(),
                    }),
                    r#final: false,
                    ..Default::default()
                }
            } else {
                CompleteTaskRequest {
                    task_id: task_id.clone(),
                    attempt,
                    text: quote.price(),
                    ..Default::default()
                }
            };
            let done = tasks.complete(complete).await?.into_inner();
            println!(
                "worker {name}: {task_id} attempt {attempt} {:?} -> {:?}",
                task.text,
                done.state()
            );
            if done.state() == TaskState::Succeeded {
                priced += 1;
            }
        }
        Ok(priced)
    }
}
