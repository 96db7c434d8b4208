//! Deterministic parallel gzip: one gzip member whose deflate stream is cut
//! into fixed-size chunks compressed independently on the rayon pool, the way
//! pigz does it.
//!
//! Why: deflate runs at about 30 MB/s per core, so a large layer compressed on
//! one core leaves the other cores idle while everything else (tar, sha256,
//! blake3) runs at GB/s. Why it stays reproducible: the input is cut at fixed
//! offsets ([`CHUNK`] bytes), whatever the sizes of the writes; each chunk is
//! deflated by a fresh compressor primed with the 32 KiB of input before it
//! (the previous chunk's tail, as pigz does, which keeps the ratio within a
//! fraction of a percent of one long stream); every chunk but the last ends
//! with a sync flush (an empty stored block, so it ends on a byte boundary),
//! and the last with the final block. A chunk whose bytes are already as
//! dense as compressed data is stored rather than deflated (see
//! `looks_incompressible`): deflate would spend as long on it as on text and
//! gain nothing. Chunk `i`'s bytes are therefore a function of the input
//! alone, and the concatenation is one valid deflate stream. Which thread
//! compresses a chunk, and how many threads there are, never reaches the
//! output.
//!
//! The gzip header carries no name and mtime 0, OS byte 255 ("unknown", as Go's
//! compress/gzip writes); the trailer is the CRC-32 of all input (per-chunk
//! CRCs computed in parallel, combined in order) and its size mod 2^32.
//!
//! Why 128 KiB chunks (pigz's default): with the dictionary they compress as
//! well as 1 MiB ones (on the bench corpus, no larger), a layer of
//! a few hundred KiB already uses every core, and the store rule finds the
//! edges of incompressible runs more closely.
//!
//! Memory: at most `4 x threads` chunks are in flight (input and output
//! buffers); when that many are, the writing thread compresses a waiting chunk
//! itself, so a pool of one thread, or a pool busy with other layers, never
//! stalls the writer (and cannot deadlock it). Chunks are compressed by at
//! most `threads - 1` helper tasks per writer, which take waiting chunks in
//! order until none are left.
//!
//! Invariants: the output depends only on the input bytes, [`CHUNK`], the
//! dictionary size, the store rule and the level (and the zlib-rs version),
//! which [`crate::Compression::identity`] names; writes are
//! forwarded to the inner writer in order, from the thread that owns the
//! writer.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use flate2::{Compress, Crc, FlushCompress};

/// The chunk size: part of the output contract (see [`crate::Compression::identity`]).
pub const CHUNK: usize = 128 << 10;

/// How much of the preceding input primes each chunk's compressor: the whole
/// deflate window. Part of the output contract.
pub const DICT: usize = 32 << 10;

/// A gzip writer that compresses in parallel on the current rayon pool.
///
/// Call [`finish`](ParGzWriter::finish) to write the last chunk and the
/// trailer; dropping the writer without it leaves a truncated stream.
pub struct ParGzWriter<W: Write> {
    inner: W,
    level: u32,
    /// The chunk being filled; dispatched only once more input arrives, so
    /// that the last chunk is known when [`finish`](ParGzWriter::finish) runs.
    buf: Vec<u8>,
    /// The tail of the previous chunk: the next chunk's dictionary.
    dict: Vec<u8>,
    /// Chunks dispatched and not yet written, in stream order.
    queue: VecDeque<Arc<Slot>>,
    /// Chunks nobody has started, shared with the helper tasks.
    waiting: WaitingHandle,
    /// Helper tasks at most: one fewer than the pool's threads, since this
    /// thread compresses too when the chunks in flight pile up.
    max_helpers: usize,
    /// Buffers of chunks already written, for reuse.
    free: Vec<Vec<u8>>,
    crc: Crc,
    max_in_flight: usize,
    header_done: bool,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, level: u32) -> ParGzWriter<W> {
        ParGzWriter {
            inner,
            level: level.min(9),
            buf: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            queue: VecDeque::new(),
            waiting: WaitingHandle(Arc::new(Waiting::default())),
            max_helpers: rayon::current_num_threads().saturating_sub(1),
            free: Vec::new(),
            crc: Crc::new(),
            max_in_flight: 4 * rayon::current_num_threads().max(1),
            header_done: false,
        }
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.dispatch(true)?;
        self.drain(0)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        Ok(self.inner)
    }

    fn header(&mut self) -> io::Result<()> {
        if self.header_done {
            return Ok(());
        }
        // XFL as gzip and flate2 set it: 2 for the slowest level, 4 for the fastest.
        let xfl = match self.level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        self.inner
            .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        self.header_done = true;
        Ok(())
    }

    /// Sends the current chunk off to be compressed by a helper task on the
    /// pool, or by this thread in [`drain`](Self::drain).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let next = self.free.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let data = std::mem::replace(&mut self.buf, next);
        let dict = std::mem::take(&mut self.dict);
        if !last {
            let mut tail = Vec::with_capacity(DICT);
            tail.extend_from_slice(&data[data.len().saturating_sub(DICT)..]);
            self.dict = tail;
        }
        let slot = Arc::new(Slot::new(Job {
            data,
            dict,
            level: self.level,
            last,
        }));
        self.queue.push_back(Arc::clone(&slot));
        // A task per helper, not per chunk: a task queued on a busy pool
        // lingers, and thousands of them (one per chunk of a large layer
        // on a one-thread pool) fragment the heap into hundreds of MiB.
        let spawn = {
            let mut w = self.waiting.0.lock();
            w.slots.push_back(slot);
            let spawn = !last && w.helpers < self.max_helpers;
            if spawn {
                w.helpers += 1;
            }
            spawn
        };
        if spawn {
            let waiting = Arc::clone(&self.waiting.0);
            rayon::spawn(move || waiting.help());
        }
        self.drain(self.max_in_flight)
    }

    /// Writes finished chunks in order until at most `keep` are in flight,
    /// compressing waiting chunks on this thread rather than idling.
    fn drain(&mut self, keep: usize) -> io::Result<()> {
        loop {
            while let Some(done) = self.queue.front().and_then(|s| s.take_done()) {
                self.queue.pop_front();
                let done = done?;
                self.inner.write_all(&done.deflate)?;
                self.crc.combine(&done.crc);
                let mut data = done.data;
                data.clear();
                self.free.push(data);
            }
            if self.queue.len() <= keep {
                return Ok(());
            }
            // Compress the oldest chunk nobody has started; if every chunk
            // is being compressed elsewhere, wait for the oldest one.
            let next = self.waiting.0.lock().slots.pop_front();
            match next {
                Some(slot) => {
                    slot.run();
                }
                None => {
                    if let Some(front) = self.queue.front() {
                        front.wait();
                    }
                }
            }
        }
    }
}

/// The writer's side of its [`Waiting`] chunks: a writer dropped unfinished
/// (its layer failed) leaves nothing for its helpers to compress.
struct WaitingHandle(Arc<Waiting>);

impl Drop for WaitingHandle {
    fn drop(&mut self) {
        self.0.lock().slots.clear();
    }
}

/// The chunks of one writer that nobody has started, and its helper tasks.
#[derive(Default)]
struct Waiting {
    state: Mutex<WaitingState>,
}

#[derive(Default)]
struct WaitingState {
    slots: VecDeque<Arc<Slot>>,
    helpers: usize,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A helper task: compresses waiting chunks until there are none.
    fn help(&self) {
        loop {
            let next = {
                let mut w = self.lock();
                match w.slots.pop_front() {
                    Some(slot) => slot,
                    None => {
                        // Under the lock, so the writer sees the count drop
                        // before it decides whether to start another helper.
                        w.helpers -= 1;
                        return;
                    }
                }
            };
            next.run();
        }
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        self.header()?;
        if self.buf.len() == CHUNK {
            self.dispatch(false)?;
        }
        let n = (CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Only flushes the inner writer: flushing the compressor would cut the
    /// stream at a place that depends on the caller, not on the data.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One chunk to compress.
struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    level: u32,
    last: bool,
}

/// One compressed chunk, with its input buffer returned for reuse.
struct Done {
    deflate: Vec<u8>,
    crc: Crc,
    data: Vec<u8>,
}

enum State {
    Waiting(Job),
    Running,
    Done(io::Result<Done>),
    Taken,
}

/// A chunk's place in the queue, shared by the writer and the pool task.
struct Slot {
    state: Mutex<State>,
    finished: Condvar,
}

impl Slot {
    fn new(job: Job) -> Slot {
        Slot {
            state: Mutex::new(State::Waiting(job)),
            finished: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock is never held across a panic point that leaves the state
        // torn: the job is taken out before compressing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Compresses the chunk if nobody has started it; false if somebody had.
    fn run(&self) -> bool {
        let job = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Running) {
                State::Waiting(job) => job,
                other => {
                    *state = other;
                    return false;
                }
            }
        };
        let done = compress_chunk(job);
        *self.lock() = State::Done(done);
        self.finished.notify_all();
        true
    }

    /// The result, if the chunk is compressed.
    fn take_done(&self) -> Option<io::Result<Done>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(done) => Some(done),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Blocks until the chunk is done. Only for a chunk another thread has
    /// taken from the waiting queue: it may not have started it yet.
    fn wait(&self) {
        let mut state = self.lock();
        while matches!(*state, State::Waiting(_) | State::Running) {
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Whether a chunk's bytes are so evenly spread that deflate cannot gain
/// more than about 1% on it: compressed or encrypted data (jars, zips,
/// images). Deflate spends as long on such data as on text, and ends up
/// writing stored blocks anyway, so the chunk is stored (level 0) at once.
///
/// The test is the chi-square statistic of the byte histogram against the
/// uniform one, in exact integer arithmetic so that every machine decides
/// alike: `chi2 < n / 10` bounds the order-0 entropy deficit below 0.072
/// bits per byte (`chi2 / (2 n ln 2)`), i.e. Huffman coding alone could save
/// under 0.9%. What it cannot see is repetition within deflate's 32 KiB window
/// in otherwise uniform bytes; such data is rare enough to accept storing it.
/// Part of the output contract (see [`crate::Compression::identity`]).
fn looks_incompressible(data: &[u8]) -> bool {
    // Small chunks say too little; only the last chunk can be small.
    if data.len() < 64 << 10 {
        return false;
    }
    // Four histograms, so runs of one byte do not serialise on one counter.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        counts[0][q[0] as usize] += 1;
        counts[1][q[1] as usize] += 1;
        counts[2][q[2] as usize] += 1;
        counts[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        counts[0][b as usize] += 1;
    }
    let counts = (0..256).map(|i| counts.iter().map(|h| u64::from(h[i])).sum::<u64>());
    let n = data.len() as u128;
    // chi2 = sum((c - n/256)^2 / (n/256)) = sum((256c - n)^2) / (256 n)
    let sum: u128 = counts
        .map(|c| {
            let d = (256 * c as u128).abs_diff(n);
            d * d
        })
        .sum();
    // chi2 < n / 10  <=>  10 * sum < 256 n^2
    10 * sum < 256 * n * n
}

/// Raw deflate of one chunk: primed with its dictionary, ended by a sync flush
/// (or the final block for the last chunk).
fn compress_chunk(job: Job) -> io::Result<Done> {
    let Job {
        data,
        dict,
        level,
        last,
    } = job;
    let mut crc = Crc::new();
    crc.update(&data);
    let level = if looks_incompressible(&data) {
        0
    } else {
        level
    };
    // A new compressor per chunk, never a reset one: zlib-rs's reset keeps
    // the old window and hash chains, which can change the matches found,
    // and so the bytes would depend on which chunks a thread did before
    // (the thread-count test catches it). A new one zeroes its ~300 KiB
    // state, about 1% of the time to deflate a chunk.
    let mut c = Compress::new(flate2::Compression::new(level), false);
    deflate(&mut c, data, &dict, last).map(|(deflate, data)| Done { deflate, crc, data })
}

/// Deflates `data` with a new compressor `c`, primed with `dict`.
fn deflate(
    c: &mut Compress,
    data: Vec<u8>,
    dict: &[u8],
    last: bool,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Enough for incompressible data (stored blocks add 5 bytes per 64 KiB)
    // plus the flush markers, so one call usually does it all.
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        // The flush is complete once it returns with output space to spare
        // (zlib's rule), or, when finishing, once the stream has ended.
        let flushed = if last {
            status == flate2::Status::StreamEnd
        } else {
            out.len() < out.capacity()
        };
        if all_in && flushed {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    Ok((out, data))
}
