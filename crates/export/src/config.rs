//! The image configuration as strata resolves it, and its OCI image config JSON.
//!
//! The config is built with `oci-spec`'s builders and written with the
//! canonical formatter of [`crate::canon`]: `oci-spec` keeps labels, exposed
//! ports and volumes in `HashMap`s, so its own serializer would give a different
//! byte string (and so a different config digest) on every run.

use oci_spec::image::{
    Arch, Config, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os,
    RootFsBuilder,
};

pub use strata_oci::ImageConfig;

use crate::{Error, LayerDesc};

/// The OCI image configuration of an image with these layers (in order, lowest
/// first): `rootfs.diff_ids` from their diff_ids, one history entry per layer.
///
/// `image` names the image in error messages.
pub fn image_configuration(
    config: &ImageConfig,
    layers: &[LayerDesc],
    image: &str,
) -> Result<ImageConfiguration, Error> {
    let invalid = |reason: String| Error::BadImage {
        image: image.to_owned(),
        reason,
    };
    if config.os.is_empty() {
        return Err(invalid("no os in the image config".to_owned()));
    }
    if config.architecture.is_empty() {
        return Err(invalid("no architecture in the image config".to_owned()));
    }
    let created = rfc3339(config.created).ok_or_else(|| {
        invalid(format!(
            "created time {} is past the year 9999",
            config.created
        ))
    })?;

    let history = layers
        .iter()
        .map(|layer| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(layer.created_by.clone())
                .build()
                .map_err(|e| invalid(format!("history entry: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|layer| layer.desc.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|e| invalid(format!("rootfs: {e}")))?;

    let mut builder = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(config.architecture.as_str()))
        .os(Os::from(config.os.as_str()))
        .config(runtime_config(config).map_err(|e| invalid(format!("config: {e}")))?)
        .rootfs(rootfs);
    if !history.is_empty() {
        builder = builder.history(history);
    }
    if let Some(author) = &config.author {
        builder = builder.author(author.clone());
    }
    if let Some(variant) = &config.variant {
        builder = builder.variant(variant.clone());
    }
    builder.build().map_err(|e| invalid(e.to_string()))
}

/// The `config` object: every empty field is left out, so that an unset
/// setting never shows up as `"Env": null` or `"Volumes": {}`.
fn runtime_config(config: &ImageConfig) -> Result<Config, oci_spec::OciSpecError> {
    let mut b = ConfigBuilder::default();
    if let Some(user) = &config.user {
        b = b.user(user.clone());
    }
    if !config.exposed_ports.is_empty() {
        b = b.exposed_ports(config.exposed_ports.iter().cloned().collect::<Vec<_>>());
    }
    if !config.env.is_empty() {
        b = b.env(config.env.clone());
    }
    if let Some(entrypoint) = &config.entrypoint {
        b = b.entrypoint(entrypoint.clone());
    }
    if let Some(cmd) = &config.cmd {
        b = b.cmd(cmd.clone());
    }
    if !config.volumes.is_empty() {
        b = b.volumes(config.volumes.iter().cloned().collect::<Vec<_>>());
    }
    if let Some(workdir) = &config.workdir {
        b = b.working_dir(workdir.clone());
    }
    if !config.labels.is_empty() {
        b = b.labels(crate::manifest::hash_map(&config.labels));
    }
    if let Some(signal) = &config.stop_signal {
        b = b.stop_signal(signal.clone());
    }
    b.build()
}

/// The image config JSON, canonical (RFC 8785) bytes.
pub fn config_json(
    config: &ImageConfig,
    layers: &[LayerDesc],
    image: &str,
) -> Result<Vec<u8>, Error> {
    let value = image_configuration(config, layers, image)?;
    let bad = |e: &dyn std::fmt::Display| Error::BadImage {
        image: image.to_owned(),
        reason: format!("writing the config json: {e}"),
    };
    if config.healthcheck.is_none() && config.shell.is_none() {
        return crate::canon::to_vec(&value).map_err(|e| bad(&e));
    }
    let mut json = serde_json::to_value(&value).map_err(|e| bad(&e))?;
    if let Some(run) = json.get_mut("config").and_then(|c| c.as_object_mut()) {
        docker_fields(config, run);
    }
    crate::canon::to_vec(&json).map_err(|e| bad(&e))
}

/// The fields of Docker's config that the OCI image spec (and so
/// `oci-spec`) lacks, as Docker writes them: `Healthcheck` with its
/// durations in nanoseconds and every zero field left out, and `Shell`.
fn docker_fields(config: &ImageConfig, run: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::json;
    if let Some(h) = &config.healthcheck {
        let mut o = serde_json::Map::new();
        o.insert("Test".to_owned(), json!(h.test));
        for (key, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
        ] {
            if let Some(v) = v.filter(|&v| v > 0) {
                o.insert(key.to_owned(), json!(v));
            }
        }
        if let Some(r) = h.retries.filter(|&r| r > 0) {
            o.insert("Retries".to_owned(), json!(r));
        }
        run.insert("Healthcheck".to_owned(), serde_json::Value::Object(o));
    }
    if let Some(shell) = &config.shell {
        run.insert("Shell".to_owned(), json!(shell));
    }
}

/// Docker's fields of a config's `config` object that `oci-spec` drops
/// when it reads one (see [`docker_fields`]): `(healthcheck, shell)`, each
/// `None` when absent or not of Docker's shape.
pub fn read_docker_fields(
    config_json: &[u8],
) -> (Option<strata_oci::Healthcheck>, Option<Vec<String>>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(config_json) else {
        return (None, None);
    };
    let Some(run) = v.get("config") else {
        return (None, None);
    };
    let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let health = run.get("Healthcheck").and_then(|h| {
        let test = strings(h.get("Test")?)?;
        if test.is_empty() {
            return None;
        }
        let ns = |k: &str| {
            h.get(k)
                .and_then(serde_json::Value::as_u64)
                .filter(|&n| n > 0)
        };
        Some(strata_oci::Healthcheck {
            test,
            interval: ns("Interval"),
            timeout: ns("Timeout"),
            start_period: ns("StartPeriod"),
            retries: h
                .get("Retries")
                .and_then(serde_json::Value::as_u64)
                .and_then(|r| u32::try_from(r).ok())
                .filter(|&r| r > 0),
        })
    });
    let shell = run.get("Shell").and_then(strings).filter(|s| !s.is_empty());
    (health, shell)
}

/// `seconds` since 1970 as RFC 3339 UTC (`1970-01-01T00:00:00Z`); `None` past
/// the year 9999, which RFC 3339 cannot write.
pub fn rfc3339(seconds: u64) -> Option<String> {
    // 253402300800 is 10000-01-01T00:00:00Z.
    if seconds >= 253_402_300_800 {
        return None;
    }
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to non-negative days, so unsigned throughout).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            rfc3339(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(
            rfc3339(253_402_300_799).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(rfc3339(253_402_300_800), None);
        assert_eq!(rfc3339(u64::MAX), None);
    }
}
