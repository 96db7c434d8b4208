//! `compose --sbom`: an SPDX 2.3 JSON document per image, stored in the
//! layout as an artifact that refers to the image (see `strata_export`'s
//! referrers).
//!
//! The document lists the image (a package, its manifest digest), every
//! layer (a package, its blob's sha256, its files analyzed with their
//! verification code), every regular file of every layer (path, SHA1 and
//! sha256), and every input the spec declared for those layers (a package:
//! the sha256 of a file input, and strata's blake3 content digest of any
//! input in its comment). Paths and sha256s come from the layer listings the
//! builder produced; SPDX also requires each file's SHA1, which listings do
//! not keep, so each layer blob is read once more to hash its files (this is
//! why the SBOM is opt-in: it costs one decompression per layer).
//!
//! It is deterministic: `created` is the images' time (the spec's `epoch` or
//! SOURCE_DATE_EPOCH), the document namespace is derived from the image
//! manifest's digest, there is no random identifier, and the JSON is
//! canonical (RFC 8785). Licences are claimed only for Debian packages, as
//! `licenseDeclared`: what the package's `usr/share/doc/NAME/copyright` in
//! the image declares when it is machine-readable (DEP-5), as an SPDX
//! expression (`strata_deb::copyright`), else NOASSERTION; each
//! `LicenseRef-` it uses is defined in `hasExtractedLicensingInfos`. The
//! copyright files are read in the same pass over each blob as the SHA1s.
//! Every other licence field is left out, which SPDX 2.3 reads as
//! NOASSERTION.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use canon_json::CanonJsonSerialize;
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use strata_export::{ARTIFACT_TYPE_SPDX, ExportImage, Referrer};
use strata_layer::{Digest, EntryKind, Listing};
use strata_plan::{LayerId, Plan};

use crate::Error;

/// The file name of the document in its artifact (`org.opencontainers.image.title`).
pub const SBOM_TITLE: &str = "sbom.spdx.json";

/// One referrer per image of `images` (the export form of `plan.images`, in
/// the same order): its SPDX document. `listing(layer)` is the listing of a
/// plan layer.
pub(crate) fn referrers<'a>(
    plan: &Plan,
    images: &[ExportImage],
    listing: impl Fn(LayerId) -> &'a Listing,
) -> Result<Vec<Referrer>, Error> {
    // Layers and inputs shared by several images are hashed once.
    let mut layer_files: BTreeMap<Digest, LayerFiles> = BTreeMap::new();
    let mut input_sha256: BTreeMap<PathBuf, Option<String>> = BTreeMap::new();
    let mut out = Vec::with_capacity(images.len());
    for (i, (node, image)) in plan.images.iter().zip(images).enumerate() {
        let json = strata_export::image_json(image)?;
        let created =
            strata_export::rfc3339(image.config.created).ok_or_else(|| Error::TimeOutOfRange {
                image: image.name.clone(),
                created: image.config.created,
            })?;
        let mut layers = Vec::with_capacity(node.layers.len());
        // The image's os-release: the top layer's that has one.
        let mut os_release: Option<String> = None;
        // The image's doc directories, upper layers over lower.
        let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
        for (&id, desc) in node.layers.iter().zip(&image.layers) {
            let layer = plan.layer(id);
            let label = layer.qualified_name();
            if let std::collections::btree_map::Entry::Vacant(slot) =
                layer_files.entry(desc.desc.blob)
            {
                slot.insert(files_of(listing(id), &desc.blob_path, &label)?);
            }
            let mut inputs = Vec::with_capacity(layer.inputs.len());
            for input in &layer.inputs {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    input_sha256.entry(input.path.clone())
                {
                    slot.insert(sha256_of_file(&input.path)?);
                }
                inputs.push(SbomInput {
                    src: input.src.clone(),
                    blake3: blake3::Hash::from(input.digest).to_hex().to_string(),
                    sha256: input_sha256.get(&input.path).cloned().flatten(),
                });
            }
            let lf = layer_files
                .get(&desc.desc.blob)
                .cloned()
                .unwrap_or_default();
            if lf.os_release.is_some() {
                os_release = lf.os_release;
            }
            docs.extend(lf.docs);
            layers.push(SbomLayer {
                packages: plan.packages.get(&label).cloned().unwrap_or_default(),
                name: label,
                digest: desc.desc.blob.to_string(),
                diff_id: desc.desc.diff_id.to_string(),
                inputs,
                files: lf.files,
            });
        }
        let distro = os_release.as_deref().map(Distro::parse).unwrap_or_default();
        let doc = document(&SbomImage {
            name: &image.name,
            tag: &image.tag,
            manifest: &json.manifest_digest.to_string(),
            created: &created,
            layers: &layers,
            distro: &distro,
            docs: &docs,
        });
        let bytes = doc.to_canon_json_vec().map_err(|source| Error::Io {
            path: format!("the sbom of image {}", image.name).into(),
            source,
        })?;
        out.push(Referrer {
            subject: i,
            artifact_type: ARTIFACT_TYPE_SPDX.to_owned(),
            title: SBOM_TITLE.to_owned(),
            bytes,
            annotations: [("org.opencontainers.image.created".to_owned(), created)].into(),
        });
    }
    Ok(out)
}

/// What the document of one image is made of.
pub(crate) struct SbomImage<'a> {
    pub name: &'a str,
    pub tag: &'a str,
    /// `sha256:…` of the image manifest.
    pub manifest: &'a str,
    /// RFC 3339.
    pub created: &'a str,
    pub layers: &'a [SbomLayer],
    /// The distribution the image's `os-release` names, for package purls.
    pub distro: &'a Distro,
    /// The image's `usr/share/doc` directories, for package licences.
    pub docs: &'a BTreeMap<String, Doc>,
}

/// `ID` and `VERSION_ID` of an image's `/etc/os-release`: a deb purl's
/// namespace and `distro=` qualifier, as scanners (syft, Trivy) take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Distro {
    pub id: Option<String>,
    pub version_id: Option<String>,
}

impl Distro {
    pub fn parse(text: &str) -> Distro {
        let field = |name: &str| {
            text.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.strip_prefix('=')?;
                let v = v.trim().trim_matches('"').trim_matches('\'');
                (!v.is_empty()).then(|| v.to_owned())
            })
        };
        Distro {
            id: field("ID"),
            version_id: field("VERSION_ID"),
        }
    }
}

/// What one layer blob gives the document.
#[derive(Debug, Clone, Default)]
struct LayerFiles {
    files: Vec<SbomFile>,
    /// Its `etc/os-release` or `usr/lib/os-release` (the first wins).
    os_release: Option<String>,
    /// The packages' doc directories it has, by name: what each
    /// `usr/share/doc/NAME/copyright` declares (`None`: not
    /// machine-readable), or, for a `usr/share/doc/NAME` symlink to a
    /// sibling, that sibling's name.
    docs: BTreeMap<String, Doc>,
}

/// What a layer holds at `usr/share/doc/NAME`.
#[derive(Debug, Clone)]
pub(crate) enum Doc {
    Copyright(Option<strata_deb::copyright::Declared>),
    /// A symlink to `usr/share/doc/OTHER` (Debian links a `-dev` or
    /// library package's doc directory to its source's).
    Link(String),
}

/// One layer of an image, lowest first.
pub(crate) struct SbomLayer {
    /// `image/layer`.
    pub name: String,
    /// `sha256:…` of the blob.
    pub digest: String,
    pub diff_id: String,
    pub inputs: Vec<SbomInput>,
    /// Its regular files, in listing order.
    pub files: Vec<SbomFile>,
    /// The Debian packages it installs, as the lock records them
    /// (`NAME VERSION ARCH SHA256 SIZE FILENAME`).
    pub packages: Vec<String>,
}

/// One source of a layer, as the spec names it.
pub(crate) struct SbomInput {
    pub src: String,
    /// strata's content digest of it (hex).
    pub blake3: String,
    /// The sha256 of a file input (hex); a directory has none.
    pub sha256: Option<String>,
}

/// One regular file of a layer.
#[derive(Debug, Clone)]
pub(crate) struct SbomFile {
    /// The path in the image, without the leading `/`.
    pub path: String,
    pub sha1: String,
    pub sha256: String,
}

/// The regular files of a layer: path and sha256 from its listing, SHA1
/// from its blob, read once.
fn files_of(listing: &Listing, blob: &Path, label: &str) -> Result<LayerFiles, Error> {
    let (sha1s, os_release, mut docs) = blob_sha1s(blob).map_err(|source| Error::Layer {
        layer: label.to_owned(),
        source,
    })?;
    let files = listing
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| {
            let sha256 = e
                .digest
                .map(|d| d.hex())
                .ok_or_else(|| Error::ListingMismatch {
                    layer: label.to_owned(),
                    path: String::from_utf8_lossy(&e.path.0).into_owned(),
                    reason: "its listing has no digest for the file",
                })?;
            let sha1 = sha1s
                .get(&e.path.0)
                .cloned()
                .ok_or_else(|| Error::ListingMismatch {
                    layer: label.to_owned(),
                    path: String::from_utf8_lossy(&e.path.0).into_owned(),
                    reason: "its blob lacks a file its listing has:",
                })?;
            Ok(SbomFile {
                path: String::from_utf8_lossy(&e.path.0).into_owned(),
                sha1,
                sha256,
            })
        })
        .collect::<Result<_, Error>>()?;
    for e in &listing.entries {
        let path = String::from_utf8_lossy(&e.path.0);
        if let (EntryKind::Symlink, Some(name), Some(target)) =
            (e.kind, path.strip_prefix(DOC_DIR), &e.link)
            && !name.contains('/')
        {
            let target = String::from_utf8_lossy(target);
            let target = target.strip_prefix('/').unwrap_or(&target);
            let other = target.strip_prefix(DOC_DIR).unwrap_or(target);
            if !other.is_empty() && !other.contains('/') && other != ".." && other != "." {
                docs.insert(name.to_owned(), Doc::Link(other.to_owned()));
            }
        }
    }
    Ok(LayerFiles {
        files,
        os_release,
        docs,
    })
}

/// Where packages keep their copyright files: `DOC_DIR/NAME/copyright`.
const DOC_DIR: &str = "usr/share/doc/";

/// The most of a copyright file that is read (the largest in Debian are
/// a few hundred KiB).
const MAX_COPYRIGHT: u64 = 4 << 20;

/// The package name of a copyright file's path.
fn copyright_of(path: &[u8]) -> Option<&str> {
    let p = std::str::from_utf8(path).ok()?;
    let name = p.strip_prefix(DOC_DIR)?.strip_suffix("/copyright")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The licence a package's copyright file declares, through the image's
/// doc directories (`docs`, lowest layer first folded into one map).
fn package_license<'d>(
    docs: &'d BTreeMap<String, Doc>,
    name: &str,
) -> Option<&'d strata_deb::copyright::Declared> {
    let mut name = name;
    // A link to a link is followed a few steps, never round a loop.
    for _ in 0..4 {
        match docs.get(name)? {
            Doc::Copyright(d) => return d.as_ref(),
            Doc::Link(other) => name = other,
        }
    }
    None
}

/// SHA1s (hex) by path.
type Sha1s = BTreeMap<Vec<u8>, String>;

/// The SHA1 (hex) of every regular file of a layer blob, by path, its
/// `os-release` text, and the licences its copyright files declare.
#[allow(clippy::type_complexity)]
fn blob_sha1s(
    blob: &Path,
) -> Result<(Sha1s, Option<String>, BTreeMap<String, Doc>), strata_layer::Error> {
    let file = std::fs::File::open(blob).map_err(|source| strata_layer::Error::Io {
        path: blob.to_path_buf(),
        source,
    })?;
    let mut reader = strata_layer::read::BlobReader::new(BufReader::new(file), blob)?;
    let mut out = BTreeMap::new();
    let mut os_release = None;
    let mut docs = BTreeMap::new();
    while let Some(entry) = reader.next_entry()? {
        if entry.kind != EntryKind::File {
            continue;
        }
        let mut hasher = Sha1Writer(Sha1::new());
        let wanted = os_release.is_none()
            && matches!(&entry.path.0[..], b"etc/os-release" | b"usr/lib/os-release");
        if wanted {
            // Small text: read whole (at most 64 KiB), then hashed.
            let mut text = Vec::new();
            let read =
                io::Read::read_to_end(&mut io::Read::take(reader.data(), 64 << 10), &mut text);
            read.map_err(|e| reader.data_error(e))?;
            hasher.0.update(&text);
            let rest = io::copy(&mut reader.data(), &mut hasher);
            rest.map_err(|e| reader.data_error(e))?;
            os_release = String::from_utf8(text).ok();
        } else if let Some(name) = copyright_of(&entry.path.0) {
            let name = name.to_owned();
            let mut text = Vec::new();
            let read =
                io::Read::read_to_end(&mut io::Read::take(reader.data(), MAX_COPYRIGHT), &mut text);
            read.map_err(|e| reader.data_error(e))?;
            hasher.0.update(&text);
            let rest = io::copy(&mut reader.data(), &mut hasher);
            rest.map_err(|e| reader.data_error(e))?;
            let declared = std::str::from_utf8(&text)
                .ok()
                .and_then(strata_deb::copyright::declared);
            docs.insert(name, Doc::Copyright(declared));
        } else {
            let copied = io::copy(&mut reader.data(), &mut hasher);
            copied.map_err(|e| reader.data_error(e))?;
        }
        out.insert(entry.path.0, hex::encode(hasher.0.finalize()));
    }
    reader.finish()?;
    Ok((out, os_release, docs))
}

/// A purl component, percent-encoded as the purl spec asks (everything but
/// ASCII letters, digits and `.-_~`).
fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of a Debian package: `pkg:deb/debian/NAME@VERSION?arch=ARCH`
/// and `&distro=debian-12` when the image's os-release says so.
pub(crate) fn deb_purl(name: &str, version: &str, arch: &str, distro: &Distro) -> String {
    let namespace = distro.id.as_deref().unwrap_or("debian");
    let mut purl = format!(
        "pkg:deb/{}/{}@{}?arch={}",
        purl_encode(namespace),
        purl_encode(name),
        purl_encode(version),
        purl_encode(arch)
    );
    if let (Some(id), Some(v)) = (&distro.id, &distro.version_id) {
        purl.push_str(&format!("&distro={}", purl_encode(&format!("{id}-{v}"))));
    }
    purl
}

/// The sha256 (hex) of `path` if it is a regular file; `None` for a directory.
fn sha256_of_file(path: &Path) -> Result<Option<String>, Error> {
    let io_err = |source: io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Ok(None);
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let (digest, _) = strata_layer::digest::digest_reader(BufReader::new(file)).map_err(io_err)?;
    Ok(Some(digest.hex()))
}

/// `io::Write` into a SHA1 hasher.
struct Sha1Writer(Sha1);

impl Write for Sha1Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The SPDX package verification code of files (SPDX 2.3 §7.9): the SHA1 of
/// their SHA1s, sorted, concatenated.
fn verification_code(files: &[SbomFile]) -> String {
    let mut sha1s: Vec<&str> = files.iter().map(|f| f.sha1.as_str()).collect();
    sha1s.sort_unstable();
    let mut h = Sha1::new();
    for s in sha1s {
        h.update(s.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The SPDX 2.3 document of one image.
pub(crate) fn document(image: &SbomImage<'_>) -> Value {
    let manifest_hex = image
        .manifest
        .strip_prefix("sha256:")
        .unwrap_or(image.manifest);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": image.name,
        "versionInfo": image.tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": manifest_hex}],
        "comment": format!("the OCI image manifest {}", image.manifest),
    })];
    let mut files = Vec::new();
    let mut relationships = vec![relationship(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        "SPDXRef-Image",
    )];
    // One package per distinct input (the same source in two layers is one).
    let mut inputs: BTreeMap<(&str, &str), (String, &SbomInput)> = BTreeMap::new();
    // The text of every `LicenseRef-` a package's licence uses.
    let mut extracted: BTreeMap<&str, &str> = BTreeMap::new();
    for layer in image.layers {
        for input in &layer.inputs {
            let n = inputs.len() + 1;
            inputs
                .entry((input.src.as_str(), input.blake3.as_str()))
                .or_insert_with(|| (format!("SPDXRef-Input-{n}"), input));
        }
    }
    for (id, input) in inputs.values() {
        let mut package = json!({
            "SPDXID": id,
            "name": input.src,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "SOURCE",
            "comment": format!(
                "an input the spec declares; strata's content digest of it (blake3 over its \
                 canonical encoding, the digest in layer cache keys): {}",
                input.blake3
            ),
        });
        if let Some(sha256) = &input.sha256 {
            package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha256}]);
        }
        packages.push(package);
    }
    for (n, layer) in image.layers.iter().enumerate() {
        let layer_id = format!("SPDXRef-Layer-{}", n + 1);
        packages.push(json!({
            "SPDXID": layer_id,
            "name": layer.name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": true,
            "packageVerificationCode": {"packageVerificationCodeValue": verification_code(&layer.files)},
            "primaryPackagePurpose": "ARCHIVE",
            "checksums": [{
                "algorithm": "SHA256",
                "checksumValue": layer.digest.strip_prefix("sha256:").unwrap_or(&layer.digest),
            }],
            "comment": format!("layer {} of the image: blob {}, diff_id {}", n + 1, layer.digest, layer.diff_id),
        }));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &layer_id));
        for (m, line) in layer.packages.iter().enumerate() {
            let w: Vec<&str> = line.split(' ').collect();
            let [name, version, arch, sha256, _size, filename] = w.as_slice() else {
                continue;
            };
            let package_id = format!("SPDXRef-Deb-{}-{}", n + 1, m + 1);
            let declared = package_license(image.docs, name);
            for (id, text) in declared.iter().flat_map(|d| &d.refs) {
                extracted.entry(id).or_insert(text);
            }
            packages.push(json!({
                "SPDXID": package_id,
                "name": name,
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "licenseDeclared": declared.map_or("NOASSERTION", |d| d.expression.as_str()),
                "checksums": [{"algorithm": "SHA256", "checksumValue": sha256}],
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": deb_purl(name, version, arch, image.distro),
                }],
                "comment": format!(
                    "a Debian package installed by layer {} ({}) from the repository's {filename}; \
                     the checksum is the .deb's, which the signed index vouches for",
                    n + 1, layer.name
                ),
            }));
            relationships.push(relationship(&layer_id, "CONTAINS", &package_id));
        }
        for input in &layer.inputs {
            if let Some((input_id, _)) = inputs.get(&(input.src.as_str(), input.blake3.as_str())) {
                relationships.push(relationship(&layer_id, "GENERATED_FROM", input_id));
            }
        }
        for (m, file) in layer.files.iter().enumerate() {
            let file_id = format!("SPDXRef-File-{}-{}", n + 1, m + 1);
            files.push(json!({
                "SPDXID": file_id,
                "fileName": format!("./{}", file.path),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": file.sha1},
                    {"algorithm": "SHA256", "checksumValue": file.sha256},
                ],
            }));
            relationships.push(relationship(&layer_id, "CONTAINS", &file_id));
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", image.name, image.tag),
        "documentNamespace": format!(
            "https://strata.invalid/spdx/{}/sha256-{manifest_hex}",
            image.name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.', "-")
        ),
        "creationInfo": {
            "created": image.created,
            "creators": [format!("Tool: strata-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = extracted
            .iter()
            .map(|(id, text)| json!({"licenseId": id, "extractedText": text}))
            .collect();
    }
    doc
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

#[cfg(test)]
mod deb_tests {
    use super::*;

    #[test]
    fn deb_purls_as_scanners_write_them() {
        let d = Distro::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n",
        );
        assert_eq!(d.id.as_deref(), Some("debian"));
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(
            deb_purl("libc6", "2.36-9+deb12u10", "amd64", &d),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            deb_purl("ucf", "1:3.0043", "all", &Distro::default()),
            "pkg:deb/debian/ucf@1%3A3.0043?arch=all"
        );
    }
}
