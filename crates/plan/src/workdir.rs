//! The layer that makes an image's `workdir`, as Docker's `WORKDIR` makes
//! the directory: a layer named `workdir`, above the image's own layers
//! (so that a change of `workdir` rebuilds that layer only), whose one
//! operation ([`JobOp::Workdir`]) makes the directory when the
//! layers below lack it (0755, owned by the image's `user` when that is
//! numeric) and keeps it as they give it otherwise.

use strata_layer::{Compression, ImageConfig, JobOp, LayerJob, Limits, Owner};
use strata_spec::{Image, SpecDiagnostic};

use crate::{Build, LayerId, LayerKey, LayerNode, keys};

/// The name of the layer; the spec reserves it in an image with `workdir`.
pub const LAYER: &str = "workdir";

/// The `workdir` layer of `image`, when the image sets its own `workdir`
/// (an inherited one was made by the image that set it), other than `/`.
#[allow(clippy::too_many_arguments)] // the planner's state for one layer
pub(crate) fn layer(
    image: &Image,
    config: &ImageConfig,
    below: &[LayerId],
    layers: &[LayerNode],
    epoch: u64,
    compression: Compression,
    limits: Limits,
) -> Option<Result<LayerNode, SpecDiagnostic>> {
    let dir = image.config.workdir.as_ref()?;
    let path = match crate::image_path(dir) {
        Ok(p) if p.is_root() => return None,
        Ok(p) => p,
        Err(d) => return Some(Err(d)),
    };
    let owner = config.user.as_deref().and_then(numeric_owner);
    // Whether the directory is there is a question about the layers below.
    let reads_below = !below.is_empty();
    let under = below.last().map(|id| &layers[id.0]);
    // What it waits for: down to the nearest layer that reads too (as
    // `layer_node` does).
    let deps = if reads_below {
        crate::wait_chain(under, layers)
    } else {
        Vec::new()
    };
    let mut node = LayerNode {
        id: LayerId(layers.len()),
        image: image.name.value.clone(),
        name: LAYER.to_owned(),
        span: dir.span,
        build: Build::Ops(LayerJob {
            ops: vec![JobOp::Workdir { path, owner }],
            epoch,
            compression,
            limits,
        }),
        op_spans: vec![dir.span],
        under: under.map(|u| u.id),
        depth: below.len(),
        stack: [0; 32],
        deps,
        reads_below,
        sources: Vec::new(),
        inputs: Vec::new(),
        owner_names: Vec::new(),
        key: LayerKey([0; 32]),
        key_parts: Vec::new(),
    };
    (node.key, node.key_parts) = keys::layer_key(
        &node.steps(),
        epoch,
        compression,
        &[],
        under.map(|u| &u.stack),
    );
    node.stack = keys::stack_digest(under.map(|u| &u.stack), &node.key);
    Some(Ok(node))
}

/// `UID[:GID]` (group 0 when not given, as `strata import` writes a
/// `WORKDIR` after a `USER` by number), when both are numbers; a user by
/// name is not resolved here, and the directory is then root's.
fn numeric_owner(user: &str) -> Option<Owner> {
    let (u, g) = user.split_once(':').unwrap_or((user, "0"));
    Some(Owner {
        uid: u.parse().ok()?,
        gid: g.parse().ok()?,
    })
}
