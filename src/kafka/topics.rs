//! The changelog topics: their names, and creating or checking them at start-up.
//!
//! # Ground rules
//!
//! * Each input topic has one changelog topic, `{kafka.group_id}-{input topic}-changelog`
//!   (as Kafka Streams names its own), with one partition per input partition: input
//!   partition `p` keeps its state in changelog partition `p`.
//! * They are compacted (`cleanup.policy=compact`): the latest record per key is kept.
//! * At start-up a missing changelog is created with as many partitions as its input
//!   topic (and the replication factor of `kafka.changelog_replication`, or the broker's
//!   default); an existing one must be compacted and have at least as many partitions.
//!   Where the daemon may not create topics, start-up fails naming the topics to create
//!   and their settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::config::ClientConfig;

use super::client_log::ClientLog;
use super::context::LoggedContext;

/// The changelog topic of an input topic.
pub fn changelog_topic(group_id: &str, input: &str) -> String {
    format!("{group_id}-{input}-changelog")
}

/// Creates the changelog topics that are missing and checks the others.
pub async fn ensure_changelogs(
    config: &ClientConfig,
    group_id: &str,
    inputs: &[&str],
    log: Arc<ClientLog>,
) -> Result<()> {
    let admin: AdminClient<LoggedContext> = config
        .create_with_context(LoggedContext {
            client: "admin",
            log,
        })
        .context("cannot create the Kafka admin client")?;
    let timeout = Duration::from_secs(30);
    let bootstrap = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    tracing::info!(bootstrap_servers = %bootstrap, "reading the cluster's topics (up to 30 s)");
    // librdkafka's call blocks; on a thread of its own, a shutdown need not wait for it.
    let admin = Arc::new(admin);
    let fetching = Arc::clone(&admin);
    let metadata = tokio::task::spawn_blocking(move || fetching.inner().fetch_metadata(None, timeout))
        .await
        .context("the cluster's topics were being read when the task stopped")?
        // The error's own text only: its source repeats it.
        .map_err(|e| {
            anyhow::anyhow!("cannot read the cluster's topics from kafka.bootstrap_servers {bootstrap} within 30 s ({e}); is the broker up and reachable, and do kafka.properties' security.protocol and SASL settings match its listener?")
        })?;
    let partitions_of = |name: &str| {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len())
    };
    let mut missing = Vec::new();
    for input in inputs {
        let Some(n) = partitions_of(input) else {
            tracing::warn!(
                topic = input,
                "input topic does not exist yet; its changelog is created when it is assigned"
            );
            continue;
        };
        let changelog = changelog_topic(group_id, input);
        match partitions_of(&changelog) {
            None => missing.push((changelog, n)),
            Some(m) if m < n => bail!("changelog topic {changelog} has {m} partitions; its input {input} has {n}: add partitions to it"),
            Some(_) => check_compacted(&admin, &changelog).await?,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(name, n)| {
            NewTopic::new(name, *n as i32, TopicReplication::Fixed(-1))
                .set("cleanup.policy", "compact")
        })
        .collect();
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(timeout)),
        )
        .await;
    let describe = || {
        missing
            .iter()
            .map(|(t, n)| format!("{t} ({n} partitions, cleanup.policy=compact)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let results = results.with_context(|| {
        format!(
            "cannot create the changelog topics; create them: {}",
            describe()
        )
    })?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, "changelog topic created"),
            Err((topic, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::info!(topic, "changelog topic created meanwhile")
            }
            Err((topic, code)) => bail!(
                "cannot create changelog topic {topic} ({code}); create these topics: {}",
                describe()
            ),
        }
    }
    Ok(())
}

async fn check_compacted(admin: &AdminClient<LoggedContext>, topic: &str) -> Result<()> {
    let configs = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await;
    let Ok(configs) = configs else { return Ok(()) };
    for config in configs.into_iter().flatten() {
        if let Some(policy) = config.get("cleanup.policy").and_then(|e| e.value.clone()) {
            if !policy.contains("compact") {
                bail!("changelog topic {topic} has cleanup.policy={policy}; set it to compact");
            }
        }
    }
    Ok(())
}
