//! Audit logs from where EKS writes them: the `kube-apiserver-audit-*` streams of the
//! cluster's CloudWatch Logs group (`FilterLogEvents`), or a CloudWatch subscription's Kinesis
//! stream (gzip envelopes of log events), each with a checkpoint file so a restart neither
//! loses nor repeats an event.
//!
//! - CloudWatch: the checkpoint keeps the newest event time read and the ids of the events
//!   read in the last [`LATE`] before it; a restart reads again from that much earlier (events
//!   are ingested late, and several share a millisecond) and drops the ids it has seen. The
//!   id set is bounded by that window, so memory stays bounded while following.
//! - Kinesis: the checkpoint keeps each shard's last sequence number; a restart reads
//!   `AFTER_SEQUENCE_NUMBER`.
//!
//! The checkpoint is written after each batch has been handed to the caller, so at most that
//! batch is read twice after a crash — and the ids make even that a no-op for CloudWatch.
//! Throttling is retried by the SDK's standard mode with backoff.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How late CloudWatch may ingest an event after its timestamp and still be read.
pub const LATE: i64 = 5 * 60 * 1000;

/// GetRecords calls per shard in one drain.
pub const PAGES: usize = 10_000;

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Aws(String),
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
}

fn checkpoint_error(path: &Path, e: impl std::fmt::Display) -> SourceError {
    SourceError::Checkpoint { path: path.to_path_buf(), message: e.to_string() }
}

fn load<T: Default + for<'de> Deserialize<'de>>(path: Option<&Path>) -> Result<T, SourceError> {
    match path {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p).map_err(|e| checkpoint_error(p, e))?;
            serde_json::from_str(&text)
                .map_err(|e| checkpoint_error(p, format!("{e} (delete it to start over)")))
        }
        _ => Ok(T::default()),
    }
}

/// Written to a temporary file and renamed, so a crash never leaves half a checkpoint.
fn save<T: Serialize>(path: Option<&Path>, value: &T) -> Result<(), SourceError> {
    let Some(path) = path else { return Ok(()) };
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(value).map_err(|e| checkpoint_error(path, e))?;
    std::fs::write(&tmp, text).map_err(|e| checkpoint_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| checkpoint_error(path, e))
}

/// Where a CloudWatch reader is.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogsCheckpoint {
    pub log_group: String,
    /// The newest event time read (ms since the epoch).
    pub newest: i64,
    /// Ids of the events read with a time within [`LATE`] of `newest`.
    pub seen: BTreeMap<String, i64>,
}

/// Reads a log group's audit streams.
pub struct CloudWatchAudit {
    client: aws_sdk_cloudwatchlogs::Client,
    log_group: String,
    prefix: String,
    checkpoint_path: Option<PathBuf>,
    pub checkpoint: LogsCheckpoint,
}

fn sdk_error(e: impl std::error::Error + 'static) -> SourceError {
    SourceError::Aws(rampart_identity::sdk::error_chain(&e))
}

impl CloudWatchAudit {
    /// A reader of `log_group`'s streams starting with `kube-apiserver-audit`, from the
    /// checkpoint if there is one, else from `since_ms`.
    pub async fn new(
        region: Option<&str>,
        log_group: &str,
        since_ms: i64,
        checkpoint: Option<&Path>,
    ) -> Result<Self, SourceError> {
        let config = rampart_identity::sdk::config(region).await;
        let conf = aws_sdk_cloudwatchlogs::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(8))
            .build();
        let mut state: LogsCheckpoint = load(checkpoint)?;
        if state.log_group.is_empty() {
            // Reads start LATE before `newest`; starting there makes the first read begin at
            // `since_ms` exactly.
            state = LogsCheckpoint {
                log_group: log_group.to_string(),
                newest: since_ms + LATE,
                seen: BTreeMap::new(),
            };
        } else if state.log_group != log_group {
            return Err(SourceError::Checkpoint {
                path: checkpoint.map(Path::to_path_buf).unwrap_or_default(),
                message: format!("it is for log group {}, not {log_group}", state.log_group),
            });
        }
        Ok(CloudWatchAudit {
            client: aws_sdk_cloudwatchlogs::Client::from_conf(conf),
            log_group: log_group.to_string(),
            prefix: "kube-apiserver-audit".into(),
            checkpoint_path: checkpoint.map(Path::to_path_buf),
            checkpoint: state,
        })
    }

    /// Read everything there is now, page by page: `each` gets every new event's message; the
    /// checkpoint is saved after each page. Returns the number of events handed over.
    pub async fn drain(&mut self, each: &mut dyn FnMut(&str)) -> Result<u64, SourceError> {
        let start = (self.checkpoint.newest - LATE).max(0);
        let mut token: Option<String> = None;
        let mut count = 0;
        loop {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(&self.log_group)
                .log_stream_name_prefix(&self.prefix)
                .start_time(start)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(sdk_error)?;
            for event in page.events.unwrap_or_default() {
                // The prefix was asked of the service; checked again so another stream's
                // lines (the authenticator's) never pass for audit events.
                if !event.log_stream_name.as_deref().is_some_and(|s| s.starts_with(&self.prefix)) {
                    continue;
                }
                let (Some(id), Some(time), Some(message)) = (event.event_id, event.timestamp, event.message)
                else {
                    continue;
                };
                if self.checkpoint.seen.contains_key(&id) || time < self.checkpoint.newest - LATE {
                    continue;
                }
                each(&message);
                count += 1;
                self.checkpoint.seen.insert(id, time);
                self.checkpoint.newest = self.checkpoint.newest.max(time);
            }
            let floor = self.checkpoint.newest - LATE;
            self.checkpoint.seen.retain(|_, t| *t >= floor);
            save(self.checkpoint_path.as_deref(), &self.checkpoint)?;
            token = page.next_token;
            if token.is_none() {
                return Ok(count);
            }
        }
    }
}

/// Where a Kinesis reader is: each shard's last sequence number.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StreamCheckpoint {
    pub stream: String,
    pub shards: BTreeMap<String, String>,
}

/// Reads a CloudWatch subscription's Kinesis stream.
pub struct KinesisAudit {
    client: aws_sdk_kinesis::Client,
    stream: String,
    checkpoint_path: Option<PathBuf>,
    pub checkpoint: StreamCheckpoint,
    iterators: HashMap<String, String>,
}

/// The log events of one Kinesis record: a gzip'd CloudWatch Logs envelope
/// (`DATA_MESSAGE` with `logEvents`; `CONTROL_MESSAGE`s carry none).
pub fn envelope_messages(data: &[u8]) -> Result<Vec<String>, String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_string(&mut text)
        .map_err(|e| format!("not a gzip'd CloudWatch Logs envelope: {e}"))?;
    let envelope: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("envelope: {e}"))?;
    if envelope["messageType"] != "DATA_MESSAGE" {
        return Ok(vec![]);
    }
    Ok(envelope["logEvents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect())
}

impl KinesisAudit {
    pub async fn new(
        region: Option<&str>,
        stream: &str,
        checkpoint: Option<&Path>,
    ) -> Result<Self, SourceError> {
        let config = rampart_identity::sdk::config(region).await;
        let conf = aws_sdk_kinesis::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(8))
            .build();
        let mut state: StreamCheckpoint = load(checkpoint)?;
        if state.stream.is_empty() {
            state.stream = stream.to_string();
        } else if state.stream != stream {
            return Err(SourceError::Checkpoint {
                path: checkpoint.map(Path::to_path_buf).unwrap_or_default(),
                message: format!("it is for stream {}, not {stream}", state.stream),
            });
        }
        Ok(KinesisAudit {
            client: aws_sdk_kinesis::Client::from_conf(conf),
            stream: stream.to_string(),
            checkpoint_path: checkpoint.map(Path::to_path_buf),
            checkpoint: state,
            iterators: HashMap::new(),
        })
    }

    async fn iterator(&mut self, shard: &str) -> Result<Option<String>, SourceError> {
        if let Some(it) = self.iterators.get(shard) {
            return Ok(Some(it.clone()));
        }
        use aws_sdk_kinesis::types::ShardIteratorType;
        let request = self.client.get_shard_iterator().stream_name(&self.stream).shard_id(shard);
        let request = match self.checkpoint.shards.get(shard) {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        Ok(request.send().await.map_err(sdk_error)?.shard_iterator)
    }

    /// Read what every shard holds now; the checkpoint is saved after each batch of records.
    /// At most [`PAGES`] calls per shard, so one drain's work is bounded.
    pub async fn drain(&mut self, each: &mut dyn FnMut(&str)) -> Result<u64, SourceError> {
        let shards = self.client.list_shards().stream_name(&self.stream).send().await.map_err(sdk_error)?;
        let mut count = 0;
        for shard in shards.shards.unwrap_or_default() {
            let id = shard.shard_id;
            for _ in 0..PAGES {
                let Some(iterator) = self.iterator(&id).await? else { break };
                let page = match self.client.get_records().shard_iterator(iterator).send().await {
                    Ok(page) => page,
                    // A cached iterator expires after five minutes: start again from the
                    // checkpoint, once.
                    Err(_) if self.iterators.remove(&id).is_some() => {
                        let Some(fresh) = self.iterator(&id).await? else { break };
                        self.client.get_records().shard_iterator(fresh).send().await.map_err(sdk_error)?
                    }
                    Err(e) => return Err(sdk_error(e)),
                };
                for record in page.records {
                    for message in envelope_messages(record.data.as_ref()).map_err(SourceError::Aws)? {
                        each(&message);
                        count += 1;
                    }
                    self.checkpoint.shards.insert(id.clone(), record.sequence_number);
                }
                save(self.checkpoint_path.as_deref(), &self.checkpoint)?;
                match page.next_shard_iterator {
                    Some(next) => {
                        self.iterators.insert(id.clone(), next);
                    }
                    None => {
                        self.iterators.remove(&id);
                        break;
                    }
                }
                // Kinesis may answer an empty page while records wait further on: only
                // "caught up" ends the shard.
                if page.millis_behind_latest.unwrap_or(0) == 0 {
                    break;
                }
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn envelopes_give_their_messages_and_control_messages_none() {
        let gz = |text: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let data = gz(
            r#"{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-1","logEvents":[{"id":"1","timestamp":1,"message":"{\"kind\":\"Event\"}"},{"id":"2","timestamp":2,"message":"m2"}]}"#,
        );
        assert_eq!(envelope_messages(&data).unwrap(), ["{\"kind\":\"Event\"}", "m2"]);
        assert!(
            envelope_messages(&gz(
                r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"CWL CONTROL MESSAGE"}]}"#
            ))
            .unwrap()
            .is_empty()
        );
        assert!(envelope_messages(b"plain").unwrap_err().contains("gzip"));
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_another_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let state =
            LogsCheckpoint { log_group: "g".into(), newest: 42, seen: [("a".to_string(), 40)].into() };
        save(Some(&path), &state).unwrap();
        assert_eq!(load::<LogsCheckpoint>(Some(&path)).unwrap(), state);
        std::fs::write(&path, "{").unwrap();
        assert!(
            load::<LogsCheckpoint>(Some(&path)).unwrap_err().to_string().contains("delete it to start over")
        );
    }
}
