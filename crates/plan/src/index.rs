//! `index` nodes: several images of the spec, one per platform, under one
//! name (an OCI image index). The parser checked the names; here each member
//! is found among the planned images and their resolved platforms (`from`
//! inherits a platform) must differ, since a runtime picks one by platform.

use std::collections::BTreeMap;

use miette::SourceSpan;
use strata_spec::{Spec, SpecDiagnostic};

use crate::ImageNode;

/// One multi-platform image.
#[derive(Debug, Clone)]
pub struct IndexNode {
    pub name: String,
    pub span: SourceSpan,
    /// Its images, as indices into [`crate::Plan::images`], in spec order.
    pub images: Vec<usize>,
}

/// `os/arch[/variant]` of an image.
pub(crate) fn platform(image: &ImageNode) -> String {
    image.config.platform()
}

/// The indexes of `spec` over `images` (spec order; `None` for an image that
/// could not be planned, whose problem is already reported).
pub(crate) fn resolve(
    spec: &Spec,
    images: &[Option<ImageNode>],
) -> (Vec<IndexNode>, Vec<SpecDiagnostic>) {
    // The position of each planned image in the plan's image list.
    let mut planned: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    let mut next = 0;
    for (image, node) in spec.images.iter().zip(images) {
        let at = node.as_ref().map(|_| {
            next += 1;
            next - 1
        });
        planned.entry(image.name.value.as_str()).or_insert(at);
    }
    let names: Vec<&str> = planned.keys().copied().collect();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for index in &spec.indexes {
        let mut members = Vec::new();
        let mut platforms: BTreeMap<String, &str> = BTreeMap::new();
        for member in &index.images {
            let Some(&at) = planned.get(member.value.as_str()) else {
                let mut d = SpecDiagnostic::new(
                    format!("no image named `{}` in this spec", member.value),
                    member.span,
                    "unknown image",
                );
                if let Some(best) = strata_spec::did_you_mean(&member.value, &names) {
                    d = d.with_help(format!("did you mean `{best}`?"));
                }
                errors.push(d);
                continue;
            };
            // An image that could not be planned has its own error already.
            let Some(at) = at else { continue };
            let Some(node) = images.iter().flatten().nth(at) else {
                continue;
            };
            let platform = platform(node);
            if let Some(first) = platforms.get(&platform) {
                errors.push(
                    SpecDiagnostic::new(
                        format!(
                            "images `{first}` and `{}` of index `{}` are both {platform}",
                            member.value, index.name.value
                        ),
                        member.span,
                        "same platform",
                    )
                    .with_help(
                        "an index holds one image per platform; give each image its own \
                         `platform \"OS/ARCH[/VARIANT]\"` (the default is linux/amd64)",
                    ),
                );
                continue;
            }
            platforms.insert(platform, &member.value);
            members.push(at);
        }
        out.push(IndexNode {
            name: index.name.value.clone(),
            span: index.span,
            images: members,
        });
    }
    (out, errors)
}
