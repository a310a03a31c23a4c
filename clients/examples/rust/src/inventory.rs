//! The inventory domain: resource names shared by every role, the stock
//! updates that travel through the queue and the quotes that travel as tasks.
//! Both are generated deterministically from their index so that the producer,
//! the workers and the audit agree without sharing anything but Baton.

use crate::Result;

/// Queue of stock updates ("update-7 sku-2 +4"), consumed by workers.
pub const UPDATES_QUEUE: &str = "inventory/stock-updates";
/// Lock serializing writes to the store; its fencing token goes with each write.
pub const STORE_LOCK: &str = "inventory/store";
/// Work queue of price quotes (Tasks).
pub const QUOTES_TASKS: &str = "inventory/quotes";
/// Event the workers wait on before they start.
pub const CATALOG_READY: &str = "inventory/catalog-ready";
/// Event that tells the workers to finish.
pub const SHUTDOWN: &str = "inventory/shutdown";

/// Future where worker `name` reports what it did.
pub fn summary_future(worker: &str) -> String {
    format!("inventory/summary/{worker}")
}

pub const SKUS: u64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub index: u64,
    pub sku: String,
    pub delta: i64,
}

impl Update {
    /// The index-th update of a run.
    pub fn generate(index: u64) -> Update {
        Update {
            index,
            sku: format!("sku-{}", index % SKUS),
            delta: (index * 7 % 11) as i64 - 3,
        }
    }

    pub fn to_text(&self) -> String {
        format!("update-{} {} {:+}", self.index, self.sku, self.delta)
    }

    pub fn parse(text: &str) -> Result<Update> {
        let bad = || format!("not a stock update: {text:?}");
        let mut parts = text.split(' ');
        let index = parts
            .next()
            .and_then(|p| p.strip_prefix("update-"))
            .ok_or_else(bad)?;
        let sku = parts.next().ok_or_else(bad)?;
        let delta = parts.next().ok_or_else(bad)?;
        Ok(Update {
            index: index.parse().map_err(|_| bad())?,
            sku: sku.to_string(),
            delta: delta.parse().map_err(|_| bad())?,
        })
    }
}

/// A request to price `quantity` units of a SKU. A `flaky` quote fails its
/// first attempt (the supplier feed "times out"), as real work sometimes does,
/// so that the task is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub sku: String,
    pub quantity: u64,
    pub flaky: bool,
}

impl Quote {
    pub fn generate(index: u64) -> Quote {
        Quote {
            sku: format!("sku-{}", index % SKUS),
            quantity: index + 1,
            flaky: index == 0,
        }
    }

    pub fn to_text(&self) -> String {
        let flaky = if self.flaky { " flaky" } else { "" };
        format!("quote {} x{}{flaky}", self.sku, self.quantity)
    }

    pub fn parse(text: &str) -> Result<Quote> {
        let bad = || format!("not a quote: {text:?}");
        let parts: Vec<&str> = text.split(' ').collect();
        if parts.len() < 3 || parts[0] != "quote" {
            return Err(bad().into());
        }
        let quantity = parts[2]
            .strip_prefix('x')
            .and_then(|q| q.parse().ok())
            .ok_or_else(bad)?;
        Ok(Quote {
            sku: parts[1].to_string(),
            quantity,
            flaky: parts.get(3) == Some(&"flaky"),
        })
    }

    /// The answer a worker gives, e.g. "sku-3 x4 = 30.00".
    pub fn price(&self) -> String {
        let unit_cents: u64 = 250
            + 125
                * self
                    .sku
                    .trim_start_matches("sku-")
                    .parse::<u64>()
                    .unwrap_or(0);
        let cents = unit_cents * self.quantity;
        format!(
            "{} x{} = {}.{:02}",
            self.sku,
            self.quantity,
            cents / 100,
            cents % 100
        )
    }
}
