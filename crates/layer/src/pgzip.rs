//! Deterministic parallel gzip: the input cut into fixed-size chunks, each
//! compressed on the rayon pool into a gzip member of its own, the members
//! concatenated (a multi-member gzip file, RFC 1952 §2.2, as eStargz layers
//! and `pigz --independent` write them).
//!
//! Why libdeflate, and why members: libdeflate deflates about twice as fast
//! as zlib (zlib-rs) at the same size (measured on the Debian tomcat corpus of
//! `cargo xtask bench --only real`; ISA-L's `isal-sys` was not usable, as its
//! build needs autotools and nasm, which a fresh machine lacks). libdeflate
//! compresses whole buffers only: it can neither prime a chunk with the
//! previous chunk's tail nor end one with a sync flush, so the chunks cannot
//! be one deflate stream as pigz makes them. Each chunk is therefore a gzip
//! member of its own; every gzip reader (GNU gzip, Python's `gzip`, Go's
//! `compress/gzip` in docker, containerd, podman, skopeo, buildah and umoci,
//! flate2's `MultiGzDecoder`) reads the members as one stream (tested in
//! `tests/it/multi_member.rs`). Without the dictionary a chunk compresses a
//! little worse, which the larger chunks ([`CHUNK`], 1 MiB rather than pigz's
//! 128 KiB) win back: on the corpus 0.15% larger than one long libdeflate
//! stream, 1% smaller than 128 KiB chunks.
//!
//! Why it stays reproducible: the input is cut at fixed offsets ([`CHUNK`]
//! bytes), whatever the sizes of the writes; libdeflate's output is a pure
//! function of its input buffer and level (no state carries from one call to
//! the next, so a compressor reused by a thread is as a new one). A chunk
//! whose bytes are already as dense as compressed data is stored rather than
//! deflated (see `looks_incompressible`): deflate would spend as long on it as
//! on text and gain nothing. Chunk `i`'s member is therefore a function of the
//! input alone. Which thread compresses a chunk, and how many threads there
//! are, never reaches the output.
//!
//! Each member's header carries no name and mtime 0, OS byte 255 ("unknown",
//! as Go's compress/gzip writes); its trailer the CRC-32 and size of the chunk.
//! An empty input is one empty member.
//!
//! Memory: at most `2 x threads + 2` chunks are in flight (input and output
//! buffers, about 2 MiB each); when that many are, the writing thread
//! compresses a waiting chunk itself, so a pool of one thread, or a pool busy
//! with other layers, never stalls the writer (and cannot deadlock it). Chunks
//! are compressed by at most `threads - 1` helper tasks per writer, which take
//! waiting chunks in order until none are left.
//!
//! Invariants: the output depends only on the input bytes, [`CHUNK`], the
//! store rule and the level (and the libdeflate version), which
//! [`crate::Compression::identity`] names; writes are forwarded to the inner
//! writer in order, from the thread that owns the writer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use libdeflater::{CompressionLvl, Compressor};

/// The chunk size: part of the output contract (see [`crate::Compression::identity`]).
pub const CHUNK: usize = 1 << 20;

/// A gzip writer that compresses in parallel on the current rayon pool.
///
/// Call [`finish`](ParGzWriter::finish) to write the last member; dropping
/// the writer without it leaves a truncated stream.
pub struct ParGzWriter<W: Write> {
    inner: W,
    level: u32,
    /// The chunk being filled; dispatched only once more input arrives, so
    /// that the last chunk is known when [`finish`](ParGzWriter::finish) runs.
    buf: Vec<u8>,
    /// Chunks dispatched and not yet written, in stream order.
    queue: VecDeque<Arc<Slot>>,
    /// Chunks nobody has started, shared with the helper tasks.
    waiting: WaitingHandle,
    /// Helper tasks at most: one fewer than the pool's threads, since this
    /// thread compresses too when the chunks in flight pile up.
    max_helpers: usize,
    /// Buffers of chunks already written, for reuse.
    free: Vec<Vec<u8>>,
    max_in_flight: usize,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, level: u32) -> ParGzWriter<W> {
        ParGzWriter {
            inner,
            level: level.min(9),
            buf: Vec::new(),
            queue: VecDeque::new(),
            waiting: WaitingHandle(Arc::new(Waiting::default())),
            max_helpers: rayon::current_num_threads().saturating_sub(1),
            free: Vec::new(),
            max_in_flight: 2 * rayon::current_num_threads().max(1) + 2,
        }
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        self.drain(0)?;
        Ok(self.inner)
    }

    /// Sends the current chunk off to be compressed by a helper task on the
    /// pool, or by this thread in [`drain`](Self::drain).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let next = if last {
            Vec::new()
        } else {
            self.free.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK))
        };
        let data = std::mem::replace(&mut self.buf, next);
        let slot = Arc::new(Slot::new(Job {
            data,
            level: self.level,
        }));
        self.queue.push_back(Arc::clone(&slot));
        // A task per helper, not per chunk: a task queued on a busy pool
        // lingers, and thousands of them (one per chunk of a large layer
        // on a one-thread pool) fragment the heap.
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
                self.inner.write_all(&done.member)?;
                let mut data = done.data;
                data.clear();
                if data.capacity() >= CHUNK {
                    self.free.push(data);
                }
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
        if self.buf.len() == CHUNK {
            self.dispatch(false)?;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(CHUNK);
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
    level: u32,
}

/// One compressed chunk, a whole gzip member, with its input buffer returned
/// for reuse.
struct Done {
    member: Vec<u8>,
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

thread_local! {
    /// This thread's compressors by level (the spec's, and 0 for stored
    /// chunks): allocating one costs about as much as deflating 100 KiB, and
    /// its output does not depend on what it compressed before.
    static COMPRESSORS: RefCell<Vec<(u32, Compressor)>> = const { RefCell::new(Vec::new()) };
}

/// The header of every member: no flags, mtime 0, XFL as gzip sets it (2 for
/// the slowest level, 4 for the fastest), OS 255.
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// One chunk as a gzip member: header, raw deflate (stored if the chunk
/// looks incompressible), CRC-32 and size.
fn compress_chunk(job: Job) -> io::Result<Done> {
    let Job { data, level } = job;
    let level = if looks_incompressible(&data) {
        0
    } else {
        level
    };
    let member = COMPRESSORS.with(|c| -> io::Result<Vec<u8>> {
        let mut c = c.borrow_mut();
        let at = match c.iter().position(|(l, _)| *l == level) {
            Some(at) => at,
            None => {
                let lvl = CompressionLvl::new(level as i32)
                    .map_err(|e| io::Error::other(format!("gzip level {level}: {e:?}")))?;
                c.push((level, Compressor::new(lvl)));
                c.len() - 1
            }
        };
        let compressor = &mut c[at].1;
        let bound = compressor.deflate_compress_bound(data.len());
        let mut member = vec![0u8; 10 + bound + 8];
        member[..10].copy_from_slice(&header(level));
        let n = compressor
            .deflate_compress(&data, &mut member[10..10 + bound])
            .map_err(|e| io::Error::other(format!("deflate: {e:?}")))?;
        member.truncate(10 + n);
        member.extend_from_slice(&libdeflater::crc32(&data).to_le_bytes());
        // A chunk is at most 1 MiB: its size fits ISIZE (size mod 2^32).
        member.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(member)
    })?;
    Ok(Done { member, data })
}
