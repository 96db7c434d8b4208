//! Resolves package sets against a real repository and prints each set's
//! packages, one `name=version` per line: for comparing with `apt-get -s`.
//!
//! `cargo run -p strata-deb --example resolve -- URL SUITE KEYRING CACHE 'set1 pkgs' 'set2 pkgs'...`

use std::path::Path;

use strata_deb::Keyring;
use strata_deb::repo::{Fetcher, Repository, Source};
use strata_deb::resolve::{self, Request, Universe};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, suite, keyring, cache, sets @ ..] = args.as_slice() else {
        return Err("usage: resolve URL SUITE KEYRING CACHE SETS...".into());
    };
    let keyring = Keyring::from_bytes(keyring, &std::fs::read(keyring)?)?;
    let source = Source {
        url: url.clone(),
        suite: suite.clone(),
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
    };
    let t = std::time::Instant::now();
    let repo = Repository::open(&source, &keyring, &mut Fetcher::new(Path::new(cache))?)?;
    eprintln!(
        "opened {} packages in {:?}",
        repo.packages.len(),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let u = Universe::new(repo.packages, "amd64");
    eprintln!("indexed in {:?}", t.elapsed());
    for set in sets {
        let reqs: Vec<Request> = set
            .split_whitespace()
            .map(Request::parse)
            .collect::<Result<_, _>>()?;
        let t = std::time::Instant::now();
        match resolve::resolve(&u, &[], &reqs) {
            Ok(r) => {
                eprintln!("{set}: {} packages in {:?}", r.packages.len(), t.elapsed());
                println!("# {set}");
                for p in r.packages {
                    println!("{}={}", p.name, p.version);
                }
            }
            Err(e) => {
                println!("# {set}\nERROR {e}");
            }
        }
    }
    Ok(())
}
