//! `--remote-cache grpcs://` against a real BuildGrid serving TLS with a
//! certificate this test makes (openssl, into a temporary directory) and
//! checking bearer tokens (JWTs signed with a secret, made with the PyJWT
//! that BuildGrid's virtualenv holds). strata gets the CA and the token the
//! documented way, from `STRATA_REMOTE_CA` and `STRATA_REMOTE_TOKEN_FILE`,
//! never on the command line. A wrong CA, or no token, is one warning and
//! a local build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata::reapi::Options;

use crate::remote_api::{BuildGrid, GridConfig};
use crate::support::{have, run_ok};

/// Make a CA (`NAME-ca.pem`, its key beside it) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(format!("{name}-ca.key"));
    let cert = dir.join(format!("{name}-ca.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", &format!("/CN=strata test CA {name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    cert
}

/// A server key and certificate for 127.0.0.1 signed by the CA at `ca`.
fn make_server_cert(dir: &Path, ca: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(ca)
            .arg("-CAkey")
            .arg(ca.with_extension("key"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    (key, cert)
}

/// A JWT (HS256, an hour long) signed with `secret`, made by PyJWT from
/// BuildGrid's virtualenv (the `python3` beside `bgd`).
fn make_token(bgd: &Path, secret: &str) -> String {
    let python = bgd.with_file_name("python3");
    let python = if python.is_file() {
        python
    } else {
        PathBuf::from("python3")
    };
    let out = run_ok(Command::new(python).args([
        "-c",
        "import jwt, sys, time; print(jwt.encode({'sub': 'strata-test', 'exp': int(time.time()) + 3600}, sys.argv[1], algorithm='HS256'))",
        secret,
    ]));
    out.trim().to_owned()
}

/// `strata ARGS` with the cache `cache` and the variables `env`.
fn strata_env(dir: &Path, cache: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(crate::support::strata_bin());
    cmd.args(args)
        .current_dir(dir)
        .env("STRATA_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("NO_COLOR", "1");
    for v in strata::reapi::ENV_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run strata")
}

fn remotes(out: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "compose --json ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["images"][0]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["remote"].as_str().unwrap_or("none").to_owned())
        .collect()
}

#[test]
fn a_tls_remote_cache_with_a_token_shares_layers_and_a_wrong_ca_builds_locally() {
    const TEST: &str = "a_tls_remote_cache_with_a_token";
    let Some(bgd) = crate::remote_api::bgd(TEST) else {
        return;
    };
    if !have("openssl", TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let ca = make_ca(&pki, "good");
    let other_ca = make_ca(&pki, "other");
    let (key, cert) = make_server_cert(&pki, &ca);
    let secret = "strata-test-secret-of-32-bytes!!";
    let secret_file = pki.join("jwt.secret");
    std::fs::write(&secret_file, secret).unwrap();
    let token_file = pki.join("token");
    std::fs::write(&token_file, make_token(&bgd, secret)).unwrap();
    let token = std::fs::read_to_string(&token_file).unwrap();

    let grid = BuildGrid::start_with(
        &bgd,
        &dir.join("grid"),
        &GridConfig {
            tls: Some((&key, &cert)),
            jwt_secret: Some(&secret_file),
            ..Default::default()
        },
        |url| {
            let mut o = Options::new(url);
            o.ca_cert = Some(ca.clone());
            o.token = Some(token.trim().to_owned());
            o
        },
    );
    assert!(grid.url.starts_with("grpcs://"), "{}", grid.url);
    let spec = crate::remote_api::spec_dir(&dir.join("a"));
    let spec_s = spec.to_str().unwrap();
    let compose = |m: &str, env: &[(&str, &Path)]| {
        strata_env(
            dir,
            &dir.join(format!("cache-{m}")),
            env,
            &[
                "compose",
                spec_s,
                "-o",
                dir.join(format!("out-{m}")).to_str().unwrap(),
                "--json",
                "--remote-cache",
                &grid.url,
            ],
        )
    };
    let good = [
        ("STRATA_REMOTE_CA", ca.as_path()),
        ("STRATA_REMOTE_TOKEN_FILE", token_file.as_path()),
    ];
    // Machine A fills the cache over TLS, with the token.
    let a = compose("a", &good);
    let stderr = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["remote_cache_pushed"], 2, "{v}");
    // Machine B reads every layer from it.
    let b = compose("b", &good);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert!(remotes(&b).iter().all(|r| r == "hit"), "{:?}", remotes(&b));
    assert_eq!(
        crate::support::tree_bytes(&dir.join("out-a")),
        crate::support::tree_bytes(&dir.join("out-b"))
    );
    // A CA that did not sign the server's certificate: one warning, and
    // the layers build locally.
    let wrong_ca = compose(
        "c",
        &[
            ("STRATA_REMOTE_CA", other_ca.as_path()),
            ("STRATA_REMOTE_TOKEN_FILE", token_file.as_path()),
        ],
    );
    let stderr = String::from_utf8_lossy(&wrong_ca.stderr);
    assert!(wrong_ca.status.success(), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    assert!(stderr.contains("remote cache unreachable"), "{stderr}");
    assert!(
        remotes(&wrong_ca).iter().all(|r| r == "miss"),
        "{:?}",
        remotes(&wrong_ca)
    );
    // The right CA and no token: the server refuses us, which is one
    // warning too (the server checks the token; it is not just sent).
    let no_token = compose("d", &[("STRATA_REMOTE_CA", ca.as_path())]);
    let stderr = String::from_utf8_lossy(&no_token.stderr);
    assert!(no_token.status.success(), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    assert!(
        remotes(&no_token).iter().all(|r| r == "miss"),
        "{:?}",
        remotes(&no_token)
    );
    // A token that is not the server's (signed with another secret): the same.
    let forged = pki.join("forged");
    std::fs::write(
        &forged,
        make_token(&bgd, "another-secret-of-32-bytes-long!"),
    )
    .unwrap();
    let forged_out = compose(
        "e",
        &[
            ("STRATA_REMOTE_CA", ca.as_path()),
            ("STRATA_REMOTE_TOKEN_FILE", forged.as_path()),
        ],
    );
    let stderr = String::from_utf8_lossy(&forged_out.stderr);
    assert!(forged_out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    assert!(
        remotes(&forged_out).iter().all(|r| r == "miss"),
        "{:?}",
        remotes(&forged_out)
    );
}
