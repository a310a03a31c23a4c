//! A Baton session held open by a KeepAliveStream.
//!
//! Everything the process takes (locks, in-flight queue items, running tasks)
//! is owned by its session. While the stream is open the session cannot
//! expire, however long a job takes. If the process dies, the connection
//! breaks, the stream ends, and the server ends the session one TTL later,
//! releasing all it held: a crashed worker leaves nothing locked.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::pb::sessions_client::SessionsClient;
use crate::pb::{CloseSessionRequest, KeepAliveRequest, OpenSessionRequest, SessionState};
use crate::{millis, Result};

pub struct Session {
    pub id: u64,
    client: SessionsClient<Channel>,
    // Dropping the sender ends the request side of the KeepAliveStream.
    keepalive: mpsc::Sender<KeepAliveRequest>,
}

impl Session {
    /// Opens a session with `ttl_ms` of grace after its stream ends, and
    /// returns once the server has confirmed the KeepAliveStream holds it.
    pub async fn open(channel: Channel, label: &str, ttl_ms: u64) -> Result<Session> {
        let mut client = SessionsClient::new(channel);
        let opened = client
            .open(OpenSessionRequest {
                ttl: millis(ttl_ms),
                label: label.to_string(),
            })
            .await?
            .into_inner();
        let id = opened.session_id;

        let (keepalive, requests) = mpsc::channel(1);
        keepalive.send(KeepAliveRequest { session_id: id }).await?;
        let mut replies = client
            .keep_alive_stream(ReceiverStream::new(requests))
            .await?
            .into_inner();
        let first = replies
            .message()
            .await?
            .ok_or("KeepAliveStream closed at once")?;
        if first.state() != SessionState::Alive {
            return Err(format!("session {id} is {:?}", first.state()).into());
        }
        // Drain the replies for as long as the stream lasts.
        tokio::spawn(async move {
            loop {
                match replies.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(status) => {
                        eprintln!("session {id}: KeepAliveStream ended: {status}");
                        break;
                    }
                }
            }
        });
        Ok(Session {
            id,
            client,
            keepalive,
        })
    }

    /// Ends the session at once, releasing whatever it still holds.
    pub async fn close(mut self) -> Result<()> {
        self.client
            .close(CloseSessionRequest {
                session_id: self.id,
            })
            .await?;
        drop(self.keepalive);
        Ok(())
    }
}
