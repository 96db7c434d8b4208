//! Human-readable and Graphviz renderings of a plan (`strata plan`, `--dot`).

use std::fmt::Write;

use strata_layer::JobOp;

use crate::{Plan, Step};

impl Plan {
    /// A stable text rendering: every layer with its ops, inputs, dependencies
    /// and key, then every image with its layer stack.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan {}: {} layer(s), {} image(s), epoch {}, compression {}",
            // The file name only: the rendering must not depend on where the checkout is.
            std::path::Path::new(&self.spec_name)
                .file_name()
                .map_or(self.spec_name.as_str().into(), |n| n.to_string_lossy()),
            self.layers.len(),
            self.images.len(),
            self.epoch,
            self.compression.identity()
        );
        for l in &self.layers {
            let _ = writeln!(
                s,
                "\nlayer {} [key {}]",
                l.qualified_name(),
                &l.key.hex()[..16]
            );
            if l.reads_below {
                // A deep stack is named by its top few layers, so the text
                // stays linear in the layer count.
                const NAMED: usize = 8;
                let mut names = Vec::new();
                let mut cur = l.under;
                while let Some(id) = cur.filter(|_| names.len() < NAMED) {
                    names.push(self.layer(id).qualified_name());
                    cur = self.layer(id).under;
                }
                names.reverse();
                let skip = l.depth - names.len();
                if skip > 0 {
                    names.insert(0, format!("({skip} more layers)"));
                }
                let _ = writeln!(s, "  reads below: {}", names.join(", "));
            } else if l.sources.is_empty() {
                let _ = writeln!(s, "  independent: builds in parallel");
            }
            if !l.sources.is_empty() {
                let mut tops: Vec<String> = l
                    .sources
                    .iter()
                    .map(|&id| self.layer(id).qualified_name())
                    .collect();
                tops.dedup();
                let _ = writeln!(s, "  reads the images of: {}", tops.join(", "));
            }
            let mut inputs = l.inputs.iter();
            for step in l.steps() {
                let line = match step {
                    Step::Op(JobOp::Unpack { to, .. }) => {
                        let i = inputs.next();
                        format!("unpack {} -> {}", i.map_or("?", |i| &i.src), to.display())
                    }
                    Step::Op(JobOp::Copy { to, into_dir, .. }) => {
                        let i = inputs.next();
                        let slash = if *into_dir && !to.0.is_empty() {
                            "/"
                        } else {
                            ""
                        };
                        format!(
                            "copy {} -> {}{slash}",
                            i.map_or("?", |i| &i.src),
                            to.display()
                        )
                    }
                    Step::Op(JobOp::File { path, content, .. }) => {
                        format!("file {} ({} bytes)", path.display(), content.len())
                    }
                    Step::Op(JobOp::Mkdir { path, .. }) => format!("mkdir {}", path.display()),
                    Step::Op(JobOp::Symlink { path, target, .. }) => {
                        format!(
                            "symlink {} -> {}",
                            path.display(),
                            String::from_utf8_lossy(target)
                        )
                    }
                    Step::Op(JobOp::Delete { path }) => format!("delete {}", path.display()),
                    Step::Op(JobOp::Attr {
                        path,
                        mode,
                        uid,
                        gid,
                        recursive,
                    }) => format!(
                        "attr {}{}{}{}{}",
                        path.display(),
                        mode.map_or(String::new(), |m| format!(" mode={m:o}")),
                        uid.map_or(String::new(), |u| format!(" uid={u}")),
                        gid.map_or(String::new(), |g| format!(" gid={g}")),
                        if *recursive { " recursive" } else { "" }
                    ),
                    Step::Op(JobOp::Workdir { path, .. }) => {
                        format!("workdir {}", path.display())
                    }
                    Step::FromDir { .. } => {
                        let i = inputs.next();
                        format!("from-dir {}", i.map_or("?", |i| &i.src))
                    }
                    Step::CopyFrom(step) => format!(
                        "copy {} from image {} -> {}{}",
                        step.src.display(),
                        step.image,
                        step.to.display(),
                        if step.into_dir && !step.to.is_root() {
                            "/"
                        } else {
                            ""
                        }
                    ),
                    Step::Run(step) => format!(
                        "run {:?}{}",
                        step.command,
                        if step.network { " (network)" } else { "" }
                    ),
                };
                let _ = writeln!(s, "  {line}");
            }
        }
        for img in &self.images {
            let _ = writeln!(s, "\nimage {}:{}", img.name, img.tag);
            for (n, &id) in img.layers.iter().enumerate() {
                let _ = writeln!(s, "  {}. {}", n + 1, self.layer(id).qualified_name());
            }
        }
        for index in &self.indexes {
            let _ = writeln!(s, "\nindex {}", index.name);
            for image in index.images.iter().filter_map(|&i| self.images.get(i)) {
                let _ = writeln!(s, "  {} {}", crate::index::platform(image), image.name);
            }
        }
        s
    }

    /// The graph in Graphviz `dot`: layers as boxes, images as ellipses,
    /// indexes as folders; an edge from each layer to the layer stacked on
    /// it (solid when that one reads it, dashed when it only stacks), from
    /// the top of an image to a layer that copies from or mounts it
    /// (dotted), to the images using it, and from images to their indexes.
    /// A legend says so.
    pub fn render_dot(&self) -> String {
        let mut s =
            String::from("digraph strata {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n");
        s.push_str(concat!(
            "  subgraph cluster_legend {\n",
            "    label=\"legend\"; fontname=\"monospace\"; style=dashed;\n",
            "    \"legend:layer\" [shape=box, label=\"layer\"];\n",
            "    \"legend:image\" [shape=ellipse, label=\"image\"];\n",
            "    \"legend:index\" [shape=folder, label=\"index\"];\n",
            "    \"legend:reads\" [shape=box, label=\"reads the layers below\"];\n",
            "    \"legend:stacks\" [shape=box, label=\"built alone, stacked\"];\n",
            "    \"legend:copies\" [shape=box, label=\"copies from / mounts an image\"];\n",
            "    \"legend:layer\" -> \"legend:reads\" [style=solid];\n",
            "    \"legend:layer\" -> \"legend:stacks\" [style=dashed];\n",
            "    \"legend:layer\" -> \"legend:copies\" [style=dotted];\n",
            "    \"legend:layer\" -> \"legend:image\" -> \"legend:index\";\n",
            "  }\n",
        ));
        for l in &self.layers {
            let _ = writeln!(s, "  \"{}\" [shape=box];", esc(&l.qualified_name()));
        }
        for img in &self.images {
            let _ = writeln!(
                s,
                "  \"image:{}\" [shape=ellipse, label=\"{}:{}\"];",
                esc(&img.name),
                esc(&img.name),
                esc(&img.tag)
            );
        }
        for l in &self.layers {
            if let Some(below) = l.under {
                let style = if l.reads_below { "solid" } else { "dashed" };
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"{}\" [style={style}];",
                    esc(&self.layer(below).qualified_name()),
                    esc(&l.qualified_name())
                );
            }
        }
        for l in &self.layers {
            let mut tops = l.sources.clone();
            tops.dedup();
            for top in tops {
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"{}\" [style=dotted];",
                    esc(&self.layer(top).qualified_name()),
                    esc(&l.qualified_name())
                );
            }
        }
        for img in &self.images {
            if let Some(&top) = img.layers.last() {
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"image:{}\";",
                    esc(&self.layer(top).qualified_name()),
                    esc(&img.name)
                );
            }
        }
        for index in &self.indexes {
            let _ = writeln!(
                s,
                "  \"index:{}\" [shape=folder, label=\"{}\"];",
                esc(&index.name),
                esc(&index.name)
            );
            for &i in &index.images {
                if let Some(img) = self.images.get(i) {
                    let _ = writeln!(
                        s,
                        "  \"image:{}\" -> \"index:{}\";",
                        esc(&img.name),
                        esc(&index.name)
                    );
                }
            }
        }
        s.push_str("}\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
