//! `codex worker`: the flags and the config file read into [`WorkerOptions`], then the
//! worker runs until a signal stops it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::WorkerArgs;
use crate::cluster::worker::{self, WorkerOptions};
use crate::cluster::Subjects;
use crate::definition::deadline::parse_duration_of;
use crate::definition::default_codex_home;
use crate::interrupt::Interrupts;
use crate::providers::config::Config;

/// Runs `codex worker` with `checkout` (`-C`) as its clone of the repository.
pub async fn run(checkout: &Path, args: &WorkerArgs, interrupts: Interrupts) -> Result<ExitCode> {
    let home = default_codex_home();
    let cluster = Config::load(home.as_deref(), &args.config)?.cluster;
    let url = args.nats.clone().or(cluster.url).context(
        "no NATS server: give --nats nats://host:4222 or set `url` under [cluster] in \
         codex-actors.toml",
    )?;
    let subjects = Subjects::new(cluster.name.as_deref().unwrap_or("default"))?;
    let heartbeat = parse_duration_of("--heartbeat", &args.heartbeat)?;
    let checkout = checkout
        .canonicalize()
        .with_context(|| format!("the checkout {} does not exist", checkout.display()))?;
    let name = args.name.clone().unwrap_or_else(default_name);
    let options = WorkerOptions {
        url,
        name,
        slots: args.slots.max(1),
        checkout,
        subjects,
        heartbeat,
        config: args.config.clone(),
    };
    worker::run(options, interrupts).await
}

/// The host name and process id.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}
