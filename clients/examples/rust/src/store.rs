//! The storage the inventory protects, in a directory shared by the workers:
//!   stock.txt   "sku-2 17" per line: the stock levels
//!   ledger.txt  one line per applied update, in the order they were applied
//!   fence.txt   the highest fencing token that has written
//!
//! It stands for any store that checks fencing tokens: a write whose token is
//! not above the last one is refused, so a worker that lost its lock (paused,
//! or its session expired) cannot overwrite what a newer holder wrote. Each
//! write is a read-modify-write with a pause in the middle, so two writers not
//! serialized by the Baton lock would lose updates; `audit` would notice.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::inventory::Update;
use crate::{Args, Result};

pub struct Store {
    dir: PathBuf,
}

/// One line of ledger.txt.
struct Entry {
    token: u64,
    worker: String,
    update: u64,
    delivery: u64,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Applies `update` with the fencing token of the lock grant under which
    /// the caller holds the store. REQUIRES: the caller holds STORE_LOCK.
    pub async fn apply(
        &self,
        token: u64,
        worker: &str,
        update: &Update,
        delivery: u32,
    ) -> Result<()> {
        let fence = read_or_empty(&self.dir.join("fence.txt"))?
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
        if token <= fence {
            return Err(format!("fenced off: token {token} is not above {fence}").into());
        }
        let mut stock = read_stock(&self.dir)?;
        // The window in which an unserialized second writer would lose this update.
        tokio::time::sleep(Duration::from_millis(5)).await;
        *stock.entry(update.sku.clone()).or_insert(0) += update.delta;
        let text: String = stock
            .iter()
            .map(|(sku, n)| format!("{sku} {n}\n"))
            .collect();
        write_atomically(&self.dir.join("stock.txt"), &text)?;
        let path = self.dir.join("ledger.txt");
        let mut ledger = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        writeln!(
            ledger,
            "token={token} worker={worker} update={} sku={} delta={} delivery={delivery}",
            update.index, update.sku, update.delta
        )?;
        write_atomically(&self.dir.join("fence.txt"), &token.to_string())?;
        Ok(())
    }
}

fn read_or_empty(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
    Ok(())
}

fn read_stock(dir: &Path) -> Result<BTreeMap<String, i64>> {
    let mut stock = BTreeMap::new();
    for line in read_or_empty(&dir.join("stock.txt"))?.lines() {
        let (sku, n) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad stock line {line:?}"))?;
        stock.insert(sku.to_string(), n.parse()?);
    }
    Ok(stock)
}

fn parse_entry(line: &str) -> Result<Entry> {
    let field = |key: &str| -> Result<String> {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| format!("ledger line without {key}: {line:?}").into())
    };
    Ok(Entry {
        token: field("token")?.parse()?,
        worker: field("worker")?,
        update: field("update")?.parse()?,
        delivery: field("delivery")?.parse()?,
    })
}

/// `audit`: checks what the workers left in the store. Every update applied
/// exactly once, in strictly increasing fencing-token order, and stock levels
/// equal to the sum of the updates (no update lost to a race).
pub fn audit(args: &Args) -> Result<()> {
    let dir = PathBuf::from(args.required("store")?);
    let updates = args.number("updates", 40)?;
    let ledger = read_or_empty(&dir.join("ledger.txt"))?;
    let entries: Vec<Entry> = ledger.lines().map(parse_entry).collect::<Result<_>>()?;

    let mut problems = Vec::new();
    for pair in entries.windows(2) {
        if pair[1].token <= pair[0].token {
            problems.push(format!(
                "token {} applied after token {}",
                pair[1].token, pair[0].token
            ));
        }
    }
    let mut times_applied = vec![0u32; updates as usize];
    for e in &entries {
        match times_applied.get_mut(e.update as usize) {
            Some(n) => *n += 1,
            None => problems.push(format!("unknown update {}", e.update)),
        }
    }
    for (index, n) in times_applied.iter().enumerate() {
        if *n != 1 {
            problems.push(format!("update {index} applied {n} times"));
        }
    }
    let mut expected = BTreeMap::new();
    for index in 0..updates {
        let u = Update::generate(index);
        *expected.entry(u.sku).or_insert(0i64) += u.delta;
    }
    let stock = read_stock(&dir)?;
    if stock != expected {
        problems.push(format!("stock {stock:?}, expected {expected:?}"));
    }
    let redelivered = entries.iter().filter(|e| e.delivery > 1).count();
    if args.flag("expect-redelivery") && redelivered == 0 {
        problems.push("no update was redelivered, though a worker crashed".to_string());
    }
    let mut by_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &entries {
        *by_worker.entry(e.worker.as_str()).or_insert(0) += 1;
    }

    if !problems.is_empty() {
        return Err(format!("audit FAILED:\n  {}", problems.join("\n  ")).into());
    }
    let (first, last) = (
        entries.first().map_or(0, |e| e.token),
        entries.last().map_or(0, |e| e.token),
    );
    println!(
        "audit ok: {} updates applied once each, fencing tokens {first}..{last} strictly increasing, \
         {redelivered} redelivered after a crash, by worker {by_worker:?}, stock {stock:?}",
        entries.len()
    );
    Ok(())
}
