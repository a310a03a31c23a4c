//! baton-rust-example: a small inventory service whose processes coordinate
//! through Baton, written with nothing but the gRPC stubs that build.rs
//! generates from proto/baton/v1. There is no Baton client library here: the
//! point is that any language with gRPC can use Baton from the protos alone.
//!
//! Roles (subcommands), meant to run as separate processes:
//!   worker    applies stock updates from a queue under a fenced lock and
//!             prices quotes submitted as tasks
//!   producer  puts the updates, submits the quotes, starts the workers with
//!             an event, waits for everything to be done and checks results
//!   audit     checks the store the workers wrote (no server needed)
//!   hold-lock, try-lock, describe, list   small tools around one resource
//!
//! Run without arguments for the usage.

mod inventory;
mod probe;
mod producer;
mod session;
mod store;
mod worker;

use std::collections::HashMap;
use std::process::ExitCode;

use tonic::transport::Channel;

/// The stubs generated from proto/baton/v1/*.proto by build.rs.
pub mod pb {
    tonic::include_proto!("baton.v1");
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

const USAGE: &str = "\
usage: baton-rust-example <command> [--option value ...]

commands:
  worker    --name W --store DIR [--addr A] [--session-ttl-ms 2000] [--crash-after-items N]
  producer  [--addr A] [--updates 40] [--quotes 6] [--workers a,b]
  audit     --store DIR [--updates 40] [--expect-redelivery true]
  hold-lock --name LOCK --until EVENT [--addr A]
  try-lock  --name LOCK --deadline-ms MS [--addr A]
  describe  --name RESOURCE [--addr A]
  list      [--prefix inventory/] [--addr A]

--addr is host:port of batond (default 127.0.0.1:7411) or a full http:// URI.";

/// The `--key value` options that follow the subcommand.
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(list: &[String]) -> Result<Args> {
        let mut values = HashMap::new();
        let mut it = list.iter();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {key:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            values.insert(key.to_string(), value.clone());
        }
        Ok(Args { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn text(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn required(&self, key: &str) -> Result<String> {
        Ok(self
            .get(key)
            .ok_or_else(|| format!("--{key} is required"))?
            .to_string())
    }

    pub fn number(&self, key: &str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => Ok(v
                .parse()
                .map_err(|_| format!("--{key}: not a number: {v:?}"))?),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "yes"))
    }
}

/// A protobuf Duration of `ms` milliseconds, as the Baton requests take them
/// (`ttl`, `timeout`, `retention`).
pub fn millis(ms: u64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// Opens one HTTP/2 connection to batond; every client stub shares it.
pub async fn connect(args: &Args) -> Result<Channel> {
    let addr = args.text("addr", "127.0.0.1:7411");
    let uri = if addr.contains("://") {
        addr
    } else {
        format!("http://{addr}")
    };
    let channel = Channel::from_shared(uri.clone())?
        .connect()
        .await
        .map_err(|e| format!("connecting to {uri}: {e}"))?;
    Ok(channel)
}

async fn run(argv: Vec<String>) -> Result<()> {
    let Some((command, rest)) = argv.split_first() else {
        return Err(USAGE.into());
    };
    let args = Args::parse(rest)?;
    match command.as_str() {
        "worker" => worker::run(&args).await,
        "producer" => producer::run(&args).await,
        "audit" => store::audit(&args),
        "hold-lock" => probe::hold_lock(&args).await,
        "try-lock" => probe::try_lock(&args).await,
        "describe" => probe::describe(&args).await,
        "list" => probe::list(&args).await,
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}").into()),
    }
}

// One thread is plenty: every wait happens on the server, not here.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
