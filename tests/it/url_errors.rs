//! `add` of a URL that cannot be fetched (issue 19): a server that answers
//! 404, a server that is down, and a file that does not match its
//! checksum are failed builds, exit 5 as the README documents for what
//! the spec asked for, located at the `add` in the spec.

use crate::docker_settings::{serve, sha256_hex};
use crate::support::compose_spec;

fn compose_fails(url: &str, sum: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    compose_spec(
        tmp.path(),
        &format!(
            "image app {{\n    layer fetched {{\n        add \"{url}\" to=\"/opt/\" checksum=\"sha256:{sum}\"\n    }}\n}}\n"
        ),
    )
}

#[test]
fn a_url_that_cannot_be_fetched_is_a_located_failed_build() {
    let body = b"tool\n".to_vec();
    let sum = sha256_hex(&body);
    let (port, _) = serve(vec![("/tool", body)]);

    // 404.
    let url = format!("http://127.0.0.1:{port}/missing");
    let (code, err) = compose_fails(&url, &sum);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains(&format!("cannot fetch {url}")), "{err}");
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("s.kdl:3:13"), "located at the URL: {err}");

    // A server that is down: a port nothing listens on.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{down}/tool");
    let (code, err) = compose_fails(&url, &sum);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains(&format!("cannot fetch {url}")), "{err}");
    assert!(err.contains("s.kdl:3:13"), "{err}");

    // A checksum that does not match.
    let url = format!("http://127.0.0.1:{port}/tool");
    let (code, err) = compose_fails(&url, &"0".repeat(64));
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains(&sum) && err.contains("s.kdl:3:13"), "{err}");
}
