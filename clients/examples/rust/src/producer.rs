//! `producer`: feeds the inventory workers and checks their work.
//!
//! Puts the stock updates into a queue, submits the quotes as tasks, sets the
//! catalog-ready event that the waiting workers block on, then waits for the
//! queue to be fully acknowledged (Queues/Join) and for every quote
//! (Tasks/Wait), checks each result, sets the shutdown event and awaits each
//! named worker's report future. Exits non-zero when anything is off.

use crate::inventory::{Quote, Update, CATALOG_READY, QUOTES_TASKS, SHUTDOWN, UPDATES_QUEUE};
use crate::pb::admin_client::AdminClient;
use crate::pb::events_client::EventsClient;
use crate::pb::futures_client::FuturesClient;
use crate::pb::queues_client::QueuesClient;
use crate::pb::tasks_client::TasksClient;
use crate::pb::{
    AwaitFutureRequest, CancelTaskRequest, ClearEventRequest, DescribeRequest, FutureState,
    JoinRequest, PutRequest, QueueItem, QueueOptions, QueueOrder, SetEventRequest,
    SubmitTaskRequest, TaskState, WaitMode, WaitTasksRequest,
};
use crate::session::Session;
use crate::{connect, inventory, millis, Args, Result};

pub async fn run(args: &Args) -> Result<()> {
    let updates = args.number("updates", 40)?;
    let quotes = args.number("quotes", 6)?;
    let workers: Vec<String> = args
        .text("workers", "")
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let channel = connect(args).await?;
    let session = Session::open(channel.clone(), "inventory-producer", 10_000).await?;
    let mut queues = QueuesClient::new(channel.clone());
    let mut tasks = TasksClient::new(channel.clone());
    let mut events = EventsClient::new(channel.clone());

    // 1. The stock updates, in one all-or-nothing Put that also declares the queue.
    let put = queues
        .put(PutRequest {
            name: UPDATES_QUEUE.into(),
            items: (0..updates)
                .map(|i| QueueItem {
                    text: Update::generate(i).to_text(),
                    ..Default::default()
                })
                .collect(),
            options: Some(QueueOptions {
                order: QueueOrder::Fifo.into(),
                maxsize: 1000,
                max_deliveries: 5,
                max_item_bytes: 0,
            }),
            timeout: millis(10_000),
        })
        .await?
        .into_inner();
    let described = AdminClient::new(channel.clone())
        .describe(DescribeRequest {
            name: UPDATES_QUEUE.into(),
        })
        .await?
        .into_inner();
    let queued = described.queue.map_or(0, |q| q.size);
    println!(
        "producer: put {} updates, {UPDATES_QUEUE} holds {queued}",
        put.item_ids.len()
    );
    if queued != updates {
        return Err(format!("Admin/Describe says {queued} queued, expected {updates}").into());
    }

    // 2. The quotes, as tasks any worker may take; up to 3 attempts each.
    let mut task_ids = Vec::new();
    for i in 0..quotes {
        let submitted = tasks
            .submit(SubmitTaskRequest {
                queue: QUOTES_TASKS.into(),
                text: Quote::generate(i).to_text(),
                max_attempts: 3,
                ..Default::default()
            })
            .await?
            .into_inner();
        task_ids.push(submitted.task_id);
    }
    // A quote nobody wants any more: submitted for later, then cancelled while pending.
    let stale = tasks
        .submit(SubmitTaskRequest {
            queue: QUOTES_TASKS.into(),
            text: Quote {
                sku: "sku-4".into(),
                quantity: 1000,
                flaky: false,
            }
            .to_text(),
            delay: millis(60_000),
            ..Default::default()
        })
        .await?
        .into_inner()
        .task_id;
    let cancelled = tasks
        .cancel(CancelTaskRequest {
            task_id: stale.clone(),
        })
        .await?
        .into_inner();
    if !cancelled.cancelled || cancelled.state() != TaskState::Cancelled {
        return Err(format!("cancelling {stale}: {cancelled:?}").into());
    }
    println!(
        "producer: submitted {} quotes; cancelled {stale} while pending",
        task_ids.len()
    );

    // 3. Let the workers go.
    let set = events
        .set(SetEventRequest {
            name: CATALOG_READY.into(),
        })
        .await?
        .into_inner();
    println!(
        "producer: set {CATALOG_READY}, woke {} waiting workers",
        set.woken
    );

    // 4. Wait for all the work: every update acknowledged, every quote done.
    queues
        .join(JoinRequest {
            name: UPDATES_QUEUE.into(),
            timeout: millis(90_000),
        })
        .await?;
    println!("producer: every update acknowledged (Queues/Join returned)");
    let waited = tasks
        .wait(WaitTasksRequest {
            task_ids: task_ids.clone(),
            mode: WaitMode::AllCompleted.into(),
            timeout: millis(90_000),
            ..Default::default()
        })
        .await?
        .into_inner();
    if !waited.pending.is_empty() {
        return Err(format!("quotes still pending: {:?}", waited.pending).into());
    }
    let mut problems = Vec::new();
    for (i, id) in task_ids.iter().enumerate() {
        let quote = Quote::generate(i as u64);
        let Some(outcome) = waited.done.iter().find(|o| &o.task_id == id) else {
            problems.push(format!("{id}: no outcome"));
            continue;
        };
        println!(
            "producer: {id} {:?} after {} attempt(s): {:?}",
            outcome.state(),
            outcome.attempts,
            outcome.text
        );
        if outcome.state() != TaskState::Succeeded || outcome.text != quote.price() {
            problems.push(format!(
                "{id}: {:?} {:?}, expected {:?}",
                outcome.state(),
                outcome.text,
                quote.price()
            ));
        }
        if quote.flaky && outcome.attempts < 2 {
            problems.push(format!(
                "{id}: the flaky quote succeeded in {} attempt(s)",
                outcome.attempts
            ));
        }
    }

    // 5. Tell the workers to finish, and collect their reports.
    events
        .set(SetEventRequest {
            name: SHUTDOWN.into(),
        })
        .await?;
    let mut futures = FuturesClient::new(channel.clone());
    for worker in &workers {
        let report = futures
            .r#await(AwaitFutureRequest {
                name: inventory::summary_future(worker),
                timeout: millis(30_000),
                session_id: session.id,
            })
            .await?
            .into_inner();
        if report.state() != FutureState::Result {
            problems.push(format!("worker {worker} reported {:?}", report.state()));
        }
        println!("producer: worker {worker} reported {}", report.text);
    }
    // Back to their default state, so that the server reclaims them.
    for event in [CATALOG_READY, SHUTDOWN] {
        events
            .clear(ClearEventRequest { name: event.into() })
            .await?;
    }
    session.close().await?;

    if !problems.is_empty() {
        return Err(format!("producer FAILED:\n  {}", problems.join("\n  ")).into());
    }
    println!("producer: all {updates} updates applied and all {quotes} quotes priced");
    Ok(())
}
