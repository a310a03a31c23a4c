//! Small tools around one resource, for scripts and for people: hold a lock
//! until an event, try a lock under a gRPC deadline, describe or list
//! resources (Admin).

use std::time::{Duration, Instant};

use tonic::Code;

use crate::pb::admin_client::AdminClient;
use crate::pb::events_client::EventsClient;
use crate::pb::locks_client::LocksClient;
use crate::pb::{
    AcquireLockRequest, DescribeRequest, ListRequest, ReleaseLockRequest, WaitEventRequest,
};
use crate::session::Session;
use crate::{connect, millis, Args, Result};

/// `hold-lock`: takes a lock for a session and holds it until an event is set.
pub async fn hold_lock(args: &Args) -> Result<()> {
    let (lock, until) = (args.required("name")?, args.required("until")?);
    let channel = connect(args).await?;
    let session = Session::open(channel.clone(), "inventory-hold-lock", 5_000).await?;
    let mut locks = LocksClient::new(channel.clone());
    let grant = locks
        .acquire(AcquireLockRequest {
            name: lock.clone(),
            session_id: session.id,
            timeout: millis(30_000),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "holding {lock} token={} ({:?})",
        grant.token,
        grant.outcome()
    );
    EventsClient::new(channel)
        .wait(WaitEventRequest {
            name: until.clone(),
            timeout: millis(120_000),
            session_id: session.id,
        })
        .await?;
    let released = locks
        .release(ReleaseLockRequest {
            name: lock.clone(),
            token: grant.token,
            session_id: session.id,
        })
        .await?
        .into_inner();
    println!(
        "released {lock} token={} on {until} handed_off={}",
        grant.token, released.handed_off
    );
    session.close().await
}

/// `try-lock`: waits for a lock at most --deadline-ms, enforced as a gRPC
/// deadline on the call (not the request's `timeout` field): when it passes,
/// the wait is cancelled on the server, and a grant racing with it is rolled
/// back. A lock it gets is a 10 s lease, released at once.
pub async fn try_lock(args: &Args) -> Result<()> {
    let lock = args.required("name")?;
    let deadline = Duration::from_millis(args.number("deadline-ms", 1000)?);
    let mut locks = LocksClient::new(connect(args).await?);
    let mut request = tonic::Request::new(AcquireLockRequest {
        name: lock.clone(),
        ttl: millis(10_000),
        ..Default::default()
    });
    request.set_timeout(deadline);
    let started = Instant::now();
    match locks.acquire(request).await {
        Ok(reply) => {
            let token = reply.into_inner().token;
            println!("granted {lock} token={token}");
            locks
                .release(ReleaseLockRequest {
                    name: lock,
                    token,
                    session_id: 0,
                })
                .await?;
            Ok(())
        }
        Err(status) if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) => {
            println!(
                "not granted {lock}: {:?} after {} ms",
                status.code(),
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Err(status) => Err(status.into()),
    }
}

/// `describe`: one line about a resource, from Admin/Describe.
pub async fn describe(args: &Args) -> Result<()> {
    let name = args.required("name")?;
    let mut admin = AdminClient::new(connect(args).await?);
    match admin.describe(DescribeRequest { name: name.clone() }).await {
        Ok(reply) => {
            let d = reply.into_inner();
            let tokens: Vec<u64> = d.holders.iter().map(|h| h.token).collect();
            println!(
                "{name} kind={:?} holders={} holder_tokens={tokens:?} waiters={} last_token={}",
                d.kind(),
                d.holders.len(),
                d.waiters,
                d.last_token
            );
            Ok(())
        }
        Err(status) if status.code() == Code::NotFound => {
            println!("{name} not found");
            Ok(())
        }
        Err(status) => Err(status.into()),
    }
}

/// `list`: the live resources under a prefix, from Admin/List, page by page.
pub async fn list(args: &Args) -> Result<()> {
    let prefix = args.text("prefix", "inventory/");
    let mut admin = AdminClient::new(connect(args).await?);
    let mut page_token = String::new();
    loop {
        let page = admin
            .list(ListRequest {
                prefix: prefix.clone(),
                page_size: 100,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        for r in &page.resources {
            println!(
                "{} {:?} holders={} waiters={}",
                r.name,
                r.kind(),
                r.holders,
                r.waiters
            );
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}
