//! A layer blob fetched from a remote cache and checked while it arrives:
//! the thread that reads it from the server hashes it (its CAS digest) and
//! writes it to the cache blob, and hands each chunk over a bounded channel
//! to a second thread that decompresses it, hashes the tar (the diff_id)
//! and lists its files. The bytes are read once, from memory, and the two
//! halves of the check run on two cores rather than one after the other
//! (the decompression alone was a fifth of a fresh machine's warm compose).
//!
//! Invariants: every check a fetched blob had before still runs, and in the
//! same order of precedence (a blob whose bytes are not its digest is
//! refused as that, whatever its tar holds); memory is bounded by
//! [`QUEUE`] chunks per fetch; a check that fails early stops the download.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use strata_cache::{BlobWriter, LayerRecord};
use strata_reapi::{BlobDigest, Client};

use crate::Error;

/// Chunks (of at most a ByteStream chunk, 1 MiB) queued between the two
/// threads: with four fetches in flight, 16 MiB at most (at 8, a fresh
/// compose of the bench's spec peaked at 125 MiB against 83 MiB before).
const QUEUE: usize = 4;

/// Read blob `d` from `client` into `blob`, checking it against `record`
/// (its tar hashes to the diff_id and holds the listing) on another thread
/// as it arrives. `key` and `source` name the layer and where it came from
/// in errors.
pub(crate) fn fetch_checked(
    client: &Client,
    d: &BlobDigest,
    blob: &mut BlobWriter,
    key: &str,
    record: &LayerRecord,
    source: &str,
) -> Result<(), Error> {
    let path = blob.path().to_path_buf();
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
    let (read, checked) = std::thread::scope(|s| {
        let checker = std::thread::Builder::new()
            .name("strata-check".into())
            .spawn_scoped(s, || {
                crate::remote_cache::check_fetched_stream(
                    key,
                    record,
                    ChannelReader::new(rx),
                    &path,
                    source,
                )
            });
        let checker = match checker {
            Ok(c) => c,
            Err(e) => {
                return (
                    Err(Error::Workers(format!("cannot start a check thread: {e}"))),
                    Ok(()),
                );
            }
        };
        let mut tee = Tee {
            sink: &mut *blob,
            tx: Some(tx),
        };
        let read = client
            .read(d, &mut tee)
            .map_err(Error::from)
            .and_then(|()| {
                tee.flush().map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })
            });
        // The end of the stream for the checker.
        drop(tee);
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err(Error::Workers("the check thread panicked".into())));
        (read, checked)
    });
    match (read, checked) {
        // The checker stopped first (a bad tar), and the download with it:
        // its reason is the one to give.
        (Err(Error::Remote(strata_reapi::Error::Sink { .. })), Err(c)) => Err(c),
        (Err(e), _) => Err(e),
        (Ok(()), checked) => checked,
    }
}

/// Writes to the cache blob and queues a copy for the checker.
struct Tee<'a> {
    sink: &'a mut BlobWriter,
    /// `None` once the stream is closed.
    tx: Option<SyncSender<Vec<u8>>>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.sink.write(buf)?;
        if let Some(tx) = &self.tx
            && tx.send(buf[..n].to_vec()).is_err()
        {
            self.tx = None;
            return Err(io::Error::other("the blob's check stopped"));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// Reads the chunks a [`Tee`] queued, in order, until it is dropped.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(rx: Receiver<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next;
                    self.at = 0;
                }
                // The sender is gone: the end of the blob.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.chunk.len());
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.fill_buf()?;
        let n = buf.len().min(got.len());
        buf[..n].copy_from_slice(&got[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_reader_gives_the_chunks_in_order_then_the_end() {
        let (tx, rx) = sync_channel(2);
        let writer = std::thread::spawn(move || {
            for c in [&b"ab"[..], b"", b"cde", b"f"] {
                tx.send(c.to_vec()).unwrap();
            }
        });
        let mut out = Vec::new();
        ChannelReader::new(rx).read_to_end(&mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(out, b"abcdef");
    }
}
