//! A blocking client of the Remote Execution API v2 (REAPI): the action
//! cache (`GetActionResult`, `UpdateActionResult`), the content-addressable
//! storage (`FindMissingBlobs`, `BatchUpdateBlobs`, `BatchReadBlobs`) and
//! ByteStream (`Read`, `Write`) for blobs too large for one message.
//!
//! The REAPI types and tonic stubs come from the `bazel-remote-apis` crate,
//! which checks in the code generated from the `.proto` files: building this
//! crate needs neither `protoc` nor a build script.
//!
//! strata's core is synchronous (rayon threads), so the async runtime lives
//! inside [`Client`]: a two-thread tokio runtime that every call enters with
//! `block_on`. Calls may come from many threads at once; they share one HTTP/2
//! connection, which multiplexes them.
//!
//! Invariants: knows nothing of specs, layers or strata's cache, only blobs
//! by sha256 digest and action results; a blob read is hashed as it streams
//! and an error if it does not match its digest, before the caller may trust
//! it; memory is bounded by one chunk ([`CHUNK`]) per stream, whatever the
//! blob's size; credentials come from [`Options`] (files or environment the
//! caller read), never from a URL; every call is bounded in time and retried
//! with backoff when the server says it is busy or unavailable.

mod exec;

pub use exec::{
    BotSession, BotStatus, Device, DeviceProperty, ExecuteResponse, Lease, LeaseState, Platform,
    PlatformProperty, Worker, WorkerConfig, pack, type_url,
};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream as bs;
use bs::byte_stream_client::ByteStreamClient;
use re::action_cache_client::ActionCacheClient;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use sha2::Digest as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use bazel_remote_apis::google::protobuf::Any;
pub use bazel_remote_apis::google::rpc::Status as RpcStatus;
pub use prost::Message;
pub use re::{
    Action, ActionResult, Command, Digest, Directory, DirectoryNode, FileNode, OutputFile,
    SymlinkNode,
};

/// The size of a ByteStream chunk, and the largest blob sent or read in a
/// batch call (gRPC's default message limit is 4 MiB; a batch stays well
/// under it).
pub const CHUNK: usize = 1 << 20;

/// A blob's digest as REAPI names it: sha256 (lowercase hex) and size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobDigest {
    pub hash: String,
    pub size: u64,
}

impl BlobDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobDigest {
        BlobDigest {
            hash: hex::encode(sha2::Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    /// The digest of everything `r` reads, in 1 MiB reads.
    pub fn of_reader(mut r: impl Read) -> std::io::Result<BlobDigest> {
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(BlobDigest {
            hash: hex::encode(h.finalize()),
            size,
        })
    }

    /// The digest of a protobuf message's encoding (an `Action`, a `Command`).
    pub fn of_message(m: &impl prost::Message) -> BlobDigest {
        BlobDigest::of(&m.encode_to_vec())
    }

    pub fn to_proto(&self) -> re::Digest {
        re::Digest {
            hash: self.hash.clone(),
            size_bytes: self.size as i64,
        }
    }

    /// A digest from the wire, refused unless it is 64 lowercase hex digits
    /// and a size that is not negative.
    pub fn from_proto(d: &re::Digest) -> Result<BlobDigest, Error> {
        let ok = d.hash.len() == 64
            && d.hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && d.size_bytes >= 0;
        if !ok {
            return Err(Error::BadDigest {
                hash: d.hash.clone(),
                size: d.size_bytes,
            });
        }
        Ok(BlobDigest {
            hash: d.hash.clone(),
            size: d.size_bytes as u64,
        })
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.hash, self.size)
    }
}

/// Where a server is and how to speak to it. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct Options {
    /// `grpc://HOST:PORT` (plain HTTP/2) or `grpcs://HOST:PORT` (TLS).
    pub url: String,
    /// The REAPI instance name (empty for the server's default).
    pub instance_name: String,
    /// A bearer token sent as `authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// PEM certificates of the CAs to trust (besides the system's) for `grpcs://`.
    pub ca_cert: Option<PathBuf>,
    /// A PEM client certificate and its key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// How long one call may take (a ByteStream call: per chunk).
    pub timeout: Duration,
    /// How often a call the server refused as busy or unavailable is tried again.
    pub retries: u32,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url)
            .field("instance_name", &self.instance_name)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The environment variables [`Options::from_env`] reads.
pub const ENV_VARS: [&str; 6] = [
    "STRATA_REMOTE_INSTANCE",
    "STRATA_REMOTE_TOKEN",
    "STRATA_REMOTE_TOKEN_FILE",
    "STRATA_REMOTE_CA",
    "STRATA_REMOTE_CERT",
    "STRATA_REMOTE_KEY",
];

impl Options {
    /// Defaults for `url`: no credentials, 20 s per call, 3 retries.
    pub fn new(url: &str) -> Options {
        Options {
            url: url.to_owned(),
            instance_name: String::new(),
            token: None,
            ca_cert: None,
            client_cert: None,
            timeout: Duration::from_secs(20),
            retries: 3,
        }
    }

    /// Options for `url` with credentials from the variables `lookup` gives
    /// (the caller passes the environment): `STRATA_REMOTE_INSTANCE`,
    /// `STRATA_REMOTE_TOKEN` or `STRATA_REMOTE_TOKEN_FILE` (a file holding
    /// the token), `STRATA_REMOTE_CA`, and `STRATA_REMOTE_CERT` with
    /// `STRATA_REMOTE_KEY` (PEM files).
    pub fn from_env(url: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Options, Error> {
        let mut o = Options::new(url);
        if let Some(i) = lookup("STRATA_REMOTE_INSTANCE") {
            o.instance_name = i;
        }
        o.token = match (
            lookup("STRATA_REMOTE_TOKEN"),
            lookup("STRATA_REMOTE_TOKEN_FILE"),
        ) {
            (Some(t), _) => Some(t),
            (None, Some(f)) => Some(read_file(Path::new(&f))?.trim().to_owned()),
            (None, None) => None,
        };
        o.ca_cert = lookup("STRATA_REMOTE_CA").map(PathBuf::from);
        o.client_cert = match (lookup("STRATA_REMOTE_CERT"), lookup("STRATA_REMOTE_KEY")) {
            (Some(c), Some(k)) => Some((c.into(), k.into())),
            (None, None) => None,
            _ => {
                return Err(Error::BadUrl {
                    url: url.to_owned(),
                    reason: "STRATA_REMOTE_CERT and STRATA_REMOTE_KEY go together".into(),
                });
            }
        };
        Ok(o)
    }
}

fn read_file(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("remote API {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the remote API client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{url}: {what}: {} ({})", status.message(), status.code())]
    Rpc {
        url: String,
        what: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("{url}: blob {expected}: its bytes hash to {found}")]
    Mismatch {
        url: String,
        expected: BlobDigest,
        found: BlobDigest,
    },
    #[error("{url}: blob {digest} is not in the store")]
    Missing { url: String, digest: BlobDigest },
    #[error("blob {digest}: over the {max} bytes this reads into memory")]
    TooBig { digest: BlobDigest, max: u64 },
    #[error("a digest that is not sha256: {hash:?} ({size} bytes)")]
    BadDigest { hash: String, size: i64 },
    #[error("blob {digest}: cannot write it: {source}")]
    Sink {
        digest: BlobDigest,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the server is down, unreachable or too slow (rather than a
    /// bad answer about one blob): the caller stops asking it.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Rpc { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unknown
                    | tonic::Code::Unauthenticated
                    | tonic::Code::PermissionDenied
                    | tonic::Code::Unimplemented
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Cancelled
            ),
            _ => false,
        }
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Auth(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, Auth>;

/// A connection to one REAPI server.
pub struct Client {
    rt: tokio::runtime::Runtime,
    ac: ActionCacheClient<Svc>,
    cas: ContentAddressableStorageClient<Svc>,
    bs: ByteStreamClient<Svc>,
    /// The connection and credentials, for the execution and bots clients
    /// (`exec`), made per call.
    channel: Channel,
    auth: Auth,
    opts: Options,
}

/// Codes worth a retry: the server is busy, restarting or lost the call.
fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Internal
    )
}

/// The retry schedule every call shares: up to `retries` more tries of a
/// call the server refused with a [`transient`] code, 100 ms apart at
/// first, doubling.
struct Backoff {
    left: u32,
    delay: Duration,
}

impl Backoff {
    fn new(retries: u32) -> Backoff {
        Backoff {
            left: retries,
            delay: Duration::from_millis(100),
        }
    }

    /// How long to wait before trying again after an answer with `code`,
    /// or `None`: give up.
    fn next(&mut self, code: tonic::Code) -> Option<Duration> {
        if !transient(code) || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let wait = self.delay;
        self.delay *= 2;
        Some(wait)
    }
}

impl Client {
    /// A client of `opts.url`. Nothing is sent yet: the connection is made
    /// by the first call (so a server that is down fails that call).
    pub fn connect(opts: &Options) -> Result<Client, Error> {
        let bad = |reason: &str| Error::BadUrl {
            url: opts.url.clone(),
            reason: reason.to_owned(),
        };
        let (tls, rest) = match opts.url.split_once("://") {
            Some(("grpc", rest)) => (false, rest),
            Some(("grpcs", rest)) => (true, rest),
            _ => return Err(bad("expected grpc://HOST:PORT or grpcs://HOST:PORT")),
        };
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return Err(bad(
                "expected grpc://HOST:PORT or grpcs://HOST:PORT (no path, no credentials: \
                 a token or certificate comes from STRATA_REMOTE_* variables)",
            ));
        }
        if !tls && (opts.token.is_some() || opts.client_cert.is_some()) {
            return Err(bad(
                "credentials are sent only over grpcs:// (TLS), never in the clear",
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-reapi")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let scheme = if tls { "https" } else { "http" };
        let transport = |source| Error::Transport {
            url: opts.url.clone(),
            source,
        };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{rest}"))
            .map_err(transport)?
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(opts.timeout);
        if tls {
            let mut cfg = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &opts.ca_cert {
                cfg = cfg.ca_certificate(Certificate::from_pem(read_file(ca)?));
            }
            if let Some((cert, key)) = &opts.client_cert {
                cfg = cfg.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
            }
            ep = ep.tls_config(cfg).map_err(transport)?;
        }
        let token = match &opts.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| bad("the token is not printable ASCII"))?,
            ),
            None => None,
        };
        let channel = {
            let _in_runtime = rt.enter();
            ep.connect_lazy()
        };
        let auth = Auth(token);
        let limit = 4 * CHUNK;
        Ok(Client {
            ac: ActionCacheClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(limit),
            cas: ContentAddressableStorageClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(limit),
            bs: ByteStreamClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(limit),
            channel,
            auth,
            rt,
            opts: opts.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.opts.url
    }

    fn rpc_err(&self, what: &'static str) -> impl Fn(tonic::Status) -> Error + '_ {
        move |status| Error::Rpc {
            url: self.opts.url.clone(),
            what,
            status: Box::new(status),
        }
    }

    /// Run one call, bounded by the timeout, retried with backoff
    /// (100 ms, doubling) while the server answers with a transient code.
    async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let mut backoff = Backoff::new(self.opts.retries);
        loop {
            let status = match tokio::time::timeout(self.opts.timeout, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(s)) => s,
                // A slow server is not tried again: the caller stops asking it.
                Err(_) => {
                    return Err(tonic::Status::deadline_exceeded(format!(
                        "no answer in {:?}",
                        self.opts.timeout
                    )));
                }
            };
            match backoff.next(status.code()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(status),
            }
        }
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.opts.timeout);
        r
    }

    /// The action cache's result for `action`; `None` when it has none.
    pub fn get_action_result(&self, action: &BlobDigest) -> Result<Option<ActionResult>, Error> {
        let msg = re::GetActionResultRequest {
            instance_name: self.opts.instance_name.clone(),
            action_digest: Some(action.to_proto()),
            ..Default::default()
        };
        let got = self.rt.block_on(self.retry(|| {
            let mut c = self.ac.clone();
            let req = self.request(msg.clone());
            async move { c.get_action_result(req).await }
        }));
        match got {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.rpc_err("GetActionResult")(s)),
        }
    }

    /// Store `result` as the action cache's result for `action`.
    pub fn update_action_result(
        &self,
        action: &BlobDigest,
        result: &ActionResult,
    ) -> Result<(), Error> {
        let msg = re::UpdateActionResultRequest {
            instance_name: self.opts.instance_name.clone(),
            action_digest: Some(action.to_proto()),
            action_result: Some(result.clone()),
            ..Default::default()
        };
        self.rt
            .block_on(self.retry(|| {
                let mut c = self.ac.clone();
                let req = self.request(msg.clone());
                async move { c.update_action_result(req).await }
            }))
            .map_err(self.rpc_err("UpdateActionResult"))?;
        Ok(())
    }

    /// Which of `digests` the CAS lacks.
    pub fn find_missing(&self, digests: &[BlobDigest]) -> Result<Vec<BlobDigest>, Error> {
        let msg = re::FindMissingBlobsRequest {
            instance_name: self.opts.instance_name.clone(),
            blob_digests: digests.iter().map(BlobDigest::to_proto).collect(),
            ..Default::default()
        };
        let r = self
            .rt
            .block_on(self.retry(|| {
                let mut c = self.cas.clone();
                let req = self.request(msg.clone());
                async move { c.find_missing_blobs(req).await }
            }))
            .map_err(self.rpc_err("FindMissingBlobs"))?;
        r.into_inner()
            .missing_blob_digests
            .iter()
            .map(BlobDigest::from_proto)
            .collect()
    }

    /// Upload the blobs the CAS lacks (asked first with `FindMissingBlobs`,
    /// so a blob already there never moves): small ones in one
    /// `BatchUpdateBlobs`, large ones streamed from their files with
    /// ByteStream `Write` in [`CHUNK`]s. Returns the digests uploaded.
    pub fn upload(&self, blobs: &[(BlobDigest, Source)]) -> Result<Vec<BlobDigest>, Error> {
        let digests: Vec<BlobDigest> = blobs.iter().map(|(d, _)| d.clone()).collect();
        let missing = self.find_missing(&digests)?;
        let mut batch = Vec::new();
        let mut sent = Vec::new();
        for (d, src) in blobs {
            if !missing.contains(d) || sent.contains(d) {
                continue;
            }
            sent.push(d.clone());
            if d.size as usize <= CHUNK {
                let data = match src {
                    Source::Bytes(b) => b.clone(),
                    Source::File(p) => std::fs::read(p).map_err(|source| Error::Io {
                        path: p.clone(),
                        source,
                    })?,
                };
                batch.push(re::batch_update_blobs_request::Request {
                    digest: Some(d.to_proto()),
                    data,
                    compressor: 0,
                });
                if batch.len() >= 3 {
                    self.batch_update(std::mem::take(&mut batch))?;
                }
            } else {
                self.write_stream(d, src)?;
            }
        }
        if !batch.is_empty() {
            self.batch_update(batch)?;
        }
        Ok(sent)
    }

    fn batch_update(
        &self,
        requests: Vec<re::batch_update_blobs_request::Request>,
    ) -> Result<(), Error> {
        let msg = re::BatchUpdateBlobsRequest {
            instance_name: self.opts.instance_name.clone(),
            requests,
            ..Default::default()
        };
        let r = self
            .rt
            .block_on(self.retry(|| {
                let mut c = self.cas.clone();
                let req = self.request(msg.clone());
                async move { c.batch_update_blobs(req).await }
            }))
            .map_err(self.rpc_err("BatchUpdateBlobs"))?;
        for resp in r.into_inner().responses {
            if let Some(s) = resp.status.filter(|s| s.code != 0) {
                return Err(self.rpc_err("BatchUpdateBlobs")(tonic::Status::new(
                    tonic::Code::from_i32(s.code),
                    s.message,
                )));
            }
        }
        Ok(())
    }

    /// ByteStream `Write` of one blob, read from its source a chunk at a time.
    fn write_stream(&self, d: &BlobDigest, src: &Source) -> Result<(), Error> {
        let resource = format!(
            "{}uploads/{}/blobs/{}/{}",
            self.prefix(),
            upload_id(d),
            d.hash,
            d.size
        );
        // The whole upload may take a timeout per 16 chunks, at least one.
        let budget = self.opts.timeout * (1 + (d.size / (16 * CHUNK as u64)) as u32);
        let mut backoff = Backoff::new(self.opts.retries);
        loop {
            let reader: Box<dyn Read + Send> = match src {
                Source::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
                Source::File(p) => {
                    Box::new(std::fs::File::open(p).map_err(|source| Error::Io {
                        path: p.clone(),
                        source,
                    })?)
                }
            };
            let stream = write_requests(reader, resource.clone(), d.size);
            let mut c = self.bs.clone();
            let got = self.rt.block_on(async {
                match tokio::time::timeout(budget, c.write(stream)).await {
                    Ok(r) => r,
                    Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                        "the upload took over {budget:?}"
                    ))),
                }
            });
            match got {
                Ok(r) => {
                    let committed = r.into_inner().committed_size;
                    // -1 or the size: the server has it (maybe from another writer).
                    if committed != d.size as i64 && committed != -1 {
                        return Err(self.rpc_err("ByteStream.Write")(tonic::Status::data_loss(
                            format!("committed {committed} of {} bytes", d.size),
                        )));
                    }
                    return Ok(());
                }
                Err(s) => match backoff.next(s.code()) {
                    Some(wait) => self.rt.block_on(tokio::time::sleep(wait)),
                    None => return Err(self.rpc_err("ByteStream.Write")(s)),
                },
            }
        }
    }

    fn prefix(&self) -> String {
        if self.opts.instance_name.is_empty() {
            String::new()
        } else {
            format!("{}/", self.opts.instance_name)
        }
    }

    /// Read a blob into `sink`, hashing it on the way: an error if its bytes
    /// are not `d` (the sink then holds bytes the caller must discard).
    /// Small blobs come in one `BatchReadBlobs`; larger ones stream with
    /// ByteStream `Read`, resumed at the offset reached when the stream
    /// breaks.
    pub fn read(&self, d: &BlobDigest, sink: &mut dyn Write) -> Result<(), Error> {
        let mut hasher = sha2::Sha256::new();
        let mut got: u64 = 0;
        let sink_err = |source| Error::Sink {
            digest: d.clone(),
            source,
        };
        if d.size as usize <= CHUNK {
            let data = self.batch_read(d)?;
            hasher.update(&data);
            got = data.len() as u64;
            sink.write_all(&data).map_err(sink_err)?;
        } else {
            let resource = format!("{}blobs/{}/{}", self.prefix(), d.hash, d.size);
            let mut backoff = Backoff::new(self.opts.retries);
            loop {
                let msg = bs::ReadRequest {
                    resource_name: resource.clone(),
                    read_offset: got as i64,
                    read_limit: 0,
                };
                let mut c = self.bs.clone();
                let timeout = self.opts.timeout;
                let result: Result<(), tonic::Status> = self.rt.block_on(async {
                    let mut stream = match tokio::time::timeout(timeout, c.read(msg)).await {
                        Ok(r) => r?.into_inner(),
                        Err(_) => return Err(tonic::Status::deadline_exceeded("no answer")),
                    };
                    loop {
                        let next = tokio::time::timeout(timeout, stream.message())
                            .await
                            .map_err(|_| tonic::Status::deadline_exceeded("the stream stalled"))?;
                        let Some(chunk) = next? else { return Ok(()) };
                        if got + chunk.data.len() as u64 > d.size {
                            return Err(tonic::Status::out_of_range("more bytes than its size"));
                        }
                        hasher.update(&chunk.data);
                        got += chunk.data.len() as u64;
                        sink.write_all(&chunk.data)
                            .map_err(|e| tonic::Status::cancelled(format!("sink: {e}")))?;
                    }
                });
                match result {
                    Ok(()) => break,
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        return Err(Error::Missing {
                            url: self.opts.url.clone(),
                            digest: d.clone(),
                        });
                    }
                    Err(s) => match backoff.next(s.code()) {
                        Some(wait) => self.rt.block_on(tokio::time::sleep(wait)),
                        None => return Err(self.rpc_err("ByteStream.Read")(s)),
                    },
                }
            }
        }
        let found = BlobDigest {
            hash: hex::encode(hasher.finalize()),
            size: got,
        };
        if found != *d {
            return Err(Error::Mismatch {
                url: self.opts.url.clone(),
                expected: d.clone(),
                found,
            });
        }
        Ok(())
    }

    /// A blob of at most `max` bytes, read and checked, in memory.
    pub fn read_bytes(&self, d: &BlobDigest, max: u64) -> Result<Vec<u8>, Error> {
        if d.size > max {
            return Err(Error::TooBig {
                digest: d.clone(),
                max,
            });
        }
        let mut out = Vec::with_capacity(d.size as usize);
        self.read(d, &mut out)?;
        Ok(out)
    }

    fn batch_read(&self, d: &BlobDigest) -> Result<Vec<u8>, Error> {
        let msg = re::BatchReadBlobsRequest {
            instance_name: self.opts.instance_name.clone(),
            digests: vec![d.to_proto()],
            ..Default::default()
        };
        let r = self
            .rt
            .block_on(self.retry(|| {
                let mut c = self.cas.clone();
                let req = self.request(msg.clone());
                async move { c.batch_read_blobs(req).await }
            }))
            .map_err(self.rpc_err("BatchReadBlobs"))?;
        let resp = r.into_inner().responses.into_iter().next();
        match resp {
            Some(resp) if resp.status.as_ref().is_none_or(|s| s.code == 0) => Ok(resp.data),
            Some(resp)
                if resp
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == tonic::Code::NotFound as i32) =>
            {
                Err(Error::Missing {
                    url: self.opts.url.clone(),
                    digest: d.clone(),
                })
            }
            Some(resp) => {
                let s = resp.status.unwrap_or_default();
                Err(self.rpc_err("BatchReadBlobs")(tonic::Status::new(
                    tonic::Code::from_i32(s.code),
                    s.message,
                )))
            }
            None => Err(Error::Missing {
                url: self.opts.url.clone(),
                digest: d.clone(),
            }),
        }
    }
}

/// The bytes of a blob to upload.
#[derive(Debug, Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// A ByteStream upload id: unique per process and call, as the API asks
/// (any string; servers use it to tell concurrent writes of one blob apart).
fn upload_id(d: &BlobDigest) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos());
    let seed = format!(
        "{}-{}-{}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed),
        d.hash
    );
    let h = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The requests of one ByteStream `Write`: `reader`'s bytes in chunks of
/// [`CHUNK`], read as the connection takes them (one chunk in memory at a
/// time), the last one marked `finish_write`.
fn write_requests(
    reader: Box<dyn Read + Send>,
    resource: String,
    size: u64,
) -> impl futures_util::Stream<Item = bs::WriteRequest> + Send + 'static {
    struct State {
        reader: Box<dyn Read + Send>,
        resource: Option<String>,
        offset: u64,
        done: bool,
    }
    let state = State {
        reader,
        resource: Some(resource),
        offset: 0,
        done: false,
    };
    futures_util::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        let want = (size - st.offset).min(CHUNK as u64) as usize;
        let mut data = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match st.reader.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A short read ends the stream early; the server sees fewer
                // bytes than the size and refuses the write.
                Err(_) => break,
            }
        }
        data.truncate(filled);
        let write_offset = st.offset as i64;
        st.offset += filled as u64;
        st.done = filled < want || st.offset >= size;
        let req = bs::WriteRequest {
            resource_name: st.resource.take().unwrap_or_default(),
            write_offset,
            finish_write: st.offset >= size,
            data,
        };
        Some((req, st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_retries_transient_codes_only_doubling_the_wait() {
        let mut b = Backoff::new(3);
        assert_eq!(b.next(tonic::Code::NotFound), None);
        let waits: Vec<_> = std::iter::from_fn(|| b.next(tonic::Code::Unavailable)).collect();
        assert_eq!(
            waits,
            [100, 200, 400].map(Duration::from_millis),
            "three retries, 100 ms doubling"
        );
        assert_eq!(Backoff::new(0).next(tonic::Code::Unavailable), None);
    }

    #[test]
    fn digests_from_the_wire_are_checked() {
        let ok = BlobDigest::of(b"hello");
        assert_eq!(BlobDigest::from_proto(&ok.to_proto()).unwrap(), ok);
        for (hash, size) in [("ab", 1), (&*"A".repeat(64), 1), (&*ok.hash, -1)] {
            let d = re::Digest {
                hash: hash.to_owned(),
                size_bytes: size,
            };
            assert!(BlobDigest::from_proto(&d).is_err(), "{hash} {size}");
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let env = |k: &str| (k == "STRATA_REMOTE_TOKEN").then(|| "s3cret-token".to_owned());
        let o = Options::from_env("grpcs://h:1", env).unwrap();
        assert_eq!(o.token.as_deref(), Some("s3cret-token"));
        assert!(!format!("{o:?}").contains("s3cret"), "{o:?}");
        let plain = Options::from_env("grpc://h:1", env).unwrap();
        assert!(matches!(Client::connect(&plain), Err(Error::BadUrl { .. })));
    }

    #[test]
    fn urls_carry_no_credentials() {
        for url in [
            "http://h:1",
            "grpc://",
            "grpc://user:pw@h:1",
            "grpc://h:1/path",
        ] {
            assert!(
                matches!(
                    Client::connect(&Options::new(url)),
                    Err(Error::BadUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(Client::connect(&Options::new("grpc://127.0.0.1:1")).is_ok());
    }

    #[test]
    fn a_server_that_is_down_is_unreachable_not_a_miss() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut o = Options::new(&format!("grpc://127.0.0.1:{port}"));
        o.retries = 1;
        let c = Client::connect(&o).unwrap();
        let e = c.get_action_result(&BlobDigest::of(b"x")).unwrap_err();
        assert!(e.is_unreachable(), "{e}");
    }
}
