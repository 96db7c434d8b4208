//! Remote execution: the client's `Execute` (with `WaitExecution` after a
//! dropped stream), and the worker's side, the Remote Workers API's `Bots`
//! service (`CreateBotSession`, `UpdateBotSession`), through which a bot
//! leases actions from a server's scheduler.
//!
//! Why the Bots messages are written out here rather than generated: the
//! `bazel-remote-apis` crate lacks `google.devtools.remoteworkers.v1test2`,
//! and of its two files (`bots.proto`, `worker.proto`, Apache-2.0, by
//! Google) a bot needs five messages and two enums. They are declared below
//! with prost's derive, their field numbers and types exactly as in those
//! files (checked against BuildGrid's compiled descriptors), and called
//! through tonic's generic unary client; a build script with `protox` would
//! bring a proto compiler and its dependencies into every build for these
//! dozen fields. Fields a bot never reads or writes are left out: protobuf
//! skips unknown fields on decoding, and the server ignores absent ones.

use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status as RpcStatus;
use re::execution_client::ExecutionClient;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::service::interceptor::InterceptedService;

use crate::{BlobDigest, Client, Error};

pub use re::{ExecuteResponse, Platform, platform::Property as PlatformProperty};

/// `google.devtools.remoteworkers.v1test2.BotSession`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub bot_id: String,
    /// A [`BotStatus`].
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub version: String,
}

/// `google.devtools.remoteworkers.v1test2.Lease`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(string, tag = "7")]
    pub id: String,
    /// What to do: for REAPI servers, an `Action` (or its `Digest`).
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    /// What came of it: an `ActionResult`.
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
    /// A [`LeaseState`].
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    #[prost(message, optional, tag = "3")]
    pub status: Option<RpcStatus>,
}

/// `google.devtools.remoteworkers.v1test2.Worker` (its devices and
/// configs; no properties).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    /// BuildGrid reads `capacity` here: how many leases the bot takes at once.
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<WorkerConfig>,
}

/// `google.devtools.remoteworkers.v1test2.Worker.Config`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerConfig {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.devtools.remoteworkers.v1test2.Device`: the first device of a
/// worker is the one that runs the bot; its properties are what the
/// scheduler matches against an action's platform.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<DeviceProperty>,
}

/// `google.devtools.remoteworkers.v1test2.Device.Property`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceProperty {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CreateBotSessionRequest {
    #[prost(string, tag = "1")]
    parent: String,
    #[prost(message, optional, tag = "2")]
    bot_session: Option<BotSession>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct UpdateBotSessionRequest {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    bot_session: Option<BotSession>,
}

/// `google.devtools.remoteworkers.v1test2.BotStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    Unspecified = 0,
    Ok = 1,
    Unhealthy = 2,
    HostRebooting = 3,
    BotTerminating = 4,
}

/// `google.devtools.remoteworkers.v1test2.LeaseState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    Unspecified = 0,
    Pending = 1,
    Active = 2,
    Completed = 4,
    Cancelled = 5,
}

/// The type URL of a packed `Action`, `ActionResult` or `Digest`.
pub fn type_url(name: &str) -> String {
    format!("type.googleapis.com/build.bazel.remote.execution.v2.{name}")
}

/// `msg` packed in an `Any` as `build.bazel.remote.execution.v2.NAME`.
pub fn pack(name: &str, msg: &impl prost::Message) -> Any {
    Any {
        type_url: type_url(name),
        value: msg.encode_to_vec(),
    }
}

const BOTS: &str = "/google.devtools.remoteworkers.v1test2.Bots/";

impl Client {
    /// Run `action` on the server's workers and wait for it: `Execute`
    /// (`skip_cache_lookup`: the caller already asked the action cache),
    /// then the operation's stream until it is done, resumed with
    /// `WaitExecution` when it breaks. `wait` bounds the whole wait. The
    /// response's own status (a worker or scheduler failure) is the
    /// caller's to read.
    pub fn execute(
        &self,
        action: &BlobDigest,
        skip_cache_lookup: bool,
        wait: Duration,
    ) -> Result<ExecuteResponse, Error> {
        let mut exec = ExecutionClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(4 * crate::CHUNK);
        let req = re::ExecuteRequest {
            instance_name: self.opts.instance_name.clone(),
            skip_cache_lookup,
            action_digest: Some(action.to_proto()),
            ..Default::default()
        };
        let err = self.rpc_err("Execute");
        self.rt
            .block_on(async {
                let work = async {
                    let mut stream = self
                        .retry(|| {
                            let mut c = exec.clone();
                            let req = tonic::Request::new(req.clone());
                            async move { c.execute(req).await }
                        })
                        .await?
                        .into_inner();
                    let mut name = String::new();
                    let mut broken = 0;
                    loop {
                        match stream.message().await {
                            Ok(Some(op)) => {
                                name.clone_from(&op.name);
                                if op.done {
                                    return done(op);
                                }
                            }
                            // A stream that ends or breaks before the operation
                            // is done is picked up again by its name.
                            Ok(None) | Err(_) if !name.is_empty() && broken < 5 => {
                                broken += 1;
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                let wait = re::WaitExecutionRequest { name: name.clone() };
                                stream = exec.wait_execution(wait).await?.into_inner();
                            }
                            Ok(None) => {
                                return Err(tonic::Status::aborted(
                                    "the operation stream ended before the operation was done",
                                ));
                            }
                            Err(s) => return Err(s),
                        }
                    }
                };
                match tokio::time::timeout(wait, work).await {
                    Ok(r) => r,
                    Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                        "the action was not done in {wait:?}"
                    ))),
                }
            })
            .map_err(err)
    }

    /// `CreateBotSession` under the client's instance.
    pub fn create_bot_session(
        &self,
        session: BotSession,
        poll: Duration,
    ) -> Result<BotSession, Error> {
        let msg = CreateBotSessionRequest {
            parent: self.opts.instance_name.clone(),
            bot_session: Some(session),
        };
        self.bots_call("CreateBotSession", msg, poll)
    }

    /// `UpdateBotSession`: report the session's leases and get new ones.
    /// The server may hold the call up to `poll` waiting for work.
    pub fn update_bot_session(
        &self,
        session: BotSession,
        poll: Duration,
    ) -> Result<BotSession, Error> {
        let msg = UpdateBotSessionRequest {
            name: session.name.clone(),
            bot_session: Some(session),
        };
        self.bots_call("UpdateBotSession", msg, poll)
    }

    fn bots_call<M>(
        &self,
        method: &'static str,
        msg: M,
        poll: Duration,
    ) -> Result<BotSession, Error>
    where
        M: prost::Message + Clone + Send + Sync + 'static,
    {
        let path = PathAndQuery::try_from(format!("{BOTS}{method}"))
            .map_err(|e| self.rpc_err(method)(tonic::Status::internal(e.to_string())))?;
        let svc = InterceptedService::new(self.channel.clone(), self.auth.clone());
        let got = self.rt.block_on(async {
            let mut grpc = tonic::client::Grpc::new(svc);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut req = tonic::Request::new(msg);
            req.set_timeout(poll);
            let codec = tonic_prost::ProstCodec::<M, BotSession>::default();
            match tokio::time::timeout(poll + Duration::from_secs(5), grpc.unary(req, path, codec))
                .await
            {
                Ok(r) => r.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded("no answer")),
            }
        });
        got.map_err(self.rpc_err(method))
    }
}

/// The `ExecuteResponse` of a finished operation, or its error.
fn done(op: Operation) -> Result<ExecuteResponse, tonic::Status> {
    match op.result {
        Some(operation::Result::Response(any)) => {
            <ExecuteResponse as prost::Message>::decode(&*any.value)
                .map_err(|e| tonic::Status::internal(format!("unreadable ExecuteResponse: {e}")))
        }
        Some(operation::Result::Error(s)) => {
            Err(tonic::Status::new(tonic::Code::from_i32(s.code), s.message))
        }
        None => Err(tonic::Status::internal("a done operation without a result")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn a_lease_round_trips_with_its_field_numbers() {
        let lease = Lease {
            id: "op".into(),
            payload: Some(pack("Digest", &BlobDigest::of(b"x").to_proto())),
            result: None,
            state: LeaseState::Completed as i32,
            status: Some(RpcStatus::default()),
        };
        let bytes = lease.encode_to_vec();
        // Field 7 (id), wire type 2: the tag byte 0x3a comes after state (2) and status (3).
        assert!(bytes.windows(3).any(|w| w == [0x3a, 2, b'o']), "{bytes:?}");
        assert_eq!(Lease::decode(&*bytes).unwrap(), lease);
    }
}
